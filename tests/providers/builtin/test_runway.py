"""Runway over the emulator: the task endpoints, field mapping per model, polling,
errors onto the taxonomy, fallback, skipped requests and real media."""

from __future__ import annotations

import base64

import pytest
import requests

from providers import RetryPolicy, generate_image, generate_video, generate_video_async
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderAuthError,
)
from providers.media.probe import probe_media
from providers.registry import get_provider
from schemas import ImageGenerationConfig, JobHandle, MockConfig, VideoGenerationConfig
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)
NO_RETRY = RetryPolicy(max_retries=0)
TEXT_TO_VIDEO = "runway.text_to_video"


def video_config(emulator, model: str = "gen4.5", **fields) -> VideoGenerationConfig:
    values = {
        "provider": "runway",
        "model": model,
        "api_key": emulator.key_for("runway"),
        "base_url": emulator.url_for("runway"),
        "poll_interval": 0,
        "max_poll_attempts": 100_000,
        "timeout": 30,
        **fields,
    }
    return VideoGenerationConfig(**values)


def image_config(emulator, model: str = "gen4_image", **fields) -> ImageGenerationConfig:
    values = {
        "provider": "runway",
        "model": model,
        "api_key": emulator.key_for("runway"),
        "base_url": emulator.url_for("runway"),
        "poll_interval": 0,
        "max_poll_attempts": 100_000,
        **fields,
    }
    return ImageGenerationConfig(**values)


def with_mock_fallback(config):
    fallback = type(config)(provider="mock", model="any", mock=MockConfig())
    return config.model_copy(update={"fallback_configs": [fallback]})


def summary(error_or_response):
    meta = error_or_response.execution_metadata
    return [(a.provider, a.try_number, a.status, a.error_type) for a in meta.attempts]


def downloaded(url: str):
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return probe_media(response.content)


def runway_requests(emulator):
    return emulator.requests_for(provider="runway")


# -- successful jobs ----------------------------------------------------------------------


def test_text_to_video_end_to_end_with_progress(emulator):
    emulator.jobs.advance_per_poll()  # queued, processing, completed: one state per poll, whatever the load
    updates = []
    response = generate_video(
        video_config(emulator),
        prompt="a red fox in fresh snow",
        duration_seconds=4,
        aspect_ratio="9:16",
        seed=7,
        on_progress=updates.append,
        retry=FAST,
    )

    sent = emulator.last(TEXT_TO_VIDEO)
    assert sent.json == {"model": "gen4.5", "promptText": "a red fox in fresh snow", "ratio": "720:1280", "duration": 4, "seed": 7}
    assert sent.headers["Authorization"] == f"Bearer {emulator.key_for('runway')}"
    assert sent.headers["X-Runway-Version"] == "2024-11-06"

    task_id = emulator.jobs.all("runway")[0].id
    assert response.execution_metadata.attempts[0].request_id == task_id
    assert response.raw_response["status"] == "SUCCEEDED" and response.raw_response["id"] == task_id
    assert (response.duration, response.resolution, response.aspect_ratio) == (4.0, "720x1280", "9:16")
    assert response.content_type == "video/mp4"

    states = [u.status for u in updates]
    assert states[0] == "queued" and "processing" in states and states[-1] == "completed"
    running = [u.progress_percent for u in updates if u.status == "processing"]
    assert running == sorted(running) and all(0 <= p <= 99 for p in running)
    assert any(u.update.get("status") == "RUNNING" for u in updates)

    info = downloaded(response.video)
    assert info.kind == "video" and info.codec == "h264" and info.height > info.width
    assert info.duration_seconds == pytest.approx(4.0, abs=0.2)


async def test_image_to_video_async_with_first_and_last_frames(emulator):
    first = emulator.host_image("first", width=64, height=36)  # http:// -> must be sent inline
    last = "https://cdn.example.com/last.png"  # https -> sent as it is
    response = await generate_video_async(
        video_config(emulator, "veo3.1"),
        prompt="a door opens",
        resolution="1080p",
        aspect_ratio="16:9",
        duration_seconds=6,
        generate_audio=True,
        negative_prompt="blur",
        seed=3,
        image_list=[{"image": first, "type": "first_frame"}, {"image": last, "type": "last_frame"}],
        retry=FAST,
    )
    body = emulator.last("runway.image_to_video").json
    first_uri = body["promptImage"][0]["uri"]
    assert first_uri.startswith("data:image/png;base64,")
    assert base64.b64decode(first_uri.split(",", 1)[1]) == emulator.media_bytes(first)
    assert body["promptImage"][1] == {"uri": last, "position": "last"}
    assert body["promptImage"][0]["position"] == "first"
    assert {k: body[k] for k in ("ratio", "duration", "audio", "negativePrompt")} == {
        "ratio": "1920:1080",
        "duration": 6,
        "audio": True,
        "negativePrompt": "blur",
    }
    assert body["seed"] == 3  # runwayml 5.24.0: Veo3_1 takes seed (it used to be dropped)
    assert response.resolution == "1920x1080" and downloaded(response.video).duration_seconds == pytest.approx(6, abs=0.2)


def test_gen4_turbo_single_first_frame_is_a_plain_uri(emulator):
    image = {"content": emulator.image_bytes("x", width=32, height=32), "content_type": "image/png"}
    generate_video(
        video_config(emulator, "gen4_turbo"),
        prompt="pan left",
        aspect_ratio="21:9",
        image_list=[{"image": image, "type": "first_frame"}],
        retry=FAST,
    )
    body = emulator.last("runway.image_to_video").json
    assert body["promptImage"].startswith("data:image/png;base64,") and body["ratio"] == "1584:672"
    assert "duration" not in body  # optional for gen4_turbo: the model's default applies


def test_video_to_video_sends_the_video_inline(emulator):
    clip = {"content": emulator.video_bytes("source", width=64, height=48, duration=1.0), "content_type": "video/mp4"}
    response = generate_video(
        video_config(emulator, "aleph2", provider_config={"public_figure_threshold": "low"}),
        prompt="make it snow",
        video=clip,
        seed=5,
        retry=FAST,
    )
    body = emulator.last("runway.video_to_video").json
    assert body["videoUri"].startswith("data:video/mp4;base64,")
    assert body["contentModeration"] == {"publicFigureThreshold": "low"} and body["seed"] == 5
    assert "duration" not in body and "ratio" not in body  # aleph2's output follows the input video
    assert downloaded(response.video).kind == "video"


def test_veo3_1_text_to_video_sends_seed_and_negative_prompt(emulator):
    generate_video(video_config(emulator, "veo3.1_fast"), prompt="a storm", negative_prompt="people", seed=42,
                   duration_seconds=4, retry=FAST)
    body = emulator.last(TEXT_TO_VIDEO).json
    assert body == {"model": "veo3.1_fast", "promptText": "a storm", "ratio": "1280:720", "duration": 4, "seed": 42,
                    "negativePrompt": "people"}


def test_text_to_image_with_tagged_references(emulator):
    refs = [{"image": "https://cdn.example.com/a.png", "type": "reference"}, {"image": "https://cdn.example.com/b.png", "type": "asset"}]
    response = generate_image(
        image_config(emulator, "gen4_image_turbo"),
        prompt="@hero stands next to @car",
        aspect_ratio="16:9",
        image_list=refs,
        seed=11,
        extra_params={"reference_tags": ["hero", "car"], "resolution": "720p"},
        retry=FAST,
    )
    body = emulator.last("runway.text_to_image").json
    assert body == {
        "model": "gen4_image_turbo",
        "promptText": "@hero stands next to @car",
        "ratio": "1280:720",
        "referenceImages": [
            {"uri": "https://cdn.example.com/a.png", "tag": "hero"},
            {"uri": "https://cdn.example.com/b.png", "tag": "car"},
        ],
        "seed": 11,
    }
    assert len(response.images) == 1 and response.content_type == "image/png"
    info = downloaded(response.images[0])
    assert info.kind == "image" and info.width > info.height


def test_image_size_maps_to_a_pixel_ratio(emulator):
    generate_image(image_config(emulator), prompt="a lighthouse", size="1808x768", retry=FAST)
    assert emulator.last("runway.text_to_image").json["ratio"] == "1808:768"


def test_throttled_task_reports_queued(emulator):
    emulator.inject(TEXT_TO_VIDEO, Fault.custom("throttled"))
    updates = []
    generate_video(video_config(emulator), prompt="x", on_progress=updates.append, retry=FAST)
    assert updates[0].status == "queued" and updates[0].update["status"] == "THROTTLED"


def test_handle_is_serialisable_and_followed_from_a_fresh_provider(emulator):
    emulator.jobs.advance_per_poll(["completed"])  # done at the first poll
    config = video_config(emulator)
    provider = get_provider("runway")
    handle = provider.submit(provider.context(config, "video"), _request(prompt="x", duration_seconds=2))
    restored = JobHandle.model_validate_json(handle.model_dump_json())
    assert emulator.key_for("runway") not in handle.model_dump_json()

    other = type(provider)()
    ctx = other.context(config, "video")
    assert other.poll(ctx, restored).state == "completed"
    output = other.fetch(ctx, restored)
    assert output.request_id == restored.job_id and output.media[0].url and output.duration == 2.0
    assert emulator.count("runway.task") == 2  # fetch re-reads the task for fresh output URLs


def test_cancel_deletes_the_task_and_polling_then_fails(emulator):
    emulator.jobs.advance_per_poll()  # unpolled, the task stays queued however long the cancel takes
    provider = get_provider("runway")
    ctx = provider.context(video_config(emulator), "video")
    handle = provider.submit(ctx, _request(prompt="x"))
    assert provider.cancel(ctx, handle) is True
    status = provider.poll(ctx, handle)
    assert emulator.last("runway.cancel").method == "DELETE"
    assert status.state == "failed" and isinstance(status.failure, GenerationFailedError)
    assert "cancelled" in status.failure.message


# -- errors ---------------------------------------------------------------------------------


def test_wrong_key_is_an_auth_error_without_the_key_and_the_chain_goes_on(emulator):
    secret = "rw-this-key-is-wrong-123456"
    config = with_mock_fallback(video_config(emulator, api_key=secret))
    response = generate_video(config, prompt="x", retry=FAST)
    assert summary(response) == [("runway", 1, "failed", "ProviderAuthError"), ("mock", 1, "success", None)]
    message = response.execution_metadata.attempts[0].error_message
    assert secret not in message and "config.api_key" in message
    assert emulator.last(TEXT_TO_VIDEO).status == 401


def test_unknown_api_version_is_rejected_like_the_api(emulator):
    with pytest.raises(InvalidRequestError) as info:
        generate_video(with_mock_fallback(video_config(emulator, api_version="2020-01-01")), prompt="x", retry=FAST)
    assert emulator.last(TEXT_TO_VIDEO).headers["X-Runway-Version"] == "2020-01-01"
    assert "X-Runway-Version" in info.value.message
    assert summary(info.value) == [("runway", 1, "failed", "InvalidRequestError")]


def test_validation_error_names_the_field_and_stops_the_chain(emulator):
    config = with_mock_fallback(video_config(emulator))
    with pytest.raises(InvalidRequestError) as info:
        generate_video(config, prompt="x", extra_params={"ratio": "999:999"}, retry=FAST)
    assert "ratio" in info.value.message and info.value.raw_response["issues"]
    assert summary(info.value) == [("runway", 1, "failed", "InvalidRequestError")]


def test_moderation_failure_code_stops_the_chain(emulator):
    emulator.inject(TEXT_TO_VIDEO, Fault.moderation("prompt flagged"))
    with pytest.raises(ContentModerationError) as info:
        generate_video(with_mock_fallback(video_config(emulator)), prompt="x", retry=FAST)
    assert "SAFETY.INPUT.TEXT" in info.value.message and "prompt flagged" in info.value.message
    assert summary(info.value) == [("runway", 1, "failed", "ContentModerationError")]
    assert info.value.execution_metadata.attempts[0].request_id == emulator.jobs.all("runway")[0].id


def test_rate_limit_honours_retry_after_then_succeeds(emulator):
    emulator.inject(TEXT_TO_VIDEO, Fault.http(429, {"error": "daily task limit reached"}, {"Retry-After": "0.3"}))
    response = generate_video(video_config(emulator), prompt="x", retry=FAST)
    submits = emulator.requests_for(TEXT_TO_VIDEO)
    assert [r.status for r in submits] == [429, 200]
    assert submits[1].received_at - submits[0].received_at >= 0.3
    assert summary(response) == [("runway", 1, "failed", "ProviderHTTPError"), ("runway", 2, "success", None)]


def test_server_errors_are_retried_then_the_fallback_runs(emulator):
    emulator.inject(TEXT_TO_VIDEO, Fault.http(503, {"error": "overloaded"}), times=None)
    response = generate_video(with_mock_fallback(video_config(emulator)), prompt="x", retry=FAST)
    assert emulator.count(TEXT_TO_VIDEO) == 3
    assert summary(response) == [
        ("runway", 1, "failed", "ProviderHTTPError"),
        ("runway", 2, "failed", "ProviderHTTPError"),
        ("runway", 3, "failed", "ProviderHTTPError"),
        ("mock", 1, "success", None),
    ]
    meta = response.execution_metadata
    assert meta.fallback_triggered and meta.successful_attempt == 4 and all(a.is_retryable for a in meta.attempts[:3])


def test_bad_output_failure_is_retried_on_runway(emulator):
    emulator.inject(TEXT_TO_VIDEO, Fault.fail_job("output rejected"))
    response = generate_video(video_config(emulator), prompt="x", retry=FAST)
    assert summary(response) == [("runway", 1, "failed", "GenerationFailedError"), ("runway", 2, "success", None)]
    assert "INTERNAL.BAD_OUTPUT" in response.execution_metadata.attempts[0].error_message


def test_other_task_failures_move_to_the_fallback(emulator):
    emulator.inject(TEXT_TO_VIDEO, Fault.custom("task_failure", "could not render", code="UNKNOWN.REASON"))
    response = generate_video(with_mock_fallback(video_config(emulator)), prompt="x", retry=FAST)
    assert summary(response) == [("runway", 1, "failed", "GenerationFailedError"), ("mock", 1, "success", None)]
    assert response.execution_metadata.attempts[0].is_retryable is False


def test_invalid_asset_failure_is_invalid_request(emulator):
    emulator.inject(TEXT_TO_VIDEO, Fault.custom("task_failure", "unreadable image", code="ASSET.INVALID"))
    with pytest.raises(InvalidRequestError):
        generate_video(video_config(emulator), prompt="x", retry=NO_RETRY)


def test_missing_key_fails_before_any_request(emulator, monkeypatch):
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    with pytest.raises(ProviderAuthError) as info:
        generate_video(video_config(emulator, api_key=None), prompt="x", retry=FAST)
    assert "RUNWAYML_API_SECRET" in info.value.message and runway_requests(emulator) == []


# -- requests a model cannot serve are skipped without HTTP ------------------------------------


@pytest.mark.parametrize(
    "model, fields, reason",
    [
        ("gen4_turbo", {}, "image-to-video only"),
        ("gen4.5", {"aspect_ratio": "4:3"}, "not offered"),
        ("gen4.5", {"duration_seconds": 12}, "maximum of 10"),
        ("veo3.1", {"duration_seconds": 5}, "allowed: 4, 6, 8"),
        ("veo3.1", {"resolution": "480p"}, "resolution"),
        ("veo3.1", {"image_list": [{"image": "https://x.example/l.png", "type": "last_frame"}]}, "last_frame"),
        ("gen4.5", {"number_of_videos": 2}, "number_of_videos"),
        ("gen4_aleph", {"video": "https://x.example/v.mp4"}, "gen4_aleph was retired per runwayml 5.24.0"),
        ("aleph2", {"video": "https://x.example/v.mp4", "aspect_ratio": "16:9"}, "aspect_ratio"),
        ("veo3", {}, "veo3 was retired per runwayml 5.24.0"),
    ],
)
def test_unservable_video_requests_are_skipped(emulator, model, fields, reason):
    response = generate_video(with_mock_fallback(video_config(emulator, model)), prompt="x", retry=FAST, **fields)
    assert summary(response) == [("runway", 1, "skipped", "UnsupportedRequestError"), ("mock", 1, "success", None)]
    assert reason in response.execution_metadata.attempts[0].error_message
    assert runway_requests(emulator) == []


@pytest.mark.parametrize(
    "model, fields, reason",
    [
        ("gen4_image_turbo", {}, "at least 1 reference"),
        ("gen4_image", {"style": "vivid"}, "style"),
        ("gen4_image", {"n": 2}, "n=2"),
        ("gen4_image", {"size": "1000x1000"}, "size"),
    ],
)
def test_unservable_image_requests_are_skipped(emulator, model, fields, reason):
    config = image_config(emulator, model)
    config = config.model_copy(update={"fallback_configs": [ImageGenerationConfig(provider="mock", model="any", mock=MockConfig())]})
    response = generate_image(config, prompt="x", retry=FAST, **fields)
    assert summary(response)[0] == ("runway", 1, "skipped", "UnsupportedRequestError")
    assert reason in response.execution_metadata.attempts[0].error_message
    assert runway_requests(emulator) == []


def test_capabilities_describe_the_models():
    caps = get_provider("runway").capabilities
    assert caps("veo3.1").durations == (4, 6, 8) and caps("veo3.1").resolutions == ("720p", "1080p")
    assert caps("gen4_turbo").image_roles == ("first_frame",) and caps("aleph2").accepts_video_input
    assert (caps("veo3").lifecycle.status, caps("veo3").lifecycle.replacement) == ("retired", "veo3.1")
    assert (caps("gen4_aleph").lifecycle.status, caps("gen4_aleph").lifecycle.replacement) == ("retired", "aleph2")
    assert caps("gen4_image").modalities == frozenset({"image"}) and caps("gen4_image").max_outputs == 1


def _request(**fields):
    from schemas import VideoGenerationRequest

    return VideoGenerationRequest(**fields)


def test_finished_task_answers_carry_the_final_cost(emulator):
    response = generate_video(video_config(emulator, "gen4.5"), prompt="x", duration_seconds=3, retry=FAST)
    assert response.raw_response["status"] == "SUCCEEDED"
    assert response.raw_response["cost"] == {"credits": 30}  # runwayml 5.24.0: terminal tasks report cost
