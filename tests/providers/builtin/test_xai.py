"""xAI Grok Imagine over the emulator: synchronous images, deferred videos and edits,
errors onto the taxonomy (a wrong key is an HTTP 400 there), fallback, skipped requests
and real media."""

from __future__ import annotations

import base64

import pytest
import requests

from providers import RetryPolicy, generate_image, generate_image_async, generate_video, generate_video_async
from providers.errors import ContentModerationError, InvalidRequestError, ProviderAuthError
from providers.media.probe import probe_media
from providers.registry import get_provider
from schemas import ImageGenerationConfig, JobHandle, MockConfig, VideoGenerationConfig, VideoGenerationRequest
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)
VIDEOS = "xai.videos"
IMAGES = "xai.images"


def video_config(emulator, **fields) -> VideoGenerationConfig:
    values = {
        "provider": "xai",
        "model": "grok-imagine-video",
        "api_key": emulator.key_for("xai"),
        "base_url": emulator.url_for("xai"),
        "poll_interval": 0,
        "max_poll_attempts": 100_000,
        "timeout": 30,
        **fields,
    }
    return VideoGenerationConfig(**values)


def image_config(emulator, **fields) -> ImageGenerationConfig:
    values = {
        "provider": "xai",
        "model": "grok-imagine-image",
        "api_key": emulator.key_for("xai"),
        "base_url": emulator.url_for("xai"),
        **fields,
    }
    return ImageGenerationConfig(**values)


def with_mock_fallback(config):
    fallback = type(config)(provider="mock", model="any", mock=MockConfig())
    return config.model_copy(update={"fallback_configs": [fallback]})


def summary(error_or_response):
    return [(a.provider, a.try_number, a.status, a.error_type) for a in error_or_response.execution_metadata.attempts]


def downloaded(url: str):
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return probe_media(response.content)


# -- images (synchronous) ---------------------------------------------------------------------


def test_images_come_back_as_urls(emulator):
    response = generate_image(
        image_config(emulator),
        prompt="a lighthouse at dusk",
        n=2,
        aspect_ratio="16:9",
        quality="high",
        seed=5,
        extra_params={"resolution": "2k"},
        retry=FAST,
    )
    sent = emulator.last(IMAGES)
    assert sent.headers["Authorization"] == f"Bearer {emulator.key_for('xai')}"
    assert sent.json == {
        "model": "grok-imagine-image",
        "prompt": "a lighthouse at dusk",
        "response_format": "url",
        "n": 2,
        "aspect_ratio": "16:9",
        "quality": "high",
        "resolution": "2k",
    }  # no seed: xAI has none
    assert len(response.images) == 2 and response.content_type == "image/jpeg"
    assert response.revised_prompt == "A detailed rendering of a lighthouse at dusk"
    info = downloaded(response.images[0])
    assert info.kind == "image" and info.content_type == "image/jpeg" and info.width > info.height


async def test_images_as_base64_async(emulator):
    config = image_config(emulator, model="grok-imagine-image-2.0", provider_config={"response_format": "b64_json"})
    response = await generate_image_async(config, prompt="a red kite", aspect_ratio="9:16", retry=FAST)
    assert emulator.last(IMAGES).json["response_format"] == "b64_json"
    info = probe_media(base64.b64decode(response.images[0]))
    assert info.content_type == "image/jpeg" and info.height > info.width
    raw_item = response.raw_response["data"][0]
    assert raw_item["b64_json"].startswith("<") and raw_item["b64_json"].endswith(" characters omitted>")


def test_image_block_reason_is_moderation_and_stops_the_chain(emulator):
    emulator.inject(IMAGES, Fault.moderation("Generated image rejected by content moderation."))
    with pytest.raises(ContentModerationError) as info:
        generate_image(with_mock_fallback(image_config(emulator)), prompt="x", retry=FAST)
    assert "rejected by content moderation" in info.value.message
    assert summary(info.value) == [("xai", 1, "failed", "ContentModerationError")]


def test_content_policy_400_is_moderation(emulator):
    body = {"code": "Client specified an invalid argument", "error": "Prompt violates the content policy."}
    emulator.inject(IMAGES, Fault.http(400, body))
    with pytest.raises(ContentModerationError):
        generate_image(with_mock_fallback(image_config(emulator)), prompt="x", retry=FAST)


def test_bad_value_is_invalid_request_and_stops_the_chain(emulator):
    with pytest.raises(InvalidRequestError) as info:
        generate_image(with_mock_fallback(image_config(emulator)), prompt="x", extra_params={"resolution": "8k"}, retry=FAST)
    assert "resolution" in info.value.message and emulator.last(IMAGES).status == 400
    assert summary(info.value) == [("xai", 1, "failed", "InvalidRequestError")]


def test_rate_limit_honours_retry_after(emulator):
    emulator.inject(IMAGES, Fault.http(429, {"code": "Too many requests", "error": "rate limited"}, {"Retry-After": "0.3"}))
    response = generate_image(image_config(emulator), prompt="x", retry=FAST)
    first, second = emulator.requests_for(IMAGES)
    assert (first.status, second.status) == (429, 200) and second.received_at - first.received_at >= 0.3
    assert summary(response) == [("xai", 1, "failed", "ProviderHTTPError"), ("xai", 2, "success", None)]


# -- auth ---------------------------------------------------------------------------------


def test_wrong_key_400_is_an_auth_error_that_quotes_nothing_of_the_key(emulator):
    secret = "xai-wrong-secret-key-9876"
    response = generate_image(with_mock_fallback(image_config(emulator, api_key=secret)), prompt="x", retry=FAST)
    assert emulator.last(IMAGES).status == 400  # xAI answers a wrong key with 400
    assert summary(response) == [("xai", 1, "failed", "ProviderAuthError"), ("mock", 1, "success", None)]
    message = response.execution_metadata.attempts[0].error_message
    assert secret not in message and "xa***76" not in message and "config.api_key" in message


def test_key_from_the_environment_is_named_not_shown(emulator, monkeypatch):
    monkeypatch.setenv("XAI_API_KEY", "env-key-that-is-wrong")
    with pytest.raises(ProviderAuthError) as info:
        generate_video(video_config(emulator, api_key=None), prompt="x", retry=FAST)
    assert "XAI_API_KEY" in info.value.message and "env-key-that-is-wrong" not in str(info.value)


# -- videos (deferred) ------------------------------------------------------------------------


def test_text_to_video_end_to_end_with_progress(emulator):
    emulator.jobs.advance_per_poll()  # queued, processing, completed: one state per poll, whatever the load
    updates = []
    response = generate_video(
        video_config(emulator),
        prompt="waves at night",
        duration_seconds=3,
        aspect_ratio="9:16",
        resolution="480p",
        enhance_prompt=True,
        on_progress=updates.append,
        retry=FAST,
    )
    assert emulator.last(VIDEOS).json == {
        "model": "grok-imagine-video",
        "prompt": "waves at night",
        "duration": 3,
        "aspect_ratio": "9:16",
        "resolution": "480p",
    }
    request_id = emulator.jobs.all("xai")[0].id
    assert response.execution_metadata.attempts[0].request_id == request_id
    assert response.duration == 3.0 and response.aspect_ratio == "9:16" and response.raw_response["status"] == "done"
    states = [u.status for u in updates]
    assert states[0] == "queued" and "processing" in states and states[-1] == "completed"
    assert all(u.progress_percent > 0 for u in updates if u.status == "processing")
    info = downloaded(response.video)
    assert info.kind == "video" and info.height > info.width and info.duration_seconds == pytest.approx(3, abs=0.2)


async def test_image_to_video_async_sends_the_frame_inline(emulator):
    frame = {"content": emulator.image_bytes("frame", width=48, height=48), "content_type": "image/png"}
    response = await generate_video_async(
        video_config(emulator), prompt="it starts to rain", duration_seconds=1, image_list=[{"image": frame, "type": "first_frame"}], retry=FAST
    )
    image = emulator.last(VIDEOS).json["image"]
    assert base64.b64decode(image["url"].removeprefix("data:image/png;base64,")) == frame["content"]
    assert downloaded(response.video).kind == "video"


def test_input_video_is_an_edit(emulator):
    source = emulator.host_video("source", width=64, height=48, duration=1.0)
    response = generate_video(video_config(emulator), prompt="add snow", video=source, retry=FAST)
    assert emulator.last("xai.video_edits").json == {"model": "grok-imagine-video", "prompt": "add snow", "video": {"url": source}}
    assert emulator.count(VIDEOS) == 0 and downloaded(response.video).kind == "video"


def test_blocked_video_is_moderation_and_stops_the_chain(emulator):
    emulator.inject(VIDEOS, Fault.moderation())
    with pytest.raises(ContentModerationError) as info:
        generate_video(with_mock_fallback(video_config(emulator)), prompt="x", retry=FAST)
    assert "respect_moderation" in info.value.message
    assert summary(info.value) == [("xai", 1, "failed", "ContentModerationError")]
    assert info.value.execution_metadata.attempts[0].request_id == emulator.jobs.all("xai")[0].id


def test_internal_failure_is_retried_on_xai(emulator):
    emulator.inject(VIDEOS, Fault.fail_job("renderer crashed"))
    response = generate_video(video_config(emulator), prompt="x", duration_seconds=1, retry=FAST)
    assert summary(response) == [("xai", 1, "failed", "GenerationFailedError"), ("xai", 2, "success", None)]
    assert "internal_error" in response.execution_metadata.attempts[0].error_message


def test_other_failures_fall_back(emulator):
    emulator.inject(VIDEOS, Fault.custom("video_failure", "prompt too long", code="invalid_prompt"))
    response = generate_video(with_mock_fallback(video_config(emulator)), prompt="x", retry=FAST)
    assert summary(response) == [("xai", 1, "failed", "GenerationFailedError"), ("mock", 1, "success", None)]


def test_expired_request_is_retried(emulator):
    emulator.inject(VIDEOS, Fault.custom("expire"))
    response = generate_video(video_config(emulator), prompt="x", duration_seconds=1, retry=FAST)
    assert summary(response) == [("xai", 1, "failed", "GenerationFailedError"), ("xai", 2, "success", None)]
    assert "expired" in response.execution_metadata.attempts[0].error_message


def test_server_errors_are_retried_then_the_fallback_runs(emulator):
    emulator.inject(VIDEOS, Fault.http(503, {"code": "Service unavailable", "error": "try later"}), times=None)
    response = generate_video(with_mock_fallback(video_config(emulator)), prompt="x", retry=FAST)
    assert emulator.count(VIDEOS) == 3 and response.execution_metadata.fallback_triggered
    assert [a.status for a in response.execution_metadata.attempts] == ["failed", "failed", "failed", "success"]


def test_handle_is_serialisable_and_followed_from_a_fresh_provider(emulator):
    emulator.jobs.advance_per_poll(["completed"])  # done at the first poll
    config = video_config(emulator)
    provider = get_provider("xai")
    handle = provider.submit(provider.context(config, "video"), VideoGenerationRequest(prompt="x", duration_seconds=1))
    dumped = handle.model_dump_json()
    assert emulator.key_for("xai") not in dumped
    other = type(provider)()
    ctx = other.context(config, "video")
    restored = JobHandle.model_validate_json(dumped)
    assert other.poll(ctx, restored).state == "completed"
    assert other.fetch(ctx, restored).media[0].url


# -- requests xAI cannot serve are skipped without HTTP -----------------------------------------


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"duration_seconds": 20}, "maximum of 15"),
        ({"aspect_ratio": "21:9"}, "aspect_ratio"),
        ({"resolution": "1080p"}, "resolution"),
        ({"negative_prompt": "rain"}, "negative_prompt"),
        ({"video": "https://x.example/v.mp4", "duration_seconds": 4}, "input video"),
        ({"image_list": [{"image": "https://x.example/a.png", "type": "last_frame"}]}, "image roles"),
    ],
)
def test_unservable_video_requests_are_skipped(emulator, fields, reason):
    response = generate_video(with_mock_fallback(video_config(emulator)), prompt="x", retry=FAST, **fields)
    assert summary(response) == [("xai", 1, "skipped", "UnsupportedRequestError"), ("mock", 1, "success", None)]
    assert reason in response.execution_metadata.attempts[0].error_message
    assert emulator.requests_for(provider="xai") == []


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"size": "1024x1024"}, "size"),
        ({"style": "vivid"}, "style"),
        ({"quality": "hd"}, "quality"),
        ({"n": 11}, "n=11"),
        ({"aspect_ratio": "21:9"}, "aspect_ratio"),
        ({"image_list": [{"image": "https://x.example/a.png", "type": "reference"}]}, "input images"),
    ],
)
def test_unservable_image_requests_are_skipped(emulator, fields, reason):
    response = generate_image(with_mock_fallback(image_config(emulator)), prompt="x", retry=FAST, **fields)
    assert summary(response)[0] == ("xai", 1, "skipped", "UnsupportedRequestError")
    assert reason in response.execution_metadata.attempts[0].error_message
    assert emulator.requests_for(provider="xai") == []


# -- what the reference says the API accepts (tests/conformance/test_xai.py) -------------------


def test_generate_audio_is_sent_as_given(emulator):
    generate_video(video_config(emulator), prompt="a quiet pond", generate_audio=False, retry=FAST)
    assert emulator.last("xai.videos").json["generate_audio"] is False


def test_1080p_is_text_to_video_on_grok_imagine_video_1_5(emulator):
    generate_video(video_config(emulator, model="grok-imagine-video-1.5"), prompt="x", resolution="1080p", retry=FAST)
    assert emulator.last("xai.videos").json["resolution"] == "1080p"
    response = generate_video(
        with_mock_fallback(video_config(emulator, model="grok-imagine-video-1.5")), prompt="x", resolution="1080p",
        image_list=[{"image": "https://x.example/a.png", "type": "first_frame"}], retry=FAST,
    )
    assert "text-to-video only" in response.execution_metadata.attempts[0].error_message


@pytest.mark.parametrize(("model", "date"), [("grok-imagine-image-quality", "2026-11-02"),
                                             ("grok-imagine-image-pro", "2026-05-15")])
def test_retired_image_models_are_skipped_naming_the_replacement(emulator, model, date):
    response = generate_image(with_mock_fallback(image_config(emulator, model=model)), prompt="x", retry=FAST)
    message = response.execution_metadata.attempts[0].error_message
    assert f"{model} was retired on {date}" in message and "use grok-imagine-image-2.0" in message
    assert emulator.requests_for(provider="xai") == []


def test_image_2_0_takes_quality_low_or_medium(emulator):
    generate_image(image_config(emulator, model="grok-imagine-image-2.0"), prompt="x", quality="medium", retry=FAST)
    assert emulator.last(IMAGES).json["quality"] == "medium"
    response = generate_image(with_mock_fallback(image_config(emulator, model="grok-imagine-image-2.0")), prompt="x",
                              quality="high", retry=FAST)
    assert "quality='high'" in response.execution_metadata.attempts[0].error_message
