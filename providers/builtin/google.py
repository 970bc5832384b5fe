"""Google: Veo (video), Imagen and Gemini image models (image), over the Gemini
Developer API or Vertex AI.

Backends (chosen per config):

- **Gemini Developer API** (default): ``https://generativelanguage.googleapis.com/v1beta``,
  header ``x-goog-api-key``. The key comes from ``config.api_key``, else the
  ``GEMINI_API_KEY`` environment variable, else ``GOOGLE_API_KEY``.
- **Vertex AI** when ``provider_config`` has ``gcp_project``:
  ``https://{location}-aiplatform.googleapis.com/v1/projects/{p}/locations/{loc}/publishers/google/models/{model}:...``
  (``location`` defaults to ``us-central1``; ``global`` uses ``aiplatform.googleapis.com``),
  header ``Authorization: Bearer <OAuth token>``. The token is, in order:
  ``provider_config.access_token``, ``config.api_key`` (used as the bearer token), or
  google-auth application default credentials (``google.auth.default`` with the
  cloud-platform scope; cached on the provider and refreshed when expired).
  ``provider_config.quota_project`` becomes ``x-goog-user-project``;
  ``provider_config.storage_uri`` (``gs://...``) makes Veo/Imagen write outputs to
  Cloud Storage and return ``gs://`` URIs instead of bytes.

``config.base_url`` replaces scheme and host for both backends (the module appends
``/v1beta/...`` or ``/v1/projects/...``); ``config.api_version`` replaces the version.

Model families (by id prefix): ``veo-*`` -> ``:predictLongRunning`` (a job),
``imagen-*`` -> ``:predict`` (synchronous), ``gemini-*`` -> ``:generateContent``
(synchronous). Imagen is served on Vertex AI only: the google-genai SDK disabled
Imagen for the Gemini API, so an Imagen config on the Gemini API is a ``skipped``
attempt naming the fix (set ``gcp_project``). Every Imagen model, the Veo 3.0
and Veo 3.1 preview ids and the Gemini image previews are past their shutdown dates, so
the catalog marks them ``retired`` (a ``skipped`` attempt naming the replacement); the
Imagen code stays for the protocol, exercised by the tests with the lifecycle patched.

Ground truth: the official ``google-genai`` SDK (tests/conformance/test_google.py drives
it against the emulator on both backends and compares our requests with its requests
and the emulator's answers with its response types). Where the SDK and Google's REST
samples differ in spelling, the SDK's form is sent (``referenceType`` ``ASSET``/``STYLE``);
Vertex stays on ``v1`` (the REST reference's version) where the SDK defaults to ``v1beta1``.

``request.extra_params`` go into the model's ``parameters`` (Veo, Imagen) or
``generationConfig`` (Gemini image), snake_case keys converted to camelCase
(``person_generation`` -> ``personGeneration``). ``output_format`` (png/jpeg) selects
Imagen's ``outputOptions.mimeType``; ``image_size`` sets Gemini's ``imageConfig.imageSize``;
``safety_settings`` becomes Gemini's top-level ``safetySettings``. ``quality`` and
``style`` have no Google equivalent and are ignored.

Facts relied on ([C] confirmed in SDK source or Google docs, [I] inferred/unverified):

- [C] Hosts, paths, auth headers and API versions of both backends (google-genai).
- [C] Veo: ``{instances:[{prompt, image{bytesBase64Encoded,mimeType}, lastFrame,
  referenceImages[{image, referenceType}], video}], parameters:{sampleCount,
  durationSeconds, aspectRatio, resolution, personGeneration, negativePrompt,
  enhancePrompt}}``; Vertex-only ``seed``, ``generateAudio``, ``storageUri``, ``fps``,
  ``pubsubTopic``, ``compressionQuality``, ``resizeMode``, ``labels``.
- [C] Poll: Gemini ``GET {version}/{operation.name}``; Vertex ``POST
  ...:fetchPredictOperation {"operationName"}``; ``done``/``error{code,message}``.
- [C] Results: Gemini ``response.generateVideoResponse.generatedSamples[].video.uri``
  (download needs the API key) or ``encodedVideo``; Vertex ``response.videos[]``
  ``gcsUri`` or ``bytesBase64Encoded`` + ``mimeType``; ``raiMediaFilteredCount`` /
  ``raiMediaFilteredReasons`` when outputs were filtered.
- [C] Veo 3.x durations 4|6|8 s, 16:9 and 9:16, up to 4 videos per request (Vertex),
  720p/1080p; Veo 3.1 reference images (asset, up to 3) only for 8 s; Veo 2 5-8 s.
- [I] Veo 3.1 1080p/4k only for 8 s (Gemini API docs; applied on both backends);
  reference images are not combined with a first frame and not with 9:16; Veo 3 on
  the Gemini API always generates audio (so ``generate_audio=True`` is satisfied
  without sending the Vertex-only field, and ``False`` is skipped); Veo 3.1 Lite
  and Veo 3.1 Fast accept the same inputs as Veo 3.1; Veo on the Gemini API may be
  retired (a 404 then moves the chain on); Gemini API input video as ``uri`` or
  ``encodedVideo``+``encoding``.
- [C] Imagen ``:predict`` body and ``predictions[]{bytesBase64Encoded, mimeType,
  raiFilteredReason}``; aspect ratios 1:1, 3:4, 4:3, 9:16, 16:9.
- [I] Imagen ``sampleImageSize`` 2K only on Imagen 4 standard/ultra; Imagen 4 Ultra
  makes one image per request; ``seed`` needs ``addWatermark=false``.
- [C] Gemini image: ``generateContent`` with ``responseModalities`` and
  ``imageConfig{aspectRatio, imageSize}``; images in
  ``candidates[0].content.parts[].inlineData``; ``finishReason`` IMAGE_SAFETY /
  IMAGE_PROHIBITED_CONTENT / NO_IMAGE / IMAGE_OTHER; ``promptFeedback.blockReason``.
- [C] Errors ``{"error":{code, message, status, details}}``; 429 RESOURCE_EXHAUSTED
  with ``google.rpc.QuotaFailure`` (``quotaId`` naming PerDay/PerMinute) and
  ``google.rpc.RetryInfo.retryDelay`` (e.g. ``"36s"``); an invalid Gemini API key is
  a 400 with ErrorInfo reason ``API_KEY_INVALID``.
- [I] A 400 whose message cites Responsible AI / usage guidelines is a moderation
  refusal; operation error codes 4/8/13/14 are transient.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import requests

from schemas import (
    ImageGenerationConfig, ImageGenerationRequest, JobHandle, Modality, VideoGenerationConfig, VideoGenerationRequest,
)
from schemas.media import UrlHeaders

from providers.core.contract import AnyConfig, AnyRequest, GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import Lifecycle, ModelCapabilities
from providers.check import KeyCheck
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    MediagenError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderHTTPError,
    UnsupportedRequestError,
    is_transient_status,
)
from providers.core.http import content_type_from_url, decode_output_base64, json_object, media_bytes, request_id_from, send, shrink_raw
from providers.media.formats import parse_size
from providers.media.probe import sniff_content_type
from providers.core.pricing import price_sheet

GEMINI_HOST = "https://generativelanguage.googleapis.com"
GEMINI_API_VERSION = "v1beta"
VERTEX_API_VERSION = "v1"
DEFAULT_LOCATION = "us-central1"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GEMINI_KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
ADC_SOURCE = "google-auth application default credentials"

Backend = Literal["gemini", "vertex"]
Family = Literal["veo", "imagen", "gemini"]

_LOCATION_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9.:-]{0,126}$")
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_OPERATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")

VERTEX_ONLY_VEO_PARAMETERS = frozenset(
    {"seed", "generateAudio", "fps", "storageUri", "pubsubTopic", "mask", "compressionQuality", "resizeMode", "labels"}
)
MODERATION_FINISH_REASONS = frozenset(
    {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION",
     "IMAGE_RECITATION"}
)
_MODERATION_PHRASES = (
    "responsible ai",
    "usage guidelines",
    "safety filter",
    "sensitive words",
    "content policy",
    "prohibited content",
    "violates our policies",
    "violate google's",
)
_TRANSIENT_OPERATION_CODES = frozenset({4, 8, 13, 14})  # DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE
_REFERENCE_ROLES = ("reference", "asset", "style")
_IMAGE_ASPECTS = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "4:3": 4 / 3, "3:4": 3 / 4, "21:9": 21 / 9,
                  "3:2": 3 / 2, "2:3": 2 / 3, "5:4": 5 / 4, "4:5": 4 / 5}
_SIZE_TIERS = (("1K", 1024), ("2K", 2048), ("4K", 4096))


# -- what each model accepts -----------------------------------------------------------

_VIDEO = frozenset({"video"})
_IMAGE = frozenset({"image"})
_VEO_RATIOS = ("16:9", "9:16")
_VEO31_ROLES = ("first_frame", "last_frame", "reference", "asset")


def _veo(notes: str, **fields: Any) -> ModelCapabilities:
    defaults: dict[str, Any] = {
        "modalities": _VIDEO,
        "durations": (4, 6, 8),
        "resolutions": ("720p", "1080p"),
        "aspect_ratios": _VEO_RATIOS,
        "image_roles": ("first_frame",),
        "max_input_images": 1,
        "generates_audio": True,
        "max_outputs": 4,
    }
    return ModelCapabilities(**{**defaults, **fields, "notes": notes})


_VEO31 = _veo(
    "1080p/4k need 8 s; up to 3 reference (asset) images, 8 s, 16:9 only; input video = extension "
    "(Veo-made videos); seed/generate_audio=False need Vertex",
    resolutions=("720p", "1080p", "4k"),
    image_roles=_VEO31_ROLES,
    max_input_images=5,
    accepts_video_input=True,
)
_VEO3 = _veo("seed/generate_audio=False need Vertex")
_IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
_GEMINI_IMAGE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


_IMAGEN3_SHUTDOWN = Lifecycle(
    status="retired", date=date(2026, 6, 30), replacement="gemini-3.1-flash-image",
    source="Vertex AI Imagen 3 model page (cloud.google.com/vertex-ai/generative-ai/docs/models/imagen/3-0-generate), "
           "'Discontinuation date: June 30, 2026'",
)
_IMAGEN_SHUTDOWN = Lifecycle(
    status="retired", date=date(2026, 8, 17), replacement="gemini-3.1-flash-image",
    source="Firebase 'Migrate from Imagen' guide (firebase.google.com/docs/ai-logic/imagen-models-migration): all "
           "Imagen models shut down on both the Gemini API and Vertex AI; google-genai 2.34 deprecates generate_images",
)


def _imagen(notes: str, max_outputs: int = 4, lifecycle: Lifecycle = _IMAGEN_SHUTDOWN) -> ModelCapabilities:
    return ModelCapabilities(
        modalities=_IMAGE, aspect_ratios=_IMAGEN_RATIOS, image_roles=(), max_outputs=max_outputs,
        notes=f"Vertex AI only; {notes}", lifecycle=lifecycle,
    )


def _gemini_image(notes: str, max_input_images: int, lifecycle: Lifecycle = Lifecycle()) -> ModelCapabilities:
    return ModelCapabilities(
        modalities=_IMAGE, aspect_ratios=_GEMINI_IMAGE_RATIOS, image_roles=_REFERENCE_ROLES,
        max_input_images=max_input_images, max_outputs=1, notes=notes, lifecycle=lifecycle,
    )


_DEPRECATIONS = "Gemini API deprecations page (ai.google.dev/gemini-api/docs/deprecations)"
_VEO_PREVIEW_SHUTDOWN = Lifecycle(
    status="retired", date=date(2026, 10, 22), replacement="veo-3.1-generate-001",
    source=f"{_DEPRECATIONS}, as relayed by docs.apiyi.com (2026-10-25): the Veo 3.1 preview ids answer 404 'no "
           "longer available'; Google names gemini-omni-1.1-flash for the Gemini API, Vertex AI keeps veo-3.1-*-001",
)
_VEO3_SHUTDOWN = Lifecycle(
    status="retired", date=date(2026, 6, 30), replacement="veo-3.1-generate-001",
    source="Vertex AI Veo 3 model page (docs.cloud.google.com/gemini-enterprise-agent-platform/models/veo/3-0-generate), "
           "'Retirement date: June 30, 2026'",
)


def _retired(caps: ModelCapabilities, lifecycle: Lifecycle, replacement: str | None = None) -> ModelCapabilities:
    update = {"replacement": replacement} if replacement else {}
    return caps.model_copy(update={"lifecycle": lifecycle.model_copy(update=update)})


GOOGLE_MODELS: dict[str, ModelCapabilities] = {
    "veo-3.1-generate-001": _VEO31,
    "veo-3.1-generate-preview": _retired(_VEO31, _VEO_PREVIEW_SHUTDOWN),
    "veo-3.1-fast-generate-001": _VEO31,
    "veo-3.1-fast-generate-preview": _retired(_VEO31, _VEO_PREVIEW_SHUTDOWN, "veo-3.1-fast-generate-001"),
    "veo-3.1-lite-generate-001": _veo("preview; seed/generate_audio=False need Vertex",
                                      image_roles=("first_frame", "last_frame"), max_input_images=2),
    "veo-3.0-generate-001": _retired(_VEO3, _VEO3_SHUTDOWN),
    "veo-3.0-fast-generate-001": _retired(_VEO3, _VEO3_SHUTDOWN, "veo-3.1-fast-generate-001"),
    "veo-2.0-generate-001": _veo(
        "no audio; 720p; seed needs Vertex", durations=None, min_duration=5, max_duration=8,
        resolutions=("720p",), image_roles=("first_frame", "last_frame"), max_input_images=2, generates_audio=False,
    ),
    "veo-*": ModelCapabilities(modalities=_VIDEO, aspect_ratios=_VEO_RATIOS, notes="other Veo models: not checked"),
    "imagen-4.0-generate-001": _imagen("sizes up to 2K"),
    "imagen-4.0-ultra-generate-001": _imagen(
        "one image per request; sizes up to 2K", max_outputs=1,
        lifecycle=_IMAGEN_SHUTDOWN.model_copy(update={"replacement": "gemini-3-pro-image"}),
    ),
    "imagen-4.0-fast-generate-001": _imagen("1K only"),
    "imagen-3.0-generate-002": _imagen("1K only", lifecycle=_IMAGEN3_SHUTDOWN),
    "imagen-3.0-fast-generate-001": _imagen("1K only", lifecycle=_IMAGEN3_SHUTDOWN),
    "imagen-*": _imagen("other Imagen models"),
    "gemini-2.5-flash-image": _gemini_image(
        "one image per call; 1K; no negative_prompt", 3,
        lifecycle=Lifecycle(status="retired", date=date(2026, 10, 2), replacement="gemini-3.1-flash-image",
                            source=_DEPRECATIONS),
    ),
    "gemini-3.1-flash-image": _gemini_image("one image per call; 1K/2K/4K; no negative_prompt", 14),
    "gemini-3-pro-image": _gemini_image("one image per call; 1K/2K/4K; no negative_prompt", 14),
    "gemini-3-pro-image-preview": _gemini_image(
        "one image per call; 1K/2K/4K; no negative_prompt", 14,
        lifecycle=Lifecycle(status="retired", date=date(2026, 6, 25), replacement="gemini-3-pro-image",
                            source=_DEPRECATIONS),
    ),
    "gemini-3.1-flash-image-preview": _gemini_image(
        "one image per call; 1K/2K/4K; no negative_prompt", 14,
        lifecycle=Lifecycle(status="retired", date=date(2026, 6, 25), replacement="gemini-3.1-flash-image",
                            source=_DEPRECATIONS),
    ),
    "gemini-*": _gemini_image("other Gemini image models: one image per call", 14),
}

_SIZE_TIERS_BY_MODEL = {
    "imagen-4.0-generate-001": ("1K", "2K"),
    "imagen-4.0-ultra-generate-001": ("1K", "2K"),
    "gemini-3-pro-image-preview": ("1K", "2K", "4K"),
    "gemini-3.1-flash-image-preview": ("1K", "2K", "4K"),
    "gemini-3-pro-image": ("1K", "2K", "4K"),
    "gemini-3.1-flash-image": ("1K", "2K", "4K"),
}
_DEFAULT_SIZE_TIERS = {"imagen": ("1K",), "gemini": ("1K",)}


# -- backend and URLs ---------------------------------------------------------------------


@dataclass(frozen=True)
class BackendInfo:
    """Which Google API a config talks to (no secrets)."""

    kind: Backend
    project: str | None = None
    location: str | None = None


def backend_for(config: AnyConfig) -> BackendInfo:
    """Vertex AI when ``provider_config.gcp_project`` is set, else the Gemini API.
    Raises ``UnsupportedRequestError`` for a project or location that is not a plain id."""
    settings = config.provider_config or {}
    project = settings.get("gcp_project")
    if not project:
        return BackendInfo("gemini")
    location = settings.get("location") or DEFAULT_LOCATION
    if not isinstance(project, str) or not _PROJECT_RE.match(project):
        raise UnsupportedRequestError(f"provider_config.gcp_project={project!r} is not a Google Cloud project id")
    if not isinstance(location, str) or not _LOCATION_RE.match(location):
        raise UnsupportedRequestError(f"provider_config.location={location!r} is not a Google Cloud location")
    return BackendInfo("vertex", project, location)


def vertex_host(location: str) -> str:
    """The regional Vertex AI endpoint; ``global`` has no region prefix."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _root(ctx: ProviderContext, backend: BackendInfo) -> str:
    if ctx.config.base_url:
        return ctx.config.base_url.rstrip("/")
    return GEMINI_HOST if backend.kind == "gemini" else vertex_host(backend.location or DEFAULT_LOCATION)


def _api_version(ctx: ProviderContext, backend: BackendInfo) -> str:
    return ctx.config.api_version or (GEMINI_API_VERSION if backend.kind == "gemini" else VERTEX_API_VERSION)


def model_url(ctx: ProviderContext, backend: BackendInfo, method: str) -> str:
    """``.../models/{model}:{method}`` on the config's backend."""
    prefix = f"{_root(ctx, backend)}/{_api_version(ctx, backend)}"
    if backend.kind == "gemini":
        return f"{prefix}/models/{ctx.model}:{method}"
    return (
        f"{prefix}/projects/{backend.project}/locations/{backend.location}"
        f"/publishers/google/models/{ctx.model}:{method}"
    )


def image_family(model: str) -> Family:
    """Which Google protocol makes images with ``model``: Imagen predict or Gemini generateContent
    (videos are always Veo jobs)."""
    return "imagen" if model.startswith("imagen-") else "gemini"


# -- the provider ---------------------------------------------------------------------------


_google_price = price_sheet("https://ai.google.dev/gemini-api/docs/pricing", "2026-11-30",
                            note="Gemini API paid tier, as third-party summaries quote the page")
_VEO_31 = (_google_price("video_second", 0.40), _google_price("video_second", 0.60, resolution="4k"))
_VEO_31_FAST = (_google_price("video_second", 0.10, resolution="720p"),
                _google_price("video_second", 0.12, resolution="1080p"),
                _google_price("video_second", 0.30, resolution="4k"))
GOOGLE_PRICES = {
    "veo-3.1-generate-001": _VEO_31,
    "veo-3.1-generate-preview": _VEO_31,
    "veo-3.1-fast-generate-001": _VEO_31_FAST,
    "veo-3.1-fast-generate-preview": _VEO_31_FAST,
    "veo-3.1-lite-generate-001": (_google_price("video_second", 0.05, resolution="720p"),
                                  _google_price("video_second", None, resolution="1080p")),
    "veo-3.0-generate-001": (_google_price("video_second", 0.40),),
    "veo-3.0-fast-generate-001": (_google_price("video_second", 0.15),),
    "imagen-4.0-generate-001": (_google_price("image", 0.04),),
    "imagen-4.0-fast-generate-001": (_google_price("image", 0.02),),
    "imagen-4.0-ultra-generate-001": (_google_price("image", 0.06),),
    "imagen-3.0-generate-002": (_google_price("image", 0.03),),
    "gemini-2.5-flash-image": (_google_price("image", 0.039),),
    "gemini-3-pro-image": (_google_price("image", 0.134, note="1K/2K; 4K output costs $0.24"),),
    "gemini-3-pro-image-preview": (_google_price("image", 0.134, note="1K/2K; 4K output costs $0.24"),),
    "gemini-3.1-flash-image": (_google_price("image", 0.067, note="1024px; 512px to 4K range $0.045-$0.151"),),
    "gemini-3.1-flash-image-preview": (_google_price("image", 0.067, note="1024px; 512px to 4K range $0.045-$0.151"),),
}
"""Vertex AI bills the same models by its own SKUs: give them under prices: when running there."""


class GoogleProvider(JobProvider):
    """Veo video, Imagen and Gemini image generation on the Gemini API or Vertex AI."""

    name = "google"
    key_check = KeyCheck(
        path="/v1beta/models", key_header="x-goog-api-key", params={"pageSize": "1000"},
        models_from="models[].name", model_prefix="models/",
        not_for={"gcp_project": "Vertex AI authenticates with Google Cloud credentials, not an API key"},
        source="https://ai.google.dev/api/models#method:-models.list",
    )
    default_base_url = GEMINI_HOST
    api_key_env = "GEMINI_API_KEY"
    modalities = frozenset({"video", "image"})
    prices = GOOGLE_PRICES
    models = GOOGLE_MODELS

    def credential_origins(self, ctx: ProviderContext) -> list[str]:
        """Gemini and the (regional) Vertex hosts (see providers.core.http.may_carry_credentials)."""
        return [GEMINI_HOST, "https://*.googleapis.com"]

    def __init__(self) -> None:
        super().__init__()
        self._init_local_state()

    def _init_local_state(self) -> None:
        self._credentials: Any = None
        self._credentials_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Credentials hold secrets and must never be pickled.
        local = {"_credentials", "_credentials_lock"}
        return {k: v for k, v in super().__getstate__().items() if k not in local}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._init_local_state()

    # -- keys and tokens ------------------------------------------------------------------

    def resolve_api_key(self, config: AnyConfig) -> tuple[str | None, str]:
        if config.api_key:
            return config.api_key, "config.api_key"
        if (config.provider_config or {}).get("gcp_project"):
            # A Gemini API key from the environment is no Vertex bearer token.
            return None, ADC_SOURCE
        for env in GEMINI_KEY_ENVS:
            if os.environ.get(env):
                return os.environ[env], f"the {env} environment variable"
        return None, "config.api_key"

    def _auth_headers(self, ctx: ProviderContext, backend: BackendInfo) -> dict[str, str]:
        if backend.kind == "gemini":
            if not ctx.api_key:
                raise ProviderAuthError(
                    "no API key for the Gemini API: set config.api_key or the GEMINI_API_KEY (or GOOGLE_API_KEY) "
                    "environment variable, or set provider_config.gcp_project to use Vertex AI",
                    provider=self.name, model=ctx.model,
                )
            return {"x-goog-api-key": ctx.api_key}
        headers = {"Authorization": f"Bearer {self._vertex_token(ctx)}"}
        quota_project = (ctx.config.provider_config or {}).get("quota_project")
        if quota_project:
            headers["x-goog-user-project"] = str(quota_project)
        return headers

    def _vertex_token(self, ctx: ProviderContext) -> str:
        token = (ctx.config.provider_config or {}).get("access_token")
        # The token goes into ctx.api_key so that error messages redact it like a key.
        if token:
            ctx.api_key, ctx.api_key_source = str(token), "provider_config.access_token"
        elif not ctx.api_key or ctx.api_key_source == ADC_SOURCE:
            # Asked on every call: a long Veo job can outlive the token it started with.
            ctx.api_key, ctx.api_key_source = self._adc_token(ctx), ADC_SOURCE
        return ctx.api_key  # type: ignore[return-value]

    def _adc_token(self, ctx: ProviderContext) -> str:
        """A fresh OAuth token from application default credentials (cached, refreshed when expired)."""
        with self._credentials_lock:
            if self._credentials is None:
                self._credentials = _default_credentials(ctx)
            credentials = self._credentials
            if not credentials.valid or not credentials.token:
                _refresh_credentials(ctx, credentials)
            return str(credentials.token)

    # -- capability checks the table cannot express -----------------------------------------

    def check_request(self, modality: Modality, request: AnyRequest, config: AnyConfig) -> None:
        if not _MODEL_RE.match(config.model):
            raise UnsupportedRequestError(f"model={config.model!r} is not a plain Google model id")
        super().check_request(modality, request, config)

    def check_video(self, config: VideoGenerationConfig, request: VideoGenerationRequest) -> None:
        _raise_problems(_veo_problems(request, config.model, backend_for(config)))

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        backend = backend_for(config)
        if image_family(config.model) == "imagen":
            _raise_problems(_imagen_problems(request, config.model, backend))
        else:
            _raise_problems(_gemini_image_problems(request, config.model, backend))

    # -- the job protocol ------------------------------------------------------------------------

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle:
        return self._submit_veo(ctx, backend_for(ctx.config), request)

    def submit_image(self, ctx: ProviderContext, request: ImageGenerationRequest) -> ProviderOutput:
        backend = backend_for(ctx.config)
        if image_family(ctx.model) == "imagen":
            return self._predict_imagen(ctx, backend, request)
        return self._generate_gemini_image(ctx, backend, request)

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        operation = self._get_operation(ctx, job)
        raw = _operation_summary(operation)
        if not operation.get("done"):
            return JobStatus("processing", _operation_progress(operation), raw)
        failure = self._operation_failure(ctx, job, operation)
        if failure is not None:
            return JobStatus("failed", None, raw, failure=failure)
        return JobStatus("completed", 100, raw, result=operation)

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        # The poll that said done holds the operation; a job re-attached from the ledger asks again.
        operation = ctx.finished_answer() or self._get_operation(ctx, job)
        if not operation.get("done"):
            raise GenerationFailedError(f"operation {job.job_id} is not done yet", provider=self.name, model=ctx.model)
        failure = self._operation_failure(ctx, job, operation)
        if failure is not None:
            raise failure
        response = operation.get("response") or {}
        if job.data.get("backend") == "vertex":
            media = _vertex_videos(response)
        else:
            media = self._gemini_videos(ctx, response)
        duration = job.data.get("duration")
        return ProviderOutput(
            media=media,
            raw_response=shrink_raw(operation),
            request_id=job.job_id,
            duration=float(duration) if duration else None,
            aspect_ratio=job.data.get("aspect_ratio"),
        )

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        return google_error(ctx, response.status_code, body)

    # -- Veo ---------------------------------------------------------------------------------------

    def _submit_veo(self, ctx: ProviderContext, backend: BackendInfo, request: VideoGenerationRequest) -> JobHandle:
        body = {
            "instances": [_veo_instance(ctx, backend, request)],
            "parameters": _veo_parameters(request, backend, ctx.config.provider_config or {}),
        }
        headers = self._auth_headers(ctx, backend)
        response = send(ctx, "POST", model_url(ctx, backend, "predictLongRunning"), headers=headers, json_body=body)
        operation = json_object(ctx, response)
        name = operation.get("name")
        if not isinstance(name, str) or not _OPERATION_RE.match(name) or ".." in name:
            raise GenerationFailedError(
                f"predictLongRunning answered without a usable operation name: {str(name)[:100]!r}",
                provider=self.name, model=ctx.model, raw_response=shrink_raw(operation),
            )
        if backend.kind == "gemini":
            poll_url = f"{_root(ctx, backend)}/{_api_version(ctx, backend)}/{name}"
        else:
            poll_url = model_url(ctx, backend, "fetchPredictOperation")
        return JobHandle(
            provider=self.name,
            model=ctx.model,
            modality="video",
            job_id=name,
            poll_url=poll_url,
            request_id=request_id_from(response),
            data={
                "backend": backend.kind,
                "duration": request.duration_seconds,
                "aspect_ratio": request.aspect_ratio,
            },
        )

    def _get_operation(self, ctx: ProviderContext, job: JobHandle) -> dict[str, Any]:
        backend = backend_for(ctx.config)
        headers = self._auth_headers(ctx, backend)
        if job.data.get("backend", backend.kind) == "vertex":
            url = job.poll_url or model_url(ctx, backend, "fetchPredictOperation")
            response = send(ctx, "POST", url, headers=headers, json_body={"operationName": job.job_id})
        else:
            url = job.poll_url or f"{_root(ctx, backend)}/{_api_version(ctx, backend)}/{job.job_id}"
            response = send(ctx, "GET", url, headers=headers)
        return json_object(ctx, response)

    def _operation_failure(
        self, ctx: ProviderContext, job: JobHandle, operation: dict[str, Any]
    ) -> MediagenError | None:
        common: dict[str, Any] = {"provider": self.name, "model": ctx.model, "request_id": job.job_id,
                                  "raw_response": shrink_raw(operation)}
        error = operation.get("error")
        if isinstance(error, dict):
            return operation_error(error, common)
        response = operation.get("response") or {}
        results = response.get("generateVideoResponse", response) if isinstance(response, dict) else {}
        samples = results.get("generatedSamples") or results.get("videos") or []
        if samples:
            return None
        reasons = [str(r) for r in results.get("raiMediaFilteredReasons") or []]
        if results.get("raiMediaFilteredCount") or reasons:
            why = "; ".join(reasons) or "no reason given"
            return ContentModerationError(f"Google filtered every generated video: {why}", **common)
        return GenerationFailedError("the operation finished without any video", **common)

    def _gemini_videos(self, ctx: ProviderContext, response: dict[str, Any]) -> list[GeneratedMedia]:
        samples = (response.get("generateVideoResponse") or {}).get("generatedSamples") or []
        media = []
        for sample in samples:
            video = sample.get("video") or {}
            content_type = video.get("mimeType") or video.get("encoding") or "video/mp4"
            if video.get("encodedVideo"):
                media.append(GeneratedMedia(data=decode_output_base64(video["encodedVideo"], provider="Google"), content_type=content_type))
            elif video.get("uri"):
                # The file needs the key, which must never travel in a URL: the URL goes out
                # with the header to fetch it by (the pipeline streams it, the SDK downloads it).
                uri = str(video["uri"])
                trusted = may_send_key(uri, _root(ctx, BackendInfo("gemini")))
                headers = UrlHeaders({"x-goog-api-key": ctx.api_key}) if trusted and ctx.api_key else None
                media.append(GeneratedMedia(url=uri, content_type=content_type, headers=headers))
        return media

    # -- Imagen ----------------------------------------------------------------------------------------

    def _predict_imagen(
        self, ctx: ProviderContext, backend: BackendInfo, request: ImageGenerationRequest
    ) -> ProviderOutput:
        parameters = _imagen_parameters(request, ctx.model, ctx.config.provider_config or {})
        body = {"instances": [{"prompt": request.prompt}], "parameters": parameters}
        headers = self._auth_headers(ctx, backend)
        response = send(ctx, "POST", model_url(ctx, backend, "predict"), headers=headers, json_body=body)
        result = json_object(ctx, response)
        common: dict[str, Any] = {"provider": self.name, "model": ctx.model, "raw_response": shrink_raw(result),
                                  "request_id": request_id_from(response)}
        predictions = [p for p in result.get("predictions") or [] if isinstance(p, dict)]
        media = [_imagen_media(p) for p in predictions if p.get("bytesBase64Encoded") or p.get("gcsUri")]
        if not media:
            reasons = [str(p["raiFilteredReason"]) for p in predictions if p.get("raiFilteredReason")]
            if reasons:
                raise ContentModerationError(f"Imagen filtered every image: {'; '.join(reasons)}", **common)
            raise GenerationFailedError("Imagen returned no images (all may have been filtered)", **common)
        return ProviderOutput(media=media, raw_response=shrink_raw(result), request_id=common["request_id"],
                              aspect_ratio=request.aspect_ratio)

    # -- Gemini image models ----------------------------------------------------------------------------

    def _generate_gemini_image(
        self, ctx: ProviderContext, backend: BackendInfo, request: ImageGenerationRequest
    ) -> ProviderOutput:
        body = _gemini_image_body(ctx, backend, request)
        headers = self._auth_headers(ctx, backend)
        response = send(ctx, "POST", model_url(ctx, backend, "generateContent"), headers=headers, json_body=body)
        result = json_object(ctx, response)
        request_id = result.get("responseId") or request_id_from(response)
        common: dict[str, Any] = {"provider": self.name, "model": ctx.model, "raw_response": shrink_raw(result),
                                  "request_id": request_id}
        media, _text = _gemini_image_parts(result)
        if not media:
            raise gemini_image_failure(result, common)
        return ProviderOutput(media=media, raw_response=shrink_raw(result), request_id=request_id,
                              aspect_ratio=request.aspect_ratio)



# -- google-auth (lazily imported) ---------------------------------------------------------------------------


def _default_credentials(ctx: ProviderContext) -> Any:
    try:
        import google.auth
        import google.auth.exceptions
    except ImportError:
        raise ProviderAuthError(
            "Vertex AI needs an OAuth token: install google-auth for application default credentials, "
            "or pass a token as config.api_key or provider_config.access_token",
            provider="google", model=ctx.model,
        ) from None
    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ProviderAuthError(
            f"no Google Cloud credentials for Vertex AI ({exc}); run `gcloud auth application-default login`, "
            "set GOOGLE_APPLICATION_CREDENTIALS, or pass a token as config.api_key",
            provider="google", model=ctx.model,
        ) from None
    return credentials


def _refresh_credentials(ctx: ProviderContext, credentials: Any) -> None:
    import google.auth.exceptions
    import google.auth.transport.requests

    try:
        credentials.refresh(google.auth.transport.requests.Request(session=ctx.session))
    except google.auth.exceptions.RefreshError as exc:
        raise ProviderAuthError(
            f"could not refresh the Google Cloud access token: {exc}", provider="google", model=ctx.model
        ) from None
    except google.auth.exceptions.TransportError as exc:
        raise ProviderConnectionError(
            f"could not reach Google to refresh the access token: {exc}", provider="google", model=ctx.model
        ) from None


# -- request checks ---------------------------------------------------------------------------------------------


def _raise_problems(problems: list[str]) -> None:
    if problems:
        raise UnsupportedRequestError("; ".join(problems))


def _roles(images: list[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for item in images:
        grouped.setdefault(item["type"], []).append(item["image"])
    return grouped


def _is_gcs(media: Any) -> bool:
    return isinstance(media, str) and media.startswith("gs://")


def _veo_problems(request: VideoGenerationRequest, model: str, backend: BackendInfo) -> list[str]:
    problems: list[str] = []
    roles = _roles(request.image_list)
    references = sum(len(roles.get(r, [])) for r in _REFERENCE_ROLES)
    for role in ("first_frame", "last_frame"):
        if len(roles.get(role, [])) > 1:
            problems.append(f"at most one {role} image")
    if roles.get("last_frame") and not roles.get("first_frame"):
        problems.append("a last_frame image needs a first_frame image")
    if references > 3:
        problems.append(f"{references} reference images exceed Veo's maximum of 3")
    if references and roles.get("first_frame"):
        problems.append("Veo takes either reference images or a first_frame image, not both")
    if model.startswith("veo-3.1"):
        if references and request.duration_seconds not in (None, 8):
            problems.append(f"reference images need duration_seconds=8 (got {request.duration_seconds})")
        if references and request.aspect_ratio == "9:16":
            problems.append("reference images need aspect_ratio='16:9'")
        if request.resolution in ("1080p", "4k") and request.duration_seconds not in (None, 8):
            problems.append(
                f"resolution={request.resolution!r} needs duration_seconds=8 (got {request.duration_seconds})"
            )
    if backend.kind == "gemini":
        problems.extend(_gemini_api_veo_problems(request, model))
    return problems


def _gemini_api_veo_problems(request: VideoGenerationRequest, model: str) -> list[str]:
    hint = "(Vertex AI only: set provider_config.gcp_project)"
    problems = []
    if request.seed is not None:
        problems.append(f"seed is not accepted by Veo on the Gemini API {hint}")
    if request.generate_audio is False and model.startswith("veo-3"):
        problems.append(f"generate_audio=False: Veo 3 on the Gemini API always adds audio {hint}")
    extra = sorted(VERTEX_ONLY_VEO_PARAMETERS & {camel_case(k) for k in request.extra_params})
    if extra:
        problems.append(f"extra_params {extra} are not accepted by the Gemini API {hint}")
    inputs = [item["image"] for item in request.image_list] + ([request.video] if request.video is not None else [])
    if any(_is_gcs(media) for media in inputs):
        problems.append(f"gs:// inputs are not accepted by the Gemini API {hint}")
    if any(item["type"] == "style" for item in request.image_list):
        problems.append(f"style reference images are not accepted by the Gemini API {hint}")
    return problems


def _imagen_problems(request: ImageGenerationRequest, model: str, backend: BackendInfo) -> list[str]:
    if backend.kind == "gemini":
        return [
            "Imagen is served through Vertex AI only (the Gemini API is retiring Imagen and the google-genai SDK "
            "disabled it): set provider_config.gcp_project, or use a Gemini image model such as "
            "gemini-2.5-flash-image"
        ]
    problems = []
    if request.mask_image is not None:
        problems.append("mask_image: Imagen generation models do not edit images")
    watermark = request.extra_params.get("add_watermark", request.extra_params.get("addWatermark"))
    if request.seed is not None and watermark is not False:
        problems.append("seed needs extra_params add_watermark=False (Imagen ignores seeds on watermarked images)")
    problems.extend(_size_problems(request, _size_tiers(model, "imagen")))
    return problems


def _gemini_image_problems(request: ImageGenerationRequest, model: str, backend: BackendInfo) -> list[str]:
    problems = []
    if backend.kind == "gemini" and any(_is_gcs(item["image"]) for item in request.image_list):
        problems.append("gs:// inputs are not accepted by the Gemini API (Vertex AI only: set gcp_project)")
    if request.negative_prompt:
        problems.append("negative_prompt: Gemini image models have no negative prompt")
    if request.mask_image is not None:
        problems.append("mask_image: Gemini image models take no mask (describe the edit in the prompt)")
    problems.extend(_size_problems(request, _size_tiers(model, "gemini")))
    return problems


def _size_tiers(model: str, family: Family) -> tuple[str, ...]:
    if model in _SIZE_TIERS_BY_MODEL:
        return _SIZE_TIERS_BY_MODEL[model]
    if model in GOOGLE_MODELS:
        return _DEFAULT_SIZE_TIERS[family]
    return tuple(tier for tier, _ in _SIZE_TIERS)  # unknown model: let the API decide


def _size_problems(request: ImageGenerationRequest, tiers: tuple[str, ...]) -> list[str]:
    try:
        size_plan(request, tiers)
    except ValueError as exc:
        return [str(exc)]
    return []


def size_plan(request: ImageGenerationRequest, tiers: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(aspect ratio, size tier) for an image request: ``size='2048x1152'`` -> ``('16:9', '2K')``.

    Google takes an aspect ratio and a size tier (1K/2K/4K, by the long side), not pixels.
    Raises ``ValueError`` when the size matches no ratio or tier the model has."""
    aspect = request.aspect_ratio
    if not request.size or request.size == "auto":
        return aspect, None
    width, height = parse_size(request.size)
    ratio = width / height
    matched = next((name for name, value in _IMAGE_ASPECTS.items() if abs(value - ratio) / value < 0.01), None)
    if matched is None:
        raise ValueError(f"size={request.size!r} has no Google aspect ratio (allowed: {', '.join(_IMAGE_ASPECTS)})")
    if aspect is not None and aspect != matched:
        raise ValueError(f"size={request.size!r} is {matched}, which contradicts aspect_ratio={aspect!r}")
    long_side = max(width, height)
    tier = next((name for name, limit in _SIZE_TIERS if long_side <= limit), None)
    if tier is None or tier not in tiers:
        needed = tier or "larger than 4K"
        raise ValueError(f"size={request.size!r} needs a {needed} output (model offers: {', '.join(tiers)})")
    return matched, tier


# -- request bodies ------------------------------------------------------------------------------------------------


def camel_case(key: str) -> str:
    """``person_generation`` -> ``personGeneration``; camelCase keys stay as they are."""
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_params(extra: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {camel_case(k): v for k, v in extra.items() if k not in skip and camel_case(k) not in skip}


def _veo_instance(ctx: ProviderContext, backend: BackendInfo, request: VideoGenerationRequest) -> dict[str, Any]:
    instance: dict[str, Any] = {"prompt": request.prompt}
    roles = _roles(request.image_list)
    if roles.get("first_frame"):
        instance["image"] = _image_value(ctx, roles["first_frame"][0])
    if roles.get("last_frame"):
        instance["lastFrame"] = _image_value(ctx, roles["last_frame"][0])
    # The enum values google-genai sends (Google's REST samples show lowercase; both are accepted).
    references = [
        {"image": _image_value(ctx, item["image"]), "referenceType": "STYLE" if item["type"] == "style" else "ASSET"}
        for item in request.image_list
        if item["type"] in _REFERENCE_ROLES
    ]
    if references:
        instance["referenceImages"] = references
    if request.video is not None:
        instance["video"] = _video_value(ctx, backend, request.video)
    return instance


def _veo_parameters(request: VideoGenerationRequest, backend: BackendInfo, settings: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"sampleCount": request.number_of_videos}
    optional = {
        "durationSeconds": request.duration_seconds,
        "aspectRatio": request.aspect_ratio,
        "resolution": request.resolution,
        "negativePrompt": request.negative_prompt,
        "enhancePrompt": request.enhance_prompt,
    }
    if backend.kind == "vertex":
        optional.update({"seed": request.seed, "generateAudio": request.generate_audio,
                         "storageUri": settings.get("storage_uri")})
    params.update({k: v for k, v in optional.items() if v is not None})
    params.update(_camel_params(request.extra_params))
    return params


def _imagen_parameters(request: ImageGenerationRequest, model: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    aspect, tier = size_plan(request, _size_tiers(model, "imagen"))
    params: dict[str, Any] = {"sampleCount": request.n or 1, "includeRaiReason": True}
    optional = {
        "aspectRatio": aspect,
        "negativePrompt": request.negative_prompt,
        "seed": request.seed,
        "sampleImageSize": tier if tier and tier != "1K" else None,
        "storageUri": settings.get("storage_uri"),
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    output_format = request.extra_params.get("output_format")
    if output_format:
        params["outputOptions"] = {"mimeType": _image_mime(str(output_format))}
    params.update(_camel_params(request.extra_params, skip=frozenset({"output_format", "outputFormat"})))
    return params


def _gemini_image_body(ctx: ProviderContext, backend: BackendInfo, request: ImageGenerationRequest) -> dict[str, Any]:
    aspect, tier = size_plan(request, _size_tiers(ctx.model, "gemini"))
    extra = dict(request.extra_params)
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    parts.extend(_content_part(ctx, backend, item["image"]) for item in request.image_list)
    image_config = {k: v for k, v in {"aspectRatio": aspect, "imageSize": tier if tier != "1K" else None}.items() if v}
    explicit_size = extra.pop("image_size", None) or extra.pop("imageSize", None)
    if explicit_size:
        image_config["imageSize"] = explicit_size
    generation: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        generation["imageConfig"] = image_config
    if request.seed is not None:
        generation["seed"] = request.seed
    safety = extra.pop("safety_settings", None) or extra.pop("safetySettings", None)
    generation.update(_camel_params(extra))
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}], "generationConfig": generation}
    if safety:
        body["safetySettings"] = safety
    return body


def _image_value(ctx: ProviderContext, media: Any) -> dict[str, str]:
    if _is_gcs(media):
        return {"gcsUri": media, "mimeType": _type_from_name(media, "image/png")}
    data, content_type = _image_bytes(ctx, media)
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": content_type}


def _video_value(ctx: ProviderContext, backend: BackendInfo, media: Any) -> dict[str, str]:
    if backend.kind == "vertex":
        if _is_gcs(media):
            return {"gcsUri": media, "mimeType": "video/mp4"}
        data, content_type = media_bytes(ctx, media, default_type="video/mp4")
        return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": content_type}
    if isinstance(media, str) and may_send_key(media, _root(ctx, backend)) and "/files/" in media:
        return {"uri": media}  # a video Veo made earlier, stored in the Gemini Files API
    data, content_type = media_bytes(ctx, media, default_type="video/mp4")
    return {"encodedVideo": base64.b64encode(data).decode("ascii"), "encoding": content_type}


def _content_part(ctx: ProviderContext, backend: BackendInfo, media: Any) -> dict[str, Any]:
    if _is_gcs(media) and backend.kind == "vertex":
        return {"fileData": {"fileUri": media, "mimeType": _type_from_name(media, "image/png")}}
    data, content_type = _image_bytes(ctx, media)
    return {"inlineData": {"mimeType": content_type, "data": base64.b64encode(data).decode("ascii")}}


def _image_bytes(ctx: ProviderContext, media: Any) -> tuple[bytes, str]:
    data, content_type = media_bytes(ctx, media, default_type="application/octet-stream")
    if not content_type.startswith("image/"):
        content_type = sniff_content_type(data) or "image/png"
    return data, content_type


def _type_from_name(uri: str, fallback: str) -> str:
    known = content_type_from_url(uri)
    return known if known and known.startswith(("image/", "video/")) else fallback


def _image_mime(output_format: str) -> str:
    fmt = output_format.lower().removeprefix("image/")
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}.get(fmt, f"image/{fmt}")


# -- responses ----------------------------------------------------------------------------------------------------------


def _vertex_videos(response: dict[str, Any]) -> list[GeneratedMedia]:
    media = []
    for video in response.get("videos") or []:
        content_type = video.get("mimeType") or "video/mp4"
        if video.get("bytesBase64Encoded"):
            media.append(GeneratedMedia(data=decode_output_base64(video["bytesBase64Encoded"], provider="Google"), content_type=content_type))
        elif video.get("gcsUri"):
            media.append(GeneratedMedia(url=str(video["gcsUri"]), content_type=content_type))
    return media


def _imagen_media(prediction: dict[str, Any]) -> GeneratedMedia:
    content_type = prediction.get("mimeType") or "image/png"
    if prediction.get("bytesBase64Encoded"):
        return GeneratedMedia(data=decode_output_base64(prediction["bytesBase64Encoded"], provider="Google"), content_type=content_type)
    return GeneratedMedia(url=str(prediction["gcsUri"]), content_type=content_type)


def _gemini_image_parts(result: dict[str, Any]) -> tuple[list[GeneratedMedia], str]:
    candidates = result.get("candidates") or []
    parts = ((candidates[0].get("content") or {}).get("parts") or []) if candidates else []
    media, texts = [], []
    for part in parts:
        if part.get("thought"):
            continue  # interim "thinking" images of Gemini 3 models
        inline = part.get("inlineData") or part.get("inline_data")
        if inline and inline.get("data"):
            content_type = inline.get("mimeType") or inline.get("mime_type") or "image/png"
            media.append(GeneratedMedia(data=decode_output_base64(inline["data"], provider="Google"), content_type=content_type))
        elif part.get("text"):
            texts.append(str(part["text"]))
    return media, " ".join(texts)


def gemini_image_failure(result: dict[str, Any], common: dict[str, Any]) -> MediagenError:
    """Why a generateContent answer holds no image: moderation, or a plain failure."""
    feedback = result.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        detail = feedback.get("blockReasonMessage") or ""
        return ContentModerationError(f"Gemini blocked the prompt ({feedback['blockReason']}) {detail}".strip(), **common)
    candidates = result.get("candidates") or []
    if not candidates:
        return GenerationFailedError("Gemini returned no candidates", **common)
    reason = candidates[0].get("finishReason") or "unknown"
    detail = candidates[0].get("finishMessage") or ""
    _, text = _gemini_image_parts(result)
    message = f"Gemini returned no image (finishReason={reason}) {detail or text[:200]}".strip()
    if reason in MODERATION_FINISH_REASONS:
        return ContentModerationError(message, **common)
    return GenerationFailedError(message, **common)


def _operation_summary(operation: dict[str, Any]) -> dict[str, Any]:
    return {k: shrink_raw(v) for k, v in operation.items() if k != "response"}


def _operation_progress(operation: dict[str, Any]) -> int | None:
    metadata = operation.get("metadata") or {}
    value = metadata.get("progressPercent") if isinstance(metadata, dict) else None
    return int(value) if isinstance(value, (int, float)) else None


def operation_error(error: dict[str, Any], common: dict[str, Any]) -> MediagenError:
    """The taxonomy's error for a failed long-running operation's ``error {code, message}``."""
    code = error.get("code")
    message = str(error.get("message") or "no message")
    text = f"Veo operation failed (code {code}): {message}"
    if looks_like_moderation(message):
        return ContentModerationError(text, **common)
    if code == 3:
        return InvalidRequestError(text, **common)
    return GenerationFailedError(text, retryable=code in _TRANSIENT_OPERATION_CODES, **common)




def may_send_key(url: str, root: str) -> bool:
    """Whether the Gemini API key may accompany a request to ``url``: only to the
    configured API host or Google's own ``*.googleapis.com`` over https."""
    target, base = urlsplit(url), urlsplit(root)
    if target.netloc and target.netloc == base.netloc and target.scheme == base.scheme:
        return True
    host = (target.hostname or "").lower()
    return target.scheme == "https" and (host == "googleapis.com" or host.endswith(".googleapis.com"))


# -- error translation ---------------------------------------------------------------------------------------------------


def _error_object(body: Any) -> dict[str, Any]:
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {}


def _details(error: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [d for d in error.get("details") or [] if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def retry_delay(error: dict[str, Any]) -> float | None:
    """Seconds from ``google.rpc.RetryInfo.retryDelay`` (``"36s"``, ``"1.5s"``), if given."""
    for info in _details(error, "google.rpc.RetryInfo"):
        match = _DURATION_RE.match(str(info.get("retryDelay", "")))
        if match:
            return float(match.group(1))
    return None


def is_daily_quota(error: dict[str, Any]) -> bool:
    """A 429 that will not clear by retrying today: a per-day quota, or a quota of zero."""
    message = str(error.get("message") or "").lower()
    if "limit: 0" in message or "per day" in message:
        return True
    failures = _details(error, "google.rpc.QuotaFailure")
    names = [str(v.get("quotaId", "")) for d in failures for v in d.get("violations") or []]
    names += [str((d.get("metadata") or {}).get("quota_limit", "")) for d in _details(error, "google.rpc.ErrorInfo")]
    return any("perday" in name.lower() for name in names)


def _is_bad_key(error: dict[str, Any]) -> bool:
    reasons = {str(d.get("reason", "")) for d in _details(error, "google.rpc.ErrorInfo")}
    message = str(error.get("message") or "")
    return bool(reasons & {"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED"}) or message.startswith(
        "API key not valid"
    ) or error.get("status") == "UNAUTHENTICATED"


def looks_like_moderation(message: str) -> bool:
    lowered = message.lower()
    return any(phrase in lowered for phrase in _MODERATION_PHRASES)


def google_error(ctx: ProviderContext, status: int, body: Any) -> MediagenError | None:
    """Google's error body onto the taxonomy; ``None`` leaves the default status mapping."""
    error = _error_object(body)
    if not error:
        return None
    message = str(error.get("message") or "no message")
    grpc_status = error.get("status") or ""
    common: dict[str, Any] = {"provider": "google", "model": ctx.model, "retry_after": retry_delay(error)}
    if _is_bad_key(error):
        return ProviderAuthError(
            f"google rejected the credentials from {ctx.api_key_source} (HTTP {status} {grpc_status}): {message}",
            status_code=status, **common,
        )
    if status == 429:
        if is_daily_quota(error):
            return ProviderHTTPError(
                f"Google quota exhausted for the day (HTTP 429 {grpc_status}); not retrying: {message}",
                status_code=429, retryable=False, **{**common, "retry_after": None},
            )
        return ProviderHTTPError(f"Google rate limit (HTTP 429 {grpc_status}): {message}", status_code=429, **common)
    if status == 404:
        return ProviderHTTPError(
            f"Google does not serve {ctx.model} at this endpoint (HTTP 404 {grpc_status}): {message}",
            status_code=404, **common,
        )
    if status == 400 and looks_like_moderation(message):
        return ContentModerationError(f"Google refused the content (HTTP 400 {grpc_status}): {message}", **common)
    if is_transient_status(status) and common["retry_after"] is not None:
        return ProviderHTTPError(f"HTTP {status} {grpc_status} from google: {message}", status_code=status, **common)
    return None
