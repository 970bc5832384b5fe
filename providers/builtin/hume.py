"""Hume Octave text-to-speech and voice conversion over plain REST.

Both calls are synchronous for us: ``POST /v0/tts`` answers with JSON holding base64
audio, ``POST /v0/tts/voice_conversion/file`` answers with the audio file itself, so
:meth:`HumeProvider.submit` returns the finished :class:`ProviderOutput` (decoded
bytes and their real MIME type) straight away.

**Retired: Hume shut its TTS API (and with it voice conversion) down on 13 November
2026** ("Hume is sunsetting the TTS and EVI APIs. Access ends November 13, 2026 at
12:01 a.m. EST", https://dev.hume.ai/voice/reference/text-to-speech-tts). Every model
below carries ``Lifecycle(status="retired")``, so a Hume config is a ``skipped`` attempt
before any request and the chain goes on to its fallback. The client stays, still held
to the official SDK, so the retirement can be lifted by giving ``HumeProvider.models``
active entries (as its tests do) should the API stay reachable for an account.

Models and modalities
---------------------
- ``octave-2`` / ``octave-1``: TTS, sent as ``version: "2"`` / ``"1"``; ``octave``:
  TTS without ``version`` (Hume chooses). ``provider_config["version"]`` forces a
  version for any model name.
- ``voice-conversion``: STS (the voice-conversion route has no model or version field).

Field mapping
-------------
TTS: one utterance ``{text, description, voice, speed, trailing_silence}``;
``description`` (acting instructions, or a voice prompt when no voice is given),
``speed`` and ``trailing_silence`` come from ``request.extra_params``, then
``request.voice_settings``, then ``config.provider_config`` (first found wins).
``format: {type}`` from ``output_format.format``; ``num_generations: 1``. Other
``extra_params`` (``context``, ``split_utterances``...) are passed through as
top-level body fields.

Voices: ``voice_id`` that looks like a UUID is sent as ``{"id": ...}``, anything
else as ``{"name": ...}`` (Hume's library voices are usually named, e.g. "Ava Song").
``provider_config["voice_by"] = "id" | "name"`` forces the choice;
``provider_config["voice_provider"]`` sets ``HUME_AI`` (default: library voices) or
``CUSTOM_VOICE`` (your own voices).

STS: multipart ``audio`` (file) + JSON-string parts ``voice`` and ``format``. Input
audio may be MediaContent, base64, a data URL or an http(s) URL.

Output format
-------------
Hume produces mp3, wav or pcm (raw s16le) and chooses the sample rate itself
(48 kHz). flac/opus, or an explicit ``sample_rate`` other than 48000, are refused
before any request (``UnsupportedRequestError``: a ``skipped`` attempt; the chain goes
on). ``sample_rate=None`` and the schema's *default* format (mp3, 44100 Hz,
128 kbps — a default, not a requirement) are served at Hume's rate. Bitrate is
not configurable and is ignored.

Facts relied on ([C] confirmed in Hume's SDK/docs, [I] inferred / third-party / unverified).
The oracle is the official ``hume`` SDK 0.14.1 (``tts/raw_client.py``, ``tts/types``),
driven against the emulator in ``tests/conformance/test_hume.py``: our TTS body validates
strictly against its ``PostedTts`` type, the emulator's answers against ``ReturnTts``.
- Base ``https://api.hume.ai``; header ``X-Hume-Api-Key``. [C]
- ``POST /v0/tts`` JSON ``{utterances[{text, description, voice{id|name, provider},
  speed, trailing_silence}], context, format{type: mp3|wav|pcm}, num_generations,
  split_utterances, strip_headers, version "1"|"2", instant_mode}`` ->
  ``{request_id, generations[{generation_id, audio (base64), duration,
  encoding{format, sample_rate}, file_size, snippets}]}``. [C hume-python-sdk]
- Voice provider: without ``provider`` Hume looks in ``CUSTOM_VOICE``; library voices
  need ``HUME_AI``. [C docs quoted by a public client]
- ``POST /v0/tts/voice_conversion/file`` multipart: ``audio`` file + ``voice``,
  ``format``, ``context`` as JSON-string parts (+ ``strip_headers``,
  ``include_timestamp_types``); answers with the audio file; no model/version. [C SDK]
- Output sample rate 48 kHz for every format. [I — Pipecat's docs; the JSON route
  reports ``encoding.sample_rate``, which we record]
- Octave 2 voices need ``version: "2"`` (else 400). [I third-party report]
- ``version: "2"`` without a voice is rejected [C SDK docstring of ``version``], so
  octave-2 (or a forced version 2) without ``voice_id`` is refused before any request.
- Errors: 422 ``{"detail": [{loc, msg, type}]}`` [C SDK]; other errors
  ``{error, message, code}`` [C SDK ErrorResponse type]; 401 on a bad key, 429 on
  limits [I]. No moderation error is documented: a 400/422 whose text speaks of
  content policy / moderation / safety is treated as moderation. [I]
- The API sits behind Cloudflare, which has been reported to reject some bare
  client user agents with 403 (code 1010). [I third-party report]
- TTS API end of life 2026-11-13. [C dev.hume.ai notice; not in the SDK]
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import requests

from schemas import AudioGenerationConfig, AudioOutputFormat, STSRequest, TTSRequest
from schemas.audio import default_output_format

from providers.core.contract import AnyConfig, GeneratedMedia, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import Lifecycle, ModelCapabilities
from providers.check import KeyCheck
from providers.errors import ContentModerationError, GenerationFailedError, InvalidRequestError, MediagenError, UnsupportedRequestError
from providers.core.http import decode_output_base64, error_text, media_bytes, request_id_from, send
from providers.media.formats import EXTENSIONS
from providers.core.pricing import price_sheet

HUME_SAMPLE_RATE = 48000
"""The one sample rate Hume produces."""

FORMATS = ("mp3", "wav", "pcm")
_CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}
VERSIONS = {"octave-2": "2", "octave-1": "1", "octave": None}
"""Model name -> the ``version`` field sent (None: left to Hume)."""

VOICE_PROVIDERS = ("HUME_AI", "CUSTOM_VOICE")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_UTTERANCE_FIELDS = ("description", "speed", "trailing_silence")
_RESERVED_FIELDS = frozenset({"utterances", "format", "num_generations", "voice"}) | set(_UTTERANCE_FIELDS)
_MODERATION = re.compile(r"moderat|content[ _]polic|usage[ _]polic|safety|inappropriate|prohibited[ _]content", re.IGNORECASE)

_TTS_NOTES = "mp3/wav/pcm at 48 kHz only; description = acting instructions; EOL 2026-11-13"
SHUTDOWN = Lifecycle(
    status="retired",
    date=date(2026, 11, 13),
    source="https://dev.hume.ai/voice/reference/text-to-speech-tts (sunset notice)",
)
"""Hume's TTS and voice-conversion API closed on this date: every model is retired."""


def _tts_model(notes: str) -> ModelCapabilities:
    return ModelCapabilities(modalities=frozenset({"tts"}), audio_formats=FORMATS, notes=notes, lifecycle=SHUTDOWN)


HUME_PRICES = {
    "*": (price_sheet("https://www.hume.ai/pricing", "2026-11-30")("1k_characters", None, note="subscription plans; no per-character USD rate found"),),
}


class HumeProvider(JobProvider):
    """Hume Octave: expressive TTS and voice conversion, synchronous REST."""

    name = "hume"
    key_check = KeyCheck(
        path="/v0/tts/voices", key_header="X-Hume-Api-Key", params={"provider": "CUSTOM_VOICE", "page_size": "1"},
        source="https://dev.hume.ai/reference/voices/list",
    )
    default_base_url = "https://api.hume.ai"
    api_key_env = "HUME_API_KEY"
    modalities = frozenset({"tts", "sts"})
    prices = HUME_PRICES
    models = {
        "octave-2": _tts_model(f"Octave 2 (version 2); {_TTS_NOTES}"),
        "octave-1": _tts_model(f"Octave 1 (version 1); {_TTS_NOTES}"),
        "octave": _tts_model(f"Octave, version chosen by Hume; {_TTS_NOTES}"),
        "voice-conversion": ModelCapabilities(
            modalities=frozenset({"sts"}),
            audio_formats=FORMATS,
            notes="voice conversion; mp3/wav/pcm at 48 kHz; input 12 s-3 min recommended; EOL 2026-11-13",
            lifecycle=SHUTDOWN,
        ),
    }

    # -- what a request may ask -------------------------------------------------------

    def check_tts(self, config: AudioGenerationConfig, request: TTSRequest) -> None:
        self.check_sts(config, request)
        if octave_version(config) == "2" and not request.voice_id:
            raise UnsupportedRequestError(
                f"hume {config.model} (Octave version 2) needs a voice: set voice_id (Hume rejects version 2 "
                "without one); use model 'octave' to design a voice from a description",
                provider=self.name,
                model=config.model,
            )

    def check_sts(self, config: AudioGenerationConfig, request: TTSRequest | STSRequest) -> None:
        fmt: AudioOutputFormat = request.output_format
        if fmt.format not in FORMATS:
            raise UnsupportedRequestError(
                f"output_format.format={fmt.format!r} not supported by hume (allowed: {', '.join(FORMATS)})",
                provider=self.name,
                model=config.model,
            )
        if not sample_rate_acceptable(fmt):
            raise UnsupportedRequestError(
                f"output_format.sample_rate={fmt.sample_rate} not supported by hume: it produces "
                f"{HUME_SAMPLE_RATE} Hz only (ask for {HUME_SAMPLE_RATE} or leave sample_rate unset)",
                provider=self.name,
                model=config.model,
            )
        by = config.provider_config.get("voice_by")
        if by not in (None, "id", "name"):
            raise UnsupportedRequestError(f"provider_config.voice_by={by!r} must be 'id' or 'name'", provider=self.name)
        voice_provider = config.provider_config.get("voice_provider")
        if voice_provider not in (None, *VOICE_PROVIDERS):
            raise UnsupportedRequestError(
                f"provider_config.voice_provider={voice_provider!r} must be one of {', '.join(VOICE_PROVIDERS)}",
                provider=self.name,
            )

    # -- the job protocol ---------------------------------------------------------------

    def submit_tts(self, ctx: ProviderContext, request: TTSRequest) -> ProviderOutput:
        response = send(ctx, "POST", "/v0/tts", headers=self._headers(ctx), json_body=tts_body(request, ctx.config))
        return tts_output(ctx, response, request)

    def submit_sts(self, ctx: ProviderContext, request: STSRequest) -> ProviderOutput:
        audio, content_type = input_audio(ctx, request)
        fmt = request.output_format.format
        form = {
            "voice": json.dumps(voice_ref(request.voice_id, ctx.config)),
            "format": json.dumps({"type": fmt}),
        }
        for key, value in request.extra_params.items():
            form[key] = value if isinstance(value, str) else json.dumps(value)
        filename = f"input.{EXTENSIONS.get(content_type, 'bin')}"
        response = send(
            ctx,
            "POST",
            "/v0/tts/voice_conversion/file",
            headers=self._headers(ctx),
            data=form,
            files={"audio": (filename, audio, content_type)},
        )
        data = response.content
        if not data:
            raise GenerationFailedError(
                "hume voice conversion answered without audio", provider=self.name, model=ctx.model,
                request_id=request_id_from(response),
            )
        return ProviderOutput(
            media=[GeneratedMedia(data=data, content_type=_CONTENT_TYPES[fmt])],
            raw_response={"content_type": response.headers.get("content-type"), "bytes": len(data)},
            request_id=request_id_from(response),
            duration=pcm_duration(data) if fmt == "pcm" else None,
        )

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"X-Hume-Api-Key": ctx.require_api_key()}

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        # Hume documents no moderation error; a rejection that says it is one is treated as one.
        if response.status_code in (400, 422) and _MODERATION.search(_error_words(body)):
            return ContentModerationError(
                f"hume refused the content (HTTP {response.status_code}): {_error_words(body)}",
                provider=self.name,
                model=ctx.model,
            )
        if response.status_code in (400, 422) and isinstance(body, dict) and body.get("message"):
            # {error, message, code}: "error" is only the reason phrase; the message says what is wrong.
            return InvalidRequestError(
                f"hume rejected the request (HTTP {response.status_code}): {_error_words(body)}",
                provider=self.name,
                model=ctx.model,
            )
        return None


def _error_words(body: Any) -> str:
    """The message and code of Hume's ``{error, message, code}`` shape, else the best text."""
    if isinstance(body, dict) and (body.get("message") or body.get("code")):
        return " ".join(str(body[k]) for k in ("message", "code") if body.get(k))
    return error_text(body)


# -- request mapping -----------------------------------------------------------------------


def sample_rate_acceptable(fmt: AudioOutputFormat) -> bool:
    """Whether Hume's fixed rate satisfies ``fmt`` (the schema default is not a requirement)."""
    return fmt.sample_rate in (None, HUME_SAMPLE_RATE) or fmt == default_output_format()


def voice_ref(voice_id: str | None, config: AnyConfig) -> dict[str, str] | None:
    """``{"id"|"name": voice_id, "provider": ...}`` — by id when it looks like a UUID."""
    if not voice_id:
        return None
    by = config.provider_config.get("voice_by") or ("id" if _UUID.match(voice_id) else "name")
    return {by: voice_id, "provider": config.provider_config.get("voice_provider") or "HUME_AI"}


def setting(request: TTSRequest | STSRequest, config: AnyConfig, name: str) -> Any:
    """A setting from extra_params, voice_settings or provider_config (first found)."""
    for source in (request.extra_params, request.voice_settings or {}, config.provider_config):
        if source.get(name) is not None:
            return source[name]
    return None


def octave_version(config: AnyConfig) -> str | None:
    forced = config.provider_config.get("version")
    if forced is not None:
        return str(forced)
    return VERSIONS.get(config.model)


def tts_body(request: TTSRequest, config: AnyConfig) -> dict[str, Any]:
    """The JSON body for ``POST /v0/tts``."""
    utterance: dict[str, Any] = {"text": request.text}
    for name in _UTTERANCE_FIELDS:
        value = setting(request, config, name)
        if value is not None:
            utterance[name] = value
    voice = voice_ref(request.voice_id, config)
    if voice:
        utterance["voice"] = voice
    body: dict[str, Any] = {
        "utterances": [utterance],
        "format": {"type": request.output_format.format},
        "num_generations": 1,
    }
    version = octave_version(config)
    if version is not None:
        body["version"] = version
    for key, value in request.extra_params.items():
        if key not in _RESERVED_FIELDS:
            body[key] = value
    return body


def input_audio(ctx: ProviderContext, request: STSRequest) -> tuple[bytes, str]:
    """The STS input as bytes and a MIME type (sniffed when the input does not say)."""
    data, content_type = media_bytes(ctx, request.audio, default_type="")
    if content_type and content_type != "application/octet-stream":
        return data, content_type
    from providers.media.probe import MediaProbeError, probe_media

    try:
        return data, probe_media(data).content_type
    except MediaProbeError as exc:
        raise InvalidRequestError(f"STS input audio is not decodable audio: {exc}", provider="hume", model=ctx.model) from None


# -- response ---------------------------------------------------------------------------------


def tts_output(ctx: ProviderContext, response: requests.Response, request: TTSRequest) -> ProviderOutput:
    """Decode the first generation of a ``/v0/tts`` answer."""
    payload = response.json()
    request_id = payload.get("request_id") or request_id_from(response)
    generations = [g for g in payload.get("generations") or [] if isinstance(g, dict) and g.get("audio")]
    if not generations:
        raise GenerationFailedError(
            "hume answered without audio", provider=ctx.provider.name, model=ctx.model, request_id=request_id,
            raw_response=payload,
        )
    generation = generations[0]
    data = decode_output_base64(generation["audio"], provider="hume", model=ctx.model, what="audio")
    fmt = request.output_format.format
    encoding = generation.get("encoding") or {}
    duration = generation.get("duration")
    if fmt == "pcm" and duration is None:
        duration = pcm_duration(data, int(encoding.get("sample_rate") or HUME_SAMPLE_RATE))
    raw = {
        "request_id": payload.get("request_id"),
        "generation_id": generation.get("generation_id"),
        "duration": generation.get("duration"),
        "encoding": encoding,
        "file_size": generation.get("file_size"),
    }
    return ProviderOutput(
        media=[GeneratedMedia(data=data, content_type=_CONTENT_TYPES[fmt])],
        raw_response=raw,
        request_id=request_id,
        duration=float(duration) if duration is not None else None,
    )


def pcm_duration(data: bytes, sample_rate: int = HUME_SAMPLE_RATE) -> float:
    """Seconds of raw s16le mono audio."""
    return len(data) / 2 / sample_rate
