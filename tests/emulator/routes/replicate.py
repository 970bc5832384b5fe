"""Emulates Replicate's predictions API under /replicate.

The prefix stands for ``https://api.replicate.com/v1``: point ``base_url`` at
``emu.url_for("replicate")``. Every path also answers with a leading ``/v1``, which is
how the official ``replicate`` SDK calls it (its base URL is the host, its paths start
with ``/v1``); tests/conformance/test_replicate.py checks the answers against the SDK's
``Prediction`` type. Predictions are created through an official model
(``POST /models/{owner}/{name}/predictions``), a version (``POST /predictions``
with ``version``) or a deployment (``POST /deployments/{owner}/{name}/predictions``);
``Prefer: wait[=N]`` holds the create request until the job finishes or N seconds
(60 by default) pass. ``GET /predictions/{id}`` polls and
``POST /predictions/{id}/cancel`` cancels.

The kind of output follows the model name (video families, ``*speech*``/``*tts*``
for audio, otherwise images; for a bare version or a deployment the input's fields
decide; tests may name a version's model in ``emu.state("replicate")["versions"]``,
a dict version id -> ``owner/name``). Outputs are hosted media URLs: a string, or a list for flux schnell/dev
and any input carrying ``num_outputs``. A ``moderation`` fault makes the prediction
fail with Replicate's E005 text; ``fail_job`` / ``slow_job`` faults apply as usual.
"""

from __future__ import annotations

import random
import re
import time
from datetime import datetime, timezone
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, Fault, Job, ProviderEmulator

P = "replicate"
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
MAX_WAIT = 60.0
E005 = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
STATUS = {"queued": "starting", "processing": "processing", "completed": "succeeded", "failed": "failed",
          "cancelled": "canceled"}
VIDEO_HINTS = ("veo", "kling", "video", "hailuo", "wan-", "seedance", "pixverse")
AUDIO_HINTS = ("speech", "tts", "kokoro", "voice")
LIST_OUTPUT_MODELS = ("black-forest-labs/flux-schnell", "black-forest-labs/flux-dev")
VERSION_RE = re.compile(r"^[0-9a-f]{64}$")
SIZES = {"16:9": (320, 180), "9:16": (180, 320), "1:1": (240, 240), "21:9": (336, 144), "4:3": (256, 192)}
IMAGE_FORMATS = {"webp": "webp", "png": "png", "jpg": "jpeg", "jpeg": "jpeg"}


def register(emu: ProviderEmulator) -> None:
    def problem(status: int, title: str, detail: str, **extra: Any) -> EmuResponse:
        body = {"type": f"https://replicate.com/docs/reference/http#{status}", "title": title,
                "status": status, "detail": detail, **extra}
        return EmuResponse.error(status, body)

    def denied(req: EmuRequest) -> EmuResponse | None:
        key = emu.key_for(P)
        if emu.key_matches(req, "Authorization", f"Bearer {key}") or emu.key_matches(
                req, "Authorization", f"Token {key}"):
            return None
        return problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    @emu.route("GET", P, r"/account", name="replicate.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (account.get, generates nothing)."""
        if (refused := denied(req)) is not None:
            return refused
        return EmuResponse.json_({"type": "user", "username": "emulated", "name": "Emulated", "github_url": None})

    def base() -> str:
        return emu.url_for(P)

    def create(req: EmuRequest, model: str | None, version: str | None, deployment: str | None) -> EmuResponse:
        if (refused := denied(req)) is not None:
            return refused
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return problem(422, "Input validation failed", "- input: input is required",
                           invalid_fields=[{"type": "required", "field": "input", "description": "input is required"}])
        inputs = body["input"]
        if not inputs.get("prompt") and not inputs.get("text"):
            return problem(422, "Input validation failed", "- input: prompt is required",
                           invalid_fields=[{"type": "required", "field": "input.prompt",
                                            "description": "prompt is required"}])
        flagged = req.take("moderation")
        job = emu.jobs.create(P, kind=output_kind(model, inputs), faults=req.faults, job_id=new_id(),
                              params={"model": model, "version": version, "deployment": deployment,
                                      "input": inputs})
        if flagged is not None:
            custom = flagged.message and flagged.message != Fault.moderation().message
            job.fail(flagged.message if custom else E005)
        hold(job, prefer_wait(req.headers.get("Prefer")))
        return EmuResponse.json_(prediction(job), status=201, headers={"Location": f"{base()}/predictions/{job.id}"})

    def hold(job: Job, wait: float) -> None:
        ends = time.monotonic() + wait
        while wait > 0 and not job.is_terminal and time.monotonic() < ends:
            time.sleep(min(0.01, max(ends - time.monotonic(), 0.0)))

    def prediction(job: Job) -> dict[str, Any]:
        state = job.state()
        status = STATUS[state]
        params = job.params
        out: dict[str, Any] = {
            "id": job.id,
            "model": params["model"] or "",
            "version": params["version"] or "hidden",
            "input": params["input"],
            "logs": progress_logs(job.progress()) if state in ("processing", "completed") else "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": status,
            "source": "api",
            "created_at": iso(job.created_at),
            "urls": {
                "get": f"{base()}/predictions/{job.id}",
                "cancel": f"{base()}/predictions/{job.id}/cancel",
                "stream": f"{base()}/stream/{job.id}",
                "web": f"https://replicate.com/p/{job.id}",
            },
        }
        if params["deployment"]:
            out["deployment"] = params["deployment"]
        if state != "queued":
            out["started_at"] = iso(job.created_at + job.duration * 0.2)
        if state == "completed":
            out["output"] = job.result_once(lambda: {"output": make_output(job)})["output"]
        if state == "failed":
            out["error"] = job.error_message or "Prediction failed"
        if job.is_terminal:
            out["completed_at"] = iso(job.created_at + job.duration)
            out["metrics"] = {"predict_time": round(job.duration * 0.8, 3), "total_time": round(job.duration, 3)}
        return out

    def make_output(job: Job) -> Any:
        inputs = job.params["input"]
        model = job.params["model"] or ""
        if job.kind == "video":
            width, height = SIZES.get(str(inputs.get("aspect_ratio")), SIZES["16:9"])
            seconds = float(inputs.get("duration") or 2)
            return emu.host_video(str(inputs.get("prompt")), provider=P, width=width, height=height,
                                  duration=seconds, fps=12)
        if job.kind == "audio":
            audio_format = str(inputs.get("audio_format") or "mp3")
            return emu.host_audio(str(inputs.get("text") or inputs.get("prompt")), provider=P,
                                  audio_format=audio_format, duration=1.0)
        width, height = SIZES.get(str(inputs.get("aspect_ratio")), SIZES["1:1"])
        image_format = IMAGE_FORMATS.get(str(inputs.get("output_format") or "webp"), "webp")
        count = int(inputs.get("num_outputs") or 1)
        urls = [emu.host_image(str(inputs.get("prompt")), provider=P, width=width, height=height,
                               image_format=image_format, seed=index) for index in range(count)]
        if model.startswith(LIST_OUTPUT_MODELS) or "num_outputs" in inputs:
            return urls
        return urls[0]

    @emu.route("POST", P, r"(?:/v1)?/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions", name="replicate.create_model")
    def create_model(req: EmuRequest) -> EmuResponse:
        return create(req, f"{req.params['owner']}/{req.params['name']}", None, None)

    @emu.route("POST", P, r"(?:/v1)?/predictions", name="replicate.create_version")
    def create_version(req: EmuRequest) -> EmuResponse:
        if (refused := denied(req)) is not None:
            return refused
        version = (req.json or {}).get("version") if isinstance(req.json, dict) else None
        if not isinstance(version, str) or not VERSION_RE.match(version.rpartition(":")[2]):
            return problem(422, "Invalid version or not permitted",
                           "The specified version does not exist (or perhaps you don't have permission to use it?)")
        version_id = version.rpartition(":")[2]
        model = version.rpartition(":")[0] or emu.state(P).get("versions", {}).get(version_id)
        return create(req, model, version_id, None)

    @emu.route("POST", P, r"(?:/v1)?/deployments/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions",
               name="replicate.create_deployment")
    def create_deployment(req: EmuRequest) -> EmuResponse:
        return create(req, None, None, f"{req.params['owner']}/{req.params['name']}")

    @emu.route("POST", P, r"(?:/v1)?/predictions/(?P<id>[0-9a-z]+)/cancel", name="replicate.cancel")
    def cancel(req: EmuRequest) -> EmuResponse:
        if (refused := denied(req)) is not None:
            return refused
        job = emu.jobs.get(req.params["id"] or "")
        if job is None or job.provider != P:
            return problem(404, "Not found", "Not found.")
        job.cancel()
        return EmuResponse.json_(prediction(job))

    @emu.route("GET", P, r"(?:/v1)?/predictions/(?P<id>[0-9a-z]+)", name="replicate.get")
    def get(req: EmuRequest) -> EmuResponse:
        if (refused := denied(req)) is not None:
            return refused
        job = emu.jobs.get(req.params["id"] or "", poll=True)
        if job is None or job.provider != P:
            return problem(404, "Not found", "Not found.")
        return EmuResponse.json_(prediction(job))


def prefer_wait(header: str | None) -> float:
    """Seconds asked for by ``Prefer: wait`` / ``Prefer: wait=N`` (0 when absent)."""
    for preference in (header or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                return min(float(value), MAX_WAIT) if value.strip() else MAX_WAIT
            except ValueError:
                return MAX_WAIT
    return 0.0


def output_kind(model: str | None, inputs: dict[str, Any]) -> str:
    name = (model or "").lower()
    if any(hint in name for hint in AUDIO_HINTS):
        return "audio"
    if any(hint in name for hint in VIDEO_HINTS):
        return "video"
    if name:
        return "image"
    if "text" in inputs and "prompt" not in inputs:
        return "audio"
    if {"duration", "start_image", "first_frame_image"} & set(inputs):
        return "video"
    return "image"


def progress_logs(percent: int) -> str:
    lines = ["Using seed: 42"]
    for step in sorted({0, percent // 2, percent}):
        bar = "#" * (step // 10)
        lines.append(f"{step:3d}%|{bar:<10}| {step}/100")
    return "\n".join(lines)


def new_id() -> str:
    return "".join(random.choice(ID_ALPHABET) for _ in range(26))


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat().replace("+00:00", "Z")
