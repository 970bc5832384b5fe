"""Emulates Runway's developer API (``api.dev.runwayml.com``) under ``/runway``.

Task endpoints ``POST /v1/{text_to_video,image_to_video,video_to_video,text_to_image}``
answer ``{"id"}``; ``GET /v1/tasks/{id}`` reports PENDING/THROTTLED -> RUNNING (with
``progress`` 0..1) -> SUCCEEDED (``output`` URLs) | FAILED (``failure``,
``failureCode``) | CANCELLED; ``DELETE /v1/tasks/{id}`` cancels a running task or
deletes a finished one. Every call needs ``Authorization: Bearer <key>`` (else 401) and
``X-Runway-Version: 2024-11-06`` (missing or unknown -> 400, like the API).

Request bodies are validated per endpoint and model the way the API's schema does
(400 ``{"error", "issues": [{"path", "message"}]}``). Faults handed to handlers:
``moderation`` (task fails at once with ``SAFETY.INPUT.TEXT``), ``fail_job`` (fails
at the end with ``INTERNAL.BAD_OUTPUT.CODE01``), ``Fault.custom("task_failure",
message, code=...)`` (fails at the end with that code), ``Fault.custom("throttled")``
(queued phase reported as THROTTLED), ``slow_job``.

Result media are real: videos are H.264 MP4s of the requested duration and aspect
ratio, scaled down to a long side of at most 640 px to keep tests fast; images PNGs
scaled to at most 512 px.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, ProviderEmulator

P = "runway"
VERSION = "2024-11-06"
SEED_MAX = 4294967295
MAX_PROMPT = 1000
MAX_VIDEO_SIDE = 640
MAX_IMAGE_SIDE = 512

GEN4 = frozenset({"1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"})
VEO = frozenset({"1280:720", "720:1280", "1080:1920", "1920:1080"})
IMAGE = frozenset({
    "1024:1024", "1080:1080", "1168:880", "1360:768", "1440:1080", "1080:1440", "1808:768", "1920:1080",
    "1080:1920", "2112:912", "1280:720", "720:1280", "720:720", "960:720", "720:960", "1680:720",
})  # fmt: skip
TWO_TO_TEN = frozenset(range(2, 11))
VEO_SECONDS = frozenset({4, 6, 8})

CREDITS_PER_SECOND = 10
# endpoint -> model -> rules (as runwayml 5.24.0's request types describe them; veo3 and
# gen4_aleph are in none of them any more, so they are rejected as unknown models)
SPECS: dict[str, dict[str, dict[str, Any]]] = {
    "text_to_video": {
        "gen4.5": {"ratios": frozenset({"1280:720", "720:1280"}), "durations": TWO_TO_TEN, "duration_required": True},
        "veo3.1": {"ratios": VEO, "durations": VEO_SECONDS},
        "veo3.1_fast": {"ratios": VEO, "durations": VEO_SECONDS},
    },
    "image_to_video": {
        "gen4.5": {"ratios": GEN4, "durations": TWO_TO_TEN, "duration_required": True, "positions": {"first"}},
        "gen4_turbo": {"ratios": GEN4, "durations": TWO_TO_TEN, "prompt_optional": True, "positions": {"first"}},
        "veo3.1": {"ratios": VEO, "durations": VEO_SECONDS, "prompt_optional": True, "positions": {"first", "last"}},
        "veo3.1_fast": {"ratios": VEO, "durations": VEO_SECONDS, "prompt_optional": True, "positions": {"first", "last"}},
    },
    "video_to_video": {
        "aleph2": {"ratios": None, "prompt_optional": True},
    },
    "text_to_image": {
        "gen4_image": {"ratios": IMAGE, "references": (0, 3)},
        "gen4_image_turbo": {"ratios": IMAGE, "references": (1, 3)},
    },
}


def _issue(path: str, message: str) -> dict[str, Any]:
    return {"path": path.split(".") if path else [], "message": message}


def _validation_error(issues: list[dict[str, Any]]) -> EmuResponse:
    return EmuResponse.error(400, {"error": "Validation of body failed", "issues": issues})


def _is_asset_uri(value: Any, kind: str) -> bool:
    if not isinstance(value, str) or not value:
        return False
    return value.startswith(("https://", "runway://", f"data:{kind}/"))


def _check_prompt(body: dict[str, Any], rules: dict[str, Any]) -> list[dict[str, Any]]:
    prompt = body.get("promptText")
    if prompt is None:
        return [] if rules.get("prompt_optional") else [_issue("promptText", "Required")]
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT:
        return [_issue("promptText", f"Must be a non-empty string of at most {MAX_PROMPT} characters")]
    return []


def _check_common(body: dict[str, Any], rules: dict[str, Any]) -> list[dict[str, Any]]:
    issues = _check_prompt(body, rules)
    ratios = rules.get("ratios")
    if ratios is not None:
        if "ratio" not in body:
            issues.append(_issue("ratio", "Required"))
        elif body["ratio"] not in ratios:
            issues.append(_issue("ratio", f"Invalid enum value. Expected {' | '.join(sorted(ratios))}"))
    durations = rules.get("durations")
    if "duration" in body:
        value = body["duration"]
        if durations is None or not isinstance(value, int) or isinstance(value, bool) or value not in durations:
            allowed = ", ".join(map(str, sorted(durations))) if durations else "none"
            issues.append(_issue("duration", f"Invalid duration (allowed: {allowed})"))
    elif rules.get("duration_required"):
        issues.append(_issue("duration", "Required"))
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX):
        issues.append(_issue("seed", f"Must be an integer from 0 to {SEED_MAX}"))
    moderation = body.get("contentModeration")
    if moderation is not None and (
        not isinstance(moderation, dict) or moderation.get("publicFigureThreshold", "auto") not in ("auto", "low")
    ):
        issues.append(_issue("contentModeration.publicFigureThreshold", "Expected auto | low"))
    return issues


def _check_prompt_image(value: Any, positions: set[str]) -> list[dict[str, Any]]:
    if value is None:
        return [_issue("promptImage", "Required")]
    if isinstance(value, str):
        return [] if _is_asset_uri(value, "image") else [_issue("promptImage", "Must be an HTTPS URL, upload URI or data URI")]
    if not isinstance(value, list) or not value:
        return [_issue("promptImage", "Expected a URI or a non-empty array")]
    issues = []
    seen = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not _is_asset_uri(item.get("uri"), "image"):
            issues.append(_issue(f"promptImage.{index}.uri", "Must be an HTTPS URL, upload URI or data URI"))
            continue
        if item.get("position") not in positions:
            issues.append(_issue(f"promptImage.{index}.position", f"Expected {' | '.join(sorted(positions))}"))
        seen.append(item.get("position"))
    if "last" in seen and "first" not in seen:
        issues.append(_issue("promptImage", "A last frame requires a first frame"))
    if len(seen) != len(set(seen)):
        issues.append(_issue("promptImage", "Duplicate positions"))
    return issues


def validate(endpoint: str, body: Any) -> list[dict[str, Any]] | None:
    """The schema issues of a task request (None: the model is unknown for this endpoint)."""
    if not isinstance(body, dict):
        return [_issue("", "Expected a JSON object")]
    rules = SPECS[endpoint].get(body.get("model"))  # type: ignore[arg-type]
    if rules is None:
        return None
    issues = _check_common(body, rules)
    if endpoint == "image_to_video":
        issues += _check_prompt_image(body.get("promptImage"), rules["positions"])
    elif endpoint == "video_to_video":
        if not _is_asset_uri(body.get("videoUri"), "video"):
            issues.append(_issue("videoUri", "Required: an HTTPS URL, upload URI or data URI"))
        references = body.get("references") or []
        if len(references) > rules.get("max_references", 0):
            issues.append(_issue("references", f"At most {rules.get('max_references', 0)} reference(s)"))
        for index, ref in enumerate(references):
            if not isinstance(ref, dict) or ref.get("type") != "image" or not _is_asset_uri(ref.get("uri"), "image"):
                issues.append(_issue(f"references.{index}", "Expected {type: image, uri}"))
    elif endpoint == "text_to_image":
        references = body.get("referenceImages") or []
        low, high = rules["references"]
        if not low <= len(references) <= high:
            issues.append(_issue("referenceImages", f"Expected {low} to {high} reference images"))
        for index, ref in enumerate(references):
            if not isinstance(ref, dict) or not _is_asset_uri(ref.get("uri"), "image"):
                issues.append(_issue(f"referenceImages.{index}.uri", "Must be an HTTPS URL, upload URI or data URI"))
    return issues


def estimated_credits(endpoint: str, body: dict[str, Any]) -> float:
    """A made-up but stable price: per second of video, flat per image."""
    if endpoint == "text_to_image":
        return 8.0
    return float(CREDITS_PER_SECOND * int(body.get("duration") or 5))


def scaled(ratio: str | None, limit: int, default: tuple[int, int]) -> tuple[int, int]:
    """``W:H`` shrunk so the long side is at most ``limit`` (even sides, for H.264)."""
    try:
        width, height = (int(part) for part in str(ratio).split(":"))
    except ValueError:
        width, height = default
    factor = min(1.0, limit / max(width, height))
    return max(2, int(width * factor) // 2 * 2), max(2, int(height * factor) // 2 * 2)


def register(emu: ProviderEmulator) -> None:
    def state() -> dict[str, Any]:
        return emu.state(P)

    def check_headers(req: EmuRequest) -> EmuResponse | None:
        if not emu.key_matches(req, "Authorization", f"Bearer {emu.key_for(P)}"):
            return EmuResponse.error(401, {"error": "Unauthorized: invalid or missing API key"})
        version = req.headers.get("X-Runway-Version")
        if not version:
            return EmuResponse.error(400, {"error": "The X-Runway-Version header is required"})
        if version.strip() != VERSION:
            return EmuResponse.error(400, {"error": f"Unsupported X-Runway-Version: {version}"})
        return None

    @emu.route("GET", P, r"/v1/organization", name="runway.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (organization info, generates nothing)."""
        if (denied := check_headers(req)) is not None:
            return denied
        return EmuResponse.json_({"creditBalance": 1000, "tier": {"maxMonthlyCreditSpend": 10000, "models": {}},
                                  "usage": {"models": {}}})

    def create_task(req: EmuRequest, endpoint: str) -> EmuResponse:
        denied = check_headers(req)
        if denied is not None:
            return denied
        if req.json is None:
            return EmuResponse.error(400, {"error": "Request body must be JSON"})
        body = req.json
        issues = validate(endpoint, body)
        if issues is None:
            known = ", ".join(sorted(SPECS[endpoint]))
            return _validation_error([_issue("model", f"Invalid enum value. Expected {known}")])
        if issues:
            return _validation_error(issues)
        params: dict[str, Any] = {"endpoint": endpoint, "body": body, "failure_code": "INTERNAL.BAD_OUTPUT.CODE01"}
        if req.take("throttled") is not None:
            params["throttled"] = True
        failure = req.take("task_failure")
        moderation = req.take("moderation")
        job = emu.jobs.create(P, kind=endpoint, params=params, faults=req.faults, job_id=str(uuid.uuid4()))
        if failure is not None:
            job.params["failure_code"] = failure.data.get("code", "INTERNAL")
            job.fail(failure.message or "The task failed")
        if moderation is not None:
            job.params["failure_code"] = "SAFETY.INPUT.TEXT"
            job.fail(moderation.message or "Your prompt was flagged by our content moderation system", immediately=True)
        return EmuResponse.json_({"id": job.id, "estimatedCost": {"credits": estimated_credits(endpoint, body)}})

    for endpoint in SPECS:
        emu.add_route(
            "POST", P, rf"/v1/{endpoint}", lambda req, endpoint=endpoint: create_task(req, endpoint), name=f"{P}.{endpoint}"
        )

    def make_output(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        prompt = str(body.get("promptText") or "runway")
        if endpoint == "text_to_image":
            width, height = scaled(body.get("ratio"), MAX_IMAGE_SIDE, (1024, 1024))
            return {"output": [emu.host_image(prompt, width=width, height=height, provider=P)]}
        width, height = scaled(body.get("ratio"), MAX_VIDEO_SIDE, (1280, 720))
        duration = float(body.get("duration") or (2 if endpoint == "video_to_video" else 5))
        return {"output": [emu.host_video(prompt, width=width, height=height, duration=duration, provider=P)]}

    def task_view(job: Any) -> dict[str, Any]:
        """A task as the SDK's TaskRetrieveResponse union describes it: ``estimatedCost``
        while it runs, the final ``cost`` (whole credits; refunded to 0 when it did not
        succeed) once it has ended."""
        created = datetime.fromtimestamp(job.created_at, tz=timezone.utc).isoformat().replace("+00:00", "Z")
        view: dict[str, Any] = {"id": job.id, "createdAt": created}
        estimate = estimated_credits(job.params["endpoint"], job.params["body"])
        current = job.state()
        if current == "queued":
            view.update(status="THROTTLED" if job.params.get("throttled") else "PENDING", estimatedCost={"credits": estimate})
        elif current == "processing":
            view.update(status="RUNNING", progress=round(job.progress() / 100, 2), estimatedCost={"credits": estimate})
        elif current == "failed":
            view.update(status="FAILED", failure=job.error_message, failureCode=job.params["failure_code"],
                        cost={"credits": 0})
        elif current == "cancelled":
            view.update(status="CANCELLED", cost={"credits": 0})
        else:
            result = job.result_once(lambda: make_output(job.params["endpoint"], job.params["body"]))
            view.update(status="SUCCEEDED", output=list(result["output"]), cost={"credits": int(estimate)})
        return view

    def find(req: EmuRequest, poll: bool) -> Any:
        task_id = req.params["id"] or ""
        if task_id in state().setdefault("deleted", set()):
            return None
        job = emu.jobs.get(task_id, poll=poll)
        return job if job is not None and job.provider == P else None

    @emu.route("GET", P, r"/v1/tasks/(?P<id>[^/]+)", name=f"{P}.task")
    def get_task(req: EmuRequest) -> EmuResponse:
        denied = check_headers(req)
        if denied is not None:
            return denied
        job = find(req, poll=True)
        if job is None:
            return EmuResponse.error(404, {"error": "Task not found"})
        return EmuResponse.json_(task_view(job))

    @emu.route("DELETE", P, r"/v1/tasks/(?P<id>[^/]+)", name=f"{P}.cancel")
    def delete_task(req: EmuRequest) -> EmuResponse:
        denied = check_headers(req)
        if denied is not None:
            return denied
        job = find(req, poll=False)
        if job is None:
            return EmuResponse.error(404, {"error": "Task not found"})
        if not job.cancel():
            state()["deleted"].add(job.id)  # a finished task is deleted with its outputs
        return EmuResponse.empty(204)
