"""Replicate: predictions over plain REST, for video, image and speech models.

How a config reaches a prediction:

- ``model="owner/name"`` (an official model) -> ``POST /models/{owner}/{name}/predictions {input}``;
- ``model="owner/name:<version id>"`` or a bare 64-hex version id -> ``POST /predictions {version, input}``;
- ``provider_config={"deployment": "owner/name"}`` -> ``POST /deployments/{owner}/{name}/predictions {input}``
  (``model`` then only names the model family, for field mapping and capabilities).

``provider_config`` keys: ``deployment`` (above); ``wait`` - seconds for ``Prefer: wait=N``
(1-60; ``True`` = 60, ``0``/``False`` = off). By default image and speech jobs wait 60 s
(they usually finish in seconds, so one request returns the output) and video jobs do not
wait (they take minutes). The wait is capped so the held request ends 5 s before the
attempt's deadline. A prediction still running when the wait ends is polled as usual;
``cancel_after`` - a ``Cancel-After`` duration such as ``"10m"``, so Replicate stops a
prediction nobody is waiting for any more.

Input mapping. Inputs are model-specific; every family below maps the generic request
fields onto its own names, and ``request.extra_params`` is merged into ``input`` last, so
any model field can be set directly. Families (key = model id or ``prefix*``):

=============================  ====================================================================
``google/veo-3.1*``            prompt, negative_prompt, seed, aspect_ratio, duration, resolution,
                               generate_audio; first_frame -> ``image``, last_frame -> ``last_frame``,
                               reference -> ``reference_images`` (list, 1-3)
``google/veo-3*``              prompt, negative_prompt, seed, aspect_ratio, resolution, generate_audio;
                               first_frame -> ``image`` (fixed 8 s, duration not sent)
``kwaivgi/kling-*``            prompt, negative_prompt, aspect_ratio, duration, generate_audio (v2.6);
                               first_frame -> ``start_image``, last_frame -> ``end_image``
``minimax/video-01*``          prompt, enhance_prompt -> ``prompt_optimizer``; first_frame ->
                               ``first_frame_image``, reference -> ``subject_reference`` (fixed 6 s 720p)
``minimax/hailuo-02*``         prompt, duration, resolution (720p -> ``768p``, 1080p), prompt_optimizer;
                               first_frame -> ``first_frame_image``
``wan-video/*``                prompt, seed, aspect_ratio, resolution; first_frame -> ``image``
                               (5 s = 81 frames at 16 fps; ``num_frames`` etc. via extra_params)
``black-forest-labs/flux-*``   prompt, seed, aspect_ratio, n -> ``num_outputs`` (schnell/dev);
                               reference -> ``image`` (dev), ``input_image`` (kontext),
                               ``image_prompt`` (1.1-pro / pro)
``minimax/speech-*``           text, voice_id, output_format -> ``audio_format``/``sample_rate``/
                               ``bitrate`` (bps), voice_settings merged (speed, volume, pitch, emotion)
any other model                prompt, negative_prompt, seed, aspect_ratio, duration, resolution,
                               generate_audio, n -> ``num_outputs``, size -> ``width``/``height``;
                               first_frame or reference -> ``image``, last_frame -> ``last_frame``;
                               speech: text -> ``text``, voice_id -> ``voice``
=============================  ====================================================================

The table's rows are ``providers.core.field_mapping.FieldMapping``s (mode = the modality);
``register_field_mapping("replicate", "owner/name*", mapping)`` maps a model at runtime.
A family without an input drops that request field (e.g. flux has no negative prompt);
the ``models`` table below rules out what would make a request fail.

Outputs are model-specific (a URL string, a list of URLs, or a dict of them); every
http(s) or data URL found is returned, preferring those whose extension matches the
modality. Status ``starting`` -> queued, ``processing`` -> processing (progress from the
last ``NN%|`` progress bar in ``logs``), ``succeeded`` -> completed, ``failed`` /
``canceled`` / ``aborted`` -> failed. A failure whose error mentions NSFW, "flagged as
sensitive", E005, content moderation or content policy is a ContentModerationError.

Beyond the job protocol, :meth:`ReplicateProvider.cancel` cancels a running prediction
(``POST /predictions/{id}/cancel``).

Facts this module relies on ([C] confirmed from Replicate's docs or public client code,
[I] inferred, not verified against the live API):

- [C] base ``https://api.replicate.com/v1``, ``Authorization: Bearer <token>``.
- [C] the three create endpoints above; body ``{input}`` or ``{version, input}``.
- [C] ``Prefer: wait`` holds the request up to 60 s (``wait=N`` for N s) and returns the
  prediction, finished or not; unfinished ones are polled with ``GET /predictions/{id}``.
- [C] prediction fields ``id, status, input, output, error, logs, metrics, urls{get, cancel,
  stream, web}``; statuses starting / processing / succeeded / failed / canceled / aborted.
- [C] ``POST /predictions/{id}/cancel``; ``Cancel-After`` header on create.
- [C] errors are RFC 7807 ``{type, title, status, detail}``; 429 body ``{"detail": "Request was
  throttled. Your rate limit resets in ~30s."}`` (Retry-After may accompany it).
- [C] moderation has no structured code: a ``failed`` prediction whose ``error`` says
  "NSFW content detected" or "flagged as sensitive (E005)".
- [C] family input names above for veo-3.1, kling v2.5/v2.6, minimax video-01, flux
  schnell/dev, minimax speech-02 (model pages / schema copies).
- [I] veo-3 (non-3.1) aspect_ratio and generate_audio inputs; kling ``end_image`` on all
  kling versions; hailuo-02 field names and 768p/1080p values; wan ``resolution`` and
  ``aspect_ratio``; flux kontext ``input_image`` and 1.1-pro ``image_prompt``; minimax speech
  ``audio_format``; that a bare 64-hex id is a version id.
- [I] with ``Prefer: wait`` a prediction may come back ``processing`` with file outputs
  already listed; we still poll until ``succeeded`` (the listed URLs may be streams).
- [C replicate 1.0.7] the official SDK sends the same create / get / cancel requests
  (paths under ``/v1``, ``Authorization: Bearer``, ``Prefer: wait=N``), and its
  ``Prediction`` type accepts the emulated answers (tests/conformance/test_replicate.py);
  ``Cancel-After`` is not in the SDK (from the HTTP reference only).
- [C replicate 1.0.7; HTTP reference] no idempotency key or dedupe exists for creating
  predictions: a resent POST starts a second, billed prediction. [I] The only recovery
  for a create whose answer was lost is to list recent predictions (``GET /predictions``,
  newest first) and match one by ``created_at`` and ``input`` (inputs are removed after
  an hour for API predictions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import requests

from schemas import (
    AudioGenerationConfig, ImageGenerationConfig, ImageGenerationRequest, JobHandle, TTSRequest, VideoGenerationConfig,
    VideoGenerationRequest,
)
from schemas.modalities import modality_spec

from providers.core.contract import AnyConfig, AnyRequest, GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import ModelCapabilities, family_key
from providers.check import KeyCheck
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    MediagenError,
    ProviderHTTPError,
    UnsupportedRequestError,
)
from providers.core.field_mapping import OMIT, SPREAD, Field, FieldMapping, lookup, registered_field_mapping
from providers.core.http import content_type_from_url, error_text, is_url, media_bytes, media_url_or_data_url, parse_retry_after, send, shrink_raw
from providers.media.formats import parse_size
from providers.core.pricing import Reported, price_sheet

MAX_WAIT_SECONDS = 60
WAIT_HEADROOM_SECONDS = 5
WAITS_INLINE = frozenset({"image", "tts"})
"""Modalities whose predictions usually finish within ``Prefer: wait`` (the others are polled)."""

STATES = {
    "starting": "queued",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "failed",
    "aborted": "failed",
}
MODERATION_PATTERN = re.compile(
    r"nsfw|flagged as sensitive|\bE005\b|content moderation|content policy|sensitive content", re.IGNORECASE
)
THROTTLE_PATTERN = re.compile(r"resets in\s*~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
PROGRESS_PATTERN = re.compile(r"(\d{1,3})%\|")
VERSION_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SLUG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MINIMAX_SPEECH_RATES = (8000, 16000, 22050, 24000, 32000, 44100)
MINIMAX_SPEECH_BITRATES_KBPS = (32, 64, 128, 256)


# -- what each model family calls its inputs ---------------------------------------------


_VIDEO, _IMAGE, _TTS = frozenset({"video"}), frozenset({"image"}), frozenset({"tts"})
_VISUAL = _VIDEO | _IMAGE


def _width_height(size: str) -> Any:
    if size == "auto":
        return OMIT
    width, height = parse_size(size)
    return {"width": width, "height": height}


def _audio_format(fmt: str) -> Any:
    return OMIT if fmt == "mp3" else fmt


def _bits_per_second(kbps: int) -> int:
    return kbps * 1000


BASE = FieldMapping.of(
    Field("prompt", "prompt", modes=_VISUAL, send_empty=True),
    Field("negative_prompt", "negative_prompt", modes=_VISUAL),
    Field("seed", "seed", modes=_VISUAL),
    Field("aspect_ratio", "aspect_ratio", modes=_VISUAL),
    Field("duration", "duration_seconds", modes=_VIDEO),
    Field("resolution", "resolution", modes=_VIDEO),
    Field("generate_audio", "generate_audio", modes=_VIDEO),
    Field("num_outputs", "n", modes=_IMAGE),
    Field("text", "text", modes=_TTS, send_empty=True),
    Field("voice", "voice_id", modes=_TTS),
    Field(SPREAD, "voice_settings", modes=_TTS),
    images={"first_frame": "image", "reference": "image", "last_frame": "last_frame"},
)
"""Replicate's common input names; the mode of a field is the request's modality."""
GENERIC = BASE.with_fields(Field(SPREAD, "size", _width_height, modes=_IMAGE))
_FLUX = BASE.without("negative_prompt", "duration_seconds", "resolution", "generate_audio", "n").with_fields(images={})
_MINIMAX_VIDEO = BASE.without("negative_prompt", "seed", "aspect_ratio", "generate_audio", "n").with_fields(
    Field("prompt_optimizer", "enhance_prompt", modes=_VIDEO)
)
FAMILIES: dict[str, FieldMapping] = {
    "google/veo-3.1*": BASE.without("n").with_fields(
        images={"first_frame": "image", "last_frame": "last_frame", "reference": "reference_images"},
        image_lists=frozenset({"reference_images"}),
    ),
    "google/veo-3*": BASE.without("duration_seconds", "n").with_fields(images={"first_frame": "image"}),
    "kwaivgi/kling-*": BASE.without("seed", "resolution", "n").with_fields(
        images={"first_frame": "start_image", "last_frame": "end_image"}
    ),
    "minimax/video-01*": _MINIMAX_VIDEO.without("duration_seconds", "resolution").with_fields(
        images={"first_frame": "first_frame_image", "reference": "subject_reference"}
    ),
    "minimax/hailuo-02*": _MINIMAX_VIDEO.with_fields(
        Field("resolution", "resolution", lookup({"720p": "768p", "1080p": "1080p"}), modes=_VIDEO),
        images={"first_frame": "first_frame_image"},
    ),
    "wan-video/*": BASE.without("negative_prompt", "duration_seconds", "generate_audio", "n").with_fields(
        images={"first_frame": "image"}
    ),
    "black-forest-labs/flux-*": _FLUX,
    "black-forest-labs/flux-schnell*": _FLUX.with_fields(Field("num_outputs", "n", modes=_IMAGE)),
    "black-forest-labs/flux-dev*": _FLUX.with_fields(Field("num_outputs", "n", modes=_IMAGE), images={"reference": "image"}),
    "black-forest-labs/flux-kontext*": _FLUX.with_fields(images={"reference": "input_image"}),
    "black-forest-labs/flux-1.1-pro*": _FLUX.with_fields(images={"reference": "image_prompt"}),
    "black-forest-labs/flux-pro*": _FLUX.with_fields(images={"reference": "image_prompt"}),
    "minimax/speech-*": BASE.with_fields(
        Field("voice_id", "voice_id", modes=_TTS),
        Field("audio_format", "output_format.format", _audio_format, modes=_TTS),
        Field("sample_rate", "output_format.sample_rate", modes=_TTS),
        Field("bitrate", "output_format.bitrate", _bits_per_second, modes=_TTS),
    ),
}


def model_family(model: str, table: Mapping[str, Any]) -> str | None:
    """The entry of ``table`` describing ``model`` (its version, after ':', ignored)."""
    return family_key(model.split(":", 1)[0], table)


def field_mapping(model: str) -> FieldMapping:
    """The input mapping for ``model``: a registered one first, else its family's, else GENERIC."""
    registered = registered_field_mapping("replicate", model.split(":", 1)[0])
    if registered is not None:
        return registered
    key = model_family(model, FAMILIES)
    return FAMILIES[key] if key else GENERIC


# -- capabilities -------------------------------------------------------------------------

_VEO_RATIOS = ("16:9", "9:16")
_FLUX_RATIOS = ("1:1", "16:9", "21:9", "9:16", "4:3")


def _video(**kwargs: Any) -> ModelCapabilities:
    return ModelCapabilities(modalities=frozenset({"video"}), max_outputs=1, **kwargs)


def _image(**kwargs: Any) -> ModelCapabilities:
    return ModelCapabilities(modalities=frozenset({"image"}), sizes=(), **kwargs)


MODELS: dict[str, ModelCapabilities] = {
    "google/veo-3.1*": _video(
        durations=(4, 6, 8),
        resolutions=("720p", "1080p"),
        aspect_ratios=_VEO_RATIOS,
        image_roles=("first_frame", "last_frame", "reference"),
        max_input_images=5,
        generates_audio=True,
        notes="1-3 reference images (16:9, 8 s only); last_frame needs a first_frame",
    ),
    "google/veo-3*": _video(
        durations=(8,),
        resolutions=("720p", "1080p"),
        aspect_ratios=_VEO_RATIOS,
        image_roles=("first_frame",),
        max_input_images=1,
        generates_audio=True,
    ),
    "kwaivgi/kling-*": _video(
        durations=(5, 10),
        aspect_ratios=("16:9", "9:16", "1:1"),
        image_roles=("first_frame", "last_frame"),
        max_input_images=2,
        generates_audio=False,
        notes="resolution follows the model variant (not sent); aspect_ratio is ignored with a start image",
    ),
    "kwaivgi/kling-v2.6*": _video(
        durations=(5, 10),
        aspect_ratios=("16:9", "9:16", "1:1"),
        image_roles=("first_frame",),
        max_input_images=1,
        generates_audio=True,
        notes="resolution follows the model variant (not sent)",
    ),
    "minimax/video-01*": _video(
        durations=(6,),
        resolutions=("720p",),
        aspect_ratios=("16:9",),
        image_roles=("first_frame", "reference"),
        max_input_images=2,
        generates_audio=False,
        notes="with a first frame the output takes the image's aspect ratio",
    ),
    "minimax/hailuo-02*": _video(
        durations=(6, 10),
        resolutions=("720p", "1080p"),
        aspect_ratios=("16:9",),
        image_roles=("first_frame",),
        max_input_images=1,
        generates_audio=False,
        notes="720p is sent as 768p; 1080p only for 6 s; with a first frame the output takes the image's ratio",
    ),
    "wan-video/*": _video(
        durations=(5,),
        resolutions=("480p", "720p"),
        aspect_ratios=_VEO_RATIOS,
        image_roles=("first_frame",),
        max_input_images=1,
        generates_audio=False,
        notes="length is num_frames / frames_per_second (81 at 16 fps by default); set them via extra_params",
    ),
    "black-forest-labs/flux-*": _image(
        aspect_ratios=_FLUX_RATIOS, image_roles=(), max_outputs=1, notes="no negative prompt; use aspect_ratio, not size"
    ),
    "black-forest-labs/flux-schnell*": _image(aspect_ratios=_FLUX_RATIOS, image_roles=(), max_outputs=4),
    "black-forest-labs/flux-dev*": _image(
        aspect_ratios=_FLUX_RATIOS, image_roles=("reference",), max_input_images=1, max_outputs=4
    ),
    "black-forest-labs/flux-kontext*": _image(
        aspect_ratios=_FLUX_RATIOS, image_roles=("reference",), max_input_images=1, max_outputs=1
    ),
    "black-forest-labs/flux-1.1-pro*": _image(
        aspect_ratios=_FLUX_RATIOS, image_roles=("reference",), max_input_images=1, max_outputs=1
    ),
    "black-forest-labs/flux-pro*": _image(
        aspect_ratios=_FLUX_RATIOS, image_roles=("reference",), max_input_images=1, max_outputs=1
    ),
    "minimax/speech-*": ModelCapabilities(
        modalities=frozenset({"tts"}),
        audio_formats=("mp3", "wav", "flac", "pcm"),
        notes="sample rates 8000-44100 Hz; bitrates 32/64/128/256 kbps; voice_settings keys speed, volume, pitch, emotion",
    ),
}


# -- model references ---------------------------------------------------------------------


@dataclass(frozen=True)
class CreateTarget:
    """Where a prediction is created and what the body carries besides ``input``."""

    path: str
    body: dict[str, Any]


def create_target(model: str, provider_config: Mapping[str, Any]) -> CreateTarget:
    """The create endpoint for a config; raises UnsupportedRequestError for a malformed id."""
    deployment = provider_config.get("deployment")
    if deployment:
        owner, name = _owner_name(str(deployment), "provider_config.deployment")
        return CreateTarget(f"/deployments/{owner}/{name}/predictions", {})
    if VERSION_PATTERN.match(model):
        return CreateTarget("/predictions", {"version": model})
    base, colon, version = model.partition(":")
    owner, name = _owner_name(base, "model")
    if colon:
        if not VERSION_PATTERN.match(version):
            raise UnsupportedRequestError(f"model={model!r}: the part after ':' must be a 64-hex version id")
        return CreateTarget("/predictions", {"version": version})
    return CreateTarget(f"/models/{owner}/{name}/predictions", {})


def _owner_name(value: str, what: str) -> tuple[str, str]:
    owner, slash, name = value.partition("/")
    if not slash or not SLUG_PATTERN.match(owner) or not SLUG_PATTERN.match(name):
        raise UnsupportedRequestError(f"{what}={value!r} is not 'owner/name' (or 'owner/name:version')")
    return owner, name


# -- the provider ---------------------------------------------------------------------------


_replicate_price = price_sheet("https://replicate.com/pricing", "2026-11-30",
                               note="official model's price per output, as third-party summaries quote it")
REPLICATE_PRICES = {
    "black-forest-labs/flux-schnell*": (_replicate_price("image", 0.003),),
    "black-forest-labs/flux-pro*": (_replicate_price("image", 0.055),),
    "google/veo-3.1-fast*": (_replicate_price("video_second", 0.10, audio=False),
                             _replicate_price("video_second", None, audio=True)),
}
"""Community models are billed by prediction time on their hardware: give them a
``prediction_second`` price under prices:, and the answer's ``metrics.predict_time`` prices them."""


def replicate_reported_cost(model: str, raw: dict[str, Any]) -> Reported | None:
    """A finished prediction's ``metrics.predict_time``: billable for hardware-billed models."""
    metrics = raw.get("metrics")
    seconds = metrics.get("predict_time") if isinstance(metrics, dict) else None
    if not isinstance(seconds, (int, float)):
        return None
    return Reported(units=float(seconds), unit="prediction_second")


class ReplicateProvider(JobProvider):
    """Replicate predictions (official models, versions, deployments) for video, image and speech.

    See the module docstring for the create endpoints, ``provider_config`` keys
    (``deployment``, ``wait``, ``cancel_after``) and the per-family input mapping.
    """

    name = "replicate"
    key_check = KeyCheck(
        path="/account", headers="_headers", source="https://replicate.com/docs/reference/http#account.get",
    )
    default_base_url = "https://api.replicate.com/v1"
    api_key_env = "REPLICATE_API_TOKEN"
    modalities = frozenset({"video", "image", "tts"})
    prices = REPLICATE_PRICES
    reported_cost = staticmethod(replicate_reported_cost)
    models = MODELS

    # -- what a config can serve -----------------------------------------------------------

    def check_request(self, modality: Any, request: AnyRequest, config: AnyConfig) -> None:
        create_target(config.model, config.provider_config)
        super().check_request(modality, request, config)

    def check_video(self, config: VideoGenerationConfig, request: VideoGenerationRequest) -> None:
        if request.number_of_videos > 1:
            raise UnsupportedRequestError(
                f"number_of_videos={request.number_of_videos}: a Replicate prediction makes one video"
            )
        _image_fields(field_mapping(config.model), request.image_list)
        family = model_family(config.model, MODELS)
        if family == "minimax/hailuo-02*" and request.resolution == "1080p" and (request.duration_seconds or 6) != 6:
            raise UnsupportedRequestError("resolution='1080p' is only available with duration_seconds=6")
        if family == "google/veo-3.1*":
            _check_veo31_images(request)

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        _image_fields(field_mapping(config.model), request.image_list)
        if request.mask_image is not None:
            raise UnsupportedRequestError("mask_image is not supported on Replicate (pass the model's own fields in extra_params)")

    def check_tts(self, config: AudioGenerationConfig, request: TTSRequest) -> None:
        if model_family(config.model, FAMILIES) == "minimax/speech-*":
            _check_minimax_speech(request)

    # -- the job protocol ----------------------------------------------------------------

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle | ProviderOutput:
        return self._create(ctx, self.build_input(ctx, request, request.image_list))

    def submit_image(self, ctx: ProviderContext, request: ImageGenerationRequest) -> JobHandle | ProviderOutput:
        return self._create(ctx, self.build_input(ctx, request, request.image_list))

    def submit_tts(self, ctx: ProviderContext, request: TTSRequest) -> JobHandle | ProviderOutput:
        return self._create(ctx, self.build_input(ctx, request))

    def _create(self, ctx: ProviderContext, model_input: dict[str, Any]) -> JobHandle | ProviderOutput:
        target = create_target(ctx.model, ctx.config.provider_config)
        body = {**target.body, "input": model_input}
        response = send(ctx, "POST", target.path, headers=self._create_headers(ctx), json_body=body)
        prediction = _prediction(response)
        status = prediction.get("status")
        if status == "succeeded":
            return self._output(ctx, prediction)
        if STATES.get(str(status)) == "failed":
            raise prediction_failure(ctx, prediction)
        return JobHandle(
            provider=ctx.config.provider,
            model=ctx.model,
            modality=ctx.modality,
            job_id=str(prediction["id"]),
            poll_url=_prediction_url(ctx, prediction["id"]),
            cancel_url=_prediction_url(ctx, prediction["id"], "/cancel"),
            data={"status": status, "web_url": (prediction.get("urls") or {}).get("web")},
        )

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        prediction = self._get(ctx, job.job_id)
        return job_status(ctx, prediction)

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        # The poll that saw "succeeded" holds the prediction; a re-attached job asks again.
        prediction = ctx.finished_answer() or self._get(ctx, job.job_id)
        if prediction.get("status") != "succeeded":
            raise prediction_failure(ctx, prediction)
        return self._output(ctx, prediction)

    def cancel(self, ctx: ProviderContext, job: JobHandle) -> bool:
        """Ask Replicate to stop ``job``; True when the prediction ended up canceled (a
        finished prediction is not changed by a cancel)."""
        response = send(ctx, "POST", f"/predictions/{job.job_id}/cancel", headers=self._headers(ctx))
        return _prediction(response).get("status") == "canceled"

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        detail = error_text(body)
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers)
            if retry_after is None:
                retry_after = throttle_reset_seconds(detail)
            return ProviderHTTPError(
                f"replicate throttled the request (HTTP 429): {detail}", status_code=429, retry_after=retry_after
            )
        if 400 <= status < 500 and status not in (401, 403) and MODERATION_PATTERN.search(detail):
            return ContentModerationError(f"replicate refused the content (HTTP {status}): {detail}")
        return None

    # -- request building ------------------------------------------------------------------

    def build_input(self, ctx: ProviderContext, request: AnyRequest, images: list[Any] | None = None) -> dict[str, Any]:
        """The prediction ``input`` for ``request``: family mapping, the input ``images``,
        then ``extra_params`` on top."""
        names = field_mapping(ctx.model)
        fields = names.payload(request, ctx.modality)
        if images is not None:
            fields.update(_images_input(ctx, names, images))
        fields.update(request.extra_params)
        return fields

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"Authorization": f"Bearer {ctx.require_api_key()}"}

    def _create_headers(self, ctx: ProviderContext) -> dict[str, str]:
        headers = self._headers(ctx)
        wait = prefer_wait_seconds(ctx)
        if wait:
            headers["Prefer"] = f"wait={wait}"
        cancel_after = ctx.config.provider_config.get("cancel_after")
        if cancel_after:
            headers["Cancel-After"] = str(cancel_after)
        return headers

    def _get(self, ctx: ProviderContext, prediction_id: str) -> dict[str, Any]:
        return _prediction(send(ctx, "GET", f"/predictions/{prediction_id}", headers=self._headers(ctx)))

    def _output(self, ctx: ProviderContext, prediction: dict[str, Any]) -> ProviderOutput:
        return ProviderOutput(
            media=output_media(prediction.get("output"), ctx.modality),
            raw_response=shrink_raw(prediction),
            request_id=str(prediction.get("id") or "") or None,
        )


# -- helpers: input ----------------------------------------------------------------------


def prefer_wait_seconds(ctx: ProviderContext) -> int:
    """Seconds for ``Prefer: wait`` (0 = do not wait), within the API's 60 s and our deadline."""
    setting = ctx.config.provider_config.get("wait", MAX_WAIT_SECONDS if ctx.modality in WAITS_INLINE else 0)
    if setting is True:
        seconds = MAX_WAIT_SECONDS
    elif not setting:
        return 0
    else:
        seconds = int(setting)
    return max(0, min(seconds, MAX_WAIT_SECONDS, int(ctx.deadline.remaining()) - WAIT_HEADROOM_SECONDS))


def _image_fields(names: FieldMapping, images: list[Any]) -> dict[str, list[Any]]:
    """Input field -> images for it; UnsupportedRequestError when the family cannot take them."""
    fields: dict[str, list[Any]] = {}
    for image in images:
        target = names.images.get(image["type"])
        if target is None:
            allowed = ", ".join(sorted(names.images)) or "none"
            raise UnsupportedRequestError(f"image role {image['type']!r} not supported (allowed: {allowed})")
        fields.setdefault(target, []).append(image["image"])
    crowded = sorted(f for f, values in fields.items() if len(values) > 1 and f not in names.image_lists)
    if crowded:
        raise UnsupportedRequestError(f"more than one input image for {', '.join(crowded)} (the model takes one)")
    return fields


def _images_input(ctx: ProviderContext, names: FieldMapping, images: list[Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, values in _image_fields(names, images).items():
        urls = [media_url_or_data_url(ctx, value) for value in values]
        fields[name] = urls if name in names.image_lists else urls[0]
    return fields


def _check_veo31_images(request: VideoGenerationRequest) -> None:
    roles = [img["type"] for img in request.image_list]
    if "last_frame" in roles and "first_frame" not in roles:
        raise UnsupportedRequestError("a last_frame image needs a first_frame image too")
    references = roles.count("reference")
    if references > 3:
        raise UnsupportedRequestError(f"{references} reference images (at most 3)")
    if references and (request.aspect_ratio not in (None, "16:9") or request.duration_seconds not in (None, 8)):
        raise UnsupportedRequestError("reference images need aspect_ratio='16:9' and duration_seconds=8")


def _check_minimax_speech(request: TTSRequest) -> None:
    fmt = request.output_format
    if fmt.sample_rate is not None and fmt.sample_rate not in MINIMAX_SPEECH_RATES:
        allowed = ", ".join(map(str, MINIMAX_SPEECH_RATES))
        raise UnsupportedRequestError(f"output_format.sample_rate={fmt.sample_rate} not supported (allowed: {allowed})")
    if fmt.bitrate is not None and fmt.bitrate not in MINIMAX_SPEECH_BITRATES_KBPS:
        allowed = ", ".join(map(str, MINIMAX_SPEECH_BITRATES_KBPS))
        raise UnsupportedRequestError(f"output_format.bitrate={fmt.bitrate} not supported (allowed: {allowed} kbps)")


# -- helpers: predictions -------------------------------------------------------------------


def _prediction(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    if not isinstance(body, dict) or "id" not in body:
        raise GenerationFailedError(f"replicate answered without a prediction: {str(body)[:200]}")
    return body


def _prediction_url(ctx: ProviderContext, prediction_id: Any, suffix: str = "") -> str:
    return f"{ctx.base_url}/predictions/{prediction_id}{suffix}"


def job_status(ctx: ProviderContext, prediction: dict[str, Any]) -> JobStatus:
    """Our view of one prediction snapshot."""
    state = STATES.get(str(prediction.get("status")), "processing")
    raw = shrink_raw(prediction)
    if state == "failed":
        return JobStatus("failed", raw=raw, failure=prediction_failure(ctx, prediction))
    if state == "completed":
        return JobStatus("completed", 100, raw, result=prediction)
    return JobStatus(state, 0 if state == "queued" else log_progress(prediction.get("logs")), raw)  # type: ignore[arg-type]


def log_progress(logs: Any) -> int | None:
    """The last ``NN%|`` progress-bar figure in a prediction's logs, if any."""
    if not isinstance(logs, str):
        return None
    found = PROGRESS_PATTERN.findall(logs[-4000:])
    return min(int(found[-1]), 99) if found else None


def prediction_failure(ctx: ProviderContext, prediction: dict[str, Any]) -> MediagenError:
    """The taxonomy's error for a prediction that did not succeed."""
    status = prediction.get("status")
    prediction_id = str(prediction.get("id") or "") or None
    reason = error_text(prediction.get("error")) or "no error message"
    common: dict[str, Any] = {
        "provider": ctx.provider.name,
        "model": ctx.model,
        "request_id": prediction_id,
        "raw_response": shrink_raw(prediction),
    }
    if MODERATION_PATTERN.search(reason):
        return ContentModerationError(f"prediction {prediction_id} was refused: {reason}", **common)
    if status == "canceled":
        return GenerationFailedError(f"prediction {prediction_id} was canceled", **common)
    if status == "aborted":
        # Aborted = its Cancel-After deadline passed before it started: not billed, worth retrying.
        return GenerationFailedError(f"prediction {prediction_id} was aborted before it started", retryable=True, **common)
    if status == "succeeded":
        return GenerationFailedError(f"prediction {prediction_id} succeeded but was read as failed", **common)
    if STATES.get(str(status)) != "failed":
        return GenerationFailedError(f"prediction {prediction_id} is still {status}", **common)
    return GenerationFailedError(f"prediction {prediction_id} failed: {reason}", **common)


def throttle_reset_seconds(detail: str) -> float | None:
    """Seconds from "... Your rate limit resets in ~30s." (None when the text says nothing)."""
    match = THROTTLE_PATTERN.search(detail or "")
    return float(match.group(1)) if match else None


# -- helpers: output -------------------------------------------------------------------------


def output_media(output: Any, modality: str) -> list[GeneratedMedia]:
    """Every media URL (or data URL) in a model's output, those of the modality's kind first.

    Outputs are a URL string, a list of them, or a dict (possibly nested) holding them.
    When some URLs have the modality's kind (by extension) only those are returned; URLs
    of unknown kind come next; all are returned when none matches.
    """
    media = [_media(value) for value in _media_strings(output)]
    wanted = f"{modality_spec(modality).media_kind}/"
    matching = [m for m in media if (m.content_type or "").startswith(wanted)]
    unknown = [m for m in media if m.content_type is None]
    return matching or unknown or media


def _media_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if is_url(value) or value.startswith("data:"):
            yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _media_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _media_strings(item)


def _media(value: str) -> GeneratedMedia:
    if value.startswith("data:"):
        data, content_type = media_bytes(_NO_CONTEXT, value)  # data URLs never touch the network
        return GeneratedMedia(data=data, content_type=content_type)
    return GeneratedMedia(url=value, content_type=content_type_from_url(value))


_NO_CONTEXT: Any = None
"""``media_bytes`` only uses its context to download URLs; data URLs never need it."""
