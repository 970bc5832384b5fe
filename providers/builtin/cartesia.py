"""Cartesia speech: Sonic text-to-speech and the voice changer (speech-to-speech), plain REST.

Both endpoints are synchronous: ``submit`` sends the request and returns the audio
bytes as a :class:`ProviderOutput` straight away (there is nothing to poll).

Facts this module relies on ([C] confirmed in docs.cartesia.ai / the official SDK,
[I] inferred and not verified). The oracle is the official ``cartesia`` SDK 4.2.0
(``resources/tts.py``, ``resources/voice_changer.py``, ``types/``), driven against the
emulator in ``tests/conformance/test_cartesia.py``:

- [C] Base ``https://api.cartesia.ai``; headers ``Authorization: Bearer <key>`` and a
  required ``Cartesia-Version`` date. [C SDK] ``2026-08-14`` is the version the current
  SDK sends (older: ``2024-06-10``, ``2024-11-13``, ``2025-04-16``, ``2026-03-01``);
  ``config.api_version`` overrides the default.
- [C SDK] TTS ``POST /tts/bytes`` JSON ``{model_id, transcript, voice, output_format,
  language, generation_config{speed, volume, emotion}}``; the answer is the audio
  itself. From ``2026-08-14`` ``voice`` is an id string or ``{id}``; before it the
  documented form was ``{mode: "id", id}`` (docs.cartesia.ai/build-with-cartesia/
  tts-models/voice-ids), so that form is kept for a config pinned to an older version
  rather than assuming the older versions take the new one. [C] ``generation_config``
  applies to the sonic-3 family; [I] older models ignore it.
- [C] ``output_format``: ``{container: raw|wav, encoding: pcm_s16le|pcm_f32le|pcm_mulaw|
  pcm_alaw, sample_rate}`` or ``{container: mp3, bit_rate, sample_rate}``; sample rates
  8000, 16000, 22050, 24000, 44100, 48000. [C SDK] mp3 ``bit_rate`` 32000, 64000, 96000,
  128000 or 192000 (bps). No flac or opus.
- [C] Voice changer ``POST /voice-changer/bytes``, multipart: file ``clip``, fields
  ``voice[id]``, ``output_format[container]``, ``output_format[sample_rate]``,
  ``output_format[encoding]`` (raw/wav) or ``output_format[bit_rate]`` (mp3). It takes no
  model id: configs use the model name ``voice-changer``.
- [C] Models: ``sonic-3.5``, ``sonic-3`` (+ dated snapshots such as
  ``sonic-3-2026-01-12`` and the ``sonic-3-latest`` alias), ``sonic-2`` and
  ``sonic-turbo`` snapshots (fewer languages since 2026-06-01). ``sonic``,
  ``sonic-english``, ``sonic-multilingual``, ``sonic-2-2025-03-07`` and
  ``sonic-turbo-2025-03-07`` were sunset on 2026-06-01 (error_code ``model_sunsetted``;
  docs.cartesia.ai/build-with-cartesia/tts-models/api-changes): their catalog entries
  carry ``Lifecycle(status="retired")``, so a request for one is skipped before any call.
- [C] Errors: from version 2026-03-01 JSON ``{error_code, title, message, request_id,
  doc_url}``; older versions plain text ``Title: Message``. 429 ``concurrency_limited``
  when over the plan's concurrency (retry with backoff).
- [I] quota and moderation error codes (``QUOTA_CODES``, ``MODERATION_CODES``): no public
  list exists.
- [I] the request id of a success comes back in an ``x-request-id`` header.
- [I] ``language`` is an ISO 639-1 code; a region suffix (``en-US``) is dropped.

Per-config settings (``config.provider_config``): ``voice_id`` pins the voice for this
config, overriding ``request.voice_id`` (so a fallback config never sends another
provider's voice id). ``voice_settings`` keys other than ``speed``, ``volume`` and
``emotion`` are ignored, so one request can carry settings for several providers.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import requests

from schemas import AudioGenerationConfig, AudioOutputFormat, STSRequest, TTSRequest

from providers.core.contract import ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import Lifecycle, ModelCapabilities
from providers.check import KeyCheck
from providers.errors import ContentModerationError, MediagenError, ProviderHTTPError, UnsupportedRequestError
from providers.core.http import default_http_error, form_value, media_bytes, send
from providers.media.formats import EXTENSIONS
from providers.core.pricing import price_sheet
from providers.builtin.speech import audio_output, known_settings, language_for, require_voice

DISPLAY_NAME = "Cartesia"
DEFAULT_API_VERSION = "2026-08-14"
ID_ONLY_VOICE_SINCE = "2026-08-14"
"""The first API version whose ``voice`` is ``{id}`` (earlier: ``{mode: "id", id}``)."""
VOICE_CHANGER_MODEL = "voice-changer"

AUDIO_FORMATS = ("mp3", "wav", "pcm")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
MP3_BITRATES_KBPS = (32, 64, 96, 128, 192)
DEFAULT_SAMPLE_RATE = 44100
DEFAULT_BITRATE_KBPS = 128
CONTAINERS = {"mp3": "mp3", "wav": "wav", "pcm": "raw"}

GENERATION_CONFIG_KEYS = ("speed", "volume", "emotion")
SUNSET_MODELS = frozenset(
    {"sonic", "sonic-english", "sonic-multilingual", "sonic-2-2025-03-07", "sonic-turbo-2025-03-07"}
)
CONCURRENCY_CODES = frozenset({"concurrency_limited", "rate_limited", "too_many_requests"})
QUOTA_CODES = frozenset({"insufficient_credits", "credits_exhausted", "quota_exceeded", "payment_required"})
MODERATION_CODES = frozenset({"content_policy_violation", "content_moderated", "unsafe_content"})
SUNSET = Lifecycle(
    status="retired",
    date=date(2026, 6, 1),
    replacement="sonic-3.5",
    source="https://docs.cartesia.ai/build-with-cartesia/tts-models/api-changes",
)

_FORMAT_NOTES = "output: mp3 (32-192 kbps), wav/pcm s16le; 8-48 kHz; no flac/opus"


def _tts_model(notes: str) -> ModelCapabilities:
    return ModelCapabilities(
        modalities=frozenset({"tts"}), audio_formats=AUDIO_FORMATS, notes=f"{notes}; {_FORMAT_NOTES}"
    )


def allowed_combinations() -> str:
    """Every format/rate/bitrate Cartesia offers, for error messages."""
    rates = "/".join(map(str, SAMPLE_RATES))
    return f"mp3 at {rates} Hz and {'/'.join(map(str, MP3_BITRATES_KBPS))} kbps; wav and pcm at {rates} Hz"


def output_format_for(fmt: AudioOutputFormat) -> dict[str, Any]:
    """Cartesia's ``output_format`` object for ``fmt``, or ``UnsupportedRequestError``.

    A missing sample rate means 44100 Hz, a missing mp3 bitrate 128 kbps; wav and pcm
    are 16-bit little-endian PCM (a bitrate given for them is ignored).
    """
    rate = fmt.sample_rate or DEFAULT_SAMPLE_RATE
    container = CONTAINERS.get(fmt.format)
    bitrate = fmt.bitrate or DEFAULT_BITRATE_KBPS
    if container is None or rate not in SAMPLE_RATES or (container == "mp3" and bitrate not in MP3_BITRATES_KBPS):
        asked = f"format={fmt.format!r}, sample_rate={fmt.sample_rate}, bitrate={fmt.bitrate}"
        raise UnsupportedRequestError(f"Cartesia has no output format for {asked} (offered: {allowed_combinations()})")
    if container == "mp3":
        return {"container": "mp3", "bit_rate": bitrate * 1000, "sample_rate": rate}
    return {"container": container, "encoding": "pcm_s16le", "sample_rate": rate}


def voice_specifier(api_version: str, voice: str) -> dict[str, str]:
    """The TTS ``voice`` object in the shape ``api_version`` documents (ISO dates compare as strings)."""
    if api_version >= ID_ONLY_VOICE_SINCE:
        return {"id": voice}
    return {"mode": "id", "id": voice}


CARTESIA_PRICES = {
    "*": (price_sheet("https://cartesia.ai/pricing", "2026-11-30")("1k_characters", None, note="credits within a subscription plan; no per-character USD rate found"),),
}


class CartesiaProvider(JobProvider):
    """Cartesia Sonic text-to-speech and voice changer over REST (synchronous)."""

    name = "cartesia"
    key_check = KeyCheck(
        path="/voices", headers="_headers", params={"limit": "1"},
        source="https://docs.cartesia.ai/api-reference/voices/list",
    )
    default_base_url = "https://api.cartesia.ai"
    api_key_env = "CARTESIA_API_KEY"
    modalities = frozenset({"tts", "sts"})
    prices = CARTESIA_PRICES
    models = {
        "sonic-3.5*": _tts_model("newest; 42 languages; generation_config speed/volume/emotion"),
        "sonic-3*": _tts_model("42 languages; generation_config speed/volume/emotion; dated snapshots and -latest"),
        "sonic-2*": _tts_model("dated snapshots; 8 languages since 2026-06-01"),
        "sonic-turbo*": _tts_model("dated snapshots; 9 languages since 2026-06-01"),
        "sonic-latest": _tts_model("alias of the newest model (in the SDK's model enum); may change without notice"),
        **{
            name: _tts_model("sunset").model_copy(update={"lifecycle": SUNSET})
            for name in sorted(SUNSET_MODELS)
        },
        VOICE_CHANGER_MODEL: ModelCapabilities(
            modalities=frozenset({"sts"}),
            audio_formats=AUDIO_FORMATS,
            notes=f"POST /voice-changer/bytes (takes no model id); {_FORMAT_NOTES}",
        ),
    }

    # -- what a config can serve ------------------------------------------------------

    def check_tts(self, config: AudioGenerationConfig, request: TTSRequest | STSRequest) -> None:
        output_format_for(request.output_format)
        require_voice(DISPLAY_NAME, request, config)

    check_sts = check_tts

    # -- the job protocol (synchronous API) ----------------------------------------------

    def submit_tts(self, ctx: ProviderContext, request: TTSRequest) -> ProviderOutput:
        voice = require_voice(DISPLAY_NAME, request, ctx.config)
        body: dict[str, Any] = {
            "model_id": ctx.model,
            "transcript": request.text,
            "voice": voice_specifier(self._version(ctx), voice),
            "output_format": output_format_for(request.output_format),
        }
        language = language_for(request.language_code)
        if language:
            body["language"] = language
        generation = known_settings(request.voice_settings, GENERATION_CONFIG_KEYS)
        if generation:
            body["generation_config"] = generation
        body.update(request.extra_params)
        response = send(ctx, "POST", "/tts/bytes", headers=self._headers(ctx), json_body=body)
        return self._output(ctx, response, request.output_format, voice)

    def submit_sts(self, ctx: ProviderContext, request: STSRequest) -> ProviderOutput:
        voice = require_voice(DISPLAY_NAME, request, ctx.config)
        audio, content_type = media_bytes(ctx, request.audio, default_type="audio/mpeg")
        fields = {"voice[id]": voice}
        output_format = output_format_for(request.output_format)
        fields.update({f"output_format[{key}]": str(value) for key, value in output_format.items()})
        fields.update({key: form_value(value) for key, value in request.extra_params.items()})
        filename = f"clip.{EXTENSIONS.get(content_type, 'bin')}"
        response = send(
            ctx,
            "POST",
            "/voice-changer/bytes",
            headers=self._headers(ctx),
            data=fields,
            files={"clip": (filename, audio, content_type)},
        )
        return self._output(ctx, response, request.output_format, voice)

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {ctx.require_api_key()}",
            "Cartesia-Version": self._version(ctx),
        }

    def _version(self, ctx: ProviderContext) -> str:
        return ctx.config.api_version or DEFAULT_API_VERSION

    def _output(
        self, ctx: ProviderContext, response: requests.Response, fmt: AudioOutputFormat, voice: str
    ) -> ProviderOutput:
        return audio_output(ctx, response, DISPLAY_NAME, fmt, output_format_for(fmt), voice)

    # -- errors ----------------------------------------------------------------------------

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        if not isinstance(body, dict):
            return None  # older API versions answer "Title: Message" as text: the default mapping shows it
        code = str(body.get("error_code") or "")
        message = str(body.get("message") or body.get("title") or code or response.reason)
        status = response.status_code
        common: dict[str, Any] = {"provider": self.name, "model": ctx.model, "request_id": body.get("request_id")}
        if code in MODERATION_CODES:
            return ContentModerationError(f"Cartesia refused the content ({code}): {message}", **common)
        if code in QUOTA_CODES:
            return ProviderHTTPError(
                f"Cartesia quota exhausted ({code}, HTTP {status}): {message}; add credits or raise the plan",
                status_code=status,
                retryable=False,
                **common,
            )
        if code in CONCURRENCY_CODES:
            return ProviderHTTPError(
                f"Cartesia concurrency/rate limit reached ({code}): {message}",
                status_code=status,
                retryable=True,
                **common,
            )
        if code == "model_sunsetted":
            return ProviderHTTPError(
                f"Cartesia no longer serves model {ctx.model!r} ({code}): {message}",
                status_code=status,
                retryable=False,
                **common,
            )
        error = default_http_error(ctx, response, body)
        error.request_id = common["request_id"]
        return error
