"""Emulates Sarvam AI's text-to-speech REST API under /sarvam.

Wire shape (oracle: the official ``sarvamai`` SDK 0.1.39, see
``tests/conformance/test_sarvam.py``): ``POST /text-to-speech`` with header
``api-subscription-key`` and a JSON body whose language field is ``language_code``
(``target_language_code`` was its name up to sarvamai 0.1.10; the old name alone is
refused as a missing field) answers ``{"request_id", "audios": [<base64>]}`` (plus an
``x-request-id`` header). Errors use Sarvam's envelope ``{"error": {"message", "code", "request_id"}}``:
403 ``invalid_api_key_error`` for a missing or wrong key (Sarvam answers 403, not 401),
400 ``invalid_request_error`` for a missing field, a bad enum or over-long text, and for
``opus`` on bulbul:v3/v4-flash (the SDK documents that as a validation error). Without
``speech_sample_rate`` every model answers at 22050 Hz (the SDK's documented default).

The audio is real, in the requested codec and sample rate (``linear16`` is raw s16le,
``mulaw``/``alaw`` raw G.711). ``aac`` is a real Sarvam codec the media maker cannot
produce, so the emulator refuses it with a 400 saying so.

Provider-specific faults: ``Fault.custom("split", parts=N)`` answers with the audio in
N pieces (WAV pieces are each a whole WAV file, MP3/PCM pieces are byte ranges).
"""

from __future__ import annotations

import base64
import io
import uuid
import wave
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, ProviderEmulator

P = "sarvam"
LANGUAGES = ("en-IN", "hi-IN", "bn-IN", "ta-IN", "te-IN", "kn-IN", "ml-IN", "mr-IN", "gu-IN", "pa-IN", "od-IN")
_REST_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
MODELS = {
    # model: (sample rates, default rate, max chars, default speaker, knobs it rejects)
    "bulbul:v3": (_REST_RATES, 22050, 2500, "shubh", {"pitch", "loudness"}),
    "bulbul:v2": ((8000, 16000, 22050, 24000), 22050, 1500, "anushka", set()),
    "bulbul:v4-flash": (_REST_RATES, 22050, 2500, "shubh_enhi_ads", {"pitch", "loudness"}),
}
NO_OPUS = frozenset({"bulbul:v3", "bulbul:v4-flash"})
CODECS = {"mp3": "mp3", "wav": "wav", "linear16": "pcm", "flac": "flac", "opus": "opus", "mulaw": "ulaw", "alaw": "alaw", "aac": None}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def register(emu: ProviderEmulator) -> None:
    def request_id() -> str:
        return f"20260101_{uuid.uuid4()}"

    def sarvam_error(status: int, code: str, message: str, rid: str) -> EmuResponse:
        body = {"error": {"message": message, "code": code, "request_id": rid}}
        return EmuResponse.error(status, body, headers={"x-request-id": rid})

    def invalid(message: str, rid: str) -> EmuResponse:
        return sarvam_error(400, "invalid_request_error", message, rid)

    @emu.route("GET", P, r"/v2/models", name="sarvam.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (lists chat models, generates nothing)."""
        rid = request_id()
        if not emu.key_matches(req, "api-subscription-key", emu.key_for(P)):
            return sarvam_error(403, "invalid_api_key_error", "Invalid or missing authentication credentials", rid)
        return EmuResponse.json_({"object": "list", "data": [
            {"id": "sarvam-m", "created": 0, "owned_by": "sarvam", "object": "model"}]})

    @emu.route("POST", P, r"/text-to-speech", name="sarvam.tts")
    def tts(req: EmuRequest) -> EmuResponse:
        rid = request_id()
        if not emu.key_matches(req, "api-subscription-key", emu.key_for(P)):
            return sarvam_error(403, "invalid_api_key_error", "Invalid or missing authentication credentials", rid)
        body = req.json
        if not isinstance(body, dict):
            return invalid("body : Input should be a valid dictionary or object", rid)
        problem = _problem(body)
        if problem:
            return invalid(problem, rid)
        model = body.get("model", "bulbul:v3")
        rates, default_rate, _, _, _ = MODELS[model]
        codec = body.get("output_audio_codec", "wav")
        audio_format = CODECS[codec]
        rate = int(body.get("speech_sample_rate") or default_rate)
        if audio_format is None:
            return invalid(f"output_audio_codec '{codec}' cannot be produced by this emulator", rid)
        if codec == "opus" and model in NO_OPUS:
            return invalid(f"output_audio_codec 'opus' is not supported for model {model}", rid)
        if audio_format == "opus" and rate not in OPUS_RATES:
            return invalid(f"speech_sample_rate {rate} is not supported for opus", rid)
        clip = emu.audio_clip(body["text"], audio_format=audio_format, sample_rate=rate)
        split = req.take("split")
        pieces = _split(clip.data, audio_format, int(split.data.get("parts", 2))) if split else [clip.data]
        out = {"request_id": rid, "audios": [base64.b64encode(p).decode("ascii") for p in pieces]}
        return EmuResponse.json_(out, headers={"x-request-id": rid})


def _problem(body: dict[str, Any]) -> str | None:
    """Sarvam's 400 message for the first thing wrong with ``body``, or None."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return "body.text : Field required"
    language = body.get("language_code")
    if language is None:
        return "body.language_code : Field required"
    if language not in LANGUAGES:
        return f"body.language_code : Input should be {', '.join(repr(c) for c in LANGUAGES)}"
    model = body.get("model", "bulbul:v3")
    if model not in MODELS:
        return f"body.model : Input should be {', '.join(repr(m) for m in MODELS)}"
    rates, _, max_chars, _, rejected = MODELS[model]
    if len(text) > max_chars:
        return f"body.text : String should have at most {max_chars} characters"
    codec = body.get("output_audio_codec", "wav")
    if codec not in CODECS:
        return f"body.output_audio_codec : Input should be {', '.join(repr(c) for c in CODECS)}"
    rate = body.get("speech_sample_rate")
    if rate is not None and (not isinstance(rate, int) or rate not in rates):
        return f"speech_sample_rate {rate} is not supported for model {model}; allowed: {', '.join(map(str, rates))}"
    for knob in sorted(rejected):
        if body.get(knob) is not None:
            return f"{knob} is not supported for model {model}"
    return None


def _split(data: bytes, audio_format: str, parts: int) -> list[bytes]:
    """``data`` in ``parts`` pieces the way a provider would send them."""
    if audio_format != "wav":
        step = -(-len(data) // parts)
        step += step % 2  # keep whole 16-bit samples for raw PCM
        return [data[i : i + step] for i in range(0, len(data), step)]
    with wave.open(io.BytesIO(data)) as reader:
        params = reader.getparams()
        frames = reader.readframes(reader.getnframes())
    frame_bytes = params.sampwidth * params.nchannels
    per_part = -(-(len(frames) // frame_bytes) // parts) * frame_bytes
    pieces = []
    for offset in range(0, len(frames), per_part):
        out = io.BytesIO()
        with wave.open(out, "wb") as writer:
            writer.setparams(params)
            writer.writeframes(frames[offset : offset + per_part])
        pieces.append(out.getvalue())
    return pieces
