"""Asynchronous jobs for providers with submit/poll APIs, driven by time or by polls.

By default a job's state is derived from the time elapsed since creation (on
:attr:`JobStore.clock`, which a test may replace by a clock it advances by hand), so
handlers never need a background worker: ``queued`` for the first 20% of its
duration, ``processing`` until the duration has elapsed, then ``completed`` (or
``failed`` when :meth:`Job.fail` was called or a ``fail_job`` fault applied).

A job created with a ``poll_sequence`` (or while :meth:`JobStore.advance_per_poll`
is in force) ignores the clock instead: its n-th counted poll sees the n-th state
of the sequence, so a test can assert intermediate states however slowly the
machine runs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal

from .faults import Fault

JobState = Literal["queued", "processing", "completed", "failed", "cancelled"]

QUEUED_FRACTION = 0.2
PER_POLL_SEQUENCE: tuple[JobState, ...] = ("queued", "processing", "completed")
"""The default states of a job that advances one state per poll."""


class Job:
    """One emulated asynchronous generation.

    Public attributes: ``id``, ``provider``, ``kind``, ``params`` (whatever the
    handler stored), ``created_at`` (wall-clock unix seconds, for provider
    payloads), ``duration`` (seconds), ``result`` (free-form dict for the
    handler), ``error_message`` (set once the job is doomed to fail) and
    ``polls`` (number of ``jobs.get(id, poll=True)`` calls).
    """

    def __init__(
        self,
        provider: str,
        kind: str,
        params: dict[str, Any],
        duration: float,
        job_id: str | None = None,
        poll_sequence: tuple[JobState, ...] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if poll_sequence is not None and (not poll_sequence or poll_sequence[-1] != "completed"):
            raise ValueError(f"poll_sequence must end in 'completed', got {poll_sequence!r}")
        self.id: str = job_id or uuid.uuid4().hex
        self.poll_sequence = poll_sequence
        self.provider = provider
        self.kind = kind
        self.params = params
        self.duration = max(0.0, float(duration))
        self.created_at: float = time.time()
        self._clock = clock
        self.started: float = clock()
        self.result: dict[str, Any] = {}
        self.error_message: str | None = None
        self.polls = 0
        self._fail_immediately = False
        self._stopped_at: float | None = None  # monotonic time of cancel / immediate failure
        self._cancelled = False
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the job was created."""
        return self._clock() - self.started

    @property
    def ends_at(self) -> float:
        """Monotonic time at which the job stops running."""
        stopped = self._stopped_at
        return stopped if stopped is not None else self.started + self.duration

    def state(self) -> JobState:
        """Current state, derived from elapsed time and any failure/cancel."""
        if self._cancelled:
            return "cancelled"
        if self._fail_immediately:
            return "failed"
        if self.poll_sequence is not None:
            state = self.poll_sequence[self._poll_index()]
            return "failed" if state == "completed" and self.error_message is not None else state
        elapsed = self.elapsed()
        if elapsed >= self.duration:
            return "failed" if self.error_message is not None else "completed"
        if elapsed < self.duration * QUEUED_FRACTION:
            return "queued"
        return "processing"

    @property
    def is_terminal(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.state() in ("completed", "failed", "cancelled")

    def progress(self) -> int:
        """Progress percentage 0..100: 0 while queued, linear while processing, 100 when completed.

        Failed and cancelled jobs report the progress reached when they stopped.
        """
        state = self.state()
        if state == "completed":
            return 100
        if state == "queued":
            return 0
        if self.poll_sequence is not None:
            return max(1, min(99, int(100 * self._poll_index() / max(len(self.poll_sequence) - 1, 1))))
        now = min(self._clock(), self.ends_at)
        start = self.started + self.duration * QUEUED_FRACTION
        span = self.duration - self.duration * QUEUED_FRACTION
        if span <= 0:
            return 99
        return max(0, min(99, int(100 * (now - start) / span)))

    # -- mutations -----------------------------------------------------------

    def fail(self, message: str, *, immediately: bool = False) -> None:
        """Make the job end ``failed`` with ``message``.

        By default the failure shows once the duration has elapsed; with
        ``immediately=True`` the job is ``failed`` from now on.
        """
        with self._lock:
            self.error_message = message
            if immediately and not self.is_terminal:
                self._fail_immediately = True
                self._stopped_at = self._clock()

    def cancel(self) -> bool:
        """Cancel a running job; returns False when it had already finished."""
        with self._lock:
            if self.is_terminal:
                return False
            self._cancelled = True
            self._stopped_at = self._clock()
            return True

    def result_once(self, factory: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Fill ``result`` from ``factory()`` exactly once (thread-safe) and return it.

        Use it to host the output media lazily on the first poll that sees the
        job completed, even when polls arrive concurrently.
        """
        with self._lock:
            if not self.result:
                self.result.update(factory())
            return self.result

    def _poll_index(self) -> int:
        # The first counted poll sees the first state; lookups before any poll see it too.
        assert self.poll_sequence is not None
        return min(max(self.polls - 1, 0), len(self.poll_sequence) - 1)

    def _count_poll(self) -> None:
        with self._lock:
            self.polls += 1

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, provider={self.provider!r}, kind={self.kind!r}, state={self.state()!r})"


class JobStore:
    """Thread-safe registry of :class:`Job` objects (``emu.jobs``)."""

    def __init__(self, default_duration: Callable[[], float]) -> None:
        self._default_duration = default_duration
        self.poll_sequence: tuple[JobState, ...] | None = None
        """When set, jobs created from now on advance one state per poll (see :meth:`advance_per_poll`)."""
        self.clock: Callable[[], float] = time.monotonic
        """The monotonic clock time-driven jobs created from now on read; a test may swap in
        one it advances by hand (the emulator's ``reset`` restores ``time.monotonic``)."""
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def create(
        self,
        provider: str,
        kind: str = "video",
        params: dict[str, Any] | None = None,
        duration: float | None = None,
        *,
        faults: Iterable[Fault] = (),
        job_id: str | None = None,
        poll_sequence: tuple[JobState, ...] | None = None,
    ) -> Job:
        """Create and store a job.

        ``duration`` defaults to ``emu.job_duration``. Pass ``faults=req.faults``
        so that a ``slow_job`` fault sets the duration and a ``fail_job`` fault
        makes the job fail. ``job_id`` lets a provider use its own id format.
        ``poll_sequence`` (default: the store's, see :meth:`advance_per_poll`)
        makes the job advance one state per poll instead of by time.
        """
        faults = list(faults)
        for fault in faults:
            if fault.kind == "slow_job" and fault.seconds is not None:
                duration = fault.seconds
        if duration is None:
            duration = self._default_duration()
        job = Job(provider, kind, dict(params or {}), duration, job_id, poll_sequence or self.poll_sequence, self.clock)
        for fault in faults:
            if fault.kind == "fail_job":
                job.fail(fault.message or "Generation failed")
        with self._lock:
            if job.id in self._jobs:
                raise ValueError(f"duplicate job id {job.id!r}")
            self._jobs[job.id] = job
        return job

    def advance_per_poll(self, sequence: Iterable[JobState] | None = PER_POLL_SEQUENCE) -> None:
        """Make jobs created from now on advance one state of ``sequence`` per poll,
        whatever the clock says (``None`` goes back to time-driven jobs). The
        emulator's ``reset`` restores time-driven jobs."""
        self.poll_sequence = tuple(sequence) if sequence is not None else None

    def get(self, job_id: str, poll: bool = False) -> Job | None:
        """Look a job up; ``poll=True`` counts the lookup in ``job.polls``."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None and poll:
            job._count_poll()
        return job

    def all(self, provider: str | None = None) -> list[Job]:
        """All jobs in creation order, optionally for one provider."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if provider is None or j.provider == provider]

    def peak_running(self, provider: str) -> int:
        """Highest number of this provider's jobs that were running (queued or
        processing) at the same moment, since the last reset."""
        events: list[tuple[float, int]] = []
        for job in self.all(provider):
            events.append((job.started, 1))
            events.append((job.ends_at, -1))
        events.sort()  # at equal times, ends (-1) sort before starts (+1)
        peak = current = 0
        for _, delta in events:
            current += delta
            peak = max(peak, current)
        return peak

    def clear(self) -> None:
        """Forget all jobs."""
        with self._lock:
            self._jobs.clear()
