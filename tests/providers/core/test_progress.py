"""on_progress: plain and async callables get an update per poll, the result on
completion and the message on failure."""

import pytest

from providers import RetryPolicy, generate_image_async, generate_video, generate_video_async
from providers.errors import GenerationFailedError
from schemas import ImageGenerationConfig, ImageGenerationUpdate, MockConfig, VideoGenerationConfig, VideoGenerationUpdate

POLLING = {"status_sequence": ["queued", "processing", "processing", "completed"], "progress_percentages": [0, 30, 70, 100]}


def config(**mock) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider="mock", model="mock-video", mock=MockConfig(**mock))


def test_plain_callback_sees_every_poll_and_the_result():
    updates = []
    response = generate_video(config(polling=POLLING), prompt="x", duration_seconds=1, resolution="360p", on_progress=updates.append)
    assert [(u.status, u.progress_percent) for u in updates] == [("queued", 0), ("processing", 30), ("processing", 70), ("completed", 100)]
    assert all(isinstance(u, VideoGenerationUpdate) and u.request_id == response.request_id for u in updates)
    assert updates[-1].result == response and all(u.result is None for u in updates[:-1])


async def test_async_callback_in_async_api():
    seen = []

    async def on_progress(update):
        seen.append(update.status)

    await generate_video_async(config(polling=POLLING), prompt="x", duration_seconds=1, resolution="360p", on_progress=on_progress)
    assert seen == ["queued", "processing", "processing", "completed"]


def test_async_callback_in_sync_api():
    seen = []

    async def on_progress(update):
        seen.append(update.status)

    generate_video(config(polling=POLLING), prompt="x", duration_seconds=1, resolution="360p", on_progress=on_progress)
    assert seen == ["queued", "processing", "processing", "completed"]


async def test_image_updates_are_image_updates():
    updates = []
    cfg = ImageGenerationConfig(provider="mock", model="mock-image", mock=MockConfig(polling={"status_sequence": ["processing", "completed"]}))
    await generate_image_async(cfg, prompt="x", on_progress=updates.append)
    assert [type(u) for u in updates] == [ImageGenerationUpdate, ImageGenerationUpdate]


def test_failure_reaches_the_callback_with_its_message():
    updates = []
    cfg = config(polling={"status_sequence": ["queued", "failed"]})
    with pytest.raises(GenerationFailedError):
        generate_video(cfg, prompt="x", on_progress=updates.append, retry=RetryPolicy(max_retries=0))
    assert updates[-1].status == "failed" and "failed" in updates[-1].error and updates[-1].result is None


def test_time_based_updates_follow_the_delay():
    updates = []
    cfg = config(polling={"status_sequence": ["queued", "processing", "completed"], "delay_between_updates": 0.1})
    generate_video(cfg, prompt="x", duration_seconds=1, resolution="360p", on_progress=updates.append)
    assert [u.status for u in updates] == ["queued", "processing", "completed"]


def test_a_failing_callback_does_not_lose_the_result():
    def broken(update):
        raise RuntimeError("progress bar crashed")

    response = generate_video(config(), prompt="x", duration_seconds=1, resolution="360p", on_progress=broken)
    assert response.video["content"]
