"""Fault descriptions and the per-route FIFO fault queue.

A :class:`Fault` describes one misbehaviour of the emulated provider. Faults are
injected per route name with :meth:`ProviderEmulator.inject` and consumed in FIFO
order, one fault per matching request.

*Generic* faults (``http``, ``delay``, ``truncate``, ``expired``,
``connection_reset``) are applied by the emulator core. All other kinds
(``moderation``, ``fail_job``, ``slow_job`` and anything made with
:meth:`Fault.custom`) are handed to the route handler in ``req.faults``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

GENERIC_KINDS: frozenset[str] = frozenset(
    {"http", "delay", "truncate", "expired", "connection_reset", "answer_late", "lose_answer"}
)


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. Build it with the classmethod factories."""

    kind: str
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float | None = None
    nbytes: int | None = None
    message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_generic(self) -> bool:
        """True when the core applies this fault itself (handlers never see it)."""
        return self.kind in GENERIC_KINDS

    # -- generic faults (applied by the core) ---------------------------------

    @classmethod
    def http(
        cls, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> Fault:
        """Answer with ``status`` instead of calling the handler.

        ``body`` may be a dict/list (sent as JSON), str, bytes or None (a generic
        JSON error body is generated).
        """
        return cls("http", status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Sleep ``seconds`` before handling the request normally."""
        return cls("delay", seconds=float(seconds))

    @classmethod
    def answer_late(cls, seconds: float) -> Fault:
        """Handle the request (a submit creates its job), then hold the answer ``seconds``."""
        return cls("answer_late", seconds=float(seconds))

    @classmethod
    def lose_answer(cls) -> Fault:
        """Handle the request (a submit creates its job), then drop the connection unanswered."""
        return cls("lose_answer")

    @classmethod
    def truncate(cls, nbytes: int) -> Fault:
        """Send the full ``Content-Length`` but only the first ``nbytes`` bytes, then close."""
        return cls("truncate", nbytes=int(nbytes))

    @classmethod
    def expired(cls, status: int = 403, body: Any = None) -> Fault:
        """Answer like an expired signed URL (403 or 404; XML error body by default)."""
        return cls("expired", status=status, body=body)

    @classmethod
    def connection_reset(cls) -> Fault:
        """Read the request, then reset the TCP connection without any response."""
        return cls("connection_reset")

    # -- provider-specific faults (handed to the handler) -----------------------

    @classmethod
    def moderation(cls, message: str = "Request rejected by content moderation") -> Fault:
        """Ask the handler to answer with the provider's moderation/safety rejection."""
        return cls("moderation", message=message)

    @classmethod
    def fail_job(cls, message: str = "Generation failed") -> Fault:
        """The job created by this request ends ``failed`` with ``message``."""
        return cls("fail_job", message=message)

    @classmethod
    def slow_job(cls, seconds: float) -> Fault:
        """The job created by this request takes ``seconds`` to finish."""
        return cls("slow_job", seconds=float(seconds))

    @classmethod
    def custom(cls, kind: str, message: str | None = None, **data: Any) -> Fault:
        """A provider-defined fault kind; the handler reads ``message`` / ``data``."""
        if kind in GENERIC_KINDS:
            raise ValueError(f"{kind!r} is a generic fault kind; use Fault.{kind}()")
        return cls(kind, message=message, data=dict(data))


@dataclass
class _Pending:
    fault: Fault
    remaining: int | None  # None = forever


class FaultQueue:
    """Thread-safe FIFO of faults per route name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[_Pending]] = {}

    def push(self, route_name: str, fault: Fault, times: int | None = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests (None = until cleared)."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._queues.setdefault(route_name, deque()).append(_Pending(fault, times))

    def take(self, route_name: str) -> Fault | None:
        """Consume one use of the oldest pending fault for ``route_name``."""
        with self._lock:
            queue = self._queues.get(route_name)
            if not queue:
                return None
            head = queue[0]
            if head.remaining is not None:
                head.remaining -= 1
                if head.remaining == 0:
                    queue.popleft()
            return head.fault

    def pending(self, route_name: str) -> list[tuple[Fault, int | None]]:
        """Faults still queued for ``route_name`` with their remaining uses."""
        with self._lock:
            return [(p.fault, p.remaining) for p in self._queues.get(route_name, ())]

    def clear(self, route_name: str | None = None) -> None:
        """Drop pending faults for one route name, or for all routes."""
        with self._lock:
            if route_name is None:
                self._queues.clear()
            else:
                self._queues.pop(route_name, None)
