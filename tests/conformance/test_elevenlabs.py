"""ElevenLabs text-to-speech and voice changer against the official ``elevenlabs`` SDK.

Our client sends a request to the emulator, then the SDK is called with exactly what
our client sent (path voice id, ``output_format`` query, body or multipart fields), so a
field the SDK does not know is a ``TypeError``. Both recorded requests must be the same
on the wire; every ``output_format`` value we can produce must be in the SDK's enum;
the audio must decode as asked; 422 bodies must validate strictly against the SDK's
``HttpValidationError``.
"""

from __future__ import annotations

import json
import typing

import pytest

from providers import generate_sts, generate_tts
from providers.builtin.elevenlabs import AUDIO_FORMATS, MP3_BITRATES, OPUS_BITRATES, PCM_RATES, output_format_param
from providers.core.http import data_url
from schemas import AudioGenerationConfig, AudioOutputFormat
from tests.conformance.sdk_oracle import multipart, strictly, wire
from tests.emulator.routes.elevenlabs import OUTPUT_FORMATS
from tests.providers.builtin.speech_helpers import decode

elevenlabs = pytest.importorskip("elevenlabs")
from elevenlabs.core.api_error import ApiError  # noqa: E402
from elevenlabs.speech_to_speech.types import SpeechToSpeechConvertRequestOutputFormat  # noqa: E402
from elevenlabs.text_to_speech.types import TextToSpeechConvertRequestOutputFormat  # noqa: E402
from elevenlabs.types import HttpValidationError, VoiceSettings  # noqa: E402

AUTH = "xi-api-key"
VOICE = "JBFqnCBsd6RMkjVDRZzb"
DECODERS = {"mp3": "mp3float", "wav": "pcm_s16le", "pcm": "pcm_s16le", "opus": "opus"}


def _literal_values(alias: typing.Any) -> set[str]:
    literal = next(arg for arg in typing.get_args(alias) if typing.get_origin(arg) is typing.Literal)
    return set(typing.get_args(literal))


def our_formats() -> list[AudioOutputFormat]:
    """Every (format, rate, bitrate) our client maps to an ``output_format`` value."""
    formats = [AudioOutputFormat(format=f, sample_rate=r) for f in ("wav", "pcm") for r in PCM_RATES]
    for fmt, table in (("mp3", MP3_BITRATES), ("opus", OPUS_BITRATES)):
        formats += [AudioOutputFormat(format=fmt, sample_rate=r, bitrate=b) for r, rates in table.items() for b in rates]
    assert {f.format for f in formats} == set(AUDIO_FORMATS)
    return formats


def sdk(emulator) -> "elevenlabs.ElevenLabs":
    return elevenlabs.ElevenLabs(api_key=emulator.key_for("elevenlabs"), base_url=emulator.url_for("elevenlabs"))


def config(emulator, model: str) -> AudioGenerationConfig:
    return AudioGenerationConfig(provider="elevenlabs", model=model, base_url=emulator.url_for("elevenlabs"),
                                 api_key=emulator.key_for("elevenlabs"))


@pytest.mark.parametrize("sdk_enum", [TextToSpeechConvertRequestOutputFormat, SpeechToSpeechConvertRequestOutputFormat])
def test_every_output_format_we_send_is_in_the_sdks_enum_and_the_emulator_serves_exactly_that_enum(sdk_enum):
    allowed = _literal_values(sdk_enum)
    assert {output_format_param(fmt) for fmt in our_formats()} <= allowed
    assert set(OUTPUT_FORMATS) == allowed


@pytest.mark.parametrize("fmt", our_formats(), ids=output_format_param)
def test_tts_request_is_the_sdks_request_and_the_audio_decodes(emulator, fmt):
    generate_tts(config(emulator, "eleven_multilingual_v2"), text="Hello there, conformance.", voice_id=VOICE,
                 language_code="en-GB", output_format=fmt, seed=7, previous_text="Before.",
                 voice_settings={"stability": 0.5, "similarity_boost": 0.75, "style": 0.1, "use_speaker_boost": True,
                                 "speed": 1.05})
    ours = emulator.last("elevenlabs.tts")
    assert ours.status == 200
    strictly(VoiceSettings, ours.json["voice_settings"])
    voice = ours.params["voice_id"]
    audio = b"".join(sdk(emulator).text_to_speech.convert(voice, **ours.query, **ours.json))
    theirs = emulator.last("elevenlabs.tts")
    assert wire(ours, AUTH) == wire(theirs, AUTH)
    assert ours.json == theirs.json and ours.headers["content-type"] == theirs.headers["content-type"]
    codec, rate, seconds = decode(audio, raw_pcm_rate=fmt.sample_rate if fmt.format == "pcm" else None)
    assert codec == DECODERS[fmt.format] and seconds > 0.5
    assert rate == fmt.sample_rate


@pytest.mark.parametrize(
    "fmt",
    [AudioOutputFormat(format="mp3", sample_rate=44100, bitrate=128), AudioOutputFormat(format="wav", sample_rate=16000),
     AudioOutputFormat(format="pcm", sample_rate=24000), AudioOutputFormat(format="opus", sample_rate=48000, bitrate=64)],
    ids=output_format_param,
)
def test_voice_changer_request_is_the_sdks_request_and_the_audio_decodes(emulator, fmt):
    source = emulator.audio_clip("speech to convert", audio_format="mp3").data
    settings = {"stability": 0.3, "style": 0.2}
    generate_sts(config(emulator, "eleven_multilingual_sts_v2"), audio=data_url(source, "audio/mpeg"), voice_id=VOICE,
                 output_format=fmt, voice_settings=settings, remove_background_noise=True, seed=3)
    ours = emulator.last("elevenlabs.sts")
    assert ours.status == 200 and ours.path == f"/v1/voice-changer/{VOICE}"
    part = ours.files["audio"][0]
    # The SDK gets the same values in its own types (bool, int, JSON string), not our form strings.
    audio = b"".join(sdk(emulator).speech_to_speech.convert(
        VOICE, audio=(part.filename, part.data, part.content_type), output_format=output_format_param(fmt),
        model_id="eleven_multilingual_sts_v2", voice_settings=json.dumps(settings), remove_background_noise=True, seed=3,
    ))
    theirs = emulator.last("elevenlabs.sts")
    assert wire(ours, AUTH) == wire(theirs, AUTH)
    assert multipart(ours) == multipart(theirs)
    assert json.loads(ours.form["voice_settings"]) == settings
    codec, rate, _ = decode(audio, raw_pcm_rate=fmt.sample_rate if fmt.format == "pcm" else None)
    assert (codec, rate) == (DECODERS[fmt.format], fmt.sample_rate)


def test_validation_errors_validate_against_the_sdks_type(emulator):
    with pytest.raises(ApiError) as info:
        b"".join(sdk(emulator).text_to_speech.convert(VOICE, text="hi", output_format="mp3_8000_8"))
    assert info.value.status_code == 422
    error = strictly(HttpValidationError, info.value.body)
    assert error.detail[0].loc == ["query", "output_format"]
