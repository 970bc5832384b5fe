"""Video generation: config, request, response and progress update."""

from __future__ import annotations

from pydantic import Field, field_validator

from .base import GenerationConfigBase, GenerationRequestBase
from .media import AspectRatio, ImageType, MediaType, Resolution
from .mock import MockConfig
from .responses import ResponseBase, UpdateBase, non_blank


class VideoGenerationConfig(GenerationConfigBase):
    """Which provider and model make the video, and how long to wait. Immutable."""

    base_url: str | None = None
    api_version: str | None = None
    timeout: int = Field(default=600, gt=0)
    max_poll_attempts: int = Field(default=120, gt=0)
    poll_interval: int = Field(default=5, ge=0)
    mock: MockConfig | None = None
    fallback_configs: list[VideoGenerationConfig] | None = None


class VideoGenerationRequest(GenerationRequestBase):
    """What video to make. Unknown keyword arguments land in ``extra_params``."""

    prompt: str
    duration_seconds: int | None = Field(default=None, gt=0)
    resolution: Resolution | None = None
    aspect_ratio: AspectRatio | None = None
    generate_audio: bool | None = None
    image_list: list[ImageType] = Field(default_factory=list)
    video: MediaType | None = None
    seed: int | None = None
    number_of_videos: int = Field(default=1, ge=1)
    negative_prompt: str | None = None
    enhance_prompt: bool | None = None

    _prompt_not_blank = field_validator("prompt")(non_blank)


class VideoGenerationResponse(ResponseBase):
    """A finished video. ``videos`` holds every variant when ``number_of_videos`` > 1."""

    video: MediaType
    videos: list[MediaType] = Field(default_factory=list)
    duration: float | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    content_type: str | None = None
    audio_url: str | None = None


class VideoGenerationUpdate(UpdateBase):
    """Passed to ``on_progress`` on every polling cycle."""

    result: VideoGenerationResponse | None = None
