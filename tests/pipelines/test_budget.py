"""The hard budget cap and cost per row, end to end: the real CLI in-process against the
provider emulator, spend measured at the emulator (accepted submits x their price)."""

from __future__ import annotations

import json

import pytest

from tests.pipelines.conftest import manifest, rows_by_id, run_pipeline, write_jsonl

MODEL = "fal-ai/flux/dev"
PRICE = 0.5
"""The job file's price per image (a ``prices:`` override of the catalog's)."""
ROWS = 120


def job_file(tmp_path, emulator, **extra):
    job = {
        "modality": "image",
        "configs": [{"name": "fal", "provider": "fal", "model": MODEL, "api_key_env": "FAL_KEY",
                     "base_url": emulator.url_for("fal"), "poll_interval": 0, "max_poll_attempts": 5000}],
        "window": {"max_in_flight": 100, "threads": 8},
        "retry": {"max_retries": 0},
        "prices": {f"fal/{MODEL}": [{"unit": "image", "usd": PRICE, "note": "test rate"}]},
        **extra,
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return path


@pytest.fixture
def fal(emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("FAL_KEY", emulator.key_for("fal"))
    emulator.job_duration = 0.2
    prompts = write_jsonl(tmp_path / "prompts.jsonl",
                          [{"id": f"r{i:03d}", "prompt": f"prompt {i}", "size": "64x64"} for i in range(ROWS)])
    return prompts


def paid_at_emulator(emulator) -> float:
    return emulator.count("fal.submit") * PRICE


def test_the_cap_holds_exactly_with_100_racing_submits_and_a_rerun_completes_the_rest(emulator, fal, tmp_path):
    output = tmp_path / "out"
    job = job_file(tmp_path, emulator)
    assert run_pipeline("--input", fal, "--output", output, "--config", job, "--max_usd", "20.25") == 0

    # 40 submits fit in $20.25 at $0.50; the 41st would pass the cap.
    assert emulator.count("fal.submit") == 40 and paid_at_emulator(emulator) <= 20.25
    rows = rows_by_id(output)
    assert len(rows) == ROWS
    completed = [r for r in rows.values() if r["status"] == "completed"]
    refused = [r for r in rows.values() if r["error_type"] == "BudgetExceededError"]
    assert len(completed) == 40 and len(refused) == ROWS - 40
    assert all(r["status"] == "failed" and r["cost_usd"] == 0 and r["cost_source"] == "none" for r in refused)
    assert all(r["cost_usd"] == PRICE and r["cost_source"] == "estimated" for r in completed)
    assert all("budget" in r["error_message"] for r in refused)
    first = manifest(output)
    assert first["cost"]["total_usd"] == pytest.approx(20.0)
    assert first["cost"]["by_provider_model"][f"fal/{MODEL}"]["attempts"] == 40
    assert first["not_completed_by_error_type"] == {"BudgetExceededError": ROWS - 40}

    # A larger cap completes the refused rows; the 40 made ones are reused, not paid again.
    assert run_pipeline("--input", fal, "--output", output, "--config", job, "--max_usd", "100") == 0
    assert emulator.count("fal.submit") == ROWS
    assert sorted(p.json["prompt"] for p in emulator.requests_for("fal.submit")) == sorted(
        f"prompt {i}" for i in range(ROWS))
    rows = rows_by_id(output)
    assert all(r["status"] == "completed" for r in rows.values())
    assert sum(r["reused"] for r in rows.values()) == 40
    assert sum(r["cost_usd"] for r in rows.values()) == pytest.approx((ROWS - 40) * PRICE)


def test_scope_output_counts_what_earlier_runs_spent(emulator, fal, tmp_path):
    output = tmp_path / "out"
    few = write_jsonl(tmp_path / "few.jsonl", [{"id": f"a{i}", "prompt": f"early {i}"} for i in range(6)])
    assert run_pipeline("--input", few, "--output", output, "--config", job_file(tmp_path, emulator)) == 0
    assert manifest(output)["cost"]["total_usd"] == pytest.approx(3.0)

    job = job_file(tmp_path, emulator, budget={"max_usd": 5.0, "scope": "output"})
    assert run_pipeline("--input", fal, "--output", output, "--config", job) == 0
    # $3 spent by the first run leaves $2: four more images.
    assert emulator.count("fal.submit") == 6 + 4
    assert manifest(output)["cost"]["total_usd"] == pytest.approx(2.0)


def test_unknown_prices_are_refused_under_a_cap(emulator, fal, tmp_path):
    output = tmp_path / "out"
    job = json.loads(job_file(tmp_path, emulator).read_text())
    job["prices"] = {}
    job["configs"][0]["model"] = "fal-ai/some-unpriced-model"
    path = tmp_path / "unpriced.json"
    path.write_text(json.dumps(job))
    assert run_pipeline("--input", fal, "--output", output, "--config", path, "--max_usd", "10") == 0
    assert emulator.count("fal.submit") == 0
    rows = rows_by_id(output)
    assert {r["error_type"] for r in rows.values()} == {"BudgetExceededError"}
    assert "no price known" in next(iter(rows.values()))["error_message"]


def test_provider_reported_costs_land_in_the_table(emulator, monkeypatch, tmp_path):
    """Runway answers a finished task's cost in credits (the emulator: 10 credits a second)."""
    monkeypatch.setenv("RUNWAYML_API_SECRET", emulator.key_for("runway"))
    emulator.jobs.advance_per_poll()  # done after its polls, however fast or slow the machine
    prompts = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "five", "prompt": "a fox", "duration_seconds": 5, "aspect_ratio": "16:9"},
        {"id": "two", "prompt": "a hare", "duration_seconds": 2, "aspect_ratio": "16:9"},
    ])
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "modality": "video",
        "configs": [{"provider": "runway", "model": "gen4.5", "api_key_env": "RUNWAYML_API_SECRET",
                     "base_url": emulator.url_for("runway"), "poll_interval": 0}],
    }))
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0
    rows = rows_by_id(tmp_path / "out")
    assert rows["five"]["status"] == "completed", rows["five"]["error_message"]
    assert (rows["five"]["cost_usd"], rows["five"]["cost_source"]) == (pytest.approx(0.5), "provider-reported")
    assert rows["two"]["cost_usd"] == pytest.approx(0.2)
    attempt = rows["five"]["attempts"][0]
    assert (attempt["cost_usd"], attempt["cost_source"]) == (pytest.approx(0.5), "provider-reported")
    cost = manifest(tmp_path / "out")["cost"]
    assert cost["by_provider_model"]["runway/gen4.5"]["provider_reported"] == 2
    assert cost["total_usd"] == pytest.approx(0.7)


def test_the_progress_bar_shows_spend_of_the_cap(tmp_path):
    from transforms.progress import Progress

    progress = Progress(3, "spend-line", max_usd=250)
    progress.open()
    try:
        progress.finished("completed", 1.5)
        progress.finished("reused", 0.0)
        progress.finished("failed", None)
        assert progress.bar.spend_text() == "spent=$1.50/$250 (+1 of unknown cost)"
    finally:
        progress.close()
    uncapped = Progress(1, "spend-line-2")
    try:
        uncapped.finished("completed", 0.25)
        assert uncapped.bar.spend_text() == "spent=$0.25"
    finally:
        uncapped.close()
