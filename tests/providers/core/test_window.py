"""JobWindow: many chain_steps generators in flight on a few threads, within per-provider limits.

Jobs run on the offline mock and on small custom JobProviders that record when each
call happened and how many jobs they held at once. Timing bounds are generous: they
tell "concurrent" from "serial", not fine performance (benchmarks/window.py does that).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from typing import Callable

import pytest

from providers import RetryPolicy, register_provider
from providers.core.contract import GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.driver import Call, Sleep
from providers.errors import (
    ContentModerationError,
    GenerationTimeoutError,
    LedgerUnavailableError,
    MediagenError,
    ProviderHTTPError,
)
from providers.core.limits import LimiterRegistry, ProviderLimits
from providers.core.orchestrator import chain_steps
from providers.core.window import JobWindow, WindowClosedError, WindowResult
from schemas import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    JobHandle,
    MockConfig,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)

FAST = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.05)
_names = itertools.count()


class Recorder(JobProvider):
    """A provider whose jobs take ``duration`` seconds; records every call and its concurrency.

    ``submit_error(n)`` may return an exception for the n-th submit (0-based) to raise.
    With ``polls`` set, a job completes at its ``polls``-th poll instead, whatever the clock.
    """

    name = "recorder"
    modalities = frozenset({"video", "image"})

    def __init__(
        self,
        duration: float = 0.0,
        submit_error: Callable[[int], Exception | None] | None = None,
        polls: int | None = None,
    ) -> None:
        super().__init__()
        self.duration = duration
        self.polls = polls
        self.submit_error = submit_error
        self.lock = threading.Lock()
        self.events: list[tuple[str, str, float]] = []
        self.submitted: dict[str, float] = {}
        self.active = 0
        self.peak = 0

    def times(self, kind: str) -> list[float]:
        with self.lock:
            return [at for event, _, at in self.events if event == kind]

    def submit(self, ctx: ProviderContext, request) -> JobHandle:
        with self.lock:
            number = sum(1 for event, _, _ in self.events if event in ("submit", "throttled"))
            error = self.submit_error(number) if self.submit_error else None
            now = time.monotonic()
            if error is not None:
                self.events.append(("throttled", "", now))
                raise error
            job_id = uuid.uuid4().hex
            self.events.append(("submit", job_id, now))
            self.submitted[job_id] = now
            self.active += 1
            self.peak = max(self.peak, self.active)
        return JobHandle(provider=ctx.config.provider, model=ctx.model, modality=ctx.modality, job_id=job_id)

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        now = time.monotonic()
        with self.lock:
            self.events.append(("poll", job.job_id, now))
            started = self.submitted.setdefault(job.job_id, now)  # a resumed job we never saw submitted
        if self.polls is not None:
            return JobStatus("completed", 100) if job.polls + 1 >= self.polls else JobStatus("processing", 50, poll_after=0)
        remaining = self.duration - (now - started)
        if remaining <= 0:
            return JobStatus("completed", 100)
        return JobStatus("processing", 50, poll_after=min(remaining, 0.05))

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        with self.lock:
            self.events.append(("fetch", job.job_id, time.monotonic()))
            self.active -= 1
        return ProviderOutput(media=[GeneratedMedia(data=b"x", content_type="video/mp4")], request_id=job.job_id)


def registered(handler) -> str:
    name = f"test-window-{next(_names)}"
    register_provider(name, handler)
    return name


def video_config(provider: str, **fields) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider=provider, model="m", poll_interval=0, **fields)


def video_steps(config: VideoGenerationConfig, index: int = 0, **kwargs):
    return chain_steps("video", config, VideoGenerationRequest(prompt=f"prompt {index}"), FAST, **kwargs)


def image_steps(config: ImageGenerationConfig, index: int):
    return chain_steps("image", config, ImageGenerationRequest(prompt=f"prompt {index}", size="64x64"), FAST)


def run_all(window: JobWindow, items) -> dict[str, WindowResult]:
    for item_id, steps in items:
        window.add(item_id, steps)
    results = list(window.drain())
    ids = Counter(r.item_id for r in results)
    assert all(count == 1 for count in ids.values()), "an item finished twice"
    return {r.item_id: r for r in results}


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def max_in_any_interval(times: list[float], length: float) -> int:
    """The most events in any closed interval of ``length`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > length:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.fixture
def registry() -> LimiterRegistry:
    return LimiterRegistry()


# -- concurrency and caps ------------------------------------------------------------


def test_hundreds_of_mock_jobs_run_concurrently(registry):
    config = ImageGenerationConfig(
        provider="fal", model="m", poll_interval=0, mock=MockConfig(job_duration_seconds=0.5)
    )
    with JobWindow(registry, max_in_flight=100, threads=4) as window:
        results = run_all(window, ((str(i), image_steps(config, i)) for i in range(200)))
        stats = window.stats
    assert len(results) == 200 and all(r.ok for r in results.values())
    # Each mock job lasts at least 0.5 s, so overlapping lifetimes prove concurrency
    # however slowly the machine runs (one after the other, none would overlap).
    overlap = max_overlap([(r.started, r.finished) for r in results.values()])
    assert overlap >= 50, f"at most {overlap} of 200 jobs were in flight at once: not concurrent"
    assert stats["peak_active"] == 100 and stats["active"] == 0 and stats["submits"] == 200
    response = results["7"].response
    assert response.is_mock and response.execution_metadata.successful_attempt == 1
    assert all(r.started <= r.finished for r in results.values())


def test_window_and_provider_caps_are_never_exceeded(registry):
    provider = Recorder(duration=0.1)
    name = registered(provider)
    registry = LimiterRegistry({name: ProviderLimits(max_in_flight=4)})
    with JobWindow(registry, max_in_flight=10, threads=4) as window:
        results = run_all(window, ((str(i), video_steps(video_config(name), i)) for i in range(30)))
        stats = window.stats
    assert all(r.ok for r in results.values())
    assert provider.peak <= 4 and stats["peak_in_flight_per_provider"] == {name: 4}
    assert registry.limiter(name).in_flight.peak == 4 and registry.limiter(name).in_flight.current == 0
    assert stats["peak_active"] == 10 and stats["slot_waits"] > 0


def test_per_model_limits_win_over_the_provider_limits():
    provider = Recorder(duration=0.1)
    name = registered(provider)
    registry = LimiterRegistry({name: ProviderLimits(max_in_flight=6), f"{name}/slow": ProviderLimits(max_in_flight=1)})
    slow = VideoGenerationConfig(provider=name, model="slow", poll_interval=0)
    with JobWindow(registry, max_in_flight=20) as window:
        items = [(f"s{i}", video_steps(slow, i)) for i in range(4)]
        items += [(f"f{i}", video_steps(video_config(name), i)) for i in range(12)]
        results = run_all(window, items)
    assert all(r.ok for r in results.values())
    assert registry.limiter(name, "slow").in_flight.peak == 1
    assert registry.limiter(name, "m").in_flight.peak == 6


def test_add_blocks_while_the_window_is_full(registry):
    name = registered(Recorder(duration=0.3))
    with JobWindow(registry, max_in_flight=2) as window:
        window.add("a", video_steps(video_config(name), 1))
        window.add("b", video_steps(video_config(name), 2))
        added = threading.Event()
        adder = threading.Thread(target=lambda: (window.add("c", video_steps(video_config(name), 3)), added.set()))
        adder.start()
        assert not added.wait(0.1) and window.active == 2
        assert added.wait(5) and len(list(window.drain())) == 3
        adder.join()


# -- budgets and throttling ------------------------------------------------------------


def test_submit_budget_holds_in_every_interval():
    provider = Recorder()
    name = registered(provider)
    rate, burst = 20.0, 4
    registry = LimiterRegistry({name: ProviderLimits(submits_per_second=rate, burst=burst)})
    with JobWindow(registry, max_in_flight=50) as window:
        results = run_all(window, ((str(i), video_steps(video_config(name), i)) for i in range(40)))
        waits = window.stats["submit_waits"]
    assert all(r.ok for r in results.values()) and waits > 0
    submits = provider.times("submit")
    assert max(submits) - min(submits) >= (40 - burst) / rate * 0.9
    for length in (0.1, 0.25, 0.5, 1.0):
        assert max_in_any_interval(submits, length) <= rate * length + burst + 1


def test_poll_budget_holds():
    provider = Recorder(duration=0.4)
    name = registered(provider)
    rate = 30.0
    registry = LimiterRegistry({name: ProviderLimits(polls_per_second=rate, burst=2)})
    with JobWindow(registry, max_in_flight=20) as window:
        results = run_all(window, ((str(i), video_steps(video_config(name), i)) for i in range(20)))
        assert window.stats["poll_waits"] > 0
    assert all(r.ok for r in results.values())
    assert max_in_any_interval(provider.times("poll"), 0.5) <= rate * 0.5 + 2 + 1


def test_retry_after_blocks_every_submit_then_the_rate_recovers():
    def throttled_once(n: int) -> Exception | None:
        return ProviderHTTPError("slow down", status_code=429, retry_after=0.5) if n == 0 else None

    provider = Recorder(submit_error=throttled_once)
    name = registered(provider)
    limits = ProviderLimits(submits_per_second=10, burst=1, additive_increase=10)
    registry = LimiterRegistry({name: limits})
    limiter = registry.limiter(name)
    with JobWindow(registry, max_in_flight=20) as window:
        results = run_all(window, ((str(i), video_steps(video_config(name), i)) for i in range(10)))
        assert window.stats["throttles"] == 1
    assert all(r.ok for r in results.values()) and len(provider.times("submit")) == 10
    (throttled_at,) = provider.times("throttled")
    assert all(at >= throttled_at + 0.45 for at in provider.times("submit"))  # nobody submitted during Retry-After
    assert limiter.aimd.decreases == 1
    time.sleep(0.2)
    assert limiter.aimd.current_rate == 10  # recovered: 5/s + 10/s per second


def test_a_burst_of_429s_lowers_the_submit_rate_and_every_item_still_completes():
    def overloaded(n: int) -> Exception | None:
        # The first dozen submits are refused: counted, not timed, so load cannot change it.
        return ProviderHTTPError("busy", status_code=429) if n < 12 else None

    provider = Recorder(submit_error=overloaded)
    name = registered(provider)
    registry = LimiterRegistry({name: ProviderLimits(submits_per_second=40, burst=10, additive_increase=5)})
    retry = RetryPolicy(max_retries=20, base_delay=0.02, max_delay=0.1)
    with JobWindow(registry, max_in_flight=20) as window:
        items = (
            (str(i), chain_steps("video", video_config(name), VideoGenerationRequest(prompt=f"p{i}"), retry))
            for i in range(20)
        )
        results = run_all(window, items)
        throttles = window.stats["throttles"]
    assert len(results) == 20 and all(r.ok for r in results.values())
    limiter = registry.limiter(name)
    assert throttles >= 10 and 1 <= limiter.aimd.decreases < throttles
    assert limiter.aimd.current_rate < 40


# -- orchestration inside the window ---------------------------------------------------


def test_fallback_chains_and_retries_work_inside_the_window(registry):
    def mocked(provider: str, error: str | None = None, fallbacks=None) -> VideoGenerationConfig:
        responses = [{"error": error}] if error else []
        return VideoGenerationConfig(
            provider=provider, model="m", poll_interval=0, fallback_configs=fallbacks,
            mock=MockConfig(responses=responses, job_duration_seconds=0.05),
        )  # fmt: skip

    chain = mocked("a", "server_error", [mocked("b")])
    with JobWindow(registry, max_in_flight=10) as window:
        results = run_all(
            window,
            (
                (
                    str(i),
                    chain_steps(
                        "video",
                        chain,
                        VideoGenerationRequest(prompt=f"p{i}", duration_seconds=1, resolution="360p"),
                        FAST,
                    ),
                )
                for i in range(5)
            ),
        )
    for result in results.values():
        meta = result.response.execution_metadata
        assert [(a.provider, a.try_number, a.status) for a in meta.attempts] == [
            ("a", 1, "failed"), ("a", 2, "failed"), ("a", 3, "failed"), ("a", 4, "failed"), ("b", 1, "success"),
        ]  # fmt: skip
        assert meta.fallback_triggered and isinstance(result.response, VideoGenerationResponse)


def test_errors_end_in_the_result_with_execution_metadata(registry):
    config = VideoGenerationConfig(provider="fal", model="m", mock=MockConfig(responses=[{"error": "moderation"}]))
    with JobWindow(registry) as window:
        results = run_all(window, [("x", video_steps(config))])
    error = results["x"].error
    assert isinstance(error, ContentModerationError) and results["x"].response is None
    assert error.execution_metadata.attempts[0].status == "failed"


class SlowLedger:
    """A JobLedger whose writes take a while: records (key, job id, when written)."""

    def __init__(self, fail: bool = False) -> None:
        self.records: list[tuple[str, str, float]] = []
        self.fail = fail

    def claim(self, key, holder, idempotent):
        from providers.core.claims import SUBMIT

        return SUBMIT

    def record_job(self, key, holder, job) -> None:
        time.sleep(0.02)  # a slow ledger write must still come before the first poll
        if self.fail:
            raise LedgerUnavailableError("ledger unavailable")
        self.records.append((key, job.job_id, time.monotonic()))

    def release(self, key, holder, outcome) -> None: ...

    def abandon(self, key, holder) -> None: ...


def test_the_job_is_recorded_in_the_ledger_before_the_first_poll(registry):
    provider = Recorder(duration=0.05)
    name = registered(provider)
    ledger = SlowLedger()
    with JobWindow(registry) as window:
        run_all(window, ((str(i), video_steps(video_config(name), i, ledger=ledger)) for i in range(10)))
        assert window.stats["submits"] == 10  # claim, submit and record: one pool call per job
    first_poll = {}
    for event, job_id, at in provider.events:
        if event == "poll":
            first_poll.setdefault(job_id, at)
    assert len(ledger.records) == 10 and {job_id for _, job_id, _ in ledger.records} == set(first_poll)
    assert all(written <= first_poll[job_id] for _, job_id, written in ledger.records)


def test_progress_updates_reach_on_progress(registry):
    seen: list[tuple[str, str]] = []
    config = video_config(registered(Recorder(polls=3)))  # processing, processing, completed
    with JobWindow(registry, on_progress=lambda item_id, update: seen.append((item_id, update.status))) as window:
        run_all(window, [("a", video_steps(config))])
    assert ("a", "processing") in seen and seen[-1] == ("a", "completed")


def test_failing_callbacks_and_ledger_records_do_not_stop_paid_jobs(registry):
    def boom(*args) -> None:
        raise OSError("progress display broke")

    config = video_config(registered(Recorder(duration=0.05)))
    ledger = SlowLedger(fail=True)
    with JobWindow(registry, on_progress=boom) as window:
        results = run_all(window, ((str(i), video_steps(config, i, ledger=ledger)) for i in range(3)))
        assert window.stats["callback_errors"] >= 3
    assert all(r.ok for r in results.values()) and ledger.records == []


def test_resume_follows_the_old_job_without_a_new_submit(registry):
    provider = Recorder(duration=0.05)
    name = registered(provider)
    job = JobHandle(provider=name, model="m", modality="video", job_id="earlier-job")
    with JobWindow(registry) as window:
        results = run_all(window, [("r", video_steps(video_config(name), resume=job))])
        assert window.stats["submits"] == 0
    assert results["r"].ok and provider.times("submit") == []
    assert results["r"].response.execution_metadata.attempts[0].request_id == "earlier-job"


# -- custom handlers ---------------------------------------------------------------------


class SlowHandler:
    """A custom (non-JobProvider) handler that blocks for ``seconds`` per call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.release = threading.Event()

    def generate_video(self, config, request, on_progress=None):
        self.release.wait(self.seconds)
        return VideoGenerationResponse(request_id="custom", video="https://example.test/v.mp4")


class MeetingHandler:
    """A custom handler whose calls return only once ``count`` of them are running at once."""

    def __init__(self, count: int) -> None:
        self.barrier = threading.Barrier(count, timeout=60)

    def generate_video(self, config, request, on_progress=None):
        self.barrier.wait()  # BrokenBarrierError (a failed item) unless all run concurrently
        return VideoGenerationResponse(request_id="custom", video="https://example.test/v.mp4")


def test_custom_handlers_run_concurrently(registry):
    config = video_config(registered(MeetingHandler(20)), timeout=120)
    with JobWindow(registry, threads=2) as window:
        results = run_all(window, ((str(i), video_steps(config, i)) for i in range(20)))
        assert window.stats["handler_calls"] == 20
    assert all(r.ok and r.response.video == "https://example.test/v.mp4" for r in results.values())


def test_custom_handlers_respect_their_timeout(registry):
    handler = SlowHandler(30)
    config = video_config(registered(handler), timeout=1)
    try:
        with JobWindow(registry) as window:
            window.add(
                "slow", chain_steps("video", config, VideoGenerationRequest(prompt="x"), RetryPolicy(max_retries=0))
            )
            (result,) = window.wait_results(timeout=10)
    finally:
        handler.release.set()
    assert isinstance(result.error, GenerationTimeoutError) and "within 1s" in str(result.error)
    assert result.error.execution_metadata.attempts[0].error_type == "GenerationTimeoutError"


# -- robustness and lifecycle -----------------------------------------------------------


def test_a_broken_generator_fails_only_its_item(registry):
    def broken():
        yield Sleep(0.01)
        raise KeyError("bug")

    def echo():
        value = yield Call(lambda: 41)
        try:
            yield Call(lambda: 1 / 0)
        except ZeroDivisionError:
            return value + 1

    config = video_config(registered(Recorder()))
    with JobWindow(registry) as window:
        results = run_all(window, [("broken", broken()), ("echo", echo()), ("ok", video_steps(config))])
    assert isinstance(results["broken"].error, KeyError)
    assert results["echo"].response == 42 and results["ok"].ok


def test_results_can_be_polled_without_blocking(registry):
    with JobWindow(registry) as window:
        assert window.poll_results() == [] and window.wait_results(timeout=0.01) == []
        gate = threading.Event()
        window.add("a", iter_steps(Call(lambda: gate.wait(60) and None), Sleep(0.01)))
        assert window.poll_results() == []  # still waiting on the gate, however slow the machine
        gate.set()
        collected: list[WindowResult] = []
        for _ in range(60):  # wait on the result, not on the clock
            collected = window.wait_results(timeout=1)
            if collected:
                break
        assert [(r.item_id, r.ok) for r in collected] == [("a", True)]


def iter_steps(*steps):
    yield from steps
    return "done"


def test_close_stops_threads_and_ends_active_items(registry):
    before = {t.name for t in threading.enumerate()}
    window = JobWindow(registry, threads=3, name="closing-window")
    window.add("long", iter_steps(Sleep(60)))
    window.add("call", iter_steps(Call(lambda: None)))
    finished: list[WindowResult] = []
    for _ in range(60):  # wait on the call's result, not on the clock
        finished += window.wait_results(timeout=1)
        if finished:
            break
    window.close()
    names = {t.name for t in threading.enumerate()} - before
    assert not any(n.startswith("closing-window") for n in names), names
    results = {r.item_id: r for r in finished + window.poll_results()}
    assert results["call"].ok and isinstance(results["long"].error, WindowClosedError)
    with pytest.raises(RuntimeError, match="closed"):
        window.add("late", iter_steps())
    window.close()  # idempotent


def test_global_limiter_is_consulted_before_each_submit():
    keys: list[str] = []

    class Global:
        def acquire(self, key: str) -> None:
            keys.append(key)

    name = registered(Recorder())
    registry = LimiterRegistry({name: ProviderLimits(submits_per_second=1000)}, global_limiter=Global())
    with JobWindow(registry) as window:
        results = run_all(window, ((str(i), video_steps(video_config(name), i)) for i in range(5)))
    assert all(r.ok for r in results.values()) and keys == [name] * 5


def test_global_limiter_refusal_is_retried_by_the_orchestrator():
    refusals = iter([True, False, False])

    class Global:
        def acquire(self, key: str) -> None:
            if next(refusals, False):
                raise MediagenError("refused", retryable=True)

    name = registered(Recorder())
    registry = LimiterRegistry(global_limiter=Global())
    with JobWindow(registry) as window:
        results = run_all(window, [("a", video_steps(video_config(name)))])
    attempts = results["a"].response.execution_metadata.attempts
    assert [a.status for a in attempts] == ["failed", "success"]


def test_a_fault_in_the_window_while_driving_an_item_fails_only_that_item():
    class BrokenLimits(LimiterRegistry):
        def limiter(self, provider, model=None):
            limiter = super().limiter(provider, model)
            if provider == broken_name:
                limiter.try_submit = lambda: 1 / 0  # a bug in a limiter
            return limiter

    broken_name, fine_name = registered(Recorder()), registered(Recorder())
    with JobWindow(BrokenLimits()) as window:
        results = run_all(
            window, [("broken", video_steps(video_config(broken_name))), ("fine", video_steps(video_config(fine_name)))]
        )
        window.add("after", video_steps(video_config(fine_name)))
        (after,) = window.wait_results(timeout=5)
    assert isinstance(results["broken"].error, ZeroDivisionError)
    assert results["fine"].ok and after.ok


# -- inline pure-CPU calls -------------------------------------------------------------


def test_cpu_calls_run_inline_on_the_scheduler_and_errors_reach_the_generator(registry):
    def steps():
        scheduler = threading.current_thread().name  # generators are advanced on the scheduler
        ran_on = yield Call(lambda: threading.current_thread().name, kind="cpu")
        pooled_on = yield Call(lambda: threading.current_thread().name)
        try:
            yield Call(lambda: 1 / 0, kind="cpu")
        except ZeroDivisionError:
            return scheduler, ran_on, pooled_on
        raise AssertionError("the inline call's error never reached the generator")

    def failing():
        yield Call(lambda: {}["missing"], kind="cpu")

    with JobWindow(registry, name="inline") as window:
        results = run_all(window, [("ok", steps()), ("bad", failing())])
        stats = window.stats
    scheduler, ran_on, pooled_on = results["ok"].response
    assert scheduler == ran_on == "inline-scheduler"
    assert pooled_on.startswith("inline-call-")
    assert isinstance(results["bad"].error, KeyError)
    assert stats["inline_calls"] == 3 and stats["other_calls"] == 1


def test_a_limited_call_after_a_pool_call_still_passes_the_limits():
    limits = LimiterRegistry({"p": ProviderLimits(max_in_flight=2)})

    def steps():
        yield Call(lambda: None, kind="ledger")  # a pool call, then the limited one
        yield Call(lambda: None, kind="submit", provider="p")
        yield Call(lambda: None, kind="fetch", provider="p")

    with JobWindow(limits) as window:
        results = run_all(window, [(str(i), steps()) for i in range(40)])
        stats = window.stats
    assert all(r.ok for r in results.values())
    assert stats["submits"] == 40 and stats["peak_in_flight_per_provider"]["p"] in (1, 2)  # the slot was taken
    assert limits.limiter("p").in_flight.peak <= 2


def test_closing_while_a_call_runs_abandons_the_item_and_runs_none_of_its_later_steps(registry):
    started, release = threading.Event(), threading.Event()
    later: list[str] = []

    def steps():
        yield Call(lambda: (started.set(), release.wait(10)), kind="ledger")
        yield Call(lambda: later.append("call"), kind="ledger")
        later.append("generator")

    window = JobWindow(registry)
    window.add("a", steps())
    assert started.wait(10)
    closer = threading.Thread(target=window.close)
    closer.start()
    (result,) = window.wait_results(timeout=10)  # abandoned by the scheduler while its call runs
    release.set()
    closer.join(10)
    assert isinstance(result.error, WindowClosedError) and later == []


def test_response_building_runs_inline(registry):
    config = video_config(registered(Recorder(polls=1)))
    with JobWindow(registry) as window:
        results = run_all(window, [("a", video_steps(config))])
        stats = window.stats
    assert results["a"].ok
    assert stats["inline_calls"] == 1  # build_response: no pool round trip


def test_queued_seconds_is_the_wait_before_the_submit_ran(monkeypatch, registry):
    from providers.core import driver

    ticks = iter([100.0, 107.5])  # the submit step yielded at 100, its call ran at 107.5
    monkeypatch.setattr(driver, "clock", lambda: next(ticks))
    config = video_config(registered(Recorder(polls=1)))
    with JobWindow(registry) as window:
        results = run_all(window, [("a", video_steps(config))])
    attempt = results["a"].response.execution_metadata.attempts[0]
    assert attempt.queued_seconds == 7.5
    span = (attempt.ended_at - attempt.started_at).total_seconds()
    assert attempt.elapsed_seconds == max(0.0, span - 7.5)


def test_drive_async_runs_cpu_calls_on_the_event_loop_thread():
    import asyncio

    from providers.core.driver import drive_async

    def steps():
        inline = yield Call(threading.get_ident, kind="cpu")
        pooled = yield Call(threading.get_ident)
        try:
            yield Call(lambda: 1 / 0, kind="cpu")
        except ZeroDivisionError:
            return inline, pooled

    async def run():
        return threading.get_ident(), await drive_async(steps(), None)

    loop_thread, (inline, pooled) = asyncio.run(run())
    assert inline == loop_thread != pooled
