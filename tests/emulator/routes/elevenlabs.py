"""Emulates ElevenLabs' speech API under /elevenlabs: text-to-speech and speech-to-speech.

Oracle: the official ``elevenlabs`` SDK 2.78.0 (``tests/conformance/test_elevenlabs.py``):
TTS ``POST /v1/text-to-speech/{voice_id}``, speech-to-speech (voice changer)
``POST /v1/voice-changer/{voice_id}``; the pre-2.x path ``/v1/speech-to-speech/{voice_id}``
is not served, so a client still using it fails here rather than in production.

Both endpoints answer synchronously with real audio in the requested
``output_format``. Error bodies follow ElevenLabs: ``{"detail": {...}}`` objects with
``status`` (legacy) / ``code`` / ``message`` / ``request_id``, and FastAPI-style
validation lists for 422 (``{loc, msg, type}`` items only: the SDK's ``ValidationError``
type declares nothing else).

Handler faults: ``Fault.moderation(msg)`` (400 ``content_against_policy``),
``Fault.custom("quota")`` (401 ``quota_exceeded``), ``Fault.custom("empty_audio")``
(200 with no body). Concurrency/busy 429s are injected with ``Fault.http``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, ProviderEmulator

P = "elevenlabs"

TTS_MODELS = frozenset(
    {
        "eleven_v3",
        "eleven_multilingual_v2",
        "eleven_flash_v2_5",
        "eleven_flash_v2",
        "eleven_turbo_v2_5",
        "eleven_turbo_v2",
    }
)
STS_MODELS = frozenset({"eleven_multilingual_sts_v2", "eleven_english_sts_v2"})

_PCM_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
OUTPUT_FORMATS: dict[str, tuple[str, int, int | None]] = {
    "mp3_22050_32": ("mp3", 22050, 32),
    "mp3_24000_48": ("mp3", 24000, 48),
    **{f"mp3_44100_{kbps}": ("mp3", 44100, kbps) for kbps in (32, 64, 96, 128, 192)},
    **{f"pcm_{rate}": ("pcm", rate, None) for rate in _PCM_RATES},
    **{f"wav_{rate}": ("wav", rate, None) for rate in _PCM_RATES},
    **{f"opus_48000_{kbps}": ("opus", 48000, kbps) for kbps in (32, 64, 96, 128, 192)},
    "ulaw_8000": ("ulaw", 8000, None),
    "alaw_8000": ("alaw", 8000, None),
}
"""Every ``output_format`` value the API accepts -> (codec for the media maker, rate, kbps)."""

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "opus": "audio/opus",
    "ulaw": "audio/basic",
    "alaw": "audio/alaw",
}
_UNIT_RANGE = {"stability": (0.0, 1.0), "similarity_boost": (0.0, 1.0), "style": (0.0, 1.0), "speed": (0.7, 1.2)}


def _request_id() -> str:
    return uuid.uuid4().hex


def detail_error(status: int, code: str, message: str, *, error_type: str = "invalid_request") -> EmuResponse:
    """An ElevenLabs error object (legacy ``status`` and current ``type``/``code`` fields)."""
    rid = _request_id()
    body = {"detail": {"type": error_type, "code": code, "status": code, "message": message, "request_id": rid}}
    return EmuResponse.error(status, body, headers={"request-id": rid})


def validation_error(loc: list[Any], error_type: str, msg: str, value: Any = None) -> EmuResponse:
    """A 422 in the FastAPI/pydantic shape ElevenLabs uses for request validation."""
    item: dict[str, Any] = {"type": error_type, "loc": loc, "msg": msg}
    if value is not None:
        item["msg"] = f"{msg} (got {value!r})"
    return EmuResponse.error(422, {"detail": [item]})


def check_output_format(value: str) -> EmuResponse | None:
    if value in OUTPUT_FORMATS:
        return None
    allowed = ", ".join(f"'{name}'" for name in OUTPUT_FORMATS)
    return validation_error(["query", "output_format"], "enum", f"Input should be {allowed}", value)


def check_voice_settings(settings: Any, loc: list[Any]) -> EmuResponse | None:
    if settings is None:
        return None
    if not isinstance(settings, dict):
        return validation_error(loc, "model_type", "Input should be a valid dictionary", settings)
    for key, (low, high) in _UNIT_RANGE.items():
        value = settings.get(key)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return validation_error([*loc, key], "float_type", "Input should be a valid number", value)
        if not low <= value <= high:
            return validation_error([*loc, key], "less_than_equal", f"Input should be between {low} and {high}", value)
    return None


def register(emu: ProviderEmulator) -> None:
    def authorise(req: EmuRequest) -> EmuResponse | None:
        if not emu.key_matches(req, "xi-api-key", emu.key_for(P)):
            return detail_error(401, "invalid_api_key", "Invalid API key", error_type="authentication_error")
        if (quota := req.take("quota")) is not None:
            return detail_error(
                401,
                "quota_exceeded",
                quota.message or "This request exceeds your quota of 10000. You have 0 credits remaining.",
                error_type="authentication_error",
            )
        return None

    @emu.route("GET", P, r"/v1/models", name="elevenlabs.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (lists models, generates nothing)."""
        if (denied := authorise(req)) is not None:
            return denied
        return EmuResponse.json_([
            {"model_id": m, "name": m, "can_do_text_to_speech": m in TTS_MODELS,
             "can_do_voice_conversion": m in STS_MODELS} for m in sorted(TTS_MODELS | STS_MODELS)])

    def audio_response(req: EmuRequest, text: str, output_format: str, duration: float | None = None) -> EmuResponse:
        rid = _request_id()
        if req.take("empty_audio") is not None:
            return EmuResponse.bytes_(b"", CONTENT_TYPES["mp3"], headers={"request-id": rid})
        codec, rate, kbps = OUTPUT_FORMATS[output_format]
        clip = emu.audio_clip(text, audio_format=codec, sample_rate=rate, bitrate_kbps=kbps, duration=duration)
        headers = {"request-id": rid, "history-item-id": uuid.uuid4().hex[:20], "character-cost": str(len(text))}
        return EmuResponse.bytes_(clip.data, CONTENT_TYPES[codec], headers=headers)

    def moderation(req: EmuRequest) -> EmuResponse | None:
        flagged = req.take("moderation")
        if flagged is None:
            return None
        return detail_error(
            400, "content_against_policy", flagged.message or "The text violates our Terms of Service."
        )

    @emu.route("POST", P, r"/v1/text-to-speech/(?P<voice_id>[^/]+)", name="elevenlabs.tts")
    def text_to_speech(req: EmuRequest) -> EmuResponse:
        if (denied := authorise(req)) is not None:
            return denied
        output_format = req.query.get("output_format", "mp3_44100_128")
        if (bad := check_output_format(output_format)) is not None:
            return bad
        body = req.json
        if not isinstance(body, dict):
            return validation_error(["body"], "missing", "Field required")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return validation_error(["body", "text"], "missing", "Field required")
        model = body.get("model_id", "eleven_multilingual_v2")
        if model in STS_MODELS:
            return detail_error(400, "model_can_not_do_text_to_speech", f"Model {model} cannot do text to speech")
        if (bad := check_voice_settings(body.get("voice_settings"), ["body", "voice_settings"])) is not None:
            return bad
        if (refused := moderation(req)) is not None:
            return refused
        return audio_response(req, text, output_format)

    @emu.route("POST", P, r"/v1/voice-changer/(?P<voice_id>[^/]+)", name="elevenlabs.sts")
    def speech_to_speech(req: EmuRequest) -> EmuResponse:
        if (denied := authorise(req)) is not None:
            return denied
        output_format = req.query.get("output_format", "mp3_44100_128")
        if (bad := check_output_format(output_format)) is not None:
            return bad
        upload = req.file("audio") if req.is_multipart else None
        if upload is None:
            return validation_error(["body", "audio"], "missing", "Field required")
        model = req.form.get("model_id", "eleven_english_sts_v2")
        if model in TTS_MODELS:
            return detail_error(400, "model_can_not_do_voice_conversion", f"Model {model} cannot do voice conversion")
        raw_settings = req.form.get("voice_settings")
        settings = None
        if raw_settings is not None:
            try:
                settings = json.loads(raw_settings)
            except ValueError:
                return validation_error(["body", "voice_settings"], "json_invalid", "Invalid JSON", raw_settings)
        if (bad := check_voice_settings(settings, ["body", "voice_settings"])) is not None:
            return bad
        if req.form.get("file_format") == "pcm_s16le_16":
            duration: float | None = len(upload.data) / 32000 or None  # 16-bit mono at 16 kHz
        else:
            duration = _probe_duration(upload.data)
        if duration is None:
            return detail_error(400, "invalid_audio", "The uploaded audio could not be decoded")
        if (refused := moderation(req)) is not None:
            return refused
        voice = req.params.get("voice_id") or ""
        return audio_response(req, f"converted to voice {voice}", output_format, duration=round(duration, 3))


def _probe_duration(data: bytes) -> float | None:
    from providers.media.probe import MediaProbeError, probe_media

    try:
        return probe_media(data).duration_seconds
    except MediaProbeError:
        return None
