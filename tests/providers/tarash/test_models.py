"""Tarash's contract for its data model (configs, requests, responses, execution metadata),
restated in this project's own words: defaults as in the models spec, immutable configs
derived with ``model_copy``, unknown request fields kept in ``extra_params``, and the
computed timings of attempts and chains."""

from datetime import datetime, timedelta, timezone

import pydantic
import pytest

from schemas import (
    AttemptMetadata,
    AudioGenerationConfig,
    ExecutionMetadata,
    ImageGenerationConfig,
    ImageGenerationRequest,
    STSRequest,
    TTSRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)

T0 = datetime(2026, 1, 3, 10, 0, 0, tzinfo=timezone.utc)


def attempt(number: int, start: float, end: float | None, status: str = "success", **fields) -> AttemptMetadata:
    """An attempt running from ``start`` to ``end`` seconds after T0."""
    return AttemptMetadata(provider="fal", model="m", attempt_number=number, started_at=T0 + timedelta(seconds=start),
                           ended_at=None if end is None else T0 + timedelta(seconds=end), status=status, **fields)


def test_config_defaults_match_the_contract():
    video = VideoGenerationConfig(provider="fal", model="fal-ai/veo3")
    assert (video.timeout, video.max_poll_attempts, video.poll_interval) == (600, 120, 5)
    assert video.api_key is None and video.base_url is None and video.api_version is None
    assert video.mock is None and video.fallback_configs is None and video.provider_config == {}
    image = ImageGenerationConfig(provider="openai", model="dall-e-3")
    assert (image.timeout, image.max_poll_attempts, image.poll_interval) == (120, 60, 2)
    audio = AudioGenerationConfig(provider="elevenlabs", model="m")
    assert (audio.timeout, audio.api_key, audio.mock, audio.fallback_configs) == (240, None, None, None)


@pytest.mark.parametrize("config", [
    VideoGenerationConfig(provider="fal", model="a"),
    ImageGenerationConfig(provider="fal", model="a"),
    AudioGenerationConfig(provider="cartesia", model="a"),
])
def test_configs_are_immutable_and_derived_with_model_copy(config):
    with pytest.raises(pydantic.ValidationError):
        config.model = "b"
    derived = config.model_copy(update={"model": "b"})
    assert (config.model, derived.model, type(derived)) == ("a", "b", type(config))


def test_request_defaults_match_the_contract():
    video = VideoGenerationRequest(prompt="x")
    assert video.image_list == [] and video.number_of_videos == 1 and video.extra_params == {}
    assert (video.duration_seconds, video.resolution, video.aspect_ratio, video.seed, video.video) == (None,) * 5
    image = ImageGenerationRequest(prompt="x")
    assert image.image_list == [] and (image.size, image.n, image.mask_image, image.seed) == (None,) * 4


@pytest.mark.parametrize(("request_type", "given"), [
    (VideoGenerationRequest, {"prompt": "x"}),
    (ImageGenerationRequest, {"prompt": "x"}),
    (TTSRequest, {"text": "x"}),
    (STSRequest, {"audio": "https://example.com/a.wav", "voice_id": "v"}),
])
def test_unknown_request_fields_land_in_extra_params(request_type, given):
    request = request_type(**given, motion_bucket=7, style_preset="noir")
    assert request.extra_params == {"motion_bucket": 7, "style_preset": "noir"}


def test_an_invalid_literal_is_refused_naming_the_field():
    with pytest.raises(pydantic.ValidationError, match="aspect_ratio"):
        VideoGenerationRequest(prompt="x", aspect_ratio="7:5")


def test_tts_and_sts_requests_default_to_mp3_44100_128():
    for request in (TTSRequest(text="hi"), STSRequest(audio="https://example.com/a.wav", voice_id="v")):
        fmt = request.output_format
        assert (fmt.format, fmt.sample_rate, fmt.bitrate) == ("mp3", 44100, 128)


def test_attempt_elapsed_is_its_span_and_none_while_running():
    assert attempt(1, 0, 2.5).elapsed_seconds == 2.5
    assert attempt(1, 0, None, status="failed").elapsed_seconds is None


def test_chain_elapsed_runs_from_the_first_start_to_the_last_end():
    # A gap between attempts counts: 0-5 then 6-15 is 15 seconds, not 5 + 9.
    failed = attempt(1, 0, 5, status="failed", error_type="ProviderHTTPError", is_retryable=True)
    meta = ExecutionMetadata(attempts=[failed, attempt(2, 6, 15)], total_attempts=2, successful_attempt=2,
                             fallback_triggered=True, configs_in_chain=2)
    assert meta.total_elapsed_seconds == 15.0
    assert ExecutionMetadata(attempts=[attempt(1, 0, 5)], total_attempts=1).total_elapsed_seconds == 5.0
    assert ExecutionMetadata().total_elapsed_seconds == 0.0


def test_a_response_carries_execution_metadata_only_when_given():
    bare = VideoGenerationResponse(request_id="r", video="https://example.com/v.mp4")
    assert bare.execution_metadata is None and bare.status == "completed" and bare.is_mock is False
    meta = ExecutionMetadata(attempts=[attempt(1, 0, 5)], total_attempts=1, successful_attempt=1, configs_in_chain=1)
    response = bare.model_copy(update={"execution_metadata": meta})
    assert response.execution_metadata.successful_attempt == 1 and not response.execution_metadata.fallback_triggered

