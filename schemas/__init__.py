"""The public data model of mediagen. Pure pydantic: no I/O, nothing of ours imported."""

from .audio import (
    AUDIO_FORMATS,
    AudioGenerationConfig,
    AudioGenerationUpdate,
    AudioOutputFormat,
    STSRequest,
    STSResponse,
    TTSRequest,
    TTSResponse,
)
from .base import REVEAL_SECRETS
from .execution import AttemptMetadata, AttemptStatus, ExecutionMetadata
from .image import ImageGenerationConfig, ImageGenerationRequest, ImageGenerationResponse, ImageGenerationUpdate
from .job import DEFAULT_JOB, ConfigEntry, JobConfig
from .jobs import JobHandle, utc_now
from .limits import ProviderLimits
from .media import AspectRatio, Base64, HttpUrl, ImageType, MediaContent, MediaType, Modality, Resolution
from .mock import MockConfig, MockErrorKind, MockOutcome, MockPolling
from .video import VideoGenerationConfig, VideoGenerationRequest, VideoGenerationResponse, VideoGenerationUpdate

__all__ = [
    "AUDIO_FORMATS",
    "AspectRatio",
    "AttemptMetadata",
    "AttemptStatus",
    "AudioGenerationConfig",
    "AudioGenerationUpdate",
    "AudioOutputFormat",
    "ConfigEntry",
    "DEFAULT_JOB",
    "JobConfig",
    "Base64",
    "ExecutionMetadata",
    "HttpUrl",
    "ImageGenerationConfig",
    "ImageGenerationRequest",
    "ImageGenerationResponse",
    "ImageGenerationUpdate",
    "ImageType",
    "JobHandle",
    "MediaContent",
    "MediaType",
    "MockConfig",
    "MockErrorKind",
    "MockOutcome",
    "MockPolling",
    "Modality",
    "ProviderLimits",
    "REVEAL_SECRETS",
    "Resolution",
    "STSRequest",
    "STSResponse",
    "TTSRequest",
    "TTSResponse",
    "VideoGenerationConfig",
    "VideoGenerationRequest",
    "VideoGenerationResponse",
    "VideoGenerationUpdate",
    "utc_now",
]
