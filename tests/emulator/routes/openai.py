"""Emulates OpenAI's Videos API (Sora 2) and Images API under /openai.

Paths are accepted with or without a leading ``/v1`` (the client's base URL is the
emulator prefix). Route names:

- ``openai.videos_create``    POST /videos (multipart/form-data only; JSON -> 400)
- ``openai.videos_retrieve``  GET  /videos/{id} (header ``openai-poll-after-ms``)
- ``openai.videos_content``   GET  /videos/{id}/content (MP4 bytes; ``?variant=thumbnail`` -> WEBP)
- ``openai.videos_remix``     POST /videos/{id}/remix (JSON ``{"prompt"}`` only; the source must be
  completed; the new job keeps its model, seconds and size and names it in ``remixed_from_video_id``)
- ``openai.images_generations`` POST /images/generations (JSON)
- ``openai.images_edits``     POST /images/edits (multipart: ``image`` / ``image[]``, ``mask``)

Answers are checked against the openai-python SDK's response types (``Video``,
``ImagesResponse``) by tests/conformance/test_openai.py. Successful create / image answers carry an ``x-request-id`` header. Faults handled: ``moderation`` (400 ``moderation_blocked`` for GPT-image and Sora,
``content_policy_violation`` for DALL-E), ``fail_job`` / ``slow_job`` on video jobs,
and ``Fault.custom("job_moderation", message)`` for a video job that ends ``failed``
with ``error.code = "moderation_blocked"``. ``emu.state("openai")["poll_after_ms"]``
sets the poll hint (default 20 ms).

Videos are rendered at a quarter of the requested size (the response still reports
the requested ``size``) to keep tests fast; their duration is the requested seconds.

:class:`VideoRoutes` and :class:`ImageRoutes` are reused by the ``azure-openai``
routes, which differ only in paths, auth and error shapes.
"""

from __future__ import annotations

import io
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, Fault, ProviderEmulator

P = "openai"

SORA_SIZES = ("720x1280", "1280x720")
SORA_PRO_SIZES = SORA_SIZES + ("1024x1792", "1792x1024")
SORA_MODELS: dict[str, tuple[str, ...]] = {
    "sora-2": SORA_SIZES,
    "sora-2-2025-10-06": SORA_SIZES,
    "sora-2-2025-12-08": SORA_SIZES,
    "sora-2-pro": SORA_PRO_SIZES,
    "sora-2-pro-2025-10-06": SORA_PRO_SIZES,
}
SORA_SECONDS = ("4", "8", "12")
VIDEO_SCALE = 4
DEFAULT_POLL_AFTER_MS = 20

# openai-python 3.57.0 types/image_model.py (ImageModel); gpt-image-1 and dall-e-* are kept
# because Azure deployments still serve them and the client's lifecycle check, not the
# emulator, is what keeps retired OpenAI models from being called.
IMAGE_MODELS = (
    "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "gpt-image-2-2026-04-21",
    "gpt-image-2.5-sunburst", "gpt-image-2.5-sunburst-2026-09-08", "gpt-image-2.5-flare",
    "gpt-image-2.5-flare-2026-09-08", "gpt-image-2.6-sunburst", "gpt-image-2.6-flare", "chatgpt-image-latest",
    "dall-e-2", "dall-e-3",
)  # fmt: skip
IMAGE_SIZES: dict[str, tuple[str, ...] | None] = {
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536", "auto"),
    "gpt-image-2": None,  # any WxH within the rules below
    "gpt-image-2.5": None,
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
}
IMAGE_QUALITIES: dict[str, tuple[str, ...]] = {
    "gpt-image": ("low", "medium", "high", "auto"),
    "gpt-image-2": ("low", "medium", "high", "auto"),
    "gpt-image-2.5": ("low", "medium", "high", "xhigh", "max", "auto"),
    "dall-e-3": ("standard", "hd", "auto"),
    "dall-e-2": ("standard", "auto"),
}
OUTPUT_FORMATS = ("png", "jpeg", "webp")
AUTO_QUALITY = "high"
"""What an ``auto`` quality request reports back (ImagesResponse.quality has no ``auto``)."""
_SIZE = re.compile(r"^(\d+)x(\d+)$")

Authorize = Callable[[EmuRequest], "EmuResponse | None"]
ModerationReply = Callable[[Fault, str], EmuResponse]


def openai_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    type_: str | None = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> EmuResponse:
    """OpenAI's error body: ``{"error": {message, type, param, code}}``."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return EmuResponse.error(status, body, headers=headers)


def request_id_header() -> dict[str, str]:
    """The ``x-request-id`` header OpenAI (and Azure) put on every answer."""
    return {"x-request-id": f"req_{uuid.uuid4().hex}"}


def masked(key: str) -> str:
    """How OpenAI echoes a rejected key: its ends with the middle starred out."""
    return f"{key[:3]}{'*' * max(len(key) - 7, 3)}{key[-4:]}" if len(key) > 8 else "***"


def image_family(model: str) -> str:
    """Size / quality family, per the SDK's image_generate_params docs."""
    if model.startswith("dall-e-3"):
        return "dall-e-3"
    if model.startswith("dall-e-2"):
        return "dall-e-2"
    if model.startswith("gpt-image-2.5"):
        return "gpt-image-2.5"
    if model == "gpt-image-2" or model.startswith("gpt-image-2-"):
        return "gpt-image-2"
    return "gpt-image"


def openai_moderation(fault: Fault, family: str) -> EmuResponse:
    """OpenAI's refusal: ``content_policy_violation`` for DALL-E, ``moderation_blocked`` otherwise."""
    if family.startswith("dall-e"):
        message = fault.message or "Your request was rejected as a result of our safety system."
        return openai_error(400, message, code="content_policy_violation")
    message = fault.message or "Your request was rejected by the safety system."
    return openai_error(400, message, code="moderation_blocked", type_="image_generation_user_error")


def _parse_size(size: str) -> tuple[int, int] | None:
    match = _SIZE.match(size)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _image_dimensions(data: bytes) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - anything Pillow cannot read is "not an image"
        return None


class _RouteGroup:
    """Routes of one kind for one provider prefix (OpenAI's, or Azure's with its own auth)."""

    def __init__(
        self,
        emu: ProviderEmulator,
        provider: str,
        authorize: Authorize,
        moderation: ModerationReply,
        *,
        strict_models: bool = True,
    ) -> None:
        self.emu = emu
        self.provider = provider
        self.authorize = authorize
        self.moderation = moderation
        self.strict_models = strict_models


class VideoRoutes(_RouteGroup):
    """Sora 2 video jobs for one provider prefix.

    ``strict_models`` rejects unknown model names (OpenAI); Azure passes deployment
    names, so there an unknown name is treated as sora-2 (or sora-2-pro by prefix).
    """

    def sizes_for(self, model: str) -> tuple[str, ...] | None:
        if model in SORA_MODELS:
            return SORA_MODELS[model]
        if self.strict_models:
            return None
        return SORA_PRO_SIZES if "pro" in model else SORA_SIZES

    def create(self, req: EmuRequest) -> EmuResponse:
        if (denied := self.authorize(req)) is not None:
            return denied
        if not req.is_multipart:
            shown = req.content_type or "none"
            return openai_error(
                400, f"Invalid Content-Type header ({shown}), expected multipart/form-data.", code="invalid_content_type"
            )
        form = req.form
        if not form.get("prompt"):
            return openai_error(400, "Missing required parameter: 'prompt'.", code="missing_required_parameter", param="prompt")
        model = form.get("model") or "sora-2"
        sizes = self.sizes_for(model)
        if sizes is None:
            allowed = ", ".join(f"'{m}'" for m in SORA_MODELS)
            return openai_error(400, f"Invalid value: '{model}'. Supported values are: {allowed}.", code="invalid_value", param="model")
        seconds = form.get("seconds") or "4"
        if seconds not in SORA_SECONDS:
            return openai_error(
                400, f"Invalid value: '{seconds}'. Supported values are: '4', '8', and '12'.", code="invalid_value", param="seconds"
            )
        size = form.get("size") or "720x1280"
        if size not in sizes:
            allowed = ", ".join(f"'{s}'" for s in sizes)
            return openai_error(
                400, f"Invalid value: '{size}'. Supported values for {model} are: {allowed}.", code="invalid_value", param="size"
            )
        reference = req.file("input_reference")
        if reference is not None:
            dimensions = _image_dimensions(reference.data)
            if dimensions is None:
                return openai_error(400, "input_reference must be an image (jpeg, png or webp).", code="invalid_value",
                                    param="input_reference")
            if dimensions != _parse_size(size):
                return openai_error(
                    400, f"Inpaint image must match the requested width and height ({size}).", code="invalid_value",
                    param="input_reference",
                )
        if (flagged := req.take("moderation")) is not None:
            return self.moderation(flagged, "sora")
        params = {"prompt": form["prompt"], "model": model, "seconds": seconds, "size": size,
                  "has_reference": reference is not None, "error_code": "video_generation_failed"}
        job = self.emu.jobs.create(self.provider, kind="video", params=params, faults=req.faults,
                                   job_id=f"video_{uuid.uuid4().hex}")
        if (refused := req.take("job_moderation")) is not None:
            job.params["error_code"] = "moderation_blocked"
            job.fail(refused.message or "The generated video was blocked by our moderation system.")
        return EmuResponse.json_(self.video_object(job), headers=request_id_header())

    def remix(self, req: EmuRequest) -> EmuResponse:
        """``POST /videos/{id}/remix`` (JSON ``{"prompt"}``): a new job from a completed video."""
        if (denied := self.authorize(req)) is not None:
            return denied
        body = req.json
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request. Send a JSON object.",
                                code="invalid_json")
        unknown = sorted(set(body) - {"prompt"})
        if unknown:
            return openai_error(400, f"Unknown parameter: '{unknown[0]}'.", code="unknown_parameter", param=unknown[0])
        if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
            return openai_error(400, "Missing required parameter: 'prompt'.", code="missing_required_parameter", param="prompt")
        source = self.emu.jobs.get(req.params["id"] or "")
        if source is None or source.provider != self.provider:
            return self.not_found(req.params["id"])
        if source.state() != "completed":
            return openai_error(400, f"Video '{source.id}' cannot be remixed: its status is {self.status(source)}.",
                                code="invalid_value", param="video_id")
        if (flagged := req.take("moderation")) is not None:
            return self.moderation(flagged, "sora")
        params = {**source.params, "prompt": body["prompt"], "remixed_from_video_id": source.id,
                  "error_code": "video_generation_failed"}
        job = self.emu.jobs.create(self.provider, kind="video", params=params, faults=req.faults,
                                   job_id=f"video_{uuid.uuid4().hex}")
        return EmuResponse.json_(self.video_object(job), headers=request_id_header())

    def retrieve(self, req: EmuRequest) -> EmuResponse:
        if (denied := self.authorize(req)) is not None:
            return denied
        job = self.emu.jobs.get(req.params["id"] or "", poll=True)
        if job is None or job.provider != self.provider:
            return self.not_found(req.params["id"])
        poll_after = self.emu.state(self.provider).get("poll_after_ms", DEFAULT_POLL_AFTER_MS)
        return EmuResponse.json_(self.video_object(job), headers={"openai-poll-after-ms": str(poll_after)})

    def content(self, req: EmuRequest) -> EmuResponse:
        if (denied := self.authorize(req)) is not None:
            return denied
        job = self.emu.jobs.get(req.params["id"] or "")
        if job is None or job.provider != self.provider:
            return self.not_found(req.params["id"])
        if job.state() != "completed":
            return openai_error(404, f"Video '{job.id}' is not ready: its status is {self.status(job)}.", code="video_not_ready")
        width, height = _parse_size(job.params["size"]) or (1280, 720)
        variant = req.query.get("variant") or "video"
        if variant == "thumbnail":
            data = self.emu.image_bytes(job.params["prompt"], width=width // VIDEO_SCALE, height=height // VIDEO_SCALE,
                                        image_format="webp")
            return EmuResponse.bytes_(data, "image/webp")
        if variant != "video":
            return openai_error(400, f"Invalid value: '{variant}'. Supported values are: 'video' and 'thumbnail'.",
                                code="invalid_value", param="variant")
        data = self.emu.video_bytes(job.params["prompt"], width=width // VIDEO_SCALE, height=height // VIDEO_SCALE,
                                    duration=float(job.params["seconds"]), fps=12)
        return EmuResponse.bytes_(data, "video/mp4")

    @staticmethod
    def status(job: Any) -> str:
        return {"queued": "queued", "processing": "in_progress", "completed": "completed"}.get(job.state(), "failed")

    def video_object(self, job: Any) -> dict[str, Any]:
        status = self.status(job)
        body: dict[str, Any] = {
            "id": job.id,
            "object": "video",
            "model": job.params["model"],
            "status": status,
            "progress": job.progress(),
            "created_at": int(job.created_at),
            "completed_at": int(time.time()) if status == "completed" else None,
            "expires_at": int(job.created_at) + 3600 if status == "completed" else None,
            "prompt": job.params["prompt"],
            "seconds": job.params["seconds"],
            "size": job.params["size"],
            "remixed_from_video_id": job.params.get("remixed_from_video_id"),
            "error": None,
        }
        if status == "failed":
            body["error"] = {"code": job.params.get("error_code", "video_generation_failed"),
                             "message": job.error_message or "Video generation failed."}
        return body

    @staticmethod
    def not_found(video_id: str | None) -> EmuResponse:
        return openai_error(404, f"Video with id '{video_id}' not found.", code="not_found", param="video_id")


class ImageRoutes(_RouteGroup):
    """Synchronous image generation and edits for one provider prefix.

    ``strict_models`` rejects unknown model names (OpenAI); Azure routes pass the
    deployment's model instead.
    """

    def generations(self, req: EmuRequest, model_override: str | None = None) -> EmuResponse:
        if (denied := self.authorize(req)) is not None:
            return denied
        body = req.json
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request. Send a JSON object.",
                                code="invalid_json")
        return self._answer(req, {k: v for k, v in body.items()}, model_override, edits=False)

    def edits(self, req: EmuRequest, model_override: str | None = None) -> EmuResponse:
        if (denied := self.authorize(req)) is not None:
            return denied
        if not req.is_multipart:
            return openai_error(400, "Invalid Content-Type header, expected multipart/form-data.", code="invalid_content_type")
        fields: dict[str, Any] = dict(req.form)
        if "n" in fields:
            try:
                fields["n"] = int(fields["n"])
            except ValueError:
                return openai_error(400, f"Invalid type for 'n': expected an integer, got '{fields['n']}'.",
                                    code="invalid_type", param="n")
        return self._answer(req, fields, model_override, edits=True)

    def _answer(self, req: EmuRequest, fields: dict[str, Any], model_override: str | None, *, edits: bool) -> EmuResponse:
        if not fields.get("prompt"):
            return openai_error(400, "Missing required parameter: 'prompt'.", code="missing_required_parameter", param="prompt")
        model = model_override or str(fields.get("model") or ("dall-e-2" if self.strict_models else "gpt-image-1"))
        if self.strict_models and model not in IMAGE_MODELS:
            allowed = ", ".join(f"'{m}'" for m in IMAGE_MODELS)
            return openai_error(400, f"Invalid value: '{model}'. Supported values are: {allowed}.", code="invalid_value",
                                param="model")
        family = image_family(model)
        problem = self._check_options(family, fields) or (self._check_edit_files(req, family) if edits else None)
        if problem is not None:
            return problem
        if (flagged := req.take("moderation")) is not None:
            return self.moderation(flagged, family)
        return EmuResponse.json_(self._result(family, fields), headers=request_id_header())

    def _check_options(self, family: str, fields: dict[str, Any]) -> EmuResponse | None:
        n = fields.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
            return openai_error(400, f"Invalid value for 'n': {n!r}. Must be between 1 and 10.", code="invalid_value", param="n")
        if family == "dall-e-3" and n != 1:
            return openai_error(400, "You must provide n=1 for this model.", code="invalid_value", param="n")
        size = str(fields.get("size") or "")
        if size and (problem := self._size_problem(family, size)):
            return openai_error(400, problem, code="invalid_value", param="size")
        quality = fields.get("quality")
        if quality is not None and quality not in IMAGE_QUALITIES[family]:
            allowed = ", ".join(f"'{q}'" for q in IMAGE_QUALITIES[family])
            return openai_error(400, f"Invalid value: '{quality}'. Supported values are: {allowed}.", code="invalid_value",
                                param="quality")
        style = fields.get("style")
        if style is not None and (family != "dall-e-3" or style not in ("vivid", "natural")):
            return openai_error(400, f"Invalid value for 'style': '{style}'.", code="invalid_value", param="style")
        response_format = fields.get("response_format")
        if response_format is not None:
            if not family.startswith("dall-e"):
                return openai_error(400, "Unknown parameter: 'response_format'.", code="unknown_parameter",
                                    param="response_format")
            if response_format not in ("url", "b64_json"):
                return openai_error(400, f"Invalid value: '{response_format}'.", code="invalid_value", param="response_format")
        output_format = fields.get("output_format")
        if output_format is not None:
            if family.startswith("dall-e"):
                return openai_error(400, "Unknown parameter: 'output_format'.", code="unknown_parameter", param="output_format")
            if output_format not in OUTPUT_FORMATS:
                return openai_error(400, f"Invalid value: '{output_format}'.", code="invalid_value", param="output_format")
        return None

    @staticmethod
    def _size_problem(family: str, size: str) -> str | None:
        allowed = IMAGE_SIZES[family]
        if allowed is not None:
            if size in allowed:
                return None
            return f"Invalid value: '{size}'. Supported values are: {', '.join(repr(s) for s in allowed)}."
        if size == "auto":
            return None
        parsed = _parse_size(size)
        if parsed is None:
            return f"Invalid value: '{size}'. Expected WIDTHxHEIGHT."
        width, height = parsed
        if width % 16 or height % 16 or max(width, height) > 3 * min(width, height) or width * height > 3840 * 2160:
            return f"Invalid size '{size}': sides must be multiples of 16, ratio within 1:3..3:1, at most 3840x2160."
        return None

    def _check_edit_files(self, req: EmuRequest, family: str) -> EmuResponse | None:
        images = req.files.get("image", []) + req.files.get("image[]", [])
        if not images:
            return openai_error(400, "Missing required parameter: 'image'.", code="missing_required_parameter", param="image")
        if family == "dall-e-3":
            return openai_error(400, "Invalid value: 'dall-e-3'. Image edits support 'dall-e-2' and GPT image models.",
                                code="invalid_value", param="model")
        limit = 1 if family == "dall-e-2" else 16
        if len(images) > limit:
            return openai_error(400, f"Too many images: at most {limit} for this model.", code="invalid_value", param="image")
        dimensions = [_image_dimensions(upload.data) for upload in images]
        if any(d is None for d in dimensions):
            return openai_error(400, "Invalid image file: expected PNG, JPEG or WEBP.", code="invalid_image", param="image")
        if family == "dall-e-2" and dimensions[0][0] != dimensions[0][1]:  # type: ignore[index]
            return openai_error(400, "Invalid input image - format must be a square PNG.", code="invalid_image", param="image")
        mask = req.file("mask")
        if mask is not None and _image_dimensions(mask.data) != dimensions[0]:
            return openai_error(400, "Invalid mask image: it must have the same dimensions as the image.",
                                code="invalid_image", param="mask")
        return None

    def _result(self, family: str, fields: dict[str, Any]) -> dict[str, Any]:
        size = str(fields.get("size") or "1024x1024")
        width, height = _parse_size(size) or (1024, 1024)
        prompt = str(fields["prompt"])
        count = int(fields.get("n", 1))
        created = int(time.time())
        if family.startswith("dall-e"):
            items = []
            for index in range(count):
                item: dict[str, Any]
                if fields.get("response_format") == "b64_json":
                    import base64

                    data = self.emu.image_bytes(prompt, width=width, height=height, seed=index)
                    item = {"b64_json": base64.b64encode(data).decode("ascii")}
                else:
                    item = {"url": self.emu.host_image(prompt, provider=self.provider, width=width, height=height, seed=index)}
                if family == "dall-e-3":
                    item["revised_prompt"] = f"A detailed, vivid rendering of {prompt}"
                items.append(item)
            return {"created": created, "data": items}
        import base64

        image_format = str(fields.get("output_format") or "png")
        items = [
            {"b64_json": base64.b64encode(
                self.emu.image_bytes(prompt, width=width, height=height, image_format=image_format, seed=index)
            ).decode("ascii")}
            for index in range(count)
        ]
        background = fields.get("background")
        quality = fields.get("quality")
        return {
            "created": created,
            "data": items,
            "background": background if background in ("transparent", "opaque") else "opaque",
            "output_format": image_format,
            "quality": quality if quality not in (None, "auto") else AUTO_QUALITY,
            "size": f"{width}x{height}",
            "usage": {
                "input_tokens": 12,
                "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
                "output_tokens": 4160,
                "output_tokens_details": {"image_tokens": 4160, "text_tokens": 0},
                "total_tokens": 4172,
            },
        }


def register(emu: ProviderEmulator) -> None:
    def authorize(req: EmuRequest) -> EmuResponse | None:
        key = emu.key_for(P)
        if emu.key_matches(req, "Authorization", f"Bearer {key}"):
            return None
        header = req.headers.get("Authorization")
        if header is None:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        given = header.strip().rpartition(" ")[2]
        return openai_error(401, f"Incorrect API key provided: {masked(given)}.", code="invalid_api_key")

    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (models.list, generates nothing)."""
        if (denied := authorize(req)) is not None:
            return denied
        listed = [*SORA_MODELS, *IMAGE_MODELS]
        return EmuResponse.json_({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "system"} for m in listed]})

    emu.add_route("GET", P, r"(?:/v1)?/models", key_check, name="openai.key_check")
    videos = VideoRoutes(emu, P, authorize, openai_moderation)
    images = ImageRoutes(emu, P, authorize, openai_moderation)
    emu.add_route("POST", P, r"(?:/v1)?/videos", videos.create, name="openai.videos_create")
    emu.add_route("GET", P, r"(?:/v1)?/videos/(?P<id>[^/]+)", videos.retrieve, name="openai.videos_retrieve")
    emu.add_route("GET", P, r"(?:/v1)?/videos/(?P<id>[^/]+)/content", videos.content, name="openai.videos_content")
    emu.add_route("POST", P, r"(?:/v1)?/videos/(?P<id>[^/]+)/remix", videos.remix, name="openai.videos_remix")
    emu.add_route("POST", P, r"(?:/v1)?/images/generations", images.generations, name="openai.images_generations")
    emu.add_route("POST", P, r"(?:/v1)?/images/edits", images.edits, name="openai.images_edits")
