"""The public generation functions: one call runs the whole fallback chain."""

from __future__ import annotations

from typing import Any

from schemas import (
    AudioGenerationConfig,
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    Modality,
    STSRequest,
    STSResponse,
    TTSRequest,
    TTSResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)

from schemas.modalities import modality_spec

from providers.core.contract import ProgressCallback
from providers.core.driver import drive_async, drive_sync
from providers.core.orchestrator import DEFAULT_RETRY, RetryPolicy, chain_steps


def _as_request(request_type: type, request: Any, kwargs: dict[str, Any]) -> Any:
    if request is None:
        return request_type(**kwargs)
    if kwargs:
        raise TypeError(f"pass either a {request_type.__name__} or keyword arguments, not both")
    if isinstance(request, dict):
        return request_type(**request)
    if not isinstance(request, request_type):
        raise TypeError(f"request must be a {request_type.__name__}, got {type(request).__name__}")
    return request


def _check_config(config_type: type, config: Any) -> Any:
    if not isinstance(config, config_type):
        raise TypeError(f"config must be a {config_type.__name__}, got {type(config).__name__}")
    return config


def _check_progress(on_progress: Any) -> None:
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable or None, got {type(on_progress).__name__}")


def _steps(
    modality: Modality, config: Any, request: Any, on_progress: ProgressCallback | None, kwargs: dict[str, Any], retry: RetryPolicy | None
) -> Any:
    spec = modality_spec(modality)
    _check_progress(on_progress)
    return chain_steps(
        modality,
        _check_config(spec.config_type, config),
        _as_request(spec.request_type, request, kwargs),
        retry or DEFAULT_RETRY,
        on_progress=on_progress,
    )


def generate_video(
    config: VideoGenerationConfig,
    request: VideoGenerationRequest | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    **request_fields: Any,
) -> VideoGenerationResponse:
    """Make a video, trying ``config`` then its fallbacks.

    Pass a :class:`VideoGenerationRequest` or its fields as keyword arguments.
    ``on_progress`` (plain or async, positional or keyword) receives a
    :class:`VideoGenerationUpdate` per poll.
    Raises a :class:`~providers.errors.MediagenError` carrying every attempt's metadata
    when the whole chain fails.
    """
    return drive_sync(_steps("video", config, request, on_progress, request_fields, retry), on_progress)


async def generate_video_async(
    config: VideoGenerationConfig,
    request: VideoGenerationRequest | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    **request_fields: Any,
) -> VideoGenerationResponse:
    """Async twin of :func:`generate_video`."""
    return await drive_async(_steps("video", config, request, on_progress, request_fields, retry), on_progress)


def generate_image(
    config: ImageGenerationConfig,
    request: ImageGenerationRequest | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    **request_fields: Any,
) -> ImageGenerationResponse:
    """Make images, trying ``config`` then its fallbacks (see :func:`generate_video`)."""
    return drive_sync(_steps("image", config, request, on_progress, request_fields, retry), on_progress)


async def generate_image_async(
    config: ImageGenerationConfig,
    request: ImageGenerationRequest | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    **request_fields: Any,
) -> ImageGenerationResponse:
    """Async twin of :func:`generate_image`."""
    return await drive_async(_steps("image", config, request, on_progress, request_fields, retry), on_progress)


def generate_tts(
    config: AudioGenerationConfig,
    request: TTSRequest | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    **request_fields: Any,
) -> TTSResponse:
    """Speak text, trying ``config`` then its fallbacks; the response holds base64 audio."""
    return drive_sync(_steps("tts", config, request, on_progress, request_fields, retry), on_progress)


async def generate_tts_async(
    config: AudioGenerationConfig,
    request: TTSRequest | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    **request_fields: Any,
) -> TTSResponse:
    """Async twin of :func:`generate_tts`."""
    return await drive_async(_steps("tts", config, request, on_progress, request_fields, retry), on_progress)


def generate_sts(
    config: AudioGenerationConfig,
    request: STSRequest | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    **request_fields: Any,
) -> STSResponse:
    """Convert speech to another voice, trying ``config`` then its fallbacks."""
    return drive_sync(_steps("sts", config, request, on_progress, request_fields, retry), on_progress)


async def generate_sts_async(
    config: AudioGenerationConfig,
    request: STSRequest | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    **request_fields: Any,
) -> STSResponse:
    """Async twin of :func:`generate_sts`."""
    return await drive_async(_steps("sts", config, request, on_progress, request_fields, retry), on_progress)
