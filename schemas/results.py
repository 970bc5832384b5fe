"""The results table: one row per input row, and its fixed Arrow schema.

Imported on its own (``from schemas.results import ResultRow, RESULTS_SCHEMA``) so that
``import schemas`` does not pull in pyarrow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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
    """What happened to one input row."""

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
    media: list[StoredMedia] = Field(default_factory=list)
    error_type: str | None = None
    error_message: str | None = None
    is_mock: bool = False
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
        """A dict matching :data:`RESULTS_SCHEMA`."""
        first = self.media[0] if self.media else None
        execution = self.execution
        return {
            "row_id": self.row_id,
            "source": self.source,
            "request_key": self.request_key,
            "modality": self.modality,
            "prompt": self.prompt,
            "config_name": self.config_name,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "reused": self.reused,
            "media_uris": [m.uri for m in self.media],
            "content_type": first.content_type if first else None,
            "bytes": sum(m.bytes for m in self.media) if self.media else None,
            "sha256": first.sha256 if first else None,
            "duration_seconds": first.duration_seconds if first else None,
            "width": first.width if first else None,
            "height": first.height if first else None,
            "media": [m.model_dump() for m in self.media],
            "error_type": self.error_type,
            "error_message": self.error_message,
            "is_mock": self.is_mock,
            "request_json": self.request_json,
            "raw_response_json": self.raw_response_json,
            "fallback_triggered": execution.fallback_triggered if execution else None,
            "total_attempts": execution.total_attempts if execution else 0,
            "successful_attempt": execution.successful_attempt if execution else None,
            "total_elapsed_seconds": execution.total_elapsed_seconds if execution else None,
            "attempts": [_attempt_record(a) for a in execution.attempts] if execution else [],
            "run_id": self.run_id,
            "finished_at": self.finished_at,
            "cost_usd": self.cost_usd,
            "cost_source": self.cost_source,
        }


def _attempt_record(attempt: AttemptMetadata) -> dict[str, Any]:
    return {**attempt.model_dump(), "elapsed_seconds": attempt.elapsed_seconds}


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
        ("is_mock", pa.bool_()),
        ("cost_usd", pa.float64()),
        ("cost_source", pa.string()),
        ("elapsed_seconds", pa.float64()),
    ]
)

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

RESULTS_SCHEMA = pa.schema(
    [
        ("row_id", pa.string()),
        ("source", pa.string()),
        ("request_key", pa.string()),
        ("modality", pa.string()),
        ("prompt", pa.string()),
        ("config_name", pa.string()),
        ("provider", pa.string()),
        ("model", pa.string()),
        ("status", pa.string()),
        ("reused", pa.bool_()),
        ("media_uris", pa.list_(pa.string())),
        ("content_type", pa.string()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("duration_seconds", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("media", pa.list_(MEDIA_TYPE)),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("is_mock", pa.bool_()),
        ("request_json", pa.string()),
        ("raw_response_json", pa.string()),
        ("fallback_triggered", pa.bool_()),
        ("total_attempts", pa.int32()),
        ("successful_attempt", pa.int32()),
        ("total_elapsed_seconds", pa.float64()),
        ("attempts", pa.list_(ATTEMPT_TYPE)),
        ("run_id", pa.string()),
        ("finished_at", _UTC),
        ("cost_usd", pa.float64()),
        ("cost_source", pa.string()),
    ]
)
"""The fixed schema of ``<output>/results/*.parquet``."""


class LedgerEntry(BaseModel):
    """``<output>/_ledger/<key>.json``: the record of finished media for one output key."""

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
