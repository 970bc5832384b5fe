"""Emulates Hume's Octave TTS and voice-conversion REST API under /hume.

- ``POST /v0/tts`` (JSON) -> ``{request_id, generations: [{generation_id, audio
  (base64), duration, encoding: {format, sample_rate}, file_size, snippets}]}``, where
  ``snippets`` holds one group per utterance of complete ``Snippet`` objects
  (``{audio, generation_id, id, text, timestamps, transcribed_text, utterance_index}``;
  here one snippet per utterance carrying the whole audio, no timestamps).
- Oracle: the official ``hume`` SDK 0.14.1, whose ``ReturnTts`` type every answer must
  validate against strictly (``tests/conformance/test_hume.py``).
- ``POST /v0/tts/voice_conversion/file`` (multipart: ``audio`` file, ``voice`` and
  ``format`` as JSON-string parts) -> the audio file itself.

Auth header ``X-Hume-Api-Key``; a wrong key gets a 401. Validation errors are 422
with FastAPI's ``{"detail": [{loc, msg, type}]}``; other errors use Hume's
``{error, message, code}`` shape. Hume produces 48 kHz audio in mp3, wav or pcm
(raw s16le). ``version: "2"`` without a voice is a 400 (the SDK documents the
rejection, not its shape; the ``{error, message, code}`` shape is assumed).
``Fault.moderation(message)`` answers a 400 whose code says
``content_policy_violation``: Hume documents no moderation error, so this shape is
an assumption the provider module matches by wording.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from tests.emulator import EmuRequest, EmuResponse, ProviderEmulator

P = "hume"
RATE = 48000
FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}
VOICE_PROVIDERS = ("HUME_AI", "CUSTOM_VOICE")
VERSIONS = ("1", "2")


def register(emu: ProviderEmulator) -> None:
    def unauthorized() -> EmuResponse:
        body = {"fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}}
        return EmuResponse.error(401, body)

    @emu.route("GET", P, r"/v0/tts/voices", name="hume.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (lists the account's voices, generates nothing)."""
        if not emu.key_matches(req, "X-Hume-Api-Key", emu.key_for(P)):
            return unauthorized()
        if req.query.get("provider") not in VOICE_PROVIDERS:
            return EmuResponse.error(400, {"error": "Bad Request", "message": "provider must be HUME_AI or CUSTOM_VOICE"})
        size = int(req.query.get("page_size") or 10)
        return EmuResponse.json_({"page_number": 0, "page_size": size, "total_pages": 0, "voices_page": []})

    def moderation(message: str | None) -> EmuResponse:
        text = message or "Request rejected: the text violates the content policy"
        return EmuResponse.error(400, {"error": "Bad Request", "message": text, "code": "content_policy_violation"})

    @emu.route("POST", P, r"/v0/tts", name="hume.tts")
    def tts(req: EmuRequest) -> EmuResponse:
        if not emu.key_matches(req, "X-Hume-Api-Key", emu.key_for(P)):
            return unauthorized()
        body = req.json
        if not isinstance(body, dict):
            return _unprocessable(["body"], "Input should be a valid dictionary", "dict_type")
        problem = _tts_problem(body)
        if problem:
            return problem
        if (flagged := req.take("moderation")) is not None:
            return moderation(flagged.message)
        fmt = (body.get("format") or {"type": "mp3"})["type"]
        text = " ".join(u["text"] for u in body["utterances"])
        generations = []
        for index in range(int(body.get("num_generations") or 1)):
            clip = emu.audio_clip(text, audio_format=fmt, sample_rate=RATE, seed=index)
            generation_id = str(uuid.uuid4())
            generations.append(
                {
                    "generation_id": generation_id,
                    "audio": base64.b64encode(clip.data).decode("ascii"),
                    "duration": round(clip.duration_seconds, 3),
                    "encoding": {"format": fmt, "sample_rate": RATE},
                    "file_size": len(clip.data),
                    "snippets": [
                        [_snippet(generation_id, u["text"], i, base64.b64encode(clip.data).decode("ascii"))]
                        for i, u in enumerate(body["utterances"])
                    ],
                }
            )
        return EmuResponse.json_({"request_id": str(uuid.uuid4()), "generations": generations})

    @emu.route("POST", P, r"/v0/tts/voice_conversion/file", name="hume.voice_conversion")
    def voice_conversion(req: EmuRequest) -> EmuResponse:
        if not emu.key_matches(req, "X-Hume-Api-Key", emu.key_for(P)):
            return unauthorized()
        if not req.is_multipart:
            return _unprocessable(["body", "audio"], "Field required", "missing")
        upload = req.file("audio")
        if upload is None or not upload.data:
            return _unprocessable(["body", "audio"], "Field required", "missing")
        voice, problem = _json_part(req, "voice")
        if problem:
            return problem
        if voice is not None:
            problem = _voice_problem(voice, ["body", "voice"])
            if problem:
                return problem
        fmt_part, problem = _json_part(req, "format")
        if problem:
            return problem
        fmt = (fmt_part or {"type": "mp3"}).get("type")
        if fmt not in FORMATS:
            return _unprocessable(["body", "format", "type"], "Input should be 'mp3', 'pcm' or 'wav'", "literal_error")
        if (flagged := req.take("moderation")) is not None:
            return moderation(flagged.message)
        seconds = max(0.5, min(len(upload.data) / 16000, 10.0))  # roughly follows the input's size
        clip = emu.audio_clip(f"converted {voice}", audio_format=fmt, sample_rate=RATE, duration=round(seconds, 1))
        return EmuResponse.bytes_(clip.data, FORMATS[fmt])


def _snippet(generation_id: str, text: str, index: int, audio: str) -> dict[str, Any]:
    """A ``Snippet`` with every field the SDK requires (no timestamps: none were asked for)."""
    return {"audio": audio, "generation_id": generation_id, "id": str(uuid.uuid4()), "text": text, "timestamps": [],
            "transcribed_text": text, "utterance_index": index}


def _unprocessable(loc: list[Any], msg: str, kind: str) -> EmuResponse:
    return EmuResponse.error(422, {"detail": [{"loc": loc, "msg": msg, "type": kind}]})


def _tts_problem(body: dict[str, Any]) -> EmuResponse | None:
    utterances = body.get("utterances")
    if not isinstance(utterances, list) or not utterances:
        return _unprocessable(["body", "utterances"], "Field required", "missing")
    for index, utterance in enumerate(utterances):
        if not isinstance(utterance, dict) or not isinstance(utterance.get("text"), str):
            return _unprocessable(["body", "utterances", index, "text"], "Field required", "missing")
        if utterance.get("voice") is not None:
            problem = _voice_problem(utterance["voice"], ["body", "utterances", index, "voice"])
            if problem:
                return problem
    fmt = body.get("format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in FORMATS):
        return _unprocessable(["body", "format", "type"], "Input should be 'mp3', 'pcm' or 'wav'", "literal_error")
    version = body.get("version")
    if version is not None and version not in VERSIONS:
        return _unprocessable(["body", "version"], "Input should be '1' or '2'", "literal_error")
    if version == "2" and not any(isinstance(u, dict) and u.get("voice") for u in utterances):
        # SDK docstring of `version`: "Requests that set version: 2 without a voice will be rejected."
        message = "A voice must be specified when version 2 is requested"
        return EmuResponse.error(400, {"error": "Bad Request", "message": message, "code": "version_2_requires_voice"})
    generations = body.get("num_generations", 1)
    if not isinstance(generations, int) or not 1 <= generations <= 5:
        return _unprocessable(["body", "num_generations"], "Input should be between 1 and 5", "less_than_equal")
    return None


def _voice_problem(voice: Any, loc: list[Any]) -> EmuResponse | None:
    if not isinstance(voice, dict) or not (voice.get("id") or voice.get("name")):
        return _unprocessable(loc, "voice needs an id or a name", "value_error")
    if voice.get("provider", "CUSTOM_VOICE") not in VOICE_PROVIDERS:
        return _unprocessable([*loc, "provider"], "Input should be 'HUME_AI' or 'CUSTOM_VOICE'", "enum")
    return None


def _json_part(req: EmuRequest, name: str) -> tuple[Any, EmuResponse | None]:
    text = req.form.get(name)
    if text is None:
        return None, None
    try:
        return json.loads(text), None
    except ValueError:
        return None, _unprocessable(["body", name], "Invalid JSON", "json_invalid")
