"""JobWindow: the pipeline's driver, keeping hundreds of step generators in flight on a few threads.

The sync and async drivers (``providers.core.driver``) run one ``chain_steps(...)``
generator at a time. Beam gives a DoFn one call in flight per worker thread while
media jobs take minutes, so the window drives many generators at once:

- one scheduler thread owns every generator and advances it, step by step;
- ``Call`` steps of kind ``cpu`` (quick, pure CPU) run inline on the scheduler;
- blocking ``Call`` steps (HTTP, I/O bound) run on a small thread pool and their
  result (or exception) is sent (or thrown) back into the generator, exactly as
  ``drive_sync`` does;
- ``Sleep`` steps become timers on a heap: no thread sleeps for a job;
- before a ``submit`` call the item takes an in-flight slot and a submit token of
  its provider's limiter, before a ``poll`` call a poll token; an item that must wait
  queues (first come, first served) and is woken by a timer, never by a sleeping
  thread;
- a 429 from any call lowers the provider's submit rate (AIMD) and honours its
  Retry-After; the exception still goes back into the generator, whose own
  retry/backoff decides what happens next.

Results are handed over only on the caller's thread (``poll_results``,
``wait_results``, ``drain``), so Beam metrics can be updated there.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator

from providers.core.driver import Call, CallWithTimeout, Emit, Sleep, Steps
from providers.errors import GenerationTimeoutError, MediagenError
from providers.core.limits import GlobalLimiter, LimiterRegistry, ProviderLimiter
from providers.core.pool import CALL_PRIORITY, CallPool, WindowClosedError

log = logging.getLogger(__name__)

SLOT_RECHECK_SECONDS = 0.05
"""How often items waiting for an in-flight slot look again (slots freed by other windows
sharing the registry are not announced to this one)."""
MESSAGES_PER_ROUND = 256
"""Scheduler messages handled before due timers get a turn."""
LIMITED_KINDS = frozenset({"submit", "poll"})
_COUNTER_NAMES = (
    "added", "finished", "failed", "submits", "polls", "fetches", "other_calls", "inline_calls", "handler_calls",
    "ledger_writes", "throttles", "slot_waits", "submit_waits", "poll_waits", "callback_errors",
)  # fmt: skip

ProgressCallback = Callable[[str, Any], None]


@dataclass
class WindowResult:
    """How one item ended: its response, or the error that escaped its generator.

    ``started`` and ``finished`` are wall-clock epoch seconds (``time.time()``).
    """

    item_id: str
    response: Any | None
    error: BaseException | None
    started: float
    finished: float

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def elapsed(self) -> float:
        return self.finished - self.started


@dataclass(eq=False)
class _Item:
    item_id: str
    steps: Steps
    started: float
    op: int = 0
    """Counts dispatched operations; a completion or timer for an older one is stale."""
    slot: ProviderLimiter | None = None
    """The limiter whose in-flight slot this item holds (at most one)."""
    done: bool = False


class _Gate:
    """Items waiting, first come first served, for one limited resource of one provider."""

    def __init__(self, try_take: Callable[[], float]) -> None:
        self.try_take = try_take
        self.waiting: deque[tuple[_Item, Callable[[], None]]] = deque()
        self.wake_at = math.inf


_Message = tuple[Callable[..., None], "_Item | None", tuple[Any, ...]]
class JobWindow:
    """Drives many ``chain_steps(...)`` generators at once within per-provider limits.

    ``max_in_flight`` bounds the items active in this window (``add`` blocks while it
    is full); ``threads`` is the pool that runs blocking calls. ``limiters`` is
    usually the one registry of the worker process, shared by every window in it.

    Ledger calls (claims, job records) are ``Call`` steps of kind ``ledger``: they run on
    the pool like any other blocking call, unthrottled. ``on_progress(item_id, update)``
    runs on the scheduler thread and must be quick; it never runs on the caller's thread:
    do not update Beam metrics from it.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        limiters: LimiterRegistry,
        *,
        max_in_flight: int = 100,
        threads: int = 8,
        on_progress: ProgressCallback | None = None,
        name: str = "mediagen-window",
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.max_in_flight = max_in_flight
        self._limiters = limiters
        self._on_progress = on_progress
        self._name = name
        self._capacity = threading.BoundedSemaphore(max_in_flight)
        self._pool = CallPool(threads, name)
        self._inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()

        # Owned by the scheduler thread.
        self._active: set[_Item] = set()
        self._timers: list[tuple[float, int, Callable[..., None], _Item | None, tuple[Any, ...]]] = []
        self._sequence = itertools.count()
        self._gates: dict[tuple[str, str], _Gate] = {}
        self._limiter_cache: dict[tuple[str, str | None], ProviderLimiter] = {}
        self._held: dict[str, int] = {}
        self._stopping = False

        # Shared with callers, under _state (open/closed/failed) and _cond (results, stats).
        self._state = threading.Lock()
        self._closed = False
        self._failure: BaseException | None = None
        self._cond = threading.Condition()
        self._results: deque[WindowResult] = deque()
        self._unfinished = 0
        self._exited = False
        self._counts: dict[str, int] = dict.fromkeys(_COUNTER_NAMES, 0)
        self._peak_active = 0
        self._peak_held: dict[str, int] = {}

        self._thread = threading.Thread(target=self._run, name=f"{name}-scheduler", daemon=True)
        self._thread.start()

    # -- the caller's side ----------------------------------------------------------

    def add(self, item_id: str, steps: Steps) -> None:
        """Start driving ``steps`` (a fresh ``chain_steps(...)`` generator) as item ``item_id``.

        Blocks only while ``max_in_flight`` items are active. Every added item ends in
        exactly one :class:`WindowResult`. Raises ``RuntimeError`` once the window is
        closed or its scheduler has failed.
        """
        while not self._capacity.acquire(timeout=0.1):
            self._check_open()
        item = _Item(item_id, steps, time.time())
        with self._state:
            try:
                self._check_open()
            except RuntimeError:
                self._capacity.release()
                raise
            with self._cond:
                self._unfinished += 1
                self._counts["added"] += 1
                self._peak_active = max(self._peak_active, self._unfinished)
            self._post(self._start, item, item)

    def poll_results(self) -> list[WindowResult]:
        """The items finished since the last call, without blocking."""
        with self._cond:
            return self._take_results()

    def wait_results(self, timeout: float | None = None) -> list[WindowResult]:
        """Block until at least one item has finished (or ``timeout`` seconds pass) and return
        the finished ones. Returns ``[]`` at once when no item is active."""
        with self._cond:
            self._cond.wait_for(lambda: self._results or self._unfinished == 0 or self._exited, timeout)
            return self._take_results()

    def drain(self) -> Iterator[WindowResult]:
        """Yield results as items finish until every added item has finished."""
        while True:
            batch = self.wait_results()
            if not batch:
                with self._cond:
                    if self._unfinished == 0 and not self._results:
                        return
                    if self._exited and not self._results:
                        raise RuntimeError(
                            f"the job window's scheduler stopped with {self._unfinished} items unfinished"
                        )
                continue
            yield from batch

    @property
    def active(self) -> int:
        """Items added and not finished yet."""
        with self._cond:
            return self._unfinished

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: active and peak_active items, calls by kind (submits, polls, fetches,
        other_calls, inline_calls, handler_calls, ledger_writes), throttles (429s), waits for a slot or
        token, callback_errors, and peak_in_flight_per_provider (slots held by this window)."""
        with self._cond:
            return {
                "active": self._unfinished,
                "peak_active": self._peak_active,
                **self._counts,
                "peak_in_flight_per_provider": dict(self._peak_held),
            }

    def close(self) -> None:
        """Stop the scheduler and the pool. Items still active end with :class:`WindowClosedError`
        (collect them with :meth:`poll_results`). Calls already running are waited for;
        custom handler threads are abandoned (they are daemons)."""
        with self._state:
            already = self._closed
            self._closed = True
            if not already:
                self._post(self._stop, None)
        if threading.current_thread() is not self._thread:
            self._thread.join()
        self._pool.shutdown()

    def __enter__(self) -> "JobWindow":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._failure is not None:
            raise RuntimeError("the job window's scheduler failed") from self._failure
        if self._closed:
            raise RuntimeError("the job window is closed")

    def _take_results(self) -> list[WindowResult]:
        results = list(self._results)
        self._results.clear()
        return results

    # -- the scheduler loop ---------------------------------------------------------

    def _post(self, fn: Callable[..., None], item: _Item | None, *args: Any) -> None:
        self._inbox.put((fn, item, args))

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._handle_messages(self._next_timeout())
                self._fire_timers()
            self._abandon_all(lambda item: WindowClosedError(f"window closed before item {item.item_id!r} finished"))
        except BaseException as exc:
            log.exception("job window scheduler failed; failing every active item")
            failure = exc
            with self._state:
                self._failure = failure
            self._stopping = True
            self._abandon_all(lambda item: _scheduler_failed(item, failure))
        finally:
            with self._cond:
                self._exited = True  # callers waiting for results must not wait for a dead scheduler
                self._cond.notify_all()

    def _next_timeout(self) -> float | None:
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _handle_messages(self, timeout: float | None) -> None:
        try:
            message = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return
        for _ in range(MESSAGES_PER_ROUND):
            self._safely(*message)
            if self._stopping:
                return
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return
        self._safely(*message)

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now and not self._stopping:
            _, _, fn, item, args = heapq.heappop(self._timers)
            self._safely(fn, item, args)

    def _after(self, seconds: float, fn: Callable[..., None], item: _Item | None, *args: Any) -> None:
        heapq.heappush(self._timers, (time.monotonic() + seconds, next(self._sequence), fn, item, args))

    def _safely(self, fn: Callable[..., None], item: _Item | None, args: tuple[Any, ...]) -> None:
        """Run one scheduler action; a bug while handling an item ends that item, not the window."""
        try:
            fn(*args)
        except Exception as exc:
            if item is None or item.done:
                raise
            log.exception("job window: unexpected error while driving item %r", item.item_id)
            _close_quietly(item.steps)
            self._finish(item, None, exc)

    def _stop(self) -> None:
        self._stopping = True

    def _abandon_all(self, error_for: Callable[[_Item], BaseException]) -> None:
        while True:  # items posted but not started yet
            try:
                fn, item, _ = self._inbox.get_nowait()
            except queue.Empty:
                break
            if fn == self._start and item is not None:
                self._active.add(item)
        for item in list(self._active):
            _close_quietly(item.steps)
            self._finish(item, None, error_for(item))

    # -- advancing generators -------------------------------------------------------

    def _start(self, item: _Item) -> None:
        self._active.add(item)
        self._advance(item, None, None)

    def _advance(self, item: _Item, value: Any, error: BaseException | None) -> None:
        """Send ``value`` (or throw ``error``) into the item's generator and act on the steps
        it yields until one needs waiting for."""
        while True:
            try:
                step = item.steps.throw(error) if error is not None else item.steps.send(value)
            except StopIteration as stop:
                self._finish(item, stop.value, None)
                return
            except BaseException as exc:  # the generator's final error
                self._finish(item, None, exc)
                return
            value, error = None, None
            if isinstance(step, Call) and step.kind == "cpu":
                value, error = self._inline(step)
                continue
            if isinstance(step, (Call, CallWithTimeout)):
                self._admit(item, step)
                return
            if isinstance(step, Sleep):
                if step.retry_of is not None:
                    self._limiters.limiter(*step.retry_of).on_retry()
                if step.seconds > 0:
                    self._after(step.seconds, self._wake, item, item, item.op)
                    return
            elif isinstance(step, Emit):
                self._notify_progress(item, step.update)
            # Anything else needs nothing: carry on, like drive_sync.

    def _inline(self, step: Call) -> tuple[Any, BaseException | None]:
        """Run a pure-CPU call here, on the scheduler: two thread hand-offs cost more than it does."""
        self._count("inline_calls")
        try:
            return step.fn(), None
        except Exception as exc:  # handed back to the generator, as from the pool
            return None, exc

    def _wake(self, item: _Item, op: int) -> None:
        if not item.done and item.op == op:
            self._advance(item, None, None)

    def _finish(self, item: _Item, response: Any, error: BaseException | None) -> None:
        if item.done:
            return
        item.done = True
        self._active.discard(item)
        result = WindowResult(item.item_id, response, error, item.started, time.time())
        with self._cond:
            self._results.append(result)
            self._unfinished -= 1
            self._counts["finished"] += 1
            self._counts["failed"] += error is not None
            self._cond.notify_all()
        self._capacity.release()
        self._release_slot(item)

    def _notify_progress(self, item: _Item, update: Any) -> None:
        if self._on_progress is None:
            return
        try:
            self._on_progress(item.item_id, update)
        except Exception:
            self._count("callback_errors")
            log.warning("on_progress callback raised for item %r; the job goes on", item.item_id, exc_info=True)

    # -- admission: in-flight slots and tokens ----------------------------------------

    def _admit(self, item: _Item, step: Call | CallWithTimeout) -> None:
        """Pass the step through its provider's limits (slot, then token), then run it."""
        limiter = self._limiter_for(step)
        kind = _kind(step)
        if limiter is None or kind not in LIMITED_KINDS:
            self._execute(item, step, limiter, kind)
            return
        if item.slot is limiter:
            self._take_token(item, step, limiter, kind)
            return
        self._release_slot(item)  # an item holds one slot: the provider it works with now
        self._through(
            item, self._gate(limiter, "slot"), partial(self._hold_slot, item, step, limiter, kind), "slot_waits"
        )

    def _hold_slot(self, item: _Item, step: Call | CallWithTimeout, limiter: ProviderLimiter, kind: str) -> None:
        item.slot = limiter
        held = self._held.get(limiter.key, 0) + 1
        self._held[limiter.key] = held
        if held > self._peak_held.get(limiter.key, 0):
            with self._cond:
                self._peak_held[limiter.key] = held
        self._take_token(item, step, limiter, kind)

    def _take_token(self, item: _Item, step: Call | CallWithTimeout, limiter: ProviderLimiter, kind: str) -> None:
        proceed = partial(self._execute, item, step, limiter, kind)
        self._through(item, self._gate(limiter, kind), proceed, f"{kind}_waits")

    def _release_slot(self, item: _Item) -> None:
        limiter, item.slot = item.slot, None
        if limiter is None:
            return
        limiter.in_flight.release()
        self._held[limiter.key] -= 1
        gate = self._gates.get((limiter.key, "slot"))
        if gate is not None and gate.waiting:
            self._pump(gate)

    def _gate(self, limiter: ProviderLimiter, resource: str) -> _Gate:
        gate = self._gates.get((limiter.key, resource))
        if gate is None:
            if resource == "slot":
                cap = limiter.in_flight
                gate = _Gate(lambda: 0.0 if cap.try_take() else SLOT_RECHECK_SECONDS)
            else:
                gate = _Gate(limiter.try_submit if resource == "submit" else limiter.try_poll)
            self._gates[(limiter.key, resource)] = gate
        return gate

    def _through(self, item: _Item, gate: _Gate, proceed: Callable[[], None], wait_counter: str) -> None:
        """Run ``proceed`` now if the gate lets the item through, else queue it behind the others."""
        if not gate.waiting:
            wait = gate.try_take()
            if wait <= 0:
                proceed()
                return
            self._arm(gate, wait)
        gate.waiting.append((item, proceed))
        self._count(wait_counter)

    def _pump(self, gate: _Gate) -> None:
        gate.wake_at = math.inf
        while gate.waiting and not self._stopping:
            wait = gate.try_take()
            if wait > 0:
                self._arm(gate, wait)
                return
            item, proceed = gate.waiting.popleft()
            self._safely(proceed, item, ())

    def _arm(self, gate: _Gate, wait: float) -> None:
        when = time.monotonic() + wait
        if when < gate.wake_at:
            gate.wake_at = when
            heapq.heappush(self._timers, (when, next(self._sequence), self._pump, None, (gate,)))

    def _limiter_for(self, step: Call | CallWithTimeout) -> ProviderLimiter | None:
        provider = getattr(step, "provider", None)
        if provider is None:
            return None
        model = getattr(step, "model", None)
        limiter = self._limiter_cache.get((provider, model))
        if limiter is None:
            limiter = self._limiter_cache[(provider, model)] = self._limiters.limiter(provider, model)
        return limiter

    # -- running calls ----------------------------------------------------------------

    def _execute(self, item: _Item, step: Call | CallWithTimeout, limiter: ProviderLimiter | None, kind: str) -> None:
        if isinstance(step, CallWithTimeout):
            self._start_handler(item, step, limiter, kind)
            return
        fn = step.fn
        if kind == "submit" and limiter is not None and limiter.global_limiter is not None:
            fn = partial(_after_global_limit, limiter.global_limiter, limiter.key, fn)
        self._count(_COUNTERS.get(kind, "other_calls"))
        done = partial(self._call_done, limiter, kind, time.monotonic())
        self._on_pool(item, kind, fn, done)

    def _on_pool(self, item: _Item, kind: str, fn: Callable[[], Any], done: Callable[..., None]) -> None:
        """Run ``fn`` on the pool; ``done(item, op, value, error)`` then runs on the scheduler."""
        item.op += 1
        self._pool.submit(CALL_PRIORITY.get(kind, 0), fn, partial(self._post, done, item, item, item.op))

    def _call_done(
        self,
        limiter: ProviderLimiter | None,
        kind: str,
        sent_at: float,
        item: _Item,
        op: int,
        value: Any,
        error: BaseException | None,
    ) -> None:
        if item.done or item.op != op:
            return
        self._feedback(limiter, kind, error, sent_at)
        self._advance(item, value, error)

    def _feedback(
        self, limiter: ProviderLimiter | None, kind: str, error: BaseException | None, sent_at: float
    ) -> None:
        if limiter is None:
            return
        if _is_throttle(error):
            self._count("throttles")
            limiter.on_throttled(getattr(error, "retry_after", None), sent_at)
        elif error is None and kind == "submit":
            limiter.on_success()

    def _start_handler(self, item: _Item, step: CallWithTimeout, limiter: ProviderLimiter | None, kind: str) -> None:
        """A custom handler blocks for the whole generation: a thread of its own, bounded by a timer."""
        self._count("handler_calls")
        item.op += 1
        sent_at = time.monotonic()
        thread = threading.Thread(
            target=self._handler_thread,
            args=(item, item.op, step.sync_fn, limiter, kind, sent_at),
            name=f"{self._name}-handler",
            daemon=True,  # abandoned on timeout: Python cannot kill it, the item moves on
        )
        thread.start()
        self._after(step.timeout, self._handler_timeout, item, item, item.op, step)

    def _handler_thread(
        self, item: _Item, op: int, fn: Callable[[], Any], limiter: ProviderLimiter | None, kind: str, sent_at: float
    ) -> None:
        value, error = None, None
        try:
            value = fn()
        except BaseException as exc:
            error = exc
        self._post(self._handler_done, item, item, op, value, error, limiter, kind, sent_at)

    def _handler_done(
        self,
        item: _Item,
        op: int,
        value: Any,
        error: BaseException | None,
        limiter: ProviderLimiter | None,
        kind: str,
        sent_at: float,
    ) -> None:
        if item.done or item.op != op:
            return  # timed out already
        item.op += 1
        self._feedback(limiter, kind, error, sent_at)
        self._advance(item, value, error)

    def _handler_timeout(self, item: _Item, op: int, step: CallWithTimeout) -> None:
        if item.done or item.op != op:
            return
        item.op += 1
        error = GenerationTimeoutError(f"{step.description} did not finish within {step.timeout:g}s")
        self._advance(item, None, error)

    def _count(self, name: str) -> None:
        with self._cond:
            self._counts[name] += 1


_COUNTERS = {"submit": "submits", "poll": "polls", "fetch": "fetches", "ledger": "ledger_writes"}


def _kind(step: Call | CallWithTimeout) -> str:
    if isinstance(step, Call):
        return step.kind
    # A custom handler call does the whole generation; when it names its provider it counts as a submit.
    return "submit" if getattr(step, "provider", None) is not None else "handler"


def _after_global_limit(global_limiter: GlobalLimiter, key: str, fn: Callable[[], Any]) -> Any:
    global_limiter.acquire(key)
    return fn()


def _is_throttle(error: BaseException | None) -> bool:
    return isinstance(error, MediagenError) and getattr(error, "status_code", None) == 429


def _close_quietly(steps: Steps) -> None:
    try:
        steps.close()
    except Exception:
        log.debug("closing an abandoned generator raised", exc_info=True)


def _scheduler_failed(item: _Item, cause: BaseException) -> WindowClosedError:
    error = WindowClosedError(f"the window's scheduler failed before item {item.item_id!r} finished: {cause!r}")
    error.__cause__ = cause
    return error
