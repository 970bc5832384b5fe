"""The provider contract: what a provider handler is given and gives back.

``ProviderHandler`` is the public protocol a custom provider implements; the data
types here (context, job status, output) are shared by the built-in providers, the
driver and the orchestrator. :mod:`providers.core.base` holds ``JobProvider``, the
base class of the built-in providers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Protocol, Union, runtime_checkable

import requests

from schemas import (
    AudioGenerationConfig,
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    JobHandle,
    Modality,
    STSRequest,
    STSResponse,
    TTSRequest,
    TTSResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)
from schemas.media import UrlHeaders


from providers.errors import MediagenError, ProviderAuthError

if TYPE_CHECKING:
    from providers.core.base import JobProvider

AnyConfig = Union[VideoGenerationConfig, ImageGenerationConfig, AudioGenerationConfig]
AnyRequest = Union[VideoGenerationRequest, ImageGenerationRequest, TTSRequest, STSRequest]
ProgressCallback = Callable[[Any], Union[None, Awaitable[None]]]
JobState = Literal["queued", "processing", "completed", "failed"]


@runtime_checkable
class ProviderHandler(Protocol):
    """What every provider offers. Methods for modalities a provider lacks raise
    ``NotImplementedError`` (the orchestrator records a ``skipped`` attempt)."""

    def generate_video(
        self, config: VideoGenerationConfig, request: VideoGenerationRequest, on_progress: ProgressCallback | None = None
    ) -> VideoGenerationResponse: ...

    async def generate_video_async(
        self, config: VideoGenerationConfig, request: VideoGenerationRequest, on_progress: ProgressCallback | None = None
    ) -> VideoGenerationResponse: ...

    def generate_image(
        self, config: ImageGenerationConfig, request: ImageGenerationRequest, on_progress: ProgressCallback | None = None
    ) -> ImageGenerationResponse: ...

    async def generate_image_async(
        self, config: ImageGenerationConfig, request: ImageGenerationRequest, on_progress: ProgressCallback | None = None
    ) -> ImageGenerationResponse: ...

    def generate_tts(
        self, config: AudioGenerationConfig, request: TTSRequest, on_progress: ProgressCallback | None = None
    ) -> TTSResponse: ...

    async def generate_tts_async(
        self, config: AudioGenerationConfig, request: TTSRequest, on_progress: ProgressCallback | None = None
    ) -> TTSResponse: ...

    def generate_sts(
        self, config: AudioGenerationConfig, request: STSRequest, on_progress: ProgressCallback | None = None
    ) -> STSResponse: ...

    async def generate_sts_async(
        self, config: AudioGenerationConfig, request: STSRequest, on_progress: ProgressCallback | None = None
    ) -> STSResponse: ...


@dataclass
class JobStatus:
    """One poll's answer. ``failure`` is set when ``state == 'failed'``."""

    state: JobState
    progress_percent: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    failure: MediagenError | None = None
    poll_after: float | None = None
    """Seconds the provider suggests waiting before the next poll, if it says."""
    result: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    """The provider's whole answer when it already holds the finished job's output (``raw``
    may be a shrunk summary): ``fetch`` builds from it, via ``ctx.last_poll``, instead of
    asking again. Never shown in progress updates."""


@dataclass
class GeneratedMedia:
    """One output: a URL to download, or the bytes themselves. ``headers``: what the URL
    must be fetched with when it needs the provider's credentials (never shown or pickled)."""

    url: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    headers: UrlHeaders | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("GeneratedMedia needs exactly one of url or data")


@dataclass
class ProviderOutput:
    """What a finished job produced, before it becomes a typed response."""

    media: list[GeneratedMedia]
    raw_response: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    duration: float | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    revised_prompt: str | None = None
    audio_url: str | None = None
    is_mock: bool = False


class Deadline:
    """A point in (monotonic) time an attempt must finish by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._ends - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass
class ProviderContext:
    """Everything one attempt needs to talk to a provider.

    Built by the runtime for each attempt; provider code reads it, never builds it.
    """

    provider: "JobProvider"
    config: AnyConfig
    modality: Modality
    session: requests.Session
    deadline: Deadline
    api_key: str | None = field(default=None, repr=False)
    api_key_source: str = "config.api_key"
    try_number: int = 1
    job: JobHandle | None = None
    """The job this attempt submitted, once it has one (for metadata and error reports)."""
    provider_request_id: str | None = None
    """The provider's id for the finished request, once known."""
    idempotency_key: str | None = None
    """Set only while submitting: providers with an ``idempotency_header`` send it, so a
    submit retried after a lost answer finds the first job instead of paying again."""
    spend: Any = None
    """The worker's spend control (``providers.core.pricing.Spend``): prices and caps each submit."""
    charge: Any = None
    """This attempt's cost estimate once its submit was sent (``providers.core.pricing.CostEstimate``)."""
    queued_seconds: float | None = None
    """Time this attempt's submit waited behind our own limits (slots, rate tokens, the call
    pool) before it ran; None until it is measured (set by ``providers.core.driver``)."""
    stream_media: bool = False
    """The pipeline streams authenticated result URLs to storage itself (``GeneratedMedia.headers``);
    otherwise (the SDK functions) the driver downloads them and the response holds bytes."""
    last_poll: JobStatus | None = field(default=None, repr=False)
    """The last answer ``poll`` gave for ``job`` (set by the driver before it calls ``fetch``);
    None when nothing was polled in this process, e.g. a job re-attached from the ledger."""

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.provider.default_base_url).rstrip("/")

    def finished_answer(self) -> dict[str, Any] | None:
        """The whole answer of the poll that said ``completed``, when it holds the output
        (``JobStatus.result``); None means ``fetch`` must ask the provider itself."""
        poll = self.last_poll
        return poll.result if poll is not None and poll.state == "completed" else None

    def last_poll_payload(self) -> dict[str, Any] | None:
        """What the last poll said (``JobStatus.raw``), for the completed progress update."""
        return self.last_poll.raw if self.last_poll is not None else None

    def require_api_key(self) -> str:
        """The key, or a clear non-retryable error naming where it should come from."""
        if not self.api_key:
            env = self.provider.api_key_env
            hint = f"set config.api_key or the {env} environment variable" if env else "set config.api_key"
            raise ProviderAuthError(
                f"no API key for {self.provider.name}: {hint}", provider=self.provider.name, model=self.model
            )
        return self.api_key
