"""``--dry_run`` calls no provider, writes only its plan, and predicts what a real run then does;
``--limit`` runs only the first N valid rows."""

from __future__ import annotations

import json

import pytest

from tests.pipelines.conftest import rows_by_id, run_pipeline, write_jsonl

MODEL = "fal-ai/flux/dev"
PRICE = 0.25


@pytest.fixture
def job(emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("FAL_KEY", emulator.key_for("fal"))
    emulator.jobs.advance_per_poll()  # done after its polls, however fast or slow the machine
    path = tmp_path / "job.json"
    path.write_text(json.dumps({
        "modality": "image",
        "configs": [
            {"name": "fal", "provider": "fal", "model": MODEL, "api_key_env": "FAL_KEY",
             "base_url": emulator.url_for("fal"), "poll_interval": 0, "max_poll_attempts": 5000},
            {"name": "chain", "provider": "fal", "model": "fal-ai/flux-pro/v1.1-ultra", "api_key_env": "FAL_KEY",
             "base_url": emulator.url_for("fal"), "poll_interval": 0, "max_poll_attempts": 5000,
             "fallback_configs": [{"provider": "fal", "model": MODEL, "api_key_env": "FAL_KEY",
                                   "base_url": emulator.url_for("fal"), "poll_interval": 0}]},
        ],
        "retry": {"max_retries": 0},
        "prices": {f"fal/{MODEL}": [{"unit": "image", "usd": PRICE}]},
    }))
    return path


def prompts(tmp_path):
    rows = [{"id": f"ok{i}", "prompt": f"a lighthouse {i}", **({"n": 2} if i == 0 else {})} for i in range(5)]
    rows += [
        {"id": "same", "prompt": "a lighthouse 1"},                      # the request of ok1 again: reused
        {"id": "too-many", "prompt": "five at once", "n": 5},             # over the model's 4: skipped
        {"id": "bad", "prompt": ""},                                       # invalid
        "{not json",                                                       # invalid
        {"id": "c1", "prompt": "a fallback chain", "config": "chain"},    # best $0.06, worst $0.06 + $0.25
    ]
    return write_jsonl(tmp_path / "prompts.jsonl", rows)


def plan_of(output):
    [path] = list((output / "_runs").glob("*.plan.json"))
    return json.loads(path.read_text())


def test_a_dry_run_calls_no_provider_and_predicts_the_real_run(emulator, job, tmp_path, capsys):
    output = tmp_path / "out"
    source = prompts(tmp_path)
    assert run_pipeline("--input", source, "--output", output, "--config", job, "--dry_run", "--run_id", "plan1") == 0

    assert emulator.requests == []
    assert sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file()) == ["_runs/plan1.plan.json"]
    plan = plan_of(output)
    fal, chain = plan["configs"]["fal"], plan["configs"]["chain"]
    assert (fal["submit"], fal["reused"], fal["skipped"], fal["invalid"]) == (5, 1, 1, 2)
    assert fal["best_usd"] == pytest.approx(6 * PRICE)  # ok0 makes two images
    assert (chain["submit"], chain["best_usd"], chain["worst_usd"]) == (1, pytest.approx(0.06), pytest.approx(0.31))
    printed = capsys.readouterr().out
    assert "nothing was submitted" in printed and "$1.50" in printed and "$0.06 - $0.31" in printed
    assert "n=5 exceeds the model's maximum of 4" in printed

    assert run_pipeline("--input", source, "--output", output, "--config", job, "--run_id", "real1") == 0
    rows = rows_by_id(output)
    submitted = [r for r in rows.values() if r["status"] == "completed" and not r["reused"]]
    assert len(submitted) == fal["submit"] + chain["submit"] == emulator.count("fal.submit")
    assert sum(r["reused"] for r in rows.values()) == fal["reused"] + chain["reused"]
    assert sum(r["status"] == "invalid" for r in rows.values()) == fal["invalid"]
    assert [r["row_id"] for r in rows.values() if r["error_type"] == "UnsupportedRequestError"] == ["too-many"]
    spent = sum(r["cost_usd"] for r in rows.values())
    assert fal["best_usd"] + chain["best_usd"] <= spent + 1e-9 <= plan["total"]["worst_usd"] + 1e-9
    real = json.loads((output / "_runs" / "real1.json").read_text())
    assert real["cost"]["total_usd"] == pytest.approx(spent)

    # planned again after the run: everything made is reused, nothing would be submitted
    assert run_pipeline("--input", source, "--output", output, "--config", job, "--dry_run", "--run_id", "plan2") == 0
    again = json.loads((output / "_runs" / "plan2.plan.json").read_text())
    assert again["total"]["submit"] == 0 and again["total"]["reused"] == 7 and again["total"]["best_usd"] == 0


def test_limit_runs_only_the_first_valid_rows(emulator, job, tmp_path):
    output = tmp_path / "out"
    source = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "a", "prompt": "one"}, {"id": "bad", "prompt": ""}, {"id": "b", "prompt": "two"},
        {"id": "c", "prompt": "three"}, {"id": "d", "prompt": "four"},
    ])
    assert run_pipeline("--input", source, "--output", output, "--config", job, "--dry_run", "--limit", "2") == 0
    assert plan_of(output)["total"]["submit"] == 2 and emulator.requests == []
    assert run_pipeline("--input", source, "--output", output, "--config", job, "--limit", "2") == 0
    assert sorted(rows_by_id(output)) == ["a", "b", "bad"]
    assert emulator.count("fal.submit") == 2


def test_limit_and_max_usd_refuse_bad_values(job, tmp_path, capsys):
    for flag, value in (("--limit", "0"), ("--limit", "x"), ("--max_usd", "-3"), ("--max_usd", "nan")):
        assert run_pipeline("--input", tmp_path / "none.jsonl", "--output", tmp_path / "o", flag, value) == 2
        assert capsys.readouterr().err.startswith(f"error: argument {flag}: ")  # one line, no usage text
