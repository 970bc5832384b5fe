"""Speech: text-to-speech and speech-to-speech config, requests and responses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import GenerationConfigBase, GenerationRequestBase
from .media import MediaType
from .mock import MockConfig
from .responses import ResponseBase, UpdateBase, non_blank

AUDIO_FORMATS = ("mp3", "wav", "pcm", "flac", "opus")


class AudioGenerationConfig(GenerationConfigBase):
    """Which provider and model speak, and how long to wait. Immutable.

    ``base_url``, ``poll_interval`` and ``max_poll_attempts`` extend the spec so speech
    providers can be pointed elsewhere and queued ones (fal) polled.
    """

    base_url: str | None = None
    api_version: str | None = None
    timeout: int = Field(default=240, gt=0)
    max_poll_attempts: int = Field(default=240, gt=0)
    poll_interval: int = Field(default=1, ge=0)
    mock: MockConfig | None = None
    fallback_configs: list[AudioGenerationConfig] | None = None


class AudioOutputFormat(BaseModel):
    """Codec, sample rate (Hz) and bitrate (kbps) of the audio to produce."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = "mp3"
    sample_rate: int | None = Field(default=None, gt=0)
    bitrate: int | None = Field(default=None, gt=0)

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        normalised = value.lower()
        if normalised not in AUDIO_FORMATS:
            raise ValueError(f"audio format {value!r} is not one of {', '.join(AUDIO_FORMATS)}")
        return normalised


def default_output_format() -> AudioOutputFormat:
    """mp3 at 44100 Hz, 128 kbps."""
    return AudioOutputFormat(format="mp3", sample_rate=44100, bitrate=128)


class TTSRequest(GenerationRequestBase):
    """Text to speak. Unknown keyword arguments land in ``extra_params``."""

    text: str
    voice_id: str | None = None
    output_format: AudioOutputFormat = Field(default_factory=default_output_format)
    language_code: str | None = None
    voice_settings: dict | None = None

    _text_not_blank = field_validator("text")(non_blank)


class STSRequest(GenerationRequestBase):
    """Speech to convert to another voice. Unknown keyword arguments land in ``extra_params``."""

    audio: MediaType
    voice_id: str = Field(min_length=1)
    output_format: AudioOutputFormat = Field(default_factory=default_output_format)
    voice_settings: dict | None = None


class AudioResponseBase(ResponseBase):
    """Base64 audio with its MIME type and duration."""

    audio: str
    content_type: str | None = None
    duration: float | None = None


class TTSResponse(AudioResponseBase):
    """Speech made from text."""


class STSResponse(AudioResponseBase):
    """Speech converted to another voice."""


class AudioGenerationUpdate(UpdateBase):
    """Passed to ``on_progress`` while a queued speech job runs."""

    result: AudioResponseBase | None = None
