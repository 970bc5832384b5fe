"""Emulates xAI's Grok Imagine REST API (``api.x.ai/v1``) under ``/xai``.

- ``POST /images/generations`` (synchronous) -> ``{block_reason, data: [{url | b64_json,
  mime_type, revised_prompt}]}``.
- ``POST /videos/generations`` and ``POST /videos/edits`` -> ``{request_id}``;
  ``GET /videos/{request_id}`` -> ``{status: pending (with progress) | done | failed |
  expired, video: {url, duration, respect_moderation}, model, error}``.

Auth like the API: a wrong ``Authorization: Bearer`` key is a **400** ``{"code", "error":
"Incorrect API key provided: xx***yy. ..."}``; no key at all a 401. Bodies are checked
the way the API does (422 for a missing/mistyped field, 400 for a bad value, 404 for an
unknown model). Faults handed to handlers: ``moderation`` (images: ``block_reason``;
videos: finished with ``respect_moderation: false`` and no URL), ``fail_job``
(``failed`` with ``internal_error``), ``Fault.custom("video_failure", message,
code=...)``, ``Fault.custom("expire")`` (the request ends ``expired``), ``slow_job``.

Models: grok-imagine-image (-2.0 takes quality low|medium and 21:9; the retired -quality
and -pro slugs still resolve, as xAI redirects them), grok-imagine-video and
grok-imagine-video-1.5 (1080p for text-to-video only); ``generate_audio`` must be a bool.
Media are real: JPEG images and H.264 MP4 videos of the requested aspect ratio and
duration, scaled down (long side at most 256 px for images, 320 px for videos).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, ProviderEmulator

P = "xai"
# -quality and -pro still resolve (served by grok-imagine-image-2.0 at quality low).
IMAGE_MODELS = frozenset({"grok-imagine-image", "grok-imagine-image-2.0", "grok-imagine-image-quality",
                          "grok-imagine-image-pro"})
VIDEO_MODELS = frozenset({"grok-imagine-video", "grok-imagine-video-1.5"})
IMAGE_ASPECTS = frozenset(
    {"1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1", "auto"}
)
VIDEO_ASPECTS = frozenset({"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"})
VIDEO_RESOLUTIONS = {"480p": 480, "720p": 720, "1080p": 1080}
MAX_IMAGE_SIDE = 256
MAX_VIDEO_SIDE = 320
DEFAULT_VIDEO_SECONDS = 8


def _error(status: int, code: str, message: str) -> EmuResponse:
    return EmuResponse.error(status, {"code": code, "error": message})


def _bad_argument(message: str) -> EmuResponse:
    return _error(400, "Client specified an invalid argument", message)


def _unprocessable(message: str) -> EmuResponse:
    return _error(422, "Client specified an invalid argument", f"Failed to deserialize the JSON body into the target type: {message}")


def _masked(key: str) -> str:
    return f"{key[:2]}***{key[-2:]}" if len(key) > 4 else "***"


def _dimensions(aspect: str | None, limit: int) -> tuple[int, int]:
    """Width and height for an aspect ratio like ``16:9`` or ``19.5:9``, long side ``limit`` (even)."""
    try:
        a, b = (float(part) for part in (aspect or "1:1").split(":"))
    except ValueError:
        a, b = 1.0, 1.0
    if a >= b:
        return limit, max(2, int(limit * b / a) // 2 * 2)
    return max(2, int(limit * a / b) // 2 * 2), limit


def _is_media_url(value: Any, kind: str) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://", f"data:{kind}/"))


def register(emu: ProviderEmulator) -> None:
    def check_auth(req: EmuRequest) -> EmuResponse | None:
        header = req.headers.get("Authorization")
        if not header:
            return _error(401, "Unauthenticated", "No API key provided. You can obtain an API key from https://console.x.ai.")
        if emu.key_matches(req, "Authorization", f"Bearer {emu.key_for(P)}"):
            return None
        given = header.strip().rpartition(" ")[2]
        return _bad_argument(
            f"Incorrect API key provided: {_masked(given)}. You can obtain an API key from https://console.x.ai."
        )

    @emu.route("GET", P, r"/models", name=f"{P}.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (models list, generates nothing)."""
        if (denied := check_auth(req)) is not None:
            return denied
        return EmuResponse.json_({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "xai"} for m in sorted(IMAGE_MODELS | VIDEO_MODELS)]})

    def json_body(req: EmuRequest) -> tuple[dict[str, Any] | None, EmuResponse | None]:
        if req.content_type != "application/json":
            return None, _error(415, "Unsupported media type", "Expected request with `Content-Type: application/json`")
        if not isinstance(req.json, dict):
            return None, _unprocessable("expected a JSON object")
        prompt = req.json.get("prompt")
        if prompt is None:
            return None, _unprocessable("missing field `prompt`")
        if not isinstance(prompt, str):
            return None, _unprocessable("invalid type for `prompt`: expected a string")
        return req.json, None

    def check_model(body: dict[str, Any], known: frozenset[str], default: str) -> EmuResponse | None:
        model = body.get("model", default)
        if model not in known:
            return _error(
                404,
                "Some requested entity was not found",
                f"The model {model} does not exist or your team does not have access to it.",
            )
        return None

    def accepted_body(
        req: EmuRequest, known: frozenset[str], default: str
    ) -> tuple[dict[str, Any] | None, EmuResponse | None]:
        """The JSON body of a POST that passed the auth, body and model checks, else the refusal."""
        denied = check_auth(req)
        if denied is not None:
            return None, denied
        body, problem = json_body(req)
        if problem is not None:
            return None, problem
        assert body is not None
        unknown = check_model(body, known, default)
        if unknown is not None:
            return None, unknown
        return body, None

    # -- images ----------------------------------------------------------------------

    def image_problem(body: dict[str, Any]) -> str | None:
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
            return "n must be between 1 and 10"
        if body.get("response_format", "url") not in ("url", "b64_json"):
            return "response_format must be one of url, b64_json"
        v2 = body.get("model") == "grok-imagine-image-2.0"
        if body.get("aspect_ratio", "auto") not in (IMAGE_ASPECTS | {"21:9", "5:2"} if v2 else IMAGE_ASPECTS):
            return f"Invalid aspect_ratio {body.get('aspect_ratio')!r}"
        if body.get("resolution", "1k") not in ("1k", "2k"):
            return "resolution must be one of 1k, 2k"
        if body.get("quality") not in ((None, "low", "medium") if v2 else (None, "low", "medium", "high")):
            return "quality must be one of low, medium" + ("" if v2 else ", high")
        for unsupported in ("size", "style"):
            if body.get(unsupported) is not None:
                return f"Argument not supported: {unsupported}"
        return None

    @emu.route("POST", P, r"/images/generations", name=f"{P}.images")
    def images(req: EmuRequest) -> EmuResponse:
        body, refusal = accepted_body(req, IMAGE_MODELS, "grok-imagine-image")
        if refusal is not None:
            return refusal
        assert body is not None
        message = image_problem(body)
        if message is not None:
            return _bad_argument(message)
        flagged = req.take("moderation")
        if flagged is not None:
            reason = flagged.message or "Generated image rejected by content moderation."
            return EmuResponse.json_({"block_reason": reason, "data": []})
        width, height = _dimensions(body.get("aspect_ratio"), MAX_IMAGE_SIDE)
        items = []
        for index in range(body.get("n", 1)):
            data = emu.image_bytes(body["prompt"], width=width, height=height, image_format="jpeg", seed=index)
            item: dict[str, Any] = {"mime_type": "image/jpeg", "revised_prompt": f"A detailed rendering of {body['prompt']}"}
            if body.get("response_format") == "b64_json":
                item.update(url=None, b64_json=base64.b64encode(data).decode("ascii"))
            else:
                item.update(url=emu.host_media(data, "image/jpeg", provider=P), b64_json=None)
            items.append(item)
        return EmuResponse.json_({"block_reason": None, "data": items, "usage": {"cost_in_usd_ticks": 200000000}})

    # -- videos ------------------------------------------------------------------------

    def video_problem(body: dict[str, Any]) -> str | None:
        duration = body.get("duration", DEFAULT_VIDEO_SECONDS)
        if not isinstance(duration, int) or isinstance(duration, bool) or not 1 <= duration <= 15:
            return "duration must be an integer between 1 and 15"
        if body.get("aspect_ratio", "16:9") not in VIDEO_ASPECTS:
            return f"Invalid aspect_ratio {body.get('aspect_ratio')!r}"
        resolution = body.get("resolution", "480p")
        if resolution not in VIDEO_RESOLUTIONS:
            return "resolution must be one of 480p, 720p, 1080p"
        if resolution == "1080p" and (body.get("model") != "grok-imagine-video-1.5" or body.get("image") is not None):
            return "1080p is only supported for text-to-video on grok-imagine-video-1.5"
        if "generate_audio" in body and not isinstance(body["generate_audio"], bool):
            return "generate_audio must be a boolean"
        image = body.get("image")
        if image is not None and (not isinstance(image, dict) or not _is_media_url(image.get("url"), "image")):
            return "image.url must be an image URL or a base64 data URI"
        return None

    def start_video(req: EmuRequest, body: dict[str, Any], kind: str) -> EmuResponse:
        params = {"body": body, "kind": kind, "code": "internal_error"}
        moderation = req.take("moderation")
        failure = req.take("video_failure")
        expire = req.take("expire")
        job = emu.jobs.create(P, kind="video", params=params, faults=req.faults, job_id=str(uuid.uuid4()))
        if moderation is not None:
            job.params["blocked"] = True
        if failure is not None:
            job.params["code"] = failure.data.get("code", "internal_error")
            job.fail(failure.message or "Video generation failed")
        if expire is not None:
            job.params["expired"] = True
        return EmuResponse.json_({"request_id": job.id})

    @emu.route("POST", P, r"/videos/generations", name=f"{P}.videos")
    def videos(req: EmuRequest) -> EmuResponse:
        body, refusal = accepted_body(req, VIDEO_MODELS, "grok-imagine-video")
        if refusal is not None:
            return refusal
        assert body is not None
        message = video_problem(body)
        if message is not None:
            return _bad_argument(message)
        return start_video(req, body, "generation")

    @emu.route("POST", P, r"/videos/edits", name=f"{P}.video_edits")
    def video_edits(req: EmuRequest) -> EmuResponse:
        body, refusal = accepted_body(req, VIDEO_MODELS, "grok-imagine-video")
        if refusal is not None:
            return refusal
        assert body is not None
        video = body.get("video")
        if not isinstance(video, dict):
            return _unprocessable("missing field `video`")
        if not _is_media_url(video.get("url"), "video"):
            return _bad_argument("video.url must be a video URL or a base64 data URI")
        return start_video(req, body, "edit")

    def finished_video(job: Any) -> dict[str, Any]:
        body = job.params["body"]
        if job.params["kind"] == "edit":
            width, height = _dimensions("854:480", MAX_VIDEO_SIDE)  # edits keep the (shrunk) input shape
            seconds = 2
        else:
            width, height = _dimensions(body.get("aspect_ratio", "16:9"), MAX_VIDEO_SIDE)
            seconds = body.get("duration", DEFAULT_VIDEO_SECONDS)
        url = emu.host_video(body["prompt"], width=width, height=height, duration=float(seconds), provider=P)
        return {"url": url, "duration": seconds}

    @emu.route("GET", P, r"/videos/(?P<id>[^/]+)", name=f"{P}.video_status")
    def video_status(req: EmuRequest) -> EmuResponse:
        denied = check_auth(req)
        if denied is not None:
            return denied
        job = emu.jobs.get(req.params["id"] or "", poll=True)
        if job is None or job.provider != P:
            return _error(404, "Some requested entity was not found", "Deferred request not found")
        model = job.params["body"].get("model", "grok-imagine-video")
        current = job.state()
        if current in ("queued", "processing"):
            return EmuResponse.json_({"status": "pending", "progress": job.progress()})
        if job.params.get("expired"):
            return EmuResponse.json_({"status": "expired"})
        if current == "failed":
            return EmuResponse.json_({
                "status": "failed",
                "video": {"duration": 0, "respect_moderation": True},
                "model": "",
                "error": {"code": job.params["code"], "message": job.error_message},
            })  # fmt: skip
        if job.params.get("blocked"):
            return EmuResponse.json_({"status": "done", "video": {"duration": 0, "respect_moderation": False}, "model": model})
        result = job.result_once(lambda: finished_video(job))
        video = {"url": result["url"], "duration": result["duration"], "respect_moderation": True}
        return EmuResponse.json_({"status": "done", "video": video, "model": model})
