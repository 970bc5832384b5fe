"""MockConfig: plain data that turns any config into an offline, deterministic mock."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MockErrorKind = Literal[
    "rate_limit",
    "server_error",
    "timeout",
    "connection",
    "moderation",
    "invalid_request",
    "generation_failed",
]
JobState = Literal["queued", "processing", "completed", "failed"]


class MockOutcome(BaseModel):
    """One weighted outcome. Without ``error`` it is a success."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight: float = Field(default=1.0, ge=0)
    error: MockErrorKind | None = None
    error_message: str | None = None
    retry_after: float | None = Field(default=None, ge=0, description="Retry-After seconds for rate_limit")


class MockPolling(BaseModel):
    """Drives the simulated job's status updates (and so ``on_progress``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status_sequence: list[JobState] = Field(default_factory=lambda: ["queued", "processing", "completed"])
    delay_between_updates: float = Field(default=0.0, ge=0)
    progress_percentages: list[int] | None = None

    @model_validator(mode="after")
    def _check_sequence(self) -> "MockPolling":
        if not self.status_sequence:
            raise ValueError("status_sequence must not be empty")
        if self.status_sequence[-1] not in ("completed", "failed"):
            raise ValueError(
                f"status_sequence must end in 'completed' or 'failed', got {self.status_sequence[-1]!r}"
            )
        if self.progress_percentages is not None and len(self.progress_percentages) != len(self.status_sequence):
            raise ValueError(
                f"progress_percentages has {len(self.progress_percentages)} values, "
                f"status_sequence has {len(self.status_sequence)}; they must match"
            )
        return self


class MockConfig(BaseModel):
    """Offline mock generation. ``MockConfig(enabled=True)`` alone always succeeds at once.

    The outcome for a request is drawn from ``responses`` by weight, reproducibly: the
    same request (and the same retry number) always gets the same outcome.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    responses: list[MockOutcome] = Field(default_factory=list)
    job_duration_seconds: float = Field(default=0.0, ge=0, description="Simulated time from submit to done")
    polling: MockPolling | None = None
