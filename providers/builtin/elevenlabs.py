"""ElevenLabs speech: text-to-speech and speech-to-speech (voice changer), plain REST.

Both endpoints are synchronous: ``submit`` sends the request and returns the audio
bytes as a :class:`ProviderOutput` straight away (there is nothing to poll).

Facts this module relies on ([C] confirmed in the public docs / official SDK /
help centre, [I] inferred and not verified). The oracle is the official ``elevenlabs``
SDK 2.78.0 (``text_to_speech/raw_client.py``, ``speech_to_speech/raw_client.py``), driven
against the emulator in ``tests/conformance/test_elevenlabs.py``:

- [C] Base ``https://api.elevenlabs.io``; the key goes in the ``xi-api-key`` header.
- [C] TTS ``POST /v1/text-to-speech/{voice_id}?output_format=...`` with a JSON body
  ``{text, model_id, language_code, voice_settings{stability, similarity_boost, style,
  use_speaker_boost, speed}, seed, previous_text, next_text, ...}``; the answer is the
  audio itself.
- [C SDK] STS ``POST /v1/voice-changer/{voice_id}?output_format=...`` as multipart: file
  part ``audio``, text parts ``model_id``, ``voice_settings`` (a JSON string), ``seed``,
  ``remove_background_noise``, ``file_format``. Older SDKs and docs used
  ``/v1/speech-to-speech/{voice_id}``; we follow the current SDK (generated from
  ElevenLabs' current API definition) rather than rely on the old path staying served.
- [C] ``output_format`` values: ``mp3_22050_32``, ``mp3_24000_48``,
  ``mp3_44100_{32,64,96,128,192}``, ``pcm_{8000,16000,22050,24000,32000,44100,48000}``
  (raw s16le), ``wav_{same rates}``, ``opus_48000_{32,64,96,128,192}``, ``ulaw_8000``,
  ``alaw_8000``. mp3 at 192 kbps needs a Creator plan, 44.1 kHz PCM/WAV a Pro plan.
  [I] the API default is ``mp3_44100_128``. ulaw/alaw cannot be expressed by
  ``AudioOutputFormat`` and are not offered.
- [C] Models: TTS ``eleven_v3``, ``eleven_multilingual_v2``, ``eleven_flash_v2_5``,
  ``eleven_flash_v2``, ``eleven_turbo_v2_5``, ``eleven_turbo_v2``; STS
  ``eleven_multilingual_sts_v2``, ``eleven_english_sts_v2``.
- [C] Errors carry ``{"detail": ...}``: 422 validation errors are a list of
  ``{loc, msg, type}``; other errors an object with the legacy ``status`` and (newer)
  ``type``/``code``/``message``/``request_id``. 401 ``invalid_api_key`` and 401
  ``quota_exceeded`` (out of credits, not a bad key); 429 ``too_many_concurrent_requests``
  / ``concurrent_limit_exceeded`` (plan concurrency) and ``system_busy`` /
  ``rate_limit_exceeded`` -- all worth retrying with backoff.
- [C, music endpoint] 400 ``bad_prompt`` = "violated our Terms of Service".
  [I] the other moderation codes in ``MODERATION_CODES`` (no public list exists).
- [I] the request id comes back in the ``request-id`` response header.
- [I] ``language_code`` is an ISO 639-1 code; a region suffix (``en-US``) is dropped.

Per-config settings (``config.provider_config``):

- ``voice_id``: pins the voice for this config, overriding ``request.voice_id`` -- so a
  fallback config never sends another provider's voice id.
- ``enable_logging``: sent as the ``enable_logging`` query flag (``false`` = zero
  retention mode, enterprise only).

``voice_settings`` keys other than the five ElevenLabs knows are ignored, so one
request can carry settings for several providers of a fallback chain.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from schemas import AudioGenerationConfig, AudioOutputFormat, STSRequest, TTSRequest

from providers.core.contract import ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import ModelCapabilities
from providers.check import KeyCheck
from providers.errors import ContentModerationError, MediagenError, ProviderHTTPError, UnsupportedRequestError
from providers.core.http import default_http_error, form_value, media_bytes, send
from providers.media.formats import EXTENSIONS
from providers.core.pricing import price_sheet
from providers.builtin.speech import audio_output, known_settings, language_for, require_voice

DISPLAY_NAME = "ElevenLabs"
AUDIO_FORMATS = ("mp3", "wav", "pcm", "opus")

MP3_BITRATES: dict[int, tuple[int, ...]] = {22050: (32,), 24000: (48,), 44100: (32, 64, 96, 128, 192)}
"""mp3 sample rate (Hz) -> the bitrates (kbps) ElevenLabs offers at that rate."""
PCM_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""Sample rates offered for ``pcm_*`` (raw s16le) and ``wav_*``."""
OPUS_BITRATES: dict[int, tuple[int, ...]] = {48000: (32, 64, 96, 128, 192)}
DEFAULT_SAMPLE_RATES = {"mp3": 44100, "wav": 44100, "pcm": 44100, "opus": 48000}
DEFAULT_BITRATE = 128

VOICE_SETTINGS_KEYS = ("stability", "similarity_boost", "style", "use_speaker_boost", "speed")
MODERATION_CODES = frozenset(
    {"bad_prompt", "content_against_policy", "content_policy_violation", "tos_violation", "blocked_content"}
)
QUOTA_CODES = frozenset({"quota_exceeded", "insufficient_credits"})
CONCURRENCY_CODES = frozenset({"too_many_concurrent_requests", "concurrent_limit_exceeded"})
BUSY_CODES = frozenset({"system_busy", "rate_limit_exceeded"})

_TTS_NOTES = "output: mp3 (22.05/24/44.1 kHz), wav/pcm (8-48 kHz), opus (48 kHz); no flac"


def _tts_model(notes: str = "") -> ModelCapabilities:
    return ModelCapabilities(
        modalities=frozenset({"tts"}), audio_formats=AUDIO_FORMATS, notes="; ".join(filter(None, (notes, _TTS_NOTES)))
    )


def _sts_model(notes: str) -> ModelCapabilities:
    return ModelCapabilities(modalities=frozenset({"sts"}), audio_formats=AUDIO_FORMATS, notes=f"{notes}; {_TTS_NOTES}")


def allowed_combinations() -> str:
    """Every format/rate/bitrate combination ElevenLabs offers, for error messages."""
    mp3 = ", ".join(f"{rate} Hz @ {'/'.join(map(str, rates))} kbps" for rate, rates in MP3_BITRATES.items())
    pcm = "/".join(map(str, PCM_RATES))
    opus = ", ".join(f"{rate} Hz @ {'/'.join(map(str, rates))} kbps" for rate, rates in OPUS_BITRATES.items())
    return f"mp3: {mp3}; wav and pcm: {pcm} Hz; opus: {opus}"


def output_format_param(fmt: AudioOutputFormat) -> str:
    """The ``output_format`` query value for ``fmt``, or ``UnsupportedRequestError``.

    A missing sample rate means the format's usual rate (44100 Hz, 48000 Hz for opus);
    a missing bitrate means the only one offered at that rate, else 128 kbps. Bitrates
    given for wav/pcm are ignored (they are fixed by the rate).
    """
    rate = fmt.sample_rate or DEFAULT_SAMPLE_RATES.get(fmt.format, 0)
    if fmt.format in ("wav", "pcm") and rate in PCM_RATES:
        return f"{fmt.format}_{rate}"
    table = {"mp3": MP3_BITRATES, "opus": OPUS_BITRATES}.get(fmt.format)
    if table is not None and rate in table:
        offered = table[rate]
        bitrate = fmt.bitrate or (offered[0] if len(offered) == 1 else DEFAULT_BITRATE)
        if bitrate in offered:
            return f"{fmt.format}_{rate}_{bitrate}"
    asked = f"format={fmt.format!r}, sample_rate={fmt.sample_rate}, bitrate={fmt.bitrate}"
    raise UnsupportedRequestError(f"ElevenLabs has no output format for {asked} (offered: {allowed_combinations()})")


_eleven_price = price_sheet("https://elevenlabs.io/pricing/api", "2026-11-30",
                            note="API pay-as-you-go rate, as third-party summaries quote the page")
_FLASH = (_eleven_price("1k_characters", 0.05),)
_MULTILINGUAL = (_eleven_price("1k_characters", 0.10),)
_VOICE_CHANGER = (_eleven_price("audio_minute", 0.12, note="voice changer; the input audio's length is not known "
                                                         "before the call: set default_seconds under prices:"),)
ELEVENLABS_PRICES = {
    "eleven_flash_v2": _FLASH,
    "eleven_flash_v2_5": _FLASH,
    "eleven_turbo_v2": _FLASH,
    "eleven_turbo_v2_5": _FLASH,
    "eleven_multilingual_v2": _MULTILINGUAL,
    "eleven_v3": _MULTILINGUAL,
    "eleven_multilingual_sts_v2": _VOICE_CHANGER,
    "eleven_english_sts_v2": _VOICE_CHANGER,
}


class ElevenLabsProvider(JobProvider):
    """ElevenLabs text-to-speech and speech-to-speech over REST (synchronous)."""

    name = "elevenlabs"
    key_check = KeyCheck(
        path="/v1/models", headers="_headers", models_from="[].model_id",
        source="https://elevenlabs.io/docs/api-reference/models/list",
    )
    default_base_url = "https://api.elevenlabs.io"
    api_key_env = "ELEVENLABS_API_KEY"
    modalities = frozenset({"tts", "sts"})
    prices = ELEVENLABS_PRICES
    models = {
        "eleven_v3": _tts_model("most expressive; 70+ languages"),
        "eleven_multilingual_v2": _tts_model("29 languages"),
        "eleven_flash_v2_5": _tts_model("low latency; 32 languages"),
        "eleven_flash_v2": _tts_model("low latency; English"),
        "eleven_turbo_v2_5": _tts_model("32 languages"),
        "eleven_turbo_v2": _tts_model("English"),
        "eleven_multilingual_sts_v2": _sts_model("voice changer; multilingual"),
        "eleven_english_sts_v2": _sts_model("voice changer; English"),
    }

    # -- what a config can serve ------------------------------------------------------

    def check_tts(self, config: AudioGenerationConfig, request: TTSRequest | STSRequest) -> None:
        output_format_param(request.output_format)
        require_voice(DISPLAY_NAME, request, config)

    check_sts = check_tts

    # -- the job protocol (synchronous API) ----------------------------------------------

    def submit_tts(self, ctx: ProviderContext, request: TTSRequest) -> ProviderOutput:
        body: dict[str, Any] = {"text": request.text, "model_id": ctx.model}
        language = language_for(request.language_code)
        if language:
            body["language_code"] = language
        settings = known_settings(request.voice_settings, VOICE_SETTINGS_KEYS)
        if settings:
            body["voice_settings"] = settings
        body.update(request.extra_params)
        voice = require_voice(DISPLAY_NAME, request, ctx.config)
        response = send(
            ctx,
            "POST",
            f"/v1/text-to-speech/{voice}",
            headers=self._headers(ctx),
            params=self._query(ctx, request.output_format),
            json_body=body,
        )
        return self._output(ctx, response, request.output_format, voice)

    def submit_sts(self, ctx: ProviderContext, request: STSRequest) -> ProviderOutput:
        audio, content_type = media_bytes(ctx, request.audio, default_type="audio/mpeg")
        filename = f"input.{EXTENSIONS.get(content_type, 'bin')}"
        fields: dict[str, str] = {"model_id": ctx.model}
        settings = known_settings(request.voice_settings, VOICE_SETTINGS_KEYS)
        if settings:
            fields["voice_settings"] = json.dumps(settings)
        fields.update({key: form_value(value) for key, value in request.extra_params.items()})
        voice = require_voice(DISPLAY_NAME, request, ctx.config)
        response = send(
            ctx,
            "POST",
            # The SDK's path; the older /v1/speech-to-speech/ alias is not relied on (see the module docstring).
            f"/v1/voice-changer/{voice}",
            headers=self._headers(ctx),
            params=self._query(ctx, request.output_format),
            data=fields,
            files={"audio": (filename, audio, content_type)},
        )
        return self._output(ctx, response, request.output_format, voice)

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"xi-api-key": ctx.require_api_key(), "Accept": "audio/*"}

    def _query(self, ctx: ProviderContext, fmt: AudioOutputFormat) -> dict[str, str]:
        query = {"output_format": output_format_param(fmt)}
        logging_flag = ctx.config.provider_config.get("enable_logging")
        if logging_flag is not None:
            query["enable_logging"] = form_value(bool(logging_flag))
        return query

    def _output(
        self, ctx: ProviderContext, response: requests.Response, fmt: AudioOutputFormat, voice: str
    ) -> ProviderOutput:
        extra = {
            "history_item_id": response.headers.get("history-item-id"),
            "character_cost": response.headers.get("character-cost"),
        }
        return audio_output(ctx, response, DISPLAY_NAME, fmt, output_format_param(fmt), voice, extra)

    # -- errors ----------------------------------------------------------------------------

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, dict):
            return None  # validation lists and plain bodies: the default mapping says it well
        code = str(detail.get("code") or detail.get("status") or "")
        message = str(detail.get("message") or code or response.reason)
        common: dict[str, Any] = {"provider": self.name, "model": ctx.model, "request_id": detail.get("request_id")}
        status = response.status_code
        if code in MODERATION_CODES:
            return ContentModerationError(f"ElevenLabs refused the content ({code}): {message}", **common)
        if code in QUOTA_CODES:
            return ProviderHTTPError(
                f"ElevenLabs quota exhausted ({code}, HTTP {status}): {message}; add credits or raise the plan's quota",
                status_code=status,
                retryable=False,
                **common,
            )
        if code in CONCURRENCY_CODES:
            return ProviderHTTPError(
                f"ElevenLabs concurrency limit reached ({code}): {message}",
                status_code=status,
                retryable=True,
                **common,
            )
        if code in BUSY_CODES:
            message = f"ElevenLabs is busy ({code}): {message}"
            return ProviderHTTPError(message, status_code=status, retryable=True, **common)
        error = default_http_error(ctx, response, body)
        error.request_id = common["request_id"]
        return error
