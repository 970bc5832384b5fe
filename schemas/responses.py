"""Bases shared by every response and progress update."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .execution import ExecutionMetadata

UpdateStatus = Literal["queued", "processing", "completed", "failed"]


def non_blank(value: str) -> str:
    """Validator: a prompt or text must hold something besides white space."""
    if not value.strip():
        raise ValueError("must not be empty or only white space")
    return value


class ResponseBase(BaseModel):
    """Fields every generation response carries."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    request_id: str
    status: Literal["completed", "failed"] = "completed"
    is_mock: bool = False
    raw_response: dict[str, Any] = Field(default_factory=dict)
    execution_metadata: ExecutionMetadata | None = None


class UpdateBase(BaseModel):
    """Fields every progress update carries; ``result`` is added per modality."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    request_id: str
    status: UpdateStatus
    progress_percent: int | None = Field(default=None, ge=0, le=100)
    update: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
