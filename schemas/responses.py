"""Bases shared by every response and progress update."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .execution import ExecutionMetadata
from .media import UrlHeaders

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
    _url_headers: dict[str, UrlHeaders] = PrivateAttr(default_factory=dict)

    def url_headers(self, url: str) -> UrlHeaders | None:
        """The headers (credentials) a result URL of this response must be fetched with,
        when it needs any. Kept out of the fields: never dumped, shown or pickled."""
        return self._url_headers.get(url)

    def add_url_headers(self, url: str, headers: UrlHeaders) -> None:
        """Record that ``url`` must be fetched with ``headers`` (the pipeline streams it)."""
        self._url_headers[url] = headers


class UpdateBase(BaseModel):
    """Fields every progress update carries; ``result`` is added per modality."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    request_id: str
    status: UpdateStatus
    progress_percent: int | None = Field(default=None, ge=0, le=100)
    update: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
