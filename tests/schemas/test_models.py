"""The public data model: defaults, immutability, extra_params, validation messages,
JSON round-trips and secret hiding."""

import logging

import pydantic
import pytest

from schemas import (
    AttemptMetadata,
    AudioGenerationConfig,
    AudioOutputFormat,
    ExecutionMetadata,
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    MockConfig,
    REVEAL_SECRETS,
    STSRequest,
    TTSRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)

SECRET = "sk-live-THIS-MUST-NOT-LEAK-1234"


def test_video_config_defaults():
    config = VideoGenerationConfig(provider="fal", model="fal-ai/veo3")
    assert (config.api_key, config.base_url, config.api_version) == (None, None, None)
    assert (config.timeout, config.max_poll_attempts, config.poll_interval) == (600, 120, 5)
    assert config.mock is None and config.fallback_configs is None and config.provider_config == {}


def test_image_and_audio_config_defaults():
    image = ImageGenerationConfig(provider="openai", model="dall-e-3")
    assert (image.timeout, image.max_poll_attempts, image.poll_interval) == (120, 60, 2)
    audio = AudioGenerationConfig(provider="elevenlabs", model="eleven_multilingual_v2")
    assert audio.timeout == 240 and audio.api_key is None and audio.mock is None


def test_request_defaults():
    video = VideoGenerationRequest(prompt="a fox")
    assert video.number_of_videos == 1 and video.image_list == [] and video.extra_params == {}
    assert video.duration_seconds is None and video.resolution is None and video.seed is None
    image = ImageGenerationRequest(prompt="a fox")
    assert image.n is None and image.size is None and image.image_list == []
    tts = TTSRequest(text="hello")
    assert tts.output_format == AudioOutputFormat(format="mp3", sample_rate=44100, bitrate=128)
    assert AudioOutputFormat().format == "mp3" and AudioOutputFormat().sample_rate is None


def test_response_defaults():
    video = VideoGenerationResponse(request_id="r", video="https://x/y.mp4")
    assert video.status == "completed" and video.is_mock is False and video.raw_response == {}
    image = ImageGenerationResponse(request_id="r", images=["aGk="])
    assert image.content_type == "image/png" and image.revised_prompt is None


def test_configs_are_immutable_and_derive_with_model_copy():
    config = VideoGenerationConfig(provider="fal", model="fal-ai/veo3")
    with pytest.raises(pydantic.ValidationError):
        config.timeout = 5  # type: ignore[misc]
    derived = config.model_copy(update={"timeout": 30})
    assert derived.timeout == 30 and config.timeout == 600


def test_unknown_kwargs_are_captured_in_extra_params():
    request = VideoGenerationRequest(prompt="x", motion_strength=0.7, camera="dolly")
    assert request.extra_params == {"motion_strength": 0.7, "camera": "dolly"}
    merged = TTSRequest(text="hi", extra_params={"a": 1}, b=2)
    assert merged.extra_params == {"a": 1, "b": 2}
    sts = STSRequest(audio="https://x/a.wav", voice_id="v", remove_background_noise=True)
    assert sts.extra_params == {"remove_background_noise": True}


@pytest.mark.parametrize(
    "model, fields, field, value, allowed",
    [
        (VideoGenerationRequest, {"prompt": "x", "resolution": "8k"}, "resolution", "8k", "'360p', '480p', '720p', '1080p' or '4k'"),
        (VideoGenerationRequest, {"prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio", "2:1", "'16:9', '9:16', '1:1', '4:3' or '21:9'"),
        (ImageGenerationRequest, {"prompt": "x", "size": "big"}, "size", "big", "WIDTHxHEIGHT"),
        (AudioOutputFormat, {"format": "aiff"}, "format", "aiff", "mp3, wav, pcm, flac, opus"),
    ],
)
def test_bad_values_name_field_value_and_what_is_allowed(model, fields, field, value, allowed):
    with pytest.raises(pydantic.ValidationError) as info:
        model(**fields)
    text = str(info.value)
    assert field in text and repr(value) in text and allowed in text


def test_blank_prompt_and_bad_numbers_are_rejected():
    with pytest.raises(pydantic.ValidationError, match="prompt"):
        VideoGenerationRequest(prompt="   ")
    with pytest.raises(pydantic.ValidationError, match="number_of_videos"):
        VideoGenerationRequest(prompt="x", number_of_videos=0)
    with pytest.raises(pydantic.ValidationError, match="duration_seconds"):
        VideoGenerationRequest(prompt="x", duration_seconds=-4)


def _chain() -> VideoGenerationConfig:
    leaf = VideoGenerationConfig(provider="google", model="veo-3.1-generate-001", provider_config={"gcp_project": "p"})
    middle = VideoGenerationConfig(
        provider="runway",
        model="gen4_turbo",
        mock=MockConfig(
            responses=[{"weight": 2, "error": "rate_limit", "retry_after": 1.5}, {"weight": 1}],
            job_duration_seconds=2,
            polling={"status_sequence": ["queued", "processing", "completed"], "delay_between_updates": 0.5},
        ),
        fallback_configs=[leaf],
    )
    return VideoGenerationConfig(provider="fal", model="fal-ai/veo3", timeout=900, fallback_configs=[middle])


def test_config_with_two_level_fallback_and_mock_round_trips_through_json():
    config = _chain()
    restored = VideoGenerationConfig.model_validate_json(config.model_dump_json())
    assert restored == config
    assert restored.fallback_configs[0].fallback_configs[0].provider_config == {"gcp_project": "p"}
    assert restored.fallback_configs[0].mock.responses[0].error == "rate_limit"


def test_api_key_never_shows_in_repr_str_or_dumps():
    config = VideoGenerationConfig(provider="fal", model="m", api_key=SECRET, fallback_configs=[
        VideoGenerationConfig(provider="runway", model="g", api_key=SECRET)])
    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        assert SECRET not in text
    assert config.api_key == SECRET
    revealed = config.model_dump(context={REVEAL_SECRETS: True})
    assert revealed["api_key"] == SECRET and revealed["fallback_configs"][0]["api_key"] == SECRET


def test_api_key_of_a_wrong_type_does_not_echo_in_errors(caplog):
    config = AudioGenerationConfig(provider="x", model="y", api_key=12345678)
    assert config.api_key == "12345678"
    with pytest.raises(pydantic.ValidationError) as info:
        AudioGenerationConfig(provider="x", model="y", api_key=SECRET, timeout="soon")
    assert SECRET not in str(info.value)
    logging.getLogger("t").warning("config: %s", config)
    assert "12345678" not in caplog.text


def test_mock_config_is_plain_data():
    mock = MockConfig.model_validate_json('{"enabled": true}')
    assert mock.responses == [] and mock.job_duration_seconds == 0 and mock.polling is None
    with pytest.raises(pydantic.ValidationError, match="error"):
        MockConfig(responses=[{"weight": 1, "error": "meteor_strike"}])
    with pytest.raises(pydantic.ValidationError, match="must end in"):
        MockConfig(polling={"status_sequence": ["queued", "processing"]})


def test_execution_metadata_computes_elapsed_times():
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    a1 = AttemptMetadata(provider="fal", model="m", attempt_number=1, started_at=t0, ended_at=t0 + timedelta(seconds=2), status="failed")
    a2 = AttemptMetadata(provider="runway", model="g", attempt_number=2, started_at=t0 + timedelta(seconds=3), ended_at=t0 + timedelta(seconds=7), status="success")
    metadata = ExecutionMetadata(total_attempts=2, successful_attempt=2, attempts=[a1, a2], fallback_triggered=True, configs_in_chain=2)
    assert a1.elapsed_seconds == 2 and a2.elapsed_seconds == 4
    assert metadata.total_elapsed_seconds == 7
    assert "total_elapsed_seconds" in metadata.model_dump()
    with pytest.raises(pydantic.ValidationError, match="timezone-aware"):
        AttemptMetadata(provider="p", model="m", attempt_number=1, started_at=datetime(2026, 1, 1), status="success")


def test_update_carries_result_only_model():
    update = VideoGenerationUpdate(request_id="r", status="processing", progress_percent=40)
    assert update.result is None and update.error is None
    with pytest.raises(pydantic.ValidationError, match="progress_percent"):
        VideoGenerationUpdate(request_id="r", status="processing", progress_percent=140)


def test_media_content_bytes_survive_json():
    request = STSRequest(audio={"content": b"\x00\xffRIFF", "content_type": "audio/wav"}, voice_id="v")
    restored = STSRequest.model_validate_json(request.model_dump_json())
    assert restored.audio["content"] == b"\x00\xffRIFF"


def test_everything_in_the_spec_is_importable_from_schemas():
    import schemas

    for name in ("MediaType", "ImageType", "MediaContent", "Resolution", "AspectRatio", "VideoGenerationConfig",
                 "VideoGenerationRequest", "VideoGenerationResponse", "VideoGenerationUpdate", "ImageGenerationConfig",
                 "ImageGenerationRequest", "ImageGenerationResponse", "ImageGenerationUpdate", "ExecutionMetadata",
                 "AttemptMetadata", "AudioGenerationConfig", "AudioOutputFormat", "TTSRequest", "STSRequest",
                 "TTSResponse", "STSResponse", "MockConfig"):
        assert hasattr(schemas, name), name
