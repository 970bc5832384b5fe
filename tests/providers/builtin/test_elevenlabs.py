"""ElevenLabs over the emulator: the request on the wire, every output format, STS inputs, errors, fallback."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from providers import RetryPolicy, generate_sts, generate_sts_async, generate_tts, generate_tts_async
from providers.builtin.elevenlabs import ElevenLabsProvider, output_format_param
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    PossiblyPaidError,
    ProviderAuthError,
    UnsupportedRequestError,
)
from schemas import AudioGenerationConfig, AudioOutputFormat, MockConfig
from tests.emulator import Fault
from tests.providers.builtin.speech_helpers import audio_of, decoded, summary

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)
TEXT = "Every row of the dataset gets a voice."  # 38 characters -> 2.28 s of emulated speech
SECONDS = 0.06 * len(TEXT)


def config(emulator, model: str = "eleven_multilingual_v2", **overrides) -> AudioGenerationConfig:
    fields = {
        "provider": "elevenlabs",
        "model": model,
        "base_url": emulator.url_for("elevenlabs"),
        "api_key": emulator.key_for("elevenlabs"),
        "timeout": 30,
    }
    return AudioGenerationConfig(**{**fields, **overrides})


def cartesia_fallback(emulator) -> AudioGenerationConfig:
    return AudioGenerationConfig(
        provider="cartesia",
        model="sonic-3",
        base_url=emulator.url_for("cartesia"),
        api_key=emulator.key_for("cartesia"),
        provider_config={"voice_id": "cartesia-voice"},
        timeout=30,
    )


# -- the request on the wire ------------------------------------------------------------


def test_tts_sends_the_documented_request_and_returns_decodable_mp3(emulator):
    updates = []
    response = generate_tts(
        config(emulator),
        text=TEXT,
        voice_id="JBFqnCBsd6RMkjVDRZzb",
        language_code="en-US",
        voice_settings={"stability": 0.4, "similarity_boost": 0.7, "style": 0.1, "use_speaker_boost": True,
                        "speed": 1.1, "volume": 1.5},  # volume is Cartesia's: not sent
        seed=42,
        on_progress=updates.append,
        retry=FAST,
    )
    sent = emulator.last("elevenlabs.tts")
    assert sent.path == "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb"
    assert sent.query == {"output_format": "mp3_44100_128"}
    assert sent.headers["xi-api-key"] == emulator.key_for("elevenlabs")
    assert sent.json == {
        "text": TEXT,
        "model_id": "eleven_multilingual_v2",
        "language_code": "en",
        "voice_settings": {"stability": 0.4, "similarity_boost": 0.7, "style": 0.1, "use_speaker_boost": True,
                           "speed": 1.1},
        "seed": 42,
    }
    assert response.content_type == "audio/mpeg" and response.status == "completed" and not response.is_mock
    codec, rate, seconds = decoded(audio_of(response))
    assert (codec, rate) == ("mp3", 44100) and seconds == pytest.approx(SECONDS, abs=0.1)
    assert response.duration == pytest.approx(SECONDS, abs=0.1)
    attempt = response.execution_metadata.attempts[0]
    assert attempt.status == "success" and len(attempt.request_id) == 32  # the request-id header
    assert response.raw_response["output_format"] == "mp3_44100_128"
    assert updates and updates[-1].status == "completed"


def test_tts_async_twin(emulator):
    response = asyncio.run(
        generate_tts_async(config(emulator, "eleven_flash_v2_5"), text="async speech", voice_id="v1", retry=FAST)
    )
    assert decoded(audio_of(response))[0] == "mp3"
    assert emulator.last("elevenlabs.tts").json["model_id"] == "eleven_flash_v2_5"


def test_a_pinned_voice_and_logging_flag_come_from_provider_config(emulator):
    cfg = config(emulator, provider_config={"voice_id": "pinned", "enable_logging": False})
    generate_tts(cfg, text="pinned voice", voice_id="from-the-row", retry=FAST)
    sent = emulator.last("elevenlabs.tts")
    assert sent.path == "/v1/text-to-speech/pinned"
    assert sent.query == {"output_format": "mp3_44100_128", "enable_logging": "false"}


# -- every output format ----------------------------------------------------------------

SUPPORTED = [
    # (format, sample_rate, bitrate) -> output_format query, codec as decoded, rate
    (("mp3", None, None), "mp3_44100_128", "mp3", 44100),
    (("mp3", 22050, None), "mp3_22050_32", "mp3", 22050),
    (("mp3", 24000, 48), "mp3_24000_48", "mp3", 24000),
    (("mp3", 44100, 32), "mp3_44100_32", "mp3", 44100),
    (("mp3", 44100, 192), "mp3_44100_192", "mp3", 44100),
    (("wav", None, None), "wav_44100", "pcm_s16le", 44100),
    (("wav", 8000, None), "wav_8000", "pcm_s16le", 8000),
    (("wav", 32000, None), "wav_32000", "pcm_s16le", 32000),
    (("wav", 48000, 128), "wav_48000", "pcm_s16le", 48000),  # a bitrate means nothing for wav
    (("opus", None, None), "opus_48000_128", "opus", 48000),
    (("opus", 48000, 32), "opus_48000_32", "opus", 48000),
]


@pytest.mark.parametrize(("fmt", "query", "codec", "rate"), SUPPORTED, ids=[s[1] for s in SUPPORTED])
def test_each_supported_format_is_requested_and_decodes(emulator, fmt, query, codec, rate):
    output_format = AudioOutputFormat(format=fmt[0], sample_rate=fmt[1], bitrate=fmt[2])
    response = generate_tts(config(emulator), text=TEXT, voice_id="v1", output_format=output_format, retry=FAST)
    assert emulator.last("elevenlabs.tts").query["output_format"] == query
    got_codec, got_rate, seconds = decoded(audio_of(response))
    assert (got_codec, got_rate) == (codec, rate)
    assert seconds == pytest.approx(SECONDS, abs=0.1)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_raw_pcm_is_s16le_at_the_requested_rate(emulator, rate):
    response = generate_tts(
        config(emulator), text=TEXT, voice_id="v1", output_format={"format": "pcm", "sample_rate": rate}, retry=FAST
    )
    data = audio_of(response)
    assert emulator.last("elevenlabs.tts").query["output_format"] == f"pcm_{rate}"
    assert response.content_type == "audio/pcm"
    assert len(data) == 2 * round(SECONDS * rate)  # 16-bit mono samples, no header
    assert response.duration == pytest.approx(SECONDS, abs=1e-3)


UNSUPPORTED = [
    (("flac", None, None), "flac"),
    (("mp3", 48000, None), "sample_rate=48000"),
    (("mp3", 44100, 320), "bitrate=320"),
    (("mp3", 22050, 128), "bitrate=128"),
    (("opus", 24000, None), "sample_rate=24000"),
    (("wav", 11025, None), "sample_rate=11025"),
    (("pcm", 96000, None), "sample_rate=96000"),
]


@pytest.mark.parametrize(("fmt", "named"), UNSUPPORTED, ids=[u[1] for u in UNSUPPORTED])
def test_formats_elevenlabs_lacks_are_skipped_before_any_request(emulator, fmt, named):
    output_format = AudioOutputFormat(format=fmt[0], sample_rate=fmt[1], bitrate=fmt[2])
    with pytest.raises(UnsupportedRequestError) as info:
        generate_tts(config(emulator), text=TEXT, voice_id="v1", output_format=output_format, retry=FAST)
    assert named in str(info.value)
    attempt = info.value.execution_metadata.attempts[0]
    assert attempt.status == "skipped" and named in attempt.error_message
    assert emulator.count("elevenlabs.tts") == 0


def test_the_refusal_lists_the_allowed_combinations():
    with pytest.raises(UnsupportedRequestError) as info:
        output_format_param(AudioOutputFormat(format="mp3", sample_rate=48000))
    message = str(info.value)
    assert "44100 Hz @ 32/64/96/128/192 kbps" in message and "opus: 48000 Hz" in message
    assert "8000/16000/22050/24000/32000/44100/48000 Hz" in message


def test_a_missing_voice_is_skipped_with_a_clear_reason(emulator):
    with pytest.raises(UnsupportedRequestError, match="voice_id"):
        generate_tts(config(emulator), text="who speaks?", retry=FAST)
    assert emulator.count("elevenlabs.tts") == 0


def test_a_model_for_the_other_modality_is_skipped(emulator):
    with pytest.raises(UnsupportedRequestError) as info:
        generate_tts(config(emulator, "eleven_multilingual_sts_v2"), text="x", voice_id="v1", retry=FAST)
    assert "does not do tts" in str(info.value)
    assert emulator.count("elevenlabs.tts") == 0


def test_capabilities_describe_every_documented_model():
    provider = ElevenLabsProvider()
    for model in ("eleven_v3", "eleven_multilingual_v2", "eleven_flash_v2_5", "eleven_turbo_v2_5"):
        assert provider.capabilities(model).modalities == {"tts"}
    assert provider.capabilities("eleven_english_sts_v2").modalities == {"sts"}
    assert "flac" not in provider.capabilities("eleven_v3").audio_formats


# -- speech to speech: every kind of input --------------------------------------------


def _sts_inputs(emulator):
    clip = emulator.audio_clip("the source speech", audio_format="wav", sample_rate=16000)
    b64 = base64.b64encode(clip.data).decode("ascii")
    return clip, {
        "bytes": ({"content": clip.data, "content_type": "audio/wav"}, "audio/wav"),
        "base64": (b64, "audio/mpeg"),  # plain base64 carries no type: the default is sent
        "data_url": (f"data:audio/wav;base64,{b64}", "audio/wav"),
        "url": (emulator.host_media(clip.data, "audio/wav", provider="elevenlabs"), "audio/wav"),
    }


@pytest.mark.parametrize("kind", ["bytes", "base64", "data_url", "url"])
def test_sts_uploads_the_input_as_multipart(emulator, kind):
    clip, inputs = _sts_inputs(emulator)
    audio, expected_type = inputs[kind]
    response = generate_sts(
        config(emulator, "eleven_multilingual_sts_v2"),
        audio=audio,
        voice_id="target-voice",
        voice_settings={"stability": 0.5, "similarity_boost": 0.8},
        output_format={"format": "mp3", "sample_rate": 24000},
        seed=7,
        remove_background_noise=True,
        retry=FAST,
    )
    sent = emulator.last("elevenlabs.sts")
    assert sent.path == "/v1/voice-changer/target-voice"  # the current SDK's path (was /v1/speech-to-speech)
    assert sent.query == {"output_format": "mp3_24000_48"}
    assert sent.headers["xi-api-key"] == emulator.key_for("elevenlabs")
    upload = sent.files["audio"][0]
    assert upload.data == clip.data and upload.content_type == expected_type
    assert sent.form["model_id"] == "eleven_multilingual_sts_v2"
    assert json.loads(sent.form["voice_settings"]) == {"stability": 0.5, "similarity_boost": 0.8}
    assert sent.form["seed"] == "7" and sent.form["remove_background_noise"] == "true"
    codec, rate, seconds = decoded(audio_of(response))
    assert (codec, rate) == ("mp3", 24000)
    assert seconds == pytest.approx(clip.duration_seconds, abs=0.1)  # same length as the input


def test_sts_async_twin(emulator):
    clip = emulator.audio_clip("async source", audio_format="mp3")
    response = asyncio.run(
        generate_sts_async(
            config(emulator, "eleven_english_sts_v2"),
            audio={"content": clip.data, "content_type": "audio/mpeg"},
            voice_id="v2",
            output_format={"format": "wav", "sample_rate": 22050},
            retry=FAST,
        )
    )
    assert decoded(audio_of(response))[:2] == ("pcm_s16le", 22050)
    assert emulator.last("elevenlabs.sts").files["audio"][0].filename == "input.mp3"


# -- errors ------------------------------------------------------------------------------------


def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(emulator):
    secret = "sk-wrong-elevenlabs-key-123"
    with pytest.raises(ProviderAuthError) as info:
        generate_tts(config(emulator, api_key=secret), text="x", voice_id="v1", retry=FAST)
    assert "config.api_key" in str(info.value) and "Invalid API key" in str(info.value)
    assert secret not in str(info.value) and secret not in repr(info.value.execution_metadata)
    assert emulator.count("elevenlabs.tts") == 1  # not retried


def test_the_key_source_is_named_when_it_comes_from_the_environment(emulator, monkeypatch):
    monkeypatch.setenv("ELEVENLABS_API_KEY", "env-key-that-is-wrong")
    with pytest.raises(ProviderAuthError) as info:
        generate_tts(config(emulator, api_key=None), text="x", voice_id="v1", retry=FAST)
    assert "ELEVENLABS_API_KEY" in str(info.value) and "env-key-that-is-wrong" not in str(info.value)


def test_exhausted_quota_is_not_retried_and_says_quota_then_the_chain_goes_on(emulator):
    emulator.inject("elevenlabs.tts", Fault.custom("quota"))
    chain = config(emulator, fallback_configs=[AudioGenerationConfig(provider="mock", model="m", mock=MockConfig())])
    response = generate_tts(chain, text="x", voice_id="v1", retry=FAST)
    first = response.execution_metadata.attempts[0]
    assert (first.status, first.error_type, first.is_retryable) == ("failed", "ProviderHTTPError", False)
    assert "quota" in first.error_message
    assert summary(response.execution_metadata)[1:] == [("mock", 1, "success", None)]
    assert emulator.count("elevenlabs.tts") == 1


def test_a_validation_error_is_invalid_input_and_stops_the_chain(emulator):
    chain = config(emulator, fallback_configs=[cartesia_fallback(emulator)])
    with pytest.raises(InvalidRequestError) as info:
        generate_tts(chain, text="x", voice_id="v1", voice_settings={"stability": 5}, retry=FAST)
    assert "HTTP 422" in str(info.value) and "body.voice_settings.stability: Input should be between" in str(info.value)
    assert emulator.count("cartesia.tts") == 0


def test_moderation_is_a_content_error_and_stops_the_chain(emulator):
    emulator.inject("elevenlabs.tts", Fault.moderation("The text violates our Terms of Service."))
    chain = config(emulator, fallback_configs=[cartesia_fallback(emulator)])
    with pytest.raises(ContentModerationError) as info:
        generate_tts(chain, text="something unspeakable", voice_id="v1", retry=FAST)
    assert "Terms of Service" in str(info.value)
    assert len(info.value.request_id) == 32  # the error body's request_id
    assert summary(info.value.execution_metadata) == [("elevenlabs", 1, "failed", "ContentModerationError")]
    assert emulator.count("cartesia.tts") == 0


@pytest.mark.parametrize(
    "status",
    ["too_many_concurrent_requests", "system_busy"],
)
def test_a_429_is_retried_after_retry_after_then_succeeds(emulator, status):
    body = {"detail": {"status": status, "message": "slow down"}}
    emulator.inject("elevenlabs.tts", Fault.http(429, body, {"Retry-After": "0"}))
    response = generate_tts(config(emulator), text="x", voice_id="v1", retry=FAST)
    assert summary(response.execution_metadata) == [
        ("elevenlabs", 1, "failed", "ProviderHTTPError"),
        ("elevenlabs", 2, "success", None),
    ]
    assert status in response.execution_metadata.attempts[0].error_message
    assert emulator.count("elevenlabs.tts") == 2


def test_server_errors_are_retried_but_a_cut_off_answer_is_possibly_paid(emulator):
    emulator.inject("elevenlabs.tts", Fault.http(503))
    emulator.inject("elevenlabs.tts", Fault.truncate(100))
    with pytest.raises(PossiblyPaidError) as info:
        generate_tts(config(emulator), text="x", voice_id="v1", retry=FAST)
    assert [a.error_type for a in info.value.execution_metadata.attempts] == ["ProviderHTTPError", "PossiblyPaidError"]
    assert emulator.count("elevenlabs.tts") == 2  # the cut-off answer was made, so billed: not asked again


def test_a_success_without_audio_is_a_generation_failure(emulator):
    emulator.inject("elevenlabs.tts", Fault.custom("empty_audio"))
    with pytest.raises(GenerationFailedError, match="without audio"):
        generate_tts(config(emulator), text="x", voice_id="v1", retry=FAST)


def test_a_bad_output_format_on_the_wire_is_the_apis_422():
    """The emulator rejects an output_format the API lacks, as ElevenLabs does."""
    from tests.emulator.routes.elevenlabs import check_output_format

    assert check_output_format("mp3_44100_128") is None
    rejected = check_output_format("mp3_48000_128")
    assert rejected is not None and rejected.status == 422


# -- fallback -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500])
def test_persistent_failures_fall_back_to_cartesia(emulator, status):
    emulator.inject("elevenlabs.tts", Fault.http(status, {"detail": {"status": "system_busy"}}), times=None)
    chain = config(emulator, fallback_configs=[cartesia_fallback(emulator)])
    response = generate_tts(chain, text=TEXT, voice_id="elevenlabs-voice", retry=FAST)
    meta = response.execution_metadata
    assert summary(meta) == [
        ("elevenlabs", 1, "failed", "ProviderHTTPError"),
        ("elevenlabs", 2, "failed", "ProviderHTTPError"),
        ("elevenlabs", 3, "failed", "ProviderHTTPError"),
        ("cartesia", 1, "success", None),
    ]
    assert meta.fallback_triggered and meta.successful_attempt == 4
    assert emulator.last("cartesia.tts").json["voice"] == {"id": "cartesia-voice"}
    assert decoded(audio_of(response))[0] == "mp3"
