"""Replicate over the emulator: what is sent, what comes back, and how failures surface."""

import asyncio
import base64

import pytest
import requests

from providers import RetryPolicy, generate_image, generate_image_async, generate_tts, generate_video, generate_video_async
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderAuthError,
    UnsupportedRequestError,
)
from providers.media.probe import probe_media
from providers.registry import get_provider
from providers.builtin.replicate import output_media, throttle_reset_seconds
from schemas import AudioGenerationConfig, ImageGenerationConfig, MockConfig, VideoGenerationConfig, VideoGenerationRequest
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


@pytest.fixture
def emu(emulator):
    # Space polls out a little so a 0.3 s job is seen queued, then processing, then done.
    emulator.inject("replicate.get", Fault.delay(0.04), times=None)
    return emulator


def video_config(emu, model="kwaivgi/kling-v2.1", **kwargs):
    return VideoGenerationConfig(
        provider="replicate", model=model, base_url=emu.url_for("replicate"), api_key=emu.key_for("replicate"),
        poll_interval=0, max_poll_attempts=500, **{"timeout": 30, **kwargs},
    )  # fmt: skip


def image_config(emu, model="black-forest-labs/flux-schnell", **kwargs):
    return ImageGenerationConfig(
        provider="replicate", model=model, base_url=emu.url_for("replicate"), api_key=emu.key_for("replicate"),
        poll_interval=0, max_poll_attempts=500, **{"timeout": 30, **kwargs},
    )  # fmt: skip


def downloaded(url):
    return requests.get(url, timeout=5).content


def png_bytes(emu):
    return emu.image_bytes("first frame", width=64, height=36)


# -- success ---------------------------------------------------------------------------


def test_video_job_is_created_polled_and_fetched_with_progress(emu):
    emu.jobs.advance_per_poll()  # queued, processing, completed: one state per poll, whatever the load
    updates = []
    frame = png_bytes(emu)
    response = generate_video(
        video_config(emu),
        prompt="a red fox in snow",
        duration_seconds=5,
        aspect_ratio="16:9",
        negative_prompt="blurry",
        image_list=[{"image": {"content": frame, "content_type": "image/png"}, "type": "first_frame"}],
        on_progress=updates.append,
        retry=FAST,
    )
    sent = emu.last("replicate.create_model")
    assert sent.path == "/models/kwaivgi/kling-v2.1/predictions"
    assert sent.headers["Authorization"] == f"Bearer {emu.key_for('replicate')}"
    assert "Prefer" not in sent.headers  # video jobs poll instead of holding the request
    assert sent.json["input"] == {
        "prompt": "a red fox in snow",
        "negative_prompt": "blurry",
        "aspect_ratio": "16:9",
        "duration": 5,
        "start_image": "data:image/png;base64," + base64.b64encode(frame).decode(),
    }
    statuses = [u.status for u in updates]
    assert statuses[0] == "queued" and "processing" in statuses and statuses[-1] == "completed"
    assert any(u.status == "processing" and u.progress_percent for u in updates)
    assert isinstance(response.video, str) and response.content_type == "video/mp4"
    info = probe_media(downloaded(response.video))
    assert info.kind == "video" and abs(info.duration_seconds - 5) < 0.2
    prediction_id = emu.jobs.all("replicate")[0].id
    assert response.execution_metadata.attempts[0].request_id == prediction_id
    assert response.raw_response["id"] == prediction_id and response.raw_response["status"] == "succeeded"
    assert emu.count("replicate.get") >= 3


def test_image_with_prefer_wait_returns_without_polling_async(emu):
    response = asyncio.run(
        generate_image_async(
            image_config(emu, timeout=120), prompt="a lighthouse", n=2, aspect_ratio="16:9", seed=7, retry=FAST
        )
    )
    sent = emu.last("replicate.create_model")
    assert sent.headers["Prefer"] == "wait=60"
    assert sent.json["input"] == {"prompt": "a lighthouse", "seed": 7, "aspect_ratio": "16:9", "num_outputs": 2}
    assert emu.count("replicate.get") == 0
    assert len(response.images) == 2 and response.content_type == "image/webp"
    for url in response.images:
        info = probe_media(downloaded(url))
        assert (info.kind, info.width, info.height) == ("image", 320, 180)


def test_a_wait_shorter_than_the_job_falls_back_to_polling(emu):
    emu.inject("replicate.create_model", Fault.slow_job(1.3))
    response = generate_image(image_config(emu, provider_config={"wait": 1}), prompt="slow", retry=FAST)
    assert emu.last("replicate.create_model").headers["Prefer"] == "wait=1"
    assert emu.count("replicate.get") >= 2 and len(response.images) == 1


def test_video_async_through_a_version_id(emu):
    model = f"wan-video/wan-2.2-t2v-fast:{VERSION}"
    emu.state("replicate")["versions"] = {VERSION: "wan-video/wan-2.2-t2v-fast"}
    response = asyncio.run(
        generate_video_async(video_config(emu, model=model), prompt="waves", resolution="720p", seed=3, retry=FAST)
    )
    sent = emu.last("replicate.create_version")
    assert sent.path == "/predictions"
    assert sent.json == {"version": VERSION, "input": {"prompt": "waves", "seed": 3, "resolution": "720p"}}
    assert probe_media(downloaded(response.video)).kind == "video"


def test_deployment_from_provider_config(emu):
    config = image_config(emu, model="black-forest-labs/flux-dev", provider_config={"deployment": "acme/flux-prod"})
    reference = png_bytes(emu)
    response = generate_image(
        config,
        prompt="in the same style",
        image_list=[{"image": base64.b64encode(reference).decode(), "type": "reference"}],
        retry=FAST,
    )
    sent = emu.last("replicate.create_deployment")
    assert sent.path == "/deployments/acme/flux-prod/predictions"
    assert sent.json["input"]["image"].startswith("data:image/png;base64,")
    assert probe_media(downloaded(response.images[0])).kind == "image"


def test_speech_maps_voice_and_format(emu):
    config = AudioGenerationConfig(
        provider="replicate", model="minimax/speech-02-turbo", base_url=emu.url_for("replicate"),
        api_key=emu.key_for("replicate"), poll_interval=0,
    )  # fmt: skip
    response = generate_tts(
        config, text="Hello there", voice_id="Wise_Woman", voice_settings={"emotion": "happy"}, retry=FAST
    )
    assert emu.last("replicate.create_model").json["input"] == {
        "text": "Hello there", "voice_id": "Wise_Woman", "sample_rate": 44100, "bitrate": 128000, "emotion": "happy",
    }  # fmt: skip
    audio = base64.b64decode(response.audio)
    assert response.content_type == "audio/mpeg" and probe_media(audio).kind == "audio"


def test_extra_params_land_in_input_last(emu):
    generate_video(
        video_config(emu, model="minimax/video-01"), prompt="p", enhance_prompt=False, prompt_optimizer=True, retry=FAST
    )
    assert emu.last("replicate.create_model").json["input"] == {"prompt": "p", "prompt_optimizer": True}


def test_cancel_stops_a_running_prediction(emu):
    provider = get_provider("replicate")
    config = video_config(emu, model="google/veo-3.1")
    ctx = provider.context(config, "video")
    job = provider.submit(ctx, VideoGenerationRequest(prompt="long one", duration_seconds=8))
    assert provider.cancel(ctx, job) is True
    assert emu.jobs.get(job.job_id).state() == "cancelled"
    assert emu.last("replicate.cancel").path == f"/predictions/{job.job_id}/cancel"


# -- errors ------------------------------------------------------------------------------


def test_bad_token_is_an_auth_error_without_the_key(emu):
    config = video_config(emu).model_copy(update={"api_key": "r8_wrong_token_value"})
    with pytest.raises(ProviderAuthError) as info:
        generate_video(config, prompt="x", retry=FAST)
    assert "r8_wrong_token_value" not in str(info.value) and "config.api_key" in str(info.value)
    assert emu.count("replicate.create_model") == 1


def test_invalid_input_stops_the_chain(emu):
    body = {"title": "Input validation failed", "detail": "- input.duration: must be one of 5, 10", "status": 422}
    emu.inject("replicate.create_model", Fault.http(422, body))
    config = video_config(emu, fallback_configs=[VideoGenerationConfig(provider="x", model="m", mock=MockConfig())])
    with pytest.raises(InvalidRequestError) as info:
        generate_video(config, prompt="x", retry=FAST)
    assert "must be one of 5, 10" in str(info.value)
    assert [a.provider for a in info.value.execution_metadata.attempts] == ["replicate"]


def test_flagged_prediction_is_moderation_and_stops_the_chain(emu):
    emu.inject("replicate.create_model", Fault.moderation())
    config = video_config(emu, fallback_configs=[VideoGenerationConfig(provider="x", model="m", mock=MockConfig())])
    with pytest.raises(ContentModerationError) as info:
        generate_video(config, prompt="x", retry=FAST)
    assert "E005" in str(info.value)
    attempts = info.value.execution_metadata.attempts
    assert [(a.provider, a.status) for a in attempts] == [("replicate", "failed")]
    assert attempts[0].request_id == emu.jobs.all("replicate")[0].id


def test_failed_prediction_is_generation_failed(emu):
    emu.inject("replicate.create_model", Fault.fail_job("CUDA out of memory"))
    with pytest.raises(GenerationFailedError) as info:
        generate_video(video_config(emu), prompt="x", retry=FAST)
    assert "CUDA out of memory" in str(info.value)


def test_throttled_create_is_retried_then_succeeds(emu):
    body = {"detail": "Request was throttled. Your rate limit resets in ~0s.", "status": 429}
    emu.inject("replicate.create_model", Fault.http(429, body))
    response = generate_image(image_config(emu), prompt="x", retry=FAST)
    assert emu.count("replicate.create_model") == 2
    assert [a.status for a in response.execution_metadata.attempts] == ["failed", "success"]
    assert response.execution_metadata.attempts[0].is_retryable


def test_throttle_text_gives_retry_after_when_no_header():
    assert throttle_reset_seconds("Request was throttled. Your rate limit resets in ~30s.") == 30
    assert throttle_reset_seconds("something else") is None


def test_server_errors_are_retried(emu):
    emu.inject("replicate.create_model", Fault.http(503, {"detail": "Service Unavailable", "status": 503}), times=2)
    response = generate_image(image_config(emu), prompt="x", retry=FAST)
    assert emu.count("replicate.create_model") == 3 and len(response.images) == 1


def test_falls_back_to_the_next_config_when_replicate_keeps_failing(emu):
    emu.inject("replicate.create_model", Fault.http(500, {"detail": "Internal Server Error", "status": 500}), times=None)
    fallback = VideoGenerationConfig(provider="runway", model="gen4.5", mock=MockConfig())
    response = generate_video(video_config(emu, fallback_configs=[fallback]), prompt="x", duration_seconds=5, retry=FAST)
    meta = response.execution_metadata
    assert [(a.provider, a.status) for a in meta.attempts] == [("replicate", "failed")] * 3 + [("runway", "success")]
    assert meta.fallback_triggered and response.is_mock


def test_unsupported_requests_are_skipped_before_any_http(emu):
    fallback = VideoGenerationConfig(provider="runway", model="gen4.5", mock=MockConfig())
    response = generate_video(
        video_config(emu, fallback_configs=[fallback]), prompt="x", duration_seconds=7, retry=FAST
    )
    first = response.execution_metadata.attempts[0]
    assert (first.provider, first.status) == ("replicate", "skipped")
    assert "duration_seconds=7" in first.error_message
    assert len(emu.requests_for(provider="replicate")) == 0


@pytest.mark.parametrize(
    "model, fields, reason",
    [
        ("someone/custom-video", {"image_list": [{"image": "aGk=", "type": "first_frame"}] * 2}, "more than one input image"),
        ("someone/custom-video", {"number_of_videos": 2}, "one video"),
        ("not-a-model-id", {}, "owner/name"),
        ("google/veo-3.1", {"image_list": [{"image": "aGk=", "type": "last_frame"}]}, "needs a first_frame"),
    ],
)
def test_requests_a_model_cannot_take_are_skipped(emu, model, fields, reason):
    with pytest.raises(UnsupportedRequestError) as info:
        generate_video(video_config(emu, model=model), prompt="x", retry=FAST, **fields)
    assert reason in str(info.value)
    assert len(emu.requests_for(provider="replicate")) == 0


# -- output shapes and the emulator's own wire behaviour -----------------------------------


def test_outputs_of_any_shape_become_media():
    assert [m.url for m in output_media("https://r.delivery/a/out.mp4", "video")] == ["https://r.delivery/a/out.mp4"]
    assert [m.url for m in output_media(["https://x/1.png", "https://x/2.png"], "image")] == [
        "https://x/1.png", "https://x/2.png",
    ]  # fmt: skip
    nested = {"video": "https://x/v.mp4", "thumbnail": "https://x/t.jpg", "meta": {"fps": 24}}
    assert [m.url for m in output_media(nested, "video")] == ["https://x/v.mp4"]
    assert [m.url for m in output_media(nested, "image")] == ["https://x/t.jpg"]
    inline = output_media("data:audio/wav;base64," + base64.b64encode(b"RIFF").decode(), "tts")
    assert inline[0].data == b"RIFF" and inline[0].content_type == "audio/wav"
    assert output_media(None, "video") == [] and output_media("not a url", "video") == []


def test_emulator_speaks_replicate_errors(emu):
    base = emu.url_for("replicate")
    unauthenticated = requests.post(f"{base}/models/a/b/predictions", json={"input": {"prompt": "x"}}, timeout=5)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["title"] == "Unauthenticated"
    headers = {"Authorization": f"Bearer {emu.key_for('replicate')}"}
    missing = requests.post(f"{base}/models/a/b/predictions", json={}, headers=headers, timeout=5)
    assert missing.status_code == 422 and {"type", "title", "status", "detail"} <= set(missing.json())
    bad_version = requests.post(f"{base}/predictions", json={"version": "nope", "input": {"prompt": "x"}}, headers=headers, timeout=5)
    assert bad_version.status_code == 422
    unknown = requests.get(f"{base}/predictions/doesnotexist", headers=headers, timeout=5)
    assert unknown.status_code == 404
