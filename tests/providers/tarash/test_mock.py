"""Tarash's contract for its mock (``MockConfig``: weighted outcomes, fixture media,
simulated polling with ``custom_updates``), restated in this project's own words: a mock
returns the caller's fixture video (URL, base64, bytes or content), reports one status
update per poll with the caller's payloads, and fails as a real provider would. Where the
mock deliberately differs (plain-data outcomes, hashed draws, no downloads) the README
says so in "Differences from Tarash"."""

import base64
from datetime import timedelta

import pydantic
import pytest

from providers import generate_video, generate_video_async
from providers.builtin.mock import MockProvider, simulated_state
from providers.errors import GenerationFailedError, MediagenError, ProviderHTTPError
from providers.registry import get_provider
from schemas import MockConfig, MockOutcome, MockPolling, VideoGenerationConfig, VideoGenerationRequest
from tests.providers.tarash.contract import FIXTURE_URL, NO_RETRY, STEPS, mocked

CLIP = b"\x00\x00\x00\x18ftypmp42fixture-bytes"


# -- outcomes and fixture media ---------------------------------------------------------------------


def test_a_plain_mock_succeeds_with_media_that_match_the_request():
    response = generate_video(mocked(), prompt="x", aspect_ratio="16:9", resolution="720p", duration_seconds=4)
    assert (response.status, response.is_mock, response.content_type) == ("completed", True, "video/mp4")
    assert (response.duration, response.aspect_ratio) == (4.0, "16:9")
    assert response.video["content"][4:8] == b"ftyp"  # a real MP4, made on the spot


def test_mock_returns_a_fixture_video_url_as_given():
    response = generate_video(mocked(responses=[{"output_video": FIXTURE_URL}]), prompt="x", duration_seconds=4)
    assert response.video == FIXTURE_URL and response.is_mock and response.status == "completed"
    assert (response.duration, response.resolution, response.aspect_ratio) == (None, None, None)


@pytest.mark.parametrize(("given", "content_type"), [
    (CLIP, "video/mp4"),
    (base64.b64encode(CLIP).decode(), "video/mp4"),
    (f"data:video/webm;base64,{base64.b64encode(CLIP).decode()}", "video/webm"),
    ({"content": CLIP, "content_type": "video/webm"}, "video/webm"),
], ids=["bytes", "base64", "data-url", "content"])
async def test_mock_returns_fixture_video_bytes_sync_and_async(given, content_type):
    config = mocked(responses=[MockOutcome(output_video=given)])
    for response in (generate_video(config, prompt="x"), await generate_video_async(config, prompt="x")):
        assert response.video["content"] == CLIP and response.content_type == content_type


def test_mock_config_with_a_fixture_round_trips_through_json():
    mock = MockConfig(responses=[{"output_video": b"\xff\x00binary"}])
    assert MockConfig.model_validate_json(mock.model_dump_json()) == mock


def test_mock_outcome_is_a_success_or_an_error_not_both():
    with pytest.raises(pydantic.ValidationError, match="output_video and error='timeout' are both set"):
        MockOutcome(output_video=FIXTURE_URL, error="timeout")
    with pytest.raises(pydantic.ValidationError, match="output_video must be an http"):
        MockOutcome(output_video="not base64 at all!")
    with pytest.raises(pydantic.ValidationError, match="weight"):
        MockOutcome(weight=-1)


def test_an_injected_error_is_raised_as_the_provider_would_raise_it():
    config = mocked(responses=[{"error": "rate_limit", "error_message": "slow down", "retry_after": 60}])
    with pytest.raises(ProviderHTTPError, match="slow down") as info:
        generate_video(config, prompt="x", retry=NO_RETRY)
    assert (info.value.status_code, info.value.retry_after, info.value.retryable) == (429, 60, True)


def test_weights_spread_outcomes_over_requests():
    config = mocked(responses=[{"weight": 1}, {"weight": 1, "error": "server_error"}])
    outcomes = set()
    for n in range(40):
        try:
            generate_video(config, prompt=f"prompt {n}", retry=NO_RETRY)
            outcomes.add("success")
        except ProviderHTTPError:
            outcomes.add("server_error")
    assert outcomes == {"success", "server_error"}


# -- polling and progress -------------------------------------------------------------------------------


def test_polling_reports_each_state_with_its_percentage_and_the_result_last():
    updates = []
    polling = {"status_sequence": STEPS, "progress_percentages": [0, 50, 100]}
    response = generate_video(mocked(polling=polling), prompt="x", duration_seconds=1, on_progress=updates.append)
    assert [(u.status, u.progress_percent) for u in updates] == [("queued", 0), ("processing", 50), ("completed", 100)]
    assert updates[-1].result == response and response.status == "completed"


def test_a_failing_job_reports_its_states_then_a_failed_update_with_the_error():
    updates = []
    config = mocked(responses=[{"error": "generation_failed", "error_message": "render crashed"}],
                    polling={"status_sequence": STEPS})
    with pytest.raises(GenerationFailedError, match="render crashed"):
        generate_video(config, prompt="x", on_progress=updates.append, retry=NO_RETRY)
    assert [u.status for u in updates] == ["queued", "processing", "failed"]
    assert "render crashed" in updates[-1].error and updates[-1].result is None


def test_custom_updates_must_match_the_status_sequence():
    with pytest.raises(pydantic.ValidationError, match="custom_updates has 2 values, status_sequence has 3"):
        MockPolling(status_sequence=STEPS, custom_updates=[{"a": 1}, {"b": 2}])
    with pytest.raises(pydantic.ValidationError, match="progress_percentages has 2 values, status_sequence has 3"):
        MockPolling(status_sequence=STEPS, progress_percentages=[0, 100])


CUSTOM = {"status_sequence": STEPS,
          "custom_updates": [{"position": 5}, {"logs": ["frame 1", "frame 2"]}, {"final": True}]}


async def test_custom_updates_are_the_payload_of_each_update_sync_and_async():
    plain, awaited = [], []

    async def on_progress(update):
        awaited.append(update.update)

    generate_video(mocked(polling=CUSTOM), prompt="x", duration_seconds=1, on_progress=plain.append)
    await generate_video_async(mocked(polling=CUSTOM), prompt="x", duration_seconds=1, on_progress=on_progress)
    assert [u.update for u in plain[:2]] == awaited[:2] == [{"position": 5}, {"logs": ["frame 1", "frame 2"]}]


def test_the_last_custom_update_is_the_payload_of_the_completed_update():
    updates = []
    generate_video(mocked(polling=CUSTOM), prompt="x", duration_seconds=1, on_progress=updates.append)
    assert updates[-1].status == "completed" and updates[-1].update == {"final": True}


def _late_job(mock: MockConfig, seconds_ago: float):
    """A submitted mock job whose polls all land ``seconds_ago`` after its submit."""
    provider: MockProvider = get_provider("mock")
    ctx = provider.context(VideoGenerationConfig(provider="fal", model="m", mock=mock), "video")
    job = provider.submit(ctx, VideoGenerationRequest(prompt="late polls"))
    return provider, ctx, job.model_copy(update={"submitted_at": job.submitted_at - timedelta(seconds=seconds_ago)})


@pytest.mark.parametrize("seconds_ago", [0.0, 3600.0], ids=["prompt-polls", "late-polls"])
def test_mock_progress_advances_one_state_per_poll_whatever_the_timing(seconds_ago):
    sequence = ["queued", "processing", "processing", "completed"]
    mock = MockConfig(polling={"status_sequence": sequence, "delay_between_updates": 0.5,
                               "progress_percentages": [0, 30, 70, 100]})
    provider, ctx, job = _late_job(mock, seconds_ago)
    seen = []
    for _ in sequence:
        status = provider.poll(ctx, job)
        seen.append((status.state, status.progress_percent, status.poll_after))
        job = job.polled()
    assert [s[:2] for s in seen] == [("queued", 0), ("processing", 30), ("processing", 70), ("completed", 100)]
    assert [s[2] for s in seen[:-1]] == [0.5, 0.5, 0.5]  # the wait the mock asks for, never a sleep of its own


def test_job_duration_is_a_lower_bound_that_holds_the_last_state_back():
    mock = MockConfig(job_duration_seconds=3600, polling={"status_sequence": STEPS})
    assert [simulated_state(mock, elapsed=1.0, polls=n).state for n in range(6)] == [
        "queued", "processing", "processing", "processing", "processing", "processing"]
    assert simulated_state(mock, elapsed=3600.0, polls=5).state == "completed"
    assert simulated_state(mock, elapsed=3600.0, polls=0).state == "queued"  # states are never skipped


def test_mock_without_polling_finishes_at_the_first_poll():
    assert simulated_state(MockConfig(), elapsed=0.0, polls=0).state == "completed"


def test_a_disabled_mock_sends_the_config_to_its_real_provider(monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    config = VideoGenerationConfig(provider="fal", model="fal-ai/veo3", mock=MockConfig(enabled=False))
    with pytest.raises(MediagenError, match="no API key for fal"):  # the real fal, stopped before any HTTP
        generate_video(config, prompt="x", retry=NO_RETRY)
