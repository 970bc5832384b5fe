"""Cartesia text-to-speech and voice changer against the official ``cartesia`` SDK.

Our client sends a request to the emulator, then the SDK is called with exactly what
our client sent (so a field the SDK does not know is a ``TypeError``). Both recorded
requests must be the same on the wire (path, ``Authorization``, ``Cartesia-Version``,
body or multipart fields); our TTS body must validate strictly against the SDK's
``TTSGenerateParams`` (no key it does not declare, every ``output_format`` value in its
enums); the audio must decode as asked. Cartesia's answers are audio bytes, for which
the SDK has no type; errors are checked against the SDK's status-code exceptions and
the documented JSON error keys.
"""

from __future__ import annotations

import pytest

from providers import generate_sts, generate_tts
from providers.builtin.cartesia import DEFAULT_API_VERSION, MP3_BITRATES_KBPS, SAMPLE_RATES, VOICE_CHANGER_MODEL
from providers.core.http import data_url
from schemas import AudioGenerationConfig, AudioOutputFormat
from tests.conformance.sdk_oracle import multipart, strictly, wire
from tests.providers.builtin.speech_helpers import decode

cartesia = pytest.importorskip("cartesia")
from cartesia.types.tts_generate_params import TTSGenerateParams  # noqa: E402

AUTH = "Authorization"
VERSION = "Cartesia-Version"
VOICE = "694f9389-aac1-45b6-b726-9d9369183238"
DECODERS = {"mp3": "mp3float", "wav": "pcm_s16le", "pcm": "pcm_s16le"}
FORMATS = [AudioOutputFormat(format=f, sample_rate=r) for r in SAMPLE_RATES for f in ("mp3", "wav", "pcm")] + [
    AudioOutputFormat(format="mp3", sample_rate=44100, bitrate=b) for b in MP3_BITRATES_KBPS if b != 128
]


def fmt_id(fmt: AudioOutputFormat) -> str:
    return f"{fmt.format}-{fmt.sample_rate}-{fmt.bitrate or ''}"


def sdk(emulator) -> "cartesia.Cartesia":
    return cartesia.Cartesia(api_key=emulator.key_for("cartesia"), base_url=emulator.url_for("cartesia"), max_retries=0)


def config(emulator, model: str) -> AudioGenerationConfig:
    return AudioGenerationConfig(provider="cartesia", model=model, base_url=emulator.url_for("cartesia"),
                                 api_key=emulator.key_for("cartesia"))


def test_we_pin_the_api_version_the_sdk_sends(emulator):
    assert sdk(emulator).default_headers["cartesia-version"] == DEFAULT_API_VERSION


@pytest.mark.parametrize("fmt", FORMATS, ids=fmt_id)
def test_tts_request_is_the_sdks_request_and_the_audio_decodes(emulator, fmt):
    generate_tts(config(emulator, "sonic-3"), text="Conformance, in every format.", voice_id=VOICE, language_code="en-US",
                 output_format=fmt, voice_settings={"speed": 1.1, "volume": 0.9, "emotion": "calm"})
    ours = emulator.last("cartesia.tts")
    assert ours.status == 200
    strictly(TTSGenerateParams, ours.json)

    audio = sdk(emulator).tts.generate(**ours.json).read()
    theirs = emulator.last("cartesia.tts")
    assert wire(ours, AUTH, VERSION) == wire(theirs, AUTH, VERSION)
    assert ours.json == theirs.json and ours.json["voice"] == {"id": VOICE}
    codec, rate, seconds = decode(audio, raw_pcm_rate=fmt.sample_rate if fmt.format == "pcm" else None)
    assert (codec, rate) == (DECODERS[fmt.format], fmt.sample_rate) and seconds > 0.5


@pytest.mark.parametrize(
    "fmt",
    [AudioOutputFormat(format="mp3", sample_rate=44100, bitrate=192), AudioOutputFormat(format="wav", sample_rate=16000),
     AudioOutputFormat(format="pcm", sample_rate=24000)],
    ids=fmt_id,
)
def test_voice_changer_request_is_the_sdks_request_and_the_audio_decodes(emulator, fmt):
    source = emulator.audio_clip("speech to change", audio_format="mp3").data
    generate_sts(config(emulator, VOICE_CHANGER_MODEL), audio=data_url(source, "audio/mpeg"), voice_id=VOICE,
                 output_format=fmt)
    ours = emulator.last("cartesia.voice_changer")
    assert ours.status == 200
    clip = ours.files["clip"][0]
    fields = {key.replace("[", "_").rstrip("]"): value for key, value in ours.form.items()}  # voice[id] -> voice_id
    for key in ("output_format_sample_rate", "output_format_bit_rate"):
        if key in fields:
            fields[key] = int(fields[key])  # the SDK types these as int
    audio = sdk(emulator).voice_changer.generate(clip=(clip.filename, clip.data, clip.content_type), **fields).read()
    theirs = emulator.last("cartesia.voice_changer")
    assert wire(ours, AUTH, VERSION) == wire(theirs, AUTH, VERSION)
    assert multipart(ours) == multipart(theirs)
    codec, rate, _ = decode(audio, raw_pcm_rate=fmt.sample_rate if fmt.format == "pcm" else None)
    assert (codec, rate) == (DECODERS[fmt.format], fmt.sample_rate)


def test_errors_map_to_the_sdks_exceptions_with_the_documented_json_keys(emulator):
    wrong = cartesia.Cartesia(api_key="wrong", base_url=emulator.url_for("cartesia"), max_retries=0)
    with pytest.raises(cartesia.AuthenticationError) as info:
        wrong.tts.generate(model_id="sonic-3", transcript="x", voice=VOICE,
                           output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000})
    # docs.cartesia.ai "API Errors" (version >= 2026-03-01): {error_code, title, message, request_id[, doc_url]}
    assert set(info.value.body) <= {"error_code", "title", "message", "request_id", "doc_url"}
    assert {"error_code", "title", "message", "request_id"} <= set(info.value.body)
    with pytest.raises(cartesia.BadRequestError) as info:
        sdk(emulator).tts.generate(model_id="sonic-english", transcript="x", voice=VOICE,
                                   output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000})
    assert info.value.body["error_code"] == "model_sunsetted"
