"""Per-provider limits from the job file hold for a whole pipeline run, measured on the
provider side: jobs running at once, submits per second, and back-off after 429s."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.emulator import Fault
from tests.fakes import FakeClock
from tests.pipelines.conftest import rows_by_id, run_pipeline, write_job, write_jsonl

ROWS = 12


@pytest.fixture
def fal_job(emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("FAL_KEY", emulator.key_for("fal"))
    prompts = write_jsonl(tmp_path / "prompts.jsonl",
                          [{"id": f"r{i}", "prompt": f"limited prompt {i}", "size": "64x64"} for i in range(ROWS)])

    def run(limits, retry=None):
        config = {"name": "fal", "provider": "fal", "model": "fal-ai/flux/dev", "api_key_env": "FAL_KEY",
                  "base_url": emulator.url_for("fal"), "poll_interval": 0, "max_poll_attempts": 5000}
        job = {"modality": "image", "configs": [config], "limits": {"fal": limits}, "window": {"max_in_flight": 50}}
        if retry:
            job["retry"] = retry
        path = write_job(tmp_path / "job.yaml", job)
        assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", path) == 0
        return rows_by_id(tmp_path / "out")

    return run


@contextmanager
def jobs_held_until_the_cap_is_reached(emulator, cap: int) -> Iterator[None]:
    """Emulated jobs run on a clock that moves only once ``cap`` jobs are running (or every
    row is submitted): the peak then shows the cap however fast or slow the machine is.
    The 60 s wait is a backstop for a run that never reaches the cap (the peak then says so)."""
    clock, stop = FakeClock(), threading.Event()
    emulator.jobs.clock = clock
    held_since = time.monotonic()

    def release() -> None:
        nonlocal held_since
        while not stop.is_set():
            jobs = emulator.jobs.all("fal")
            running = sum(not job.is_terminal for job in jobs)
            if running and (running >= cap or len(jobs) == ROWS or time.monotonic() - held_since > 60):
                clock.advance(1.0)  # every running job (0.4 s long) is done at its next poll
                held_since = time.monotonic()
            stop.wait(0.005)

    watcher = threading.Thread(target=release, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def test_jobs_in_flight_never_exceed_the_providers_cap(emulator, fal_job):
    emulator.job_duration = 0.4  # on the held clock
    with jobs_held_until_the_cap_is_reached(emulator, cap=3):
        rows = fal_job({"max_in_flight": 3})
    assert all(r["status"] == "completed" for r in rows.values()) and len(rows) == ROWS
    assert emulator.jobs.peak_running("fal") == 3
    assert emulator.count("fal.submit") == ROWS


def test_the_submit_budget_holds(emulator, fal_job):
    emulator.job_duration = 0.05
    rate, burst = 8.0, 2
    rows = fal_job({"submits_per_second": rate, "burst": burst})
    assert len(rows) == ROWS
    times = sorted(r.received_at for r in emulator.requests_for("fal.submit"))
    for i, start in enumerate(times):
        within_a_second = [t for t in times[i:] if t - start <= 1.0]
        assert len(within_a_second) <= rate + burst
    assert times[-1] - times[0] >= (ROWS - burst) / rate - 0.1


def test_a_burst_of_429s_pauses_submits_and_the_run_still_completes(emulator, fal_job):
    emulator.job_duration = 0.05
    throttled = Fault.http(429, {"detail": "Rate limit exceeded"}, {"Retry-After": "1"})
    emulator.inject("fal.submit", throttled, times=3)
    rows = fal_job({"submits_per_second": 4, "burst": 1}, retry={"max_retries": 3, "base_delay": 0.01})
    assert {r["status"] for r in rows.values()} == {"completed"} and len(rows) == ROWS
    submits = sorted(emulator.requests_for("fal.submit"), key=lambda r: r.received_at)
    assert [r.status for r in submits[:3]] == [429, 429, 429] and len(submits) == ROWS + 3
    for throttled_request, following in zip(submits[:3], submits[1:4]):
        assert following.received_at - throttled_request.received_at >= 0.9  # Retry-After held every submit back
    retried = [r for r in rows.values() if any(a["status"] == "failed" for a in r["attempts"])]
    assert retried and all(a["error_type"] == "ProviderHTTPError" for r in retried for a in r["attempts"] if a["status"] == "failed")


class FakeEnvoyRateLimiter:
    """Stands in for Beam's EnvoyRateLimiter (same constructor and allow()); no RLS server here."""

    created: list = []

    def __init__(self, service_address, domain, descriptors, timeout=5.0, namespace=""):
        self.settings = (service_address, domain, descriptors)
        self.allowed = 0
        FakeEnvoyRateLimiter.created.append(self)

    def allow(self, **kwargs):
        self.allowed += 1
        return True


def test_a_global_envoy_rate_limiter_is_consulted_before_every_submit(emulator, monkeypatch, tmp_path):
    import apache_beam.io.components.rate_limiter as beam_rate_limiter

    FakeEnvoyRateLimiter.created = []
    monkeypatch.setattr(beam_rate_limiter, "EnvoyRateLimiter", FakeEnvoyRateLimiter)
    monkeypatch.setenv("FAL_KEY", emulator.key_for("fal"))
    emulator.job_duration = 0.05
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"g{i}", "prompt": f"global {i}", "size": "64x64"} for i in range(5)])
    job = write_job(tmp_path / "job.yaml", {
        "modality": "image",
        "configs": [{"name": "fal", "provider": "fal", "model": "fal-ai/flux/dev", "api_key_env": "FAL_KEY",
                     "base_url": emulator.url_for("fal"), "poll_interval": 0, "max_poll_attempts": 5000}],
        "global_rate_limit": {"service_address": "rls.internal:8081", "domain": "mediagen",
                              "descriptors": {"fal": [{"key": "provider", "value": "fal"}]}},
    })
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0
    assert len(rows_by_id(tmp_path / "out")) == 5
    (limiter,) = FakeEnvoyRateLimiter.created
    assert limiter.settings == ("rls.internal:8081", "mediagen", [{"key": "provider", "value": "fal"}])
    assert limiter.allowed == emulator.count("fal.submit") == 5
