"""Progress of a local run, told truthfully: rows done / failed / invalid / reused of the total,
rate, ETA and spend; per provider (limiter key) the jobs in flight against their cap, 429s and retries.

Two modes, one display per worker process (shared by its DoFns through Beam's Shared):

- ``bar`` (stderr is a terminal): a tqdm-style bar line sized to the terminal, then compact
  lines packed to its width (counts and spend, then one segment per provider); redrawn in
  place, never cut or wrapped, richer on a wide terminal;
- ``log`` (cron, nohup, Airflow logs): one plain line every ``interval`` seconds (no ``\\r``,
  no ANSI), and one when the run ends.

Row counts come from the DoFn (``finished``); provider figures from the worker's
:class:`~providers.core.limits.LimiterRegistry` handed over with ``watch``: what the limiters
enforce and observe, not rows held by the DoFn.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Literal

from apache_beam.utils.shared import Shared

Mode = Literal["bar", "log"]
Clock = Callable[[], float]

DEFAULT_INTERVAL = 30.0
"""Seconds between two plain progress lines when stderr is not a terminal."""
RATE_WINDOW = 60.0
"""The rate (and so the ETA) is rows finished over the last this many seconds."""
REDRAW_SECONDS = 0.1
"""A bar is redrawn at most this often on row events (the ticker redraws it anyway)."""
TICK_SECONDS = 0.5
"""How often the background ticker redraws the bar or checks whether a log line is due."""
MAX_PROVIDER_LINES = 8
"""Bar mode: provider lines beyond this are summed up in one line."""
WIDE = 120
"""From this width on, provider segments also show the peak in flight and the submit rate."""
_STATUS_ORDER = ("completed", "reused", "failed", "invalid")
_STATUS_LABEL = {"completed": "ok"}


def progress_mode(stream: IO[str]) -> Mode:
    """``bar`` when ``stream`` is a terminal, else ``log``."""
    try:
        return "bar" if stream.isatty() else "log"
    except (AttributeError, ValueError):  # closed or not a real stream
        return "log"


@dataclass(frozen=True)
class ProviderFigures:
    """What one limiter key shows: jobs in flight (and the cap), peak, 429s, retries, submit rate."""

    key: str
    in_flight: int
    cap: int | None
    peak: int
    throttles: int
    retries: int
    submit_rate: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """The figures of one moment, rendered by :func:`bar_lines` and :func:`log_line`."""

    total: int | None
    counts: dict[str, int]
    elapsed: float
    rate: float | None
    spend: str
    providers: list[ProviderFigures] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None when the total or the rate is unknown)."""
        if self.total is None or not self.rate:
            return None
        return max(0, self.total - self.done) / self.rate


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _count_items(snapshot: Snapshot) -> list[str]:
    statuses = list(_STATUS_ORDER) + sorted(set(snapshot.counts) - set(_STATUS_ORDER))
    return [f"{_STATUS_LABEL.get(s, s)} {snapshot.counts.get(s, 0)}" for s in statuses]


def _provider_text(figures: ProviderFigures, wide: bool) -> str:
    cap = f"/{figures.cap}" if figures.cap is not None else ""
    text = f"{figures.key} {figures.in_flight}{cap} in flight, 429s {figures.throttles}, retries {figures.retries}"
    if wide:
        text += f", peak {figures.peak}"
        if figures.submit_rate is not None:
            text += f", submit {figures.submit_rate:.3g}/s"
    return text


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _pack(segments: list[str], width: int, separator: str) -> list[str]:
    """Segments joined on lines of at most ``width`` characters, breaking only between segments."""
    lines: list[str] = []
    for segment in segments:
        segment = _fit(segment, width)
        if lines and len(lines[-1]) + len(separator) + len(segment) <= width:
            lines[-1] += separator + segment
        else:
            lines.append(segment)
    return lines


def bar_lines(snapshot: Snapshot, width: int) -> list[str]:
    """The bar display for a terminal ``width`` columns wide: every line shorter than ``width``
    (the last column is left free, so no terminal wraps a line)."""
    from tqdm import tqdm

    usable = max(20, width - 1)
    total = max(snapshot.total, snapshot.done) if snapshot.total is not None else None
    meter = tqdm.format_meter(snapshot.done, total, snapshot.elapsed, ncols=usable, prefix="mediagen",
                              unit="row", rate=snapshot.rate)
    lines = [_fit(meter, usable)]
    lines += _pack(_count_items(snapshot) + [snapshot.spend], usable, "  ")
    wide = usable >= WIDE
    segments = [_provider_text(figures, wide) for figures in snapshot.providers[:MAX_PROVIDER_LINES]]
    rest = snapshot.providers[MAX_PROVIDER_LINES:]
    if rest:
        segments.append(f"+{len(rest)} more: {sum(f.in_flight for f in rest)} in flight, "
                        f"429s {sum(f.throttles for f in rest)}, retries {sum(f.retries for f in rest)}")
    lines += _pack(segments, usable, " | ")
    return lines


def log_line(snapshot: Snapshot, final: bool = False) -> str:
    """One plain line (no ``\\r``, no ANSI) with every figure of ``snapshot``."""
    done = f"{snapshot.done}/{snapshot.total} rows" if snapshot.total is not None else f"{snapshot.done} rows"
    if snapshot.total:
        done += f" ({100 * snapshot.done / snapshot.total:.0f}%)"
    parts = [done + ": " + ", ".join(_count_items(snapshot))]
    rate = f"{snapshot.rate:.2f} rows/s" if snapshot.rate is not None else "rate unknown"
    if not final and snapshot.eta is not None:
        rate += f", ETA {_duration(snapshot.eta)}"
    parts.append(rate)
    parts.append(snapshot.spend)
    parts += [_provider_text(figures, wide=True) for figures in snapshot.providers]
    head = "done" if final else "progress"
    return f"mediagen {head} [{_duration(snapshot.elapsed)}] " + "; ".join(parts)


def _terminal_width(stream: IO[str]) -> int:
    """The width of the terminal behind ``stream`` (asked each time: terminals get resized)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        try:
            return int(os.environ.get("COLUMNS", "")) or 80
        except ValueError:
            return 80


class ProgressDisplay:
    """The display of one worker process; thread-safe.

    ``clock`` (monotonic seconds) drives the rate, ETA and the log interval, so tests advance
    it instead of waiting. ``ticker=False`` starts no background thread: callers (tests)
    call :meth:`tick` themselves. ``width`` fixes the bar width instead of asking the terminal.
    """

    def __init__(
        self,
        total: int | None,
        max_usd: float | None = None,
        *,
        mode: Mode = "bar",
        interval: float = DEFAULT_INTERVAL,
        stream: IO[str] | None = None,
        clock: Clock = time.monotonic,
        ticker: bool = True,
        width: int | None = None,
    ) -> None:
        if mode not in ("bar", "log"):
            raise ValueError(f"progress mode must be 'bar' or 'log', got {mode!r}")
        if not interval > 0:
            raise ValueError(f"progress interval must be a positive number of seconds, got {interval!r}")
        self.total = total
        self.mode = mode
        self.interval = interval
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._width = width
        self._max_usd = max_usd
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._finish_times: deque[float] = deque()
        self._spent = 0.0
        self._unknown_cost = 0
        self._registries: dict[int, Any] = {}
        self._start = clock()
        self._last_output = self._start
        self._drawn_lines = 0
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if ticker:
            self._thread = threading.Thread(target=self._tick_loop, name="mediagen-progress", daemon=True)
            self._thread.start()

    # -- events --------------------------------------------------------------------

    def started(self, rows: int) -> None:
        """Rows handed to the DoFn's window. Not shown: the jobs in flight come from the limiters."""

    def finished(self, status: str, cost_usd: float | None = 0.0) -> None:
        """One row ended as ``status`` (completed, failed, invalid, reused...) costing ``cost_usd``
        (None: unknown)."""
        with self._lock:
            self._counts[status] += 1
            self._finish_times.append(self._clock())
            if cost_usd is None:
                self._unknown_cost += 1
            else:
                self._spent += cost_usd
            if self.mode == "bar" and self._clock() - self._last_output >= REDRAW_SECONDS:
                self._draw()

    def watch(self, registry: Any) -> None:
        """Show the per-key figures of ``registry`` (a LimiterRegistry; watching one twice is a no-op)."""
        with self._lock:
            self._registries[id(registry)] = registry

    def spend_text(self) -> str:
        """``spent=$12.40/$250`` (the cap when there is one), noting rows of unknown cost."""
        cap = f"/${self._max_usd:g}" if self._max_usd is not None else ""
        unknown = f" (+{self._unknown_cost} of unknown cost)" if self._unknown_cost else ""
        return f"spent=${self._spent:.2f}{cap}{unknown}"

    # -- figures ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The figures now."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> Snapshot:
        now = self._clock()
        while self._finish_times and self._finish_times[0] <= now - RATE_WINDOW:
            self._finish_times.popleft()
        elapsed = now - self._start
        span = min(RATE_WINDOW, elapsed)
        rate = len(self._finish_times) / span if span > 0 and self._finish_times else None
        return Snapshot(self.total, dict(self._counts), elapsed, rate, self.spend_text(), self._providers())

    def _providers(self) -> list[ProviderFigures]:
        merged: dict[str, ProviderFigures] = {}
        for registry in self._registries.values():
            for key, stats in registry.stats().items():
                figures = ProviderFigures(
                    key, stats["in_flight"], stats["max_in_flight"], stats["peak_in_flight"],
                    stats["throttles"], stats.get("retries", 0), stats.get("submit_rate"),
                )
                seen = merged.get(key)
                if seen is not None:  # the same key in two registries: add them up
                    figures = ProviderFigures(
                        key, seen.in_flight + figures.in_flight,
                        None if seen.cap is None or figures.cap is None else seen.cap + figures.cap,
                        seen.peak + figures.peak, seen.throttles + figures.throttles,
                        seen.retries + figures.retries, figures.submit_rate,
                    )
                merged[key] = figures
        return [merged[key] for key in sorted(merged)]

    # -- output ----------------------------------------------------------------------

    def tick(self) -> None:
        """Redraw the bar, or write a log line when ``interval`` seconds have passed since the last."""
        with self._lock:
            if self._closed:
                return
            if self.mode == "bar":
                self._draw()
            elif self._clock() - self._last_output >= self.interval:
                self._write_line(log_line(self._snapshot()))

    def close(self) -> None:
        """Show the final figures (the bar's last state, or a last log line) and stop the ticker."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            if self._closed:
                return
            if self.mode == "bar":
                self._draw()
                self._stream.write("\n")
                self._stream.flush()
            else:
                self._write_line(log_line(self._snapshot(), final=True))
            self._closed = True

    def _tick_loop(self) -> None:
        period = TICK_SECONDS if self.mode == "bar" else min(1.0, self.interval)
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception:  # a display must never take the run down
                return

    def _write_line(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()
        self._last_output = self._clock()

    def _draw(self) -> None:
        """Redraw the bar's lines in place: back to the first line drawn, each line cleared and
        rewritten, leftover lines of a taller earlier drawing cleared."""
        width = self._width or _terminal_width(self._stream)
        lines = bar_lines(self._snapshot(), width)
        out = ["\r"]
        if self._drawn_lines > 1:
            out.append(f"\x1b[{self._drawn_lines - 1}A")
        out.append("\n".join("\x1b[2K" + line for line in lines))
        extra = self._drawn_lines - len(lines)
        if extra > 0:
            out.append("\n\x1b[2K" * extra + f"\x1b[{extra}A")
        self._stream.write("".join(out))
        self._stream.flush()
        self._drawn_lines = len(lines)
        self._last_output = self._clock()


class Progress:
    """Picklable handle to the process's :class:`ProgressDisplay` (created on first use)."""

    def __init__(
        self,
        total: int | None,
        run_id: str,
        max_usd: float | None = None,
        *,
        mode: Mode = "bar",
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        if mode not in ("bar", "log"):
            raise ValueError(f"progress mode must be 'bar' or 'log', got {mode!r}")
        if not interval > 0:
            raise ValueError(f"--progress_interval must be a positive number of seconds, got {interval!r}")
        self.total = total
        self.max_usd = max_usd
        self.mode: Mode = mode
        self.interval = interval
        self.tag = f"mediagen-progress-{run_id}"
        self.shared = Shared()
        self._display: ProgressDisplay | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_display"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._display = None

    @property
    def display(self) -> ProgressDisplay:
        if self._display is None:
            self._display = self.shared.acquire(self._create, tag=self.tag)
        return self._display

    bar = display  # the name of earlier versions

    def _create(self) -> ProgressDisplay:
        return ProgressDisplay(self.total, self.max_usd, mode=self.mode, interval=self.interval)

    def open(self) -> None:
        """Create the display now and keep it alive for this handle's lifetime."""
        _ = self.display

    def started(self, rows: int) -> None:
        self.display.started(rows)

    def finished(self, status: str, cost_usd: float | None = 0.0) -> None:
        self.display.finished(status, cost_usd)

    def watch(self, registry: Any) -> None:
        """Show the per-provider figures of this worker's LimiterRegistry."""
        self.display.watch(registry)

    def close(self) -> None:
        if self._display is not None:
            self._display.close()
