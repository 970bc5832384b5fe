"""Per-provider limits: config validation, token buckets, AIMD, in-flight caps, the registry."""

import pickle
import threading
import time

import pytest
from pydantic import ValidationError

from tests.fakes import FakeClock
from providers.core.limits import (
    AIMDController,
    GlobalLimiter,
    GlobalRateLimitError,
    InFlightCap,
    LimiterRegistry,
    ProviderLimiter,
    ProviderLimits,
    RateLimiterAdapter,
    TokenBucket,
)


# -- ProviderLimits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_in_flight", 0),
        ("submits_per_second", -1.0),
        ("polls_per_second", 0),
        ("burst", 0),
        ("decrease_factor", 1.5),
    ],
)
def test_invalid_limits_name_the_field_and_value(field, value):
    with pytest.raises(ValidationError) as info:
        ProviderLimits(**{field: value})
    assert field in str(info.value) and str(value) in str(info.value)


def test_unknown_fields_are_refused_and_limits_are_frozen():
    with pytest.raises(ValidationError, match="max_inflight"):
        ProviderLimits(max_inflight=3)
    limits = ProviderLimits(max_in_flight=3)
    with pytest.raises(ValidationError):
        limits.max_in_flight = 4


def test_floor_above_the_rate_is_refused_naming_both():
    with pytest.raises(ValidationError, match=r"min_submits_per_second=2\.0 exceeds submits_per_second=1\.0"):
        ProviderLimits(submits_per_second=1, min_submits_per_second=2)


def test_defaults_burst_and_increase_follow_the_rate():
    limits = ProviderLimits(submits_per_second=20)
    assert limits.capacity(20) == 20 and limits.capacity(0.5) == 1
    assert limits.increase_per_second == pytest.approx(2.0)
    assert ProviderLimits(submits_per_second=20, additive_increase=5).increase_per_second == 5
    assert ProviderLimits(submits_per_second=20, burst=3).capacity(20) == 3


def test_divided_gives_each_worker_its_share_with_caps_at_least_one():
    limits = ProviderLimits(max_in_flight=10, submits_per_second=8, polls_per_second=40, burst=4, additive_increase=2)
    share = limits.divided(4)
    assert (share.max_in_flight, share.submits_per_second, share.polls_per_second, share.burst) == (2, 2.0, 10.0, 1)
    assert share.additive_increase == 0.5 and share.min_submits_per_second == pytest.approx(0.0125)
    assert limits.divided(100).max_in_flight == 1
    assert ProviderLimits().divided(3) == ProviderLimits(min_submits_per_second=0.05 / 3)
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        limits.divided(0)


# -- TokenBucket --------------------------------------------------------------------


def test_bucket_allows_a_burst_then_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=3, clock=clock)
    assert [bucket.try_acquire() for _ in range(3)] == [0, 0, 0]
    assert bucket.try_acquire() == pytest.approx(0.1)
    clock.advance(0.05)
    assert bucket.try_acquire() == pytest.approx(0.05)
    clock.advance(0.05)
    assert bucket.try_acquire() == 0
    clock.advance(100)
    assert [bucket.try_acquire() for _ in range(4)][-1] > 0  # never more than the capacity saved up


def test_bucket_rate_change_and_drain():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=5, clock=clock)
    bucket.drain()
    assert bucket.try_acquire() == pytest.approx(0.1)
    bucket.set_rate(2)
    assert bucket.try_acquire() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        TokenBucket(rate=0, capacity=1)


def test_blocking_acquire_waits_and_times_out():
    bucket = TokenBucket(rate=20, capacity=1)
    assert bucket.acquire()
    started = time.monotonic()
    assert bucket.acquire(timeout=1.0)
    assert time.monotonic() - started >= 0.03
    slow = TokenBucket(rate=0.01, capacity=1)
    slow.try_acquire()
    assert slow.acquire(timeout=0.05) is False


def test_bucket_is_thread_safe_and_holds_its_budget():
    bucket = TokenBucket(rate=200, capacity=10)
    taken = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            bucket.acquire()
            with lock:
                taken.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 80
    assert max(taken) - started >= (80 - 10) / 200 * 0.9


# -- AIMD ---------------------------------------------------------------------------


def aimd(clock: FakeClock, **kwargs) -> AIMDController:
    options = {"min_rate": 1.0, "increase_per_second": 2.0, "decrease_factor": 0.5, **kwargs}
    return AIMDController(10.0, clock=clock, **options)


def test_throttle_halves_the_rate_down_to_the_floor():
    clock = FakeClock()
    control = aimd(clock)
    assert control.current_rate == 10
    for expected in (5, 2.5, 1.25, 1.0, 1.0):
        assert control.on_throttled()
        assert control.current_rate == pytest.approx(expected)
    assert control.throttles == 5


def test_rate_recovers_additively_up_to_the_configured_rate():
    clock = FakeClock()
    control = aimd(clock)
    control.on_throttled()
    clock.advance(1.0)
    assert control.current_rate == pytest.approx(7.0)
    clock.advance(10.0)
    assert control.current_rate == 10


def test_a_burst_of_429s_sent_under_the_old_rate_lowers_it_once():
    clock = FakeClock()
    control = aimd(clock)
    sent = clock.now
    clock.advance(0.1)
    assert control.on_throttled(sent_at=sent)
    assert not control.on_throttled(sent_at=sent)
    assert not control.on_throttled(sent_at=sent)
    assert control.current_rate == pytest.approx(5.0)
    clock.advance(0.1)
    assert control.on_throttled(sent_at=clock.now)  # sent after the decrease: lowers again
    assert control.current_rate == pytest.approx((5.0 + 2.0 * 0.1) / 2)


def test_retry_after_blocks_until_then_capped():
    clock = FakeClock()
    control = aimd(clock, max_retry_after=30)
    control.on_throttled(retry_after=2.0)
    assert control.blocked_for() == pytest.approx(2.0)
    clock.advance(1.5)
    assert control.blocked_for() == pytest.approx(0.5)
    clock.advance(0.5)
    assert control.blocked_for() == 0
    control.on_throttled(retry_after=3600)
    assert control.blocked_for() == pytest.approx(30)


def test_without_a_rate_only_retry_after_applies():
    clock = FakeClock()
    control = AIMDController(None, clock=clock)
    assert control.on_throttled(retry_after=1.0) is False
    assert control.current_rate is None and control.blocked_for() == pytest.approx(1.0)


# -- ProviderLimiter ------------------------------------------------------------------


def test_limiter_submits_follow_aimd_and_retry_after():
    clock = FakeClock()
    limits = ProviderLimits(submits_per_second=10, burst=2, additive_increase=1)
    limiter = ProviderLimiter("fal", limits, clock=clock)
    assert limiter.try_submit() == 0 and limiter.try_submit() == 0
    assert limiter.try_submit() == pytest.approx(0.1)
    limiter.on_throttled(retry_after=1.0)
    assert limiter.try_submit() == pytest.approx(1.0)  # blocked by Retry-After
    clock.advance(1.0)
    # The rate is 5 + 1 (one second of recovery) = 6/s; the drained bucket refilled meanwhile.
    assert limiter.aimd.current_rate == pytest.approx(6.0)
    assert limiter.try_submit() == 0 and limiter.try_submit() == 0
    assert limiter.try_submit() == pytest.approx(1 / 6)
    stats = limiter.stats()
    assert stats["throttles"] == 1 and stats["rate_decreases"] == 1


def test_retries_are_counted_from_threads_and_reported_with_the_cap():
    limiter = ProviderLimiter("fal", ProviderLimits(max_in_flight=3))
    assert limiter.stats()["retries"] == 0
    threads = [threading.Thread(target=lambda: [limiter.on_retry() for _ in range(500)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limiter.in_flight.try_take()
    stats = limiter.stats()
    assert (stats["retries"], stats["in_flight"], stats["max_in_flight"], stats["throttles"]) == (2000, 1, 3, 0)


def test_polls_have_their_own_budget():
    clock = FakeClock()
    limiter = ProviderLimiter("fal", ProviderLimits(polls_per_second=4, burst=1), clock=clock)
    assert limiter.try_poll() == 0 and limiter.try_poll() == pytest.approx(0.25)
    assert limiter.try_submit() == 0 and limiter.try_submit() == 0  # submits unlimited


def test_unlimited_limiter_grants_everything():
    limiter = ProviderLimiter("x", ProviderLimits())
    assert all(limiter.try_submit() == 0 and limiter.try_poll() == 0 for _ in range(1000))
    assert limiter.acquire_submit(timeout=0) and limiter.acquire_poll(timeout=0)


# -- InFlightCap ---------------------------------------------------------------------


def test_in_flight_cap_counts_limits_and_records_the_peak():
    cap = InFlightCap(2)
    assert cap.try_take() and cap.try_take() and not cap.try_take()
    cap.release()
    assert cap.try_take() and cap.peak == 2 and cap.current == 2
    cap.release()
    cap.release()
    with pytest.raises(RuntimeError):
        cap.release()
    with pytest.raises(ValueError):
        InFlightCap(0)


def test_in_flight_cap_is_never_exceeded_under_contention():
    cap = InFlightCap(3)
    seen = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            if cap.try_take():
                with lock:
                    seen.append(cap.current)
                cap.release()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(seen) <= 3 and cap.peak <= 3 and cap.current == 0


# -- LimiterRegistry -----------------------------------------------------------------


def test_most_specific_key_wins():
    registry = LimiterRegistry({"fal": ProviderLimits(max_in_flight=10), "fal/fal-ai/veo3": {"max_in_flight": 2}})
    assert registry.key_for("fal", "fal-ai/veo3") == "fal/fal-ai/veo3"
    assert registry.key_for("fal", "fal-ai/kling") == "fal"
    assert registry.limiter("fal", "fal-ai/veo3").in_flight.limit == 2
    assert registry.limiter("fal", "other").in_flight.limit == 10
    assert registry.limiter("fal", "other") is registry.limiter("fal")
    unknown = registry.limiter("runway", "gen4")
    assert unknown.key == "runway" and unknown.in_flight.limit is None and unknown.submit_bucket is None


def test_registry_validates_its_input():
    with pytest.raises(ValidationError, match="max_in_flight"):
        LimiterRegistry({"fal": {"max_in_flight": -1}})
    with pytest.raises(ValueError, match="provider/model"):
        LimiterRegistry({"": ProviderLimits()})


def test_registry_divides_budgets_across_workers():
    registry = LimiterRegistry({"fal": ProviderLimits(max_in_flight=40, submits_per_second=10)}, workers=4)
    limiter = registry.limiter("fal")
    assert limiter.in_flight.limit == 10 and limiter.aimd.max_rate == 2.5


def test_worker_shares_add_up_to_at_most_the_job_budget(caplog):
    budget = {"fal": ProviderLimits(max_in_flight=7, submits_per_second=3, polls_per_second=5)}
    for workers in (1, 2, 3, 7):
        shares = [LimiterRegistry(budget, workers=workers).limiter("fal") for _ in range(workers)]
        assert sum(s.in_flight.limit for s in shares) <= 7
        assert sum(s.aimd.max_rate for s in shares) == pytest.approx(3)
        assert sum(s.poll_bucket.rate for s in shares) == pytest.approx(5)
    assert "cannot be shared" not in caplog.text
    shares = [LimiterRegistry(budget, workers=8).limiter("fal") for _ in range(8)]
    assert sum(s.in_flight.limit for s in shares) == 8  # one slot each: over the cap of 7, and said so
    assert "limits.fal.max_in_flight=7 cannot be shared by 8 workers" in caplog.text


def test_registry_is_shared_safely_between_threads():
    registry = LimiterRegistry({"fal": ProviderLimits(max_in_flight=5)})
    found = []

    def worker() -> None:
        found.append(registry.limiter("fal", "m"))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(limiter) for limiter in found}) == 1


def test_registry_pickles_to_a_fresh_copy():
    registry = LimiterRegistry({"fal": ProviderLimits(max_in_flight=5)}, workers=2)
    assert registry.limiter("fal").in_flight.try_take()
    copy = pickle.loads(pickle.dumps(registry))
    assert copy.limits == registry.limits and copy.workers == 2
    assert copy.limiter("fal").in_flight.current == 0
    registry.limiter("fal").on_retry()
    assert pickle.loads(pickle.dumps(registry)).limiter("fal").retries == 0
    assert copy.stats().keys() == {"fal"}


# -- global limiter ----------------------------------------------------------------


class Allow:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    def allow(self, **kwargs) -> bool:
        self.calls += 1
        return self.answers.pop(0)


def test_adapter_turns_allow_into_acquire():
    adapter = RateLimiterAdapter(Allow([True, False]))
    assert isinstance(adapter, GlobalLimiter)
    adapter.acquire("fal")
    with pytest.raises(GlobalRateLimitError) as info:
        adapter.acquire("fal/x")
    assert info.value.retryable


def test_adapter_maps_keys_to_limiters():
    fal, veo = Allow([True]), Allow([False])
    adapter = RateLimiterAdapter({"fal": fal, "fal/veo3": veo})
    adapter.acquire("fal/kling")  # falls back to the provider's limiter
    with pytest.raises(GlobalRateLimitError):
        adapter.acquire("fal/veo3")
    adapter.acquire("runway")  # not limited globally
    assert (fal.calls, veo.calls) == (1, 1)


def test_blocking_submit_consults_the_global_limiter():
    seen = []

    class Recorder:
        def acquire(self, key: str) -> None:
            seen.append(key)

    registry = LimiterRegistry({"fal/m": ProviderLimits(submits_per_second=100)}, global_limiter=Recorder())
    assert registry.limiter("fal", "m").acquire_submit(timeout=1)
    assert seen == ["fal/m"]
