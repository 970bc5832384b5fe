"""Runway's developer API (``api.dev.runwayml.com``): video and image generation tasks.

Every generation is a *task*: ``POST /v1/<endpoint>`` answers ``{"id": ...}``, then
``GET /v1/tasks/{id}`` reports its status until it ends. This module maps the unified
requests onto the per-model request shapes, picks the endpoint from the inputs
(input video -> ``video_to_video``, first/last frame -> ``image_to_video``, text only
-> ``text_to_video``; images always ``text_to_image``), translates task statuses and
failure codes, and describes each documented model so that requests a model cannot
serve are skipped before any HTTP call.

Facts relied on. [C] = confirmed from the type definitions of runwayml/sdk-python
(generated from Runway's OpenAPI spec) or Runway's own API reference (runwayml/skills
``rw-api-reference``); [I] = inferred or unverified.

- Base ``https://api.dev.runwayml.com``; headers ``Authorization: Bearer <key>`` and
  ``X-Runway-Version: 2024-11-06``. [C]
- ``POST /v1/{text_to_video,image_to_video,video_to_video,text_to_image}`` -> ``{id}``;
  ``GET /v1/tasks/{id}``; ``DELETE /v1/tasks/{id}`` cancels or deletes. [C]
- Task: ``status`` PENDING | THROTTLED | RUNNING | SUCCEEDED | FAILED | CANCELLED,
  ``progress`` 0..1 while RUNNING, ``output`` (URL list, expiring in 24-48 h, so
  ``fetch`` re-reads the task for fresh URLs), ``failure`` text, ``failureCode``. [C]
- Failure codes: ``SAFETY.INPUT.*`` / ``SAFETY.OUTPUT.*`` moderation; ``INTERNAL.BAD_OUTPUT.*``
  and ``INTERNAL*`` worth retrying; ``ASSET.INVALID`` bad input. [C] That a retry of
  BAD_OUTPUT can succeed [I].
- HTTP: 400 ``{"error": ...}`` (sometimes with ``issues`` [I]), 401, 404 no retry;
  429 (daily quota), 502/503/504 retry. [C]
- Fields are camelCase: ``promptText``, ``promptImage`` (URI, or ``[{uri, position}]``),
  ``ratio`` (pixel ``W:H``), ``duration``, ``seed``, ``contentModeration``
  ``{publicFigureThreshold: auto|low}``, ``negativePrompt``, ``audio``, ``videoUri``,
  ``referenceImages``
  ``[{uri, tag?}]`` (text_to_image). [C]
- Asset URIs: HTTPS URL, ``runway://`` upload URI or data URI; data URIs up to 5 MB
  for images and 16 MB for video. [C] Plain ``http://`` URLs are rejected [C], so they
  are downloaded here and sent inline.
- Models [C]:
  ``gen4.5`` t2v (1280:720, 720:1280) and i2v (1280:720, 720:1280, 1104:832, 960:960,
  832:1104, 1584:672), duration 2-10 required, first frame only, seed;
  ``gen4_turbo`` i2v only (same six ratios), optional duration (2-10 [I]), seed;
  ``veo3.1`` / ``veo3.1_fast`` t2v + i2v, ratios 1280:720, 720:1280, 1080:1920,
  1920:1080, duration 4|6|8, ``audio``, ``seed``, ``negativePrompt`` (both endpoints),
  first + optional last frame (never last alone), ``promptText`` optional on i2v;
  ``aleph2`` v2v, ``promptText`` optional, ``seed``, free ``ratio`` [C] (its values
  unverified [I], so no aspect ratio is mapped);
  ``gen4_image`` (0-3 reference images) and ``gen4_image_turbo`` (1-3 required), one
  output, ratios 1024:1024, 1080:1080, 1168:880, 1360:768, 1440:1080, 1080:1440,
  1808:768, 1920:1080, 1080:1920, 2112:912, 1280:720, 720:1280, 720:720, 960:720,
  720:960, 1680:720.
- Retired [C runwayml 5.24.0]: ``veo3`` and ``gen4_aleph`` are in no request type of the
  SDK any more (only in the organization usage report's model list); their catalog
  entries are ``retired`` (replacements veo3.1 / aleph2), so configs naming them are
  skipped before any call. No shutdown date is published in the SDK.
- Idempotency [C runwayml 5.24.0 ``_base_client``]: the SDK leaves its
  ``_idempotency_header`` unset, so it never sends an ``Idempotency-Key``, and Runway's
  reference documents none: a resent POST creates a second task.
- Which pixel ratio stands for which (resolution, aspect ratio) pair is our choice [I]:
  video 720p rows are the gen4 ratios, veo 1080p rows 1920:1080 / 1080:1920, aleph 480p
  rows 848:480 / 640:480; images default to the 1080p row (``extra_params
  resolution="720p"`` picks 1280:720, 720:1280, 720:720, 960:720, 1680:720), and
  ``size="WxH"`` picks any listed ratio directly. ``extra_params["ratio"]`` overrides it all.

Each model's request fields are a ``providers.core.field_mapping.FieldMapping`` (mode = the
endpoint); ``register_field_mapping("runway", "<model id or prefix*>", mapping)`` maps a
model at runtime.

Request fields Runway has no parameter for: those that change *what* is made
(``negative_prompt`` where not accepted, image ``quality``/``style``/``mask_image``)
make the config skip the request; pure hints (``enhance_prompt``) are dropped. ``extra_params`` are sent as Runway fields verbatim
(except ``resolution`` and ``reference_tags``, read here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping
from urllib.parse import quote

from schemas import (
    ImageGenerationConfig, ImageGenerationRequest, JobHandle, MediaType, VideoGenerationConfig, VideoGenerationRequest,
)

from providers.core.contract import GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from schemas.modalities import modality_spec
from providers.core.capabilities import Lifecycle, ModelCapabilities
from providers.check import KeyCheck
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    MediagenError,
    UnsupportedRequestError,
)
from providers.core.field_mapping import Field, FieldMapping, registered_field_mapping
from providers.core.http import content_type_from_url, data_url, error_text, media_bytes, response_body, send, url_for
from providers.core.pricing import Reported, price_sheet

API_VERSION = "2024-11-06"
MAX_DATA_URI_BYTES = {"image": 5 * 1024 * 1024, "video": 16 * 1024 * 1024}
DEFAULT_ASPECT = "16:9"
DEFAULT_IMAGE_ASPECT = "1:1"
DEFAULT_IMAGE_TIER = "1080p"

Endpoint = Literal["text_to_video", "image_to_video", "video_to_video", "text_to_image"]
RatioTable = Mapping[tuple[str, str], str]
"""(resolution, aspect ratio) -> Runway pixel ratio ``W:H``."""

_QUEUED = {"PENDING", "THROTTLED"}
_FRAME_ROLES = ("first_frame", "last_frame")
_REFERENCE_ROLES = ("reference", "asset", "style")

GEN4_RATIOS: RatioTable = {
    ("720p", "16:9"): "1280:720",
    ("720p", "9:16"): "720:1280",
    ("720p", "4:3"): "1104:832",
    ("720p", "1:1"): "960:960",
    ("720p", "21:9"): "1584:672",
}
GEN45_TEXT_RATIOS: RatioTable = {("720p", "16:9"): "1280:720", ("720p", "9:16"): "720:1280"}
VEO_RATIOS: RatioTable = {
    ("720p", "16:9"): "1280:720",
    ("720p", "9:16"): "720:1280",
    ("1080p", "16:9"): "1920:1080",
    ("1080p", "9:16"): "1080:1920",
}
ALEPH_RATIOS: RatioTable = {**GEN4_RATIOS, ("480p", "16:9"): "848:480", ("480p", "4:3"): "640:480"}
IMAGE_RATIOS: RatioTable = {
    ("720p", "16:9"): "1280:720",
    ("720p", "9:16"): "720:1280",
    ("720p", "1:1"): "720:720",
    ("720p", "4:3"): "960:720",
    ("720p", "21:9"): "1680:720",
    ("1080p", "16:9"): "1920:1080",
    ("1080p", "9:16"): "1080:1920",
    ("1080p", "1:1"): "1080:1080",
    ("1080p", "4:3"): "1440:1080",
    ("1080p", "21:9"): "2112:912",
}
IMAGE_SIZES = (
    "1024:1024", "1080:1080", "1168:880", "1360:768", "1440:1080", "1080:1440", "1808:768", "1920:1080",
    "1080:1920", "2112:912", "1280:720", "720:1280", "720:720", "960:720", "720:960", "1680:720",
)  # fmt: skip
# A model we have no table for: best effort over the ratios the documented models share.
FALLBACK_RATIOS: RatioTable = {**GEN4_RATIOS, **VEO_RATIOS}


@dataclass(frozen=True)
class RunwayModel:
    """How one Runway model is called: endpoints with their ratio tables, and which fields it takes."""

    modality: Literal["video", "image"]
    ratios: Mapping[str, RatioTable]
    """Endpoint -> ratio table; the endpoints the model serves. An empty table: no ratio sent."""
    fields: FieldMapping
    """The request fields the model takes (modes: the endpoints that take each)."""
    durations: tuple[int, ...] | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    image_roles: tuple[str, ...] = ()
    max_images: int | None = None
    min_reference_images: int = 0
    audio: bool | None = None
    """True: takes ``audio``; False: makes silent video; None: not documented."""
    content_moderation: bool = True
    lifecycle: Lifecycle = Lifecycle()
    notes: str = ""

    def capabilities(self) -> ModelCapabilities:
        tables = [t for t in self.ratios.values() if t]
        if self.modality == "image":
            aspects: tuple[str, ...] | None = tuple(dict.fromkeys(a for _, a in IMAGE_RATIOS))
            resolutions = None
        elif tables:
            aspects = tuple(dict.fromkeys(a for t in tables for _, a in t))
            resolutions = tuple(sorted({r for t in tables for r, _ in t}, key=_resolution_order))
        else:
            aspects, resolutions = (), ()  # output follows the input video
        return ModelCapabilities(
            modalities=frozenset({self.modality}),
            durations=self.durations,
            min_duration=self.min_duration,
            max_duration=self.max_duration,
            resolutions=resolutions,
            aspect_ratios=aspects,
            image_roles=self.image_roles,
            max_input_images=self.max_images,
            accepts_video_input="video_to_video" in self.ratios,
            generates_audio=self.audio,
            max_outputs=1,
            sizes=tuple(s.replace(":", "x") for s in IMAGE_SIZES) + ("auto",) if self.modality == "image" else None,
            lifecycle=self.lifecycle,
            notes=self.notes,
        )


def _resolution_order(resolution: str) -> int:
    return int(resolution.rstrip("p")) if resolution.rstrip("p").isdigit() else 10_000


_GENERATING = frozenset({"text_to_video", "image_to_video"})
"""The endpoints that make a video from nothing but a prompt and frames."""
VIDEO_FIELDS = FieldMapping.of(
    Field("promptText", "prompt"),
    Field("duration", "duration_seconds", modes=_GENERATING),
    Field("seed", "seed"),
)
IMAGE_FIELDS = FieldMapping.of(Field("promptText", "prompt", send_empty=True), Field("seed", "seed"))

_VEO31 = RunwayModel(
    "video",
    {"text_to_video": VEO_RATIOS, "image_to_video": VEO_RATIOS},
    VIDEO_FIELDS.with_fields(
        Field("audio", "generate_audio"), Field("negativePrompt", "negative_prompt", modes=_GENERATING)
    ),
    durations=(4, 6, 8),
    image_roles=_FRAME_ROLES,
    max_images=2,
    audio=True,
    content_moderation=False,
    notes="last_frame needs a first_frame",
)
"""veo3.1 and veo3.1_fast: the fast variant takes exactly the same fields."""
_GONE_FROM_SDK = "runwayml 5.24.0 request types (text/image/video_to_video create params no longer accept it)"

MODELS: dict[str, RunwayModel] = {
    "gen4.5": RunwayModel(
        "video",
        {"text_to_video": GEN45_TEXT_RATIOS, "image_to_video": GEN4_RATIOS},
        # The API requires a duration: 5 s when the request names none.
        VIDEO_FIELDS.with_fields(Field("duration", "duration_seconds", modes=_GENERATING, default=5)),
        min_duration=2,
        max_duration=10,
        image_roles=("first_frame",),
        max_images=1,
        audio=False,
        notes="text-to-video only at 16:9 / 9:16; image-to-video also 4:3, 1:1, 21:9",
    ),
    "gen4_turbo": RunwayModel(
        "video",
        {"image_to_video": GEN4_RATIOS},
        VIDEO_FIELDS,
        min_duration=2,
        max_duration=10,
        image_roles=("first_frame",),
        max_images=1,
        audio=False,
        notes="image-to-video only: needs a first_frame image",
    ),
    "veo3.1": _VEO31,
    "veo3.1_fast": _VEO31,
    # Gone from every request type of runwayml 5.24.0 (they survive only in the usage
    # report's model list), so the API no longer takes them: refused before any call.
    "veo3": RunwayModel(
        "video",
        {"text_to_video": VEO_RATIOS, "image_to_video": VEO_RATIOS},
        VIDEO_FIELDS,
        lifecycle=Lifecycle(status="retired", replacement="veo3.1", source=_GONE_FROM_SDK),
    ),
    "gen4_aleph": RunwayModel(
        "video",
        {"video_to_video": ALEPH_RATIOS},
        VIDEO_FIELDS,
        lifecycle=Lifecycle(status="retired", replacement="aleph2", source=_GONE_FROM_SDK),
    ),
    "aleph2": RunwayModel(
        "video",
        {"video_to_video": {}},
        VIDEO_FIELDS,
        image_roles=(),
        notes="video-to-video: needs an input video; output shape and length follow it",
    ),
    "gen4_image": RunwayModel(
        "image",
        {"text_to_image": IMAGE_RATIOS},
        IMAGE_FIELDS,
        image_roles=_REFERENCE_ROLES,
        max_images=3,
        notes="up to 3 reference images; extra_params resolution='720p' picks the 720p ratios",
    ),
    "gen4_image_turbo": RunwayModel(
        "image",
        {"text_to_image": IMAGE_RATIOS},
        IMAGE_FIELDS,
        image_roles=_REFERENCE_ROLES,
        max_images=3,
        min_reference_images=1,
        notes="needs 1-3 reference images",
    ),
}
_VIDEO_FALLBACK = RunwayModel(
    "video",
    {"text_to_video": FALLBACK_RATIOS, "image_to_video": FALLBACK_RATIOS, "video_to_video": FALLBACK_RATIOS},
    VIDEO_FIELDS,
    image_roles=_FRAME_ROLES,
)
_IMAGE_FALLBACK = RunwayModel("image", {"text_to_image": IMAGE_RATIOS}, IMAGE_FIELDS, image_roles=_REFERENCE_ROLES)


def model_spec(model: str, modality: str) -> RunwayModel:
    """The documented model, or a permissive best-effort description for other model ids;
    a field mapping registered for the model (``register_field_mapping("runway", ...)``)
    replaces its fields."""
    spec = MODELS.get(model) or (_IMAGE_FALLBACK if modality == "image" else _VIDEO_FALLBACK)
    registered = registered_field_mapping("runway", model)
    return spec if registered is None else replace(spec, fields=registered)


_runway_price = price_sheet("https://docs.dev.runwayml.com/guides/pricing/", "2026-11-30",
                            note="credits per the API pricing page (as third-party summaries quote it), 1 credit = $0.01")
USD_PER_CREDIT = 0.01
"""https://academy.runwayml.com/getting-started/generation-credits: 1 credit = $.01."""
RUNWAY_PRICES = {
    "gen4.5": (_runway_price("video_second", 12 * USD_PER_CREDIT),),
    "gen4_turbo": (_runway_price("video_second", 5 * USD_PER_CREDIT),),
    "gen4_aleph": (_runway_price("video_second", 15 * USD_PER_CREDIT),),
    "veo3": (_runway_price("video_second", 40 * USD_PER_CREDIT),),
    "veo3.1": (_runway_price("video_second", 40 * USD_PER_CREDIT, audio=True),
               _runway_price("video_second", 20 * USD_PER_CREDIT, audio=False)),
    "veo3.1_fast": (_runway_price("video_second", 15 * USD_PER_CREDIT, audio=True),
                    _runway_price("video_second", 10 * USD_PER_CREDIT, audio=False)),
    "gen4_image": (_runway_price("image", 8 * USD_PER_CREDIT, note="1080p; 720p costs 5 credits"),),
    "gen4_image_turbo": (_runway_price("image", 2 * USD_PER_CREDIT),),
}


def runway_reported_cost(model: str, raw: dict[str, Any]) -> Reported | None:
    """A task's final ``cost`` in credits (``estimatedCost`` while it runs is not a charge)."""
    cost = raw.get("cost")
    if not isinstance(cost, dict) or not isinstance(cost.get("credits"), (int, float)):
        return None
    return Reported(usd=float(cost["credits"]) * USD_PER_CREDIT)


class RunwayProvider(JobProvider):
    """Runway video (text/image/video-to-video) and image (text-to-image) generation."""

    name = "runway"
    key_check = KeyCheck(
        path="/v1/organization", headers="headers", source="https://docs.dev.runwayml.com/api/#tag/Organization",
    )
    default_base_url = "https://api.dev.runwayml.com"
    api_key_env = "RUNWAYML_API_SECRET"
    modalities = frozenset({"video", "image"})
    prices = RUNWAY_PRICES
    reported_cost = staticmethod(runway_reported_cost)
    models = {name: spec.capabilities() for name, spec in MODELS.items()}

    # -- what a model accepts ---------------------------------------------------------

    def check_video(self, config: VideoGenerationConfig, request: VideoGenerationRequest) -> None:
        plan_video(model_spec(config.model, "video"), config.model, request)

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        plan_image(model_spec(config.model, "image"), config.model, request)

    # -- the job protocol -----------------------------------------------------------------

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle:
        spec = model_spec(ctx.model, "video")
        plan = plan_video(spec, ctx.model, request)
        return self._create_task(ctx, plan, video_body(ctx, spec, plan, request))

    def submit_image(self, ctx: ProviderContext, request: ImageGenerationRequest) -> JobHandle:
        spec = model_spec(ctx.model, "image")
        plan = plan_image(spec, ctx.model, request)
        return self._create_task(ctx, plan, image_body(ctx, spec, plan, request))

    def _create_task(self, ctx: ProviderContext, plan: Plan, body: dict[str, Any]) -> JobHandle:
        response = send(ctx, "POST", f"/v1/{plan.endpoint}", headers=self.headers(ctx), json_body=body)
        task_id = _task_id(ctx, response_body(response))
        task_url = url_for(ctx, f"/v1/tasks/{quote(task_id, safe='')}")
        return JobHandle(
            provider=ctx.config.provider,
            model=ctx.model,
            modality=ctx.modality,
            job_id=task_id,
            request_id=task_id,
            poll_url=task_url,
            result_url=task_url,
            cancel_url=task_url,
            data={"endpoint": plan.endpoint, "ratio": body.get("ratio"), "duration": body.get("duration"),
                  "aspect_ratio": plan.aspect_ratio},
        )  # fmt: skip

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        task = self._task(ctx, job)
        status = str(task.get("status", "")).upper()
        if status in _QUEUED:
            return JobStatus("queued", 0, task)
        if status == "SUCCEEDED":
            return JobStatus("completed", 100, task)
        if status in ("FAILED", "CANCELLED"):
            return JobStatus("failed", None, task, failure=task_failure(ctx, task))
        return JobStatus("processing", _progress_percent(task.get("progress")), task)

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        # Output URLs expire; reading the task again hands out fresh ones.
        task = self._task(ctx, job)
        if str(task.get("status", "")).upper() != "SUCCEEDED":
            raise task_failure(ctx, task)
        urls = [u for u in task.get("output") or [] if isinstance(u, str) and u]
        media = [GeneratedMedia(url=u, content_type=_content_type(u, job.modality)) for u in urls]
        duration = job.data.get("duration")
        return ProviderOutput(
            media=media,
            raw_response=task,
            request_id=job.job_id,
            duration=float(duration) if duration is not None else None,
            resolution=_resolution_of(job.data.get("ratio")),
            aspect_ratio=job.data.get("aspect_ratio"),
        )

    def cancel(self, ctx: ProviderContext, job: JobHandle) -> bool:
        """Cancel a running task (or delete a finished one and its outputs); True once Runway accepted."""
        send(ctx, "DELETE", job.cancel_url or f"/v1/tasks/{quote(job.job_id, safe='')}", headers=self.headers(ctx))
        return True

    def translate_error(self, ctx: ProviderContext, response: Any, body: Any) -> MediagenError | None:
        # Validation failures may list the offending fields under "issues".
        if response.status_code == 400 and isinstance(body, dict) and isinstance(body.get("issues"), list):
            issues = "; ".join(_issue_text(issue) for issue in body["issues"])
            return InvalidRequestError(f"runway rejected the request (HTTP 400): {error_text(body)}: {issues}")
        return None

    # -- helpers ----------------------------------------------------------------------------

    def headers(self, ctx: ProviderContext) -> dict[str, str]:
        version = getattr(ctx.config, "api_version", None) or API_VERSION
        return {"Authorization": f"Bearer {ctx.require_api_key()}", "X-Runway-Version": version}

    def _task(self, ctx: ProviderContext, job: JobHandle) -> dict[str, Any]:
        response = send(ctx, "GET", job.poll_url or f"/v1/tasks/{quote(job.job_id, safe='')}", headers=self.headers(ctx))
        task = response_body(response)
        if not isinstance(task, dict):
            raise GenerationFailedError(f"runway task {job.job_id}: unexpected response {task!r:.200}", retryable=True)
        return task


def _issue_text(issue: Any) -> str:
    if not isinstance(issue, dict):
        return error_text(issue)
    path = issue.get("path")
    where = ".".join(map(str, path)) if isinstance(path, list) else str(path or "")
    message = str(issue.get("message") or "")
    return f"{where}: {message}" if where else message


# -- planning: which endpoint, which ratio ------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the request becomes: the endpoint and the Runway ratio (None: none sent)."""

    endpoint: Endpoint
    ratio: str | None
    aspect_ratio: str | None


def plan_video(spec: RunwayModel, model: str, request: VideoGenerationRequest) -> Plan:
    """The endpoint and ratio for a video request; UnsupportedRequestError when the model cannot serve it."""
    roles = [img["type"] for img in request.image_list]
    if request.video is not None:
        endpoint: Endpoint = "video_to_video"
    elif any(role in _FRAME_ROLES for role in roles):
        endpoint = "image_to_video"
    else:
        endpoint = "text_to_video"
    if endpoint not in spec.ratios:
        raise UnsupportedRequestError(_endpoint_problem(spec, model, endpoint))
    if endpoint != "video_to_video" and any(role not in _FRAME_ROLES for role in roles):
        raise UnsupportedRequestError(f"{model} on {endpoint} takes only first_frame/last_frame images (got {sorted(set(roles))})")
    if "last_frame" in roles and "first_frame" not in roles:
        raise UnsupportedRequestError(f"{model} cannot start from only a last_frame image; add a first_frame")
    if max(roles.count("first_frame"), roles.count("last_frame")) > 1:
        raise UnsupportedRequestError("at most one first_frame and one last_frame image")
    if request.negative_prompt and not spec.fields.sends("negative_prompt", endpoint):
        only = " (only with a first_frame image)" if spec.fields.name_for("negative_prompt") else ""
        raise UnsupportedRequestError(f"negative_prompt is not accepted by {model} on {endpoint}{only}")
    if request.number_of_videos > 1:
        raise UnsupportedRequestError(f"number_of_videos={request.number_of_videos}: runway makes one video per task")
    if not spec.ratios[endpoint] and (request.aspect_ratio or request.resolution):
        raise UnsupportedRequestError(f"{model} output follows the input video: resolution/aspect_ratio cannot be set")
    ratio = _pick_ratio(spec.ratios[endpoint], request.resolution, request.aspect_ratio, request.extra_params)
    if ratio is None:
        raise UnsupportedRequestError(_ratio_problem(model, endpoint, spec.ratios[endpoint], request))
    return Plan(endpoint, ratio or None, request.aspect_ratio or _aspect_of(ratio))


def plan_image(spec: RunwayModel, model: str, request: ImageGenerationRequest) -> Plan:
    """The ratio for an image request; UnsupportedRequestError when the model cannot serve it."""
    unsupported = [
        name for name in ("quality", "style", "negative_prompt", "mask_image")
        if getattr(request, name) not in (None, "", "auto")
    ]  # fmt: skip
    if unsupported:
        raise UnsupportedRequestError(f"runway text_to_image has no {', '.join(unsupported)} parameter")
    if len(request.image_list) < spec.min_reference_images:
        raise UnsupportedRequestError(f"{model} needs at least {spec.min_reference_images} reference image(s)")
    extra = request.extra_params
    if extra.get("ratio"):
        ratio: str | None = str(extra["ratio"])
    elif request.size and request.size != "auto":
        ratio = request.size.replace("x", ":")
        if ratio not in IMAGE_SIZES:
            raise UnsupportedRequestError(f"size={request.size!r} is not a runway image size")
    else:
        tier = str(extra.get("resolution") or DEFAULT_IMAGE_TIER).lower()
        ratio = IMAGE_RATIOS.get((tier, request.aspect_ratio or DEFAULT_IMAGE_ASPECT))
        if ratio is None:
            raise UnsupportedRequestError(
                f"resolution={tier!r} with aspect_ratio={request.aspect_ratio!r} has no runway image ratio "
                f"(resolution 720p or 1080p; aspect ratios {', '.join(sorted({a for _, a in IMAGE_RATIOS}))})"
            )
    return Plan("text_to_image", ratio, request.aspect_ratio or _aspect_of(ratio))


def _pick_ratio(table: RatioTable, resolution: str | None, aspect: str | None, extra: Mapping[str, Any]) -> str | None:
    """Runway ratio for (resolution, aspect): ``""`` when the table is empty (no ratio sent)."""
    if extra.get("ratio"):
        return str(extra["ratio"])
    if not table:
        return ""
    aspect = aspect or DEFAULT_ASPECT
    if resolution is not None:
        return table.get((resolution, aspect))
    candidates = sorted(((r, a) for r, a in table if a == aspect), key=lambda key: (key[0] != "720p", key[0]))
    return table[candidates[0]] if candidates else None


def _endpoint_problem(spec: RunwayModel, model: str, endpoint: str) -> str:
    served = sorted(spec.ratios)
    if served == ["image_to_video"]:
        return f"{model} is image-to-video only: it needs a first_frame image"
    if served == ["video_to_video"]:
        return f"{model} is video-to-video only: it needs an input video"
    if endpoint == "video_to_video":
        return f"{model} takes no input video"
    return f"{model} does not serve {endpoint} (it serves {', '.join(served)})"


def _ratio_problem(model: str, endpoint: str, table: RatioTable, request: VideoGenerationRequest) -> str:
    offered = ", ".join(f"{a} at {r}" for r, a in table)
    return (
        f"resolution={request.resolution!r} with aspect_ratio={request.aspect_ratio!r} is not offered by "
        f"{model} on {endpoint} (offered: {offered})"
    )


# -- request bodies ------------------------------------------------------------------------


def video_body(ctx: ProviderContext, spec: RunwayModel, plan: Plan, request: VideoGenerationRequest) -> dict[str, Any]:
    """The JSON body for ``/v1/{text,image,video}_to_video``."""
    body: dict[str, Any] = {"model": ctx.model, **spec.fields.payload(request, plan.endpoint)}
    if plan.ratio:
        body["ratio"] = plan.ratio
    if plan.endpoint == "video_to_video":
        body["videoUri"] = asset_uri(ctx, request.video, "video")  # type: ignore[arg-type]
    elif plan.endpoint == "image_to_video":
        body["promptImage"] = _prompt_image(ctx, request)
    _add_moderation(ctx, spec, body)
    body.update(_passthrough(request.extra_params))
    return body


def image_body(ctx: ProviderContext, spec: RunwayModel, plan: Plan, request: ImageGenerationRequest) -> dict[str, Any]:
    """The JSON body for ``/v1/text_to_image``."""
    body: dict[str, Any] = {"model": ctx.model, **spec.fields.payload(request, plan.endpoint), "ratio": plan.ratio}
    if request.image_list:
        tags = list(request.extra_params.get("reference_tags") or [])
        body["referenceImages"] = [
            {"uri": asset_uri(ctx, img["image"], "image"), **({"tag": tags[i]} if i < len(tags) else {})}
            for i, img in enumerate(request.image_list)
        ]
    _add_moderation(ctx, spec, body)
    body.update(_passthrough(request.extra_params))
    return body


def _prompt_image(ctx: ProviderContext, request: VideoGenerationRequest) -> Any:
    frames = {img["type"]: img["image"] for img in request.image_list if img["type"] in _FRAME_ROLES}
    if set(frames) == {"first_frame"}:
        return asset_uri(ctx, frames["first_frame"], "image")
    return [
        {"uri": asset_uri(ctx, frames[role], "image"), "position": role.split("_")[0]}
        for role in _FRAME_ROLES
        if role in frames
    ]


def _add_moderation(ctx: ProviderContext, spec: RunwayModel, body: dict[str, Any]) -> None:
    threshold = ctx.config.provider_config.get("public_figure_threshold")
    if threshold and spec.content_moderation:
        body["contentModeration"] = {"publicFigureThreshold": threshold}


def _passthrough(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if k not in ("resolution", "reference_tags")}


def asset_uri(ctx: ProviderContext, media: MediaType, kind: Literal["image", "video"]) -> str:
    """An input as Runway takes it: HTTPS/``runway://``/data URIs as they are, anything else inlined."""
    if isinstance(media, str) and media.startswith(("https://", "runway://", "data:")):
        return media
    default_type = "video/mp4" if kind == "video" else "image/png"
    data, content_type = media_bytes(ctx, media, default_type=default_type)
    if len(data) > MAX_DATA_URI_BYTES[kind]:
        raise UnsupportedRequestError(
            f"input {kind} of {len(data)} bytes is over runway's data-URI limit of {MAX_DATA_URI_BYTES[kind]} bytes; "
            "pass an https:// URL instead",
            provider="runway",
            model=ctx.model,
        )
    if content_type == "application/octet-stream":
        content_type = default_type
    return data_url(data, content_type)


# -- task answers -----------------------------------------------------------------------------


def _task_id(ctx: ProviderContext, body: Any) -> str:
    task_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise GenerationFailedError(
            f"runway accepted the task but returned no id: {body!r:.200}", provider="runway", model=ctx.model
        )
    return task_id


def task_failure(ctx: ProviderContext, task: Mapping[str, Any]) -> MediagenError:
    """The taxonomy's error for a FAILED or CANCELLED task."""
    status = str(task.get("status", "")).upper()
    code = str(task.get("failureCode") or "")
    reason = str(task.get("failure") or "no reason given")
    common: dict[str, Any] = {"provider": "runway", "model": ctx.model, "request_id": task.get("id"), "raw_response": dict(task)}
    if status == "CANCELLED":
        return GenerationFailedError("runway task was cancelled or deleted", **common)
    message = f"runway task failed ({code or 'no failure code'}): {reason}"
    if code.startswith("SAFETY."):
        return ContentModerationError(message, **common)
    if code.startswith("ASSET."):
        return InvalidRequestError(message, **common)
    if code.startswith("INTERNAL"):
        return GenerationFailedError(message, retryable=True, **common)
    return GenerationFailedError(message, **common)


def _progress_percent(progress: Any) -> int | None:
    if not isinstance(progress, (int, float)) or isinstance(progress, bool):
        return None
    return max(0, min(99, round(float(progress) * 100)))


def _content_type(url: str, modality: str) -> str | None:
    known = content_type_from_url(url)
    if known and known.split("/")[0] in ("video", "image"):
        return known
    spec = modality_spec(modality)  # an image URL without a known extension is probed downstream
    return spec.default_content_type if spec.media_kind == "video" else None


def _resolution_of(ratio: Any) -> str | None:
    if not isinstance(ratio, str) or ":" not in ratio:
        return None
    width, _, height = ratio.partition(":")
    return f"{width}x{height}" if width.isdigit() and height.isdigit() else None


def _aspect_of(ratio: str | None) -> str | None:
    """The named aspect ratio a pixel ratio is closest to (within 3%), if any."""
    if not ratio or ":" not in ratio:
        return None
    width, _, height = ratio.partition(":")
    if not (width.isdigit() and height.isdigit()) or int(height) == 0:
        return None
    value = int(width) / int(height)
    named = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4, "21:9": 21 / 9}
    best = min(named, key=lambda name: abs(named[name] - value))
    return best if abs(named[best] - value) / named[best] < 0.03 else None
