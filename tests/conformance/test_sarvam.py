"""Sarvam text-to-speech against the official ``sarvamai`` SDK as the oracle.

For every model and every output format mediagen offers for it, our client sends a
request to the emulator, then the SDK is called with exactly the fields our client
sent (so a field the SDK does not know is a ``TypeError``). Both recorded requests
must be identical on the wire (method, path, auth header, JSON body), and the
emulator's answer must validate strictly against the SDK's ``TextToSpeechResponse``
(errors against ``ErrorMessage``) and decode as the audio asked for.
"""

from __future__ import annotations

import base64

import pytest
import requests

from providers import generate_tts
from providers.builtin.sarvam import BULBUL, CODECS
from schemas import AudioGenerationConfig, AudioOutputFormat
from tests.conformance.sdk_oracle import strictly, wire
from tests.providers.builtin.speech_helpers import decode

sarvamai = pytest.importorskip("sarvamai")
from sarvamai.core.api_error import ApiError  # noqa: E402
from sarvamai.environment import SarvamAIEnvironment  # noqa: E402
from sarvamai.types import ErrorMessage, TextToSpeechResponse  # noqa: E402

AUTH = "api-subscription-key"
DECODERS = {"mp3": "mp3float", "wav": "pcm_s16le", "pcm": "pcm_s16le", "flac": "flac", "opus": "opus"}
CASES = [
    (model, fmt, rate)
    for model, spec in BULBUL.items()
    for fmt in spec.formats
    for rate in (None, max(r for r in spec.sample_rates if fmt != "opus" or r in (8000, 16000, 24000, 48000)))
]


def sdk(emulator) -> "sarvamai.SarvamAI":
    base = emulator.url_for("sarvam")
    environment = SarvamAIEnvironment(base=base, creative=f"{base}/dubbing", production=base.replace("http", "ws"))
    return sarvamai.SarvamAI(api_subscription_key=emulator.key_for("sarvam"), environment=environment)


def config(emulator, model: str) -> AudioGenerationConfig:
    return AudioGenerationConfig(
        provider="sarvam", model=model, base_url=emulator.url_for("sarvam"), api_key=emulator.key_for("sarvam")
    )


@pytest.mark.parametrize("model, fmt, rate", CASES)
def test_our_request_is_the_sdks_request_and_the_answer_validates(emulator, model, fmt, rate):
    output_format = AudioOutputFormat(format=fmt, sample_rate=rate)
    knobs = {"pitch": 0.1, "loudness": 1.2} if model == "bulbul:v2" else {"temperature": 0.5}
    generate_tts(config(emulator, model), text="नमस्ते दुनिया", language_code="hi", output_format=output_format,
                 voice_settings={"pace": 1.1, **knobs})
    ours = emulator.last("sarvam.tts")
    assert ours.status == 200

    answer = sdk(emulator).text_to_speech.convert(**ours.json)  # TypeError on any field the SDK does not send
    theirs = emulator.last("sarvam.tts")
    assert wire(ours, AUTH) == wire(theirs, AUTH)
    assert ours.json == theirs.json
    assert ours.json["language_code"] == "hi-IN" and ours.json["output_audio_codec"] == CODECS[fmt]

    strictly(TextToSpeechResponse, answer.model_dump(mode="json", exclude_unset=True))
    audio = base64.b64decode(answer.audios[0])
    expected_rate = rate or 22050  # the SDK's documented default for every model
    codec, decoded_rate, seconds = decode(audio, raw_pcm_rate=expected_rate if fmt == "pcm" else None)
    assert codec == DECODERS[fmt] and seconds > 0.2
    assert decoded_rate == (48000 if fmt == "opus" else expected_rate)  # Opus always decodes at 48 kHz


def test_the_sdk_request_defaults_are_accepted(emulator):
    """The SDK's minimal call (model and codec left to the server) works and answers WAV at 22050 Hz."""
    answer = sdk(emulator).text_to_speech.convert(text="hello", language_code="en-IN")
    sent = emulator.last("sarvam.tts")
    assert sent.path == "/text-to-speech" and sent.json == {"text": "hello", "language_code": "en-IN"}
    strictly(TextToSpeechResponse, answer.model_dump(mode="json", exclude_unset=True))
    assert decode(base64.b64decode(answer.audios[0]))[:2] == ("pcm_s16le", 22050)


def test_the_pre_0_1_10_field_name_alone_is_refused(emulator):
    """The emulator follows the current SDK: ``target_language_code`` alone is a missing ``language_code``."""
    body = {"text": "hello", "target_language_code": "en-IN", "model": "bulbul:v3"}
    answer = requests.post(f"{emulator.url_for('sarvam')}/text-to-speech", json=body,
                           headers={AUTH: emulator.key_for("sarvam")}, timeout=10)
    assert answer.status_code == 400
    error = strictly(ErrorMessage, answer.json())
    assert error.error.code == "invalid_request_error" and "language_code : Field required" in error.error.message


@pytest.mark.parametrize("model", ["bulbul:v3", "bulbul:v4-flash"])
def test_opus_on_v3_and_v4_flash_is_a_validation_error_as_the_sdk_documents(emulator, model):
    with pytest.raises(ApiError) as info:
        sdk(emulator).text_to_speech.convert(text="hello", language_code="en-IN", model=model, output_audio_codec="opus")
    assert info.value.status_code == 400
    assert strictly(ErrorMessage, info.value.body).error.code == "invalid_request_error"


def test_errors_validate_against_the_sdks_error_type(emulator):
    bad_key = sarvamai.SarvamAI(api_subscription_key="wrong", environment=sdk(emulator)._client_wrapper.get_environment())
    with pytest.raises(ApiError) as info:
        bad_key.text_to_speech.convert(text="hello", language_code="en-IN")
    assert info.value.status_code == 403  # Sarvam answers a bad key with 403, and the SDK maps it to ForbiddenError
    assert type(info.value).__name__ == "ForbiddenError"
    assert strictly(ErrorMessage, info.value.body).error.code == "invalid_api_key_error"
    assert info.value.headers["x-request-id"] == info.value.body["error"]["request_id"]
