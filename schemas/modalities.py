"""The one modality table: what each modality's config, request, response and update
types are, which kind of media it makes, and the names of its typed provider hooks.

Every layer that needs "which type for this modality" reads :data:`MODALITIES`
(the public API, the driver's responses, the job file, the prompt reader, the media
store, the provider base class) instead of keeping its own map.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, Mapping

from .audio import AudioGenerationConfig, AudioGenerationUpdate, STSRequest, STSResponse, TTSRequest, TTSResponse
from .image import ImageGenerationConfig, ImageGenerationRequest, ImageGenerationResponse, ImageGenerationUpdate
from .media import Modality
from .video import VideoGenerationConfig, VideoGenerationRequest, VideoGenerationResponse, VideoGenerationUpdate

MediaKind = Literal["video", "image", "audio"]


@dataclass(frozen=True)
class ModalitySpec:
    """One row of the modality table."""

    name: Modality
    config_type: type[Any]
    request_type: type[Any]
    response_type: type[Any]
    update_type: type[Any]
    media_kind: MediaKind
    """The kind of file it makes (``audio`` for both speech modalities)."""
    default_content_type: str
    """The MIME type assumed when a provider names none."""
    prompt_field: str
    """The request field shown as a row's prompt (``text`` for TTS, the input ``audio`` for STS)."""

    @property
    def submit_hook(self) -> str:
        """The typed submit hook of ``JobProvider`` for this modality (``submit_video`` ...)."""
        return f"submit_{self.name}"

    @property
    def check_hook(self) -> str:
        """The typed check hook (``check_video`` ...): model rules ``ModelCapabilities`` cannot express."""
        return f"check_{self.name}"

    @property
    def fetch_hook(self) -> str:
        """The typed fetch hook (``fetch_video`` ...), for providers whose output differs per modality."""
        return f"fetch_{self.name}"


MODALITIES: Mapping[str, ModalitySpec] = MappingProxyType({
    "video": ModalitySpec("video", VideoGenerationConfig, VideoGenerationRequest, VideoGenerationResponse,
                          VideoGenerationUpdate, "video", "video/mp4", "prompt"),
    "image": ModalitySpec("image", ImageGenerationConfig, ImageGenerationRequest, ImageGenerationResponse,
                          ImageGenerationUpdate, "image", "image/png", "prompt"),
    "tts": ModalitySpec("tts", AudioGenerationConfig, TTSRequest, TTSResponse,
                        AudioGenerationUpdate, "audio", "audio/mpeg", "text"),
    "sts": ModalitySpec("sts", AudioGenerationConfig, STSRequest, STSResponse,
                        AudioGenerationUpdate, "audio", "audio/mpeg", "audio"),
})  # fmt: skip


def modality_spec(modality: str) -> ModalitySpec:
    """The table's row for ``modality``; a clear ``ValueError`` naming the known ones otherwise."""
    try:
        return MODALITIES[modality]
    except KeyError:
        raise ValueError(f"modality={modality!r} is not one of {', '.join(MODALITIES)}") from None
