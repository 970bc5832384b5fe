"""xAI's Grok Imagine REST API (``api.x.ai/v1``): images (synchronous) and video (deferred).

Images come back in the answer to ``POST /images/generations``. Videos are *deferred
requests*: ``POST /videos/generations`` (or ``/videos/edits`` for an input video)
answers ``{request_id}``, then ``GET /videos/{request_id}`` reports ``status`` until
it is ``done`` (with ``video.url``), ``failed`` or ``expired``.

Facts relied on. [C] = confirmed (docs.x.ai pages, xAI's REST reference as mirrored by
third parties, the tarash gateway's use of the official SDK, or several public bug
reports); [I] = inferred or unverified.

- Base ``https://api.x.ai/v1``; ``Authorization: Bearer <key>``. [C]
- A wrong key is answered with **HTTP 400** ``{"code": "Client specified an invalid
  argument", "error": "Incorrect API key provided: xx***yy. ..."}`` [C, public bug
  reports]; we map it to ProviderAuthError without quoting the body (it echoes part of
  the key). A missing key as 401 [I].
- ``POST /images/generations`` ``{model: grok-imagine-image | grok-imagine-image-quality
  (-pro deprecated 2026-05-15), prompt, n 1-10, response_format url|b64_json,
  aspect_ratio, resolution 1k|2k, quality low|medium|high}`` -> ``{block_reason, data:
  [{url | b64_json, mime_type, revised_prompt}]}``; image URLs are temporary. [C docs.x.ai
  for models/n/response_format/aspect_ratio/resolution; quality, block_reason and
  mime_type from the mirrored REST reference [I]]. Aspect ratios 1:1, 3:4, 4:3, 9:16,
  16:9, 2:3, 3:2, 9:19.5, 19.5:9, 9:20, 20:9, 1:2, 2:1, auto [C]; of ours, 21:9 is not
  among them. ``size`` and ``style`` are documented as not supported [C].
- A non-empty ``block_reason``, or an HTTP 400/422 whose text speaks of moderation or
  content policy, is a moderation refusal [I].
- ``POST /videos/generations`` ``{model: grok-imagine-video, prompt, duration 1-15
  (default 8), aspect_ratio 1:1|16:9|9:16|4:3|3:4|3:2|2:3, resolution 480p|720p,
  image: {url}}`` (URL or data URI) -> ``{request_id}`` [C]. Video edits: ``POST
  /videos/edits {model, prompt, video: {url}}`` (mp4 URL or data URI; the input is cut to
  8 s and 854x480) [C mirrored reference]; that edits take no duration, aspect ratio,
  resolution or image [I].
- ``GET /videos/{request_id}`` -> ``{status: pending | done | failed | expired,
  video: {url, duration, respect_moderation}, model, error: {code, message},
  progress?}``, HTTP 200 for done and failed alike [C]; ``progress`` (percent) [I];
  ``queued``/``processing`` values some proxies report [I] are understood too.
- ``respect_moderation == false`` on a finished video = output blocked by moderation
  [C tarash]. ``expired`` = the deferred request lapsed; we treat it as a retryable
  generation failure (a fresh submit can succeed) [I]. ``error.code`` ``internal_error``
  is retried; codes mentioning moderation/safety are moderation [I].
- ``generate_audio`` (bool) is a field of the video request [C xai-sdk-python
  ``proto/v6/video_pb2.pyi`` ``GenerateVideoRequest``]; it is sent as given, so
  ``generate_audio=False`` asks for a silent video (videos have audio by default).
- ``grok-imagine-video``: 480p/720p [C docs.x.ai video overview];
  ``grok-imagine-video-1.5``: also 1080p, for text-to-video only [C docs.x.ai
  model-capabilities/video/generation].
- Lifecycle [C xAI migration guides]: ``grok-imagine-image-pro`` retired 2026-05-15
  (docs.x.ai/developers/migration/may-15-retirement), ``grok-imagine-image-quality``
  retired 2026-11-02 (docs.x.ai/developers/migration/imagine-image-quality-nov-2); both
  slugs now resolve to ``grok-imagine-image-2.0`` at ``quality: low``, a different model
  and price, so the catalog marks them ``retired`` and configs must name 2.0.
  ``grok-imagine-image-2.0`` takes ``quality`` low|medium and adds 21:9.

Ground truth: xAI has no REST SDK (xai-sdk speaks gRPC), so the request and answer
shapes in tests/conformance/test_xai.py are copied from xAI's REST reference
(docs.x.ai/developers/rest-api-reference/inference/{images,videos}) and the field names
of xai-sdk-python's ``video_pb2`` / ``image_pb2`` protos.

Request fields xAI has no parameter for: ``size`` (other than ``auto``), ``style``,
``negative_prompt``, ``mask_image`` and image ``quality`` values other than
low/medium/high skip the config (they change what is made); ``seed`` and
``enhance_prompt`` are dropped (hints only). ``extra_params`` are sent as xAI fields
verbatim (e.g. ``resolution="2k"`` for images); ``provider_config["response_format"]``
chooses image URLs (default) or base64.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping
from urllib.parse import quote

from schemas import ImageGenerationConfig, ImageGenerationRequest, JobHandle, VideoGenerationConfig, VideoGenerationRequest

from providers.core.contract import GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import Lifecycle, ModelCapabilities
from providers.check import KeyCheck
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    MediagenError,
    ProviderAuthError,
    ProviderHTTPError,
    UnsupportedRequestError,
)
from providers.core.http import decode_output_base64, error_text, media_url_or_data_url, request_id_from, response_body, send, shrink_raw
from providers.media.probe import sniff_content_type
from providers.core.pricing import Reported, price_sheet

VIDEO_ASPECTS = ("16:9", "9:16", "1:1", "4:3")
IMAGE_ASPECTS = ("16:9", "9:16", "1:1", "4:3")
IMAGE_QUALITIES = ("low", "medium", "high")
_MODERATION_WORDS = ("moderation", "content policy", "content_policy", "safety")

_IMAGE = ModelCapabilities(
    modalities=frozenset({"image"}),
    aspect_ratios=IMAGE_ASPECTS,
    image_roles=(),
    max_outputs=10,
    sizes=("auto",),
    notes="no size: use aspect_ratio and extra_params resolution='1k'|'2k'",
)
_REDIRECTED = "the slug now serves grok-imagine-image-2.0 at quality low (another model and price)"
_VIDEO = ModelCapabilities(
    modalities=frozenset({"video"}),
    min_duration=1,
    max_duration=15,
    resolutions=("480p", "720p"),
    aspect_ratios=VIDEO_ASPECTS,
    image_roles=("first_frame",),
    max_input_images=1,
    accepts_video_input=True,
    generates_audio=True,
    max_outputs=1,
    notes="audio on unless generate_audio=False; an input video is an edit (prompt only; cut to 8 s at 854x480)",
)


USD_PER_TICK = 1e-10
"""xAI reports ``usage.cost_in_usd_ticks``: ten-billionths of a dollar."""
XAI_PRICES = {
    "*": (price_sheet("https://docs.x.ai/docs/models", "2026-11-30")(
        "image", None, note="not found; the answer's usage.cost_in_usd_ticks gives the actual cost"),),
}


def xai_reported_cost(model: str, raw: dict[str, Any]) -> Reported | None:
    """The answer's own charge, ``usage.cost_in_usd_ticks``."""
    usage = raw.get("usage")
    ticks = usage.get("cost_in_usd_ticks") if isinstance(usage, dict) else None
    if not isinstance(ticks, (int, float)) or isinstance(ticks, bool):
        return None
    return Reported(usd=float(ticks) * USD_PER_TICK)


class XAIProvider(JobProvider):
    """xAI Grok Imagine: text-to-image, and text/image-to-video plus video edits."""

    name = "xai"
    key_check = KeyCheck(
        path="/models", headers="headers", models_from="data[].id",
        source="https://docs.x.ai/docs/api-reference#list-models",
    )
    default_base_url = "https://api.x.ai/v1"
    api_key_env = "XAI_API_KEY"
    modalities = frozenset({"video", "image"})
    prices = XAI_PRICES
    reported_cost = staticmethod(xai_reported_cost)
    models = {
        "grok-imagine-image": _IMAGE,
        "grok-imagine-image-2.0": _IMAGE.model_copy(update={
            "aspect_ratios": IMAGE_ASPECTS + ("21:9",),
            "notes": "quality low|medium; no size: use aspect_ratio and extra_params resolution='1k'|'2k'",
        }),
        "grok-imagine-image-quality": _IMAGE.model_copy(update={"lifecycle": Lifecycle(
            status="retired", date=date(2026, 11, 2), replacement="grok-imagine-image-2.0",
            source=f"docs.x.ai/developers/migration/imagine-image-quality-nov-2 ({_REDIRECTED})",
        )}),
        "grok-imagine-image-pro": _IMAGE.model_copy(update={"lifecycle": Lifecycle(
            status="retired", date=date(2026, 5, 15), replacement="grok-imagine-image-2.0",
            source=f"docs.x.ai/developers/migration/may-15-retirement ({_REDIRECTED})",
        )}),
        "grok-imagine-video": _VIDEO,
        "grok-imagine-video-1.5": _VIDEO.model_copy(update={
            "resolutions": ("480p", "720p", "1080p"),
            "accepts_video_input": False,
            "notes": "1080p for text-to-video only; audio on unless generate_audio=False",
        }),
    }

    # -- what a model accepts ---------------------------------------------------------

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        check_image_request(request, config.model)

    def check_video(self, config: VideoGenerationConfig, request: VideoGenerationRequest) -> None:
        check_video_request(request)

    # -- the job protocol -----------------------------------------------------------------

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle:
        check_video_request(request)
        path, body = video_call(ctx, request)
        response = send(ctx, "POST", path, headers=self.headers(ctx), json_body=body)
        answer = response_body(response)
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise GenerationFailedError(f"xai accepted the video but returned no request_id: {answer!r:.200}")
        return JobHandle(
            provider=ctx.config.provider,
            model=ctx.model,
            modality="video",
            job_id=request_id,
            request_id=request_id,
            poll_url=f"{ctx.base_url}/videos/{quote(request_id, safe='')}",
            data={"endpoint": path, "aspect_ratio": body.get("aspect_ratio"), "resolution": body.get("resolution")},
        )

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        answer = self._video_status(ctx, job)
        status = str(answer.get("status") or "pending").lower()
        if status == "done":
            blocked = _moderation_block(ctx, answer)
            return JobStatus("failed", 100, answer, failure=blocked) if blocked else JobStatus("completed", 100, answer, result=answer)
        if status in ("failed", "expired", "error", "cancelled"):
            return JobStatus("failed", None, answer, failure=video_failure(ctx, answer))
        progress = _percent(answer.get("progress"))
        started = status in ("processing", "in_progress", "running") or bool(progress)
        return JobStatus("processing" if started else "queued", progress, answer)

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        answer = ctx.finished_answer() or self._video_status(ctx, job)
        if str(answer.get("status") or "").lower() != "done":
            raise video_failure(ctx, answer)
        blocked = _moderation_block(ctx, answer)
        if blocked:
            raise blocked
        video = answer.get("video") if isinstance(answer.get("video"), dict) else {}
        url = video.get("url")
        duration = video.get("duration")
        return ProviderOutput(
            media=[GeneratedMedia(url=url, content_type="video/mp4")] if isinstance(url, str) and url else [],
            raw_response=answer,
            request_id=job.job_id,
            duration=float(duration) if isinstance(duration, (int, float)) and duration > 0 else None,
            resolution=job.data.get("resolution"),
            aspect_ratio=job.data.get("aspect_ratio"),
        )

    def translate_error(self, ctx: ProviderContext, response: Any, body: Any) -> MediagenError | None:
        status = response.status_code
        text = error_text(body)
        lowered = text.lower()
        if status in (400, 401) and "api key" in lowered:
            # The body echoes part of the key: do not quote it.
            return ProviderAuthError(
                f"xai rejected the API key from {ctx.api_key_source} (HTTP {status}: incorrect or missing API key)",
                status_code=401,
            )
        if status in (400, 422) and any(word in lowered for word in _MODERATION_WORDS):
            return ContentModerationError(f"xai refused the content (HTTP {status}): {text}")
        if status == 403 and ("credit" in lowered or "spending limit" in lowered):
            return ProviderHTTPError(f"xai account cannot pay for the request (HTTP 403): {text}", status_code=403)
        return None

    # -- helpers ----------------------------------------------------------------------------

    def headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"Authorization": f"Bearer {ctx.require_api_key()}"}

    def _video_status(self, ctx: ProviderContext, job: JobHandle) -> dict[str, Any]:
        path = job.poll_url or f"/videos/{quote(job.job_id, safe='')}"
        response = send(ctx, "GET", path, headers=self.headers(ctx))
        answer = response_body(response) or {}  # an empty answer: accepted, nothing to report yet
        if not isinstance(answer, dict):
            raise GenerationFailedError(f"xai video {job.job_id}: unexpected answer {answer!r:.200}", retryable=True)
        return answer

    def submit_image(self, ctx: ProviderContext, request: ImageGenerationRequest) -> ProviderOutput:
        check_image_request(request, ctx.model)
        response = send(ctx, "POST", "/images/generations", headers=self.headers(ctx), json_body=image_body(ctx, request))
        answer = response_body(response)
        if not isinstance(answer, dict):
            raise GenerationFailedError(f"xai image answer is not an object: {answer!r:.200}")
        request_id = request_id_from(response) or (answer.get("id") if isinstance(answer.get("id"), str) else None)
        if answer.get("block_reason"):
            raise ContentModerationError(
                f"xai blocked the image request: {answer['block_reason']}", request_id=request_id, raw_response=answer
            )
        items = [item for item in answer.get("data") or [] if isinstance(item, dict)]
        media = [_image_media(item) for item in items if item.get("url") or item.get("b64_json")]
        revised = next((item["revised_prompt"] for item in items if item.get("revised_prompt")), None)
        return ProviderOutput(
            media=media, raw_response=shrink_raw(answer), request_id=request_id, revised_prompt=revised
        )


# -- requests -----------------------------------------------------------------------------


def check_image_request(request: ImageGenerationRequest, model: str = "") -> None:
    """Raise UnsupportedRequestError for image fields xAI cannot honour."""
    problems = []
    qualities = _qualities(model)
    if request.style:
        problems.append(f"style={request.style!r} (xai has no style parameter)")
    if request.quality and request.quality != "auto" and request.quality not in qualities:
        problems.append(f"quality={request.quality!r} (xai takes {', '.join(qualities)})")
    if request.negative_prompt:
        problems.append("negative_prompt (xai has no negative prompt)")
    if request.mask_image is not None:
        problems.append("mask_image (xai text-to-image does no inpainting)")
    if problems:
        raise UnsupportedRequestError("not supported: " + "; ".join(problems))


def check_video_request(request: VideoGenerationRequest) -> None:
    """Raise UnsupportedRequestError for video fields xAI cannot honour."""
    problems = []
    if request.negative_prompt:
        problems.append("negative_prompt (xai has no negative prompt)")
    if request.resolution == "1080p" and request.image_list:
        problems.append("resolution='1080p' with an input image (1080p is text-to-video only)")
    if request.video is not None:
        set_fields = [
            name for name in ("duration_seconds", "aspect_ratio", "resolution") if getattr(request, name) is not None
        ]
        if request.image_list:
            set_fields.append("image_list")
        if set_fields:
            problems.append(f"{', '.join(set_fields)} with an input video (an edit keeps the input's shape)")
    if problems:
        raise UnsupportedRequestError("not supported: " + "; ".join(problems))


def video_call(ctx: ProviderContext, request: VideoGenerationRequest) -> tuple[str, dict[str, Any]]:
    """The path and JSON body for a video generation (or an edit when there is an input video)."""
    body: dict[str, Any] = {"model": ctx.model, "prompt": request.prompt}
    if request.video is not None:
        body["video"] = {"url": media_url_or_data_url(ctx, request.video, default_type="video/mp4")}
        body.update(request.extra_params)
        return "/videos/edits", body
    if request.duration_seconds is not None:
        body["duration"] = request.duration_seconds
    if request.aspect_ratio is not None:
        body["aspect_ratio"] = request.aspect_ratio
    if request.resolution is not None:
        body["resolution"] = request.resolution
    if request.generate_audio is not None:
        body["generate_audio"] = request.generate_audio
    first = next((img["image"] for img in request.image_list if img["type"] == "first_frame"), None)
    if first is not None:
        body["image"] = {"url": media_url_or_data_url(ctx, first, default_type="image/png")}
    body.update(request.extra_params)
    return "/videos/generations", body


def image_body(ctx: ProviderContext, request: ImageGenerationRequest) -> dict[str, Any]:
    """The JSON body for ``/images/generations``."""
    body: dict[str, Any] = {
        "model": ctx.model,
        "prompt": request.prompt,
        "response_format": ctx.config.provider_config.get("response_format", "url"),
    }
    if request.n is not None:
        body["n"] = request.n
    if request.aspect_ratio is not None:
        body["aspect_ratio"] = request.aspect_ratio
    if request.quality in _qualities(ctx.model):
        body["quality"] = request.quality
    body.update(request.extra_params)
    return body


# -- answers -------------------------------------------------------------------------------


def video_failure(ctx: ProviderContext, answer: Mapping[str, Any]) -> MediagenError:
    """The taxonomy's error for a video that ended ``failed`` or ``expired``."""
    status = str(answer.get("status") or "").lower()
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or error_text(answer.get("error")) or "no reason given")
    common: dict[str, Any] = {"provider": "xai", "model": ctx.model, "raw_response": dict(answer)}
    if status == "expired":
        return GenerationFailedError("xai video request expired before it finished", retryable=True, **common)
    if status not in ("failed", "error", "cancelled"):
        return GenerationFailedError(f"xai video is {status or 'in an unknown state'}, not done", retryable=True, **common)
    text = f"xai video failed ({code or 'no code'}): {message}"
    if any(word in f"{code} {message}".lower() for word in _MODERATION_WORDS):
        return ContentModerationError(text, **common)
    return GenerationFailedError(text, retryable=code == "internal_error", **common)


def _moderation_block(ctx: ProviderContext, answer: Mapping[str, Any]) -> ContentModerationError | None:
    video = answer.get("video")
    if isinstance(video, dict) and video.get("respect_moderation") is False:
        return ContentModerationError(
            "xai withheld the video: it did not pass content moderation (respect_moderation=false)",
            provider="xai",
            model=ctx.model,
            raw_response=dict(answer),
        )
    return None


def _qualities(model: str) -> tuple[str, ...]:
    # grok-imagine-image-2.0 prices by quality low|medium (docs.x.ai migration guide);
    # the other image models accept low|medium|high and ignore it.
    return ("low", "medium") if model == "grok-imagine-image-2.0" else IMAGE_QUALITIES


def _percent(progress: Any) -> int | None:
    if not isinstance(progress, (int, float)) or isinstance(progress, bool):
        return None
    return max(0, min(99, int(progress)))


def _image_media(item: Mapping[str, Any]) -> GeneratedMedia:
    mime = item.get("mime_type") if isinstance(item.get("mime_type"), str) else None
    if item.get("url"):
        return GeneratedMedia(url=str(item["url"]), content_type=mime)
    payload = str(item["b64_json"])
    if payload.startswith("data:"):
        header, _, payload = payload.partition(",")
        mime = mime or header[5:].split(";")[0] or None
    data = decode_output_base64(payload, provider="xai", what="an image")
    return GeneratedMedia(data=data, content_type=mime or sniff_content_type(data))


