"""The batch pipeline end to end on the DirectRunner: one row per input row, statuses,
fallbacks, real media matching the table, reuse without provider calls, no secrets."""

import io
import json
import logging
import re

import av
import pyarrow.parquet as pq
import pytest
from PIL import Image

from schemas.results import RESULTS_SCHEMA
from schemas.results import resolve_media_uri
from tests.pipelines.conftest import manifest, read_table, rows_by_id, run_pipeline, write_job, write_jsonl

SECRET = "sk-test-DO-NOT-LEAK-9f8e7d"


def video_rows():
    return [
        {"id": "wide", "prompt": "a fox in snow", "resolution": "360p", "aspect_ratio": "16:9", "duration_seconds": 2},
        {"id": "tall", "prompt": "a heron", "resolution": "480p", "aspect_ratio": "9:16", "duration_seconds": 1},
        {"id": "square", "prompt": "a kite", "resolution": "360p", "aspect_ratio": "1:1", "duration_seconds": 1, "camera": "orbit"},
        {"id": "flaky", "prompt": "falls back", "resolution": "360p", "duration_seconds": 1, "config": "flaky"},
        {"id": "doomed", "prompt": "always fails", "resolution": "360p", "duration_seconds": 1, "config": "doomed"},
        {"id": "bad-enum", "prompt": "x", "resolution": "8k"},
        {"id": "no-prompt", "duration_seconds": 3},
        '{"id": "broken json", ',
        {"id": "bad-config", "prompt": "x", "config": "nope"},
    ]


def video_job():
    return {
        "modality": "video",
        "configs": [
            {"name": "main", "provider": "counting", "model": "mock-video", "api_key_env": "MEDIAGEN_TEST_KEY"},
            {
                "name": "flaky",
                "provider": "leaky",
                "model": "leaky-1",
                "api_key_env": "MEDIAGEN_TEST_KEY",
                "fallback_configs": [{"provider": "backup", "model": "backup-video", "mock": {"enabled": True}}],
            },
            {
                "name": "doomed",
                "provider": "acme",
                "model": "acme-video",
                "mock": {"responses": [{"error": "moderation", "error_message": "prompt refused"}]},
            },
        ],
        "retry": {"max_retries": 1, "base_delay": 0.01},
    }


class LeakyProvider:
    """A careless custom provider whose errors echo the API key it was given."""

    def generate_video(self, config, request, on_progress=None):
        from providers.errors import ProviderHTTPError

        raise ProviderHTTPError(f"upstream broke near {config.api_key}", status_code=502)


@pytest.fixture
def video_run(tmp_path, monkeypatch, counting_provider, caplog):
    from providers import register_provider

    register_provider("leaky", LeakyProvider())
    monkeypatch.setenv("MEDIAGEN_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", video_rows())
    job = write_job(tmp_path / "job.yaml", video_job())
    output = tmp_path / "out"
    assert run_pipeline("--input", prompts, "--output", output, "--config", job) == 0
    return output, counting_provider, caplog


def test_one_row_per_input_row_with_the_declared_schema(video_run):
    output, _, _ = video_run
    table = read_table(output)
    assert table.schema.equals(RESULTS_SCHEMA, check_metadata=False)
    ids = table.column("row_id").to_pylist()
    assert len(ids) == len(video_rows()) == len(set(ids))


def test_statuses_for_valid_invalid_and_failing_rows(video_run):
    rows = rows_by_id(video_run[0])
    statuses = {row_id: row["status"] for row_id, row in rows.items()}
    assert statuses["wide"] == statuses["tall"] == statuses["square"] == statuses["flaky"] == "completed"
    assert statuses["doomed"] == "failed"
    invalid = {r: row for r, row in rows.items() if row["status"] == "invalid"}
    assert {"bad-enum", "no-prompt", "bad-config"} <= set(invalid) and len(invalid) == 4
    assert "resolution" in rows["bad-enum"]["error_message"] and "'8k'" in rows["bad-enum"]["error_message"]
    assert "prompts.jsonl:7" in rows["no-prompt"]["error_message"] and "prompt" in rows["no-prompt"]["error_message"]
    assert "not valid JSON" in next(r for r in invalid.values() if r["row_id"] not in rows or "JSON" in (r["error_message"] or ""))["error_message"]
    assert "'nope'" in rows["bad-config"]["error_message"] and "main, flaky, doomed" in rows["bad-config"]["error_message"]
    assert rows["doomed"]["error_type"] == "ContentModerationError" and rows["doomed"]["error_message"] == "prompt refused"


def test_fallback_is_recorded_in_attempts(video_run):
    row = rows_by_id(video_run[0])["flaky"]
    assert row["provider"] == "backup" and row["fallback_triggered"] is True
    attempts = [(a["provider"], a["try_number"], a["status"], a["error_type"]) for a in row["attempts"]]
    assert attempts == [("leaky", 1, "failed", "ProviderHTTPError"), ("leaky", 2, "failed", "ProviderHTTPError"), ("backup", 1, "success", None)]
    assert row["total_attempts"] == 3 and row["successful_attempt"] == 3
    assert all(a["started_at"].tzinfo is not None and a["elapsed_seconds"] >= 0 for a in row["attempts"])


def test_media_exists_decodes_and_matches_the_table(video_run):
    rows = rows_by_id(video_run[0])
    expected = {"wide": (640, 360, 2), "tall": (480, 854, 1), "square": (360, 360, 1)}
    for row_id, (width, height, seconds) in expected.items():
        row = rows[row_id]
        assert re.fullmatch(r"media/video/[0-9a-f]{32}\.mp4", row["media_uris"][0])  # the output key names it
        with av.open(resolve_media_uri(row["media_uris"][0], str(video_run[0]))) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.width, stream.height) == ("h264", width, height)
        assert (row["width"], row["height"]) == (width, height)
        assert abs(row["duration_seconds"] - seconds) < 0.1 and row["content_type"] == "video/mp4"
        assert row["bytes"] > 1000 and len(row["sha256"]) == 64 and row["is_mock"] is True


def test_extra_columns_land_in_extra_params(video_run):
    request = json.loads(rows_by_id(video_run[0])["square"]["request_json"])
    assert request["extra_params"] == {"camera": "orbit"}


def test_no_api_key_in_table_manifest_or_logs(video_run):
    output, _, caplog = video_run
    for path in output.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text
    flaky_error = rows_by_id(output)["flaky"]["attempts"][0]["error_message"]
    assert flaky_error == "upstream broke near ***"


def test_manifest_counts_and_redacted_config(video_run):
    output, _, _ = video_run
    run = manifest(output)
    assert run["rows"] == 9 and run["counts_by_status"] == {"completed": 4, "failed": 1, "invalid": 4}
    assert run["completed_by_provider_model"] == {"counting/mock-video": 3, "backup/backup-video": 1}
    assert run["job"]["configs"][0]["api_key_env"] == "MEDIAGEN_TEST_KEY"


def test_second_run_calls_no_provider_and_reuses_every_row(video_run, counting_provider):
    output, provider, _ = video_run
    first_submits = provider.submits
    assert first_submits == 3
    prompts = output.parent / "prompts.jsonl"
    job = output.parent / "job.yaml"
    assert run_pipeline("--input", prompts, "--output", output, "--config", job) == 0
    assert provider.submits == first_submits
    rows = rows_by_id(output)
    assert len(rows) == 9 and len(list((output / "results").glob("*.parquet"))) == 1
    for row_id in ("wide", "tall", "square", "flaky"):
        assert rows[row_id]["status"] == "completed" and rows[row_id]["reused"] is True
        assert rows[row_id]["total_attempts"] == 0
    assert rows["flaky"]["provider"] == "backup"
    assert rows["doomed"]["status"] == "failed"
    run = manifest(output)
    assert run["counts_by_status"] == {"completed": 4, "failed": 1, "invalid": 4} and run["reused"] == 4


def test_duplicate_requests_in_one_run_are_paid_once(tmp_path, counting_provider):
    row = {"prompt": "the same fox", "resolution": "360p", "duration_seconds": 1}
    prompts = write_jsonl(tmp_path / "dup.jsonl", [{**row, "id": "a"}, {**row, "id": "b"}, {**row, "id": "c"}])
    job = write_job(tmp_path / "job.yaml", {"modality": "video", "configs": [{"name": "m", "provider": "counting", "model": "x"}]})
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0
    rows = rows_by_id(tmp_path / "out")
    assert counting_provider.submits == 1
    assert sorted(r["reused"] for r in rows.values()) == [False, True, True]
    assert len({r["media_uris"][0] for r in rows.values()}) == 1


def test_parquet_input_and_memory_output(tmp_path):
    import pyarrow as pa

    table = pa.table({"id": ["p1", "p2", "p3"], "prompt": ["a cat", "a dog", None], "size": ["64x64", "96x64", "64x64"]})
    pq.write_table(table, tmp_path / "prompts.parquet")
    job = write_job(tmp_path / "job.yaml", {"modality": "image", "configs": [{"name": "m", "provider": "mock", "model": "mock-image"}]})
    output = "memory://mediagen-test/out"
    assert run_pipeline("--input", tmp_path / "prompts.parquet", "--output", output, "--config", job) == 0
    import fsspec

    fs = fsspec.filesystem("memory")
    parts = fs.glob("/mediagen-test/out/results/*.parquet")
    rows = {r["row_id"]: r for r in pq.read_table(fs.open(parts[0])).to_pylist()}
    assert rows["p1"]["status"] == rows["p2"]["status"] == "completed" and rows["p3"]["status"] == "invalid"
    assert "row 3" in rows["p3"]["error_message"] and "prompt" in rows["p3"]["error_message"]
    uri = resolve_media_uri(rows["p2"]["media_uris"][0], output)
    image = Image.open(io.BytesIO(fs.cat(uri)))
    assert image.size == (96, 64) and (rows["p2"]["width"], rows["p2"]["height"]) == (96, 64)
    assert rows["p2"]["media_uris"][0].startswith("media/image/")  # relative to the output root


def test_tts_rows_make_playable_audio_with_measured_duration(tmp_path):
    prompts = write_jsonl(tmp_path / "texts.jsonl", [
        {"id": "hello", "text": "Hello there, welcome to the show.", "voice_id": "narrator"},
        {"id": "wav", "text": "A second line, spoken as wav.", "output_format": {"format": "wav", "sample_rate": 24000}},
        {"id": "empty", "text": "   "},
    ])
    job = write_job(tmp_path / "job.yaml", {"modality": "tts", "configs": [{"name": "m", "provider": "elevenlabs", "model": "eleven_multilingual_v2", "mock": {},
                 "provider_config": {"voice_id": "narrator"}}]})  # mocked configs run ElevenLabs' own checks: a voice is needed
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0
    rows = rows_by_id(tmp_path / "out")
    assert rows["empty"]["status"] == "invalid"
    for row_id, codec, rate in (("hello", "mp3", 44100), ("wav", "pcm_s16le", 24000)):
        row = rows[row_id]
        with av.open(resolve_media_uri(row["media_uris"][0], str(tmp_path / "out"))) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.name.startswith(codec) and stream.codec_context.sample_rate == rate
        assert row["duration_seconds"] > 1 and row["prompt"].startswith(("Hello", "A second"))
    assert rows["wav"]["media_uris"][0].endswith(".wav") and rows["hello"]["media_uris"][0].endswith(".mp3")


def test_sts_rows_read_input_audio_by_path(tmp_path):
    from providers.media.synthesis import make_audio

    clip = make_audio("source speech for conversion", audio_format="wav", duration_seconds=2.0)
    (tmp_path / "voice.wav").write_bytes(clip.data)
    prompts = write_jsonl(tmp_path / "clips.jsonl", [
        {"id": "by-path", "audio": str(tmp_path / "voice.wav"), "voice_id": "v1"},
        {"id": "missing-voice", "audio": str(tmp_path / "voice.wav")},
    ])
    job = write_job(tmp_path / "job.yaml", {"modality": "sts", "inputs": {"media_roots": [str(tmp_path)]},  # paths need a root
                                            "configs": [{"name": "m", "provider": "elevenlabs", "model": "sts", "mock": {}}]})
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0
    rows = rows_by_id(tmp_path / "out")
    assert rows["missing-voice"]["status"] == "invalid" and "voice_id" in rows["missing-voice"]["error_message"]
    assert rows["by-path"]["status"] == "completed" and abs(rows["by-path"]["duration_seconds"] - 2.0) < 0.1


def test_cli_help_documents_the_options(capsys):
    from pipelines.generate import build_parser

    text = build_parser().format_help()
    for option in ("--input", "--output", "--config", "--input_format", "--results_mode", "--runner"):
        assert option in text


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert run_pipeline("--input", tmp_path / "nothing-*.jsonl", "--output", tmp_path / "out") == 2
    assert "matches no file" in capsys.readouterr().err


def test_progress_bar_counts_rows_by_outcome(tmp_path, capfd):
    from pipelines.generate import main

    prompts = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "a", "prompt": "a", "size": "64x64"}, {"id": "b", "prompt": "b", "size": "64x64"}, {"id": "c"}])
    job = write_job(tmp_path / "job.yaml", {"modality": "image", "configs": [{"name": "m", "provider": "mock", "model": "m"}]})
    assert main(["--input", str(prompts), "--output", str(tmp_path / "out"), "--config", str(job), "--progress"]) == 0  # an invalid row costs only itself
    err = capfd.readouterr().err  # not a terminal: plain lines (tests/transforms/test_progress.py has the bar)
    final = [line for line in err.splitlines() if line.startswith("mediagen done")][-1]
    assert "3/3 rows (100%): ok 2, reused 0, failed 0, invalid 1;" in final and "mock 0 in flight" in final


def test_beam_metrics_count_rows_by_provider_and_status(tmp_path):
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    from pipelines.generate import build_parser
    from pipelines.graph import build_graph
    from pipelines.job_file import parse_job

    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"m{i}", "prompt": f"metric {i}", "size": "64x64"} for i in range(3)])
    job = parse_job({"modality": "image", "configs": [{"name": "m", "provider": "mock", "model": "mock-image"}]})
    args = build_parser().parse_args(["--input", str(prompts), "--output", str(tmp_path / "out")])
    pipeline = beam.Pipeline(runner="DirectRunner")
    build_graph(pipeline, args, job, [str(prompts)], "metrics-run", None)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter().with_namespace("mediagen"))["counters"]}
    assert counters["rows_completed"] == 3 and counters["mock/mock-image/completed"] == 3
    (latency,) = result.metrics().query(MetricsFilter().with_name("generation_ms"))["distributions"]
    assert latency.committed.count == 3
