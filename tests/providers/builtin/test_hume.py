"""Hume Octave TTS and voice conversion over the emulator: request mapping, audio
formats, refusals before any request, STS inputs, error translation, fallbacks.

Hume's TTS API closed on 2026-11-13, so every Hume model is retired in the catalog; the
wire tests below run with the models re-activated (the ``active_hume`` fixture), and
``test_hume_is_retired_...`` checks the catalog as shipped."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from providers import RetryPolicy, generate_sts, generate_sts_async, generate_tts, generate_tts_async
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderAuthError,
    UnsupportedRequestError,
)
from providers.core.http import data_url
from providers.builtin.hume import HumeProvider
from providers.media.probe import probe_media
from schemas import AudioGenerationConfig, AudioOutputFormat, MockConfig
from tests.conftest import serve_retired_models
from tests.emulator import Fault
from tests.providers.builtin.speech_helpers import audio_of, decode, numbered_summary

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
VOICE_UUID = "5bb7de05-c8fe-426a-8fcc-ba4fc4ce9f9c"
VOICE = "Ava Song"
SHIPPED_MODELS = dict(HumeProvider.models)


@pytest.fixture(autouse=True)
def active_hume(monkeypatch):
    """The catalog's Hume models with the retirement lifted, so the client can be exercised."""
    serve_retired_models(monkeypatch, HumeProvider.models)


def hume(emulator, model: str = "octave-2", **fields) -> AudioGenerationConfig:
    return AudioGenerationConfig(
        provider="hume", model=model, base_url=emulator.url_for("hume"), api_key=emulator.key_for("hume"), **fields
    )


def sarvam(emulator) -> AudioGenerationConfig:
    return AudioGenerationConfig(
        provider="sarvam", model="bulbul:v3", base_url=emulator.url_for("sarvam"), api_key=emulator.key_for("sarvam")
    )


# -- text to speech ------------------------------------------------------------------------------


def test_tts_sends_hume_request_and_returns_decodable_audio(emulator):
    updates = []
    response = generate_tts(
        hume(emulator, provider_config={"trailing_silence": 0.5}),
        text="The dashboard refreshed, and every number turned green.",
        voice_id="Ava Song",
        voice_settings={"description": "relieved, a small disbelieving smile", "speed": 1.1},
        split_utterances=False,
        on_progress=updates.append,
        retry=FAST,
    )
    sent = emulator.last("hume.tts")
    assert sent.method == "POST" and sent.path == "/v0/tts"
    assert sent.headers["X-Hume-Api-Key"] == emulator.key_for("hume")
    assert sent.json == {
        "utterances": [
            {
                "text": "The dashboard refreshed, and every number turned green.",
                "description": "relieved, a small disbelieving smile",
                "speed": 1.1,
                "trailing_silence": 0.5,
                "voice": {"name": "Ava Song", "provider": "HUME_AI"},
            }
        ],
        "format": {"type": "mp3"},
        "num_generations": 1,
        "version": "2",
        "split_utterances": False,
    }
    # The default format (mp3, 44100 Hz) is a default, not a requirement: Hume's 48 kHz serves it.
    info = probe_media(audio_of(response))
    assert response.content_type == "audio/mpeg" and (info.codec, info.sample_rate) == ("mp3", 48000)
    assert response.duration == pytest.approx(info.duration_seconds, abs=0.01)
    assert response.raw_response["encoding"] == {"format": "mp3", "sample_rate": 48000}
    attempt = response.execution_metadata.attempts[0]
    assert attempt.status == "success" and attempt.request_id == response.raw_response["request_id"]
    assert [u.status for u in updates] == ["completed"]


def test_tts_async_by_voice_id_with_custom_voice_and_octave_1(emulator):
    config = hume(emulator, "octave-1", provider_config={"voice_provider": "CUSTOM_VOICE"})
    response = asyncio.run(generate_tts_async(config, text="hello", voice_id=VOICE_UUID))
    sent = emulator.last("hume.tts").json
    assert sent["utterances"][0]["voice"] == {"id": VOICE_UUID, "provider": "CUSTOM_VOICE"} and sent["version"] == "1"
    assert probe_media(audio_of(response)).kind == "audio"


def test_version_left_to_hume_or_forced_by_config(emulator):
    generate_tts(hume(emulator, "octave"), text="a voice designed from a prompt", voice_settings={"description": "old sailor"})
    sent = emulator.last("hume.tts").json
    assert "version" not in sent and "voice" not in sent["utterances"][0]
    generate_tts(hume(emulator, "octave", provider_config={"version": 2, "voice_by": "name"}), text="x", voice_id=VOICE_UUID)
    sent = emulator.last("hume.tts").json
    assert sent["version"] == "2" and sent["utterances"][0]["voice"] == {"name": VOICE_UUID, "provider": "HUME_AI"}


@pytest.mark.parametrize(
    "fmt, sample_rate, content_type, codec",
    [("mp3", 48000, "audio/mpeg", "mp3float"), ("wav", None, "audio/wav", "pcm_s16le"), ("pcm", 48000, "audio/pcm", "pcm_s16le")],
)
def test_every_supported_format_decodes_at_48_khz(emulator, fmt, sample_rate, content_type, codec):
    output_format = AudioOutputFormat(format=fmt, sample_rate=sample_rate)
    response = generate_tts(hume(emulator), text="format check", voice_id=VOICE, output_format=output_format)
    assert emulator.last("hume.tts").json["format"] == {"type": fmt}
    assert response.content_type == content_type
    decoded_codec, rate, seconds = decode(audio_of(response), raw_pcm_rate=48000 if fmt == "pcm" else None)
    assert (decoded_codec, rate) == (codec, 48000) and seconds > 0.3
    assert response.duration == pytest.approx(seconds, abs=0.05)


@pytest.mark.parametrize(
    "output_format, reason",
    [
        ({"format": "flac"}, "output_format='flac' not supported"),
        ({"format": "opus", "sample_rate": 48000}, "output_format='opus' not supported"),
        ({"format": "wav", "sample_rate": 16000}, "sample_rate=16000 not supported by hume"),
        ({"format": "mp3", "sample_rate": 44100, "bitrate": 192}, "sample_rate=44100 not supported by hume"),
    ],
)
def test_formats_hume_cannot_produce_are_skipped_before_any_request(emulator, output_format, reason):
    with pytest.raises(UnsupportedRequestError) as info:
        generate_tts(hume(emulator), text="hello", output_format=output_format)
    assert reason in str(info.value) and [a.status for a in info.value.execution_metadata.attempts] == ["skipped"]
    assert emulator.requests_for(provider="hume") == []


def test_unserviceable_format_falls_through_to_the_next_config(emulator):
    config = hume(emulator, fallback_configs=[sarvam(emulator)])
    response = generate_tts(config, text="hello", language_code="en-IN", output_format={"format": "flac", "sample_rate": 24000})
    assert numbered_summary(response.execution_metadata) == [
        ("hume", 1, 1, "skipped", "UnsupportedRequestError"), ("sarvam", 2, 1, "success", None)
    ]
    assert emulator.count("hume.tts") == 0 and decode(audio_of(response))[:2] == ("flac", 24000)


def test_tts_model_does_not_do_sts_and_conversion_model_does_not_do_tts(emulator):
    with pytest.raises(UnsupportedRequestError, match="does not do sts"):
        generate_sts(hume(emulator, "octave-2"), audio="aGVsbG8=", voice_id="Ava Song")
    with pytest.raises(UnsupportedRequestError, match="does not do tts"):
        generate_tts(hume(emulator, "voice-conversion"), text="hello")
    assert emulator.requests_for(provider="hume") == []


# -- speech to speech -----------------------------------------------------------------------------


def _sts_input(emulator, kind: str):
    clip = emulator.audio_clip("the original performance", audio_format="wav", sample_rate=16000)
    if kind == "media_content":
        return {"content": clip.data, "content_type": "audio/wav"}, clip.data, "audio/wav"
    if kind == "base64":
        return base64.b64encode(clip.data).decode("ascii"), clip.data, "audio/wav"  # type sniffed from the bytes
    if kind == "data_url":
        return data_url(clip.data, "audio/wav"), clip.data, "audio/wav"
    url = emulator.host_audio("the original performance", audio_format="mp3", provider="hume")
    return url, emulator.media_bytes(url), "audio/mpeg"


@pytest.mark.parametrize("kind", ["media_content", "base64", "data_url", "url"])
def test_sts_uploads_the_input_audio_as_multipart(emulator, kind):
    audio, expected_bytes, expected_type = _sts_input(emulator, kind)
    response = generate_sts(hume(emulator, "voice-conversion"), audio=audio, voice_id="Inspiring Man", retry=FAST)
    sent = emulator.last("hume.voice_conversion")
    assert sent.path == "/v0/tts/voice_conversion/file" and sent.headers["X-Hume-Api-Key"] == emulator.key_for("hume")
    (upload,) = sent.files["audio"]
    assert upload.data == expected_bytes and upload.content_type == expected_type
    assert upload.filename == "input." + {"audio/wav": "wav", "audio/mpeg": "mp3"}[expected_type]
    assert json.loads(sent.form["voice"]) == {"name": "Inspiring Man", "provider": "HUME_AI"}
    assert json.loads(sent.form["format"]) == {"type": "mp3"}
    info = probe_media(audio_of(response))
    assert response.content_type == "audio/mpeg" and (info.codec, info.sample_rate) == ("mp3", 48000)


@pytest.mark.parametrize("fmt", ["wav", "pcm"])
def test_sts_async_in_other_formats(emulator, fmt):
    audio = {"content": emulator.audio_clip("input", audio_format="mp3").data, "content_type": "audio/mpeg"}
    response = asyncio.run(
        generate_sts_async(hume(emulator, "voice-conversion"), audio=audio, voice_id=VOICE_UUID, output_format={"format": fmt})
    )
    assert json.loads(emulator.last("hume.voice_conversion").form["voice"]) == {"id": VOICE_UUID, "provider": "HUME_AI"}
    codec, rate, seconds = decode(audio_of(response), raw_pcm_rate=48000 if fmt == "pcm" else None)
    assert (codec, rate) == ("pcm_s16le", 48000) and response.duration == pytest.approx(seconds, abs=0.01)


def test_sts_input_that_is_not_audio_is_invalid(emulator):
    with pytest.raises(InvalidRequestError, match="not decodable audio"):
        generate_sts(hume(emulator, "voice-conversion"), audio=base64.b64encode(b"{'not': 'audio'} " * 10).decode(), voice_id="x")
    assert emulator.count("hume.voice_conversion") == 0


# -- errors --------------------------------------------------------------------------------------


def test_wrong_key_is_an_auth_error_without_the_key(emulator, monkeypatch):
    monkeypatch.setenv("HUME_API_KEY", "hume-wrong-secret")
    config = hume(emulator).model_copy(update={"api_key": None})
    with pytest.raises(ProviderAuthError) as info:
        generate_tts(config, text="hello", voice_id=VOICE, retry=FAST)
    assert info.value.status_code == 401 and "hume-wrong-secret" not in str(info.value)
    assert "HUME_API_KEY environment variable" in str(info.value)
    assert emulator.last("hume.tts").headers["X-Hume-Api-Key"] == "hume-wrong-secret"


def test_validation_error_is_invalid_and_stops_the_chain(emulator):
    detail = {"detail": [{"loc": ["body", "utterances", 0, "voice"], "msg": "Voice not found", "type": "value_error"}]}
    emulator.inject("hume.tts", Fault.http(422, detail))
    config = hume(emulator, fallback_configs=[sarvam(emulator)])
    with pytest.raises(InvalidRequestError, match="Voice not found") as info:
        generate_tts(config, text="hello", voice_id="Nobody", language_code="en-IN", retry=FAST)
    assert numbered_summary(info.value.execution_metadata) == [("hume", 1, 1, "failed", "InvalidRequestError")]
    assert emulator.count("sarvam.tts") == 0


def test_bad_request_reports_humes_message_not_the_reason_phrase(emulator):
    body = {"error": "Bad Request", "message": "Octave 2 voices require version 2", "code": "E0710"}
    emulator.inject("hume.tts", Fault.http(400, body))
    with pytest.raises(InvalidRequestError) as info:
        generate_tts(hume(emulator, "octave-1"), text="hello", voice_id="Ava Song", retry=FAST)
    assert "Octave 2 voices require version 2 E0710" in str(info.value) and emulator.count("hume.tts") == 1


def test_moderation_stops_the_chain(emulator):
    emulator.inject("hume.tts", Fault.moderation("This text violates our content policy"))
    config = hume(emulator, fallback_configs=[sarvam(emulator)])
    with pytest.raises(ContentModerationError, match="content policy") as info:
        generate_tts(config, text="something unspeakable", voice_id=VOICE, language_code="en-IN", retry=FAST)
    assert numbered_summary(info.value.execution_metadata) == [("hume", 1, 1, "failed", "ContentModerationError")]
    assert emulator.count("hume.tts") == 1 and emulator.count("sarvam.tts") == 0


def test_rate_limit_is_retried_after_retry_after(emulator):
    emulator.inject("hume.tts", Fault.http(429, {"error": "Too Many Requests", "message": "slow down"}, {"Retry-After": "0.2"}))
    response = generate_tts(hume(emulator), text="hello", voice_id=VOICE, retry=FAST)
    first, second = emulator.requests_for("hume.tts")
    assert (first.status, second.status) == (429, 200) and second.received_at - first.received_at >= 0.2
    assert [a.status for a in response.execution_metadata.attempts] == ["failed", "success"]


def test_server_errors_are_retried_then_fall_back(emulator):
    emulator.inject("hume.voice_conversion", Fault.http(503, {"error": "Service Unavailable"}), times=None)
    config = hume(emulator, "voice-conversion", fallback_configs=[
        AudioGenerationConfig(provider="elevenlabs", model="eleven_multilingual_sts_v2", mock=MockConfig())
    ])
    audio = {"content": emulator.audio_clip("input", audio_format="wav").data, "content_type": "audio/wav"}
    response = generate_sts(config, audio=audio, voice_id="Ava Song", retry=FAST)
    assert numbered_summary(response.execution_metadata) == [
        ("hume", 1, 1, "failed", "ProviderHTTPError"),
        ("hume", 1, 2, "failed", "ProviderHTTPError"),
        ("hume", 1, 3, "failed", "ProviderHTTPError"),
        ("elevenlabs", 2, 1, "success", None),
    ]
    assert response.is_mock and response.execution_metadata.fallback_triggered


def test_answer_without_generations_is_a_generation_failure(emulator):
    emulator.inject("hume.tts", Fault.http(200, {"request_id": "req-none", "generations": []}))
    with pytest.raises(GenerationFailedError, match="without audio") as info:
        generate_tts(hume(emulator), text="hello", voice_id=VOICE, retry=FAST)
    assert info.value.request_id == "req-none"


# -- lifecycle and Octave 2 rules (from the SDK and Hume's docs) ----------------------------------


def test_hume_is_retired_and_a_hume_config_falls_through_without_a_request(emulator, monkeypatch):
    monkeypatch.setattr(HumeProvider, "models", SHIPPED_MODELS)  # the catalog as shipped
    for name, caps in SHIPPED_MODELS.items():
        assert (caps.lifecycle.status, str(caps.lifecycle.date)) == ("retired", "2026-11-13"), name
        assert caps.lifecycle.source.startswith("https://dev.hume.ai/")
    config = hume(emulator, fallback_configs=[sarvam(emulator)])
    response = generate_tts(config, text="hello", voice_id=VOICE, language_code="en-IN", retry=FAST)
    skipped = response.execution_metadata.attempts[0]
    assert (skipped.provider, skipped.status) == ("hume", "skipped")
    assert "retired on 2026-11-13 per https://dev.hume.ai/" in skipped.error_message
    assert emulator.requests_for(provider="hume") == [] and emulator.count("sarvam.tts") == 1


@pytest.mark.parametrize("config_fields", [{"model": "octave-2"}, {"model": "octave", "provider_config": {"version": "2"}}])
def test_octave_2_without_a_voice_is_refused_before_any_request(emulator, config_fields):
    # hume SDK, `version`: "Requests that set version: 2 without a voice will be rejected."
    with pytest.raises(UnsupportedRequestError, match="needs a voice"):
        generate_tts(hume(emulator, **config_fields), text="hello", voice_settings={"description": "a calm narrator"})
    assert emulator.requests_for(provider="hume") == []


def test_the_emulator_rejects_version_2_without_a_voice(emulator):
    import requests

    body = {"utterances": [{"text": "hello", "description": "a calm narrator"}], "version": "2"}
    answer = requests.post(f"{emulator.url_for('hume')}/v0/tts", json=body,
                           headers={"X-Hume-Api-Key": emulator.key_for("hume")}, timeout=10)
    assert answer.status_code == 400 and "voice" in answer.json()["message"]
