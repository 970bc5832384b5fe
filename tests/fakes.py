"""Test doubles shared by several test modules."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when a test says so: ``clock()`` reads it, ``advance(s)`` moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
