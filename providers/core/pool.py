"""The job window's call pool: worker threads running blocking calls by priority."""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Any, Callable


class WindowClosedError(RuntimeError):
    """The window was closed (or its scheduler failed) before the item finished."""



Done = Callable[[Any, "BaseException | None"], None]

CALL_PRIORITY = {"submit": 0, "ledger": 0, "other": 0, "fetch": 1, "poll": 2}
"""Order of queued calls when the pool is busy (lowest first, FIFO within one): starting
provider work and recording it first (a free place in the window earns nothing until its
job is submitted), then finishing items, polls last (they are paced by sleeps anyway).
Measured on bursts of identical mock jobs, FIFO order let the spread of finishing times
grow every generation; this order keeps it small."""


class CallPool:
    """Worker threads running blocking calls by priority (lowest first), FIFO within one priority."""

    def __init__(self, threads: int, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], Any] | None, Done | None]] = (
            queue.PriorityQueue()
        )
        self._sequence = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-call-{index}", daemon=True) for index in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, fn: Callable[[], Any], done: Done) -> None:
        """Run ``fn`` on a worker; ``done(value, error)`` is then called on that worker."""
        self._queue.put((priority, next(self._sequence), fn, done))

    def shutdown(self) -> None:
        """Drop the calls not started (their ``done`` gets a WindowClosedError), wait for the running ones."""
        while True:
            try:
                _, _, _, done = self._queue.get_nowait()
            except queue.Empty:
                break
            if done is not None:
                done(None, WindowClosedError("the call was dropped because the window closed"))
        for _ in self._threads:
            self._queue.put((-1, next(self._sequence), None, None))
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    def _work(self) -> None:
        while True:
            _, _, fn, done = self._queue.get()
            if fn is None or done is None:
                return
            try:
                value, error = fn(), None
            except BaseException as exc:  # handed to the item, whatever it is
                value, error = None, exc
            done(value, error)
