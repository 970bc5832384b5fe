"""WriteResults: the Parquet results table and the run manifest.

Rows are written in shards where they are made (fused with Generate: one per bundle,
flushed every ``SHARD_ROWS``, so no full row is ever shuffled) under
``results/_tmp-<run>/``; only each shard's small summary (path, counts, cost, store
requests) travels on. Once every shard exists, a single finalize step streams their row
groups into ONE Parquet file (never all rows in memory) and publishes it with one atomic
write, so a reader globbing
``results/*.parquet`` sees, at every instant, either the previous table or the new one:

- ``replace`` mode (default): ``results/table.parquet`` is replaced (an atomic rename on
  local disk, a single object upload on GCS and S3);
- ``append`` mode: ``results/part-<run_id>.parquet`` is added beside the earlier ones.

Then the run's ledger index parts are merged into ``_ledger/index/<run_id>.parquet``
(``transforms.ledger.compact_index``: the next run reads done records from it instead of
one by one), ``_runs/<run_id>.json`` is written and the shards are removed. Shards of a retried
bundle that the runner discarded are never published; shard folders left by a crashed
run are swept by a later run once they are ``STALE_SECONDS`` old.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from schemas import JobConfig, utc_now
from schemas.results import RESULTS_SCHEMA, ResultRow

from .ledger import compact_index
from .storage import RENAMING_PROTOCOLS, Storage
from .store_counts import STORE_COUNTS, CountingStorage, merge_counts, summarize

log = logging.getLogger(__name__)

RESULTS_DIR = "results"
RUNS_DIR = "_runs"
MEDIA_DIR = "media"
SHARD_ROWS = 2000
"""Rows a writer holds before writing them as a part (its memory: a few KB per row)."""


def tmp_dir(run_id: str) -> str:
    return f"{RESULTS_DIR}/_tmp-{run_id}"


def rows_to_parquet(rows: list[ResultRow]) -> bytes:
    """Encode rows with the fixed results schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([r.to_record() for r in rows], schema=RESULTS_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def shard_summary(relpath: str, rows: list[ResultRow]) -> dict[str, Any]:
    """What finalize needs to know of a shard: where it is and what it counts."""
    return {
        "path": relpath,
        "rows": len(rows),
        "status": dict(Counter(r.status for r in rows)),
        "reused": sum(1 for r in rows if r.reused),
        "placeholders": sum(1 for r in rows if r.placeholder),
        "provider": dict(Counter(f"{r.provider}/{r.model}" for r in rows if r.status == "completed")),
        "failed_by_error": dict(Counter(r.error_type for r in rows if r.status != "completed")),
        "media_bytes": sum(m.bytes for r in rows if not r.reused for m in r.media),
        "cost": cost_by_provider_model(rows),
    }


def cost_by_provider_model(rows: list[ResultRow]) -> dict[str, dict[str, float]]:
    """Per ``provider/model``: dollars spent, attempts paid, attempts provider-reported and
    attempts of unknown price, from the attempts of the rows that carry a cost (rows sharing
    a request carry it once)."""
    totals: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.cost_source == "none" or row.execution is None:
            continue
        for attempt in row.execution.attempts:
            if attempt.cost_source == "none":
                continue
            entry = totals.setdefault(f"{attempt.provider}/{attempt.model}",
                                      {"usd": 0.0, "attempts": 0, "provider_reported": 0, "unknown_price": 0})
            entry["attempts"] += 1
            entry["usd"] = round(entry["usd"] + (attempt.cost_usd or 0.0), 6)
            entry["provider_reported"] += attempt.cost_source == "provider-reported"
            entry["unknown_price"] += attempt.cost_source == "unknown"
    return totals


def merge_costs(parts: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Sum per-shard :func:`cost_by_provider_model` results."""
    merged: dict[str, dict[str, float]] = {}
    for part in parts:
        for name, entry in part.items():
            into = merged.setdefault(name, {k: 0 for k in entry})
            for field, value in entry.items():
                into[field] = round(into.get(field, 0) + value, 6)
    return merged


def earlier_spend(storage: Storage, run_id: str) -> float:
    """What earlier runs' manifests under this output root say they spent (``budget.scope:
    output``). A run that crashed before writing its manifest is not counted."""
    total = 0.0
    for path in storage.list(RUNS_DIR):
        name = path.rsplit("/", 1)[-1]
        if not name.endswith(".json") or name.endswith(".plan.json") or name == f"{run_id}.json":
            continue
        manifest = storage.read_json(f"{RUNS_DIR}/{name}") or {}
        total += float((manifest.get("cost") or {}).get("total_usd") or 0.0)
    return round(total, 6)


class WriteShardsDoFn(beam.DoFn):
    """Buffers rows and writes them as Parquet shards under the run's temporary folder."""

    def __init__(self, output_root: str, run_id: str, storage_options: dict[str, Any] | None = None) -> None:
        self.output_root = output_root
        self.run_id = run_id
        self.storage_options = storage_options

    def setup(self) -> None:
        self.storage = CountingStorage(self.output_root, self.storage_options)

    def start_bundle(self) -> None:
        self.buffer: list[ResultRow] = []

    def process(self, row: ResultRow) -> Iterator[dict[str, Any]]:
        self.buffer.append(row)
        if len(self.buffer) >= SHARD_ROWS:
            yield self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        if self.buffer:
            yield GlobalWindows.windowed_value(self._flush())

    def _flush(self) -> dict[str, Any]:
        rows, self.buffer = self.buffer, []
        relpath = f"{tmp_dir(self.run_id)}/{uuid.uuid4().hex}.parquet"
        self.storage.write_bytes(relpath, rows_to_parquet(rows))
        # This process's store requests since the last part (Generate's among them) ride along.
        return {**shard_summary(relpath, rows), "store": STORE_COUNTS.take()}


TABLE = f"{RESULTS_DIR}/table.parquet"
STALE_SECONDS = 3600.0
"""Temporary files older than this belong to no live run: a later run removes them."""


def table_path(run_id: str, mode: str) -> str:
    """Where a run publishes its table: the one table in ``replace`` mode, its own part in ``append``."""
    return TABLE if mode == "replace" else f"{RESULTS_DIR}/part-{run_id}.parquet"


def finalize(
    shards: list[dict[str, Any]],
    *,
    output_root: str,
    storage_options: dict[str, Any] | None,
    run_id: str,
    job: JobConfig,
    inputs: list[str],
    started_at: datetime,
    mode: str,
) -> dict[str, Any]:
    """Publish the shards as the results table (one atomic write) and write the run manifest."""
    storage = CountingStorage(output_root, storage_options)
    target = table_path(run_id, mode)
    shards = sorted(shards, key=lambda s: s["path"])
    if len(shards) == 1:
        # Already a whole table: one rename (local) or server-side copy (GCS, S3) publishes it.
        storage.move(shards[0]["path"], target)
    else:
        with tempfile.TemporaryDirectory(prefix="mediagen-table-") as spool:
            merged = os.path.join(spool, "table.parquet")
            merge_shards(storage, [s["path"] for s in shards], merged)
            storage.put_file(merged, target)
    if mode == "replace":
        for stale in storage.list(RESULTS_DIR):
            if stale.endswith(".parquet") and stale != TABLE:
                storage.delete(stale)  # parts of earlier append-mode runs
    indexed = compact_index(storage, run_id)
    manifest = build_manifest(shards, run_id=run_id, job=job, inputs=inputs, started_at=started_at,
                              tables=[storage.uri(target)], storage=storage)
    manifest["ledger_index_records"] = indexed
    storage.write_json(f"{RUNS_DIR}/{run_id}.json", manifest)
    _remove_tmp(storage, run_id)
    return manifest


def merge_shards(storage: Storage, shard_paths: list[str], local_path: str) -> None:
    """Stream the shards' row groups into one local Parquet file (an empty table keeps the schema)."""
    import pyarrow.parquet as pq

    with pq.ParquetWriter(local_path, RESULTS_SCHEMA, compression="zstd") as writer:
        for relpath in shard_paths:
            with storage.fs.open(storage.path(relpath), "rb") as handle:
                shard = pq.ParquetFile(handle)
                for index in range(shard.num_row_groups):
                    writer.write_table(shard.read_row_group(index).cast(RESULTS_SCHEMA))


def _remove_tmp(storage: Storage, run_id: str) -> None:
    for leftover in list(storage.list(tmp_dir(run_id))):
        storage.delete(leftover)
    storage.remove_empty_dir(tmp_dir(run_id))


def sweep_stale_temporaries(storage: Storage, now: float | None = None) -> int:
    """Remove what crashed runs left: shard folders under ``results/`` and ``*.tmp-*`` files of
    interrupted atomic writes (results and, on local disk, media), once older than
    ``STALE_SECONDS``. Returns how many files went."""
    cutoff = (now if now is not None else time.time()) - STALE_SECONDS
    removed = 0
    for entry in list(storage.list(RESULTS_DIR)):
        name = entry.rsplit("/", 1)[-1]
        if name.startswith("_tmp-"):
            files = list(storage.list(entry))
            if all(storage.modified_before(f, cutoff) for f in files):
                for leftover in files:
                    storage.delete(leftover)
                    removed += 1
                storage.remove_empty_dir(entry)
        elif ".tmp-" in name and storage.modified_before(entry, cutoff):
            storage.delete(entry)
            removed += 1
    if storage.protocol in RENAMING_PROTOCOLS:  # object stores never hold half-written media
        for folder in list(storage.list(MEDIA_DIR)):
            for entry in list(storage.list(folder)):
                if ".tmp-" in entry.rsplit("/", 1)[-1] and storage.modified_before(entry, cutoff):
                    storage.delete(entry)
                    removed += 1
    return removed


def build_manifest(
    shards: list[dict[str, Any]], *, run_id: str, job: JobConfig, inputs: list[str], started_at: datetime,
    tables: list[str], storage: Storage,
) -> dict[str, Any]:
    """The run manifest: redacted job config, timings, counts by status and by provider."""
    status: Counter[str] = Counter()
    provider: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for shard in shards:
        status.update(shard["status"])
        provider.update(shard["provider"])
        errors.update(shard["failed_by_error"])
    finished_at = utc_now()
    costs = merge_costs([s.get("cost", {}) for s in shards])
    return {
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "wall_seconds": round((finished_at - started_at).total_seconds(), 3),
        "inputs": inputs,
        "output": storage.uri(""),  # the root media_uris are relative to (schemas.results.resolve_media_uri)
        "tables": tables,
        "rows": sum(s["rows"] for s in shards),
        "counts_by_status": dict(status),
        "reused": sum(s["reused"] for s in shards),
        "placeholders": sum(s.get("placeholders", 0) for s in shards),
        "completed_by_provider_model": dict(provider),
        "not_completed_by_error_type": dict(errors),
        "new_media_bytes": sum(s["media_bytes"] for s in shards),
        # Object-store requests of the whole run (this process's last ones, the manifest's
        # own write and the temporaries' removal aside), with objects written, per row.
        "store": summarize(merge_counts([*(s.get("store", {}) for s in shards), STORE_COUNTS.take()]),
                           sum(s["rows"] for s in shards)),
        "cost": {
            "total_usd": round(sum(c["usd"] for c in costs.values()), 6),
            "unknown_price_attempts": int(sum(c["unknown_price"] for c in costs.values())),
            "by_provider_model": costs,
            "budget": job.budget.model_dump() if job.budget is not None else None,
        },
        "job": redacted_job(job),
    }


def redacted_job(job: JobConfig) -> dict[str, Any]:
    """The job as JSON with credential-like values masked (providers.core.redaction)."""
    from providers.core.redaction import redacted_job_data

    return redacted_job_data(job)


class WriteResults(beam.PTransform):
    """Rows -> Parquet shards -> published table + manifest (a single-element PCollection)."""

    def __init__(self, output_root: str, run_id: str, job: JobConfig, inputs: list[str], started_at: datetime,
                 storage_options: dict[str, Any] | None = None, mode: str = "replace") -> None:
        super().__init__()
        self.output_root = output_root
        self.run_id = run_id
        self.job = job
        self.inputs = inputs
        self.started_at = started_at
        self.storage_options = storage_options
        self.mode = mode

    def expand(self, rows: Any) -> Any:
        """``rows``: one PCollection of result rows, or several (a tuple): each is written
        where it is made (one shard writer per input, fused with its producer, so no full
        row is shuffled); only the parts' small summaries meet, in the finalize step."""
        inputs = rows if isinstance(rows, (tuple, list)) else (rows,)
        writer = WriteShardsDoFn(self.output_root, self.run_id, self.storage_options)
        summaries = [
            pcoll | (f"WriteShards{index}" if index else "WriteShards") >> beam.ParDo(writer)
            for index, pcoll in enumerate(inputs)
        ]
        return (
            (summaries[0] if len(summaries) == 1 else tuple(summaries) | "AllShards" >> beam.Flatten())
            | "CollectShards" >> beam.combiners.ToList()
            | "Finalize" >> beam.Map(
                finalize, output_root=self.output_root, storage_options=self.storage_options, run_id=self.run_id,
                job=self.job, inputs=self.inputs, started_at=self.started_at, mode=self.mode,
            )
        )
