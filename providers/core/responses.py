"""Turning a provider's output into the typed response and progress updates of a modality."""

from __future__ import annotations

import base64
from typing import Any

from schemas import (
    AudioGenerationUpdate,
    ImageGenerationResponse,
    ImageGenerationUpdate,
    MediaContent,
    Modality,
    STSResponse,
    TTSResponse,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)

from providers.core.contract import GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.errors import GenerationFailedError

UPDATE_TYPES: dict[str, type] = {
    "video": VideoGenerationUpdate,
    "image": ImageGenerationUpdate,
    "tts": AudioGenerationUpdate,
    "sts": AudioGenerationUpdate,
}


def build_response(ctx: ProviderContext, output: ProviderOutput, request_id: str, request: Any = None) -> Any:
    """The modality's response for ``output``. Audio URLs are downloaded (responses carry base64)."""
    if not output.media:
        raise GenerationFailedError(
            "provider reported success but returned no media",
            provider=ctx.provider.name,
            model=ctx.model,
            request_id=output.request_id,
            raw_response=output.raw_response,
        )
    common = {
        "request_id": request_id,
        "status": "completed",
        "is_mock": output.is_mock,
        "raw_response": output.raw_response,
    }
    if ctx.modality == "video":
        videos = [_video_value(m) for m in output.media]
        return VideoGenerationResponse(
            video=videos[0],
            videos=videos,
            duration=output.duration,
            resolution=output.resolution,
            aspect_ratio=output.aspect_ratio,
            content_type=output.media[0].content_type or "video/mp4",
            audio_url=output.audio_url,
            **common,
        )
    if ctx.modality == "image":
        return ImageGenerationResponse(
            images=[m.url or base64.b64encode(m.data or b"").decode("ascii") for m in output.media],
            content_type=output.media[0].content_type or "image/png",
            revised_prompt=output.revised_prompt,
            **common,
        )
    data, content_type = _audio_bytes(ctx, output.media[0])
    response_type = TTSResponse if ctx.modality == "tts" else STSResponse
    return response_type(
        audio=base64.b64encode(data).decode("ascii"),
        content_type=content_type,
        duration=output.duration if output.duration is not None else measured_duration(data, _pcm_rate(request)),
        **common,
    )


def _video_value(media: GeneratedMedia) -> Any:
    if media.url is not None:
        return media.url
    return MediaContent(content=media.data or b"", content_type=media.content_type or "video/mp4")


def _audio_bytes(ctx: ProviderContext, media: GeneratedMedia) -> tuple[bytes, str | None]:
    if media.data is not None:
        return media.data, media.content_type
    from providers.core.http import download

    data, content_type = download(ctx, media.url or "")
    return data, media.content_type or (content_type or "").split(";")[0] or None


def _pcm_rate(request: Any) -> int | None:
    fmt = getattr(request, "output_format", None)
    if fmt is None or fmt.format != "pcm":
        return None
    return fmt.sample_rate or 44100


def measured_duration(data: bytes, raw_pcm_sample_rate: int | None = None) -> float | None:
    """Decode the audio to measure it; raw PCM is measured at the requested sample rate."""
    from providers.media.probe import MediaProbeError, probe_media

    try:
        return probe_media(data, raw_pcm_sample_rate=raw_pcm_sample_rate).duration_seconds
    except MediaProbeError:
        return None


def status_update(modality: Modality, request_id: str, status: JobStatus) -> Any:
    """A progress update for one poll."""
    return UPDATE_TYPES[modality](
        request_id=request_id,
        status=status.state,
        progress_percent=status.progress_percent,
        update=status.raw,
        error=str(status.failure) if status.failure else None,
    )


def completed_update(modality: Modality, response: Any) -> Any:
    return UPDATE_TYPES[modality](
        request_id=response.request_id, status="completed", progress_percent=100, update={}, result=response
    )


def failed_update(modality: Modality, request_id: str, message: str) -> Any:
    return UPDATE_TYPES[modality](request_id=request_id, status="failed", update={}, error=message)
