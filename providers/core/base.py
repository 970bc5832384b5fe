"""``JobProvider``: the base class of the built-in providers.

Built-in providers implement the job protocol (``submit`` -> ``poll`` -> ``fetch``);
the shared driver turns that into sync and async calls, and the pipeline keeps many
such jobs in flight at once. The data types of the contract are in
:mod:`providers.core.contract`.
"""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar

import requests

from schemas import (
    AudioGenerationConfig,
    ImageGenerationConfig,
    ImageGenerationRequest,
    JobHandle,
    Modality,
    ImageGenerationResponse,
    STSRequest,
    STSResponse,
    TTSRequest,
    TTSResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)
from schemas.modalities import modality_spec

from schemas.base import normalise_api_key

from providers.core.capabilities import ModelCapabilities, check_request, family_lookup
from providers.errors import MediagenError
from providers.core.contract import (
    AnyConfig, AnyRequest, Deadline, JobStatus, ProgressCallback, ProviderContext, ProviderOutput,
)
from providers.core.driver import run_single, run_single_async


class JobProvider:
    """Base class of the built-in providers: the job protocol plus shared plumbing.

    A subclass sets ``name``, ``default_base_url``, ``api_key_env`` and ``modalities``,
    describes its models in ``capabilities`` and implements, for each modality it serves,
    a typed hook (the table ``schemas.modalities.MODALITIES`` names them):

    - ``submit_video(ctx, request: VideoGenerationRequest)`` (``submit_image``,
      ``submit_tts``, ``submit_sts``) -> a :class:`JobHandle` to poll, or a
      :class:`ProviderOutput` straight away for synchronous APIs;
    - optionally ``check_video(config, request)`` (...): model rules ``ModelCapabilities``
      cannot express, raising ``UnsupportedRequestError``;

    and, for asynchronous jobs:

    - ``poll(ctx, job)`` -> :class:`JobStatus`;
    - ``fetch(ctx, job)`` -> :class:`ProviderOutput` (or per modality ``fetch_video(ctx, job)``
      ...); ``ctx.last_poll`` holds the poll that said ``completed``;
    - optionally ``translate_error(ctx, response, body)`` for provider-specific error shapes.

    The generic ``submit``, ``check_request`` and ``fetch`` dispatch to the typed hooks.

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
    without any has no price known (``providers.core.pricing``)."""
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
        """Raise ``UnsupportedRequestError`` when this config cannot serve the request: the
        capability table first, then the modality's typed check hook."""
        check_request(self.capabilities(config.model), modality, request, provider=self.name, model=config.model)
        getattr(self, modality_spec(modality).check_hook)(config, request)

    def check_video(self, config: VideoGenerationConfig, request: VideoGenerationRequest) -> None:
        """Model rules for a video request beyond ``ModelCapabilities`` (default: none)."""

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        """Model rules for an image request beyond ``ModelCapabilities`` (default: none)."""

    def check_tts(self, config: AudioGenerationConfig, request: TTSRequest) -> None:
        """Model rules for a text-to-speech request beyond ``ModelCapabilities`` (default: none)."""

    def check_sts(self, config: AudioGenerationConfig, request: STSRequest) -> None:
        """Model rules for a speech-to-speech request beyond ``ModelCapabilities`` (default: none)."""

    # -- the job protocol ---------------------------------------------------------

    def submit(self, ctx: ProviderContext, request: AnyRequest) -> JobHandle | ProviderOutput:
        """Start ``request``: the typed hook of ``ctx.modality`` (``submit_video`` ...)."""
        return getattr(self, modality_spec(ctx.modality).submit_hook)(ctx, request)

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle | ProviderOutput:
        raise NotImplementedError(f"{self.name} does not implement submit_video")

    def submit_image(self, ctx: ProviderContext, request: ImageGenerationRequest) -> JobHandle | ProviderOutput:
        raise NotImplementedError(f"{self.name} does not implement submit_image")

    def submit_tts(self, ctx: ProviderContext, request: TTSRequest) -> JobHandle | ProviderOutput:
        raise NotImplementedError(f"{self.name} does not implement submit_tts")

    def submit_sts(self, ctx: ProviderContext, request: STSRequest) -> JobHandle | ProviderOutput:
        raise NotImplementedError(f"{self.name} does not implement submit_sts")

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        raise NotImplementedError(f"{self.name} has no asynchronous jobs")

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        """The finished job's output: the typed hook of ``job.modality`` (``fetch_video`` ...)."""
        return getattr(self, modality_spec(job.modality).fetch_hook)(ctx, job)

    def fetch_video(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        raise NotImplementedError(f"{self.name} has no asynchronous video jobs")

    def fetch_image(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        raise NotImplementedError(f"{self.name} has no asynchronous image jobs")

    def fetch_tts(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        raise NotImplementedError(f"{self.name} has no asynchronous speech jobs")

    def fetch_sts(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        raise NotImplementedError(f"{self.name} has no asynchronous speech jobs")

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

    def generate_video(
        self, config: VideoGenerationConfig, request: VideoGenerationRequest, on_progress: ProgressCallback | None = None
    ) -> VideoGenerationResponse:
        return run_single(self, "video", config, request, on_progress)

    async def generate_video_async(
        self, config: VideoGenerationConfig, request: VideoGenerationRequest, on_progress: ProgressCallback | None = None
    ) -> VideoGenerationResponse:
        return await run_single_async(self, "video", config, request, on_progress)

    def generate_image(
        self, config: ImageGenerationConfig, request: ImageGenerationRequest, on_progress: ProgressCallback | None = None
    ) -> ImageGenerationResponse:
        return run_single(self, "image", config, request, on_progress)

    async def generate_image_async(
        self, config: ImageGenerationConfig, request: ImageGenerationRequest, on_progress: ProgressCallback | None = None
    ) -> ImageGenerationResponse:
        return await run_single_async(self, "image", config, request, on_progress)

    def generate_tts(
        self, config: AudioGenerationConfig, request: TTSRequest, on_progress: ProgressCallback | None = None
    ) -> TTSResponse:
        return run_single(self, "tts", config, request, on_progress)

    async def generate_tts_async(
        self, config: AudioGenerationConfig, request: TTSRequest, on_progress: ProgressCallback | None = None
    ) -> TTSResponse:
        return await run_single_async(self, "tts", config, request, on_progress)

    def generate_sts(
        self, config: AudioGenerationConfig, request: STSRequest, on_progress: ProgressCallback | None = None
    ) -> STSResponse:
        return run_single(self, "sts", config, request, on_progress)

    async def generate_sts_async(
        self, config: AudioGenerationConfig, request: STSRequest, on_progress: ProgressCallback | None = None
    ) -> STSResponse:
        return await run_single_async(self, "sts", config, request, on_progress)


def _pooled_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
