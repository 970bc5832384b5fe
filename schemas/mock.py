"""MockConfig: plain data that turns any config into an offline, deterministic mock."""

from __future__ import annotations

import base64
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


def fixture_media(value: Any, field: str) -> str | None:
    """Caller-supplied media as JSON-safe text: an http(s) URL, or a ``data:`` URL for
    bytes, ``{"content", "content_type"}`` and base64 (so a MockConfig stays plain data)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = {"content": bytes(value), "content_type": "video/mp4"}
    if isinstance(value, dict) and isinstance(value.get("content"), (bytes, bytearray)):
        content_type = value.get("content_type") or "video/mp4"
        return f"data:{content_type};base64,{base64.b64encode(value['content']).decode('ascii')}"
    if isinstance(value, str):
        if value.startswith(("http://", "https://", "data:")):
            return value
        if value and _BASE64.fullmatch(value):
            return f"data:video/mp4;base64,{value}"
    preview = repr(value)[:60]
    raise ValueError(
        f"{field} must be an http(s) URL, base64 text, bytes or {{'content': bytes, 'content_type': str}}, got {preview}"
    )


class MockOutcome(BaseModel):
    """One weighted outcome. Without ``error`` it is a success."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight: float = Field(default=1.0, ge=0)
    error: MockErrorKind | None = None
    error_message: str | None = None
    retry_after: float | None = Field(default=None, ge=0, description="Retry-After seconds for rate_limit")
    output_video: str | None = Field(
        default=None,
        description="Video jobs: a fixture to return instead of a synthesised video (URL, base64, bytes or MediaContent)",
    )

    @field_validator("output_video", mode="before")
    @classmethod
    def _fixture_video(cls, value: Any) -> str | None:
        return fixture_media(value, "output_video")

    @model_validator(mode="after")
    def _success_or_error(self) -> "MockOutcome":
        if self.error is not None and self.output_video is not None:
            raise ValueError(f"a mock outcome is a success or an error: output_video and error={self.error!r} are both set")
        return self


class MockPolling(BaseModel):
    """Drives the simulated job's status updates (and so ``on_progress``).

    Each poll advances exactly one state of ``status_sequence``, whatever the timing;
    ``delay_between_updates`` is the wait the mock asks for between polls."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status_sequence: list[JobState] = Field(default_factory=lambda: ["queued", "processing", "completed"])
    delay_between_updates: float = Field(default=0.0, ge=0)
    progress_percentages: list[int] | None = None
    custom_updates: list[dict[str, Any]] | None = Field(
        default=None, description="Per-state payload reported as the update's ``update`` (one per status)"
    )

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
        if self.custom_updates is not None and len(self.custom_updates) != len(self.status_sequence):
            raise ValueError(
                f"custom_updates has {len(self.custom_updates)} values, "
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
    job_duration_seconds: float = Field(
        default=0.0, ge=0, description="A job completes no sooner than this many seconds after submit"
    )
    polling: MockPolling | None = None
    render_text: bool = Field(
        default=True,
        description="Images show the prompt as text; False returns a plain image of the right size and format "
        "(made once per size and format), so benchmarks measure the pipeline rather than text rendering",
    )
