"""Object-store requests, counted per worker process (``CountingStorage``).

Each call of a :class:`~transforms.storage.Storage` method is one request on an object
store (a multi-page listing or a multi-part upload is counted once: GCS and S3 bill per
page / part, see ``benchmarks/scale.py``). Counts are process-wide; the results writer
takes them into each part's summary, so the run manifest adds them up across workers.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Iterator

from .storage import Storage

WRITES = ("write_bytes", "create_only", "put_file")
"""Calls that leave an object (new or overwritten)."""
OPERATION_CLASS = {
    # GCS operation classes (S3: PUT/COPY/POST/LIST vs GET/HEAD, the same split)
    "write_bytes": "A", "create_only": "A", "put_file": "A", "list": "A", "move": "A",
    "read_bytes": "B", "exists": "B", "size": "B", "modified_before": "B",
    "delete": "free",
}


class StoreCounts:
    """Requests per Storage method since the last :meth:`take` (thread-safe)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, method: str) -> None:
        with self._lock:
            self._counts[method] += 1

    def take(self) -> dict[str, int]:
        """The counts so far, and start again from zero."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts


STORE_COUNTS = StoreCounts()
"""This process's requests, taken into result-part summaries."""


class CountingStorage(Storage):
    """A :class:`Storage` that counts its requests in :data:`STORE_COUNTS`."""

    def read_bytes(self, relpath: str) -> bytes:
        STORE_COUNTS.add("read_bytes")
        return super().read_bytes(relpath)

    def exists(self, relpath: str) -> bool:
        STORE_COUNTS.add("exists")
        return super().exists(relpath)

    def size(self, relpath: str) -> int:
        STORE_COUNTS.add("size")
        return super().size(relpath)

    def write_bytes(self, relpath: str, data: bytes, content_type: str | None = None) -> None:
        STORE_COUNTS.add("write_bytes")
        super().write_bytes(relpath, data, content_type)

    def create_only(self, relpath: str, data: bytes) -> bool:
        STORE_COUNTS.add("create_only")
        return super().create_only(relpath, data)

    def put_file(self, local_path: str, relpath: str, content_type: str | None = None) -> None:
        STORE_COUNTS.add("put_file")
        super().put_file(local_path, relpath, content_type)

    def modified_before(self, relpath: str, cutoff: float) -> bool:
        STORE_COUNTS.add("modified_before")
        return super().modified_before(relpath, cutoff)

    def move(self, source: str, target: str) -> None:
        STORE_COUNTS.add("move")
        super().move(source, target)

    def delete(self, relpath: str) -> None:
        STORE_COUNTS.add("delete")
        super().delete(relpath)

    def list(self, reldir: str) -> Iterator[str]:
        STORE_COUNTS.add("list")
        return super().list(reldir)


def summarize(counts: dict[str, int], rows: int) -> dict[str, Any]:
    """Manifest figures: requests by method and class, objects written, and per row."""
    by_class: Counter[str] = Counter()
    for method, n in counts.items():
        by_class[OPERATION_CLASS.get(method, "A")] += n
    writes = sum(counts.get(m, 0) for m in WRITES)
    requests = sum(counts.values())
    per_row = (lambda n: round(n / rows, 3) if rows else 0.0)
    return {
        "requests": requests,
        "by_method": dict(sorted(counts.items())),
        "by_class": dict(sorted(by_class.items())),
        "objects_written": writes,
        "requests_per_row": per_row(requests),
        "objects_written_per_row": per_row(writes),
    }


def merge_counts(parts: list[dict[str, int]]) -> dict[str, int]:
    """Sum several :meth:`StoreCounts.take` results."""
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return dict(total)
