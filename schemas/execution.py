"""Execution metadata: what the orchestrator did for one call."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from .pricing import CostSource

AttemptStatus = Literal["success", "failed", "skipped"]


def _require_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"timestamp {value.isoformat()!r} must be timezone-aware (UTC)")
    return value


class AttemptMetadata(BaseModel):
    """One try of one config in the fallback chain.

    ``attempt_number`` is the 1-based position of the config in the chain; a config
    retried after a transient error appears once per try, with ``try_number`` counting.
    """

    model_config = ConfigDict(extra="forbid")

    provider: str
    model: str
    attempt_number: int = Field(ge=1)
    try_number: int = Field(default=1, ge=1)
    started_at: datetime
    ended_at: datetime | None = None
    status: AttemptStatus
    error_type: str | None = None
    error_message: str | None = None
    is_retryable: bool | None = None
    request_id: str | None = None
    status_code: int | None = Field(default=None, description="the provider's HTTP status when the attempt failed with one")
    is_mock: bool = False
    cost_usd: float | None = Field(
        default=0.0, description="what this attempt cost (0 when nothing was submitted); None: paid, price unknown"
    )
    cost_source: CostSource = "none"
    queued_seconds: float | None = Field(
        default=None, ge=0,
        description="time of this attempt spent waiting behind our own limits (submit slots, rate tokens) "
        "before the provider was called; None when not measured",
    )

    _check_started = field_validator("started_at", "ended_at")(_require_utc)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def elapsed_seconds(self) -> float | None:
        """Time at the provider: the attempt's span (``started_at`` to ``ended_at``) less the
        time it queued behind our own limits; None while it is still running."""
        if self.ended_at is None:
            return None
        span = (self.ended_at - self.started_at).total_seconds()
        return max(0.0, span - (self.queued_seconds or 0.0))


class ExecutionMetadata(BaseModel):
    """Timing and fallback details attached to every response (and to a chain's final error)."""

    model_config = ConfigDict(extra="forbid")

    total_attempts: int = 0
    successful_attempt: int | None = None
    attempts: list[AttemptMetadata] = Field(default_factory=list)
    fallback_triggered: bool = False
    configs_in_chain: int = 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_elapsed_seconds(self) -> float:
        """Wall-clock time from the first attempt's start to the last attempt's end."""
        if not self.attempts:
            return 0.0
        start = min(a.started_at for a in self.attempts)
        ends = [a.ended_at for a in self.attempts if a.ended_at is not None]
        if not ends:
            return 0.0
        return max(0.0, (max(ends) - start).total_seconds())
