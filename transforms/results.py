"""WriteResults: the Parquet results table and the run manifest.

Rows are written in shards (one per bundle, flushed every ``SHARD_ROWS``) under a
temporary folder; once every shard exists, a single finalize step moves them to
``results/part-<run>-<n>.parquet``, removes the previous run's table (``replace``
mode) and writes ``_runs/<run_id>.json``. Shards of a retried bundle that the runner
discarded are never moved, so no row is duplicated.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections import Counter
from datetime import datetime
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from schemas import JobConfig, utc_now
from schemas.results import RESULTS_SCHEMA, ResultRow

from .storage import Storage

log = logging.getLogger(__name__)

RESULTS_DIR = "results"
RUNS_DIR = "_runs"
SHARD_ROWS = 5000


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
        "provider": dict(Counter(f"{r.provider}/{r.model}" for r in rows if r.status == "completed")),
        "failed_by_error": dict(Counter(r.error_type for r in rows if r.status != "completed")),
        "media_bytes": sum(m.bytes for r in rows if not r.reused for m in r.media),
    }


class WriteShardsDoFn(beam.DoFn):
    """Buffers rows and writes them as Parquet shards under the run's temporary folder."""

    def __init__(self, output_root: str, run_id: str, storage_options: dict[str, Any] | None = None) -> None:
        self.output_root = output_root
        self.run_id = run_id
        self.storage_options = storage_options

    def setup(self) -> None:
        self.storage = Storage(self.output_root, self.storage_options)

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
        return shard_summary(relpath, rows)


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
    """Publish the shards as the results table and write the run manifest."""
    storage = Storage(output_root, storage_options)
    previous = [p for p in storage.list(RESULTS_DIR) if p.endswith(".parquet")]
    if not shards:  # an empty table still has the schema
        relpath = f"{tmp_dir(run_id)}/empty.parquet"
        storage.write_bytes(relpath, rows_to_parquet([]))
        shards = [shard_summary(relpath, [])]
    published = []
    for index, shard in enumerate(sorted(shards, key=lambda s: s["path"])):
        target = f"{RESULTS_DIR}/part-{run_id}-{index:05d}.parquet"
        storage.move(shard["path"], target)
        published.append(storage.uri(target))
    _remove_tmp(storage, run_id)
    if mode == "replace":
        for stale in previous:
            storage.delete(stale)
    manifest = build_manifest(shards, run_id=run_id, job=job, inputs=inputs, started_at=started_at,
                              tables=published, storage=storage)
    storage.write_json(f"{RUNS_DIR}/{run_id}.json", manifest)
    return manifest


def _remove_tmp(storage: Storage, run_id: str) -> None:
    for leftover in list(storage.list(tmp_dir(run_id))):
        storage.delete(leftover)
    try:
        storage.fs.rmdir(storage.path(tmp_dir(run_id)))
    except (FileNotFoundError, OSError, NotImplementedError):
        pass


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
    return {
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "wall_seconds": round((finished_at - started_at).total_seconds(), 3),
        "inputs": inputs,
        "output": storage.uri(""),
        "tables": tables,
        "rows": sum(s["rows"] for s in shards),
        "counts_by_status": dict(status),
        "reused": sum(s["reused"] for s in shards),
        "completed_by_provider_model": dict(provider),
        "not_completed_by_error_type": dict(errors),
        "new_media_bytes": sum(s["media_bytes"] for s in shards),
        "job": redacted_job(job),
    }


def redacted_job(job: JobConfig) -> dict[str, Any]:
    """The job as JSON with credential-like provider_config values masked."""
    from providers.keys import is_secret_like

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("***" if k != "api_key_env" and is_secret_like(k) and isinstance(v, str) else mask(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    return mask(job.model_dump(mode="json"))


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
        return (
            rows
            | "WriteShards" >> beam.ParDo(WriteShardsDoFn(self.output_root, self.run_id, self.storage_options))
            | "CollectShards" >> beam.combiners.ToList()
            | "Finalize" >> beam.Map(
                finalize, output_root=self.output_root, storage_options=self.storage_options, run_id=self.run_id,
                job=self.job, inputs=self.inputs, started_at=self.started_at, mode=self.mode,
            )
        )
