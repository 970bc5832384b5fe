"""The results table: one row per input row, and its fixed Arrow schema.

Imported on its own (``from schemas.results import ResultRow, RESULTS_SCHEMA``) so that
``import schemas`` does not pull in pyarrow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, Callable, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from .execution import AttemptMetadata, ExecutionMetadata
from .jobs import JobHandle
from .media import Modality
from .pricing import CostSource

RowStatus = Literal["completed", "failed", "invalid"]


class StoredMedia(BaseModel):
    """One media object as written and measured."""

    model_config = ConfigDict(frozen=True)

    uri: str
    content_type: str
    bytes: int
    sha256: str
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None


class ResultRow(BaseModel):
    """What happened to one input row. Its table columns are :data:`COLUMNS`."""

    row_id: str
    source: str = Field(description="file and line/row the input came from")
    request_key: str | None = None
    modality: Modality
    prompt: str | None = None
    config_name: str | None = None
    provider: str | None = None
    model: str | None = None
    status: RowStatus
    reused: bool = False
    media: list[StoredMedia] = Field(
        default_factory=list, description="uris relative to the output root (see resolve_media_uri)"
    )
    error_type: str | None = None
    error_message: str | None = None
    is_mock: bool = False
    placeholder: bool = Field(
        default=False, description="made by the mock although the chain's first config is a real provider"
    )
    request_json: str | None = None
    raw_response_json: str | None = None
    execution: ExecutionMetadata | None = None
    run_id: str = ""
    finished_at: datetime | None = None
    cost_usd: float | None = Field(
        default=0.0,
        description="what this row's attempts cost in this run (0: nothing paid; None: paid at an unknown price)",
    )
    cost_source: CostSource = "none"

    def to_record(self) -> dict[str, Any]:
        """A dict matching :data:`RESULTS_SCHEMA`, made from :data:`COLUMNS`."""
        return {column.name: column.fill(self) for column in COLUMNS}


# -- the columns: one table from which the record and the schema are made ----------------------

_UTC = pa.timestamp("us", tz="UTC")

ATTEMPT_TYPE = pa.struct(
    [
        ("provider", pa.string()),
        ("model", pa.string()),
        ("attempt_number", pa.int32()),
        ("try_number", pa.int32()),
        ("started_at", _UTC),
        ("ended_at", _UTC),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("is_retryable", pa.bool_()),
        ("request_id", pa.string()),
        ("status_code", pa.int32()),
        ("is_mock", pa.bool_()),
        ("cost_usd", pa.float64()),
        ("cost_source", pa.string()),
        ("queued_seconds", pa.float64()),
        ("elapsed_seconds", pa.float64()),
    ]
)
"""One ``AttemptMetadata``: each struct field is the attribute of the same name."""

MEDIA_TYPE = pa.struct(
    [
        ("uri", pa.string()),
        ("content_type", pa.string()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("duration_seconds", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
    ]
)
"""One ``StoredMedia``: each struct field is the attribute of the same name."""


@dataclass(frozen=True)
class Column:
    """One column of the results table: its name, Arrow type and how a row fills it."""

    name: str
    type: pa.DataType
    fill: Callable[[ResultRow], Any]

    @classmethod
    def field(cls, name: str, type: pa.DataType) -> "Column":
        """A column holding the ``ResultRow`` field of the same name as it is."""
        return cls(name, type, attrgetter(name))


_STRUCT_NAMES: dict[int, tuple[str, ...]] = {}
"""Each struct type's field names, asked of Arrow once (a lookup costs microseconds per row)."""


def _struct(value: BaseModel, type: pa.StructType) -> dict[str, Any]:
    names = _STRUCT_NAMES.get(id(type))
    if names is None:
        names = _STRUCT_NAMES[id(type)] = tuple(type.field(i).name for i in range(type.num_fields))
    return {name: getattr(value, name) for name in names}


def _first(attribute: str) -> Callable[[ResultRow], Any]:
    return lambda row: getattr(row.media[0], attribute) if row.media else None


def _execution(attribute: str, default: Any = None) -> Callable[[ResultRow], Any]:
    return lambda row: getattr(row.execution, attribute) if row.execution is not None else default


def _attempts(row: ResultRow) -> list[AttemptMetadata]:
    return row.execution.attempts if row.execution is not None else []


def _queued_seconds(row: ResultRow) -> float | None:
    measured = [a.queued_seconds for a in _attempts(row) if a.queued_seconds is not None]
    return round(sum(measured), 6) if measured else None


@lru_cache(maxsize=16)  # small: the columns of one row ask in turn, and requests may be large
def _request_fields(request_json: str | None) -> dict[str, Any]:
    """The request's top-level fields (one parse per distinct request, shared by its columns)."""
    if not request_json:
        return {}
    try:
        value = json.loads(request_json)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _requested(name: str, convert: Callable[[Any], Any] = str) -> Callable[[ResultRow], Any]:
    """A typed column for request field ``name`` (``a.b`` for a nested one), None when absent."""
    path = name.split(".")

    def fill(row: ResultRow) -> Any:
        value: Any = _request_fields(row.request_json)
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return None
        try:
            return convert(value)
        except (TypeError, ValueError):
            return None

    return fill


COLUMNS: tuple[Column, ...] = (
    Column.field("row_id", pa.string()),
    Column.field("run_id", pa.string()),
    Column.field("source", pa.string()),
    Column.field("request_key", pa.string()),
    Column.field("modality", pa.string()),
    Column.field("prompt", pa.string()),
    Column.field("config_name", pa.string()),
    Column.field("provider", pa.string()),
    Column.field("model", pa.string()),
    Column.field("status", pa.string()),
    Column.field("reused", pa.bool_()),
    Column("media_uris", pa.list_(pa.string()), lambda row: [m.uri for m in row.media]),
    Column("content_type", pa.string(), _first("content_type")),
    Column("bytes", pa.int64(), lambda row: sum(m.bytes for m in row.media) if row.media else None),
    Column("sha256", pa.string(), _first("sha256")),
    Column("duration_seconds", pa.float64(), _first("duration_seconds")),
    Column("width", pa.int32(), _first("width")),
    Column("height", pa.int32(), _first("height")),
    Column("media", pa.list_(MEDIA_TYPE), lambda row: [_struct(m, MEDIA_TYPE) for m in row.media]),
    Column.field("error_type", pa.string()),
    Column.field("error_message", pa.string()),
    Column.field("is_mock", pa.bool_()),
    Column.field("placeholder", pa.bool_()),
    Column("aspect_ratio", pa.string(), _requested("aspect_ratio")),
    Column("resolution", pa.string(), _requested("resolution")),
    Column("requested_duration_seconds", pa.float64(), _requested("duration_seconds", float)),
    Column("seed", pa.int64(), _requested("seed", int)),
    Column("image_size", pa.string(), _requested("size")),
    Column("voice_id", pa.string(), _requested("voice_id")),
    Column("audio_format", pa.string(), _requested("output_format.format")),
    Column.field("request_json", pa.string()),
    Column.field("raw_response_json", pa.string()),
    Column("fallback_triggered", pa.bool_(), _execution("fallback_triggered")),
    Column("total_attempts", pa.int32(), _execution("total_attempts", 0)),
    Column("successful_attempt", pa.int32(), _execution("successful_attempt")),
    Column("total_elapsed_seconds", pa.float64(), _execution("total_elapsed_seconds")),
    Column("queued_seconds", pa.float64(), _queued_seconds),
    Column("attempts", pa.list_(ATTEMPT_TYPE), lambda row: [_struct(a, ATTEMPT_TYPE) for a in _attempts(row)]),
    Column.field("finished_at", _UTC),
    Column.field("cost_usd", pa.float64()),
    Column.field("cost_source", pa.string()),
)
"""Every column of the results table, in order. Adding one: a ``ResultRow`` field and an entry here.

``(run_id, row_id)`` identifies a row across the runs of one output (append mode keeps
every run's rows); ``media_uris`` / ``media[].uri`` are relative to the output root."""

RESULTS_SCHEMA = pa.schema([(column.name, column.type) for column in COLUMNS])
"""The fixed schema of ``<output>/results/*.parquet``, made from :data:`COLUMNS`."""


# -- media URIs: stored relative to the output root, resolved against it --------------------

MEDIA_DIR = "media"


def media_relpath(uri: str, root: str) -> str:
    """``uri`` relative to the output root ``root`` (a path or URI).

    Accepts what tables and ledgers hold: a relative path (as written now), an absolute
    URI under ``root``, or an absolute one under the root's earlier place (written before
    the folder was moved or synced elsewhere): its part from the ``media/`` folder on.
    Raises ``ValueError`` for anything else."""
    if ".." in uri.split("/"):
        raise ValueError(f"media uri {uri!r} climbs out of its folder ('..')")
    if "://" not in uri and not uri.startswith("/"):
        return uri
    prefix = root.rstrip("/") + "/"
    if uri.startswith(prefix):
        return uri[len(prefix):]
    marker = f"/{MEDIA_DIR}/"
    if marker in uri:
        return MEDIA_DIR + "/" + uri.rsplit(marker, 1)[1]
    raise ValueError(f"media uri {uri!r} is neither relative nor under the output root {root!r}")


def resolve_media_uri(uri: str, root: str) -> str:
    """Where the media ``uri`` of a table or ledger lies, for an output root ``root`` that
    may have moved since it was written: the one helper every reader of media uses."""
    return root.rstrip("/") + "/" + media_relpath(uri, root)


class LedgerEntry(BaseModel):
    """``<output>/_ledger/<key>.json``: the record of finished media for one output key
    (media uris relative to the output root; older records hold absolute ones)."""

    key: str
    state: Literal["done"] = "done"
    modality: Modality
    provider: str | None = None
    model: str | None = None
    is_mock: bool = False
    media: list[StoredMedia] = Field(default_factory=list)
    raw_response_json: str | None = None
    run_id: str | None = None
    updated_at: datetime


ClaimState = Literal["claimed", "submitted", "released", "uncertain", "abandoned"]


class ClaimRecord(BaseModel):
    """``<output>/_ledger/<key>/claim-<generation>.json``: one worker's right to pay for a key.

    Created with a create-only write, so exactly one worker holds each generation.
    ``claimed``: about to submit (or submitting); ``submitted``: the provider accepted
    ``job``; ``released``: nothing more will come of it (rejected, failed, gone,
    cancelled), the next generation may submit; ``uncertain``: the submit's answer was
    lost; ``abandoned``: the holder stopped following ``job``, which may still finish.
    The holder renews ``lease_until`` while it works.
    """

    key: str
    generation: int = Field(ge=0)
    state: ClaimState
    run_id: str
    worker: str
    claimed_at: datetime
    lease_until: datetime
    job: JobHandle | None = None
    idempotency_key: str | None = None
    updated_at: datetime


def summary_queries(output: str, run_id: str | None) -> list[str]:
    """The query lines of the end-of-run summary: commands that run as printed in the
    project's environment (pyarrow only; DuckDB's Python API once ``pip install duckdb``)."""
    where = f"ds.field('run_id') == {run_id!r}" if run_id else "None"
    sql_where = f" where run_id = '{run_id}'" if run_id else ""
    return [
        "  query:    python -c \"import pyarrow.dataset as ds; "
        f"t = ds.dataset({output + '/results'!r}).to_table(columns=['run_id','row_id','status','provider',"
        f"'placeholder','media_uris'], filter={where}); print(*t.to_pylist(), sep=chr(10))\"",
        "  duckdb:   python -c \"import duckdb; duckdb.sql(\\\"select status, provider, placeholder, count(*) "
        f"from '{output}/results/*.parquet'{sql_where} group by all\\\").show()\"  # pip install duckdb",
    ]
