"""The Generate DoFn's rerun shortcut: a row whose output the done index holds becomes its
``reused`` row on the DoFn's thread (no window, no per-key store request), with the same
columns and values as the full path's, and only where the full path would reuse it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import JobConfig
from schemas.results import LedgerEntry, StoredMedia
from tests.pipelines.conftest import counting_provider, run_pipeline, write_job, write_jsonl  # noqa: F401
from transforms.generate import GenerateDoFn
from transforms.read import PromptRow, read_rows
from transforms.store_counts import STORE_COUNTS

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def finished_output(tmp_path: Path) -> tuple[Path, JobConfig, list[PromptRow]]:
    """A run that made every row (one request twice), and the rows a rerun reads."""
    job_path = write_job(tmp_path / "job.yaml", {
        "modality": "image", "configs": [{"name": "main", "provider": "counting", "model": "mock-image"}]})
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        *({"id": f"p{i}", "prompt": f"picture {i}", "size": "64x64", "seed": i} for i in range(5)),
        {"id": "again", "prompt": "picture 0", "size": "64x64", "seed": 0},
    ])
    output = tmp_path / "out"
    assert run_pipeline("--input", prompts, "--output", output, "--config", job_path) == 0
    job = JobConfig.model_validate(yaml.safe_load(job_path.read_text()))
    return output, job, list(read_rows(str(prompts), job))


def generate(dofn: GenerateDoFn, rows: list[PromptRow]) -> list[Any]:
    """Every row the DoFn makes of ``rows`` in one bundle."""
    dofn.setup()
    try:
        made = [out for row in rows for out in dofn.process(row)]
        made += [value.value for value in dofn.finish_bundle()]
    finally:
        dofn.teardown()
    return made


def records(rows: list[Any]) -> dict[str, dict[str, Any]]:
    return {r.row_id: {k: v for k, v in r.to_record().items() if k != "finished_at"} for r in rows}


def test_a_reused_row_is_the_full_paths_row_column_by_column_made_without_the_window(
        tmp_path, counting_provider, monkeypatch):
    output, job, rows = finished_output(tmp_path)
    submits = counting_provider.submits

    full_path = GenerateDoFn(job, str(output), "run-2")
    monkeypatch.setattr(full_path, "_indexed_row", lambda row: None)
    slow = generate(full_path, rows)

    shortcut = GenerateDoFn(job, str(output), "run-2")
    added: list[str] = []
    shortcut.setup()
    real_add = shortcut.window.add
    shortcut.window.add = lambda key, steps: (added.append(key), real_add(key, steps))[1]  # type: ignore[method-assign]
    STORE_COUNTS.take()
    fast = [out for row in rows for out in shortcut.process(row)]
    fast += [value.value for value in shortcut.finish_bundle()]
    shortcut.teardown()

    assert added == []  # no row went through the window
    assert STORE_COUNTS.take().get("read_bytes", 0) == 0  # nor read its done record one by one
    assert counting_provider.submits == submits
    assert len(fast) == len(slow) == 6
    assert records(fast) == records(slow)
    assert all(r["reused"] and r["status"] == "completed" and r["cost_source"] == "none" for r in records(fast).values())
    assert records(fast)["again"]["media_uris"] == records(fast)["p0"]["media_uris"]
    assert all(r.run_id == "run-2" and r.finished_at is not None for r in fast)


def test_rows_the_index_does_not_hold_take_the_full_path(tmp_path, counting_provider):
    output, job, rows = finished_output(tmp_path)
    new = PromptRow(**{**rows[0].__dict__, "row_id": "new", "key": "another-key",
                       "request_json": rows[0].request_json.replace("picture 0", "a new picture")})
    broken = PromptRow(**{**rows[2].__dict__, "row_id": "broken", "key": "broken-key", "request_json": "{not json"})
    dofn = GenerateDoFn(job, str(output), "run-2")
    made = generate(dofn, [rows[1], new, broken])
    by_id = {r.row_id: r for r in made}
    assert by_id["p1"].reused and not by_id["new"].reused and by_id["new"].status == "completed"
    assert by_id["broken"].status == "failed"  # the full path's failure, not a crashed bundle


# -- which records the shortcut takes: exactly those the full path reuses ----------------------


class IndexOnly:
    """A ledger whose done index holds ``entries`` (key -> record)."""

    def __init__(self, entries: dict[str, LedgerEntry]) -> None:
        self.entries = entries

    def indexed(self, key: str) -> LedgerEntry | None:
        return self.entries.get(key)


def entry(key: str, provider: str, run_id: str = "run-1") -> LedgerEntry:
    media = [StoredMedia(uri=f"media/image/{key}.png", content_type="image/png", bytes=3, sha256="c" * 64)]
    return LedgerEntry(key=key, modality="image", provider=provider, model="m", is_mock=provider == "mock",
                       media=media, run_id=run_id, updated_at=T0)


def shortcut_of(entries: dict[str, LedgerEntry], regenerate: str | None = None) -> GenerateDoFn:
    job = JobConfig.model_validate({"modality": "image", "configs": [
        {"name": "main", "provider": "fal", "model": "m", "fallback_configs": [{"provider": "mock", "model": "m"}]}]})
    dofn = GenerateDoFn(job, "/unused", "run-2", regenerate=regenerate)  # type: ignore[arg-type]
    dofn.ledger = IndexOnly(entries)  # type: ignore[assignment]
    return dofn


@pytest.fixture
def chain() -> list[Any]:
    from schemas import ImageGenerationConfig

    return [ImageGenerationConfig(provider="fal", model="m"), ImageGenerationConfig(provider="mock", model="m")]


def test_a_real_result_is_taken_and_a_placeholder_is_left_to_the_full_path(chain):
    real, placeholder = entry("k0", "fal"), entry("k1", "mock")
    assert shortcut_of({"k0": real, "k1": placeholder})._first_indexed(["k0", "k1"], chain, True) == (real, False)
    for can_serve in (True, False):
        # the real config's key has no indexed record: the full path reads it one by one (a crashed
        # run may have left one), then replaces the placeholder (can serve) or reuses it (cannot)
        assert shortcut_of({"k1": placeholder})._first_indexed(["k0", "k1"], chain, can_serve) is None
    # a chain of the mock alone makes no placeholders: its records are reused
    assert shortcut_of({"k1": placeholder})._first_indexed(["k1"], chain[1:], True) == (placeholder, False)


def test_regenerate_leaves_every_record_it_redoes_to_the_full_path(chain):
    real, made_by_mock = entry("k0", "fal"), entry("k0", "mock")
    assert shortcut_of({"k0": real}, "all")._first_indexed(["k0"], chain, False) is None
    assert shortcut_of({"k0": made_by_mock}, "mock")._first_indexed(["k0"], [chain[1]], False) is None
    assert shortcut_of({"k0": real}, "mock")._first_indexed(["k0"], chain, False) == (real, False)
    assert shortcut_of({"k0": real}, "failed")._first_indexed(["k0"], chain, False) == (real, False)
    this_run = entry("k0", "fal", run_id="run-2")  # never reopened by the run that wrote it
    assert shortcut_of({"k0": this_run}, "all")._first_indexed(["k0"], chain, False) == (this_run, False)


def test_the_run_summary_says_store_requests_and_objects_written_per_row(capsys):
    from pipelines.generate import print_summary

    print_summary({"run_id": "r", "rows": 4, "output": "/o", "counts_by_status": {"completed": 4},
                   "store": {"requests": 6, "requests_per_row": 1.5, "objects_written": 2, "objects_written_per_row": 0.5}})
    assert "  store:    6 requests (1.5 per row), 2 objects written (0.5 per row)" in capsys.readouterr().out.splitlines()
