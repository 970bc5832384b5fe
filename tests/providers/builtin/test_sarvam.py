"""Sarvam AI text-to-speech over the emulator: request mapping, audio formats, refusals
before any request, error translation, and fallback chains."""

from __future__ import annotations

import asyncio

import pytest

from providers import RetryPolicy, generate_sts, generate_tts, generate_tts_async
from providers.errors import (
    GenerationFailedError,
    InvalidRequestError,
    PossiblyPaidError,
    ProviderAuthError,
    UnsupportedRequestError,
)
from providers.media.probe import probe_media
from providers.builtin.sarvam import LANGUAGE_CODES
from schemas import AudioGenerationConfig, AudioOutputFormat, MockConfig
from tests.emulator import Fault
from tests.providers.builtin.speech_helpers import audio_of, decode, numbered_summary

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
HINDI = "नमस्ते, आप कैसे हैं?"


def sarvam(emulator, model: str = "bulbul:v3", **fields) -> AudioGenerationConfig:
    return AudioGenerationConfig(
        provider="sarvam", model=model, base_url=emulator.url_for("sarvam"), api_key=emulator.key_for("sarvam"), **fields
    )


def elevenlabs(emulator) -> AudioGenerationConfig:
    """A fallback that needs no language code (Hume, the earlier fallback here, is retired)."""
    return AudioGenerationConfig(
        provider="elevenlabs", model="eleven_multilingual_v2", base_url=emulator.url_for("elevenlabs"),
        api_key=emulator.key_for("elevenlabs"), provider_config={"voice_id": "JBFqnCBsd6RMkjVDRZzb"},
    )


# -- success ------------------------------------------------------------------------------------


def test_tts_sends_sarvams_request_and_returns_decodable_mp3(emulator):
    updates = []
    response = generate_tts(
        sarvam(emulator),
        text=HINDI,
        language_code="hi-IN",
        voice_id="priya",
        voice_settings={"pace": 1.2, "temperature": 0.4},
        dict_id="dict-1",
        on_progress=updates.append,
        retry=FAST,
    )
    sent = emulator.last("sarvam.tts")
    assert sent.method == "POST" and sent.path == "/text-to-speech"
    assert sent.headers["api-subscription-key"] == emulator.key_for("sarvam")
    assert sent.json == {
        "text": HINDI,
        "language_code": "hi-IN",  # the current SDK's name (target_language_code up to sarvamai 0.1.10)
        "model": "bulbul:v3",
        "speaker": "priya",
        "output_audio_codec": "mp3",
        "speech_sample_rate": 44100,  # the default format's rate: bulbul:v3 can do it
        "pace": 1.2,
        "temperature": 0.4,
        "dict_id": "dict-1",
    }
    assert response.content_type == "audio/mpeg" and response.status == "completed" and not response.is_mock
    info = probe_media(audio_of(response))
    assert (info.codec, info.sample_rate) == ("mp3", 44100) and response.duration == pytest.approx(info.duration_seconds)
    attempt = response.execution_metadata.attempts[0]
    assert attempt.status == "success" and attempt.request_id == response.raw_response["request_id"]
    assert attempt.request_id.startswith("20260101_")
    assert [u.status for u in updates] == ["completed"]


def test_tts_async_and_defaults_per_model(emulator):
    response = asyncio.run(generate_tts_async(sarvam(emulator, "bulbul:v2"), text="hello", language_code="en"))
    sent = emulator.last("sarvam.tts").json
    assert sent["speaker"] == "anushka" and sent["language_code"] == "en-IN" and "target_language_code" not in sent
    # bulbul:v2 cannot do the default format's 44100 Hz: Sarvam's own default (22050) is used.
    assert "speech_sample_rate" not in sent
    assert probe_media(audio_of(response)).sample_rate == 22050


@pytest.mark.parametrize(
    "model, fmt, rate, codec_sent, content_type, codec",
    [
        ("bulbul:v3", "mp3", 24000, "mp3", "audio/mpeg", "mp3float"),
        ("bulbul:v3", "wav", 16000, "wav", "audio/wav", "pcm_s16le"),
        ("bulbul:v3", "pcm", 8000, "linear16", "audio/pcm", "pcm_s16le"),
        ("bulbul:v3", "flac", 48000, "flac", "audio/flac", "flac"),
        ("bulbul:v2", "opus", 24000, "opus", "audio/ogg", "opus"),  # opus is refused on v3/v4-flash
        ("bulbul:v4-flash", "wav", 48000, "wav", "audio/wav", "pcm_s16le"),  # v4-flash has v3's REST rates
        ("bulbul:v4-flash", "pcm", 44100, "linear16", "audio/pcm", "pcm_s16le"),
    ],
)
def test_every_supported_format_decodes_with_the_right_codec_and_rate(
    emulator, model, fmt, rate, codec_sent, content_type, codec
):
    output_format = AudioOutputFormat(format=fmt, sample_rate=rate)
    response = generate_tts(sarvam(emulator, model), text="format check", language_code="en-IN", output_format=output_format)
    sent = emulator.last("sarvam.tts").json
    assert (sent["output_audio_codec"], sent["speech_sample_rate"]) == (codec_sent, rate)
    assert response.content_type == content_type
    data = audio_of(response)
    decoded_codec, decoded_rate, seconds = decode(data, raw_pcm_rate=rate if fmt == "pcm" else None)
    assert decoded_codec == codec and seconds > 0.3
    if fmt == "opus":  # Opus always decodes at 48 kHz; the encoder's rate is in the OpusHead
        assert decoded_rate == 48000 and probe_media(data).sample_rate == rate
    else:
        assert decoded_rate == rate
    assert response.duration == pytest.approx(seconds, abs=0.05)


@pytest.mark.parametrize("model", ["bulbul:v3", "bulbul:v4-flash", "bulbul:v2"])
def test_raw_pcm_without_a_rate_is_timed_at_sarvams_default_22050_hz(emulator, model):
    # The SDK documents 22050 Hz as the default for every model (mediagen once assumed 24000 for v3).
    response = generate_tts(sarvam(emulator, model), text="default rate", language_code="en-IN",
                            output_format=AudioOutputFormat(format="pcm", sample_rate=None))
    assert "speech_sample_rate" not in emulator.last("sarvam.tts").json
    seconds = decode(audio_of(response), raw_pcm_rate=22050)[2]
    assert response.duration == pytest.approx(seconds, abs=0.01)


def test_opus_without_a_rate_asks_for_24000_hz_as_sarvams_default_is_not_an_opus_rate(emulator):
    response = generate_tts(sarvam(emulator, "bulbul:v2"), text="opus", language_code="en-IN",
                            output_format=AudioOutputFormat(format="opus", sample_rate=None))
    assert emulator.last("sarvam.tts").json["speech_sample_rate"] == 24000
    assert probe_media(audio_of(response)).sample_rate == 24000


def test_audio_split_in_several_pieces_is_joined(emulator):
    emulator.inject("sarvam.tts", Fault.custom("split", parts=3))
    response = generate_tts(
        sarvam(emulator), text="a longer sentence to split", language_code="en-IN",
        output_format=AudioOutputFormat(format="wav", sample_rate=16000),
    )
    whole = emulator.audio_clip("a longer sentence to split", audio_format="wav", sample_rate=16000)
    assert response.raw_response["audio_count"] == 3
    assert decode(audio_of(response))[2] == pytest.approx(whole.duration_seconds, abs=0.001)


# -- refused before any request --------------------------------------------------------------------


def test_missing_language_code_is_skipped_with_the_allowed_codes_and_the_chain_goes_on(emulator):
    config = sarvam(emulator, fallback_configs=[elevenlabs(emulator)])
    response = generate_tts(config, text="no language given", retry=FAST)
    assert emulator.count("sarvam.tts") == 0 and emulator.count("elevenlabs.tts") == 1
    skipped = response.execution_metadata.attempts[0]
    assert (skipped.provider, skipped.status, skipped.error_type) == ("sarvam", "skipped", "UnsupportedRequestError")
    assert "language_code" in skipped.error_message and all(code in skipped.error_message for code in LANGUAGE_CODES)


def test_missing_language_code_alone_fails_clearly(emulator):
    with pytest.raises(UnsupportedRequestError, match="language_code.*hi-IN"):
        generate_tts(sarvam(emulator), text="no language given")
    assert emulator.count("sarvam.tts") == 0


@pytest.mark.parametrize(
    "model, fields, reason",
    [
        ("bulbul:v3", {"language_code": "fr-FR"}, "language_code='fr-FR' not supported"),
        ("bulbul:v3", {"language_code": "hi-IN", "text": "x" * 2501}, "at most 2500"),
        ("bulbul:v2", {"language_code": "hi-IN", "text": "x" * 1501}, "at most 1500"),
        ("bulbul:v2", {"language_code": "hi-IN", "output_format": {"format": "wav", "sample_rate": 44100}}, "sample_rate=44100"),
        ("bulbul:v2", {"language_code": "hi-IN", "output_format": {"format": "opus", "sample_rate": 22050}}, "sample_rate=22050"),
        ("bulbul:v3", {"language_code": "hi-IN", "voice_settings": {"pitch": 0.3}}, "pitch not supported by bulbul:v3"),
        ("bulbul:v4-flash", {"language_code": "hi-IN", "voice_settings": {"loudness": 1.2}}, "loudness not supported by bulbul:v4-flash"),
        ("bulbul:v3", {"language_code": "hi-IN", "output_format": {"format": "opus"}}, "output_format='opus'"),
        ("bulbul:v4-flash", {"language_code": "hi-IN", "output_format": {"format": "opus"}}, "output_format='opus'"),
    ],
)
def test_requests_the_model_cannot_serve_are_skipped_before_any_request(emulator, model, fields, reason):
    request = {"text": "hello", **fields}
    with pytest.raises(UnsupportedRequestError) as info:
        generate_tts(sarvam(emulator, model), request)
    assert reason in str(info.value)
    assert [a.status for a in info.value.execution_metadata.attempts] == ["skipped"]
    assert emulator.count("sarvam.tts") == 0


def test_sarvam_does_not_do_speech_to_speech(emulator):
    with pytest.raises(UnsupportedRequestError, match="does not do sts"):
        generate_sts(sarvam(emulator), audio="aGVsbG8=", voice_id="shubh")
    assert emulator.requests_for(provider="sarvam") == []


def test_pitch_and_loudness_go_to_bulbul_v2(emulator):
    generate_tts(sarvam(emulator, "bulbul:v2", provider_config={"loudness": 1.5}), text="hi", language_code="ta-IN",
                 voice_settings={"pitch": -0.2, "speed": 0.8})
    sent = emulator.last("sarvam.tts").json
    assert (sent["pitch"], sent["loudness"], sent["pace"], sent["language_code"]) == (-0.2, 1.5, 0.8, "ta-IN")


def test_the_pre_0_1_10_field_name_in_extra_params_is_not_sent_next_to_language_code(emulator):
    generate_tts(sarvam(emulator), text="hi", language_code="hi-IN", extra_params={"target_language_code": "ta-IN"})
    sent = emulator.last("sarvam.tts").json
    assert sent["language_code"] == "hi-IN" and "target_language_code" not in sent


# -- errors --------------------------------------------------------------------------------------


def test_wrong_key_is_an_auth_error_without_the_key(emulator):
    config = sarvam(emulator).model_copy(update={"api_key": "sk-wrong-secret-key"})
    with pytest.raises(ProviderAuthError) as info:
        generate_tts(config, text="hello", language_code="en-IN", retry=FAST)
    assert info.value.status_code == 403 and "sk-wrong-secret-key" not in str(info.value)
    assert "config.api_key" in str(info.value) and "Invalid or missing authentication" in str(info.value)
    assert emulator.count("sarvam.tts") == 1  # auth errors are not retried


def test_bad_request_is_invalid_and_stops_the_chain(emulator):
    emulator.inject("sarvam.tts", Fault.http(400, {"error": {"message": "Speaker 'nobody' is not compatible",
                                                             "code": "invalid_request_error", "request_id": "req-400"}}))
    config = sarvam(emulator, fallback_configs=[elevenlabs(emulator)])
    with pytest.raises(InvalidRequestError, match="Speaker 'nobody'") as info:
        generate_tts(config, text="hello", language_code="en-IN", voice_id="nobody", retry=FAST)
    assert numbered_summary(info.value.execution_metadata) == [("sarvam", 1, 1, "failed", "InvalidRequestError")]
    assert info.value.execution_metadata.attempts[0].request_id == "req-400"
    assert emulator.count("elevenlabs.tts") == 0


def test_unprocessable_entity_is_invalid(emulator):
    emulator.inject("sarvam.tts", Fault.http(422, {"error": {"message": "business rule failed",
                                                             "code": "unprocessable_entity_error"}}))
    with pytest.raises(InvalidRequestError, match="business rule failed"):
        generate_tts(sarvam(emulator), text="hello", language_code="en-IN", retry=FAST)


def test_rate_limit_is_retried_after_retry_after_then_succeeds(emulator):
    body = {"error": {"message": "Rate limit exceeded", "code": "rate_limit_exceeded_error"}}
    emulator.inject("sarvam.tts", Fault.http(429, body, {"Retry-After": "0.2"}))
    response = generate_tts(sarvam(emulator), text="hello", language_code="en-IN", retry=FAST)
    requests_made = emulator.requests_for("sarvam.tts")
    assert [r.status for r in requests_made] == [429, 200]
    assert requests_made[1].received_at - requests_made[0].received_at >= 0.2
    assert numbered_summary(response.execution_metadata) == [
        ("sarvam", 1, 1, "failed", "ProviderHTTPError"), ("sarvam", 1, 2, "success", None)
    ]


def test_exhausted_credits_are_not_retried_and_fall_back(emulator):
    body = {"error": {"message": "Insufficient credits", "code": "insufficient_quota_error"}}
    emulator.inject("sarvam.tts", Fault.http(429, body))
    # A mocked config runs the real provider's checks: ElevenLabs needs a voice.
    fallback = AudioGenerationConfig(provider="elevenlabs", model="m", mock=MockConfig(), provider_config={"voice_id": "v"})
    config = sarvam(emulator, fallback_configs=[fallback])
    response = generate_tts(config, text="hello", language_code="en-IN", retry=FAST)
    assert numbered_summary(response.execution_metadata) == [
        ("sarvam", 1, 1, "failed", "ProviderHTTPError"), ("elevenlabs", 2, 1, "success", None)
    ]
    failed = response.execution_metadata.attempts[0]
    assert failed.is_retryable is False and "credits exhausted" in failed.error_message
    assert emulator.count("sarvam.tts") == 1 and response.is_mock


def test_server_errors_are_retried(emulator):
    emulator.inject("sarvam.tts", Fault.http(503, {"error": {"message": "busy", "code": "internal_server_error"}}), times=2)
    response = generate_tts(sarvam(emulator), text="hello", language_code="en-IN", retry=FAST)
    assert [a.status for a in response.execution_metadata.attempts] == ["failed", "failed", "success"]


def test_server_errors_fall_back_to_elevenlabs_with_every_attempt_recorded(emulator):
    emulator.inject("sarvam.tts", Fault.http(500, {"error": {"message": "boom", "code": "internal_server_error"}}), times=None)
    config = sarvam(emulator, fallback_configs=[elevenlabs(emulator)])
    response = generate_tts(config, text="hello from the chain", language_code="en-IN", retry=FAST)
    meta = response.execution_metadata
    assert numbered_summary(meta) == [
        ("sarvam", 1, 1, "failed", "ProviderHTTPError"),
        ("sarvam", 1, 2, "failed", "ProviderHTTPError"),
        ("sarvam", 1, 3, "failed", "ProviderHTTPError"),
        ("elevenlabs", 2, 1, "success", None),
    ]
    assert meta.fallback_triggered and meta.successful_attempt == 4 and meta.configs_in_chain == 2
    assert meta.attempts[-1].request_id  # ElevenLabs' request-id header
    assert probe_media(audio_of(response)).sample_rate == 44100  # ElevenLabs' mp3_44100_128


def test_answer_without_audio_is_a_generation_failure(emulator):
    emulator.inject("sarvam.tts", Fault.http(200, {"request_id": "req-empty", "audios": []}))
    with pytest.raises(GenerationFailedError, match="without audio") as info:
        generate_tts(sarvam(emulator), text="hello", language_code="en-IN", retry=FAST)
    assert info.value.request_id == "req-empty" and emulator.count("sarvam.tts") == 1


def test_a_reset_after_the_request_was_sent_is_possibly_paid_not_retried(emulator):
    emulator.inject("sarvam.tts", Fault.connection_reset())
    with pytest.raises(PossiblyPaidError, match="answer was lost") as info:
        generate_tts(sarvam(emulator), text="hello", language_code="en-IN", retry=FAST)
    assert [a.error_type for a in info.value.execution_metadata.attempts] == ["PossiblyPaidError"]
    assert emulator.count("sarvam.tts") == 1  # never sent twice: the first may have been billed

