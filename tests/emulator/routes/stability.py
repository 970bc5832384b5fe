"""Emulates Stability AI's Stable Image generate API under /stability.

The prefix stands for ``https://api.stability.ai``. One route serves
``POST /v2beta/stable-image/generate/{ultra|core|sd3}`` (name
``stability.generate``) the way the real API does:

- the body must be multipart/form-data: JSON or urlencoded bodies get the API's 400
  (an empty ``none`` file part is the usual trick to force multipart without a file);
- ``Accept: image/*`` (or no Accept) -> the image bytes with ``finish-reason``, ``seed``
  and ``x-request-id`` headers; ``Accept: application/json`` -> ``{image (base64),
  finish_reason, seed}``; anything else -> 400;
- fields are validated (prompt, aspect_ratio, seed range, output_format, style_preset,
  sd3 ``model``/``mode``, ``image`` + ``strength``) with ``{id, name, errors}`` bodies;
- a ``moderation`` fault -> 403 ``content_moderation``; a custom ``content_filtered``
  fault -> 200 with ``finish-reason: CONTENT_FILTERED``.
"""

from __future__ import annotations

import base64
import random
import uuid

from tests.emulator import EmuRequest, EmuResponse, ProviderEmulator

P = "stability"
ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art",
    "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami", "photographic",
    "pixel-art", "tile-texture",
)
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
FORMATS = {"ultra": ("png", "jpeg", "webp"), "core": ("png", "jpeg", "webp"), "sd3": ("png", "jpeg")}
MAX_SEED = 4294967294
BASE_SIDE = 240
MODERATION_TEXT = ("Your request was flagged by our content moderation system, as a result your request "
                   "was denied and you were not charged.")


def register(emu: ProviderEmulator) -> None:
    def error(status: int, name: str, *messages: str) -> EmuResponse:
        return EmuResponse.error(status, {"id": uuid.uuid4().hex, "name": name, "errors": list(messages)})

    @emu.route("GET", P, r"/v1/user/account", name="stability.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (account info, generates nothing)."""
        if not emu.key_matches(req, "Authorization", f"Bearer {emu.key_for(P)}"):
            return error(401, "unauthorized", "authorization: invalid or missing API key")
        return EmuResponse.json_({"id": "user-emulated", "email": "emulated@example.com", "profile_picture": "",
                                  "organizations": []})

    @emu.route("POST", P, r"/v2beta/stable-image/generate/(?P<endpoint>ultra|core|sd3)",
               name="stability.generate", raw_body=True)
    def generate(req: EmuRequest) -> EmuResponse:
        if not emu.key_matches(req, "Authorization", f"Bearer {emu.key_for(P)}"):
            return error(401, "unauthorized", "authorization: invalid or missing API key")
        if not req.is_multipart:
            return error(400, "bad_request", "content-type: must be multipart/form-data")
        accept = (req.headers.get("Accept") or "image/*").split(",")[0].strip().lower()
        if accept not in ("image/*", "application/json"):
            return error(400, "bad_request", "accept: must be one of image/*, application/json")
        endpoint = req.params["endpoint"] or ""
        problems = validate(endpoint, req)
        if problems:
            return error(400, "bad_request", *problems)
        if (flagged := req.take("moderation")) is not None:
            custom = flagged.message and flagged.message != "Request rejected by content moderation"
            return error(403, "content_moderation", flagged.message if custom else MODERATION_TEXT)
        filtered = req.take("content_filtered") is not None
        return image_response(req, accept, filtered)

    def image_response(req: EmuRequest, accept: str, filtered: bool) -> EmuResponse:
        form = req.form
        image_format = form.get("output_format", "png")
        width, height = size_for(form.get("aspect_ratio", "1:1") if "image" not in req.files else "1:1")
        seed = int(form.get("seed") or 0) or random.randint(1, MAX_SEED)
        data = emu.image_bytes(form["prompt"], width=width, height=height, image_format=image_format,
                               seed=seed % 1000)
        finish_reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
        request_id = uuid.uuid4().hex
        if accept == "application/json":
            body = {"image": base64.b64encode(data).decode("ascii"), "finish_reason": finish_reason, "seed": seed}
            response = EmuResponse.json_(body, headers={"x-request-id": request_id})
            response.content_type = f"application/json; type=image/{image_format}"
            return response
        headers = {"finish-reason": finish_reason, "seed": str(seed), "x-request-id": request_id}
        return EmuResponse.bytes_(data, f"image/{image_format}", headers=headers)


def validate(endpoint: str, req: EmuRequest) -> list[str]:
    """The API's 400 messages for this form (empty when valid)."""
    form = req.form
    problems: list[str] = []
    prompt = form.get("prompt", "")
    if not prompt.strip():
        problems.append("prompt: is required")
    elif len(prompt) > 10000:
        problems.append("prompt: must be at most 10000 characters")
    if "aspect_ratio" in form and form["aspect_ratio"] not in ASPECT_RATIOS:
        problems.append(f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
    if "seed" in form and not _int_between(form["seed"], 0, MAX_SEED):
        problems.append(f"seed: must be an integer between 0 and {MAX_SEED}")
    if form.get("output_format", "png") not in FORMATS[endpoint]:
        problems.append(f"output_format: must be one of {', '.join(FORMATS[endpoint])}")
    if "style_preset" in form and form["style_preset"] not in STYLE_PRESETS:
        problems.append("style_preset: invalid value")
    image = req.file("image")
    if endpoint == "core" and image is not None:
        problems.append("image: not accepted by this endpoint")
    if endpoint == "sd3":
        if form.get("model", "sd3.5-large") not in SD3_MODELS:
            problems.append(f"model: must be one of {', '.join(SD3_MODELS)}")
        mode = form.get("mode", "text-to-image")
        if mode not in ("text-to-image", "image-to-image"):
            problems.append("mode: must be one of text-to-image, image-to-image")
        if mode == "image-to-image" and image is None:
            problems.append("image: is required in image-to-image mode")
        if mode == "text-to-image" and image is not None:
            problems.append("image: only allowed in image-to-image mode")
    if image is not None:
        if not image.data:
            problems.append("image: cannot be empty")
        if "strength" not in form:
            problems.append("strength: is required when image is provided")
        elif not _float_between(form["strength"], 0.0, 1.0):
            problems.append("strength: must be a number between 0 and 1")
    return problems


def size_for(aspect_ratio: str) -> tuple[int, int]:
    """A small frame of ``aspect_ratio`` (even sides), standing in for the real ~1 MP output."""
    wide, _, tall = aspect_ratio.partition(":")
    ratio = int(wide) / int(tall)
    if ratio >= 1:
        return BASE_SIDE, max(2, int(BASE_SIDE / ratio) // 2 * 2)
    return max(2, int(BASE_SIDE * ratio) // 2 * 2), BASE_SIDE


def _int_between(value: str, low: int, high: int) -> bool:
    try:
        return low <= int(value) <= high
    except ValueError:
        return False


def _float_between(value: str, low: float, high: float) -> bool:
    try:
        return low <= float(value) <= high
    except ValueError:
        return False
