"""fal (queue API): video, image and text-to-speech models behind one job protocol.

Every fal model runs through the same queue: ``POST {base}/{endpoint}`` with the
model's input JSON answers ``{request_id, status_url, response_url, cancel_url}``;
the status URL walks ``IN_QUEUE`` -> ``IN_PROGRESS`` -> ``COMPLETED`` and the
response URL holds the model's output JSON (or a non-2xx error when the run
failed). What differs per model is the input: field names, the wire form of the
duration, which endpoint takes input images. That mapping lives here, per model
family, together with what each family accepts (the ``models`` table) so that a
request a model cannot serve is skipped before any HTTP.

Endpoint choice for video. The model id names the endpoint. A text-to-video
endpoint (``.../text-to-video``, or a bare id such as ``fal-ai/veo3.1``) given
input images is sent to its sibling: ``image-to-video`` for a first frame (plus a
last frame where the family takes one there), ``first-last-frame-to-video`` for
both frames on Veo 3.1, ``reference-to-video`` for reference images (Veo 3.1,
Seedance lite). An image endpoint named explicitly stays an image endpoint; it is
skipped for a request without a first frame.

Each family's payload fields are a ``providers.core.field_mapping.FieldMapping`` (``fields``);
``register_field_mapping("fal", "<model id or prefix*>", mapping)`` maps a model at runtime.

Facts this module relies on ([C] confirmed from public docs / SDK sources read,
[I] inferred, unverified). The queue protocol is checked against the official
``fal-client`` SDK in tests/conformance/test_fal.py (paths, methods, ``Key`` auth,
header names, status/result shapes); model inputs against fal's model API pages.

- [C] Queue base ``https://queue.fal.run``; header ``Authorization: Key <key>``;
  submit ``POST {base}/{owner}/{app}[/{subpath}]`` answers ``request_id``,
  ``status_url``, ``response_url``, ``cancel_url``, which are used as given
  (status/result paths drop the subpath).
- [C] Status ``GET .../requests/{id}/status?logs=1``: ``IN_QUEUE``
  (``queue_position``), ``IN_PROGRESS`` (``logs``), ``COMPLETED`` (may carry
  ``error``/``error_type``); the result ``GET .../requests/{id}`` is non-2xx for a
  failed run. Cancel ``PUT .../requests/{id}/cancel``. No progress percentage.
- [C] Errors: model errors are 422 with ``detail`` = list of ``{loc, msg, type}``,
  ``type == "content_policy_violation"`` is moderation; infrastructure errors carry
  ``{detail, error_type}`` and ``X-Fal-Error-Type``; ``X-Fal-Retryable`` (older
  ``X-Fal-Needs-Retry``) hints retryability; a 504 with
  ``X-Fal-Request-Timeout-Type`` is the caller's own timeout (not retried).
- [C] Optional submit headers ``X-Fal-Request-Timeout``, ``X-Fal-Queue-Priority``;
  webhook via ``?fal_webhook=``.
- [C] Outputs: video ``{"video": {"url", "content_type"}}`` (sometimes
  ``video_url``), images ``{"images": [{"url", "width", "height",
  "content_type"}], "has_nsfw_concepts": [...]}``, speech ``{"audio": {"url"}}``
  (MiniMax adds ``duration_ms``). Inputs accept URLs or base64 data URIs.
- [C] Veo 3 / 3.1: ``duration`` "4s"|"6s"|"8s", ``aspect_ratio`` 16:9|9:16,
  ``resolution`` 720p|1080p (3.1 also 4k), ``generate_audio``, ``negative_prompt``,
  ``seed``; ``/image-to-video`` takes ``image_url``; Veo 3.1
  ``/first-last-frame-to-video`` takes ``first_frame_url``/``last_frame_url``.
  [I] ``/reference-to-video`` takes ``image_urls``; ``enhance_prompt`` only on Veo 3.
- [C] Kling: ``duration`` "5"|"10", t2v ``aspect_ratio`` 16:9|9:16|1:1,
  ``negative_prompt``, ``cfg_scale``; i2v ``image_url``; v2.6 ``generate_audio`` and
  ``tail_image_url``; v3 "3".."15" with ``start_image_url``/``end_image_url``.
  [I] ``tail_image_url`` on the pro tier of older versions; fixed output
  resolution per tier (standard 720p, pro/master 1080p).
- [C] MiniMax Hailuo: ``duration`` "6"|"10" (10 s not at 1080P), ``prompt_optimizer``,
  i2v ``image_url``, standard i2v ``resolution`` "512P"|"768P".
  [I] pro = 1080P only; text endpoints output 16:9.
- [C] Wan 2.5: ``duration`` "5"|"10", ``resolution``, ``aspect_ratio``,
  ``enable_prompt_expansion``, ``negative_prompt``, ``seed``, i2v ``image_url``.
  [I] Wan 2.2/2.1 count ``num_frames`` at 16 fps; Wan 2.2 ``end_image_url``.
- [C tarash] Seedance: ``duration`` "2".."12", ``resolution`` 480p|720p|1080p,
  ``aspect_ratio`` (21:9..9:16), ``camera_fixed``, ``seed``, ``image_url``,
  ``end_image_url``, lite ``reference_image_urls``; v1.5 ``generate_audio``.
- [C fal.ai/docs/model-api-reference/video-generation-api/sora-2-text-to-video] Sora 2:
  integer ``duration`` 4|8|12|16|20, ``resolution``, ``aspect_ratio``, ``delete_video``,
  i2v ``image_url``. [I] 1080p only on the ``/pro`` endpoints.
- [C fal model pages, fal.ai/models/<id>/llms.txt] Video-to-video, each its own
  catalog entry: ``fal-ai/veo3.1[/fast]/extend-video`` (``video_url`` required,
  ``duration`` "7s", ``aspect_ratio`` auto|16:9|9:16, ``resolution``,
  ``generate_audio``, ``negative_prompt``, ``seed``); ``fal-ai/sora-2/video-to-video/remix``
  (``video_id`` of an earlier Sora 2 generation, ``prompt``, ``delete_video``; the
  source must have been made with ``delete_video=false``);
  ``fal-ai/kling-video/o1[/standard]/video-to-video/edit`` (``video_url`` 3-10 s,
  ``image_urls`` + ``elements`` at most 4, ``keep_audio``). [I] extend-video at 1080p.
- [C] FLUX: ``image_size`` enum (``square_hd``, ``landscape_16_9``...) or
  ``{width, height}``, ``num_images`` 1-4, ``output_format`` jpeg|png, ``seed``;
  v1.1-ultra and Kontext take ``aspect_ratio`` instead. [I] ``/image-to-image``
  for FLUX dev with ``image_url``. Recraft: ``image_size``, ``style``, one image.
- [C] MiniMax speech: ``text`` (02, 2.5) or ``prompt`` (2.6, 2.8),
  ``voice_setting`` {voice_id, speed, vol, pitch, emotion, english_normalization},
  ``audio_setting`` {format mp3|pcm|flac, sample_rate 8000..44100, bitrate
  32000..256000, channel}, ``language_boost`` (English, Chinese...).
  Kokoro: ``prompt``, ``voice``, ``speed``, language by endpoint. ElevenLabs:
  ``text``, ``voice``, ``stability``, ``similarity_boost``, ``style``, ``speed``,
  ``language_code``. [I] Kokoro returns WAV, ElevenLabs on fal MP3.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Callable, Literal, Mapping, TypeVar
from urllib.parse import urlencode

import requests

from schemas import (
    AudioGenerationConfig, ImageGenerationConfig, ImageGenerationRequest, JobHandle, TTSRequest, VideoGenerationConfig,
    VideoGenerationRequest,
)

from providers.core.contract import AnyRequest, GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import ModelCapabilities, family_lookup
from providers.check import KeyCheck
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    MediagenError,
    ProviderAuthError,
    ProviderHTTPError,
    UnsupportedRequestError,
    is_transient_status,
)
from providers.core.field_mapping import REQUEST, SPREAD, Field, FieldMapping, lookup, registered_field_mapping, seconds_suffix
from providers.core.http import config_headers, error_text, media_url_or_data_url, send
from providers.media.formats import CONTENT_TYPES, parse_size
from providers.core.pricing import price_sheet
from providers.builtin.speech import primary_language

Mode = Literal["text", "image", "first_last", "reference"]

MODE_SEGMENTS: dict[str, Mode] = {
    "text-to-video": "text",
    "image-to-video": "image",
    "first-last-frame-to-video": "first_last",
    "reference-to-video": "reference",
}
REFERENCE_ROLES = ("reference", "asset", "style")
MODERATION_TYPES = frozenset({"content_policy_violation"})
# Infrastructure failures worth another try; the queue already retried runner errors itself.
RETRYABLE_ERROR_TYPES = frozenset(
    {
        "request_timeout",
        "startup_timeout",
        "runner_scheduling_failure",
        "runner_connection_timeout",
        "runner_disconnected",
        "runner_connection_refused",
        "runner_connection_error",
        "runner_incomplete_response",
        "runner_server_error",
        "internal_error",
    }
)
SUBMIT_HEADERS = {"queue_priority": "X-Fal-Queue-Priority", "request_timeout": "X-Fal-Request-Timeout"}
"""provider_config settings sent as submit headers."""
_ALL_RATIOS = ("16:9", "9:16", "1:1", "4:3", "21:9")

# ----------------------------------------------------------------------------- video families


@dataclass(frozen=True)
class VideoFamily:
    """How one family of fal video endpoints names its inputs."""

    name: str
    caps: ModelCapabilities
    routes: Mapping[Mode, str | None]
    """Endpoint segment per mode: ``""`` = the bare model id (Veo's text endpoint),
    ``None`` = the endpoint exactly as the model id names it (no switching)."""
    frame_fields: Mapping[Mode, tuple[str, str | None]] = field(default_factory=dict)
    """Per image mode: (first frame field, last frame field)."""
    reference_field: str | None = None
    fields: FieldMapping = FieldMapping()
    """The payload fields (modes: the endpoint modes that take each)."""
    text_aspect: str | None = None
    """Aspect ratio the text endpoint produces when aspect_ratio is not a parameter."""
    resolutions_for: Callable[[str, Mode], tuple[str, ...]] | None = None
    """Resolutions a given endpoint can produce, when that depends on the tier."""
    mode_problem: Callable[[str, Mode], str | None] | None = None
    video_input: Literal["optional", "required", "by_id"] = "optional"
    """``required``: the endpoint edits/extends ``request.video`` (sent as ``video_url``);
    ``by_id``: it remixes an earlier generation named by ``extra_params["video_id"]``."""


def _frames_at_16fps(seconds: int) -> int:
    return 16 * seconds + 1


_PROMPT = Field("prompt", "prompt", send_empty=True)
_DURATION = Field("duration", "duration_seconds", str)
_DURATION_S = Field("duration", "duration_seconds", seconds_suffix)
_NUM_FRAMES = Field("num_frames", "duration_seconds", _frames_at_16fps)
_ASPECT = Field("aspect_ratio", "aspect_ratio")
_TEXT_ASPECT = Field("aspect_ratio", "aspect_ratio", modes=frozenset({"text"}))
_RESOLUTION = Field("resolution", "resolution")
_AUDIO = Field("generate_audio", "generate_audio")
_NEGATIVE = Field("negative_prompt", "negative_prompt")
_SEED = Field("seed", "seed")


def _video_caps(**kwargs: Any) -> ModelCapabilities:
    return ModelCapabilities(modalities=frozenset({"video"}), max_outputs=1, **kwargs)


def _kling_resolutions(model: str, mode: Mode) -> tuple[str, ...]:
    return ("720p",) if "/standard" in model else ("1080p",)


def _kling_mode_problem(model: str, mode: Mode) -> str | None:
    if mode == "first_last" and "/pro" not in model:
        return "last_frame needs a pro-tier Kling endpoint"
    return None


def _minimax_resolutions(model: str, mode: Mode) -> tuple[str, ...]:
    if "/pro" in model:
        return ("1080p",)
    if "hailuo-02-fast" in model:
        return ("480p",)
    if mode != "text" and "hailuo-02" in model:
        return ("480p", "720p")
    return ("720p",)


def _sora_resolutions(model: str, mode: Mode) -> tuple[str, ...]:
    return ("720p", "1080p") if model.rstrip("/").endswith("/pro") else ("720p",)


def _seedance_mode_problem(model: str, mode: Mode) -> str | None:
    if mode == "reference" and "/lite" not in model:
        return "reference images need a Seedance lite endpoint (reference-to-video)"
    return None


_VEO_FRAMES: dict[Mode, tuple[str, str | None]] = {
    "image": ("image_url", None),
    "first_last": ("first_frame_url", "last_frame_url"),
}
_VEO_NOTES = "duration sent as '8s'; input images route to image-to-video / first-last-frame-to-video"

VEO3 = VideoFamily(
    name="Veo 3",
    caps=_video_caps(
        durations=(4, 6, 8), resolutions=("720p", "1080p"), aspect_ratios=("16:9", "9:16"),
        image_roles=("first_frame",), max_input_images=1, generates_audio=True, notes=_VEO_NOTES,
    ),
    routes={"text": "", "image": "image-to-video"},
    frame_fields=_VEO_FRAMES,
    fields=FieldMapping.of(_PROMPT, _DURATION_S, _ASPECT, _RESOLUTION, _AUDIO,
                           Field("enhance_prompt", "enhance_prompt"), _NEGATIVE, _SEED),
)
VEO31 = VideoFamily(
    name="Veo 3.1",
    caps=_video_caps(
        durations=(4, 6, 8), resolutions=("720p", "1080p", "4k"), aspect_ratios=("16:9", "9:16"),
        image_roles=("first_frame", "last_frame", "reference", "asset"), max_input_images=3,
        generates_audio=True, notes=_VEO_NOTES + "; reference/asset images route to reference-to-video",
    ),
    routes={"text": "", "image": "image-to-video", "first_last": "first-last-frame-to-video",
            "reference": "reference-to-video"},
    frame_fields=_VEO_FRAMES,
    reference_field="image_urls",
    fields=FieldMapping.of(_PROMPT, _DURATION_S, _ASPECT, _RESOLUTION, _AUDIO, _NEGATIVE, _SEED),
)
VEO31_FAST = replace(
    VEO31,
    name="Veo 3.1 Fast",
    caps=VEO31.caps.model_copy(
        update={"image_roles": ("first_frame", "last_frame"), "max_input_images": 2, "notes": _VEO_NOTES}
    ),
    routes={"text": "", "image": "image-to-video", "first_last": "first-last-frame-to-video"},
)
VEO31_LITE = replace(VEO3, name="Veo 3.1 Lite", fields=VEO3.fields.without("enhance_prompt"))

_KLING_NOTES = ("duration sent as '5'; aspect_ratio only on text-to-video (image endpoints follow the image); "
                "resolution fixed by tier (standard 720p, pro/master 1080p), not sent")
KLING = VideoFamily(
    name="Kling",
    caps=_video_caps(
        durations=(5, 10), resolutions=("720p", "1080p"), aspect_ratios=("16:9", "9:16", "1:1"),
        image_roles=("first_frame", "last_frame"), max_input_images=2, generates_audio=False,
        notes=_KLING_NOTES + "; last_frame (tail_image_url) on pro tiers",
    ),
    routes={"text": "text-to-video", "image": "image-to-video", "first_last": "image-to-video"},
    frame_fields={"image": ("image_url", None), "first_last": ("image_url", "tail_image_url")},
    fields=FieldMapping.of(_PROMPT, _DURATION, _TEXT_ASPECT, _NEGATIVE),
    resolutions_for=_kling_resolutions,
    mode_problem=_kling_mode_problem,
)
KLING_V26 = replace(
    KLING,
    name="Kling 2.6",
    caps=KLING.caps.model_copy(update={"generates_audio": True}),
    fields=KLING.fields.with_fields(_AUDIO),
)
KLING_V3 = replace(
    KLING,
    name="Kling 3",
    caps=KLING.caps.model_copy(
        update={
            "durations": None, "min_duration": 3, "max_duration": 15, "generates_audio": True,
            "notes": _KLING_NOTES + "; frames as start_image_url / end_image_url",
        }
    ),
    frame_fields={"image": ("start_image_url", None), "first_last": ("start_image_url", "end_image_url")},
    mode_problem=None,
    fields=KLING.fields.with_fields(_AUDIO),
)

MINIMAX_VIDEO = VideoFamily(
    name="MiniMax Hailuo",
    caps=_video_caps(
        durations=(6, 10), resolutions=("480p", "720p", "1080p"),
        image_roles=("first_frame",), max_input_images=1, generates_audio=False,
        notes="duration '6'|'10'; resolution as 512P/768P/1080P (pro tiers 1080P, 6 s only); "
              "text endpoints output 16:9, image endpoints follow the image",
    ),
    routes={"text": "text-to-video", "image": "image-to-video"},
    frame_fields={"image": ("image_url", None)},
    fields=FieldMapping.of(
        _PROMPT, _DURATION, Field("resolution", "resolution", lookup({"480p": "512P", "720p": "768P", "1080p": "1080P"})),
        Field("prompt_optimizer", "enhance_prompt"),
    ),
    text_aspect="16:9",
    resolutions_for=_minimax_resolutions,
)

WAN25 = VideoFamily(
    name="Wan 2.5",
    caps=_video_caps(
        durations=(5, 10), resolutions=("480p", "720p", "1080p"), aspect_ratios=("16:9", "9:16", "1:1"),
        image_roles=("first_frame",), max_input_images=1,
        notes="duration '5'|'10'; audio is generated by the model (no switch)",
    ),
    routes={"text": "text-to-video", "image": "image-to-video"},
    frame_fields={"image": ("image_url", None)},
    fields=FieldMapping.of(_PROMPT, _DURATION, _TEXT_ASPECT, _RESOLUTION,
                           Field("enable_prompt_expansion", "enhance_prompt"), _NEGATIVE, _SEED),
)
WAN22 = replace(
    WAN25,
    name="Wan 2.2",
    caps=_video_caps(
        min_duration=1, max_duration=10, resolutions=("480p", "720p"), aspect_ratios=("16:9", "9:16", "1:1"),
        image_roles=("first_frame", "last_frame"), max_input_images=2, generates_audio=False,
        notes="duration sent as num_frames at 16 fps (16*s+1); last_frame as end_image_url",
    ),
    routes={"text": "text-to-video", "image": "image-to-video", "first_last": "image-to-video"},
    frame_fields={"image": ("image_url", None), "first_last": ("image_url", "end_image_url")},
    fields=WAN25.fields.with_fields(_NUM_FRAMES),
)
WAN_OTHER = VideoFamily(
    name="Wan",
    caps=_video_caps(
        durations=(5, 6), resolutions=("480p", "720p"), aspect_ratios=("16:9", "9:16"),
        image_roles=("first_frame",), max_input_images=1, generates_audio=False,
        notes="endpoint used as named (give the i2v id for image input); duration as num_frames at 16 fps",
    ),
    routes={"text": None, "image": None},
    frame_fields={"image": ("image_url", None)},
    fields=FieldMapping.of(_PROMPT, _NUM_FRAMES, _ASPECT, _RESOLUTION, _NEGATIVE, _SEED),
)

SEEDANCE = VideoFamily(
    name="Seedance",
    caps=_video_caps(
        min_duration=2, max_duration=12, resolutions=("480p", "720p", "1080p"), aspect_ratios=_ALL_RATIOS,
        image_roles=("first_frame", "last_frame", "reference"), max_input_images=4, generates_audio=False,
        notes="duration '2'..'12'; reference images (1-4) on lite reference-to-video; camera_fixed via extra_params",
    ),
    routes={"text": "text-to-video", "image": "image-to-video", "first_last": "image-to-video",
            "reference": "reference-to-video"},
    frame_fields={"image": ("image_url", None), "first_last": ("image_url", "end_image_url")},
    reference_field="reference_image_urls",
    fields=FieldMapping.of(_PROMPT, _DURATION, _ASPECT, _RESOLUTION, _SEED),
    mode_problem=_seedance_mode_problem,
)
SEEDANCE_V15 = replace(
    SEEDANCE,
    name="Seedance 1.5",
    caps=SEEDANCE.caps.model_copy(update={"generates_audio": True}),
    fields=SEEDANCE.fields.with_fields(_AUDIO),
)

SORA2 = VideoFamily(
    name="Sora 2",
    caps=_video_caps(
        durations=(4, 8, 12, 16, 20), resolutions=("720p", "1080p"), aspect_ratios=("16:9", "9:16"),
        image_roles=("first_frame",), max_input_images=1, generates_audio=True,
        notes="integer duration; 1080p only on the /pro endpoints; audio always on; to remix a result later, "
              "send extra_params delete_video=False",
    ),
    routes={"text": "text-to-video", "image": "image-to-video"},
    frame_fields={"image": ("image_url", None)},
    fields=FieldMapping.of(_PROMPT, Field("duration", "duration_seconds", int), _ASPECT, _RESOLUTION),
    resolutions_for=_sora_resolutions,
)

# Video-to-video endpoints: each is its own catalog entry (the longest prefix wins), so
# the text/image families above do not refuse their input video.
VEO31_EXTEND = VideoFamily(
    name="Veo 3.1 extend-video",
    caps=_video_caps(
        durations=(7,), resolutions=("720p", "1080p"), aspect_ratios=("16:9", "9:16"), image_roles=(),
        accepts_video_input=True, generates_audio=True,
        notes="extends `video` (720p/1080p, 16:9 or 9:16, up to 8 s) by 7 s; duration sent as '7s'",
    ),
    routes={"text": None},
    fields=FieldMapping.of(_PROMPT, _DURATION_S, _ASPECT, _RESOLUTION, _AUDIO, _NEGATIVE, _SEED),
    video_input="required",
)
SORA2_REMIX = VideoFamily(
    name="Sora 2 remix",
    caps=_video_caps(
        durations=(), resolutions=(), aspect_ratios=(), image_roles=(), generates_audio=True,
        notes="remixes an earlier Sora 2 generation: extra_params video_id (its raw_response video_id; generate "
              "it with extra_params delete_video=False); duration, resolution, aspect follow the source",
    ),
    routes={"text": None},
    fields=FieldMapping.of(_PROMPT, _ASPECT),
    video_input="by_id",
)
KLING_O1_EDIT = VideoFamily(
    name="Kling O1 edit",
    caps=_video_caps(
        durations=(), resolutions=(), aspect_ratios=(), image_roles=REFERENCE_ROLES, max_input_images=4,
        accepts_video_input=True, generates_audio=False,
        notes="edits `video` (3-10 s, 720-2160 px); reference images as image_urls (@Image1...); "
              "keep_audio / elements via extra_params; duration, resolution, aspect follow the source",
    ),
    routes={"text": None, "reference": None},
    reference_field="image_urls",
    fields=FieldMapping.of(_PROMPT, _ASPECT),
    video_input="required",
)

GENERIC_VIDEO = VideoFamily(
    name="fal video model",
    caps=ModelCapabilities(modalities=frozenset({"video"})),
    routes={"text": None, "image": None, "first_last": None, "reference": None},
    frame_fields={"image": ("image_url", None), "first_last": ("image_url", "end_image_url")},
    reference_field="image_urls",
    fields=FieldMapping.of(_PROMPT, _DURATION, _ASPECT, _RESOLUTION, _AUDIO, _NEGATIVE, _SEED),
)

VIDEO_FAMILIES: dict[str, VideoFamily] = {
    "fal-ai/veo3.1/fast/extend-video*": VEO31_EXTEND,
    "fal-ai/veo3.1/extend-video*": VEO31_EXTEND,
    "fal-ai/sora-2/video-to-video/remix*": SORA2_REMIX,
    "fal-ai/kling-video/o1/video-to-video/edit*": KLING_O1_EDIT,
    "fal-ai/kling-video/o1/standard/video-to-video/edit*": KLING_O1_EDIT,
    "fal-ai/veo3.1/fast*": VEO31_FAST,
    "fal-ai/veo3.1/lite*": VEO31_LITE,
    "fal-ai/veo3.1*": VEO31,
    "fal-ai/veo3*": VEO3,
    "fal-ai/kling-video/v3*": KLING_V3,
    "fal-ai/kling-video/v2.6*": KLING_V26,
    "fal-ai/kling-video/*": KLING,
    "fal-ai/minimax/*": MINIMAX_VIDEO,
    "fal-ai/wan/v2.2-a14b*": WAN22,
    "fal-ai/wan-25-preview*": WAN25,
    "fal-ai/wan*": WAN_OTHER,
    "fal-ai/bytedance/seedance/v1.5*": SEEDANCE_V15,
    "fal-ai/bytedance/seedance*": SEEDANCE,
    "fal-ai/sora-2*": SORA2,
}

# ----------------------------------------------------------------------------- image families

FAL_IMAGE_SIZES = {
    "1:1": "square_hd",
    "16:9": "landscape_16_9",
    "9:16": "portrait_16_9",
    "4:3": "landscape_4_3",
}
_EXPLICIT_SIZES = {"21:9": {"width": 1568, "height": 672}}


@dataclass(frozen=True)
class ImageFamily:
    """How one family of fal image endpoints names its inputs."""

    name: str
    caps: ModelCapabilities
    fields: FieldMapping
    """The payload fields; a family mapping ``aspect_ratio`` takes no ``size``."""
    output_formats: tuple[str, ...] | None = ("jpeg", "png")
    image_field: str | None = None
    image_route: str | None = None
    """Segment appended to the model id when an input image is given."""
    requires_image: bool = False


def _image_caps(**kwargs: Any) -> ModelCapabilities:
    return ModelCapabilities(modalities=frozenset({"image"}), **kwargs)


_IMAGE_SIZE = Field("image_size", REQUEST, lambda request: fal_image_size(request))
_NUM_IMAGES = Field("num_images", "n")
_SIZED_FIELDS = FieldMapping.of(_PROMPT, _IMAGE_SIZE, _NUM_IMAGES, _SEED)
_ASPECT_FIELDS = FieldMapping.of(_PROMPT, _ASPECT, _NUM_IMAGES, _SEED)


FLUX = ImageFamily(
    name="FLUX",
    caps=_image_caps(max_outputs=4, image_roles=(), aspect_ratios=_ALL_RATIOS,
                     notes="image_size from size (WxH) or aspect_ratio; output_format jpeg|png via extra_params"),
    fields=_SIZED_FIELDS,
)
FLUX_DEV = ImageFamily(
    name="FLUX dev",
    caps=_image_caps(max_outputs=4, image_roles=("reference",), max_input_images=1, aspect_ratios=_ALL_RATIOS,
                     notes="a reference image routes to /image-to-image (strength via extra_params)"),
    fields=_SIZED_FIELDS,
    image_field="image_url",
    image_route="image-to-image",
)
FLUX_ULTRA = ImageFamily(
    name="FLUX 1.1 ultra",
    caps=_image_caps(max_outputs=4, image_roles=("reference",), max_input_images=1, aspect_ratios=_ALL_RATIOS,
                     notes="aspect_ratio only (no size); reference image as image prompt"),
    fields=_ASPECT_FIELDS,
    image_field="image_url",
)
FLUX_KONTEXT = ImageFamily(
    name="FLUX Kontext",
    caps=_image_caps(max_outputs=4, image_roles=("reference",), max_input_images=1, aspect_ratios=_ALL_RATIOS,
                     notes="edits a reference image (required unless the /text-to-image endpoint)"),
    fields=_ASPECT_FIELDS,
    image_field="image_url",
    requires_image=True,
)
RECRAFT = ImageFamily(
    name="Recraft",
    caps=_image_caps(max_outputs=1, image_roles=(), aspect_ratios=_ALL_RATIOS,
                     notes="one image per request; style passed through (vector styles return SVG)"),
    fields=FieldMapping.of(_PROMPT, _IMAGE_SIZE, Field("style", "style")),
    output_formats=None,
)
GENERIC_IMAGE = ImageFamily(
    name="fal image model",
    caps=ModelCapabilities(modalities=frozenset({"image"})),
    fields=_SIZED_FIELDS.with_fields(_NEGATIVE),
    output_formats=None,
    image_field="image_url",
)

IMAGE_FAMILIES: dict[str, ImageFamily] = {
    "fal-ai/flux-pro/v1.1-ultra*": FLUX_ULTRA,
    "fal-ai/flux-pro/kontext*": FLUX_KONTEXT,
    "fal-ai/flux/dev*": FLUX_DEV,
    "fal-ai/flux*": FLUX,
    "fal-ai/recraft*": RECRAFT,
}

# ----------------------------------------------------------------------------- speech families

MINIMAX_SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100)
MINIMAX_BITRATES_KBPS = (32, 64, 128, 256)
MINIMAX_VOICE_KEYS = {"speed": "speed", "vol": "vol", "volume": "vol", "pitch": "pitch", "emotion": "emotion",
                      "english_normalization": "english_normalization"}
MINIMAX_LANGUAGES = {
    "zh": "Chinese", "yue": "Chinese,Yue", "en": "English", "ar": "Arabic", "ru": "Russian", "es": "Spanish",
    "fr": "French", "pt": "Portuguese", "de": "German", "tr": "Turkish", "nl": "Dutch", "uk": "Ukrainian",
    "vi": "Vietnamese", "id": "Indonesian", "ja": "Japanese", "it": "Italian", "ko": "Korean", "th": "Thai",
    "pl": "Polish", "ro": "Romanian", "el": "Greek", "cs": "Czech", "fi": "Finnish", "hi": "Hindi",
    "bg": "Bulgarian", "da": "Danish", "he": "Hebrew", "ms": "Malay", "sk": "Slovak", "sv": "Swedish",
    "hr": "Croatian", "hu": "Hungarian", "no": "Norwegian", "nb": "Norwegian", "sl": "Slovenian",
    "ca": "Catalan", "nn": "Nynorsk", "af": "Afrikaans",
}
ELEVENLABS_VOICE_KEYS = ("stability", "similarity_boost", "style", "speed")
KOKORO_LANGUAGES = {
    "american-english": "en", "british-english": "en", "spanish": "es", "french": "fr", "hindi": "hi",
    "italian": "it", "japanese": "ja", "brazilian-portuguese": "pt", "mandarin-chinese": "zh",
}


@dataclass(frozen=True)
class SpeechFamily:
    """How one family of fal text-to-speech endpoints names its inputs."""

    name: str
    caps: ModelCapabilities
    fields: FieldMapping


def _speech_caps(formats: tuple[str, ...] | None, notes: str) -> ModelCapabilities:
    return ModelCapabilities(modalities=frozenset({"tts"}), audio_formats=formats, notes=notes)


def _minimax_voice_setting(request: TTSRequest) -> dict[str, Any] | None:
    voice = _voice_settings(request, MINIMAX_VOICE_KEYS, "MiniMax Speech")
    if request.voice_id:
        voice["voice_id"] = request.voice_id
    return voice or None


def _settings(*keys: str, family: str) -> Field:
    """``voice_settings`` keys sent as top-level fields of the same name."""
    allowed = {key: key for key in keys}
    return Field(SPREAD, REQUEST, lambda request: _voice_settings(request, allowed, family))


def _minimax_fields(text_field: str) -> FieldMapping:
    return FieldMapping.of(
        Field(text_field, "text", send_empty=True),
        Field("voice_setting", REQUEST, _minimax_voice_setting),
        Field("audio_setting", REQUEST, lambda request: _minimax_audio_setting(request)),
        Field("language_boost", "language_code", lambda code: minimax_language(code)),
        Field("output_format", REQUEST, lambda request: "url"),
    )


_VOICE = Field("voice", "voice_id")
_LANGUAGE = Field("language_code", "language_code", lambda code: primary_language(code))
_MINIMAX_NOTES = ("voice_settings -> voice_setting (speed, vol, pitch, emotion); sample rates "
                  "8000-44100; mp3 bitrates 32/64/128/256 kbps; language_code -> language_boost")
MINIMAX_SPEECH_PROMPT = SpeechFamily("MiniMax Speech", _speech_caps(("mp3", "pcm", "flac"), _MINIMAX_NOTES),
                                     _minimax_fields("prompt"))
MINIMAX_SPEECH_TEXT = SpeechFamily("MiniMax Speech", _speech_caps(("mp3", "pcm", "flac"), _MINIMAX_NOTES),
                                   _minimax_fields("text"))
KOKORO = SpeechFamily(
    "Kokoro", _speech_caps(("wav",), "language chosen by endpoint (american-english, ...); voice_settings: speed"),
    FieldMapping.of(Field("prompt", "text", send_empty=True), _VOICE, _settings("speed", family="Kokoro")),
)
ELEVENLABS = SpeechFamily(
    "ElevenLabs", _speech_caps(("mp3",), "voice_settings: stability, similarity_boost, style, speed"),
    FieldMapping.of(Field("text", "text", send_empty=True), _VOICE, _LANGUAGE,
                    _settings(*ELEVENLABS_VOICE_KEYS, family="ElevenLabs")),
)
GENERIC_SPEECH = SpeechFamily("fal speech model", ModelCapabilities(modalities=frozenset({"tts"})),
                              FieldMapping.of(Field("text", "text", send_empty=True), _VOICE, _LANGUAGE))

SPEECH_FAMILIES: dict[str, SpeechFamily] = {
    "fal-ai/minimax/speech-02*": MINIMAX_SPEECH_TEXT,
    "fal-ai/minimax/preview/speech*": MINIMAX_SPEECH_TEXT,
    "fal-ai/minimax/speech*": MINIMAX_SPEECH_PROMPT,
    "fal-ai/kokoro*": KOKORO,
    "fal-ai/elevenlabs/tts*": ELEVENLABS,
}

Family = TypeVar("Family", VideoFamily, ImageFamily, SpeechFamily)


def _family_for(model: str, families: Mapping[str, Family], default: Family) -> Family:
    """The family of ``model`` (longest ``prefix*`` key), else ``default``; a field mapping
    registered for the model (``register_field_mapping("fal", ...)``) replaces its fields."""
    family = family_lookup(families, model, default)
    registered = registered_field_mapping("fal", model)
    return family if registered is None else replace(family, fields=registered)


def video_family(model: str) -> VideoFamily:
    return _family_for(model, VIDEO_FAMILIES, GENERIC_VIDEO)


def image_family(model: str) -> ImageFamily:
    return _family_for(model, IMAGE_FAMILIES, GENERIC_IMAGE)


def speech_family(model: str) -> SpeechFamily:
    return _family_for(model, SPEECH_FAMILIES, GENERIC_SPEECH)


def _models_table() -> dict[str, ModelCapabilities]:
    table: dict[str, ModelCapabilities] = {}
    for families in (VIDEO_FAMILIES, IMAGE_FAMILIES, SPEECH_FAMILIES):
        for key, family in families.items():
            table[key] = family.caps
    return table


# ----------------------------------------------------------------------------- video mapping


def video_mode(images: list[Any]) -> Mode:
    """Which kind of endpoint an ``image_list`` needs."""
    roles = [image["type"] for image in images]
    references = [role for role in roles if role in REFERENCE_ROLES]
    frames = [role for role in roles if role not in REFERENCE_ROLES]
    if references and frames:
        raise UnsupportedRequestError("image_list mixes frames and reference images; fal endpoints take one kind")
    if references:
        return "reference"
    if frames.count("first_frame") > 1 or frames.count("last_frame") > 1:
        raise UnsupportedRequestError("image_list has more than one first_frame or last_frame")
    if "last_frame" in frames:
        if "first_frame" not in frames:
            raise UnsupportedRequestError("last_frame needs a first_frame too")
        return "first_last"
    return "image" if frames else "text"


def video_endpoint(model: str, family: VideoFamily, mode: Mode) -> str:
    """The endpoint serving ``mode`` for ``model`` (see the module docstring)."""
    if mode not in family.routes:
        raise UnsupportedRequestError(f"{family.name} has no endpoint for {_MODE_TEXT[mode]}")
    parts = model.strip("/").split("/")
    index = next((i for i, part in enumerate(parts) if part in MODE_SEGMENTS), None)
    named: Mode = MODE_SEGMENTS[parts[index]] if index is not None else "text"
    if named != "text" and mode == "text":
        raise UnsupportedRequestError(f"endpoint {model} needs a first_frame image")
    target = family.routes[mode]
    if target is None or named == mode or (index is None and not target):
        return "/".join(parts)
    if index is None:
        return "/".join(parts + [target])
    return "/".join(parts[:index] + ([target] if target else []) + parts[index + 1:])


_MODE_TEXT: dict[Mode, str] = {
    "text": "text-only requests",
    "image": "a first frame",
    "first_last": "first and last frames",
    "reference": "reference images",
}


def check_video(model: str, request: VideoGenerationRequest) -> None:
    """Family rules ``ModelCapabilities`` cannot express; raises ``UnsupportedRequestError``."""
    family = video_family(model)
    if request.number_of_videos > 1:
        raise UnsupportedRequestError(
            f"number_of_videos={request.number_of_videos} not supported: fal video endpoints return one video"
        )
    mode = video_mode(request.image_list)
    video_endpoint(model, family, mode)
    if (problem := _video_input_problem(model, family, request)) is not None:
        raise UnsupportedRequestError(problem)
    if family.mode_problem and (problem := family.mode_problem(model, mode)):
        raise UnsupportedRequestError(problem)
    if request.resolution and family.resolutions_for:
        allowed = family.resolutions_for(model, mode)
        if request.resolution not in allowed:
            raise UnsupportedRequestError(
                f"resolution={request.resolution!r} not supported by {model} (allowed: {', '.join(allowed)})"
            )
    if request.aspect_ratio and not family.fields.sends("aspect_ratio", mode):
        if mode == "text" and family.text_aspect and request.aspect_ratio != family.text_aspect:
            raise UnsupportedRequestError(
                f"aspect_ratio={request.aspect_ratio!r} not supported: {family.name} text endpoints output "
                f"{family.text_aspect}"
            )
    if family is MINIMAX_VIDEO and request.duration_seconds == 10 and "/pro" in model:
        raise UnsupportedRequestError("duration_seconds=10 not supported at 1080P (MiniMax pro endpoints)")


def _video_input_problem(model: str, family: VideoFamily, request: VideoGenerationRequest) -> str | None:
    if family.video_input == "required" and request.video is None:
        return f"{model} edits or extends a video: set `video`"
    video_id = request.extra_params.get("video_id")
    if family.video_input == "by_id" and not (isinstance(video_id, str) and video_id):
        return f"{model} needs extra_params video_id (the video_id of an earlier Sora 2 generation)"
    return None


def video_input(ctx: ProviderContext, model: str, request: VideoGenerationRequest) -> tuple[str, dict[str, Any]]:
    """(endpoint, input JSON) for a video request."""
    family = video_family(model)
    mode = video_mode(request.image_list)
    endpoint = video_endpoint(model, family, mode)
    body = family.fields.payload(request, mode)
    body.update(_video_images(ctx, family, mode, request.image_list))
    if request.video is not None:
        body["video_url"] = media_url_or_data_url(ctx, request.video, default_type="video/mp4")
    body.update(request.extra_params)
    return endpoint, body


def _video_images(ctx: ProviderContext, family: VideoFamily, mode: Mode, images: list[Any]) -> dict[str, Any]:
    by_role = {image["type"]: image["image"] for image in images}
    if mode == "reference":
        field_name = family.reference_field or "image_urls"
        return {field_name: [media_url_or_data_url(ctx, image["image"]) for image in images]}
    if mode == "text":
        return {}
    first_field, last_field = family.frame_fields[mode]
    fields = {first_field: media_url_or_data_url(ctx, by_role["first_frame"])}
    if mode == "first_last" and last_field:
        fields[last_field] = media_url_or_data_url(ctx, by_role["last_frame"])
    return fields


# ----------------------------------------------------------------------------- image mapping


def _requested_image_format(request: ImageGenerationRequest) -> str | None:
    value = request.extra_params.get("output_format")
    return str(value).lower() if value is not None else None


def check_image(model: str, request: ImageGenerationRequest) -> None:
    family = image_family(model)
    if request.mask_image is not None:
        raise UnsupportedRequestError(f"{family.name} ({model}) does not take a mask_image")
    if family.fields.sends("aspect_ratio") and request.size and request.size != "auto":
        raise UnsupportedRequestError(f"size={request.size!r} not supported by {model}: it takes aspect_ratio only")
    fmt = _requested_image_format(request)
    if fmt and family.output_formats and fmt not in family.output_formats:
        raise UnsupportedRequestError(
            f"output_format={fmt!r} not supported by {model} (allowed: {', '.join(family.output_formats)})"
        )
    if family.requires_image and not request.image_list and not model.endswith("/text-to-image"):
        raise UnsupportedRequestError(f"{model} edits an image: image_list needs a reference image")


def fal_image_size(request: ImageGenerationRequest) -> str | dict[str, int] | None:
    """fal's ``image_size``: explicit ``{width, height}`` for ``size``, else the enum for the aspect ratio."""
    if request.size and request.size != "auto":
        width, height = parse_size(request.size)
        return {"width": width, "height": height}
    if request.aspect_ratio:
        return FAL_IMAGE_SIZES.get(request.aspect_ratio) or dict(_EXPLICIT_SIZES[request.aspect_ratio])
    return None


def image_input(ctx: ProviderContext, model: str, request: ImageGenerationRequest) -> tuple[str, dict[str, Any]]:
    family = image_family(model)
    endpoint = model.strip("/")
    body = family.fields.payload(request)
    if request.image_list and family.image_field:
        body[family.image_field] = media_url_or_data_url(ctx, request.image_list[0]["image"])
        if family.image_route and not endpoint.endswith("/" + family.image_route):
            endpoint = f"{endpoint}/{family.image_route}"
    body.update(request.extra_params)
    return endpoint, body


# ----------------------------------------------------------------------------- speech mapping


def minimax_language(code: str) -> str:
    """fal's ``language_boost`` for a language code (``en-US`` -> ``English``); fal's own names pass through."""
    if code in MINIMAX_LANGUAGES.values() or code == "auto":
        return code
    name = MINIMAX_LANGUAGES.get(code.lower()) or MINIMAX_LANGUAGES.get(primary_language(code))
    if name is None:
        raise UnsupportedRequestError(f"language_code={code!r} has no MiniMax language_boost")
    return name


def _voice_settings(request: TTSRequest, allowed: Mapping[str, str], family: str) -> dict[str, Any]:
    settings = request.voice_settings or {}
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise UnsupportedRequestError(
            f"voice_settings keys {unknown} not supported by {family} (allowed: {', '.join(sorted(allowed))})"
        )
    return {allowed[key]: value for key, value in settings.items()}


def check_speech(model: str, request: TTSRequest) -> None:
    family = speech_family(model)
    fmt = request.output_format
    if family in (MINIMAX_SPEECH_PROMPT, MINIMAX_SPEECH_TEXT):
        if fmt.sample_rate is not None and fmt.sample_rate not in MINIMAX_SAMPLE_RATES:
            raise UnsupportedRequestError(
                f"output_format.sample_rate={fmt.sample_rate} not supported by MiniMax "
                f"(allowed: {', '.join(map(str, MINIMAX_SAMPLE_RATES))})"
            )
        if fmt.format == "mp3" and fmt.bitrate is not None and fmt.bitrate not in MINIMAX_BITRATES_KBPS:
            raise UnsupportedRequestError(
                f"output_format.bitrate={fmt.bitrate} not supported by MiniMax "
                f"(allowed: {', '.join(map(str, MINIMAX_BITRATES_KBPS))} kbps)"
            )
        if request.language_code:
            minimax_language(request.language_code)
        _voice_settings(request, MINIMAX_VOICE_KEYS, family.name)
    elif family is KOKORO:
        _voice_settings(request, {"speed": "speed"}, family.name)
        language = KOKORO_LANGUAGES.get(model.rstrip("/").rsplit("/", 1)[-1])
        if request.language_code and language and primary_language(request.language_code) != language:
            raise UnsupportedRequestError(f"language_code={request.language_code!r} does not match {model}")
    elif family is ELEVENLABS:
        _voice_settings(request, {key: key for key in ELEVENLABS_VOICE_KEYS}, family.name)


def speech_input(model: str, request: TTSRequest) -> tuple[str, dict[str, Any]]:
    body = speech_family(model).fields.payload(request)
    body.update(request.extra_params)
    return model.strip("/"), body


def _minimax_audio_setting(request: TTSRequest) -> dict[str, Any]:
    fmt = request.output_format
    # Always send the rate: raw PCM is measured at the requested rate (44.1 kHz when unset).
    setting: dict[str, Any] = {"format": fmt.format, "sample_rate": fmt.sample_rate or 44100, "channel": 1}
    if fmt.format == "mp3" and fmt.bitrate:
        setting["bitrate"] = fmt.bitrate * 1000
    return setting


# ----------------------------------------------------------------------------- outputs


def _file_url(value: Any) -> str | None:
    if isinstance(value, dict):
        url = value.get("url")
        return url if isinstance(url, str) and url else None
    return value if isinstance(value, str) and value else None


def video_output(body: dict[str, Any]) -> ProviderOutput:
    files = body.get("videos") if isinstance(body.get("videos"), list) else [body.get("video") or body.get("video_url")]
    media = [
        GeneratedMedia(url=url, content_type=(item.get("content_type") if isinstance(item, dict) else None) or "video/mp4")
        for item in files
        if (url := _file_url(item))
    ]
    first = files[0] if files and isinstance(files[0], dict) else {}
    width, height = first.get("width"), first.get("height")
    duration = first.get("duration")
    return ProviderOutput(
        media=media,
        raw_response=body,
        duration=float(duration) if isinstance(duration, (int, float)) else None,
        resolution=f"{width}x{height}" if width and height else None,
        audio_url=_file_url(body.get("audio")) or _file_url(body.get("audio_url")),
    )


def image_output(body: dict[str, Any], requested_format: str | None) -> ProviderOutput:
    """The images, minus any the safety checker flagged; all flagged = moderation."""
    images = body.get("images")
    if not isinstance(images, list):
        images = [body["image"]] if body.get("image") else []
    flags = body.get("has_nsfw_concepts")
    if isinstance(flags, list) and len(flags) == len(images) and any(flags):
        images = [image for image, flagged in zip(images, flags) if not flagged]
        if not images:
            raise ContentModerationError(
                "fal's safety checker flagged every generated image (has_nsfw_concepts)", raw_response=body
            )
    default_type = CONTENT_TYPES.get(requested_format or "", None)
    media = [
        GeneratedMedia(url=url, content_type=(item.get("content_type") if isinstance(item, dict) else None) or default_type)
        for item in images
        if (url := _file_url(item))
    ]
    return ProviderOutput(media=media, raw_response=body, revised_prompt=body.get("revised_prompt"))


def speech_output(body: dict[str, Any], requested_format: str | None) -> ProviderOutput:
    audio = body.get("audio") if body.get("audio") is not None else body.get("audio_url")
    url = _file_url(audio)
    content_type = (audio.get("content_type") if isinstance(audio, dict) else None) or CONTENT_TYPES.get(
        requested_format or "", None
    )
    duration: float | None = None
    if isinstance(body.get("duration_ms"), (int, float)):
        duration = body["duration_ms"] / 1000
    elif isinstance(audio, dict) and isinstance(audio.get("duration"), (int, float)):
        duration = float(audio["duration"])
    media = [GeneratedMedia(url=url, content_type=content_type)] if url else []
    return ProviderOutput(media=media, raw_response=body, duration=duration)


# ----------------------------------------------------------------------------- errors


def moderation_message(body: Any) -> str | None:
    """The message of a ``content_policy_violation`` in a fal error body, if there is one."""
    if not isinstance(body, dict):
        return None
    detail = body.get("detail")
    items = detail if isinstance(detail, list) else [body]
    for item in items:
        if isinstance(item, dict) and item.get("type") in MODERATION_TYPES:
            return str(item.get("msg") or "content policy violation")
    if body.get("error_type") in MODERATION_TYPES:
        return error_text(body.get("detail") or body.get("error")) or "content policy violation"
    return None


def _retry_hint(headers: Mapping[str, str]) -> bool | None:
    value = headers.get("x-fal-retryable") or headers.get("x-fal-needs-retry")
    if value is None:
        return None
    return value.strip().lower() in ("true", "1", "yes")


# ----------------------------------------------------------------------------- the provider


_fal_price = price_sheet("https://fal.ai/pricing", "2026-11-30",
                         note="model page price, as third-party summaries quote it")
_FAL_VEO_31 = (_fal_price("video_second", 0.40, audio=True), _fal_price("video_second", 0.20, audio=False))
FAL_PRICES = {
    "fal-ai/flux/dev*": (_fal_price("image", 0.025, note="$0.025 per megapixel: one 1024x1024 image"),),
    "fal-ai/flux/schnell*": (_fal_price("image", 0.003, note="$0.003 per megapixel: one 1024x1024 image"),),
    "fal-ai/flux-pro/v1.1-ultra*": (_fal_price("image", 0.06),),
    "fal-ai/flux-pro/kontext*": (_fal_price("image", 0.04, note="kontext/max costs $0.08"),),
    "fal-ai/veo3": _FAL_VEO_31,
    "fal-ai/veo3.1": _FAL_VEO_31,
    "fal-ai/veo3.1/image-to-video": _FAL_VEO_31,
    "fal-ai/veo3.1/fast*": (_fal_price("video_second", 0.10, audio=False, note="1080p without audio"),
                            _fal_price("video_second", None, audio=True)),
    "fal-ai/kling-video/v3*": (_fal_price("video_second", 0.112, audio=False, note="v3 pro"),
                               _fal_price("video_second", 0.168, audio=True, note="v3 pro")),
    "fal-ai/sora-2*": (_fal_price("video_second", 0.10, note="sora-2 at 720p"),),
    "fal-ai/sora-2/text-to-video/pro*": (_fal_price("video_second", None, note="pro tier not read"),),
    "fal-ai/sora-2/image-to-video/pro*": (_fal_price("video_second", None, note="pro tier not read"),),
}
"""fal also answers prices per endpoint (``GET /v1/models/pricing``); the key check uses it."""


class FalProvider(JobProvider):
    """fal's queue API for video, image and speech models.

    ``provider_config`` keys: ``queue_priority`` (``normal``/``low``),
    ``request_timeout`` (seconds fal may run the request), ``webhook_url``.
    ``extra_params`` are merged into the model input last, so they can set any
    model field (``cfg_scale``, ``camera_fixed``, ``enable_safety_checker``...).

    What a model cannot honour is refused before any HTTP (``UnsupportedRequestError``,
    a ``skipped`` attempt) when it changes the output: duration, resolution, aspect
    ratio, input images, audio, output format, voice settings. Hints a family has no
    field for (``negative_prompt``, ``seed``, ``enhance_prompt``, image ``quality``)
    are left out of the input. Model ids outside the table get generic field names
    (``prompt``, ``duration``, ``image_url``, ``image_size``, ``text``/``voice``).
    """

    name = "fal"
    key_check = KeyCheck(  # pricing needs a valid key and spends nothing; any listed endpoint id will do
        path="/models/pricing", base_url="https://api.fal.ai/v1", headers="_headers",
        params={"endpoint_id": "fal-ai/flux/dev"}, source="https://fal.ai/docs/platform-apis/v1/models/pricing",
    )
    default_base_url = "https://queue.fal.run"
    api_key_env = "FAL_KEY"
    modalities = frozenset({"video", "image", "tts"})
    prices = FAL_PRICES
    models = _models_table()

    # -- what a model accepts ------------------------------------------------

    def capabilities(self, model: str) -> ModelCapabilities:
        caps = super().capabilities(model)
        if caps.modalities != self.modalities:
            return caps
        # An id outside the table: nothing is restricted; judge speech models by their name.
        if any(word in model for word in ("speech", "tts", "kokoro")):
            return GENERIC_SPEECH.caps
        return ModelCapabilities(modalities=self.modalities, accepts_video_input=True,
                                 notes="not in the table: generic field names, no checks")

    def check_video(self, config: VideoGenerationConfig, request: VideoGenerationRequest) -> None:
        check_video(config.model, request)

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        check_image(config.model, request)

    def check_tts(self, config: AudioGenerationConfig, request: TTSRequest) -> None:
        check_speech(config.model, request)

    # -- the job protocol ------------------------------------------------------

    def submit(self, ctx: ProviderContext, request: AnyRequest) -> JobHandle | ProviderOutput:
        self.check_request(ctx.modality, request, ctx.config)
        return super().submit(ctx, request)

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle:
        endpoint, body = video_input(ctx, ctx.model, request)
        return self._enqueue(ctx, endpoint, body, None)

    def submit_image(self, ctx: ProviderContext, request: ImageGenerationRequest) -> JobHandle:
        endpoint, body = image_input(ctx, ctx.model, request)
        return self._enqueue(ctx, endpoint, body, _requested_image_format(request))

    def submit_tts(self, ctx: ProviderContext, request: TTSRequest) -> JobHandle:
        endpoint, body = speech_input(ctx.model, request)
        return self._enqueue(ctx, endpoint, body, request.output_format.format)

    def _enqueue(self, ctx: ProviderContext, endpoint: str, body: dict[str, Any], output_format: str | None) -> JobHandle:
        response = send(ctx, "POST", self._submit_url(ctx, endpoint), headers=self._submit_headers(ctx), json_body=body)
        answer = _json_object(response, "submit")
        request_id = str(answer.get("request_id") or "")
        if not request_id:
            raise GenerationFailedError("fal accepted the request but returned no request_id", raw_response=answer)
        app_url = f"{ctx.base_url}/{_owner_app(endpoint)}/requests/{request_id}"
        return JobHandle(
            provider=ctx.config.provider,
            model=ctx.model,
            modality=ctx.modality,
            job_id=request_id,
            request_id=request_id,
            poll_url=answer.get("status_url") or f"{app_url}/status",
            result_url=answer.get("response_url") or app_url,
            cancel_url=answer.get("cancel_url") or f"{app_url}/cancel",
            data={"endpoint": endpoint, "output_format": output_format},
        )

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        # "true" is what fal-client sends (httpx renders with_logs=True so); fal's queue docs
        # show logs=1, which the service accepts too, but the SDK's form is the tested one.
        response = send(ctx, "GET", job.poll_url or "", headers=self._headers(ctx), params={"logs": "true"})
        body = _json_object(response, "status")
        status = str(body.get("status", "")).upper()
        if status == "IN_QUEUE":
            return JobStatus("queued", raw=body)
        if status == "IN_PROGRESS":
            return JobStatus("processing", raw=body)
        if status == "COMPLETED" and not body.get("error"):
            return JobStatus("completed", 100, raw=body)
        if status == "COMPLETED":
            return JobStatus("failed", raw=body, failure=self._job_failure(ctx, job, body))
        return JobStatus(
            "failed", raw=body, failure=GenerationFailedError(f"fal returned unknown status {status!r}", raw_response=body)
        )

    def fetch_video(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        return self._result(ctx, job, video_output)

    def fetch_image(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        return self._result(ctx, job, partial(image_output, requested_format=job.data.get("output_format")))

    def fetch_tts(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        return self._result(ctx, job, partial(speech_output, requested_format=job.data.get("output_format")))

    def _result(self, ctx: ProviderContext, job: JobHandle, build: Callable[[dict[str, Any]], ProviderOutput]) -> ProviderOutput:
        response = send(ctx, "GET", job.result_url or "", headers=self._headers(ctx))
        body = _json_object(response, "result")
        try:
            output = build(body)
        except MediagenError as exc:
            exc.provider, exc.model = exc.provider or self.name, exc.model or ctx.model
            exc.request_id = exc.request_id or job.request_id
            raise
        output.request_id = job.request_id or job.job_id
        return output

    def cancel(self, ctx: ProviderContext, job: JobHandle) -> bool:
        """Ask fal to cancel ``job``; True when the cancellation was accepted."""
        try:
            response = send(ctx, "PUT", job.cancel_url or "", headers=self._headers(ctx))
        except (InvalidRequestError, ProviderHTTPError) as exc:
            body = exc.raw_response if isinstance(exc.raw_response, dict) else {}
            if body.get("status") in ("ALREADY_COMPLETED", "NOT_FOUND"):
                return False
            raise
        return str(_json_object(response, "cancel").get("status", "")).upper() == "CANCELLATION_REQUESTED"

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        if (message := moderation_message(body)) is not None:
            return ContentModerationError(f"fal refused the content: {message}")
        status = response.status_code
        if status in (401, 403):
            return None
        if response.headers.get("x-fal-request-timeout-type"):  # our own X-Fal-Request-Timeout ran out
            detail = error_text(body) or "request timeout"
            return ProviderHTTPError(f"fal stopped the request at its X-Fal-Request-Timeout: {detail}",
                                     status_code=status, retryable=False)
        error_type = response.headers.get("x-fal-error-type") or (body.get("error_type") if isinstance(body, dict) else None)
        hint = _retry_hint(response.headers)
        if error_type is None and hint is None:
            return None
        detail = error_text(body) or response.reason or "no details"
        if status in (400, 422) and not hint:
            return InvalidRequestError(f"fal rejected the request (HTTP {status}, {error_type}): {detail}")
        retryable = hint if hint is not None else (error_type in RETRYABLE_ERROR_TYPES or is_transient_status(status))
        label = f", {error_type}" if error_type else ""
        return ProviderHTTPError(f"HTTP {status} from fal{label}: {detail}", status_code=status, retryable=retryable)

    # -- helpers ---------------------------------------------------------------------

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"Authorization": f"Key {ctx.require_api_key()}", "Accept": "application/json"}

    def _submit_headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {**self._headers(ctx), **config_headers(ctx, SUBMIT_HEADERS)}

    def _submit_url(self, ctx: ProviderContext, endpoint: str) -> str:
        url = f"{ctx.base_url}/{endpoint}"
        webhook = ctx.config.provider_config.get("webhook_url")
        return f"{url}?{urlencode({'fal_webhook': webhook})}" if webhook else url

    def _job_failure(self, ctx: ProviderContext, job: JobHandle, status: dict[str, Any]) -> MediagenError:
        """Why a COMPLETED request failed: the result endpoint's error says what kind it was."""
        message = error_text(status.get("error")) or "fal reported the request failed"
        error_type = status.get("error_type")
        if error_type in MODERATION_TYPES:
            return ContentModerationError(f"fal refused the content: {message}", raw_response=status)
        detail = ""
        try:
            send(ctx, "GET", job.result_url or "", headers=self._headers(ctx))
        except (ContentModerationError, InvalidRequestError, ProviderAuthError) as exc:
            return exc
        except MediagenError as exc:
            detail = f" ({exc.message})"
        suffix = f" [{error_type}]" if error_type else ""
        return GenerationFailedError(
            f"fal request {job.job_id} failed{suffix}: {message}{detail}",
            raw_response=status,
            retryable=error_type in RETRYABLE_ERROR_TYPES,
        )


def _owner_app(endpoint: str) -> str:
    return "/".join(endpoint.split("/")[:2])


def _json_object(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GenerationFailedError(f"fal {what} response was not a JSON object: {response.text[:200]!r}")
    return body
