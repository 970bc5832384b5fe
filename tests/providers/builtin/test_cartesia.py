"""Cartesia over the emulator: the request on the wire, every output format, voice changer inputs, errors, fallback."""

from __future__ import annotations

import asyncio
import base64

import pytest

from providers import RetryPolicy, generate_sts, generate_sts_async, generate_tts, generate_tts_async
from providers.builtin.cartesia import DEFAULT_API_VERSION, CartesiaProvider, output_format_for
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
TEXT = "Sonic reads this sentence aloud."  # 32 characters -> 1.92 s of emulated speech
SECONDS = 0.06 * len(TEXT)
VOICE = "694f9389-aac1-45b6-b726-9d9369183238"


def config(emulator, model: str = "sonic-3", **overrides) -> AudioGenerationConfig:
    fields = {
        "provider": "cartesia",
        "model": model,
        "base_url": emulator.url_for("cartesia"),
        "api_key": emulator.key_for("cartesia"),
        "timeout": 30,
    }
    return AudioGenerationConfig(**{**fields, **overrides})


def mock_fallback() -> AudioGenerationConfig:
    return AudioGenerationConfig(provider="mock", model="m", mock=MockConfig())


# -- the request on the wire ------------------------------------------------------------


def test_tts_sends_the_documented_request_and_returns_decodable_mp3(emulator):
    updates = []
    response = generate_tts(
        config(emulator),
        text=TEXT,
        voice_id=VOICE,
        language_code="fr-FR",
        voice_settings={"speed": 1.2, "volume": 0.8, "emotion": "excited", "stability": 0.3},  # stability: ElevenLabs'
        pronunciation_dict_id="dict-1",
        on_progress=updates.append,
        retry=FAST,
    )
    sent = emulator.last("cartesia.tts")
    assert sent.path == "/tts/bytes"
    assert sent.headers["Authorization"] == f"Bearer {emulator.key_for('cartesia')}"
    assert sent.headers["Cartesia-Version"] == DEFAULT_API_VERSION == "2026-08-14"  # the cartesia SDK 4.x default
    assert sent.json == {
        "model_id": "sonic-3",
        "transcript": TEXT,
        "voice": {"id": VOICE},  # the 2026-08-14 shape ({"mode": "id", ...} before it)
        "output_format": {"container": "mp3", "bit_rate": 128000, "sample_rate": 44100},
        "language": "fr",
        "generation_config": {"speed": 1.2, "volume": 0.8, "emotion": "excited"},
        "pronunciation_dict_id": "dict-1",
    }
    assert response.content_type == "audio/mpeg" and response.status == "completed"
    codec, rate, seconds = decoded(audio_of(response))
    assert (codec, rate) == ("mp3", 44100) and seconds == pytest.approx(SECONDS, abs=0.1)
    assert response.duration == pytest.approx(SECONDS, abs=0.1)
    attempt = response.execution_metadata.attempts[0]
    assert attempt.status == "success" and len(attempt.request_id) == 36  # the x-request-id header
    assert updates and updates[-1].status == "completed"


def test_tts_async_twin_and_api_version_override(emulator):
    response = asyncio.run(
        generate_tts_async(config(emulator, "sonic-3.5", api_version="2025-04-16"), text="async", voice_id=VOICE,
                           retry=FAST)
    )
    assert decoded(audio_of(response))[0] == "mp3"
    sent = emulator.last("cartesia.tts")
    assert sent.headers["Cartesia-Version"] == "2025-04-16" and sent.json["model_id"] == "sonic-3.5"
    assert sent.json["voice"] == {"mode": "id", "id": VOICE}  # the shape that version documents


def test_a_pinned_voice_comes_from_provider_config(emulator):
    generate_tts(config(emulator, provider_config={"voice_id": "pinned"}), text="x", voice_id="row-voice", retry=FAST)
    assert emulator.last("cartesia.tts").json["voice"] == {"id": "pinned"}


# -- every output format ----------------------------------------------------------------

SUPPORTED = [
    # (format, sample_rate, bitrate) -> output_format object, codec as decoded, rate
    (("mp3", None, None), {"container": "mp3", "bit_rate": 128000, "sample_rate": 44100}, "mp3", 44100),
    (("mp3", 8000, 32), {"container": "mp3", "bit_rate": 32000, "sample_rate": 8000}, "mp3", 8000),
    (("mp3", 16000, 96), {"container": "mp3", "bit_rate": 96000, "sample_rate": 16000}, "mp3", 16000),
    (("mp3", 22050, 64), {"container": "mp3", "bit_rate": 64000, "sample_rate": 22050}, "mp3", 22050),
    (("mp3", 48000, 192), {"container": "mp3", "bit_rate": 192000, "sample_rate": 48000}, "mp3", 48000),
    (("wav", None, None), {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 44100}, "pcm_s16le", 44100),
    (("wav", 8000, None), {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 8000}, "pcm_s16le", 8000),
    (("wav", 24000, None), {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 24000}, "pcm_s16le", 24000),
    (("wav", 48000, 256), {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 48000}, "pcm_s16le", 48000),
]


@pytest.mark.parametrize(
    ("fmt", "wire", "codec", "rate"), SUPPORTED, ids=[f"{s[0][0]}-{s[0][1]}-{s[0][2]}" for s in SUPPORTED]
)
def test_each_supported_format_is_requested_and_decodes(emulator, fmt, wire, codec, rate):
    output_format = AudioOutputFormat(format=fmt[0], sample_rate=fmt[1], bitrate=fmt[2])
    response = generate_tts(config(emulator), text=TEXT, voice_id=VOICE, output_format=output_format, retry=FAST)
    assert emulator.last("cartesia.tts").json["output_format"] == wire
    got_codec, got_rate, seconds = decoded(audio_of(response))
    assert (got_codec, got_rate) == (codec, rate)
    assert seconds == pytest.approx(SECONDS, abs=0.1)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_raw_pcm_is_s16le_at_the_requested_rate(emulator, rate):
    response = generate_tts(
        config(emulator), text=TEXT, voice_id=VOICE, output_format={"format": "pcm", "sample_rate": rate}, retry=FAST
    )
    assert emulator.last("cartesia.tts").json["output_format"] == {
        "container": "raw", "encoding": "pcm_s16le", "sample_rate": rate,
    }
    data = audio_of(response)
    assert response.content_type == "audio/pcm"
    assert len(data) == 2 * round(SECONDS * rate)  # 16-bit mono samples, no header
    assert response.duration == pytest.approx(SECONDS, abs=1e-3)


UNSUPPORTED = [
    (("flac", None, None), "flac"),
    (("opus", None, None), "opus"),
    (("mp3", 44100, 320), "bitrate=320"),
    (("mp3", 44100, 48), "bitrate=48"),
    (("wav", 32000, None), "sample_rate=32000"),
    (("pcm", 11025, None), "sample_rate=11025"),
]


@pytest.mark.parametrize(("fmt", "named"), UNSUPPORTED, ids=[u[1] for u in UNSUPPORTED])
def test_formats_cartesia_lacks_are_skipped_before_any_request(emulator, fmt, named):
    output_format = AudioOutputFormat(format=fmt[0], sample_rate=fmt[1], bitrate=fmt[2])
    with pytest.raises(UnsupportedRequestError) as info:
        generate_tts(config(emulator), text=TEXT, voice_id=VOICE, output_format=output_format, retry=FAST)
    assert named in str(info.value)
    assert info.value.execution_metadata.attempts[0].status == "skipped"
    assert emulator.count("cartesia.tts") == 0


def test_the_refusal_lists_the_allowed_combinations():
    with pytest.raises(UnsupportedRequestError) as info:
        output_format_for(AudioOutputFormat(format="mp3", sample_rate=44100, bitrate=320))
    message = str(info.value)
    assert "mp3 at 8000/16000/22050/24000/44100/48000 Hz and 32/64/96/128/192 kbps" in message
    assert "wav and pcm at" in message


@pytest.mark.parametrize(
    ("model", "fields", "reason"),
    [
        ("sonic-3", {}, "voice_id"),
        ("sonic-english", {"voice_id": VOICE}, "retired on 2026-06-01 per https://docs.cartesia.ai/.*; use sonic-3.5"),
        ("sonic-2-2025-03-07", {"voice_id": VOICE}, "retired on 2026-06-01"),
        ("voice-changer", {"voice_id": VOICE}, "does not do tts"),
    ],
)
def test_requests_a_config_cannot_serve_are_skipped(emulator, model, fields, reason):
    with pytest.raises(UnsupportedRequestError, match=reason):
        generate_tts(config(emulator, model), text="x", retry=FAST, **fields)
    assert emulator.count("cartesia.tts") == 0


def test_capabilities_cover_the_sonic_families_and_the_voice_changer():
    provider = CartesiaProvider()
    for model in ("sonic-3", "sonic-3-2026-01-12", "sonic-3-latest", "sonic-3.5", "sonic-2-2025-06-11"):
        assert provider.capabilities(model).modalities == {"tts"}
    assert provider.capabilities("voice-changer").modalities == {"sts"}
    assert provider.capabilities("sonic-3").audio_formats == ("mp3", "wav", "pcm")
    assert provider.capabilities("sonic-latest").modalities == {"tts"}  # in the SDK's model enum
    for model in ("sonic-3.5", "sonic-2-2025-06-11", "sonic-latest"):
        assert provider.capabilities(model).lifecycle.status == "active"
    for model in ("sonic", "sonic-english", "sonic-multilingual", "sonic-2-2025-03-07", "sonic-turbo-2025-03-07"):
        lifecycle = provider.capabilities(model).lifecycle
        assert (lifecycle.status, str(lifecycle.date), lifecycle.replacement) == ("retired", "2026-06-01", "sonic-3.5")


@pytest.mark.parametrize(
    ("version", "voice"),
    [("2026-08-14", {"id": VOICE}), ("2026-03-01", {"mode": "id", "id": VOICE}), ("2024-06-10", {"mode": "id", "id": VOICE})],
)
def test_the_voice_object_follows_the_api_version(emulator, version, voice):
    generate_tts(config(emulator, api_version=version), text="x", voice_id=VOICE, retry=FAST)
    assert emulator.last("cartesia.tts").json["voice"] == voice


@pytest.mark.parametrize(
    ("version", "voice", "accepted"),
    [
        ("2026-08-14", {"id": VOICE}, True),
        ("2026-08-14", VOICE, True),
        ("2026-08-14", {"mode": "embedding", "embedding": [0.1, 0.2]}, False),
        ("2026-03-01", {"id": VOICE}, False),  # before 2026-08-14 the documented object needs mode "id"
        ("2026-03-01", {"mode": "id", "id": VOICE}, True),
    ],
)
def test_the_emulator_checks_the_voice_object_of_the_version_sent(emulator, version, voice, accepted):
    import requests

    body = {"model_id": "sonic-3", "transcript": TEXT, "voice": voice,
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}}
    headers = {"Authorization": f"Bearer {emulator.key_for('cartesia')}", "Cartesia-Version": version}
    answer = requests.post(f"{emulator.url_for('cartesia')}/tts/bytes", json=body, headers=headers, timeout=10)
    assert answer.status_code == (200 if accepted else 400)
    if not accepted:
        assert "voice" in answer.json()["message"]


# -- voice changer: every kind of input --------------------------------------------------


def _sts_inputs(emulator):
    clip = emulator.audio_clip("the speech to convert", audio_format="mp3", sample_rate=24000)
    b64 = base64.b64encode(clip.data).decode("ascii")
    return clip, {
        "bytes": ({"content": clip.data, "content_type": "audio/mpeg"}, "audio/mpeg"),
        "base64": (b64, "audio/mpeg"),
        "data_url": (f"data:audio/mpeg;base64,{b64}", "audio/mpeg"),
        "url": (emulator.host_media(clip.data, "audio/mpeg", provider="cartesia"), "audio/mpeg"),
    }


@pytest.mark.parametrize("kind", ["bytes", "base64", "data_url", "url"])
def test_voice_changer_uploads_the_clip_as_multipart(emulator, kind):
    clip, inputs = _sts_inputs(emulator)
    audio, expected_type = inputs[kind]
    response = generate_sts(
        config(emulator, "voice-changer"),
        audio=audio,
        voice_id=VOICE,
        output_format={"format": "wav", "sample_rate": 16000},
        retry=FAST,
    )
    sent = emulator.last("cartesia.voice_changer")
    assert sent.path == "/voice-changer/bytes"
    assert sent.headers["Cartesia-Version"] == DEFAULT_API_VERSION
    assert sent.headers["Authorization"] == f"Bearer {emulator.key_for('cartesia')}"
    upload = sent.files["clip"][0]
    assert upload.data == clip.data and upload.content_type == expected_type and upload.filename == "clip.mp3"
    assert sent.form == {
        "voice[id]": VOICE,
        "output_format[container]": "wav",
        "output_format[encoding]": "pcm_s16le",
        "output_format[sample_rate]": "16000",
    }
    codec, rate, seconds = decoded(audio_of(response))
    assert (codec, rate) == ("pcm_s16le", 16000)
    assert seconds == pytest.approx(clip.duration_seconds, abs=0.1)  # same length as the input


def test_voice_changer_mp3_sends_the_bit_rate_async(emulator):
    clip = emulator.audio_clip("async source", audio_format="wav")
    response = asyncio.run(
        generate_sts_async(
            config(emulator, "voice-changer"),
            audio={"content": clip.data, "content_type": "audio/wav"},
            voice_id=VOICE,
            output_format={"format": "mp3", "sample_rate": 22050, "bitrate": 64},
            retry=FAST,
        )
    )
    form = emulator.last("cartesia.voice_changer").form
    assert form["output_format[container]"] == "mp3" and form["output_format[bit_rate]"] == "64000"
    assert "output_format[encoding]" not in form
    assert decoded(audio_of(response))[:2] == ("mp3", 22050)


# -- errors ------------------------------------------------------------------------------------


def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(emulator):
    secret = "sk_car_wrong-cartesia-key"
    with pytest.raises(ProviderAuthError) as info:
        generate_tts(config(emulator, api_key=secret), text="x", voice_id=VOICE, retry=FAST)
    assert "config.api_key" in str(info.value) and "Invalid API key" in str(info.value)
    assert secret not in str(info.value)
    assert len(info.value.request_id) == 36  # taken from the JSON error body
    assert emulator.count("cartesia.tts") == 1


def test_older_api_versions_get_plain_text_errors(emulator):
    with pytest.raises(ProviderAuthError) as info:
        generate_tts(config(emulator, api_key="wrong", api_version="2025-04-16"), text="x", voice_id=VOICE, retry=FAST)
    assert "Unauthorized: Invalid API key" in str(info.value)


def test_an_invalid_request_names_the_field_and_stops_the_chain(emulator):
    chain = config(emulator, fallback_configs=[mock_fallback()])
    with pytest.raises(InvalidRequestError) as info:
        generate_tts(chain, text="x", voice_id=VOICE, voice_settings={"speed": 3.0}, retry=FAST)
    assert "generation_config.speed must be between 0.6 and 1.5" in str(info.value)
    assert summary(info.value.execution_metadata) == [("cartesia", 1, "failed", "InvalidRequestError")]


def test_moderation_is_a_content_error_and_stops_the_chain(emulator):
    emulator.inject("cartesia.tts", Fault.moderation("The transcript violates the content policy."))
    chain = config(emulator, fallback_configs=[mock_fallback()])
    with pytest.raises(ContentModerationError, match="content policy") as info:
        generate_tts(chain, text="x", voice_id=VOICE, retry=FAST)
    assert summary(info.value.execution_metadata) == [("cartesia", 1, "failed", "ContentModerationError")]


def test_exhausted_credits_are_not_retried_and_the_chain_goes_on(emulator):
    emulator.inject("cartesia.tts", Fault.custom("quota"))
    response = generate_tts(config(emulator, fallback_configs=[mock_fallback()]), text="x", voice_id=VOICE, retry=FAST)
    first = response.execution_metadata.attempts[0]
    assert (first.error_type, first.is_retryable) == ("ProviderHTTPError", False) and "quota" in first.error_message
    assert summary(response.execution_metadata)[1:] == [("mock", 1, "success", None)]


def test_a_sunset_model_answer_is_not_retried(emulator):
    body = {"error_code": "model_sunsetted", "title": "Model sunsetted", "message": "no longer available",
            "request_id": "r-1"}
    emulator.inject("cartesia.tts", Fault.http(400, body))
    response = generate_tts(config(emulator, fallback_configs=[mock_fallback()]), text="x", voice_id=VOICE, retry=FAST)
    first = response.execution_metadata.attempts[0]
    assert (first.error_type, first.is_retryable, first.request_id) == ("ProviderHTTPError", False, "r-1")


def test_concurrency_limited_is_retried_after_retry_after(emulator):
    body = {"error_code": "concurrency_limited", "title": "Too many concurrent requests",
            "message": "You have exceeded your plan's concurrency limit.", "request_id": "r-429"}
    emulator.inject("cartesia.tts", Fault.http(429, body, {"Retry-After": "0"}))
    response = generate_tts(config(emulator), text="x", voice_id=VOICE, retry=FAST)
    assert summary(response.execution_metadata) == [
        ("cartesia", 1, "failed", "ProviderHTTPError"),
        ("cartesia", 2, "success", None),
    ]
    first = response.execution_metadata.attempts[0]
    assert first.is_retryable and "concurrency" in first.error_message and first.request_id == "r-429"


def test_server_errors_are_retried_but_a_reset_after_sending_is_possibly_paid(emulator):
    emulator.inject("cartesia.tts", Fault.http(502, "Bad Gateway: upstream"))
    emulator.inject("cartesia.tts", Fault.connection_reset())
    with pytest.raises(PossiblyPaidError) as info:
        generate_tts(config(emulator), text="x", voice_id=VOICE, retry=FAST)
    assert [a.error_type for a in info.value.execution_metadata.attempts] == ["ProviderHTTPError", "PossiblyPaidError"]
    assert emulator.count("cartesia.tts") == 2  # the 502 was a refusal; the reset may have been billed


def test_a_success_without_audio_is_a_generation_failure(emulator):
    emulator.inject("cartesia.tts", Fault.custom("empty_audio"))
    with pytest.raises(GenerationFailedError, match="without audio"):
        generate_tts(config(emulator), text="x", voice_id=VOICE, retry=FAST)


def test_the_emulator_rejects_output_formats_the_api_lacks():
    from tests.emulator.routes.cartesia import output_format_problem

    assert output_format_problem({"container": "raw", "encoding": "pcm_f32le", "sample_rate": 24000}) is None
    assert "bit_rate" in output_format_problem({"container": "mp3", "bit_rate": 320000, "sample_rate": 44100})
    assert "sample_rate" in output_format_problem({"container": "wav", "encoding": "pcm_s16le", "sample_rate": 32000})
    assert "encoding" in output_format_problem({"container": "raw", "sample_rate": 8000})


# -- fallback -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_persistent_failures_fall_back_to_elevenlabs(emulator, status):
    emulator.inject("cartesia.tts", Fault.http(status, {"error_code": None, "title": "Busy", "message": "busy",
                                                        "request_id": "r"}), times=None)
    elevenlabs = AudioGenerationConfig(
        provider="elevenlabs",
        model="eleven_flash_v2_5",
        base_url=emulator.url_for("elevenlabs"),
        api_key=emulator.key_for("elevenlabs"),
        provider_config={"voice_id": "eleven-voice"},
    )
    response = generate_tts(config(emulator, fallback_configs=[elevenlabs]), text=TEXT, voice_id=VOICE, retry=FAST)
    meta = response.execution_metadata
    assert summary(meta) == [
        ("cartesia", 1, "failed", "ProviderHTTPError"),
        ("cartesia", 2, "failed", "ProviderHTTPError"),
        ("cartesia", 3, "failed", "ProviderHTTPError"),
        ("elevenlabs", 1, "success", None),
    ]
    assert meta.fallback_triggered and meta.successful_attempt == 4
    assert emulator.last("elevenlabs.tts").path == "/v1/text-to-speech/eleven-voice"
    assert decoded(audio_of(response))[0] == "mp3"


@pytest.mark.parametrize(
    ("container", "encoding", "codec", "bytes_per_sample"),
    [
        ("wav", "pcm_f32le", "pcm_f32le", 4),
        ("wav", "pcm_mulaw", "pcm_mulaw", 1),
        ("wav", "pcm_alaw", "pcm_alaw", 1),
        ("raw", "pcm_f32le", None, 4),
        ("raw", "pcm_mulaw", None, 1),
    ],
)
def test_the_emulator_renders_every_documented_encoding(emulator, container, encoding, codec, bytes_per_sample):
    """Encodings the provider never asks for still come back as the API documents them."""
    import requests

    body = {"model_id": "sonic-3", "transcript": TEXT, "voice": {"id": VOICE},
            "output_format": {"container": container, "encoding": encoding, "sample_rate": 16000}}
    headers = {"Authorization": f"Bearer {emulator.key_for('cartesia')}", "Cartesia-Version": DEFAULT_API_VERSION}
    answer = requests.post(f"{emulator.url_for('cartesia')}/tts/bytes", json=body, headers=headers, timeout=10)
    assert answer.status_code == 200
    samples = round(SECONDS * 16000)
    if codec is None:
        assert len(answer.content) == samples * bytes_per_sample
    else:
        assert decoded(answer.content)[:2] == (codec, 16000)
        assert decoded(answer.content)[2] == pytest.approx(SECONDS, abs=1e-3)
