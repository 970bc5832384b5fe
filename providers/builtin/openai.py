"""OpenAI: Sora 2 video (Videos API) and image generation (Images API), plain REST.

Video is a job: ``POST /videos`` (multipart/form-data) -> poll ``GET /videos/{id}``
-> download ``GET /videos/{id}/content`` (the MP4 bytes). Images are synchronous:
``POST /images/generations`` (JSON), or ``POST /images/edits`` (multipart) when the
request carries input images; ``submit`` returns the output straight away.

The request mapping, response parsing and error translation here are shared with
:mod:`providers.builtin.azure_openai`, which overrides only routes, auth and Azure's errors
(the hooks are :meth:`OpenAIProvider.auth_headers`, :meth:`~OpenAIProvider.video_headers`,
:meth:`~OpenAIProvider.video_url`,
:meth:`~OpenAIProvider.image_url` and :meth:`~OpenAIProvider.wire_model`).

Facts this module relies on ([C] confirmed against the public API reference, SDK or
issue logs; [I] inferred, unverified). The oracle is openai-python 3.57.0: request
shapes and every emulator answer are compared with it in tests/conformance/test_openai.py.

- Base ``https://api.openai.com/v1``; ``Authorization: Bearer <key>`` [C]; optional
  ``OpenAI-Organization`` / ``OpenAI-Project`` headers (provider_config ``organization``
  / ``project``) [I].
- **Deprecation**: the SDK marks the Videos API "scheduled to permanently shut down on
  September 24, 2026"; OpenAI's deprecations page (as transcribed by a third party,
  read 2026-08-14) lists the Videos API and every sora-2 / sora-2-pro model and
  snapshot with shutdown 2026-09-24 and no replacement [C SDK; page I]. The same
  transcription lists dall-e-2 / dall-e-3 shut down on 2026-05-12 (still served on
  Azure deployments), gpt-image-1 on 2026-10-23 and gpt-image-1-mini / gpt-image-1.5
  on 2026-12-01, all replaced by gpt-image-2 [I]. The SDK's ``ImageModel`` docstring
  confirms gpt-image-1 (shut down 2026-10-23) and dall-e-2 / dall-e-3 (retired
  2026-05-12) [C SDK]; it still lists gpt-image-1-mini / gpt-image-1.5 as supported.
  Catalog lifecycle: every Sora model, gpt-image-1 and dall-e-* are ``retired`` (their
  requests become skipped attempts), gpt-image-1-mini / 1.5 ``deprecated`` (2026-12-01).
- Idempotency [C SDK ``_base_client``]: the SDK leaves ``_idempotency_header`` unset,
  so it never sends ``Idempotency-Key`` (it only builds a key to reuse across its own
  retries, then drops it), and the API reference documents no such header: a resent
  POST creates a second video / image.
- ``POST /videos`` fields: ``prompt``, ``model`` (sora-2, sora-2-pro, snapshots
  sora-2-2025-10-06, sora-2-2025-12-08, sora-2-pro-2025-10-06), ``seconds`` "4"|"8"|"12",
  ``size`` 720x1280 | 1280x720 | 1024x1792 | 1792x1024, ``input_reference`` (an image
  file) [C]. The SDK always sends multipart [C]; the newest reference also shows a
  JSON body with ``input_reference: {image_url | file_id}`` [C], we stay on multipart.
  The 1024x1792 / 1792x1024 sizes are sora-2-pro only [I: third-party guides], and the
  reference image must have the output's exact size [I] (we resize it, see below).
- ``GET /videos/{id}`` -> ``{id, status: queued|in_progress|completed|failed, progress,
  seconds, size, error: {code, message}, expires_at, ...}``; header
  ``openai-poll-after-ms`` suggests the poll interval [C]. Which ``error.code`` values a
  moderated job carries is not documented: codes naming moderation, content policy,
  safety or content filtering are treated as moderation [I].
- ``GET /videos/{id}/content`` returns the MP4 bytes (``Accept: application/binary``) [C].
- ``POST /videos/{id}/remix`` JSON ``{"prompt"}`` -> a new video job (same model, seconds
  and size as the completed source; ``remixed_from_video_id`` names it) [C SDK
  videos.remix / ``Video``].
- Images: ``POST /images/generations`` JSON ``prompt, model, n (dall-e-3: 1), size,
  quality, style (dall-e-3), response_format (dall-e only), output_format (gpt-image)``;
  response ``{created, data: [{b64_json | url, revised_prompt}], output_format, size}``;
  GPT-image models always answer with ``b64_json`` [C]. Current models [C SDK
  ``ImageModel``]: gpt-image-1-mini, gpt-image-1.5, gpt-image-2 (+ -2026-04-21),
  gpt-image-2.5-sunburst / -flare (+ -2026-09-08), gpt-image-2.6-sunburst / -flare,
  chatgpt-image-latest. Sizes: 1.x, 2.6 and chatgpt-image-latest
  1024x1024 | 1536x1024 | 1024x1536 | auto; gpt-image-2 and 2.5 any WxH with both sides
  multiples of 16, ratio within 1:3..3:1, at most 3840x2160; dall-e-3 1024x1024 |
  1792x1024 | 1024x1792; dall-e-2 256/512/1024 squares [C]. Quality: gpt-image
  low|medium|high|auto, the 2.5 models (and snapshots) also xhigh|max [C SDK
  ``quality`` docs]; dall-e-3 standard|hd, dall-e-2 standard [C]. ``quality`` and
  ``background`` in the answer never say ``auto`` (``ImagesResponse`` allows only the
  resolved values) [C SDK].
- ``POST /images/edits`` multipart: ``image`` (one file) or ``image[]`` (several),
  ``mask``, ``prompt`` and the generation options [C]; up to 16 images for GPT-image
  models [I], one square PNG for dall-e-2 [I]; dall-e-3 has no edits [C].
- Errors ``{"error": {message, type, param, code}}`` [C]. Moderation: 400 with code
  ``moderation_blocked`` (GPT-image) [C issue logs] or ``content_policy_violation``
  (DALL-E) [C issue logs]. 429 with code/type ``insufficient_quota`` is a billing stop,
  not a transient limit [I]. ``retry-after-ms`` / ``retry-after`` are honoured by the
  shared error mapping; ``x-should-retry: true|false`` overrides retryability [C SDK].

Mapping choices: ``duration_seconds`` -> ``seconds``; ``resolution`` + ``aspect_ratio``
-> ``size`` (720p: 1280x720 / 720x1280; 1080p on sora-2-pro: the 1792x1024 / 1024x1792
tier, which is 1024p, the closest offered); without them 720p 16:9. A request the
model cannot serve (other durations, ratios, resolutions, a negative prompt, a last
frame, an input video) is skipped before any HTTP. ``seed`` and ``enhance_prompt``
have no API counterpart and are ignored; Sora 2 output always carries audio, so
``generate_audio`` is not sent. The reference image is resized (cover + centre crop)
to the output size unless ``provider_config["fit_input_reference"]`` is false.

Remix: a video request with ``extra_params={"remix_video_id": "video_..."}`` (the id of
a completed video, e.g. ``response.raw_response["id"]``) calls ``POST /videos/{id}/remix``
with only its prompt. We picked an explicit extra parameter over ``request.video``
because ``video`` is media (a URL or base64 string), and a bare id would be ambiguous
there. A remix keeps the source's length and size, so a remix request that also sets
``duration_seconds``, ``resolution``, ``aspect_ratio``, ``negative_prompt``, ``video``,
``image_list`` or other ``extra_params`` is skipped before any call; an id with
characters other than letters, digits, ``_`` and ``-`` is an invalid request.

For images, ``aspect_ratio`` picks a size when ``size`` is not given (GPT-image-1
family: 3:2 / 2:3 are the nearest landscape / portrait sizes it offers), cross-family
quality names are translated (standard -> medium, hd -> high for GPT-image; low /
medium -> standard, high -> hd for dall-e-3), ``extra_params`` are sent as given
(e.g. ``background``, ``output_format``, ``moderation``, ``input_fidelity``), and
base64 payloads are left out of ``raw_response`` (the images are in the response).
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any
from urllib.parse import quote

import requests

from schemas import ImageGenerationConfig, ImageGenerationRequest, JobHandle, VideoGenerationConfig, VideoGenerationRequest
from schemas.media import UrlHeaders

from providers.core.contract import GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import Lifecycle, ModelCapabilities
from providers.check import KeyCheck
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    MediagenError,
    ProviderHTTPError,
    UnsupportedRequestError,
)
from providers.core.http import (
    config_headers,
    decode_output_base64,
    default_http_error,
    error_text,
    json_object,
    media_bytes,
    multipart_fields,
    request_id_from,
    send,
    shrink_raw,
    url_for,
)
from providers.media.formats import CONTENT_TYPES, EXTENSIONS, parse_size
from providers.core.pricing import Reported, price_sheet

DEFAULT_VIDEO_SECONDS = 4
REMIX_PARAM = "remix_video_id"
VIDEO_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
MAX_EDIT_IMAGES = 16

# -- Sora ---------------------------------------------------------------------------

SORA_SIZES: dict[tuple[str, str], str] = {
    ("720p", "16:9"): "1280x720",
    ("720p", "9:16"): "720x1280",
    ("1080p", "16:9"): "1792x1024",
    ("1080p", "9:16"): "1024x1792",
}
"""(resolution, aspect ratio) -> the Videos API ``size``."""


SORA_SHUTDOWN = Lifecycle(
    status="retired",
    date=date(2026, 9, 24),
    source="openai-python 3.57.0 Videos methods: 'The Sora API is scheduled to permanently shut down on September 24, 2026.'",
)
GPT_IMAGE_1_SHUTDOWN = Lifecycle(
    status="retired",
    date=date(2026, 10, 23),
    replacement="gpt-image-2.5-sunburst",
    source="openai-python 3.57.0 ImageModel docstring: 'GPT Image 1 was shut down on October 23, 2026'",
)
DALLE_SHUTDOWN = Lifecycle(
    status="retired",
    date=date(2026, 5, 12),
    replacement="gpt-image-2",
    source="openai-python 3.57.0 ImageModel docstring: 'dall-e-2, dall-e-3: This model was retired on May 12, 2026'",
)
GPT_IMAGE_1X_SHUTDOWN = Lifecycle(
    status="retired",
    date=date(2026, 12, 1),
    replacement="gpt-image-2",
    source="OpenAI deprecations page as transcribed by a third party (read 2026-08-14; unverified: the SDK still lists the model)",
)


def _sora(resolutions: tuple[str, ...], notes: str) -> ModelCapabilities:
    return ModelCapabilities(
        lifecycle=SORA_SHUTDOWN,
        modalities=frozenset({"video"}),
        durations=(4, 8, 12),
        resolutions=resolutions,
        aspect_ratios=("16:9", "9:16"),
        image_roles=("first_frame", "reference"),
        max_input_images=1,
        generates_audio=True,
        max_outputs=1,
        notes=notes,
    )


_SORA_NOTE = "sizes 1280x720 / 720x1280; always with audio; API shuts down 2026-09-24"
_SORA_PRO_NOTE = "1080p = 1792x1024 / 1024x1792 (1024p tier); always with audio; API shuts down 2026-09-24"
_GPT_IMAGE_NOTE = "3:2 / 2:3 sizes stand in for 16:9, 4:3 and 9:16; edits with up to 16 images"
_GPT_IMAGE_2_NOTE = "any WxH in multiples of 16, ratio 1:3..3:1, up to 3840x2160"
_GPT_IMAGE_25_NOTE = _GPT_IMAGE_2_NOTE + "; quality also xhigh / max"

# -- Images ---------------------------------------------------------------------------

GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
DALLE3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
DALLE2_SIZES = ("256x256", "512x512", "1024x1024")
GPT_IMAGE_2_MAX_PIXELS = 3840 * 2160
GPT_IMAGE_2_MAX_SIDE = 3840

ASPECT_SIZES: dict[str, dict[str, str]] = {
    "gpt-image": {"1:1": "1024x1024", "16:9": "1536x1024", "4:3": "1536x1024", "9:16": "1024x1536"},
    "gpt-image-2": {"1:1": "1024x1024", "16:9": "1536x864", "9:16": "864x1536", "4:3": "1152x864", "21:9": "1680x720"},
    "dall-e-3": {"1:1": "1024x1024", "16:9": "1792x1024", "9:16": "1024x1792"},
    "dall-e-2": {"1:1": "1024x1024"},
}
"""Image family -> aspect ratio -> size used when the request gives no ``size``."""

QUALITIES: dict[str, dict[str, str | None]] = {
    "gpt-image": {"low": "low", "medium": "medium", "high": "high", "auto": "auto", "standard": "medium", "hd": "high"},
    "gpt-image-2.5": {
        "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max", "auto": "auto",
        "standard": "medium", "hd": "high",
    },
    "dall-e-3": {"standard": "standard", "hd": "hd", "auto": None, "low": "standard", "medium": "standard", "high": "hd"},
    "dall-e-2": {"standard": "standard", "auto": None},
}
"""Image family -> requested quality -> what to send (None: leave it to the API)."""
QUALITIES["gpt-image-2"] = QUALITIES["gpt-image"]
ASPECT_SIZES["gpt-image-2.5"] = ASPECT_SIZES["gpt-image-2"]

DALLE3_STYLES = ("vivid", "natural")


def _gpt_image(
    notes: str,
    *,
    sizes: tuple[str, ...] | None = GPT_IMAGE_SIZES,
    ratios: tuple[str, ...] | None = None,
    lifecycle: Lifecycle = Lifecycle(),
) -> ModelCapabilities:
    return ModelCapabilities(
        lifecycle=lifecycle,
        modalities=frozenset({"image"}),
        sizes=sizes,
        aspect_ratios=ratios or tuple(ASPECT_SIZES["gpt-image"]),
        image_roles=("reference", "asset", "style"),
        max_input_images=MAX_EDIT_IMAGES,
        max_outputs=10,
        notes=notes,
    )


def image_family(model: str) -> str:
    """The Images API family a model name belongs to (unknown names: GPT-image).

    Per the SDK's parameter docs: gpt-image-2 / gpt-image-2-2026-04-21 and the 2.5 models
    (and snapshots) take any ``WxH``; only the 2.5 models add quality ``xhigh`` / ``max``;
    the other GPT-image models (1.x, 2.6, chatgpt-image-latest) take the standard sizes.
    """
    name = model.lower()
    if name.startswith("dall-e-3"):
        return "dall-e-3"
    if name.startswith("dall-e-2"):
        return "dall-e-2"
    if name.startswith("gpt-image-2.5"):
        return "gpt-image-2.5"
    if re.match(r"gpt-image-2(?:$|-)", name):
        return "gpt-image-2"
    return "gpt-image"


MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
QUOTA_CODES = frozenset({"insufficient_quota"})


_OPENAI_PRICING = "https://platform.openai.com/docs/pricing"
_openai_price = price_sheet(_OPENAI_PRICING, "2026-11-30")
_SORA_PRICE = (_openai_price("video_second", 0.10, note="720p, portrait or landscape"),)
_SORA_PRO_PRICE = (
    _openai_price("video_second", 0.30, resolution="720p"),
    _openai_price("video_second", 0.50, resolution="1080p", note="1024x1792 / 1792x1024"),
)
_GPT_IMAGE_1_PRICE = tuple(
    _openai_price("image", usd, size=size, quality=quality, note="image output tokens at $40/1M")
    for size, prices in (("1024x1024", (0.011, 0.042, 0.167)), ("1536x1024", (0.016, 0.063, 0.25)),
                         ("1024x1536", (0.016, 0.063, 0.25)))
    for quality, usd in zip(("low", "medium", "high"), prices)
)
OPENAI_PRICES = {
    "sora-2": _SORA_PRICE,
    "sora-2-2025-10-06": _SORA_PRICE,
    "sora-2-2025-12-08": _SORA_PRICE,
    "sora-2-pro": _SORA_PRO_PRICE,
    "sora-2-pro-2025-10-06": _SORA_PRO_PRICE,
    "gpt-image-1": _GPT_IMAGE_1_PRICE,
    "dall-e-3": (
        _openai_price("image", 0.04, size="1024x1024", quality="standard"),
        _openai_price("image", 0.08, size="1024x1024", quality="hd"),
        _openai_price("image", 0.08, size="1792x1024", quality="standard"),
        _openai_price("image", 0.08, size="1024x1792", quality="standard"),
        _openai_price("image", 0.12, size="1792x1024", quality="hd"),
        _openai_price("image", 0.12, size="1024x1792", quality="hd"),
    ),
    "dall-e-2": (
        _openai_price("image", 0.016, size="256x256"),
        _openai_price("image", 0.018, size="512x512"),
        _openai_price("image", 0.02, size="1024x1024"),
    ),
}
"""Per-call prices (the figures as third-party summaries quote this page; the newer
gpt-image models are billed by tokens only, so they have no per-image price here and
their token usage is priced once the answer reports it)."""

IMAGE_TOKEN_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-image-1": (5.0, 10.0, 40.0),
    "gpt-image-1-mini": (2.0, 2.5, 8.0),
}
"""USD per 1M tokens: text input, image input, image output."""


def openai_reported_cost(model: str, raw: dict[str, Any]) -> Reported | None:
    """The cost of an image answer from its ``usage`` token counts, where the model's token prices are known."""
    rates = IMAGE_TOKEN_PRICES.get(model)
    usage = raw.get("usage")
    if rates is None or not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details") or {}
    text_in = float(details.get("text_tokens", usage.get("input_tokens", 0)) or 0)
    image_in = float(details.get("image_tokens", 0) or 0)
    image_out = float(usage.get("output_tokens", 0) or 0)
    return Reported(usd=(text_in * rates[0] + image_in * rates[1] + image_out * rates[2]) / 1_000_000)


class OpenAIProvider(JobProvider):
    """OpenAI's Sora 2 videos (jobs) and GPT-image / DALL-E images (synchronous)."""

    name = "openai"
    key_check = KeyCheck(
        path="/models", headers="auth_headers", models_from="data[].id",
        source="https://platform.openai.com/docs/api-reference/models/list",
    )
    default_base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"
    modalities = frozenset({"video", "image"})
    moderation_codes: frozenset[str] = MODERATION_CODES
    prices = OPENAI_PRICES
    reported_cost = staticmethod(openai_reported_cost)
    models = {
        "sora-2": _sora(("720p",), _SORA_NOTE),
        "sora-2-2025-10-06": _sora(("720p",), _SORA_NOTE),
        "sora-2-2025-12-08": _sora(("720p",), _SORA_NOTE),
        "sora-2-pro": _sora(("720p", "1080p"), _SORA_PRO_NOTE),
        "sora-2-pro-2025-10-06": _sora(("720p", "1080p"), _SORA_PRO_NOTE),
        "gpt-image-1": _gpt_image(_GPT_IMAGE_NOTE, lifecycle=GPT_IMAGE_1_SHUTDOWN),
        "gpt-image-1-mini": _gpt_image(_GPT_IMAGE_NOTE, lifecycle=GPT_IMAGE_1X_SHUTDOWN),
        "gpt-image-1.5": _gpt_image(_GPT_IMAGE_NOTE, lifecycle=GPT_IMAGE_1X_SHUTDOWN),
        "gpt-image-2": _gpt_image(_GPT_IMAGE_2_NOTE, sizes=None, ratios=tuple(ASPECT_SIZES["gpt-image-2"])),
        "gpt-image-2-2026-04-21": _gpt_image(_GPT_IMAGE_2_NOTE, sizes=None, ratios=tuple(ASPECT_SIZES["gpt-image-2"])),
        **{
            name: _gpt_image(_GPT_IMAGE_25_NOTE, sizes=None, ratios=tuple(ASPECT_SIZES["gpt-image-2.5"]))
            for name in (
                "gpt-image-2.5-sunburst", "gpt-image-2.5-sunburst-2026-09-08",
                "gpt-image-2.5-flare", "gpt-image-2.5-flare-2026-09-08",
            )
        },
        "gpt-image-2.6-sunburst": _gpt_image(_GPT_IMAGE_NOTE),
        "gpt-image-2.6-flare": _gpt_image(_GPT_IMAGE_NOTE),
        "chatgpt-image-latest": _gpt_image(_GPT_IMAGE_NOTE),
        "dall-e-3": ModelCapabilities(
            lifecycle=DALLE_SHUTDOWN,
            modalities=frozenset({"image"}),
            sizes=DALLE3_SIZES,
            aspect_ratios=tuple(ASPECT_SIZES["dall-e-3"]),
            image_roles=(),
            max_outputs=1,
            notes="style vivid|natural; quality standard|hd; one image per request",
        ),
        "dall-e-2": ModelCapabilities(
            lifecycle=DALLE_SHUTDOWN,
            modalities=frozenset({"image"}),
            sizes=DALLE2_SIZES,
            aspect_ratios=("1:1",),
            image_roles=("reference",),
            max_input_images=1,
            max_outputs=10,
            notes="square sizes only; edits take one square PNG (+ mask)",
        ),
    }

    # -- hooks Azure overrides -----------------------------------------------------

    def auth_headers(self, ctx: ProviderContext) -> dict[str, str]:
        """Authentication plus OpenAI's optional organisation / project headers."""
        return {"Authorization": f"Bearer {ctx.require_api_key()}",
                **config_headers(ctx, {"organization": "OpenAI-Organization", "project": "OpenAI-Project"})}

    def video_headers(self, ctx: ProviderContext) -> dict[str, str]:
        """Headers for the Videos API routes (Azure authenticates them differently from images)."""
        return self.auth_headers(ctx)

    def video_url(self, ctx: ProviderContext, video_id: str | None = None, suffix: str = "") -> str:
        """Absolute URL of the videos collection, one video, or one of its sub-resources."""
        return url_for(ctx, video_path("videos", video_id, suffix))

    def image_url(self, ctx: ProviderContext, action: str) -> str:
        """Absolute URL of ``images/generations`` or ``images/edits``."""
        return url_for(ctx, f"images/{action}")

    def wire_model(self, ctx: ProviderContext) -> str:
        """The ``model`` value sent in request bodies."""
        return ctx.model

    # -- what the model accepts ---------------------------------------------------

    def check_video(self, config: VideoGenerationConfig, request: VideoGenerationRequest) -> None:
        _check_video_request(request)

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        _check_image_request(config.model, request)

    # -- the job protocol -----------------------------------------------------------

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        response = send(ctx, "GET", job.poll_url or self.video_url(ctx, job.job_id), headers=self.video_headers(ctx))
        body = json_object(ctx, response)
        status = str(body.get("status") or "")
        progress = _progress(body.get("progress"))
        poll_after = _poll_after(response)
        if status == "completed":
            return JobStatus("completed", 100, body, poll_after=poll_after, result=body)
        if status in ("failed", "cancelled", "canceled", "expired"):
            return JobStatus("failed", progress, body, failure=self.video_failure(ctx, job, body))
        state = "queued" if status == "queued" else "processing"
        return JobStatus(state, progress, body, poll_after=poll_after)

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        headers = self.video_headers(ctx)
        video = ctx.finished_answer() or json_object(
            ctx, send(ctx, "GET", job.poll_url or self.video_url(ctx, job.job_id), headers=headers))
        # The content needs the key: the URL goes out with the headers to fetch it by (the
        # pipeline streams it to storage, the SDK functions download it).
        content_url = job.result_url or self.video_url(ctx, job.job_id, "content")
        content = GeneratedMedia(url=content_url, content_type="video/mp4",
                                 headers=UrlHeaders({**headers, "Accept": "application/binary"}))
        seconds = video.get("seconds") or job.data.get("seconds")
        return ProviderOutput(
            media=[content],
            raw_response=video,
            request_id=job.job_id,
            duration=_float_or_none(seconds),
            resolution=str(video.get("size") or job.data.get("size") or "") or None,
            aspect_ratio=job.data.get("aspect_ratio"),
        )

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        error = openai_error(body)
        code = str(error.get("code") or "")
        kind = str(error.get("type") or "")
        message = str(error.get("message") or error_text(body) or response.reason or "no details")
        common: dict[str, Any] = {"provider": self.name, "model": ctx.model}
        if self.is_moderation_code(code):
            return ContentModerationError(f"{self.name} refused the content ({code}): {message}", **common)
        if response.status_code == 429 and (code in QUOTA_CODES or kind in QUOTA_CODES):
            return ProviderHTTPError(
                f"{self.name} quota exhausted (HTTP 429 {code or kind}): {message}",
                status_code=429,
                retryable=False,
                **common,
            )
        should_retry = (response.headers.get("x-should-retry") or "").strip().lower()
        if should_retry in ("true", "false"):
            mapped = default_http_error(ctx, response, body)
            if type(mapped) is ProviderHTTPError:  # never turns auth or invalid-input errors retryable
                mapped.retryable = should_retry == "true"
            return mapped
        return None

    def is_moderation_code(self, code: str) -> bool:
        """Whether an error code (HTTP error or failed video job) means a content refusal."""
        lowered = code.lower()
        return lowered in self.moderation_codes or any(
            word in lowered for word in ("moderation", "content_policy", "content_filter", "safety")
        )

    def video_failure(self, ctx: ProviderContext, job: JobHandle, body: dict[str, Any]) -> MediagenError:
        """The taxonomy's error for a video job that ended without a video."""
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = str(error.get("code") or body.get("status") or "failed")
        message = str(error.get("message") or "no reason given")
        common: dict[str, Any] = {"provider": self.name, "model": ctx.model, "request_id": job.job_id, "raw_response": body}
        if self.is_moderation_code(code):
            return ContentModerationError(f"video {job.job_id} was refused ({code}): {message}", **common)
        return GenerationFailedError(f"video {job.job_id} failed ({code}): {message}", **common)

    # -- video ---------------------------------------------------------------------

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle:
        source = remix_source(request)
        if source is not None:
            # POST /videos/{id}/remix takes a JSON body with only the new prompt (SDK videos.remix).
            response = send(
                ctx, "POST", self.video_url(ctx, source, "remix"), headers=self.video_headers(ctx),
                json_body={"prompt": request.prompt},
            )
            return self._video_handle(ctx, response, {}, request.aspect_ratio)
        aspect_ratio = request.aspect_ratio or "16:9"
        size = SORA_SIZES.get((request.resolution or "720p", aspect_ratio))
        seconds = str(request.duration_seconds or DEFAULT_VIDEO_SECONDS)
        fields: dict[str, Any] = {"prompt": request.prompt, "model": self.wire_model(ctx), "seconds": seconds, "size": size}
        fields.update(request.extra_params)
        parts = multipart_fields(fields)
        if request.image_list:
            data, content_type = media_bytes(ctx, request.image_list[0]["image"], default_type="image/png")
            if fields.get("size") and ctx.config.provider_config.get("fit_input_reference", True):
                data, content_type = fit_image(data, content_type, str(fields["size"]))
            parts.append(("input_reference", (f"reference.{_extension(content_type)}", data, content_type)))
        response = send(ctx, "POST", self.video_url(ctx), headers=self.video_headers(ctx), files=parts)
        return self._video_handle(ctx, response, fields, aspect_ratio)

    def _video_handle(
        self, ctx: ProviderContext, response: requests.Response, fields: dict[str, Any], aspect_ratio: str | None
    ) -> JobHandle:
        """The handle of the video job a create or remix call started."""
        body = json_object(ctx, response)
        video_id = body.get("id")
        if not video_id:
            raise GenerationFailedError(
                f"{self.name} accepted the video request but returned no id",
                provider=self.name, model=ctx.model, raw_response=body, request_id=request_id_from(response),
            )
        return JobHandle(
            provider=ctx.config.provider,
            model=ctx.model,
            modality="video",
            job_id=str(video_id),
            poll_url=self.video_url(ctx, str(video_id)),
            result_url=self.video_url(ctx, str(video_id), "content"),
            data={
                "seconds": str(body.get("seconds") or fields.get("seconds") or ""),
                "size": str(body.get("size") or fields.get("size") or ""),
                "aspect_ratio": aspect_ratio or _aspect_of_size(str(body.get("size") or "")),
                "http_request_id": request_id_from(response),
                "remixed_from_video_id": body.get("remixed_from_video_id"),
            },
        )

    # -- images ----------------------------------------------------------------------

    def submit_image(self, ctx: ProviderContext, request: ImageGenerationRequest) -> ProviderOutput:
        family = image_family(ctx.model)
        fields = image_fields(request, family, self.wire_model(ctx))
        headers = self.auth_headers(ctx)
        if request.image_list:
            parts = multipart_fields(fields)
            parts.extend(self._edit_files(ctx, request))
            response = send(ctx, "POST", self.image_url(ctx, "edits"), headers=headers, files=parts)
        else:
            response = send(ctx, "POST", self.image_url(ctx, "generations"), headers=headers, json_body=fields)
        return parse_image_response(ctx, json_object(ctx, response), fields, request_id_from(response))

    def _edit_files(self, ctx: ProviderContext, request: ImageGenerationRequest) -> list[tuple[str, Any]]:
        images = [media_bytes(ctx, item["image"], default_type="image/png") for item in request.image_list]
        name = "image" if len(images) == 1 else "image[]"
        parts: list[tuple[str, Any]] = [
            (name, (f"image-{index}.{_extension(content_type)}", data, content_type))
            for index, (data, content_type) in enumerate(images)
        ]
        if request.mask_image is not None:
            data, content_type = media_bytes(ctx, request.mask_image, default_type="image/png")
            parts.append(("mask", (f"mask.{_extension(content_type)}", data, content_type)))
        return parts


# -- request mapping (shared with Azure) -------------------------------------------------


def _check_video_request(request: VideoGenerationRequest) -> None:
    if REMIX_PARAM in request.extra_params:
        _check_remix_request(request)
        return
    problems: list[str] = []
    if request.negative_prompt:
        problems.append("negative_prompt is not supported by the Videos API")
    wanted = (request.resolution or "720p", request.aspect_ratio or "16:9")
    if wanted not in SORA_SIZES and "size" not in request.extra_params:
        offered = ", ".join(f"{r} {a}" for r, a in SORA_SIZES)
        problems.append(f"resolution={wanted[0]!r} with aspect_ratio={wanted[1]!r} has no Sora size (offered: {offered})")
    if problems:
        raise UnsupportedRequestError("; ".join(problems))


def remix_source(request: VideoGenerationRequest) -> str | None:
    """The video id a request asks to remix (``extra_params["remix_video_id"]``), or None."""
    value = request.extra_params.get(REMIX_PARAM)
    if value is None:
        return None
    if not isinstance(value, str) or not VIDEO_ID_PATTERN.match(value):
        raise InvalidRequestError(
            f"extra_params.{REMIX_PARAM}={value!r} is not a video id (letters, digits, '_' or '-', e.g. 'video_123')"
        )
    return value


def _check_remix_request(request: VideoGenerationRequest) -> None:
    remix_source(request)
    set_fields = [
        name for name in ("duration_seconds", "resolution", "aspect_ratio", "negative_prompt", "video")
        if getattr(request, name) is not None
    ]  # fmt: skip
    if request.image_list:
        set_fields.append("image_list")
    set_fields.extend(sorted(f"extra_params.{key}" for key in request.extra_params if key != REMIX_PARAM))
    if set_fields:
        raise UnsupportedRequestError(
            f"a remix takes only a prompt (it keeps the source video's length and size); also set: {', '.join(set_fields)}"
        )


def _check_image_request(model: str, request: ImageGenerationRequest) -> None:
    family = image_family(model)
    problems: list[str] = []
    if request.negative_prompt:
        problems.append("negative_prompt is not supported by the Images API")
    if request.quality is not None and request.quality.lower() not in QUALITIES[family]:
        problems.append(f"quality={request.quality!r} not supported (allowed: {', '.join(QUALITIES[family])})")
    if request.style is not None and (family != "dall-e-3" or request.style.lower() not in DALLE3_STYLES):
        allowed = ", ".join(DALLE3_STYLES) if family == "dall-e-3" else "only dall-e-3 takes a style"
        problems.append(f"style={request.style!r} not supported ({allowed})")
    if request.mask_image is not None and not request.image_list:
        problems.append("mask_image needs an input image in image_list")
    if request.size is None and request.aspect_ratio and request.aspect_ratio not in ASPECT_SIZES[family]:
        allowed = ", ".join(ASPECT_SIZES[family])
        problems.append(f"aspect_ratio={request.aspect_ratio!r} has no {family} size (allowed: {allowed})")
    if family in ("gpt-image-2", "gpt-image-2.5") and request.size not in (None, "auto"):
        problems.extend(_gpt_image_2_size_problems(request.size))
    if problems:
        raise UnsupportedRequestError("; ".join(problems))


def _gpt_image_2_size_problems(size: str) -> list[str]:
    width, height = parse_size(size)
    problems = []
    if width % 16 or height % 16:
        problems.append(f"size={size!r}: both sides must be multiples of 16")
    if max(width, height) > 3 * min(width, height):
        problems.append(f"size={size!r}: aspect ratio must be within 1:3 and 3:1")
    if width * height > GPT_IMAGE_2_MAX_PIXELS or max(width, height) > GPT_IMAGE_2_MAX_SIDE:
        problems.append(f"size={size!r} exceeds 3840x2160")
    return problems


def image_fields(request: ImageGenerationRequest, family: str, model: str) -> dict[str, Any]:
    """The Images API body (JSON for generations, form fields for edits)."""
    fields: dict[str, Any] = {"prompt": request.prompt, "model": model}
    if request.n is not None:
        fields["n"] = request.n
    size = request.size or (ASPECT_SIZES[family].get(request.aspect_ratio) if request.aspect_ratio else None)
    if size:
        fields["size"] = size
    if request.quality is not None:
        quality = QUALITIES[family].get(request.quality.lower())
        if quality:
            fields["quality"] = quality
    if request.style is not None:
        fields["style"] = request.style.lower()
    fields.update(request.extra_params)
    return fields


def parse_image_response(
    ctx: ProviderContext, body: dict[str, Any], fields: dict[str, Any], request_id: str | None
) -> ProviderOutput:
    """The images of an Images API answer: bytes for ``b64_json``, URLs for ``url``."""
    items = [item for item in body.get("data") or [] if isinstance(item, dict)]
    image_format = str(body.get("output_format") or fields.get("output_format") or "png").lower()
    content_type = CONTENT_TYPES.get(image_format, "image/png")
    media: list[GeneratedMedia] = []
    for item in items:
        if item.get("b64_json"):
            data = decode_output_base64(str(item["b64_json"]), provider=ctx.provider.name, model=ctx.model, what="an image")
            media.append(GeneratedMedia(data=data, content_type=content_type))
        elif item.get("url"):
            media.append(GeneratedMedia(url=str(item["url"]), content_type=content_type))
    revised = next((str(item["revised_prompt"]) for item in items if item.get("revised_prompt")), None)
    size = body.get("size") or fields.get("size")
    return ProviderOutput(
        media=media,
        raw_response=shrink_raw(body),
        request_id=request_id,
        resolution=str(size) if size and size != "auto" else None,
        revised_prompt=revised,
    )


def openai_error(body: Any) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error body (empty when it has none)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {}




def fit_image(data: bytes, content_type: str, size: str) -> tuple[bytes, str]:
    """``data`` scaled to cover ``size`` and centre-cropped to it; unchanged when it already fits."""
    from PIL import Image, ImageOps

    width, height = parse_size(size)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size == (width, height):
                return data, content_type
            image_format = image.format if image.format in ("PNG", "JPEG", "WEBP") else "PNG"
            fitted = ImageOps.fit(image.convert("RGB" if image_format == "JPEG" else "RGBA"), (width, height))
    except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError
        raise InvalidRequestError(f"the input reference is not a readable image ({content_type}): {exc}") from None
    out = io.BytesIO()
    fitted.save(out, format=image_format)
    return out.getvalue(), f"image/{image_format.lower()}"


# -- small helpers --------------------------------------------------------------------------


def video_path(collection: str, video_id: str | None, suffix: str) -> str:
    path = collection
    if video_id:
        path += f"/{quote(video_id, safe='')}"
    if suffix:
        path += f"/{suffix}"
    return path


def _aspect_of_size(size: str) -> str | None:
    """The aspect ratio (16:9 or 9:16) of a Sora size; a remix reports only the size it inherited."""
    for (_, aspect), known in SORA_SIZES.items():
        if known == size:
            return aspect
    return None


def _progress(value: Any) -> int | None:
    try:
        return max(0, min(100, int(float(value))))
    except (TypeError, ValueError):
        return None


def _poll_after(response: requests.Response) -> float | None:
    value = response.headers.get("openai-poll-after-ms")
    try:
        return max(0.0, float(value) / 1000) if value else None
    except ValueError:
        return None


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _extension(content_type: str) -> str:
    return EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "png")


