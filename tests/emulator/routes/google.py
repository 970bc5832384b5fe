"""Emulates Google's media APIs under /google: the Gemini Developer API (``/v1beta/...``,
``x-goog-api-key``) and Vertex AI (``/v1/projects/{p}/locations/{l}/publishers/google/models/...``,
``Authorization: Bearer``).

Veo (``:predictLongRunning`` + operation polling), Imagen (``:predict``) and Gemini
image models (``:generateContent``) on both; the Gemini Files API download
(``/v1beta/files/{id}:download?alt=media``) for Veo results on the Gemini API.

Faults handled here: ``moderation`` (Veo: every video filtered, ``raiMediaFilteredCount``;
Imagen: ``raiFilteredReason``; Gemini: ``finishReason: IMAGE_SAFETY``, or
``promptFeedback.blockReason`` with ``Fault.custom("moderation", where="prompt")``),
``fail_job``/``slow_job`` (Veo operations), ``Fault.custom("no_image")`` (Gemini
``finishReason: NO_IMAGE``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, ProviderEmulator
from tests.emulator.jobs import Job

P = "google"
_GEMINI = r"/(?P<version>v1beta|v1alpha|v1)/models/(?P<model>[A-Za-z0-9._-]+)"
_VERTEX = (
    r"/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[A-Za-z0-9._-]+)"
)
_VEO_RATIOS = ("16:9", "9:16")
_VEO_RESOLUTIONS = ("720p", "1080p", "4k")
_VEO_VERTEX_ONLY = ("seed", "generateAudio", "storageUri", "fps", "pubsubTopic", "compressionQuality", "resizeMode")
_IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
_GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_IMAGE_SIZES = ("1K", "2K", "4K")
_IMAGE_MIMES = {"image/png": "png", "image/jpeg": "jpeg"}
# Small stand-ins for real output sizes keep the emulator fast.
_VIDEO_SIZES = {"720p": 180, "1080p": 270, "4k": 360}
_IMAGE_DIMS = {"1:1": (256, 256), "16:9": (320, 180), "9:16": (180, 320), "4:3": (320, 240), "3:4": (240, 320),
               "3:2": (300, 200), "2:3": (200, 300), "4:5": (240, 300), "5:4": (300, 240), "21:9": (420, 180)}


def google_error(status: int, grpc_status: str, message: str, details: list[dict[str, Any]] | None = None) -> EmuResponse:
    """Google's error envelope ``{"error": {code, message, status[, details]}}``."""
    error: dict[str, Any] = {"code": status, "message": message, "status": grpc_status}
    if details:
        error["details"] = details
    return EmuResponse.error(status, {"error": error})


def invalid(message: str) -> EmuResponse:
    return google_error(400, "INVALID_ARGUMENT", message)


def _b64_ok(value: Any) -> bool:
    """proto3 JSON bytes: standard or URL-safe base64, padded or not (google-genai sends URL-safe)."""
    if not isinstance(value, str) or not value:
        return False
    standard = value.replace("-", "+").replace("_", "/")
    try:
        base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _image_problem(field: str, image: Any, vertex: bool) -> str | None:
    if not isinstance(image, dict):
        return f"{field} must be an object"
    if image.get("gcsUri"):
        return None if vertex else f"{field}.gcsUri is not supported by the Gemini API"
    if not _b64_ok(image.get("bytesBase64Encoded")):
        return f"{field}.bytesBase64Encoded must be base64 image bytes"
    if not str(image.get("mimeType", "")).startswith("image/"):
        return f"{field}.mimeType must be an image type"
    return None


def veo_problem(model: str, body: Any, vertex: bool) -> str | None:
    """What the real API would reject in a predictLongRunning body (None = fine)."""
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or not body["instances"]:
        return "instances must be a non-empty list"
    instance = body["instances"][0]
    if not isinstance(instance, dict) or not (instance.get("prompt") or instance.get("image")):
        return "instances[0].prompt is required"
    for field in ("image", "lastFrame"):
        if field in instance and (problem := _image_problem(f"instances[0].{field}", instance[field], vertex)):
            return problem
    references = instance.get("referenceImages") or []
    if len(references) > 3:
        return "at most 3 referenceImages are supported"
    for i, ref in enumerate(references):
        # google-genai sends the enum value (ASSET/STYLE); Google's REST samples show lowercase.
        kind = str(ref.get("referenceType", "")).lower()
        if kind not in ("asset", "style"):
            return f"referenceImages[{i}].referenceType must be 'asset' or 'style'"
        if kind == "style" and not vertex:
            return "STYLE reference images are not supported by the Gemini API."
        if problem := _image_problem(f"referenceImages[{i}].image", ref.get("image"), vertex):
            return problem
    params = body.get("parameters") or {}
    if not vertex:
        for key in _VEO_VERTEX_ONLY:
            if key in params:
                return f"`{key}` isn't supported by this model on the Gemini API."
    durations = (5, 6, 7, 8) if model.startswith("veo-2") else (4, 6, 8)
    if "durationSeconds" in params and params["durationSeconds"] not in durations:
        return (f"Unsupported output video duration {params['durationSeconds']} seconds, "
                f"supported durations are {list(durations)} for feature text_to_video.")
    if "aspectRatio" in params and params["aspectRatio"] not in _VEO_RATIOS:
        return f"Unsupported aspect ratio: {params['aspectRatio']}"
    if "resolution" in params and params["resolution"] not in _VEO_RESOLUTIONS:
        return f"Unsupported resolution: {params['resolution']}"
    count = params.get("sampleCount", 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        return f"sampleCount must be between 1 and 4, got {count!r}"
    return None


def imagen_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or not body["instances"]:
        return "instances must be a non-empty list"
    if not (body["instances"][0] or {}).get("prompt"):
        return "instances[0].prompt is required"
    params = body.get("parameters") or {}
    count = params.get("sampleCount", 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        return f"sampleCount must be between 1 and 4, got {count!r}"
    if "aspectRatio" in params and params["aspectRatio"] not in _IMAGEN_RATIOS:
        return f"Unsupported aspect ratio: {params['aspectRatio']}"
    mime = (params.get("outputOptions") or {}).get("mimeType")
    if mime is not None and mime not in _IMAGE_MIMES:
        return f"Unsupported output mime type: {mime}"
    return None


def content_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
        return "* GenerateContentRequest.contents: contents is not specified"
    parts = (body["contents"][-1] or {}).get("parts")
    if not isinstance(parts, list) or not parts:
        return "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty."
    if not any(isinstance(p, dict) and p.get("text") for p in parts):
        return "* GenerateContentRequest.contents[0].parts: a text part is required"
    for i, part in enumerate(parts):
        inline = part.get("inlineData") if isinstance(part, dict) else None
        # proto3 JSON accepts the proto field name too: google-genai sends inlineData.mime_type.
        if inline is not None and (not _b64_ok(inline.get("data")) or not (inline.get("mimeType") or inline.get("mime_type"))):
            return f"* GenerateContentRequest.contents[0].parts[{i}].inline_data: invalid data or mime_type"
    config = (body.get("generationConfig") or {}).get("imageConfig") or {}
    if "aspectRatio" in config and config["aspectRatio"] not in _GEMINI_RATIOS:
        return f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: unsupported {config['aspectRatio']}"
    if "imageSize" in config and config["imageSize"] not in _IMAGE_SIZES:
        return f"* GenerateContentRequest.generation_config.image_config.image_size: unsupported {config['imageSize']}"
    return None


def register(emu: ProviderEmulator) -> None:
    def files() -> dict[str, bytes]:
        return emu.state(P).setdefault("files", {})

    def gemini_auth(req: EmuRequest) -> EmuResponse | None:
        key = req.headers.get("x-goog-api-key")
        if key is None:
            return google_error(
                403, "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key.strip() != emu.key_for(P):
            return google_error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                  "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}],
            )
        return None

    @emu.route("GET", P, r"/(?P<version>v1beta|v1alpha|v1)/models", name="google.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (Gemini API models.list, generates nothing)."""
        if (denied := gemini_auth(req)) is not None:
            return denied
        listed = ("veo-3.1-generate-preview", "veo-3.0-generate-001", "imagen-4.0-generate-001", "gemini-2.5-flash-image")
        return EmuResponse.json_({"models": [{"name": f"models/{m}", "version": "001", "displayName": m}
                                             for m in listed]})

    def vertex_auth(req: EmuRequest) -> EmuResponse | None:
        if emu.key_matches(req, "Authorization", f"Bearer {emu.key_for(P)}"):
            return None
        return google_error(
            401, "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential.",
        )

    def json_body(req: EmuRequest) -> EmuResponse | None:
        if req.content_type != "application/json":
            return invalid(f"Invalid content type {req.content_type or '(none)'}; expected application/json")
        return None

    # -- Veo ---------------------------------------------------------------------------------

    def start_veo(req: EmuRequest, vertex: bool) -> EmuResponse:
        denied = (vertex_auth if vertex else gemini_auth)(req) or json_body(req)
        if denied is not None:
            return denied
        model = req.params["model"] or ""
        if not model.startswith("veo-"):
            return google_error(404, "NOT_FOUND", f"models/{model} is not found for predictLongRunning.")
        if problem := veo_problem(model, req.json, vertex):
            return invalid(problem)
        flagged = req.take("moderation")
        job_id = uuid.uuid4().hex[:12]
        if vertex:
            name = (f"projects/{req.params['project']}/locations/{req.params['location']}/publishers/google"
                    f"/models/{model}/operations/{job_id}")
        else:
            name = f"models/{model}/operations/{job_id}"
        params = dict(req.json["parameters"] if isinstance(req.json.get("parameters"), dict) else {})
        job = emu.jobs.create(
            P, kind="video", faults=req.faults, job_id=job_id,
            params={"name": name, "model": model, "vertex": vertex, "prompt": req.json["instances"][0].get("prompt", ""),
                    "parameters": params, "moderation": flagged.message if flagged else None},
        )
        return EmuResponse.json_({"name": job.params["name"]})

    def video_for(job: Job, index: int) -> bytes:
        params = job.params["parameters"]
        short = _VIDEO_SIZES.get(params.get("resolution", "720p"), 180)
        long_side = -(-short * 16 // 9) // 2 * 2
        width, height = (short, long_side) if params.get("aspectRatio") == "9:16" else (long_side, short)
        return emu.video_bytes(job.params["prompt"] or "veo", width=width, height=height,
                               duration=float(params.get("durationSeconds", 8)), fps=12, seed=index)

    def veo_result(job: Job) -> dict[str, Any]:
        params, vertex = job.params["parameters"], job.params["vertex"]
        if job.params["moderation"] is not None:
            filtered = {"raiMediaFilteredCount": params.get("sampleCount", 1),
                        "raiMediaFilteredReasons": [job.params["moderation"]]}
            if vertex:
                return {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse", **filtered}
            return {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                    "generateVideoResponse": filtered}
        count = params.get("sampleCount", 1)
        if vertex:
            storage = params.get("storageUri")
            if storage:
                videos = [{"gcsUri": f"{storage.rstrip('/')}/{job.id}/sample_{i}.mp4", "mimeType": "video/mp4"}
                          for i in range(count)]
            else:
                videos = [{"bytesBase64Encoded": base64.b64encode(video_for(job, i)).decode(), "mimeType": "video/mp4"}
                          for i in range(count)]
            return {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse", "videos": videos}
        samples = []
        for i in range(count):
            file_id = f"{job.id}{i}"
            files()[file_id] = video_for(job, i)
            samples.append({"video": {"uri": f"{emu.url_for(P)}/v1beta/files/{file_id}:download?alt=media"}})
        return {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": {"generatedSamples": samples}}

    def operation_body(job: Job) -> dict[str, Any]:
        state = job.state()
        out: dict[str, Any] = {"name": job.params["name"]}  # proto3 JSON omits done=false
        if state == "failed":
            out.update(done=True, error={"code": 13, "message": job.error_message or "Internal error"})
        elif state == "completed":
            out.update(done=True, response=job.result_once(lambda: {"response": veo_result(job)})["response"])
        return out

    @emu.route("POST", P, _GEMINI + r":predictLongRunning", name="google.predict_long_running")
    def predict_long_running(req: EmuRequest) -> EmuResponse:
        return start_veo(req, vertex=False)

    @emu.route("GET", P, _GEMINI + r"/operations/(?P<op>[A-Za-z0-9_-]+)", name="google.get_operation")
    def get_operation(req: EmuRequest) -> EmuResponse:
        if (denied := gemini_auth(req)) is not None:
            return denied
        job = emu.jobs.get(req.params["op"] or "", poll=True)
        if job is None or job.params.get("vertex") or job.params["model"] != req.params["model"]:
            return google_error(404, "NOT_FOUND", f"Operation {req.path} not found.")
        return EmuResponse.json_(operation_body(job))

    @emu.route("GET", P, r"/(?P<version>v1beta|v1alpha|v1)/files/(?P<file>[A-Za-z0-9_-]+):download",
               name="google.download_file")
    def download_file(req: EmuRequest) -> EmuResponse:
        if (denied := gemini_auth(req)) is not None:
            return denied
        if req.query.get("alt") != "media":
            return invalid("files download needs alt=media")
        data = files().get(req.params["file"] or "")
        if data is None:
            return google_error(404, "NOT_FOUND", "File not found.")
        return EmuResponse.bytes_(data, "video/mp4")

    @emu.route("POST", P, _VERTEX + r":predictLongRunning", name="google.vertex_predict_long_running")
    def vertex_predict_long_running(req: EmuRequest) -> EmuResponse:
        return start_veo(req, vertex=True)

    @emu.route("POST", P, _VERTEX + r":fetchPredictOperation", name="google.vertex_fetch_operation")
    def vertex_fetch_operation(req: EmuRequest) -> EmuResponse:
        denied = vertex_auth(req) or json_body(req)
        if denied is not None:
            return denied
        name = (req.json or {}).get("operationName")
        if not isinstance(name, str) or not name:
            return invalid("operationName is required")
        job = emu.jobs.get(name.rsplit("/", 1)[-1], poll=True)
        if job is None or job.params["name"] != name or job.params["model"] != req.params["model"]:
            return google_error(404, "NOT_FOUND", f"Operation {name} not found.")
        return EmuResponse.json_(operation_body(job))

    # -- Imagen ----------------------------------------------------------------------------------

    def imagen(req: EmuRequest, vertex: bool) -> EmuResponse:
        denied = (vertex_auth if vertex else gemini_auth)(req) or json_body(req)
        if denied is not None:
            return denied
        if not (req.params["model"] or "").startswith("imagen-"):
            return google_error(404, "NOT_FOUND", f"models/{req.params['model']} is not found for predict.")
        if problem := imagen_problem(req.json):
            return invalid(problem)
        params = req.json.get("parameters") or {}
        if (flagged := req.take("moderation")) is not None:
            if not params.get("includeRaiReason"):
                return EmuResponse.json_({})
            return EmuResponse.json_({"predictions": [{"raiFilteredReason": flagged.message}]})
        mime = (params.get("outputOptions") or {}).get("mimeType", "image/png")
        width, height = _IMAGE_DIMS.get(params.get("aspectRatio", "1:1"), (256, 256))
        prompt = req.json["instances"][0]["prompt"]
        predictions = []
        for i in range(params.get("sampleCount", 1)):
            data = emu.image_bytes(prompt, width=width, height=height, image_format=_IMAGE_MIMES[mime], seed=i)
            predictions.append({"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": mime})
        return EmuResponse.json_({"predictions": predictions})

    @emu.route("POST", P, _GEMINI + r":predict", name="google.predict")
    def predict(req: EmuRequest) -> EmuResponse:
        return imagen(req, vertex=False)

    @emu.route("POST", P, _VERTEX + r":predict", name="google.vertex_predict")
    def vertex_predict(req: EmuRequest) -> EmuResponse:
        return imagen(req, vertex=True)

    # -- Gemini image models ---------------------------------------------------------------------------

    def generate(req: EmuRequest, vertex: bool) -> EmuResponse:
        denied = (vertex_auth if vertex else gemini_auth)(req) or json_body(req)
        if denied is not None:
            return denied
        if problem := content_problem(req.json):
            return invalid(problem)
        model = req.params["model"] or ""
        common = {"modelVersion": model, "responseId": uuid.uuid4().hex[:20],
                  "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}}
        if (flagged := req.take("moderation")) is not None:
            if flagged.data.get("where") == "prompt":
                return EmuResponse.json_({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, **common})
            candidate = {"finishReason": "IMAGE_SAFETY", "finishMessage": flagged.message, "index": 0}
            return EmuResponse.json_({"candidates": [candidate], **common})
        if req.take("no_image") is not None:
            candidate = {"content": {"role": "model", "parts": [{"text": "I can't draw that."}]},
                         "finishReason": "NO_IMAGE", "index": 0}
            return EmuResponse.json_({"candidates": [candidate], **common})
        generation = req.json.get("generationConfig") or {}
        parts: list[dict[str, Any]] = [{"text": "Here is the image you asked for."}]
        if "IMAGE" in (generation.get("responseModalities") or ["TEXT"]):
            config = generation.get("imageConfig") or {}
            width, height = _IMAGE_DIMS.get(config.get("aspectRatio", "1:1"), (256, 256))
            prompt = next(p["text"] for p in req.json["contents"][-1]["parts"] if p.get("text"))
            data = emu.image_bytes(prompt, width=width, height=height)
            parts.append({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}})
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        return EmuResponse.json_({"candidates": [candidate], **common})

    @emu.route("POST", P, _GEMINI + r":generateContent", name="google.generate_content")
    def generate_content(req: EmuRequest) -> EmuResponse:
        return generate(req, vertex=False)

    @emu.route("POST", P, _VERTEX + r":generateContent", name="google.vertex_generate_content")
    def vertex_generate_content(req: EmuRequest) -> EmuResponse:
        return generate(req, vertex=True)
