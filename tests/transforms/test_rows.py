"""The results table's columns (one table makes record and schema), the row builder, the
metrics collector, media uris relative to a movable output root, placeholders and
``--regenerate``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from providers.errors import ProviderHTTPError
from providers.core.redaction import Redactor
from schemas import AttemptMetadata, ExecutionMetadata
from schemas.results import (
    ATTEMPT_TYPE,
    COLUMNS,
    MEDIA_TYPE,
    RESULTS_SCHEMA,
    ResultRow,
    StoredMedia,
    media_relpath,
    resolve_media_uri,
)
from tests.pipelines.conftest import counting_provider, read_table, run_pipeline, write_job, write_jsonl  # noqa: F401
from transforms.read import PromptRow
from transforms.rows import ItemOutcome, RowBuilder, invalid_result, is_placeholder

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def attempt(**changes) -> AttemptMetadata:
    fields = dict(provider="fal", model="m", attempt_number=1, try_number=1, started_at=T0,
                  ended_at=T0 + timedelta(seconds=5), status="success")
    return AttemptMetadata(**{**fields, **changes})


def full_row() -> ResultRow:
    """A row with every field set, so every column has a value to check."""
    media = [StoredMedia(uri="media/video/k.mp4", content_type="video/mp4", bytes=10, sha256="a" * 64,
                         duration_seconds=2.0, width=640, height=360),
             StoredMedia(uri="media/video/k-1.mp4", content_type="video/mp4", bytes=5, sha256="b" * 64)]
    execution = ExecutionMetadata(
        total_attempts=2, successful_attempt=2, fallback_triggered=False,
        attempts=[attempt(status="failed", error_type="ProviderHTTPError", error_message="slow down", status_code=429,
                          is_retryable=True, queued_seconds=1.5),
                  attempt(try_number=2, request_id="req-1", cost_usd=0.25, cost_source="estimated",
                          queued_seconds=0.5)],
    )
    request = {"prompt": "a fox", "aspect_ratio": "16:9", "resolution": "720p", "duration_seconds": 4, "seed": 7}
    return ResultRow(
        row_id="r1", source="p.jsonl:1", request_key="key", modality="video", prompt="a fox", config_name="main",
        provider="fal", model="m", status="completed", reused=False, media=media, error_type=None, error_message=None,
        is_mock=True, placeholder=True, request_json=json.dumps(request), raw_response_json="{}",
        execution=execution, run_id="run-1", finished_at=T0, cost_usd=0.25, cost_source="estimated",
    )


# -- one table of columns -------------------------------------------------------------------------


def test_the_schema_and_the_record_come_from_one_column_table():
    assert RESULTS_SCHEMA.names == [c.name for c in COLUMNS]
    assert len(set(RESULTS_SCHEMA.names)) == len(COLUMNS)
    record = full_row().to_record()
    assert list(record) == RESULTS_SCHEMA.names
    for column in COLUMNS:
        assert RESULTS_SCHEMA.field(column.name).type == column.type
    # every column's value converts to its declared type and reads back unchanged
    table = pa.Table.from_pylist([record], schema=RESULTS_SCHEMA)
    (back,) = table.to_pylist()
    for name in RESULTS_SCHEMA.names:
        assert back[name] == record[name], name


def test_columns_hold_what_the_row_says():
    record = full_row().to_record()
    assert record["media_uris"] == ["media/video/k.mp4", "media/video/k-1.mp4"]
    assert (record["bytes"], record["width"], record["duration_seconds"]) == (15, 640, 2.0)
    assert (record["aspect_ratio"], record["resolution"], record["requested_duration_seconds"], record["seed"]) == (
        "16:9", "720p", 4.0, 7)
    assert record["voice_id"] is None and record["image_size"] is None and record["audio_format"] is None
    assert record["placeholder"] is True and record["run_id"] == "run-1"
    assert record["queued_seconds"] == 2.0 and record["total_attempts"] == 2
    first, second = record["attempts"]
    assert (first["status_code"], first["queued_seconds"], first["elapsed_seconds"]) == (429, 1.5, 3.5)
    assert second["elapsed_seconds"] == 4.5  # time at the provider: the span less the queueing


def test_struct_fields_are_the_models_attributes():
    assert set(ATTEMPT_TYPE.names) <= set(AttemptMetadata.model_fields) | {"elapsed_seconds"}
    assert set(MEDIA_TYPE.names) == set(StoredMedia.model_fields)


def test_requested_audio_columns_and_a_row_without_a_request():
    tts = ResultRow(row_id="t", source="s", modality="tts", status="completed",
                    request_json=json.dumps({"text": "hi", "voice_id": "v1", "output_format": {"format": "wav"}}))
    record = tts.to_record()
    assert (record["voice_id"], record["audio_format"], record["seed"]) == ("v1", "wav", None)
    bare = ResultRow(row_id="x", source="s", modality="image", status="invalid", request_json="{not json").to_record()
    assert bare["aspect_ratio"] is None and bare["media_uris"] == [] and bare["attempts"] == []
    assert bare["total_attempts"] == 0 and bare["queued_seconds"] is None


def test_an_attempt_without_queueing_measured_keeps_its_whole_span():
    assert attempt().elapsed_seconds == 5.0 and attempt(ended_at=None).elapsed_seconds is None
    with pytest.raises(ValueError, match="queued_seconds"):
        attempt(queued_seconds=-1)


# -- media uris against a movable root ----------------------------------------------------------


@pytest.mark.parametrize("uri, root, relative", [
    ("media/image/k.png", "/data/out", "media/image/k.png"),
    ("/data/out/media/image/k.png", "/data/out", "media/image/k.png"),
    ("/data/out/media/image/k.png", "/data/out/", "media/image/k.png"),
    ("/old/place/media/image/k.png", "/new/place", "media/image/k.png"),  # written before the folder moved
    ("gs://b/run/media/tts/k.mp3", "gs://b/run", "media/tts/k.mp3"),
    ("gs://b/old/media/tts/k.mp3", "s3://c/new", "media/tts/k.mp3"),
])
def test_media_uris_are_taken_relative_to_the_root(uri, root, relative):
    assert media_relpath(uri, root) == relative
    assert resolve_media_uri(uri, root) == root.rstrip("/") + "/" + relative


def test_a_uri_outside_any_output_root_is_refused():
    with pytest.raises(ValueError, match="nor under the output root"):
        media_relpath("/etc/passwd", "/data/out")
    with pytest.raises(ValueError, match="climbs out"):
        resolve_media_uri("media/../../etc/passwd", "/data/out")


# -- the row builder ------------------------------------------------------------------------------


def prompt_row(row_id: str = "r1", **changes) -> PromptRow:
    fields = dict(row_id=row_id, source="p.jsonl:1", modality="image", prompt="a kite", config_name="main",
                  key="key-1", request_json=json.dumps({"prompt": "a kite", "size": "64x64", "seed": 3}))
    return PromptRow(**{**fields, **changes})


class Response:
    is_mock = False
    raw_response = {"id": "job-1", "image": "x" * 5000, "token": "sk-secret-123"}

    def __init__(self, execution: ExecutionMetadata) -> None:
        self.execution_metadata = execution


def builder() -> RowBuilder:
    return RowBuilder("run-9", "/data/out", Redactor(["sk-secret-123"]))


def test_completed_rows_carry_relative_uris_and_cost_once():
    execution = ExecutionMetadata(total_attempts=1, successful_attempt=1,
                                  attempts=[attempt(cost_usd=0.5, cost_source="estimated")])
    stored = [StoredMedia(uri="/data/out/media/image/k.png", content_type="image/png", bytes=3, sha256="c" * 64)]
    outcome = ItemOutcome(response=Response(execution), stored=stored)
    first, duplicate = builder().rows_for([prompt_row("r1"), prompt_row("r2")], outcome, None)
    assert first.status == duplicate.status == "completed" and first.run_id == "run-9"
    assert first.to_record()["media_uris"] == ["media/image/k.png"]
    assert (first.cost_usd, duplicate.cost_usd, duplicate.reused) == (0.5, 0.0, True)
    assert first.to_record()["image_size"] == "64x64" and first.to_record()["seed"] == 3
    raw = first.raw_response_json or ""
    assert "sk-secret-123" not in raw and "5000 characters omitted" in raw


def test_reused_failed_and_invalid_rows():
    entry_media = [StoredMedia(uri="/moved/from/media/image/k.png", content_type="image/png", bytes=3, sha256="c" * 64)]
    from schemas.results import LedgerEntry

    entry = LedgerEntry(key="k", modality="image", provider="mock", model="mock-image", is_mock=True,
                        media=entry_media, updated_at=T0)
    (reused,) = builder().rows_for([prompt_row()], ItemOutcome(reused=entry, placeholder=True), None)
    assert reused.reused and reused.placeholder and reused.media[0].uri == "media/image/k.png"
    error = ProviderHTTPError("HTTP 401 with sk-secret-123", status_code=401, provider="fal", model="m")
    (failed,) = builder().rows_for([prompt_row()], None, error)
    assert failed.status == "failed" and failed.error_type == "ProviderHTTPError"
    assert "sk-secret-123" not in (failed.error_message or "")
    invalid = invalid_result(prompt_row(error="prompt: missing"), "run-9")
    assert invalid.status == "invalid" and invalid.error_message == "prompt: missing"


def test_placeholder_means_the_mock_standing_in_for_a_real_first_config():
    from schemas import ImageGenerationConfig, MockConfig

    real = ImageGenerationConfig(provider="fal", model="m")
    mock = ImageGenerationConfig(provider="mock", model="mock-image")
    mocked = ImageGenerationConfig(provider="fal", model="m", mock=MockConfig())
    assert is_placeholder([real, mock], 1) and is_placeholder([real, mocked], 1)
    assert not is_placeholder([real, mock], 0)
    assert not is_placeholder([mock], 0) and not is_placeholder([mocked, mock], 1)


# -- the metrics collector ---------------------------------------------------------------------------


def test_metrics_count_statuses_retries_429s_and_placeholders():
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    from transforms.metrics import MetricsCollector

    retried = full_row()  # one 429 answered attempt, then a retry (try 2)
    failed = ResultRow(row_id="f", source="s", modality="video", status="failed", provider="fal", model="m")
    reused = full_row().model_copy(update={"reused": True, "placeholder": False})
    invalid = ResultRow(row_id="i", source="s", modality="video", status="invalid")
    collector = MetricsCollector()

    def count(row: ResultRow) -> None:
        collector.row(row)

    pipeline = beam.Pipeline(runner="DirectRunner")
    _ = pipeline | beam.Create([retried, failed, reused, invalid]) | beam.Map(count)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query(MetricsFilter().with_namespace("mediagen"))["counters"]}
    assert counters["rows_completed"] == 1 and counters["rows_failed"] == 1
    assert counters["rows_reused"] == 1 and counters["rows_invalid"] == 1
    assert counters["fal/m/completed"] == 1 and counters["fal/m/reused"] == 1 and counters["fal/m/failed"] == 1
    assert counters["retries"] == 1 and counters["rate_limited"] == 1  # reused rows' attempts are not this run's
    assert counters["placeholders"] == 1


# -- pipelines: a movable output, the printed query, placeholders, --regenerate ------------------------


def image_job(tmp_path: Path, configs: list[dict]) -> Path:
    return write_job(tmp_path / "job.yaml", {"modality": "image", "configs": configs,
                                             "retry": {"max_retries": 0, "base_delay": 0.01}})


def prompts(tmp_path: Path, count: int = 3) -> Path:
    return write_jsonl(tmp_path / "prompts.jsonl",
                       [{"id": f"p{i}", "prompt": f"picture {i}", "size": "64x64", "seed": i} for i in range(count)])


def test_a_moved_output_keeps_its_table_ledger_and_gallery(tmp_path, counting_provider):
    from transforms.gallery import write_gallery

    job = image_job(tmp_path, [{"name": "main", "provider": "counting", "model": "mock-image"}])
    first = tmp_path / "first" / "out"
    assert run_pipeline("--input", prompts(tmp_path), "--output", first, "--config", job) == 0
    moved = tmp_path / "elsewhere" / "out"
    shutil.move(str(first.parent), str(moved.parent))
    assert not first.exists()

    rows = read_table(moved).to_pylist()
    assert len(rows) == 3 and {r["status"] for r in rows} == {"completed"}
    for row in rows:
        for uri, media in zip(row["media_uris"], row["media"]):
            assert not uri.startswith("/") and media["uri"] == uri
            data = Path(resolve_media_uri(uri, str(moved))).read_bytes()
            assert hashlib.sha256(data).hexdigest() == media["sha256"]
        assert row["image_size"] == "64x64" and row["seed"] == int(row["row_id"][1:])
    manifest = json.loads(next((moved / "_runs").glob("*.json")).read_text())
    assert manifest["output"] == str(first)  # the root the table's uris were relative to when written

    report = write_gallery(str(moved))
    assert report.rows == 3 and Path(report.index_uri).is_file()
    pages = "".join(p.read_text() for p in (moved / "gallery" / "data").glob("*.js"))
    for row in rows:  # the page links each media file where it now lies
        assert f"../{row['media_uris'][0]}" in pages
        assert (moved / "gallery" / f"../{row['media_uris'][0]}").resolve().is_file()

    # the ledger's done records are relative too: a rerun on the moved root pays nothing
    submits = counting_provider.submits
    assert run_pipeline("--input", tmp_path / "prompts.jsonl", "--output", moved, "--config", job) == 0
    assert counting_provider.submits == submits
    assert all(r["reused"] for r in read_table(moved).to_pylist())


def test_the_printed_query_runs_as_printed(tmp_path, capsys):
    job = image_job(tmp_path, [{"name": "main", "provider": "mock", "model": "mock-image"}])
    output = tmp_path / "out"
    assert run_pipeline("--input", prompts(tmp_path, 2), "--output", output, "--config", job) == 0
    printed = capsys.readouterr().out.splitlines()
    queries = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in printed
               if line.startswith(("  query:", "  duckdb:"))}
    assert set(queries) == {"query", "duckdb"}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", "-c", queries["query"]], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and all("'status': 'completed'" in line and "'media_uris': ['media/image/" in line
                                   for line in lines)
    assert "pip install duckdb" in queries["duckdb"]
    try:
        import duckdb  # noqa: F401  (not a dependency: the line says how to get it)
    except ImportError:
        return
    done = subprocess.run(["bash", "-c", queries["duckdb"]], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "completed" in done.stdout, done.stderr


def fal_job(tmp_path: Path, emulator) -> Path:
    return image_job(tmp_path, [{
        "name": "fal", "provider": "fal", "model": "fal-ai/flux/dev", "api_key_env": "FAL_KEY",
        "base_url": emulator.url_for("fal"), "poll_interval": 0, "max_poll_attempts": 1000,
        "fallback_configs": [{"provider": "mock", "model": "mock-image"}],
    }])


def test_placeholders_are_flagged_then_replaced_once_the_provider_can_serve(tmp_path, emulator, monkeypatch, capsys):
    job, rows, output = fal_job(tmp_path, emulator), prompts(tmp_path, 2), tmp_path / "out"
    monkeypatch.delenv("FAL_KEY", raising=False)
    assert run_pipeline("--input", rows, "--output", output, "--config", job) in (0, 3)
    first = read_table(output).to_pylist()
    assert {(r["status"], r["provider"], r["is_mock"], r["placeholder"]) for r in first} == {
        ("completed", "mock", True, True)}
    assert "PLACEHOLDERS: 2 row(s)" in capsys.readouterr().out
    assert len(emulator.requests_for("fal.submit")) == 0

    monkeypatch.setenv("FAL_KEY", emulator.key_for("fal"))
    assert run_pipeline("--input", rows, "--output", output, "--config", job, "--dry_run") == 0
    (plan,) = [json.loads(p.read_text()) for p in (output / "_runs").glob("*.plan.json")]
    assert (plan["total"]["submit"], plan["total"]["reused"]) == (2, 0)  # the plan says they will be paid for
    assert run_pipeline("--input", rows, "--output", output, "--config", job) == 0
    assert len(emulator.requests_for("fal.submit")) == 2  # the provider made them: no placeholder reused
    second = read_table(output).to_pylist()
    assert {(r["status"], r["provider"], r["placeholder"], r["reused"]) for r in second} == {
        ("completed", "fal", False, False)}
    assert "PLACEHOLDERS" not in capsys.readouterr().out

    assert run_pipeline("--input", rows, "--output", output, "--config", job) == 0
    assert len(emulator.requests_for("fal.submit")) == 2  # the real results are reused
    assert all(r["reused"] for r in read_table(output).to_pylist())


def test_regenerate_all_redoes_everything_and_says_so(tmp_path, counting_provider, capsys):
    job = image_job(tmp_path, [{"name": "main", "provider": "counting", "model": "mock-image"}])
    rows, output = prompts(tmp_path, 3), tmp_path / "out"
    with rows.open("a") as extra:  # the same request as p0: one generation for both, in every run
        extra.write(json.dumps({"id": "again", "prompt": "picture 0", "size": "64x64", "seed": 0}) + "\n")
    assert run_pipeline("--input", rows, "--output", output, "--config", job) == 0
    assert run_pipeline("--input", rows, "--output", output, "--config", job) == 0
    assert counting_provider.submits == 3
    capsys.readouterr()
    assert run_pipeline("--input", rows, "--output", output, "--config", job, "--regenerate", "all") == 0
    assert counting_provider.submits == 6  # each request paid once more, the repeated one too
    err = capsys.readouterr().err
    assert "--regenerate all: every row is generated again and paid again" in err and "3 finished" in err
    table = {r["row_id"]: r for r in read_table(output).to_pylist()}
    assert [row_id for row_id, r in table.items() if r["reused"]] in (["again"], ["p0"])
    assert table["again"]["sha256"] == table["p0"]["sha256"]
    assert run_pipeline("--input", rows, "--output", output, "--config", job) == 0
    assert counting_provider.submits == 6  # the new results are reused


def test_regenerate_mock_redoes_what_the_mock_made(tmp_path, counting_provider, capsys):
    job = image_job(tmp_path, [{"name": "m", "provider": "mock", "model": "mock-image"}])
    rows, output = prompts(tmp_path, 2), tmp_path / "out"
    assert run_pipeline("--input", rows, "--output", output, "--config", job) == 0
    assert run_pipeline("--input", rows, "--output", output, "--config", job) == 0
    assert all(r["reused"] and not r["placeholder"] for r in read_table(output).to_pylist())
    assert run_pipeline("--input", rows, "--output", output, "--config", job, "--regenerate", "mock") == 0
    assert not any(r["reused"] for r in read_table(output).to_pylist())
    assert "--regenerate mock" in capsys.readouterr().err


def readme_queries() -> list[str]:
    """The ``python -c`` commands of the README's "Outputs and the results table" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Outputs and the results table", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("python -c ")]


def test_the_readme_queries_run_as_printed(tmp_path, counting_provider):
    job = image_job(tmp_path, [{"name": "main", "provider": "counting", "model": "mock-image"}])
    assert run_pipeline("--input", prompts(tmp_path, 2), "--output", tmp_path / "output", "--config", job) == 0
    queries = readme_queries()
    assert len(queries) == 4
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT)}
    try:
        import duckdb  # noqa: F401
    except ImportError:
        queries = [q for q in queries if "import duckdb" not in q]
    outputs = []
    for query in queries:
        done = subprocess.run(["bash", "-c", query], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (query, done.stderr)
        outputs.append(done.stdout)
    rows, counts, files = outputs[:3]
    assert rows.count("'status': 'completed'") == 2
    assert "{'status': 'completed', 'provider': 'counting', 'count_all': 2}" in counts
    listed = files.split()
    assert len(listed) == 2 and all(Path(tmp_path, path).is_file() for path in listed)
