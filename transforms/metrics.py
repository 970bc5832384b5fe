"""The Generate step's Beam metrics, in namespace ``mediagen``.

Counters: ``rows_completed``, ``rows_failed``, ``rows_reused``, ``rows_invalid`` (rows by
status; reused rows count only as reused), ``<provider>/<model>/<status>`` per provider
and model, ``placeholders`` (rows the mock served for a real provider), ``retries``
(attempts that were a retry of the same config: ``try_number > 1``) and ``rate_limited``
(attempts answered with HTTP 429). Distribution: ``generation_ms`` (per request key, from
its arrival at the DoFn to its outcome).
"""

from __future__ import annotations

from typing import Any

from apache_beam.metrics import Metrics

from schemas.results import ResultRow

NAMESPACE = "mediagen"
STATUSES = ("completed", "failed", "reused", "invalid")


def row_status(row: ResultRow) -> str:
    """The status a row is counted under: ``reused`` for reused rows, else its own."""
    return "reused" if row.reused else row.status


class MetricsCollector:
    """Updates the Beam metrics (and the optional progress display) for each row made."""

    def __init__(self, progress: Any = None) -> None:
        self.progress = progress
        self.rows = {status: Metrics.counter(NAMESPACE, f"rows_{status}") for status in STATUSES}
        self.placeholders = Metrics.counter(NAMESPACE, "placeholders")
        self.retries = Metrics.counter(NAMESPACE, "retries")
        self.rate_limited = Metrics.counter(NAMESPACE, "rate_limited")
        self.latency = Metrics.distribution(NAMESPACE, "generation_ms")
        self.by_name: dict[str, Any] = {}  # provider/model/status counters, made once each

    def __getstate__(self) -> dict[str, Any]:
        return {"progress": self.progress}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["progress"])  # type: ignore[misc]

    def row(self, row: ResultRow) -> None:
        """Count one row: its status, its provider/model, and its attempts' retries and 429s."""
        status = row_status(row)
        self.rows[status].inc()
        if status != "invalid" or row.provider is not None:
            name = f"{row.provider}/{row.model}/{status}"
            counter = self.by_name.get(name)
            if counter is None:
                counter = self.by_name[name] = Metrics.counter(NAMESPACE, name)
            counter.inc()
        if row.placeholder:
            self.placeholders.inc()
        attempts = row.execution.attempts if row.execution is not None and not row.reused else []
        retries = sum(1 for a in attempts if a.try_number > 1)
        limited = sum(1 for a in attempts if a.status_code == 429)
        if retries:
            self.retries.inc(retries)
        if limited:
            self.rate_limited.inc(limited)
        if self.progress is not None:
            self.progress.finished(status, row.cost_usd)

    def generation(self, milliseconds: int) -> None:
        """One request key's time from arrival to outcome."""
        self.latency.update(milliseconds)
