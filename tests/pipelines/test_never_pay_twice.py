"""Never pay twice, tested where it breaks: the real CLI as subprocesses against the provider
emulator (fal's queue API), with submissions counted per prompt at the provider.

In every case each input row appears exactly once in the final table, and no prompt is
accepted by the provider twice unless the user asked for it with ``--resubmit_uncertain``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from tests.emulator import Fault, ProviderEmulator
from tests.pipelines.conftest import mounted_tmpfs
from tests.transforms.conftest import start_fake_gcs, start_moto_s3

ROOT = Path(__file__).resolve().parents[2]
MODEL = "fal-ai/flux/dev"


class Scenario:
    """A prompt file, a job file and an output root, run through the CLI against the emulator."""

    def __init__(self, tmp_path: Path, emulator: ProviderEmulator, rows: int = 6, output: str | None = None,
                 storage_options: dict[str, Any] | None = None, **config: Any) -> None:
        self.tmp_path = tmp_path
        self.emulator = emulator
        self.rows = rows
        self.input = tmp_path / "prompts.jsonl"
        self.output = output or str(tmp_path / "out")
        self.storage_options = storage_options
        self.job_file = tmp_path / "job.json"
        self.write_prompts([{"id": f"r{i}", "prompt": f"prompt {i}", "size": "64x64"} for i in range(rows)])
        self.write_job(**config)

    def write_prompts(self, rows: list[dict[str, Any]], path: Path | None = None) -> None:
        (path or self.input).parent.mkdir(parents=True, exist_ok=True)
        (path or self.input).write_text("".join(json.dumps(r) + "\n" for r in rows))

    def write_job(self, fallback: bool = False, window: int = 4, **config: Any) -> None:
        entry = {"name": "fal", "provider": "fal", "model": MODEL, "api_key_env": "FAL_KEY",
                 "base_url": self.emulator.url_for("fal"), "poll_interval": 0, "max_poll_attempts": 1000, **config}
        if fallback:
            entry["fallback_configs"] = [{"provider": "mock", "model": "mock-image"}]
        job = {"modality": "image", "configs": [entry], "window": {"max_in_flight": window, "threads": 4},
               "retry": {"max_retries": 2, "base_delay": 0.01, "max_delay": 0.05}}
        self.job_file.write_text(json.dumps(job))

    def command(self, *extra: str, input_path: str | None = None) -> list[str]:
        command = [sys.executable, "-m", "pipelines.generate", "--input", input_path or str(self.input),
                   "--output", self.output, "--config", str(self.job_file), "--no-progress", "--lease_seconds", "5",
                   "--max_failed_fraction=1", *extra]  # rows' outcomes are read from the table
        if self.storage_options:
            command += ["--storage_options", json.dumps(self.storage_options)]
        return command

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "FAL_KEY": self.emulator.key_for("fal"), "PYTHONPATH": str(ROOT)}

    def run(self, *extra: str, input_path: str | None = None, expect_ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(self.command(*extra, input_path=input_path), cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=300)
        if expect_ok:
            assert done.returncode == 0, done.stderr[-3000:]
        return done

    def start(self, *extra: str) -> subprocess.Popen:
        # stderr goes to a file: a pipe nobody reads until the end would fill up and block the run.
        log = open(self.tmp_path / f"stderr-{len(list(self.tmp_path.glob('stderr-*')))}.txt", "w+")
        process = subprocess.Popen(self.command(*extra), cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        process.log = log  # type: ignore[attr-defined]
        return process

    def table(self) -> list[dict[str, Any]]:
        import fsspec

        # A fresh filesystem: a cached one remembers the replaced table's old ETag.
        fs, path = fsspec.core.url_to_fs(self.output, skip_instance_cache=True, **(self.storage_options or {}))
        dataset = ds.dataset(f"{path}/results", filesystem=fs if self.storage_options else None, format="parquet")
        return dataset.to_table(columns=["row_id", "status", "provider", "error_type", "error_message"]).to_pylist()

    def rows_by_id(self) -> dict[str, dict[str, Any]]:
        table = self.table()
        ids = [r["row_id"] for r in table]
        assert sorted(ids) == sorted(f"r{i}" for i in range(self.rows)), f"each row exactly once: {sorted(ids)}"
        return {r["row_id"]: r for r in table}

    def submits_per_prompt(self) -> Counter:
        return Counter(r.json["prompt"] for r in self.emulator.requests_for("fal.submit"))


def stderr_of(process: subprocess.Popen) -> str:
    process.log.seek(0)  # type: ignore[attr-defined]
    return process.log.read()[-3000:]  # type: ignore[attr-defined]


def wait_until(predicate, what: str, process: subprocess.Popen | None = None, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {stderr_of(process)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def object_store_root(kind: str, tmp_path: Path) -> tuple[str | None, dict[str, Any] | None]:
    if kind == "local":
        return None, None
    store = start_moto_s3() if kind == "s3" else start_fake_gcs()
    return store.fresh_root("npt"), store.storage_options


# -- crashes ------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["local", "s3", "gcs"])
def test_a_kill_inside_the_submit_to_record_gap_never_pays_twice(emulator, tmp_path, store):
    """The provider accepts a job but its answer is held back; the run is killed then. The
    rerun must not submit that prompt again: it ends as PossiblyPaidError until the user
    asks for --resubmit_uncertain."""
    output, options = object_store_root(store, tmp_path)
    emulator.job_duration = 0.5
    # One job in flight at a time: the held-back submit is the only claim when the kill comes.
    run = Scenario(tmp_path, emulator, output=output, storage_options=options, window=1)
    emulator.inject("fal.submit", Fault.answer_late(600))
    first = run.start()
    wait_until(lambda: len(emulator.jobs.all("fal")) >= 1, "the provider accepted the held-back job", first)
    kill(first)
    accepted = emulator.requests_for("fal.submit")[0].json["prompt"]

    run.run()
    assert set(run.submits_per_prompt().values()) == {1} and len(run.submits_per_prompt()) == run.rows
    rows = run.rows_by_id()
    uncertain = [r for r in rows.values() if r["status"] != "completed"]
    assert [(r["row_id"], r["error_type"]) for r in uncertain] == [(f"r{accepted.split()[-1]}", "PossiblyPaidError")]

    again = run.run("--resubmit_uncertain")
    assert "reused" in again.stdout
    assert run.submits_per_prompt()[accepted] == 2  # asked for, once
    assert sum(run.submits_per_prompt().values()) == run.rows + 1
    assert {r["status"] for r in run.rows_by_id().values()} == {"completed"}


@pytest.mark.parametrize("moment", ["first-claims", "some-recorded", "all-recorded"])
def test_a_kill_at_any_moment_then_a_rerun_pays_each_prompt_once(emulator, tmp_path, moment):
    emulator.job_duration = 1.0
    run = Scenario(tmp_path, emulator, rows=8)
    first = run.start()
    needed = {"first-claims": 1, "some-recorded": 4, "all-recorded": 8}[moment]
    wait_until(lambda: len(emulator.jobs.all("fal")) >= needed, f"{needed} jobs were accepted", first)
    kill(first)

    run.run()
    rows = run.rows_by_id()
    counts = run.submits_per_prompt()
    assert max(counts.values()) == 1, counts
    prompt_of = {f"r{i}": f"prompt {i}" for i in range(run.rows)}
    uncertain = {row_id for row_id, r in rows.items() if r["status"] != "completed"}
    # A completed row was paid exactly once. Any other row is PossiblyPaidError: the kill
    # fell between its claim and the record of its job, and a dead process cannot say
    # whether its request left (how far it got depends on timing, so both are allowed).
    assert all(counts[prompt_of[row_id]] == 1 for row_id in rows.keys() - uncertain)
    assert {rows[row_id]["error_type"] for row_id in uncertain} <= {"PossiblyPaidError"}
    # Only the claims open at the kill can be uncertain: at most the window of 4.
    assert len(uncertain) <= 4, uncertain
    assert {prompt_of[row_id] for row_id in uncertain} >= set(prompt_of.values()) - set(counts)

    # The way out is explicit, and pays again only for the uncertain rows.
    before = counts
    run.run("--resubmit_uncertain")
    after = run.submits_per_prompt()
    assert {r["status"] for r in run.rows_by_id().values()} == {"completed"}
    assert {prompt for prompt in after if after[prompt] != before.get(prompt, 0)} <= {prompt_of[r] for r in uncertain}
    assert max(after.values()) <= 2


@pytest.mark.parametrize("store", ["local", "s3", "gcs"])
def test_two_runs_at_once_on_one_output_pay_each_prompt_once(emulator, tmp_path, store):
    output, options = object_store_root(store, tmp_path)
    emulator.job_duration = 1.0
    run = Scenario(tmp_path, emulator, rows=10, output=output, storage_options=options)
    first, second = run.start(), run.start()
    for process in (first, second):
        assert process.wait(timeout=300) == 0, stderr_of(process)
    assert run.submits_per_prompt() == Counter({f"prompt {i}": 1 for i in range(run.rows)})
    assert {r["status"] for r in run.rows_by_id().values()} == {"completed"}


# -- storage that fails ---------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs mounted for the test (skipped where this machine cannot mount)."""
    with mounted_tmpfs(tmp_path / "small", "1m") as mount:
        yield mount


def test_a_read_only_output_fails_before_any_submit(emulator, tmp_path, small_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    run = Scenario(tmp_path, emulator, output=str(small_tmpfs / "out"))
    done = run.run(expect_ok=False)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --output") and "not writable" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert emulator.count("fal.submit") == 0


def test_a_full_disk_stops_submitting_and_a_rerun_pays_nothing_again(emulator, tmp_path, small_tmpfs):
    emulator.job_duration = 0.2
    # Each image is ~10 KB of PNG; 1 MiB fills up part way through 300 rows.
    run = Scenario(tmp_path, emulator, rows=300, output=str(small_tmpfs / "out"), window=8)
    run.run(expect_ok=False)
    first = run.submits_per_prompt()
    assert max(first.values()) == 1 and sum(first.values()) < run.rows  # submitting stopped
    leftovers = [p for p in small_tmpfs.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    run.run()
    counts = run.submits_per_prompt()
    assert max(counts.values()) == 1, [p for p, n in counts.items() if n > 1][:5]
    rows = run.rows_by_id()
    assert {r["error_type"] for r in rows.values() if r["status"] != "completed"} <= {"PossiblyPaidError"}


# -- the provider misbehaves ---------------------------------------------------------------


def test_a_job_that_never_finishes_is_cancelled_not_resubmitted(emulator, tmp_path):
    run = Scenario(tmp_path, emulator, rows=1, timeout=2)
    emulator.inject("fal.submit", Fault.slow_job(10_000))
    run.run()
    row = run.rows_by_id()["r0"]
    assert row["status"] == "failed" and row["error_type"] == "GenerationTimeoutError"
    assert "cancelled" in row["error_message"]
    assert emulator.count("fal.submit") == 1 and emulator.count("fal.cancel") == 1


def test_a_status_endpoint_that_fails_many_times_is_followed_not_resubmitted(emulator, tmp_path):
    emulator.job_duration = 0.2
    run = Scenario(tmp_path, emulator, rows=1)
    emulator.inject("fal.status", Fault.http(503, {"detail": "unavailable"}), times=7)
    run.run()
    assert run.rows_by_id()["r0"]["status"] == "completed"
    assert emulator.count("fal.submit") == 1 and emulator.count("fal.status") >= 8


def test_a_lost_submit_answer_is_possibly_paid_until_resubmitted_on_request(emulator, tmp_path):
    run = Scenario(tmp_path, emulator, rows=1)
    emulator.inject("fal.submit", Fault.lose_answer())
    run.run()
    row = run.rows_by_id()["r0"]
    assert row["error_type"] == "PossiblyPaidError" and emulator.count("fal.submit") == 1
    assert "--resubmit_uncertain" in run.run().stdout  # the summary says how to pay again
    assert emulator.count("fal.submit") == 1
    run.run("--resubmit_uncertain")
    assert run.rows_by_id()["r0"]["status"] == "completed" and emulator.count("fal.submit") == 2


# -- what counts as the same output -------------------------------------------------------


def test_an_output_root_inside_the_input_folder_is_never_read_as_prompts(emulator, tmp_path):
    data = tmp_path / "data"
    run = Scenario(tmp_path, emulator, rows=5, output=str(data / "out"))
    run.write_prompts([{"id": f"r{i}", "prompt": f"prompt {i}", "size": "64x64"} for i in range(5)], data / "p.jsonl")
    for _ in range(3):
        done = run.run(input_path=str(data))
    assert "left out" in done.stderr
    assert len(run.rows_by_id()) == 5 and emulator.count("fal.submit") == 5


def test_adding_a_fallback_pays_for_nothing_again(emulator, tmp_path):
    run = Scenario(tmp_path, emulator, rows=4)
    run.run()
    run.write_job(fallback=True)
    done = run.run()
    assert emulator.count("fal.submit") == 4
    assert "reused from earlier runs or duplicate rows: 4" in done.stdout


def test_changing_the_endpoint_makes_new_media(emulator, tmp_path):
    run = Scenario(tmp_path, emulator, rows=3)
    run.run()
    run.write_job(base_url=emulator.url_for("fal").replace("127.0.0.1", "localhost"))
    run.run()
    assert run.submits_per_prompt() == Counter({f"prompt {i}": 2 for i in range(3)})
