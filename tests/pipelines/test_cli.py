"""The command line as a specification: every silent failure of issue #14 exits non-zero with
exactly one ``error:`` line on stderr (no traceback), and the exit codes a scheduler acts on.

Each case runs ``python -m pipelines.generate`` as a subprocess, as a user or cron would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.pipelines.conftest import mounted_tmpfs
from tests.pipelines.test_never_pay_twice import Scenario, stderr_of, wait_until

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None,
        prelude: str = "") -> subprocess.CompletedProcess:
    """``python -m pipelines.generate ARGS`` (``prelude``: Python run first, via a -c wrapper)."""
    argv = [str(a) for a in args]
    if prelude:
        command = [sys.executable, "-c", f"{prelude}\nimport sys\nfrom pipelines.generate import main\n"
                   "sys.exit(main(sys.argv[1:]))", *argv]
    else:
        command = [sys.executable, "-m", "pipelines.generate", *argv]
    return subprocess.run(command, cwd=cwd or ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed run, checked to be an ``error:`` line."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"a cat {i}", "size": "64x64"}) + "\n" for i in range(3)))
    return path


@pytest.fixture
def image_job(tmp_path: Path) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"modality": "image", "configs": [{"name": "m", "provider": "mock", "model": "mock-image"}]}))
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- usage errors: exit 2 before anything runs ---------------------------------------------


def test_a_typo_in_an_option_is_refused_with_a_suggestion_not_run_as_the_default_job(tmp_path, prompts):
    done = cli("--input", prompts, "--output", tmp_path / "out", "--confg", "job.yaml")
    assert done.returncode == 2
    assert one_error_line(done) == "error: unknown argument --confg; did you mean --config?"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("workers", ["0", "-3", "two"])
def test_workers_must_be_a_positive_whole_number(tmp_path, prompts, workers):
    done = cli("--input", prompts, "--output", tmp_path / "out", f"--workers={workers}")
    assert done.returncode == 2
    assert one_error_line(done) == f"error: argument --workers: must be a positive whole number, got '{workers}'"


def test_a_misspelt_provider_is_refused_at_load_with_file_field_and_suggestion(tmp_path, prompts):
    job = tmp_path / "job.yaml"
    job.write_text("modality: image\nconfigs:\n  - name: main\n    provider: fall\n    model: fal-ai/flux/dev\n")
    done = cli("--input", prompts, "--output", tmp_path / "out", "--config", job)
    assert done.returncode == 2
    line = one_error_line(done)
    assert f"{job}: configs[0].provider: unknown provider 'fall'; did you mean 'fal'?" in line


def test_missing_credentials_are_one_line_naming_the_variable(tmp_path, prompts):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"modality": "image", "configs": [
        {"name": "main", "provider": "fal", "model": "fal-ai/flux/dev", "api_key_env": "MEDIAGEN_TEST_NO_SUCH_KEY"}]}))
    done = cli("--input", prompts, "--output", tmp_path / "out", "--config", job)
    assert done.returncode == 2
    line = one_error_line(done)
    assert "$MEDIAGEN_TEST_NO_SUCH_KEY" in line and "not set" in line


# -- inputs ------------------------------------------------------------------------------------


def test_a_missing_input_is_one_line(tmp_path):
    done = cli("--input", tmp_path / "nothing-*.jsonl", "--output", tmp_path / "out")
    assert done.returncode == 2
    assert "matches no file" in one_error_line(done)


def test_a_txt_input_is_an_unsupported_format(tmp_path):
    text = tmp_path / "prompts.txt"
    text.write_text("a cat\n")
    done = cli("--input", text, "--output", tmp_path / "out")
    assert done.returncode == 2
    line = one_error_line(done)
    assert "prompts.txt" in line and "not a supported format" in line and "--input_format" in line


def test_an_unreachable_object_store_is_one_line_naming_the_endpoint(tmp_path):
    port = closed_port()
    done = cli("--input", "gs://bucket/prompts.jsonl", "--output", tmp_path / "out",
               "--storage_options", json.dumps({"endpoint_url": f"http://127.0.0.1:{port}"}))
    assert done.returncode == 2
    line = one_error_line(done)
    assert f"cannot reach http://127.0.0.1:{port}" in line and "gs://bucket/prompts.jsonl" in line


def test_s3_without_s3fs_names_the_extra_to_install(tmp_path):
    done = cli("--input", "s3://bucket/prompts.jsonl", "--output", tmp_path / "out",
               prelude="import sys; sys.modules['s3fs'] = None  # as if s3fs were not installed")
    assert done.returncode == 2
    assert "pip install 'mediagen[s3]'" in one_error_line(done)


# -- outputs -----------------------------------------------------------------------------------


def test_an_output_that_is_a_file_is_one_line(tmp_path, prompts):
    (tmp_path / "out").write_text("not a folder")
    done = cli("--input", prompts, "--output", tmp_path / "out")
    assert done.returncode == 2
    assert "is a file" in one_error_line(done)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs mounted for the test (skipped where this machine cannot mount: not root)."""
    with mounted_tmpfs(tmp_path / "tiny", "64k") as mount:
        yield mount


def test_a_read_only_output_is_one_line(tmp_path, prompts, tiny_tmpfs):
    # chmod does not stop root: a read-only mount does.
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    done = cli("--input", prompts, "--output", tiny_tmpfs / "out")
    assert done.returncode == 2
    line = one_error_line(done)
    assert "not writable" in line and "Read-only file system" in line


def test_a_full_disk_is_one_line(tmp_path, prompts, image_job, tiny_tmpfs):
    (tiny_tmpfs / "filler").write_bytes(b"\0" * 40 * 1024)
    done = cli("--input", prompts, "--output", tiny_tmpfs / "out", "--config", image_job)
    assert done.returncode == 2
    line = one_error_line(done)
    assert "free" in line or "No space left" in line


# -- exit codes of finished runs ---------------------------------------------------------------


def unservable_job(path: Path, port: int) -> Path:
    """fal at a closed port: every row fails with ProviderConnectionError."""
    path.write_text(json.dumps({"modality": "image", "retry": {"max_retries": 0}, "configs": [
        {"name": "fal", "provider": "fal", "model": "fal-ai/flux/dev", "api_key_env": "FAL_KEY",
         "base_url": f"http://127.0.0.1:{port}"}]}))
    return path


def test_a_run_whose_rows_all_fail_exits_3(tmp_path, prompts):
    job = unservable_job(tmp_path / "job.json", closed_port())
    done = cli("--input", prompts, "--output", tmp_path / "out", "--config", job, "--no-progress",
               env={"FAL_KEY": "test-key-0123456789"})
    assert done.returncode == 3, done.stderr[-3000:]
    assert "failed=3" in done.stdout
    assert "exit 3: 3 of 3 valid row(s) failed" in done.stderr and "Traceback" not in done.stderr


def test_invalid_rows_cost_only_themselves_unless_no_row_is_valid(tmp_path, image_job):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "a", "prompt": "a", "size": "64x64"}, {"id": "b", "prompt": "b", "size": "64x64"}, {"id": "bad"}]))
    mixed = cli("--input", prompts, "--output", tmp_path / "out", "--config", image_job, "--no-progress")
    assert mixed.returncode == 0, mixed.stderr[-3000:]
    assert "completed=2" in mixed.stdout and "invalid=1" in mixed.stdout
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text(json.dumps({"id": "bad"}) + "\n")
    nothing = cli("--input", only_bad, "--output", tmp_path / "out2", "--config", image_job, "--no-progress")
    assert nothing.returncode == 3, nothing.stderr[-3000:]
    assert "exit 3: all 1 row(s) were invalid" in nothing.stderr


def test_help_lists_mediagen_and_beam_options():
    done = cli("--help")
    assert done.returncode == 0
    for option in ("--input", "--max_failed_fraction", "--verbose", "--runner", "--project", "--sdk_container_image"):
        assert option in done.stdout
    assert "Exit codes" in done.stdout


def test_mediagen_options_are_pipeline_options():
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.options import MediagenOptions, beam_flags

    argv = ["--input", "gs://b/p.jsonl", "--output", "gs://b/out", "--strict_ids=true", "--workers", "4",
            "--dry_run=false", "--runner", "DataflowRunner"]
    options = PipelineOptions(beam_flags(argv))
    shown = options.get_all_options(drop_default=True)
    assert shown["input"] == "gs://b/p.jsonl" and shown["workers"] == 4 and shown["strict_ids"] is True
    assert "dry_run" not in shown, "mediagen's --dry_run must not reach Beam's TestOptions.dry_run"
    assert options.view_as(MediagenOptions).output == "gs://b/out"


# -- Ctrl-C ------------------------------------------------------------------------------------


def recorded_jobs(output: Path) -> int:
    """Claims under ``output/_ledger`` holding a provider job id (the submit's answer was recorded)."""
    count = 0
    for claim in (output / "_ledger").rglob("claim-*.json"):
        try:
            count += json.loads(claim.read_text()).get("job") is not None
        except (OSError, ValueError):
            pass  # being replaced right now: counted at the next look
    return count


def test_ctrl_c_stops_says_what_is_recorded_and_a_rerun_pays_nothing_twice(emulator, tmp_path):
    emulator.job_duration = 5.0  # jobs still in flight at the interrupt
    run = Scenario(tmp_path, emulator, rows=6, window=2)
    process = run.start()
    wait_until(lambda: recorded_jobs(Path(run.output)) >= 1, "a job id was recorded in the ledger", process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    stderr = stderr_of(process)
    assert "Traceback" not in stderr
    message = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert len(message) == 1, stderr
    assert "provider job(s) are recorded in" in message[0] and "without paying again" in message[0]
    recorded = int(message[0].split("; ")[1].split(" provider")[0])
    assert 1 <= recorded <= emulator.count("fal.submit")

    emulator.job_duration = 0.1
    rerun = run.run(expect_ok=False)
    assert rerun.returncode in (0, 3), rerun.stderr[-3000:]
    submits = Counter(r.json["prompt"] for r in emulator.requests_for("fal.submit"))
    assert max(submits.values()) == 1, submits
    assert len(run.rows_by_id()) == run.rows


# -- pieces: unwrapping Beam's errors, the job id of --no-wait, run_status ---------------------


def test_an_error_wrapped_by_beam_is_unwrapped_to_its_root_cause_line():
    from pipelines.errors import EXIT_UNEXPECTED, EXIT_USAGE, explain

    wrapped = RuntimeError(
        "Traceback (most recent call last):\n  File \"apache_beam/runners/common.py\", line 1569, in x\n"
        "OSError: [Errno 28] No space left on device [while running 'WriteResults/WriteShards']")
    code, message = explain(wrapped)
    assert code == EXIT_UNEXPECTED and message.startswith("no space left on the device") and "rerun" in message
    secret = RuntimeError("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                          "transforms.secrets.KeyResolutionError: cannot read secret projects/p/secrets/s: PermissionDenied")
    code, message = explain(secret)
    assert code == EXIT_USAGE and message.startswith("cannot read secret projects/p/secrets/s: PermissionDenied")
    code, message = explain(ZeroDivisionError("division by zero"))
    assert code == EXIT_UNEXPECTED and message == "ZeroDivisionError: division by zero (unexpected; rerun with --verbose for the traceback)"


def test_no_wait_reports_the_job_id_and_console_url(capsys):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.generate import print_summary, remote_job

    class Submitted:
        def job_id(self):
            return "2026-12-01_02_00_00-123"

    options = PipelineOptions(["--project", "my-project", "--region", "us-central1"])
    found = remote_job(Submitted(), options)
    assert found == {"job_id": "2026-12-01_02_00_00-123", "console_url":
                     "https://console.cloud.google.com/dataflow/jobs/us-central1/2026-12-01_02_00_00-123?project=my-project"}
    print_summary({"run_id": "r", "output": "gs://b/out", "submitted": True, **found})
    out = capsys.readouterr().out
    assert "job id:  2026-12-01_02_00_00-123" in out and found["console_url"] in out
    assert remote_job(object(), options) == {}


def test_run_status_exits_like_the_run(tmp_path):
    from pipelines.run_status import main

    runs = tmp_path / "_runs"
    runs.mkdir()
    (runs / "ok.json").write_text(json.dumps({"rows": 4, "counts_by_status": {"completed": 4}}))
    (runs / "bad.json").write_text(json.dumps({"rows": 4, "counts_by_status": {"completed": 3, "failed": 1}}))
    assert main([str(tmp_path), "ok"]) == 0
    assert main([str(tmp_path), "bad"]) == 3
    assert main([str(tmp_path), "bad", "--max_failed_fraction", "0.34"]) == 0
    assert main([str(tmp_path), "missing"]) == 2
