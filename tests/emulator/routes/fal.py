"""Emulates fal's queue API under /fal: submit to any ``owner/app[/sub...]`` endpoint,
then status, result and cancel under ``/{owner}/{app}/requests/{id}``.

Jobs run over the emulator's job duration (``IN_QUEUE`` -> ``IN_PROGRESS`` ->
``COMPLETED``). Results host real media: MP4 video, PNG/JPEG images (per
``output_format``), MP3/PCM/FLAC/WAV speech. Model inputs are checked the way
fal's schemas do it (422 with a ``detail`` list). Faults handled here:

- ``Fault.moderation(msg)``: the run ends ``COMPLETED`` with an ``error``; the
  result answers 422 with ``type: content_policy_violation``.
- ``Fault.fail_job(msg)``: ``COMPLETED`` with ``error``; the result answers 500.
- ``Fault.custom("nsfw")``: image results come back with every
  ``has_nsfw_concepts`` flag set (and black-ish images, as fal does).
- ``Fault.custom("infra", error_type=...)``: ``COMPLETED`` with ``error`` and
  ``error_type``; the result answers 503 with ``X-Fal-Error-Type``.
- ``Fault.slow_job(s)``: the run takes ``s`` seconds.

Video-to-video endpoints: ``.../extend-video`` and ``.../video-to-video/edit`` need
``video_url``; ``fal-ai/sora-2/video-to-video/remix`` needs the ``video_id`` of an earlier
Sora 2 result made with ``delete_video: false`` (fal deletes by default), else 422.
Status accepts ``logs=1`` (fal's docs) and ``logs=true`` (what fal-client sends).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, Job, ProviderEmulator

P = "fal"

_IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
_ASPECT_SIZES = {"16:9": (1024, 576), "9:16": (576, 1024), "1:1": (1024, 1024), "4:3": (1024, 768), "21:9": (1568, 672)}
# Small frames keep the emulator fast; the aspect ratio is what matters.
_VIDEO_FRAMES = {"16:9": (160, 90), "9:16": (90, 160), "1:1": (96, 96), "4:3": (128, 96), "21:9": (224, 96)}
_MINIMAX_RATES = (8000, 16000, 22050, 24000, 32000, 44100)
_MINIMAX_BITRATES = (32000, 64000, 128000, 256000)
_FRAME_FIELDS = ("image_url", "start_image_url")


def register(emu: ProviderEmulator) -> None:
    def base() -> str:
        return emu.url_for(P)

    def detail_error(status: int, items: list[dict[str, Any]], headers: dict[str, str] | None = None) -> EmuResponse:
        return EmuResponse.error(status, {"detail": items}, headers=headers)

    def denied(req: EmuRequest) -> EmuResponse | None:
        header = req.headers.get("Authorization")
        if header is None:
            return EmuResponse.error(401, {"detail": "Missing authorization header"})
        if not emu.key_matches(req, "Authorization", f"Key {emu.key_for(P)}"):
            return EmuResponse.error(401, {"detail": "No user found for Key ID and Secret"})
        return None

    @emu.route("GET", P, r"/models/pricing", name="fal.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check: fal's platform pricing API (api.fal.ai/v1), key required."""
        if (refused := denied(req)) is not None:
            return refused
        ids = [i for i in (req.query.get("endpoint_id") or "").split(",") if i]
        if not ids:
            return detail_error(422, [{"loc": ["query", "endpoint_id"], "msg": "Field required", "type": "missing"}])
        prices = [{"endpoint_id": i, "unit_price": 0.025, "unit": "image", "currency": "USD"} for i in ids]
        return EmuResponse.json_({"prices": prices, "next_cursor": None, "has_more": False})

    def request_urls(endpoint: str, request_id: str) -> dict[str, str]:
        app_url = f"{base()}/{_owner_app(endpoint)}/requests/{request_id}"
        return {"response_url": app_url, "status_url": f"{app_url}/status", "cancel_url": f"{app_url}/cancel"}

    def find_job(req: EmuRequest, *, poll: bool = False) -> Job | None:
        job = emu.jobs.get(req.params["id"] or "", poll=poll)
        if job is None or job.provider != P:
            return None
        if _owner_app(job.params["endpoint"]) != f"{req.params['owner']}/{req.params['app']}":
            return None
        return job

    def remixable() -> set[str]:
        return emu.state(P).setdefault("remixable_video_ids", set())

    def not_found() -> EmuResponse:
        return EmuResponse.error(404, {"detail": "Request not found"})

    # Specific routes first: the submit route below matches any path.

    @emu.route("GET", P, r"/(?P<owner>[^/]+)/(?P<app>[^/]+)/requests/(?P<id>[^/]+)/status", name="fal.status")
    def status(req: EmuRequest) -> EmuResponse:
        if (refusal := denied(req)) is not None:
            return refusal
        job = find_job(req, poll=True)
        if job is None:
            return not_found()
        state = job.state()
        urls = request_urls(job.params["endpoint"], job.id)
        body: dict[str, Any] = {"request_id": job.id, "response_url": urls["response_url"]}
        if state == "queued":
            body.update(status="IN_QUEUE", queue_position=0)
        elif state == "processing":
            body.update(status="IN_PROGRESS", logs=_logs(req, job))
        else:
            body.update(status="COMPLETED", logs=_logs(req, job), metrics={"inference_time": job.duration})
            failure = _failure(job)
            if failure is not None:
                body.update(error=failure["message"], error_type=failure.get("error_type"))
        return EmuResponse.json_(body)

    @emu.route("PUT", P, r"/(?P<owner>[^/]+)/(?P<app>[^/]+)/requests/(?P<id>[^/]+)/cancel", name="fal.cancel")
    def cancel(req: EmuRequest) -> EmuResponse:
        if (refusal := denied(req)) is not None:
            return refusal
        job = find_job(req)
        if job is None:
            return EmuResponse.error(404, {"status": "NOT_FOUND"})
        if not job.cancel():
            return EmuResponse.error(400, {"status": "ALREADY_COMPLETED"})
        return EmuResponse.json_({"status": "CANCELLATION_REQUESTED"}, status=202)

    @emu.route("GET", P, r"/(?P<owner>[^/]+)/(?P<app>[^/]+)/requests/(?P<id>[^/]+)", name="fal.result")
    def result(req: EmuRequest) -> EmuResponse:
        if (refusal := denied(req)) is not None:
            return refusal
        job = find_job(req)
        if job is None:
            return not_found()
        state = job.state()
        if state in ("queued", "processing"):
            return EmuResponse.error(400, {"detail": "Request is still in progress"})
        if state == "cancelled":
            return EmuResponse.error(400, {"detail": "Request was cancelled"})
        failure = _failure(job)
        if failure is not None:
            return failure_response(job, failure)
        return EmuResponse.json_(job.result_once(lambda: make_output(job)))

    def failure_response(job: Job, failure: dict[str, Any]) -> EmuResponse:
        if failure["kind"] == "moderation":
            field_name = _text_field(job.params["endpoint"], job.kind)
            item = {
                "loc": ["body", field_name],
                "msg": failure["message"],
                "type": "content_policy_violation",
                "input": job.params["input"].get(field_name),
                "ctx": {"extra_info": "flagged by the content checker"},
            }
            return detail_error(422, [item])
        if failure["kind"] == "infra":
            headers = {"X-Fal-Error-Type": failure["error_type"]}
            return EmuResponse.error(503, {"detail": failure["message"], "error_type": failure["error_type"]}, headers)
        return EmuResponse.error(500, {"detail": failure["message"]})

    @emu.route("POST", P, r"/(?P<endpoint>[^/]+/[^/]+(?:/[^/]+)*)", name="fal.submit")
    def submit(req: EmuRequest) -> EmuResponse:
        if (refusal := denied(req)) is not None:
            return refusal
        body = req.json
        if not isinstance(body, dict):
            return detail_error(
                422, [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
            )
        endpoint = req.params["endpoint"] or ""
        kind = _kind(endpoint)
        problems = _input_problems(endpoint, kind, body)
        if "remix" in endpoint.split("/") and body.get("video_id") and body["video_id"] not in remixable():
            # [I] the error shape; fal only says a deleted (delete_video=true) or foreign video cannot be remixed.
            problems.append({"loc": ["body", "video_id"], "msg": "Video not found or deleted; only Sora 2 videos "
                             "generated with delete_video=false can be remixed", "type": "value_error",
                             "input": body["video_id"]})
        if problems:
            return detail_error(422, problems)
        params: dict[str, Any] = {"endpoint": endpoint, "input": body, "query": dict(req.query)}
        if (flagged := req.take("moderation")) is not None:
            params["moderation"] = flagged.message or "The content could not be processed because it was flagged"
        if req.take("nsfw") is not None:
            params["nsfw"] = True
        if (infra := req.take("infra")) is not None:
            params["infra"] = {"message": infra.message or "Runner failed", "error_type": infra.data.get(
                "error_type", "runner_server_error")}
        job = emu.jobs.create(P, kind=kind, params=params, faults=req.faults, job_id=str(uuid.uuid4()))
        return EmuResponse.json_({"request_id": job.id, **request_urls(endpoint, job.id), "queue_position": 0})

    # -- outputs -----------------------------------------------------------------------

    def make_output(job: Job) -> dict[str, Any]:
        body = job.params["input"]
        endpoint = job.params["endpoint"]
        if job.kind == "video":
            return video_output(endpoint, body)
        if job.kind == "image":
            return image_output(endpoint, body, nsfw=bool(job.params.get("nsfw")))
        return speech_output(endpoint, body)

    def video_output(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        width, height = _VIDEO_FRAMES.get(str(body.get("aspect_ratio")), _VIDEO_FRAMES["16:9"])
        seconds = _video_seconds(body)
        url = emu.host_video(str(body.get("prompt", "fal video")), provider=P, width=width, height=height,
                             duration=seconds, fps=8, seed=int(body.get("seed") or 0))
        video = {"url": url, "content_type": "video/mp4", "file_name": "output.mp4",
                 "file_size": len(emu.media_bytes(url))}
        out: dict[str, Any] = {"video": video}
        if "seed" in body:
            out["seed"] = body["seed"]
        if "sora" in endpoint:
            out["video_id"] = f"video_{uuid.uuid4().hex[:24]}"
            if body.get("delete_video") is False:  # fal's default deletes the video after generation
                remixable().add(out["video_id"])
        return out

    def image_output(endpoint: str, body: dict[str, Any], *, nsfw: bool) -> dict[str, Any]:
        width, height = _image_dimensions(body)
        image_format = str(body.get("output_format") or ("png" if "recraft" in endpoint else "jpeg"))
        count = int(body.get("num_images") or 1)
        seed = int(body.get("seed") or 0)
        prompt = "" if nsfw else str(body.get("prompt", "fal image"))
        images = []
        for index in range(count):
            url = emu.host_image(prompt, provider=P, width=width, height=height, image_format=image_format,
                                 seed=seed + index)
            images.append({"url": url, "width": width, "height": height,
                           "content_type": "image/jpeg" if image_format == "jpeg" else f"image/{image_format}"})
        return {"images": images, "seed": seed, "prompt": body.get("prompt"),
                "has_nsfw_concepts": [nsfw] * count, "timings": {"inference": 0.1}}

    def speech_output(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        text = str(body.get(_text_field(endpoint, "tts")) or "")
        if "kokoro" in endpoint:
            clip = emu.audio_clip(text, audio_format="wav", sample_rate=24000)
        elif "minimax" in endpoint:
            setting = body.get("audio_setting") or {}
            fmt = str(setting.get("format", "mp3"))
            bitrate = setting.get("bitrate")
            clip = emu.audio_clip(text, audio_format=fmt, sample_rate=int(setting.get("sample_rate", 32000)),
                                  bitrate_kbps=int(bitrate) // 1000 if bitrate and fmt == "mp3" else None)
        else:
            clip = emu.audio_clip(text, audio_format="mp3", sample_rate=44100)
        url = emu.host_media(clip.data, clip.content_type, provider=P)
        audio = {"url": url, "content_type": clip.content_type, "file_name": f"speech.{clip.audio_format}",
                 "file_size": len(clip.data)}
        out: dict[str, Any] = {"audio": audio}
        if "minimax" in endpoint:
            out["duration_ms"] = int(round(clip.duration_seconds * 1000))
        return out


# -- request checks (fal's model schemas, in miniature) ---------------------------------------


def _owner_app(endpoint: str) -> str:
    return "/".join(endpoint.split("/")[:2])


def _kind(endpoint: str) -> str:
    if "speech" in endpoint or "/tts" in endpoint or "kokoro" in endpoint:
        return "tts"
    if "video" not in endpoint and any(word in endpoint for word in ("flux", "recraft", "image-to-image", "text-to-image")):
        return "image"
    return "video"


def _text_field(endpoint: str, kind: str) -> str:
    if kind != "tts":
        return "prompt"
    if "kokoro" in endpoint:
        return "prompt"
    if "minimax" in endpoint and not ("speech-02" in endpoint or "preview/speech" in endpoint):
        return "prompt"
    return "text"


def _missing(field_name: str) -> dict[str, Any]:
    return {"loc": ["body", field_name], "msg": "Field required", "type": "missing", "input": None}


def _not_one_of(field_name: str, value: Any, allowed: tuple[Any, ...]) -> dict[str, Any]:
    expected = ", ".join(repr(v) for v in allowed)
    return {"loc": ["body", field_name], "msg": f"Input should be {expected}", "type": "literal_error",
            "input": value, "ctx": {"expected": expected}}


def _bad_url(field_name: str, value: Any) -> dict[str, Any]:
    return {"loc": ["body", field_name], "msg": "Input should be a URL or a data URI", "type": "url_parsing",
            "input": str(value)[:40]}


def _enums(endpoint: str, kind: str) -> dict[str, tuple[Any, ...]]:
    if kind == "image":
        return {"output_format": ("jpeg", "png")} if "flux" in endpoint else {}
    if kind != "video":
        return {}
    if "video-to-video" in endpoint:  # remix / edit: the source video fixes the format
        return {}
    if endpoint.endswith("/extend-video"):
        return {"duration": ("7s",), "aspect_ratio": ("auto", "16:9", "9:16"), "resolution": ("720p", "1080p")}
    if endpoint.startswith("fal-ai/veo3"):
        resolutions = ("720p", "1080p", "4k") if endpoint.startswith("fal-ai/veo3.1") else ("720p", "1080p")
        return {"duration": ("4s", "6s", "8s"), "aspect_ratio": ("auto", "16:9", "9:16"), "resolution": resolutions}
    if endpoint.startswith("fal-ai/kling-video/v3"):
        return {"duration": tuple(str(s) for s in range(3, 16)), "aspect_ratio": ("16:9", "9:16", "1:1")}
    if endpoint.startswith("fal-ai/kling-video"):
        return {"duration": ("5", "10"), "aspect_ratio": ("16:9", "9:16", "1:1")}
    if endpoint.startswith("fal-ai/minimax"):
        return {"duration": ("6", "10"), "resolution": ("512P", "768P", "1080P")}
    if endpoint.startswith("fal-ai/wan-25-preview"):
        return {"duration": ("5", "10"), "resolution": ("480p", "720p", "1080p"),
                "aspect_ratio": ("16:9", "9:16", "1:1")}
    if endpoint.startswith("fal-ai/bytedance/seedance"):
        return {"duration": tuple(str(s) for s in range(2, 13)), "resolution": ("480p", "720p", "1080p"),
                "aspect_ratio": ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "auto")}
    if endpoint.startswith("fal-ai/sora-2"):
        return {"duration": (4, 8, 12, 16, 20), "aspect_ratio": ("auto", "16:9", "9:16"),
                "resolution": ("auto", "720p", "1080p")}
    return {}


def _is_media_ref(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(("http://", "https://")) or value.startswith("data:"))


def _input_problems(endpoint: str, kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    text_field = _text_field(endpoint, kind)
    if not isinstance(body.get(text_field), str) or not body[text_field].strip():
        problems.append(_missing(text_field))
    for field_name, allowed in _enums(endpoint, kind).items():
        if field_name in body and body[field_name] not in allowed:
            problems.append(_not_one_of(field_name, body[field_name], allowed))
    segments = endpoint.split("/")
    if "image-to-video" in segments and not any(name in body for name in _FRAME_FIELDS):
        problems.append(_missing("image_url"))
    if "first-last-frame-to-video" in segments:
        problems.extend(_missing(name) for name in ("first_frame_url", "last_frame_url") if name not in body)
    if "reference-to-video" in segments and not (body.get("image_urls") or body.get("reference_image_urls")):
        problems.append(_missing("image_urls"))
    if "image-to-image" in segments and "image_url" not in body:
        problems.append(_missing("image_url"))
    if ("extend-video" in segments or "edit" in segments) and "video_url" not in body:
        problems.append(_missing("video_url"))
    if "remix" in segments and not (isinstance(body.get("video_id"), str) and body["video_id"]):
        problems.append(_missing("video_id"))
    if "edit" in segments and "video-to-video" in segments:
        count = len(body.get("image_urls") or []) + len(body.get("elements") or [])
        if count > 4:
            problems.append({"loc": ["body", "image_urls"], "msg": "Maximum 4 total (elements + reference images)",
                             "type": "value_error", "input": count})
    for name, value in body.items():
        if name.endswith("_url") and not _is_media_ref(value):
            problems.append(_bad_url(name, value))
        if name.endswith("_urls") and (not isinstance(value, list) or not all(_is_media_ref(v) for v in value)):
            problems.append(_bad_url(name, value))
    if kind == "image":
        problems.extend(_image_problems(body))
    if kind == "tts" and "minimax" in endpoint:
        problems.extend(_minimax_audio_problems(body.get("audio_setting")))
    return problems


def _image_problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    problems = []
    size = body.get("image_size")
    if size is not None:
        explicit = isinstance(size, dict) and all(isinstance(size.get(k), int) and size[k] > 0 for k in ("width", "height"))
        if not explicit and size not in _IMAGE_SIZES:
            problems.append(_not_one_of("image_size", size, tuple(_IMAGE_SIZES)))
    count = body.get("num_images")
    if count is not None and (not isinstance(count, int) or not 1 <= count <= 4):
        problems.append({"loc": ["body", "num_images"], "msg": "Input should be between 1 and 4",
                         "type": "less_than_equal", "input": count})
    return problems


def _minimax_audio_problems(setting: Any) -> list[dict[str, Any]]:
    if setting is None:
        return []
    if not isinstance(setting, dict):
        return [{"loc": ["body", "audio_setting"], "msg": "Input should be an object", "type": "dict_type"}]
    checks = {"format": ("mp3", "pcm", "flac"), "sample_rate": _MINIMAX_RATES, "bitrate": _MINIMAX_BITRATES,
              "channel": (1, 2)}
    return [
        _not_one_of(f"audio_setting.{name}", setting[name], allowed)
        for name, allowed in checks.items()
        if name in setting and setting[name] not in allowed
    ]


# -- outputs: helpers ------------------------------------------------------------------------


def _video_seconds(body: dict[str, Any]) -> float:
    if isinstance(body.get("num_frames"), int):
        return max(1.0, (body["num_frames"] - 1) / 16)
    match = re.fullmatch(r"(\d+)s?", str(body.get("duration", "")))
    return float(match.group(1)) if match else 2.0


def _image_dimensions(body: dict[str, Any]) -> tuple[int, int]:
    size = body.get("image_size")
    if isinstance(size, dict):
        return int(size["width"]), int(size["height"])
    if isinstance(size, str) and size in _IMAGE_SIZES:
        return _IMAGE_SIZES[size]
    return _ASPECT_SIZES.get(str(body.get("aspect_ratio")), (1024, 768))


def _logs(req: EmuRequest, job: Job) -> list[dict[str, Any]]:
    # fal-client sends logs=true/false (httpx renders bools); fal's docs show logs=1.
    if str(req.query.get("logs", "")).lower() not in ("1", "true"):
        return []
    now = datetime.now(timezone.utc).isoformat()
    return [{"message": f"step {job.progress()}%", "level": "INFO", "source": "user", "timestamp": now}]


def _failure(job: Job) -> dict[str, Any] | None:
    """How a finished job failed, or None when it succeeded."""
    state = job.state()
    if state == "cancelled":
        return {"kind": "failed", "message": "Request was cancelled"}
    if state not in ("failed", "completed"):
        return None
    if job.params.get("moderation"):
        return {"kind": "moderation", "message": job.params["moderation"]}
    if job.params.get("infra"):
        return {"kind": "infra", **job.params["infra"]}
    if state == "failed":
        return {"kind": "failed", "message": job.error_message or "Generation failed"}
    return None
