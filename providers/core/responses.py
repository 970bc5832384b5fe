"""Turning a provider's output into the typed response and progress updates of a modality."""

from __future__ import annotations

import base64
from typing import Any, Callable

from schemas import MediaContent, Modality
from schemas.modalities import ModalitySpec, modality_spec

from providers.core.contract import GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.errors import GenerationFailedError


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
    spec = modality_spec(ctx.modality)
    common = {
        "request_id": request_id,
        "status": "completed",
        "is_mock": output.is_mock,
        "raw_response": output.raw_response,
    }
    return _BUILDERS[spec.media_kind](ctx, spec, output, request, common)


def _video_response(ctx: ProviderContext, spec: ModalitySpec, output: ProviderOutput, request: Any,
                    common: dict[str, Any]) -> Any:
    videos = [_video_value(m, spec.default_content_type) for m in output.media]
    response = spec.response_type(
        video=videos[0],
        videos=videos,
        duration=output.duration,
        resolution=output.resolution,
        aspect_ratio=output.aspect_ratio,
        content_type=output.media[0].content_type or spec.default_content_type,
        audio_url=output.audio_url,
        **common,
    )
    for media in output.media:  # left a URL only on the pipeline's path (ctx.stream_media)
        if media.url is not None and media.headers is not None:
            response.add_url_headers(media.url, media.headers)
    return response


def _image_response(ctx: ProviderContext, spec: ModalitySpec, output: ProviderOutput, request: Any,
                    common: dict[str, Any]) -> Any:
    return spec.response_type(
        images=[m.url or base64.b64encode(m.data or b"").decode("ascii") for m in output.media],
        content_type=output.media[0].content_type or spec.default_content_type,
        revised_prompt=output.revised_prompt,
        **common,
    )


def _audio_response(ctx: ProviderContext, spec: ModalitySpec, output: ProviderOutput, request: Any,
                    common: dict[str, Any]) -> Any:
    data, content_type = _audio_bytes(ctx, output.media[0])
    return spec.response_type(
        audio=base64.b64encode(data).decode("ascii"),
        content_type=content_type,
        duration=output.duration if output.duration is not None else measured_duration(data, _pcm_rate(request)),
        **common,
    )


_BUILDERS: dict[str, Callable[[ProviderContext, ModalitySpec, ProviderOutput, Any, dict[str, Any]], Any]] = {
    "video": _video_response, "image": _image_response, "audio": _audio_response,
}
"""Response building per media kind (``ModalitySpec.media_kind``): both speech modalities make audio."""


def _video_value(media: GeneratedMedia, default_type: str) -> Any:
    if media.url is not None:
        return media.url
    return MediaContent(content=media.data or b"", content_type=media.content_type or default_type)


def _audio_bytes(ctx: ProviderContext, media: GeneratedMedia) -> tuple[bytes, str | None]:
    if media.data is not None:
        return media.data, media.content_type
    from providers.core.http import download, media_type

    data, content_type = download(ctx, media.url or "", headers=media.headers.reveal() if media.headers else None)
    return data, media.content_type or media_type(content_type)


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
    return modality_spec(modality).update_type(
        request_id=request_id,
        status=status.state,
        progress_percent=status.progress_percent,
        update=status.raw,
        error=str(status.failure) if status.failure else None,
    )


def completed_update(modality: Modality, response: Any, last_update: dict[str, Any] | None = None) -> Any:
    """The final progress update: the response, with the completing poll's payload (if any)."""
    return modality_spec(modality).update_type(
        request_id=response.request_id, status="completed", progress_percent=100, update=dict(last_update or {}),
        result=response,
    )


def failed_update(modality: Modality, request_id: str, message: str) -> Any:
    return modality_spec(modality).update_type(request_id=request_id, status="failed", update={}, error=message)
