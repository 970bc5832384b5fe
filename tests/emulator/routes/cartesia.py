"""Emulates Cartesia's speech API under /cartesia: ``/tts/bytes`` and ``/voice-changer/bytes``.

Both endpoints answer synchronously with real audio in the requested
``output_format`` (container raw/wav/mp3, every documented encoding and rate).
Errors follow the ``Cartesia-Version`` sent: from ``2026-03-01`` JSON
``{error_code, title, message, request_id}``, before that plain text ``Title: Message``.

Oracle: the official ``cartesia`` SDK 4.2.0 (``tests/conformance/test_cartesia.py``).
The TTS ``voice`` follows the version too: from ``2026-08-14`` (the SDK's default) an id
string or ``{"id": ...}`` (further keys allowed, as the SDK's type allows them; embeddings
refused); before it an id string or ``{"mode": "id", "id": ...}``.

Handler faults: ``Fault.moderation(msg)`` (400 ``content_policy_violation``),
``Fault.custom("quota")`` (402 ``insufficient_credits``), ``Fault.custom("empty_audio")``
(200 with no body). 429 ``concurrency_limited`` is injected with ``Fault.http``.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, ProviderEmulator

P = "cartesia"

VERSIONS = ("2024-06-10", "2024-11-13", "2025-04-16", "2025-11-04", "2026-03-01", "2026-08-14")
JSON_ERRORS_SINCE = "2026-03-01"
ID_ONLY_VOICE_SINCE = "2026-08-14"
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
ENCODINGS = ("pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw")
MP3_BIT_RATES = (32000, 64000, 96000, 128000, 192000)
SUNSET_MODELS = frozenset(
    {"sonic", "sonic-english", "sonic-multilingual", "sonic-2-2025-03-07", "sonic-turbo-2025-03-07"}
)
_RANGES = {"speed": (0.6, 1.5), "volume": (0.5, 2.0)}
_WAV_TAGS = {"pcm_s16le": (1, 16), "pcm_f32le": (3, 32), "pcm_alaw": (6, 8), "pcm_mulaw": (7, 8)}


def error(req: EmuRequest, status: int, code: str | None, title: str, message: str) -> EmuResponse:
    """Cartesia's error in the shape the request's API version gets."""
    rid = str(uuid.uuid4())
    version = req.headers.get("Cartesia-Version") or ""
    if version >= JSON_ERRORS_SINCE:
        body = {"error_code": code, "title": title, "message": message, "request_id": rid}
        return EmuResponse.error(status, body, headers={"x-request-id": rid})
    return EmuResponse.text_(f"{title}: {message}", status=status, headers={"x-request-id": rid})


def voice_problem(voice: Any, version: str) -> str | None:
    """Why ``voice`` is not a voice specifier under API ``version``, or None."""
    if isinstance(voice, str) and voice:
        return None
    has_id = isinstance(voice, dict) and isinstance(voice.get("id"), str) and bool(voice["id"])
    if version >= ID_ONLY_VOICE_SINCE:
        if has_id and voice.get("mode", "id") == "id":
            return None
        return 'voice must be a voice id or {"id": "<voice id>"} (embeddings are not accepted in this API version)'
    if has_id and voice.get("mode") == "id":
        return None
    return f'voice must be {{"mode": "id", "id": "<voice id>"}} in API version {version}'


def output_format_problem(fmt: Any) -> str | None:
    """Why ``fmt`` is not a valid output_format object, or None."""
    if not isinstance(fmt, dict):
        return "output_format is required"
    container = fmt.get("container")
    if container not in ("raw", "wav", "mp3"):
        return f"output_format.container must be one of raw, wav, mp3 (got {container!r})"
    rate = _as_int(fmt.get("sample_rate"))
    if rate not in SAMPLE_RATES:
        allowed = ", ".join(map(str, SAMPLE_RATES))
        return f"output_format.sample_rate must be one of {allowed} (got {fmt.get('sample_rate')!r})"
    if container == "mp3":
        bit_rate = _as_int(fmt.get("bit_rate"))
        if bit_rate not in MP3_BIT_RATES:
            allowed = ", ".join(map(str, MP3_BIT_RATES))
            return f"output_format.bit_rate must be one of {allowed} for mp3 (got {fmt.get('bit_rate')!r})"
    elif fmt.get("encoding") not in ENCODINGS:
        allowed = ", ".join(ENCODINGS)
        return f"output_format.encoding must be one of {allowed} for {container} (got {fmt.get('encoding')!r})"
    return None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def render(emu: ProviderEmulator, text: str, fmt: dict[str, Any], duration: float | None = None) -> tuple[bytes, str]:
    """Audio bytes and content type for a validated output_format."""
    rate = int(fmt["sample_rate"])
    if fmt["container"] == "mp3":
        clip = emu.audio_clip(text, audio_format="mp3", sample_rate=rate, bitrate_kbps=int(fmt["bit_rate"]) // 1000,
                              duration=duration)
        return clip.data, "audio/mpeg"
    encoding = fmt["encoding"]
    if encoding in ("pcm_mulaw", "pcm_alaw"):
        payload = emu.audio_clip(text, audio_format="ulaw" if encoding == "pcm_mulaw" else "alaw", sample_rate=rate,
                                 duration=duration).data
    else:
        payload = emu.audio_clip(text, audio_format="pcm", sample_rate=rate, duration=duration).data
        if encoding == "pcm_f32le":
            payload = _s16_to_f32(payload)
    if fmt["container"] == "raw":
        return payload, "application/octet-stream"
    return _wav(payload, rate, encoding), "audio/wav"


def _s16_to_f32(payload: bytes) -> bytes:
    import numpy as np

    return (np.frombuffer(payload, dtype="<i2").astype("<f4") / 32768.0).tobytes()


def _wav(payload: bytes, rate: int, encoding: str) -> bytes:
    tag, bits = _WAV_TAGS[encoding]
    block = bits // 8
    fmt_chunk = struct.pack("<HHIIHH", tag, 1, rate, rate * block, block, bits)
    if tag != 1:
        fmt_chunk += struct.pack("<H", 0)
    chunks = b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
    if tag != 1:
        chunks += b"fact" + struct.pack("<II", 4, len(payload) // block)
    chunks += b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def register(emu: ProviderEmulator) -> None:
    def authorise(req: EmuRequest) -> EmuResponse | None:
        version = req.headers.get("Cartesia-Version")
        if version not in VERSIONS:
            return error(req, 400, "invalid_request", "Invalid Cartesia-Version",
                         f"Cartesia-Version must be one of {', '.join(VERSIONS)} (got {version!r})")
        if not emu.key_matches(req, "Authorization", f"Bearer {emu.key_for(P)}"):
            return error(req, 401, "unauthorized", "Unauthorized", "Invalid API key")
        if (quota := req.take("quota")) is not None:
            return error(req, 402, "insufficient_credits", "Insufficient credits",
                         quota.message or "Your organization has run out of credits.")
        return None

    @emu.route("GET", P, r"/voices", name="cartesia.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (lists voices, generates nothing)."""
        if (denied := authorise(req)) is not None:
            return denied
        voice = {"id": "694f9389-aac1-45b6-b726-9d9369183238", "name": "Emulated", "language": "en", "is_owner": False}
        return EmuResponse.json_({"data": [voice], "has_more": False, "next_page": None})

    def refused(req: EmuRequest) -> EmuResponse | None:
        flagged = req.take("moderation")
        if flagged is None:
            return None
        return error(req, 400, "content_policy_violation", "Content policy violation",
                     flagged.message or "The request violates the content policy.")

    def audio(req: EmuRequest, text: str, fmt: dict[str, Any], duration: float | None = None) -> EmuResponse:
        rid = str(uuid.uuid4())
        if req.take("empty_audio") is not None:
            return EmuResponse.bytes_(b"", "audio/mpeg", headers={"x-request-id": rid})
        data, content_type = render(emu, text, fmt, duration)
        return EmuResponse.bytes_(data, content_type, headers={"x-request-id": rid})

    @emu.route("POST", P, r"/tts/bytes", name="cartesia.tts")
    def tts_bytes(req: EmuRequest) -> EmuResponse:
        if (denied := authorise(req)) is not None:
            return denied
        body = req.json
        if not isinstance(body, dict):
            return error(req, 400, "invalid_request", "Invalid request", "request body must be a JSON object")
        model = body.get("model_id")
        if not isinstance(model, str) or not model:
            return error(req, 400, "invalid_request", "Invalid request", "model_id is required")
        if model in SUNSET_MODELS:
            return error(req, 400, "model_sunsetted", "Model sunsetted",
                         "The requested model has been sunsetted and is no longer available.")
        transcript = body.get("transcript")
        if not isinstance(transcript, str) or not transcript.strip():
            return error(req, 400, "invalid_request", "Invalid request", "transcript is required")
        if (problem := voice_problem(body.get("voice"), req.headers.get("Cartesia-Version") or "")) is not None:
            return error(req, 400, "invalid_request", "Invalid request", problem)
        if (problem := output_format_problem(body.get("output_format"))) is not None:
            return error(req, 400, "invalid_request", "Invalid output format", problem)
        generation = body.get("generation_config") or {}
        for key, (low, high) in _RANGES.items():
            value = generation.get(key) if isinstance(generation, dict) else None
            if value is not None and not (isinstance(value, (int, float)) and low <= value <= high):
                return error(req, 400, "invalid_request", "Invalid generation config",
                             f"generation_config.{key} must be between {low} and {high} (got {value!r})")
        if (blocked := refused(req)) is not None:
            return blocked
        return audio(req, transcript, body["output_format"])

    @emu.route("POST", P, r"/voice-changer/bytes", name="cartesia.voice_changer")
    def voice_changer(req: EmuRequest) -> EmuResponse:
        if (denied := authorise(req)) is not None:
            return denied
        if not req.is_multipart:
            return error(req, 400, "invalid_request", "Invalid request", "expected multipart/form-data")
        clip = req.file("clip")
        if clip is None:
            return error(req, 400, "invalid_request", "Invalid request", "clip is required")
        voice = req.form.get("voice[id]")
        if not voice:
            return error(req, 400, "invalid_request", "Invalid request", "voice[id] is required")
        prefix = "output_format["
        fmt = {key[len(prefix):-1]: value for key, value in req.form.items() if key.startswith(prefix)}
        if (problem := output_format_problem(fmt)) is not None:
            return error(req, 400, "invalid_request", "Invalid output format", problem)
        duration = _probe_duration(clip.data)
        if duration is None:
            return error(req, 400, "invalid_request", "Invalid audio",
                         "Supported audio formats: flac, mp3, mpeg, mpga, oga, ogg, wav, webm")
        if (blocked := refused(req)) is not None:
            return blocked
        return audio(req, f"voice changed to {voice}", fmt, duration=round(duration, 3))


def _probe_duration(data: bytes) -> float | None:
    from providers.media.probe import MediaProbeError, probe_media

    try:
        return probe_media(data).duration_seconds
    except MediaProbeError:
        return None
