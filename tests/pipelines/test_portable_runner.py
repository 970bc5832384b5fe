"""The pipeline on Beam's portable job service with an external pool of SDK worker processes.

This is the contract Flink, Spark and Dataflow Runner v2 hold a pipeline to: the CLI only
builds the graph and submits it (``--runner=PortableRunner``) to a job service; the job
service asks a worker pool (``apache_beam.runners.worker.worker_pool_main``) for SDK
harness processes, and every DoFn, the job config and the options reach those processes
pickled over the Fn API. Nothing of the CLI's process is shared with them.

One thing is adjusted in the job service: Beam's Python ``local_job_service`` runs a job's
stages on ONE worker per environment whatever the options say (its ``FnApiRunner`` reads
``--direct_num_workers`` only on the in-process path, not in ``run_via_runner_api``), so
``JOB_SERVICE`` below makes it honour ``--direct_num_workers`` as the in-process runner
does: it then starts two SDK workers from the pool and splits every stage's input between
them. Everything else is Beam's own code.

Run against the provider emulator (fal's queue API), with submissions counted per prompt.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Iterator

import pytest

from tests.emulator import Job, ProviderEmulator
from tests.pipelines.test_never_pay_twice import ROOT, Scenario, stderr_of, wait_until

READY_SECONDS = 120.0
"""Start-up of a job service or worker pool: imports of Beam on 2 loaded cores."""
RUN_SECONDS = 300.0
"""Until run 1 has jobs in flight: the CLI, the job service and two SDK workers start first."""

JOB_SERVICE = """
import sys
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.runners.portability import local_job_service_main
from apache_beam.runners.portability.fn_api_runner import fn_runner

original = fn_runner.FnApiRunner.run_via_runner_api

def run_via_runner_api(self, pipeline_proto, options):
    # Honour --direct_num_workers here as FnApiRunner.run_pipeline does in process.
    self._num_workers = int(options.view_as(DirectOptions).direct_num_workers or 1)
    return original(self, pipeline_proto, options)

fn_runner.FnApiRunner.run_via_runner_api = run_via_runner_api
import logging
logging.basicConfig(level=logging.INFO)
local_job_service_main.run(sys.argv[1:])
"""

WORKER_POOL = """
import logging, sys
logging.basicConfig(level=logging.INFO)
from apache_beam.runners.worker import worker_pool_main
worker_pool_main.main(sys.argv)
"""

POOL_READY = re.compile(r"Started worker pool servicer at port: (\S+:\d+)")


class PortableCluster:
    """A job service and an external worker pool, each in its own process group (the pool's
    SDK workers are its children, so stopping the group stops them too), on free ports."""

    def __init__(self, workdir: Path, worker_env: dict[str, str]) -> None:
        self.workdir = workdir
        self.worker_env = worker_env
        self.processes: list[subprocess.Popen] = []
        self.logs: list[IO[str]] = []
        self.job_endpoint = ""
        self.pool_endpoint = ""
        self.starts = 0

    @property
    def env(self) -> dict[str, str]:
        # API keys never travel in pipeline options: workers read them from their own
        # environment (or a secret store), as on a Flink, Spark or Dataflow worker.
        # The pool starts its workers as plain `python`: that must be this venv's.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return {**os.environ, **self.worker_env, "PATH": path, "PYTHONPATH": str(ROOT)}

    def _spawn(self, name: str, script: str, *args: str) -> tuple[subprocess.Popen, IO[str]]:
        log = open(self.workdir / f"{name}-{self.starts}.log", "w+")
        process = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        self.logs.append(log)
        return process, log

    def start(self) -> None:
        self.starts += 1
        port_file = self.workdir / f"job-{self.starts}.port"
        job, job_log = self._spawn("job", JOB_SERVICE, "--port", "0", "--port_file", str(port_file))
        pool, pool_log = self._spawn("pool", WORKER_POOL, "--service_port", "0")
        self.pool_log = pool_log

        def pool_address() -> str | None:
            pool_log.seek(0)
            found = POOL_READY.search(pool_log.read())
            return found.group(1) if found else None

        deadline = time.monotonic() + READY_SECONDS
        while not (port_file.exists() and pool_address()):
            for process, log in ((job, job_log), (pool, pool_log)):
                if process.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"a portable service ended at start-up: {log.read()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the job service or the worker pool did not start")
            time.sleep(0.05)
        self.job_endpoint = f"localhost:{port_file.read_text().strip()}"
        self.pool_endpoint = pool_address() or ""

    def stop(self) -> None:
        """SIGKILL each process group started here: job service, pool and its SDK workers."""
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=30)
        for log in self.logs:
            log.close()
        self.processes, self.logs = [], []

    def pids(self) -> set[int]:
        """The job service's and the pool's own process ids."""
        return {process.pid for process in self.processes}

    def workers_started(self) -> int:
        """SDK worker processes the current pool has started."""
        self.pool_log.seek(0)
        return self.pool_log.read().count("Starting worker with command")

    def runner_args(self) -> list[str]:
        return ["--runner=PortableRunner", f"--job_endpoint={self.job_endpoint}", "--environment_type=EXTERNAL",
                f"--environment_config={self.pool_endpoint}", "--direct_num_workers=2"]


@pytest.fixture
def cluster(tmp_path: Path, emulator: ProviderEmulator) -> Iterator[PortableCluster]:
    services = tmp_path / "services"
    services.mkdir()
    portable = PortableCluster(services, {"FAL_KEY": emulator.key_for("fal")})
    try:
        portable.start()
        yield portable
    finally:
        portable.stop()


def claims(output: str) -> list[dict]:
    """Every claim record of the ledger (claims are never removed); one being written is skipped."""
    found = []
    for path in Path(output, "_ledger").glob("*/claim-*.json"):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass
    return found


def recorded_unfinished(output: str) -> set[str]:
    """Provider job ids recorded in claims whose key has no done record yet."""
    return {c["job"]["job_id"] for c in claims(output)
            if c.get("job") and not Path(output, "_ledger", f"{c['key']}.json").exists()}


def prompt_of(job: Job) -> str:
    return job.params["input"]["prompt"]  # the body fal's queue accepted


def worker_pid(claim: dict) -> int:
    return int(claim["worker"].split("/")[1])  # "<host>/<pid>/<nonce>"


def test_portable_runner_with_two_sdk_workers_pays_each_prompt_once_and_reattaches(emulator, tmp_path, cluster):
    emulator.job_duration = 1.5
    run = Scenario(tmp_path, emulator, rows=12)

    # Run 1 is killed mid-flight with everything it started: job service, pool, workers, CLI.
    first = run.start(*cluster.runner_args(), "--run_id", "first")
    wait_until(lambda: len(emulator.jobs.all("fal")) >= 4 and len(recorded_unfinished(run.output)) >= 2,
               "4 jobs were accepted and 2 recorded but not finished", first, seconds=RUN_SECONDS)
    cluster.stop()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    polls_before = {job.id: job.polls for job in emulator.jobs.all("fal")}
    unrecorded = sum(not c.get("job") for c in claims(run.output))
    unfinished = recorded_unfinished(run.output)  # run 2 must follow these jobs, not pay for them again
    assert unfinished

    # Run 2 on a fresh job service and pool: follows what run 1 recorded, pays the rest once.
    cluster.start()
    second = run.start(*cluster.runner_args(), "--run_id", "second")
    assert second.wait(timeout=RUN_SECONDS) == 0, stderr_of(second)
    assert json.loads(Path(run.output, "_runs", "second.json").read_text())["rows"] == run.rows
    rows = run.rows_by_id()  # each input row exactly once
    counts = run.submits_per_prompt()
    assert max(counts.values()) == 1, counts
    # A row not completed was claimed by run 1 without a recorded job: held back as possibly paid.
    assert {r["error_type"] for r in rows.values() if r["status"] != "completed"} <= {"PossiblyPaidError"}
    assert sum(r["status"] != "completed" for r in rows.values()) <= unrecorded
    assert all(counts[f"prompt {r[1:]}"] == 1 for r, row in rows.items() if row["status"] == "completed")
    followed = {job.id for job in emulator.jobs.all("fal") if job.polls > polls_before.get(job.id, job.polls)}
    assert unfinished <= followed, "run 2 polled every unfinished job run 1 recorded instead of paying again"
    reattached = {prompt_of(job) for job in emulator.jobs.all("fal") if job.id in unfinished}
    assert {rows[f"r{p.split()[-1]}"]["status"] for p in reattached} == {"completed"}

    # Generate ran in the two SDK worker processes the pool started: not in the CLI, the job
    # service or the pool itself, and not in run 1's (killed) workers.
    workers = {c["worker"] for c in claims(run.output) if c["run_id"] == "second"}
    pids = {worker_pid(c) for c in claims(run.output) if c["run_id"] == "second"}
    first_pids = {worker_pid(c) for c in claims(run.output) if c["run_id"] == "first"}
    assert cluster.workers_started() == 2
    assert len(pids) == 2 and len(workers) == 2, sorted(workers)  # and one ledger (Shared) per process
    assert not pids & ({second.pid, first.pid, *cluster.pids()} | first_pids)

    # Run 3: nothing new is paid for; every completed row is reused.
    submits = sum(counts.values())
    again = run.run(*cluster.runner_args(), "--run_id", "third")
    assert sum(run.submits_per_prompt().values()) == submits
    completed = sum(r["status"] == "completed" for r in rows.values())
    assert f"reused from earlier runs or duplicate rows: {completed}" in again.stdout
    assert len(run.rows_by_id()) == run.rows
