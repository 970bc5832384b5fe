"""Hume Octave TTS and voice conversion against the official ``hume`` SDK as the oracle.

Hume's TTS API closed on 2026-11-13 (every Hume model is retired in the catalog); the
client is still held to the SDK, with the retirement lifted for these tests. Our TTS
body must validate strictly against the SDK's request type ``PostedTts``; the SDK is
then called with exactly those fields, and both recorded requests must be the same on
the wire. Every answer must validate strictly against ``ReturnTts`` (errors against
``HttpValidationError`` / ``ErrorResponse``) and decode as the audio asked for.
"""

from __future__ import annotations

import base64
import json

import pytest

from providers import generate_sts, generate_tts
from providers.core.http import data_url
from providers.builtin.hume import FORMATS, HUME_SAMPLE_RATE, HumeProvider
from schemas import AudioGenerationConfig, AudioOutputFormat
from tests.conformance.sdk_oracle import strictly, wire
from tests.conftest import serve_retired_models
from tests.providers.builtin.speech_helpers import decode

hume = pytest.importorskip("hume")
from hume.core.api_error import ApiError  # noqa: E402
from hume.tts.types import (  # noqa: E402
    ErrorResponse,
    Format,
    HttpValidationError,
    PostedTts,
    PostedUtteranceVoice,
    ReturnTts,
)

AUTH = "X-Hume-Api-Key"
VOICE_UUID = "5bb7de05-c8fe-426a-8fcc-ba4fc4ce9f9c"
DECODERS = {"mp3": "mp3float", "wav": "pcm_s16le", "pcm": "pcm_s16le"}
TTS_CASES = [
    # (model, voice_id, provider_config)
    ("octave-2", "Ava Song", {"trailing_silence": 0.4}),
    ("octave-1", VOICE_UUID, {"voice_provider": "CUSTOM_VOICE"}),
    ("octave", None, {}),  # a voice designed from the description; version left to Hume
]


@pytest.fixture(autouse=True)
def active_hume(monkeypatch):
    serve_retired_models(monkeypatch, HumeProvider.models)


def sdk(emulator) -> "hume.HumeClient":
    return hume.HumeClient(api_key=emulator.key_for("hume"), base_url=emulator.url_for("hume"))


def config(emulator, model: str, **fields) -> AudioGenerationConfig:
    return AudioGenerationConfig(provider="hume", model=model, base_url=emulator.url_for("hume"),
                                 api_key=emulator.key_for("hume"), **fields)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model, voice_id, provider_config", TTS_CASES, ids=[c[0] for c in TTS_CASES])
def test_tts_body_is_a_posted_tts_sent_as_the_sdk_sends_it_and_the_answer_is_a_return_tts(
    emulator, model, voice_id, provider_config, fmt
):
    generate_tts(config(emulator, model, provider_config=provider_config), text="The numbers all turned green.",
                 voice_id=voice_id, voice_settings={"description": "relieved, quietly proud", "speed": 1.1},
                 output_format=AudioOutputFormat(format=fmt, sample_rate=None), split_utterances=False)
    ours = emulator.last("hume.tts")
    assert ours.status == 200
    posted = strictly(PostedTts, ours.json)

    answer = sdk(emulator).tts.synthesize_json(**{key: getattr(posted, key) for key in ours.json})
    theirs = emulator.last("hume.tts")
    assert wire(ours, AUTH) == wire(theirs, AUTH)
    assert ours.json == theirs.json

    strictly(ReturnTts, answer.model_dump(mode="json"))
    generation = answer.generations[0]
    assert (generation.encoding.format, generation.encoding.sample_rate) == (fmt, HUME_SAMPLE_RATE)
    assert [len(group) for group in generation.snippets] == [1]  # one group per utterance
    audio = base64.b64decode(generation.audio)
    codec, rate, seconds = decode(audio, raw_pcm_rate=HUME_SAMPLE_RATE if fmt == "pcm" else None)
    assert (codec, rate) == (DECODERS[fmt], HUME_SAMPLE_RATE) and seconds == pytest.approx(generation.duration, abs=0.01)
    assert generation.file_size == len(audio)


@pytest.mark.parametrize("fmt", FORMATS)
def test_voice_conversion_request_is_the_sdks_request_and_the_audio_decodes(emulator, fmt):
    source = emulator.audio_clip("the original performance", audio_format="wav", sample_rate=16000).data
    generate_sts(config(emulator, "voice-conversion"), audio=data_url(source, "audio/wav"), voice_id="Inspiring Man",
                 output_format={"format": fmt})
    ours = emulator.last("hume.voice_conversion")
    assert ours.status == 200
    voice = strictly(PostedUtteranceVoice, json.loads(ours.form["voice"]))
    out_format = strictly(Format, json.loads(ours.form["format"]))
    part = ours.files["audio"][0]

    audio = b"".join(sdk(emulator).tts.convert_voice_file(
        audio=(part.filename, part.data, part.content_type), voice=voice, format=out_format
    ))
    theirs = emulator.last("hume.voice_conversion")
    assert wire(ours, AUTH) == wire(theirs, AUTH)
    # The SDK also sends the parts it was not given as the JSON text "null"; we leave them out.
    sdk_fields = {key: value for key, value in theirs.form.items() if value != "null"}
    assert {k: json.loads(v) for k, v in ours.form.items()} == {k: json.loads(v) for k, v in sdk_fields.items()}
    assert set(theirs.form) - set(ours.form) <= {"context", "include_timestamp_types"}
    assert {name: [p.content_type for p in parts] for name, parts in ours.files.items()} == \
        {name: [p.content_type for p in parts] for name, parts in theirs.files.items()}
    codec, rate, _ = decode(audio, raw_pcm_rate=HUME_SAMPLE_RATE if fmt == "pcm" else None)
    assert (codec, rate) == (DECODERS[fmt], HUME_SAMPLE_RATE)


def test_validation_errors_are_http_validation_errors(emulator):
    with pytest.raises(ApiError) as info:
        sdk(emulator).tts.synthesize_json(utterances=[{"text": "hi"}], num_generations=9)
    assert info.value.status_code == 422
    error = strictly(HttpValidationError, info.value.body.model_dump(mode="json", exclude_unset=True))
    assert error.detail[0].loc == ["body", "num_generations"]


def test_version_2_without_a_voice_is_rejected_as_an_error_response(emulator):
    with pytest.raises(ApiError) as info:
        sdk(emulator).tts.synthesize_json(utterances=[{"text": "hi", "description": "a narrator"}], version="2")
    assert info.value.status_code == 400
    assert "voice" in strictly(ErrorResponse, info.value.body).message
