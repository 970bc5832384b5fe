"""The job handle: a small serialisable record of a submitted provider job.

It holds everything needed to poll and fetch the job later, from any process, so
the pipeline can write it to its ledger and re-attach after a crash instead of
paying for the same job twice. It never holds an API key.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .media import Modality


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class JobHandle(BaseModel):
    """A submitted job: provider, model, the provider's job id and where to poll it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    model: str
    modality: Modality
    job_id: str
    poll_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None
    request_id: str | None = Field(default=None, description="Provider request id, when it differs from job_id")
    submitted_at: datetime = Field(default_factory=utc_now)
    polls: int = Field(default=0, ge=0, description="How many times the job has been polled")
    is_mock: bool = False
    data: dict[str, Any] = Field(default_factory=dict, description="Provider-specific extras (e.g. an operation name)")

    def polled(self) -> "JobHandle":
        """The same handle with one more poll counted."""
        return self.model_copy(update={"polls": self.polls + 1})
