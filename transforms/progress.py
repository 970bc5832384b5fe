"""A live progress bar for local runs: rows done of total, failed, reused, in flight,
spend so far (of the budget cap), rate and ETA. One bar per worker process, shared by its DoFns through Beam's Shared;
updated only from DoFn threads."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from typing import Any

from apache_beam.utils.shared import Shared


class _Bar:
    def __init__(self, total: int | None, max_usd: float | None = None) -> None:
        import shutil

        from tqdm import tqdm

        # A terminal that reports no size (script, some CI consoles) would make tqdm hide the bar.
        size = shutil.get_terminal_size(fallback=(110, 24))
        self._tqdm = tqdm(total=total, unit="row", desc="mediagen", file=sys.stderr, smoothing=0.1,
                          ncols=size.columns or 110, nrows=size.lines or 24)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._in_flight = 0
        self._spent = 0.0
        self._unknown_cost = 0
        self._max_usd = max_usd

    def started(self, rows: int) -> None:
        with self._lock:
            self._in_flight += rows
            self._refresh()

    def finished(self, status: str, cost_usd: float | None = 0.0) -> None:
        with self._lock:
            self._counts[status] += 1
            if cost_usd is None:
                self._unknown_cost += 1
            else:
                self._spent += cost_usd
            if status != "invalid":
                self._in_flight = max(0, self._in_flight - 1)
            self._tqdm.update(1)
            self._refresh()

    def _refresh(self) -> None:
        counts = self._counts
        self._tqdm.set_postfix_str(
            f"ok={counts['completed']} reused={counts['reused']} failed={counts['failed']} "
            f"invalid={counts['invalid']} in_flight={self._in_flight} {self.spend_text()}",
            refresh=False,
        )

    def spend_text(self) -> str:
        """``spent=$12.40/$250`` (the cap when there is one), noting rows of unknown cost."""
        cap = f"/${self._max_usd:g}" if self._max_usd is not None else ""
        unknown = f" (+{self._unknown_cost} of unknown cost)" if self._unknown_cost else ""
        return f"spent=${self._spent:.2f}{cap}{unknown}"

    def close(self) -> None:
        self._tqdm.close()


class Progress:
    """Picklable handle to the process's progress bar."""

    def __init__(self, total: int | None, run_id: str, max_usd: float | None = None) -> None:
        self.total = total
        self.max_usd = max_usd
        self.tag = f"mediagen-progress-{run_id}"
        self.shared = Shared()
        self._bar: _Bar | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"total": self.total, "max_usd": self.max_usd, "tag": self.tag, "shared": self.shared}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bar = None

    @property
    def bar(self) -> _Bar:
        if self._bar is None:
            self._bar = self.shared.acquire(lambda: _Bar(self.total, self.max_usd), tag=self.tag)
        return self._bar

    def open(self) -> None:
        """Create the bar now and keep it alive for this handle's lifetime."""
        _ = self.bar

    def started(self, rows: int) -> None:
        self.bar.started(rows)

    def finished(self, status: str, cost_usd: float | None = 0.0) -> None:
        self.bar.finished(status, cost_usd)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
