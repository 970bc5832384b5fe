"""The provider contract.

``ProviderHandler`` is the public protocol a custom provider implements. Built-in
providers subclass :class:`JobProvider` instead and implement the job protocol
(``submit`` -> ``poll`` -> ``fetch``); the shared driver turns that into sync and
async calls, and the pipeline keeps many such jobs in flight at once.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar, Literal, Protocol, Union, runtime_checkable

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

from schemas.base import normalise_api_key

from .capabilities import ModelCapabilities, check_request, family_lookup
from .errors import MediagenError, ProviderAuthError

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


@dataclass
class GeneratedMedia:
    """One output: a URL to download, or the bytes themselves."""

    url: str | None = None
    data: bytes | None = None
    content_type: str | None = None

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
    """The worker's spend control (``providers.pricing.Spend``): prices and caps each submit."""
    charge: Any = None
    """This attempt's cost estimate once its submit was sent (``providers.pricing.CostEstimate``)."""
    queued_seconds: float | None = None
    """Time this attempt's submit waited behind our own limits (slots, rate tokens, the call
    pool) before it ran; None until it is measured (set by ``providers.driver``)."""

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.provider.default_base_url).rstrip("/")

    def require_api_key(self) -> str:
        """The key, or a clear non-retryable error naming where it should come from."""
        if not self.api_key:
            env = self.provider.api_key_env
            hint = f"set config.api_key or the {env} environment variable" if env else "set config.api_key"
            raise ProviderAuthError(
                f"no API key for {self.provider.name}: {hint}", provider=self.provider.name, model=self.model
            )
        return self.api_key


class JobProvider:
    """Base class of the built-in providers: the job protocol plus shared plumbing.

    A subclass sets ``name``, ``default_base_url``, ``api_key_env`` and ``modalities``,
    describes its models in ``capabilities`` and implements:

    - ``submit(ctx, request)`` -> a :class:`JobHandle` to poll, or a :class:`ProviderOutput`
      straight away for synchronous APIs;
    - ``poll(ctx, job)`` -> :class:`JobStatus`;
    - ``fetch(ctx, job)`` -> :class:`ProviderOutput`;
    - optionally ``translate_error(ctx, response, body)`` for provider-specific error shapes.

    It owns one pooled ``requests.Session`` for its lifetime (one per worker process).
    """

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    api_key_env: ClassVar[str | None] = None
    modalities: ClassVar[frozenset[Modality]] = frozenset()
    models: ClassVar[dict[str, ModelCapabilities]] = {}
    """Documented models. A key ending in ``*`` describes a family by prefix."""
    prices: ClassVar[dict[str, Any]] = {}
    """Price entries (``schemas.pricing.Price``) per model, keyed like ``models``; a model
    without any has no price known (``providers.pricing``)."""
    pool_size: ClassVar[int] = 64
    idempotency_header: ClassVar[str | None] = None
    """The request header the provider dedupes submits on, if it has one."""

    def __init__(self) -> None:
        self._session: requests.Session | None = None
        self._lock = threading.Lock()

    # -- what the model accepts -------------------------------------------------

    def capabilities(self, model: str) -> ModelCapabilities:
        """What ``model`` accepts: its entry in ``models``, else the longest matching
        ``prefix*`` family, else nothing restricted beyond the provider's modalities."""
        caps = family_lookup(self.models, model)
        return caps if caps is not None else ModelCapabilities(modalities=self.modalities)

    def check_request(self, modality: Modality, request: AnyRequest, config: AnyConfig) -> None:
        """Raise ``UnsupportedRequestError`` when this config cannot serve the request."""
        check_request(self.capabilities(config.model), modality, request, provider=self.name, model=config.model)

    # -- the job protocol ---------------------------------------------------------

    def submit(self, ctx: ProviderContext, request: AnyRequest) -> JobHandle | ProviderOutput:
        raise NotImplementedError(f"{self.name} does not implement submit")

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        raise NotImplementedError(f"{self.name} has no asynchronous jobs")

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        raise NotImplementedError(f"{self.name} has no asynchronous jobs")

    def cancel(self, ctx: ProviderContext, job: JobHandle) -> bool:
        """Ask the provider to stop ``job``; True when it accepted. Providers without a
        cancel call keep this default (False: the job runs on)."""
        return False

    def translate_error(
        self, ctx: ProviderContext, response: requests.Response, body: Any
    ) -> MediagenError | None:
        """Map a provider-specific error response (e.g. moderation). ``None`` = use the default mapping."""
        return None

    # -- plumbing -----------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """The pooled HTTP session, created on first use."""
        with self._lock:
            if self._session is None:
                self._session = _pooled_session(self.pool_size)
            return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def resolve_api_key(self, config: AnyConfig) -> tuple[str | None, str]:
        """The key to use and where it came from (for error messages, never the key)."""
        if config.api_key:
            return config.api_key, "config.api_key"
        if self.api_key_env and os.environ.get(self.api_key_env, "").strip():
            source = f"the {self.api_key_env} environment variable"
            return normalise_api_key(os.environ[self.api_key_env], source), source
        return None, "config.api_key"

    def context(self, config: AnyConfig, modality: Modality, *, try_number: int = 1) -> ProviderContext:
        """A fresh per-attempt context with its own deadline."""
        key, source = self.resolve_api_key(config)
        return ProviderContext(
            provider=self,
            config=config,
            modality=modality,
            session=self.session,
            deadline=Deadline(config.timeout),
            api_key=key,
            api_key_source=source,
            try_number=try_number,
        )

    def __getstate__(self) -> dict[str, Any]:
        # Sessions and locks do not pickle; a copy builds its own on first use.
        return {k: v for k, v in self.__dict__.items() if k not in ("_session", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._session = None
        self._lock = threading.Lock()

    # -- ProviderHandler, through the shared driver -------------------------------

    def generate_video(self, config, request, on_progress=None):  # type: ignore[no-untyped-def]
        from .driver import run_single

        return run_single(self, "video", config, request, on_progress)

    async def generate_video_async(self, config, request, on_progress=None):  # type: ignore[no-untyped-def]
        from .driver import run_single_async

        return await run_single_async(self, "video", config, request, on_progress)

    def generate_image(self, config, request, on_progress=None):  # type: ignore[no-untyped-def]
        from .driver import run_single

        return run_single(self, "image", config, request, on_progress)

    async def generate_image_async(self, config, request, on_progress=None):  # type: ignore[no-untyped-def]
        from .driver import run_single_async

        return await run_single_async(self, "image", config, request, on_progress)

    def generate_tts(self, config, request, on_progress=None):  # type: ignore[no-untyped-def]
        from .driver import run_single

        return run_single(self, "tts", config, request, on_progress)

    async def generate_tts_async(self, config, request, on_progress=None):  # type: ignore[no-untyped-def]
        from .driver import run_single_async

        return await run_single_async(self, "tts", config, request, on_progress)

    def generate_sts(self, config, request, on_progress=None):  # type: ignore[no-untyped-def]
        from .driver import run_single

        return run_single(self, "sts", config, request, on_progress)

    async def generate_sts_async(self, config, request, on_progress=None):  # type: ignore[no-untyped-def]
        from .driver import run_single_async

        return await run_single_async(self, "sts", config, request, on_progress)


def _pooled_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
