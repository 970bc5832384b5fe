"""Sarvam AI text-to-speech (Bulbul models) over plain REST.

One synchronous call: ``POST /text-to-speech`` with a JSON body answers with JSON
holding base64 audio, so :meth:`SarvamProvider.submit` returns the finished
:class:`ProviderOutput` (decoded bytes and their real MIME type) straight away.

Decisions
---------
- **Language code.** Sarvam requires ``language_code`` (one of
  :data:`LANGUAGE_CODES`). A request without one, or with a language Sarvam does not
  speak, is refused *before any HTTP request* with ``UnsupportedRequestError`` naming
  the field and listing the allowed codes. That records a ``skipped`` attempt and
  lets the fallback chain go on: the request is fine in itself, this config just
  cannot serve it, and a fallback that needs no code (ElevenLabs, Hume...) can. When
  Sarvam is the only config, the chain fails with that same clear message. Bare
  primary subtags are accepted (``"hi"`` -> ``hi-IN``; ``"or"`` -> ``od-IN``), case
  does not matter.
- **Long text.** Text over the model's REST limit is refused before any request
  (``UnsupportedRequestError``: skipped, the chain goes on). Sarvam documents no
  server-side splitting for REST and stitching separately synthesised chunks would
  break prosody at every seam, so we do not split. ``provider_config["max_text_chars"]``
  overrides the limit should Sarvam raise it.
- **Sample rate.** An explicit ``output_format.sample_rate`` the model cannot produce
  is refused before any request. The schema's *default* format (mp3, 44100 Hz,
  128 kbps) is a default, not a requirement: when the model cannot do 44100 Hz
  (bulbul:v2), ``speech_sample_rate`` is left out and Sarvam uses its own default
  (22050 Hz). ``sample_rate=None`` means "the model's default" -- except for opus,
  where 24000 Hz is asked for, Sarvam's default not being an Opus rate.
- **Bitrate** is ignored: the REST endpoint has no bitrate field (WebSocket only).
- **Several audios.** One ``text`` gives one audio; should the API ever return
  several, they are joined (WAV data chunks merged; MP3 and raw PCM concatenated),
  and a format that cannot be joined byte-wise fails the attempt clearly.

Field mapping
-------------
``text`` -> ``text``; ``language_code`` -> ``language_code``; ``config.model``
-> ``model``; ``voice_id`` -> ``speaker`` (default per model); ``output_format.format``
-> ``output_audio_codec`` (``pcm`` is sent as ``linear16``); ``output_format.sample_rate``
-> ``speech_sample_rate``. Tuning knobs (``pace`` — alias ``speed`` —, ``pitch``,
``loudness``, ``temperature``, ``enable_preprocessing``, ``dict_id``) come from
``request.extra_params``, then ``request.voice_settings``, then
``config.provider_config`` (first found wins); a knob the model rejects (``pitch``
on bulbul:v3) is refused before any request. Other ``extra_params`` are passed
through as top-level body fields, except the fields mapped above.

Facts relied on ([C] confirmed in Sarvam's docs, Sarvam's own repositories or the
official ``sarvamai`` SDK 0.1.39 (``text_to_speech/raw_client.py`` and ``types/``), which
is the conformance oracle in ``tests/conformance/test_sarvam.py``; [I] inferred /
third-party / unverified)
- Base ``https://api.sarvam.ai``, header ``api-subscription-key``. [C SDK]
- ``POST /text-to-speech`` JSON ``{text, language_code, model, speaker, pace, pitch,
  loudness, temperature, speech_sample_rate, output_audio_codec, enable_preprocessing,
  dict_id, enable_cached_responses}`` -> ``{request_id, audios: [<base64>]}``. [C SDK]
  The language field was ``target_language_code`` in sarvamai 0.1.10 and earlier; the
  current SDK sends ``language_code`` only, and so do we: the SDK is generated from
  Sarvam's current API definition, and whether the server still takes the old name is
  undocumented, so relying on it would be relying on an accident.
- Languages: en, hi, bn, ta, te, kn, ml, mr, gu, pa, od (all ``-IN``). [C SDK]
- Models ``bulbul:v3`` (API default; speaker ``shubh``), ``bulbul:v4-flash`` ("same
  request/response contract as bulbul:v3"; persona speakers, default
  ``shubh_enhi_ads``) and ``bulbul:v2`` (legacy; speaker ``anushka``). Pitch and
  loudness only on v2; pace 0.5-2.0 on v3/v4-flash, 0.3-3.0 on v2. [C SDK]
- Sample rates 8000/16000/22050/24000 for every model; 32000/44100/48000 for
  bulbul:v3 and bulbul:v4-flash over REST only. Default 22050 Hz when
  ``speech_sample_rate`` is omitted. [C SDK] Opus output only at 8/16/24/48 kHz. [I —
  Opus itself encodes at 8/12/16/24/48 kHz]
- Codecs ``mp3, wav, linear16, mulaw, alaw, opus, flac, aac``; REST default WAV. [C SDK]
  ``opus`` on ``/text-to-speech`` with bulbul:v3 and v4-flash "currently returns a
  validation error" [C SDK], so it is offered for bulbul:v2 only.
  ``linear16`` over REST is raw s16le mono without a header. [I — a RIFF header is
  detected and labelled audio/wav if present]; Opus comes in an Ogg container. [I]
- REST text limit 2500 characters for bulbul:v3 and v4-flash, 1500 for bulbul:v2. [C SDK]
- Errors: ``{"error": {"message", "code", "request_id"}}`` (SDK type ``ErrorMessage``;
  + ``x-request-id`` header); 400 ``invalid_request_error``, 403
  ``invalid_api_key_error`` (auth is 403, not 401), 422 ``unprocessable_entity_error``,
  429 ``rate_limit_exceeded_error`` (retry) or ``insufficient_quota_error`` (credits
  exhausted: not retried, the chain goes on), 5xx transient. [C SDK] Sarvam documents no
  content-moderation error for TTS, so none is mapped. [C by absence]
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from typing import Any

import requests

from schemas import AudioOutputFormat, Modality, TTSRequest
from schemas.audio import default_output_format

from providers.core.contract import AnyConfig, AnyRequest, GeneratedMedia, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import ModelCapabilities
from providers.check import KeyCheck
from providers.errors import GenerationFailedError, MediagenError, ProviderHTTPError, UnsupportedRequestError
from providers.core.http import decode_output_base64, default_http_error, request_id_from, send
from providers.core.pricing import price_sheet

LANGUAGE_CODES = ("en-IN", "hi-IN", "bn-IN", "ta-IN", "te-IN", "kn-IN", "ml-IN", "mr-IN", "gu-IN", "pa-IN", "od-IN")
"""The ``language_code`` values Sarvam's TTS accepts."""

_LANGUAGE_ALIASES = {code.split("-")[0]: code for code in LANGUAGE_CODES} | {"or": "od-IN"}

CODECS = {"mp3": "mp3", "wav": "wav", "pcm": "linear16", "flac": "flac", "opus": "opus"}
"""Our ``AudioOutputFormat.format`` -> Sarvam's ``output_audio_codec``."""

_CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "flac": "audio/flac", "opus": "audio/ogg"}
_BASE_RATES = (8000, 16000, 22050, 24000)
_REST_RATES = _BASE_RATES + (32000, 44100, 48000)
_DEFAULT_RATE = 22050
# opus is in the codec enum but "currently returns a validation error" on bulbul:v3/v4-flash.
_V3_FORMATS = ("mp3", "wav", "pcm", "flac")
_V3_REJECTED = frozenset({"pitch", "loudness"})
_OPUS_RATES = frozenset({8000, 12000, 16000, 24000, 48000})
_OPUS_DEFAULT_RATE = 24000
_KNOBS = ("pace", "pitch", "loudness", "temperature", "enable_preprocessing", "dict_id")
# target_language_code (the name in sarvamai <= 0.1.10) is never passed through next to language_code.
_RESERVED_FIELDS = frozenset(
    {"text", "language_code", "target_language_code", "model", "output_audio_codec", "speech_sample_rate"}
)
_QUOTA_CODES = frozenset({"insufficient_quota_error"})


@dataclass(frozen=True)
class BulbulModel:
    """What one Bulbul model accepts over REST."""

    sample_rates: tuple[int, ...]
    default_sample_rate: int
    max_chars: int
    default_speaker: str
    formats: tuple[str, ...]
    rejected_knobs: frozenset[str] = frozenset()


BULBUL = {
    "bulbul:v3": BulbulModel(
        sample_rates=_REST_RATES,
        default_sample_rate=_DEFAULT_RATE,
        max_chars=2500,
        default_speaker="shubh",
        formats=_V3_FORMATS,
        rejected_knobs=_V3_REJECTED,
    ),
    "bulbul:v2": BulbulModel(
        sample_rates=_BASE_RATES,
        default_sample_rate=_DEFAULT_RATE,
        max_chars=1500,
        default_speaker="anushka",
        formats=("mp3", "wav", "pcm", "flac", "opus"),
    ),
    "bulbul:v4-flash": BulbulModel(
        sample_rates=_REST_RATES,
        default_sample_rate=_DEFAULT_RATE,
        max_chars=2500,
        default_speaker="shubh_enhi_ads",
        formats=_V3_FORMATS,
        rejected_knobs=_V3_REJECTED,
    ),
}


def _capabilities(spec: BulbulModel, notes: str) -> ModelCapabilities:
    return ModelCapabilities(
        modalities=frozenset({"tts"}),
        audio_formats=spec.formats,
        requires_language_code=True,
        notes=f"{notes}; {spec.max_chars} chars max; rates {', '.join(map(str, spec.sample_rates))} Hz",
    )


SARVAM_PRICES = {
    "*": (price_sheet("https://www.sarvam.ai/api-pricing", "2026-11-30")("1k_characters", None, note="priced in INR; give a USD rate under prices:"),),
}


class SarvamProvider(JobProvider):
    """Sarvam AI Bulbul text-to-speech (Indian languages), synchronous REST."""

    name = "sarvam"
    key_check = KeyCheck(  # lists chat models only, so no judgement of TTS models
        path="/v2/models", key_header="api-subscription-key",
        source="https://docs.sarvam.ai/api-reference/chat/models-v2",
    )
    default_base_url = "https://api.sarvam.ai"
    api_key_env = "SARVAM_API_KEY"
    modalities = frozenset({"tts"})
    prices = SARVAM_PRICES
    models = {
        "bulbul:v3": _capabilities(BULBUL["bulbul:v3"], "11 Indian languages (language_code required); pace, temperature"),
        "bulbul:v2": _capabilities(BULBUL["bulbul:v2"], "11 Indian languages (language_code required); pace, pitch, loudness"),
        "bulbul:v4-flash": _capabilities(
            BULBUL["bulbul:v4-flash"], "persona speakers; language_code required; pace, temperature"
        ),
    }

    # -- what a request may ask -------------------------------------------------------

    def check_request(self, modality: Modality, request: AnyRequest, config: AnyConfig) -> None:
        # Our own TTS checks run before the capability table's, so a missing language code
        # gets the message that lists the allowed codes rather than the generic one.
        if isinstance(request, TTSRequest):
            problems = tts_problems(request, config)
            if problems:
                raise UnsupportedRequestError("; ".join(problems), provider=self.name, model=config.model)
        super().check_request(modality, request, config)

    # -- the job protocol ---------------------------------------------------------------

    def submit_tts(self, ctx: ProviderContext, request: TTSRequest) -> ProviderOutput:
        body = tts_body(request, ctx.config)
        headers = {"api-subscription-key": ctx.require_api_key()}
        response = send(ctx, "POST", "/text-to-speech", headers=headers, json_body=body)
        return tts_output(ctx, response, request, body)

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return None
        code = str(error.get("code") or "")
        message = str(error.get("message") or code or "no details")
        if response.status_code == 429 and code in _QUOTA_CODES:
            # Credits are exhausted: retrying the same key cannot help; the chain goes on.
            return ProviderHTTPError(
                f"sarvam credits exhausted (HTTP 429 {code}): {message}",
                status_code=429,
                retryable=False,
                provider=self.name,
                model=ctx.model,
                request_id=error.get("request_id"),
            )
        # The default status mapping, plus Sarvam's request id from the body.
        mapped = default_http_error(ctx, response, body)
        mapped.request_id = str(error["request_id"]) if error.get("request_id") else None
        return mapped


# -- request mapping -----------------------------------------------------------------------


def normalise_language(code: str | None) -> str | None:
    """Sarvam's code for ``code`` (``'hi'``, ``'HI-in'`` -> ``'hi-IN'``), or None if unsupported."""
    if not code:
        return None
    primary, _, region = code.strip().replace("_", "-").partition("-")
    primary = primary.lower()
    if region and region.upper() != "IN":
        return None
    return _LANGUAGE_ALIASES.get(primary)


def tts_problems(request: TTSRequest, config: AnyConfig) -> list[str]:
    """Why this config cannot serve ``request`` (empty when it can)."""
    spec = BULBUL.get(config.model)
    problems: list[str] = []
    allowed = ", ".join(LANGUAGE_CODES)
    if not request.language_code:
        problems.append(f"sarvam needs language_code; allowed: {allowed}")
    elif normalise_language(request.language_code) is None:
        problems.append(f"language_code={request.language_code!r} not supported by sarvam (allowed: {allowed})")
    if spec is None:
        return problems
    limit = int(config.provider_config.get("max_text_chars") or spec.max_chars)
    if len(request.text) > limit:
        problems.append(f"text is {len(request.text)} characters; {config.model} takes at most {limit} per request")
    fmt = request.output_format
    rate = requested_rate(fmt, spec)
    if fmt.format in spec.formats and rate is not None:
        allowed_rates = [r for r in spec.sample_rates if fmt.format != "opus" or r in _OPUS_RATES]
        if rate not in allowed_rates:
            problems.append(
                f"output_format.sample_rate={rate} not supported by {config.model} for {fmt.format} "
                f"(allowed: {', '.join(map(str, allowed_rates))})"
            )
    rejected = sorted(k for k in spec.rejected_knobs if knob(request, config, k) is not None)
    if rejected:
        problems.append(f"{', '.join(rejected)} not supported by {config.model}")
    return problems


def requested_rate(fmt: AudioOutputFormat, spec: BulbulModel | None) -> int | None:
    """The sample rate to ask for: None = the model's default.

    The schema's default format is a default, not a requirement: its 44100 Hz is only
    asked for when the model can produce it.
    """
    rate = fmt.sample_rate
    if rate is not None and fmt == default_output_format() and spec is not None and rate not in spec.sample_rates:
        rate = None
    if rate is None and fmt.format == "opus":
        # Sarvam's default (22050 Hz) is not an Opus rate: ask for the nearest one that is.
        return _OPUS_DEFAULT_RATE
    return rate


def knob(request: TTSRequest, config: AnyConfig, name: str) -> Any:
    """A tuning knob from extra_params, voice_settings or provider_config (first found)."""
    names = (name, "speed") if name == "pace" else (name,)
    for source in (request.extra_params, request.voice_settings or {}, config.provider_config):
        for key in names:
            if source.get(key) is not None:
                return source[key]
    return None


def tts_body(request: TTSRequest, config: AnyConfig) -> dict[str, Any]:
    """The JSON body for ``POST /text-to-speech``."""
    spec = BULBUL.get(config.model)
    fmt = request.output_format
    body: dict[str, Any] = {
        "text": request.text,
        # Only the current SDK's name: target_language_code (sarvamai <= 0.1.10) is not sent as well.
        "language_code": normalise_language(request.language_code) or request.language_code,
        "model": config.model,
        "output_audio_codec": CODECS.get(fmt.format, fmt.format),
    }
    speaker = request.voice_id or config.provider_config.get("speaker") or (spec.default_speaker if spec else None)
    if speaker:
        body["speaker"] = speaker
    rate = requested_rate(fmt, spec)
    if rate is not None:
        body["speech_sample_rate"] = rate
    for name in _KNOBS:
        value = knob(request, config, name)
        if value is not None:
            body[name] = value
    for key, value in request.extra_params.items():
        if key not in _RESERVED_FIELDS and key != "speed":
            body[key] = value
    return body


# -- response ---------------------------------------------------------------------------------


def tts_output(ctx: ProviderContext, response: requests.Response, request: TTSRequest, body: dict[str, Any]) -> ProviderOutput:
    """Decode the audio of a ``/text-to-speech`` answer."""
    payload = response.json()
    request_id = payload.get("request_id") or request_id_from(response)
    clips = [decode_output_base64(item, provider="sarvam", model=ctx.model, what="audio") for item in payload.get("audios") or [] if item]
    if not clips:
        raise GenerationFailedError(
            "sarvam answered without audio", provider=ctx.provider.name, model=ctx.model, request_id=request_id, raw_response=payload
        )
    fmt = request.output_format.format
    data = clips[0] if len(clips) == 1 else join_clips(ctx, clips, fmt)
    content_type = _CONTENT_TYPES.get(fmt, "application/octet-stream")
    duration = None
    if fmt == "pcm":
        if data[:4] == b"RIFF":
            content_type = "audio/wav"
        else:
            spec = BULBUL.get(ctx.model)
            rate = body.get("speech_sample_rate") or (spec.default_sample_rate if spec else _DEFAULT_RATE)
            duration = len(data) / 2 / rate
    raw = {k: v for k, v in payload.items() if k != "audios"} | {"audio_count": len(clips)}
    return ProviderOutput(
        media=[GeneratedMedia(data=data, content_type=content_type)],
        raw_response=raw,
        request_id=request_id,
        duration=duration,
    )


def join_clips(ctx: ProviderContext, clips: list[bytes], fmt: str) -> bytes:
    """One clip out of several of the same format."""
    if fmt in ("mp3", "pcm"):
        return b"".join(clips)
    if fmt == "wav":
        return _join_wav(clips)
    raise GenerationFailedError(
        f"sarvam returned {len(clips)} {fmt} clips, which cannot be joined; ask for wav, mp3 or pcm",
        provider=ctx.provider.name,
        model=ctx.model,
    )


def _join_wav(clips: list[bytes]) -> bytes:
    frames: list[bytes] = []
    params = None
    for clip in clips:
        with wave.open(io.BytesIO(clip)) as reader:
            params = params or reader.getparams()
            frames.append(reader.readframes(reader.getnframes()))
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setparams(params)  # type: ignore[arg-type]
        writer.writeframes(b"".join(frames))
    return out.getvalue()


