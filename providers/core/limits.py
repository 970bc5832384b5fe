"""Per-provider limits for keeping many jobs in flight: request budgets, AIMD, in-flight caps.

A :class:`LimiterRegistry` holds, per key (a provider name, or ``"provider/model"`` when
a model has limits of its own), a :class:`ProviderLimiter`:

- a token bucket on submits whose rate an :class:`AIMDController` lowers on HTTP 429
  (multiplicative decrease, Retry-After honoured) and raises again over time;
- a separate token bucket on polls;
- an :class:`InFlightCap` on jobs submitted but not finished.

Every piece is thread-safe and holds no module-level state, so one registry can be
shared by all the windows of a worker process. Buckets answer a non-blocking
``try_*`` (seconds to wait, 0 when granted) for schedulers that must never sleep, and
a blocking ``acquire`` for plain threads. Nothing here imports Beam: a global limiter
(such as Beam's ``EnvoyRateLimiter``) is any object with ``acquire(key)``, or one with
``allow()`` wrapped in :class:`RateLimiterAdapter`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Protocol, runtime_checkable

from schemas.limits import ProviderLimits

from providers.errors import MediagenError

Clock = Callable[[], float]
log = logging.getLogger(__name__)
_EPSILON = 1e-9



class TokenBucket:
    """A thread-safe token bucket on the monotonic clock: ``rate`` tokens/s up to ``capacity``."""

    def __init__(self, rate: float, capacity: float, *, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError(f"token bucket needs rate > 0 and capacity >= 1, got rate={rate}, capacity={capacity}")
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = rate
        self._capacity = capacity
        self._tokens = capacity
        self._stamp = clock()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def capacity(self) -> float:
        return self._capacity

    def try_acquire(self) -> float:
        """Take one token if there is one and return 0; otherwise the seconds until there will be."""
        with self._lock:
            self._refill()
            if self._tokens >= 1 - _EPSILON:  # float rounding must not cost a whole wait
                self._tokens = max(0.0, self._tokens - 1)
                return 0.0
            return (1 - self._tokens) / self._rate

    def acquire(self, timeout: float | None = None) -> bool:
        """Block until a token is taken (True) or ``timeout`` seconds pass (False)."""
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            wait = self.try_acquire()
            if wait == 0:
                return True
            if deadline is not None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                wait = min(wait, remaining)
            time.sleep(wait)

    def set_rate(self, rate: float) -> None:
        """Refill at the old rate up to now, then continue at ``rate``."""
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        with self._lock:
            self._refill()
            self._rate = rate

    def drain(self) -> None:
        """Drop the saved-up tokens, so a lowered rate takes effect at once rather than after a burst."""
        with self._lock:
            self._refill()
            self._tokens = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now


class AIMDController:
    """Additive-increase / multiplicative-decrease of a submit rate, plus Retry-After blocking.

    ``max_rate=None`` disables rate control (there is no configured rate to adapt);
    Retry-After still blocks. The rate recovers linearly with time since the last
    decrease, up to ``max_rate``.
    """

    def __init__(
        self,
        max_rate: float | None,
        *,
        min_rate: float = 0.05,
        increase_per_second: float = 0.0,
        decrease_factor: float = 0.5,
        max_retry_after: float = 120.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.max_rate = max_rate
        self.min_rate = min(min_rate, max_rate) if max_rate is not None else min_rate
        self.increase_per_second = increase_per_second
        self.decrease_factor = decrease_factor
        self.max_retry_after = max_retry_after
        self._base_rate = max_rate
        self._base_time = clock()
        self._last_decrease = -math.inf
        self._blocked_until = -math.inf
        self.throttles = 0
        self.decreases = 0
        self.successes = 0

    @property
    def current_rate(self) -> float | None:
        """The submit rate allowed now (None when rate control is off)."""
        with self._lock:
            return self._rate_at(self._clock())

    def blocked_for(self) -> float:
        """Seconds until a Retry-After block ends (0 when submits may go)."""
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

    def on_throttled(self, retry_after: float | None = None, sent_at: float | None = None) -> bool:
        """A call was answered 429: lower the rate and honour ``retry_after``.

        ``sent_at`` (monotonic) is when the throttled call was sent: calls sent before
        the last decrease were sent under the old rate and do not lower it again, so
        a burst of 429s from one overload halves the rate once, not once per call.
        Returns whether the rate was lowered.
        """
        with self._lock:
            now = self._clock()
            self.throttles += 1
            if retry_after is not None and retry_after > 0:
                self._blocked_until = max(self._blocked_until, now + min(retry_after, self.max_retry_after))
            if self.max_rate is None or (sent_at is not None and sent_at < self._last_decrease):
                return False
            current = self._rate_at(now)
            assert current is not None
            self._base_rate = max(self.min_rate, current * self.decrease_factor)
            self._base_time = now
            self._last_decrease = now
            self.decreases += 1
            return True

    def on_success(self) -> None:
        """A submit went through (counted; recovery itself is time-based)."""
        with self._lock:
            self.successes += 1

    def _rate_at(self, now: float) -> float | None:
        if self.max_rate is None or self._base_rate is None:
            return None
        recovered = self._base_rate + self.increase_per_second * max(0.0, now - self._base_time)
        return min(self.max_rate, recovered)


class InFlightCap:
    """A thread-safe counter of jobs in flight, with an optional limit and the peak seen."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"in-flight limit must be at least 1, got {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._current = 0
        self._peak = 0

    @property
    def current(self) -> int:
        return self._current

    @property
    def peak(self) -> int:
        return self._peak

    def try_take(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            if self.limit is not None and self._current >= self.limit:
                return False
            self._current += 1
            self._peak = max(self._peak, self._current)
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            if self._current <= 0:
                raise RuntimeError("InFlightCap.release() without a matching try_take()")
            self._current -= 1


@runtime_checkable
class GlobalLimiter(Protocol):
    """A limiter shared beyond this process, consulted before each submit.

    ``acquire`` blocks until the submit may go, or raises to refuse it. It is called on
    a worker thread, never on a scheduler thread.
    """

    def acquire(self, key: str) -> None: ...


class GlobalRateLimitError(MediagenError):
    """The global limiter refused a submit. Retryable: the orchestrator backs off and tries again."""

    default_retryable = True


class RateLimiterAdapter:
    """Adapts objects with ``allow() -> bool`` (Beam's ``RateLimiter``, e.g. ``EnvoyRateLimiter``)
    to :class:`GlobalLimiter`.

    ``limiters`` is one such object for every key, or a mapping from key (``provider`` or
    ``provider/model``) to object; keys it does not name are not limited globally.
    """

    def __init__(self, limiters: Any) -> None:
        self._limiters = limiters

    def acquire(self, key: str) -> None:
        limiter = self._for(key)
        if limiter is not None and not limiter.allow():
            raise GlobalRateLimitError(f"global rate limiter refused a submit for {key!r}")

    def _for(self, key: str) -> Any:
        if not isinstance(self._limiters, Mapping):
            return self._limiters
        if key in self._limiters:
            return self._limiters[key]
        return self._limiters.get(key.split("/", 1)[0])


class ProviderLimiter:
    """Everything limiting one key: submit bucket + AIMD, poll bucket, in-flight cap."""

    def __init__(
        self,
        key: str,
        limits: ProviderLimits,
        *,
        global_limiter: GlobalLimiter | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.key = key
        self.limits = limits
        self.global_limiter = global_limiter
        rate = limits.submits_per_second
        self.aimd = AIMDController(
            rate,
            min_rate=limits.min_submits_per_second,
            increase_per_second=limits.increase_per_second,
            decrease_factor=limits.decrease_factor,
            max_retry_after=limits.max_retry_after,
            clock=clock,
        )
        self.submit_bucket = TokenBucket(rate, limits.capacity(rate), clock=clock) if rate else None
        poll_rate = limits.polls_per_second
        self.poll_bucket = TokenBucket(poll_rate, limits.capacity(poll_rate), clock=clock) if poll_rate else None
        self.in_flight = InFlightCap(limits.max_in_flight)
        self._retry_lock = threading.Lock()
        self.retries = 0

    def try_submit(self) -> float:
        """Take a submit token and return 0, or return the seconds to wait (Retry-After or budget)."""
        blocked = self.aimd.blocked_for()
        if blocked > 0:
            return blocked
        if self.submit_bucket is None:
            return 0.0
        rate = self.aimd.current_rate
        if rate is not None and rate != self.submit_bucket.rate:
            self.submit_bucket.set_rate(rate)
        return self.submit_bucket.try_acquire()

    def try_poll(self) -> float:
        """Take a poll token and return 0, or return the seconds to wait."""
        return 0.0 if self.poll_bucket is None else self.poll_bucket.try_acquire()

    def acquire_submit(self, timeout: float | None = None) -> bool:
        """Blocking twin of :meth:`try_submit` for plain threads (then consults the global limiter)."""
        if not _wait_for(self.try_submit, timeout):
            return False
        if self.global_limiter is not None:
            self.global_limiter.acquire(self.key)
        return True

    def acquire_poll(self, timeout: float | None = None) -> bool:
        """Blocking twin of :meth:`try_poll`."""
        return _wait_for(self.try_poll, timeout)

    def on_throttled(self, retry_after: float | None = None, sent_at: float | None = None) -> None:
        """A call to this provider got a 429 (see :meth:`AIMDController.on_throttled`)."""
        if self.aimd.on_throttled(retry_after, sent_at) and self.submit_bucket is not None:
            rate = self.aimd.current_rate
            if rate is not None:
                self.submit_bucket.set_rate(rate)
            self.submit_bucket.drain()

    def on_success(self) -> None:
        """A submit to this provider succeeded."""
        self.aimd.on_success()

    def on_retry(self) -> None:
        """A call to this provider failed transiently and is about to be tried again (counted)."""
        with self._retry_lock:
            self.retries += 1

    def stats(self) -> dict[str, Any]:
        """Current figures: rate, block, in-flight count, cap and peak, 429s and retries seen."""
        return {
            "submit_rate": self.aimd.current_rate,
            "blocked_for": self.aimd.blocked_for(),
            "in_flight": self.in_flight.current,
            "peak_in_flight": self.in_flight.peak,
            "max_in_flight": self.in_flight.limit,
            "throttles": self.aimd.throttles,
            "rate_decreases": self.aimd.decreases,
            "submit_successes": self.aimd.successes,
            "retries": self.retries,
        }


def _wait_for(try_take: Callable[[], float], timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = try_take()
        if wait == 0:
            return True
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            wait = min(wait, remaining)
        time.sleep(wait)


UNLIMITED = ProviderLimits()


class LimiterRegistry:
    """Per-key limiters of one worker process, built from ``{key: ProviderLimits}``.

    Keys are provider names (``"fal"``) or ``"provider/model"`` (``"fal/fal-ai/veo3"``);
    the most specific configured key wins. Providers without limits get an unlimited
    limiter under their name (still counting in-flight peaks and 429s). ``workers``
    divides every budget (the per-worker share of an account-wide budget): rates exactly,
    in-flight caps rounded down, so the workers' shares add up to at most the budget,
    except a cap smaller than ``workers`` (each worker keeps one slot; a warning says so).
    Thread-safe; share one instance per process.
    """

    def __init__(
        self,
        limits: Mapping[str, ProviderLimits | Mapping[str, Any]] | None = None,
        *,
        workers: int = 1,
        global_limiter: GlobalLimiter | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.workers = workers
        self.global_limiter = global_limiter
        self._clock = clock
        self._configured = {key: _as_limits(key, value) for key, value in (limits or {}).items()}
        self.limits = {key: value.divided(workers) for key, value in self._configured.items()}
        for key, value in self._configured.items():
            cap = value.max_in_flight
            if cap is not None and cap < workers:  # each worker keeps one slot: together they exceed the cap
                log.warning("limits.%s.max_in_flight=%d cannot be shared by %d workers: each takes 1, so up to %d "
                            "jobs may be in flight at once; lower --workers or raise the cap", key, cap, workers,
                            workers)
        self._lock = threading.Lock()
        self._limiters: dict[str, ProviderLimiter] = {}

    def key_for(self, provider: str, model: str | None = None) -> str:
        """The key whose limits apply to ``provider``/``model``."""
        if model is not None:
            specific = f"{provider}/{model}"
            if specific in self.limits:
                return specific
        return provider

    def limiter(self, provider: str, model: str | None = None) -> ProviderLimiter:
        """The limiter for ``provider``/``model``, created on first use."""
        return self.get(self.key_for(provider, model))

    def get(self, key: str) -> ProviderLimiter:
        """The limiter of ``key`` exactly, created on first use."""
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = ProviderLimiter(
                    key, self.limits.get(key, UNLIMITED), global_limiter=self.global_limiter, clock=self._clock
                )
                self._limiters[key] = limiter
            return limiter

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per key, the figures of :meth:`ProviderLimiter.stats`."""
        with self._lock:
            limiters = list(self._limiters.values())
        return {limiter.key: limiter.stats() for limiter in limiters}

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy starts with fresh buckets and counters (locks cannot be pickled anyway).
        return (_rebuild_registry, (self._configured, self.workers, self.global_limiter))


def _rebuild_registry(
    limits: dict[str, ProviderLimits], workers: int, global_limiter: GlobalLimiter | None
) -> LimiterRegistry:
    return LimiterRegistry(limits, workers=workers, global_limiter=global_limiter)


def _as_limits(key: str, value: ProviderLimits | Mapping[str, Any]) -> ProviderLimits:
    if not isinstance(key, str) or not key or key.startswith("/") or key.endswith("/"):
        raise ValueError(f"limits key must be 'provider' or 'provider/model', got {key!r}")
    if isinstance(value, ProviderLimits):
        return value
    return ProviderLimits.model_validate(value)
