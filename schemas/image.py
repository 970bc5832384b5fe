"""Image generation: config, request, response and progress update."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from .base import GenerationConfigBase, GenerationRequestBase
from .media import AspectRatio, ImageType, MediaType
from .mock import MockConfig
from .responses import ResponseBase, UpdateBase, non_blank

_SIZE = re.compile(r"^[1-9]\d*x[1-9]\d*$")


class ImageGenerationConfig(GenerationConfigBase):
    """Which provider and model make the image, and how long to wait. Immutable."""

    base_url: str | None = None
    api_version: str | None = None
    timeout: int = Field(default=120, gt=0)
    max_poll_attempts: int = Field(default=60, gt=0)
    poll_interval: int = Field(default=2, ge=0)
    mock: MockConfig | None = None
    fallback_configs: list[ImageGenerationConfig] | None = None


class ImageGenerationRequest(GenerationRequestBase):
    """What image to make. Unknown keyword arguments land in ``extra_params``."""

    prompt: str
    negative_prompt: str | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    n: int | None = Field(default=None, ge=1)
    aspect_ratio: AspectRatio | None = None
    image_list: list[ImageType] = Field(default_factory=list)
    mask_image: MediaType | None = None
    seed: int | None = None

    _prompt_not_blank = field_validator("prompt")(non_blank)

    @field_validator("size")
    @classmethod
    def _check_size(cls, value: str | None) -> str | None:
        if value is None or value == "auto" or _SIZE.match(value):
            return value
        raise ValueError(f"size {value!r} is not WIDTHxHEIGHT (e.g. '1024x1024') or 'auto'")


class ImageGenerationResponse(ResponseBase):
    """Finished images as URLs or base64 strings."""

    images: list[str]
    content_type: str | None = "image/png"
    revised_prompt: str | None = None


class ImageGenerationUpdate(UpdateBase):
    """Passed to ``on_progress`` on every polling cycle."""

    result: ImageGenerationResponse | None = None
