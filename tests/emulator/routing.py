"""Route table: (method, provider, path regex) -> handler."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # pragma: no cover
    from .messages import EmuRequest, EmuResponse

HandlerResult = Union["EmuResponse", dict[str, Any], list[Any]]
Handler = Callable[["EmuRequest"], HandlerResult]


@dataclass(frozen=True)
class Route:
    """One registered route; ``pattern`` is matched with ``re.fullmatch``."""

    methods: frozenset[str]
    provider: str
    pattern: re.Pattern[str]
    handler: Handler
    name: str
    raw_body: bool = False


@dataclass(frozen=True)
class Match:
    """Outcome of :meth:`Router.match`: a route with its groups, or the methods
    allowed on the path (for a 405) when only the method did not match."""

    route: Route | None
    params: dict[str, str | None]
    allowed: frozenset[str]


class Router:
    """Ordered, thread-safe route list; the first registered match wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: list[Route] = []

    def add(
        self,
        methods: str | Iterable[str],
        provider: str,
        pattern: str,
        handler: Handler,
        name: str,
        raw_body: bool = False,
    ) -> Route:
        """Append a route. ``methods`` is one method or several."""
        if isinstance(methods, str):
            methods = [methods]
        if not provider or "/" in provider:
            raise ValueError(f"invalid provider prefix {provider!r}")
        route = Route(
            frozenset(m.upper() for m in methods),
            provider,
            re.compile(pattern),
            handler,
            name,
            raw_body,
        )
        with self._lock:
            self._routes.append(route)
        return route

    def routes(self) -> list[Route]:
        """All routes in registration order."""
        with self._lock:
            return list(self._routes)

    def names(self) -> set[str]:
        """All route names."""
        return {route.name for route in self.routes()}

    def match(self, method: str, provider: str, path: str) -> Match:
        """Find the route for ``method`` on ``provider`` + ``path``.

        ``HEAD`` falls back to ``GET`` routes (the body is then not sent).
        """
        candidates = [r for r in self.routes() if r.provider == provider]
        allowed: set[str] = set()
        for wanted in (method, "GET") if method == "HEAD" else (method,):
            for route in candidates:
                found = route.pattern.fullmatch(path)
                if found is None:
                    continue
                if wanted in route.methods:
                    return Match(route, found.groupdict(), frozenset())
                allowed |= route.methods
        if "GET" in allowed:
            allowed.add("HEAD")
        return Match(None, {}, frozenset(allowed))
