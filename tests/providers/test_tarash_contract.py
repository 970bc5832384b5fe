"""The behaviour this SDK shares with Tarash's public contract (models, API, orchestrator,
exceptions, mock, logging), written in this project's own words. The deliberate
differences are listed in the README ("Differences from Tarash") and not tested here."""

import base64
import inspect
import logging
from datetime import datetime, timedelta, timezone

import pydantic
import pytest

import providers.errors as errors_module
from providers import (
    RetryPolicy,
    generate_image,
    generate_tts,
    generate_video,
    generate_video_async,
    register_provider,
)
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    GenerationTimeoutError,
    InvalidRequestError,
    MediagenError,
    ProviderConnectionError,
    ProviderHTTPError,
)
from providers.builtin.mock import MockProvider, simulated_state
from providers.registry import UnknownProviderError, get_provider
from schemas import (
    AttemptMetadata,
    AudioGenerationConfig,
    ExecutionMetadata,
    ImageGenerationConfig,
    MockConfig,
    MockOutcome,
    MockPolling,
    TTSRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)

NO_RETRY = RetryPolicy(max_retries=0)
FAST = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.001)
CANARY = "sk-canary-7f3a9c1e5b2d8f4a6c0e"
FIXTURE_URL = "https://fixtures.example/clip.mp4"


def mocked(provider: str = "fal", **mock) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider=provider, model="m", mock=MockConfig(**mock))


# -- models ---------------------------------------------------------------------------------------


def test_config_defaults_match_the_contract():
    video = VideoGenerationConfig(provider="fal", model="fal-ai/veo3")
    assert (video.timeout, video.max_poll_attempts, video.poll_interval) == (600, 120, 5)
    assert video.api_key is None and video.base_url is None and video.api_version is None
    assert video.mock is None and video.fallback_configs is None and video.provider_config == {}
    image = ImageGenerationConfig(provider="openai", model="dall-e-3")
    assert (image.timeout, image.max_poll_attempts, image.poll_interval) == (120, 60, 2)
    assert AudioGenerationConfig(provider="elevenlabs", model="m").timeout == 240


def test_configs_are_immutable_and_derived_with_model_copy():
    config = VideoGenerationConfig(provider="fal", model="a")
    with pytest.raises(pydantic.ValidationError):
        config.model = "b"
    derived = config.model_copy(update={"model": "b"})
    assert (config.model, derived.model) == ("a", "b")


def test_unknown_request_fields_land_in_extra_params():
    request = VideoGenerationRequest(prompt="x", motion_bucket=7)
    assert request.extra_params == {"motion_bucket": 7}
    assert request.image_list == [] and request.number_of_videos == 1 and request.seed is None


def test_tts_request_defaults_to_mp3_44100_128():
    fmt = TTSRequest(text="hi").output_format
    assert (fmt.format, fmt.sample_rate, fmt.bitrate) == ("mp3", 44100, 128)


def test_attempt_and_chain_elapsed_are_computed():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    attempt = AttemptMetadata(provider="fal", model="m", attempt_number=1, started_at=start,
                              ended_at=start + timedelta(seconds=2.5), status="success")
    running = AttemptMetadata(provider="fal", model="m", attempt_number=2, started_at=start, status="failed")
    assert attempt.elapsed_seconds == 2.5 and running.elapsed_seconds is None
    assert ExecutionMetadata(attempts=[attempt], total_attempts=1).total_elapsed_seconds == 2.5


# -- API --------------------------------------------------------------------------------------------


def test_on_progress_can_be_passed_positionally():
    updates = []
    config = mocked(polling={"status_sequence": ["queued", "processing", "completed"]})
    response = generate_video(config, VideoGenerationRequest(prompt="x", duration_seconds=1), updates.append)
    assert [u.status for u in updates] == ["queued", "processing", "completed"]
    assert updates[-1].result == response


async def test_on_progress_can_be_passed_positionally_to_the_async_api():
    seen = []

    async def on_progress(update):
        seen.append(update.status)

    config = mocked(polling={"status_sequence": ["processing", "completed"]})
    await generate_video_async(config, VideoGenerationRequest(prompt="x", duration_seconds=1), on_progress)
    assert seen == ["processing", "completed"]


def test_on_progress_that_is_not_callable_is_named_in_the_error():
    with pytest.raises(TypeError, match="on_progress must be callable or None, got str"):
        generate_video(mocked(), VideoGenerationRequest(prompt="x"), "print")


class KeywordHandler:
    """A custom handler in the Tarash shape: ``on_progress`` is a keyword with a default."""

    def __init__(self):
        self.received = []

    def generate_video(self, config, request, on_progress=None):
        self.received.append(on_progress)
        if on_progress is not None:
            on_progress(VideoGenerationUpdate(request_id="c-1", status="processing", progress_percent=40))
        return VideoGenerationResponse(request_id="c-1", video="https://custom.example/v.mp4")

    async def generate_video_async(self, config, request, on_progress=None):
        self.received.append(on_progress)
        if on_progress is not None:
            result = on_progress(VideoGenerationUpdate(request_id="c-2", status="processing", progress_percent=60))
            if inspect.isawaitable(result):
                await result
        return VideoGenerationResponse(request_id="c-2", video="https://custom.example/v.mp4")


class PositionalHandler:
    def generate_video(self, config, request, report):
        report(VideoGenerationUpdate(request_id="p-1", status="queued"))
        return VideoGenerationResponse(request_id="p-1", video="https://custom.example/p.mp4")


class NoProgressHandler:
    def generate_video(self, config, request):
        return VideoGenerationResponse(request_id="n-1", video="https://custom.example/n.mp4")


def test_custom_handler_is_given_on_progress_and_its_updates_reach_the_caller():
    handler = KeywordHandler()
    register_provider("contract-keyword", handler)
    updates = []
    response = generate_video(VideoGenerationConfig(provider="contract-keyword", model="m"), prompt="x",
                              on_progress=updates.append)
    assert response.request_id == "c-1" and handler.received[0] is not None
    assert [(u.status, u.progress_percent) for u in updates] == [("processing", 40), ("completed", 100)]


async def test_async_custom_handler_is_given_on_progress_for_plain_and_async_callbacks():
    handler = KeywordHandler()
    register_provider("contract-keyword-async", handler)
    config = VideoGenerationConfig(provider="contract-keyword-async", model="m")
    plain, awaited = [], []

    async def on_progress(update):
        awaited.append(update.progress_percent)

    await generate_video_async(config, prompt="x", on_progress=plain.append)
    await generate_video_async(config, prompt="x", on_progress=on_progress)
    assert [u.progress_percent for u in plain] == [60, 100] and awaited == [60, 100]


def test_custom_handler_taking_progress_positionally_or_not_at_all_both_work():
    register_provider("contract-positional", PositionalHandler())
    register_provider("contract-none", NoProgressHandler())
    updates = []
    generate_video(VideoGenerationConfig(provider="contract-positional", model="m"), prompt="x", on_progress=updates.append)
    assert [u.status for u in updates] == ["queued", "completed"]
    response = generate_video(VideoGenerationConfig(provider="contract-none", model="m"), prompt="x",
                              on_progress=updates.append)
    assert response.request_id == "n-1"


def test_custom_handler_without_a_callback_is_given_none():
    handler = KeywordHandler()
    register_provider("contract-keyword-none", handler)
    generate_video(VideoGenerationConfig(provider="contract-keyword-none", model="m"), prompt="x")
    assert handler.received == [None]


def test_a_failing_callback_in_a_custom_handler_does_not_lose_the_result():
    register_provider("contract-keyword-broken", KeywordHandler())

    def broken(update):
        raise RuntimeError("progress bar crashed")

    response = generate_video(VideoGenerationConfig(provider="contract-keyword-broken", model="m"), prompt="x",
                              on_progress=broken)
    assert response.video == "https://custom.example/v.mp4"


def test_unknown_provider_is_a_mediagen_error_naming_the_provider():
    with pytest.raises(MediagenError) as info:
        generate_video(VideoGenerationConfig(provider="no-such-provider", model="m"), prompt="x")
    assert isinstance(info.value, UnknownProviderError) and isinstance(info.value, ValueError)
    assert info.value.provider == "no-such-provider" and "unknown provider 'no-such-provider'" in str(info.value)


# -- orchestrator -------------------------------------------------------------------------------------


def test_fallback_runs_after_a_failure_and_metadata_tells_the_story():
    config = mocked("a", responses=[{"error": "server_error"}]).model_copy(
        update={"fallback_configs": [mocked("b")]})
    response = generate_video(config, prompt="x", retry=NO_RETRY)
    meta = response.execution_metadata
    assert [(a.provider, a.attempt_number, a.status) for a in meta.attempts] == [("a", 1, "failed"), ("b", 2, "success")]
    assert meta.fallback_triggered and meta.successful_attempt == 2 and meta.configs_in_chain == 2
    assert meta.attempts[0].error_type == "ProviderHTTPError" and meta.attempts[0].is_retryable is True
    assert all(a.started_at.tzinfo == timezone.utc and a.elapsed_seconds >= 0 for a in meta.attempts)


def test_moderation_stops_the_chain():
    config = mocked("a", responses=[{"error": "moderation"}]).model_copy(update={"fallback_configs": [mocked("b")]})
    with pytest.raises(ContentModerationError) as info:
        generate_video(config, prompt="x", retry=NO_RETRY)
    assert [a.provider for a in info.value.execution_metadata.attempts] == ["a"]


def test_a_failed_chain_raises_its_last_error_with_every_attempt():
    config = mocked("a", responses=[{"error": "server_error"}]).model_copy(
        update={"fallback_configs": [mocked("b", responses=[{"error": "connection"}])]})
    with pytest.raises(ProviderConnectionError) as info:
        generate_video(config, prompt="x", retry=NO_RETRY)
    meta = info.value.execution_metadata
    assert meta.total_attempts == 2 and meta.successful_attempt is None and meta.fallback_triggered


# -- exceptions -------------------------------------------------------------------------------------


def test_every_sdk_error_derives_from_mediagen_error():
    classes = [obj for obj in vars(errors_module).values() if inspect.isclass(obj) and issubclass(obj, Exception)]
    assert len(classes) > 8
    assert all(issubclass(cls, MediagenError) for cls in classes), [c for c in classes if not issubclass(c, MediagenError)]
    assert issubclass(UnknownProviderError, MediagenError)


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False), (403, False), (404, False),
                                                   (429, True), (500, True), (502, True), (503, True), (504, True)])
def test_http_errors_are_retryable_exactly_when_transient(status, retryable):
    assert ProviderHTTPError("x", status_code=status, provider="fal").retryable is retryable


def test_error_kinds_know_whether_a_retry_can_help():
    assert ProviderConnectionError("x").retryable and GenerationTimeoutError("x").retryable
    assert not InvalidRequestError("x").retryable and not ContentModerationError("x").retryable


# -- mock -----------------------------------------------------------------------------------------------


def test_mock_returns_a_fixture_video_url_as_given():
    response = generate_video(mocked(responses=[{"output_video": FIXTURE_URL}]), prompt="x", duration_seconds=4)
    assert response.video == FIXTURE_URL and response.is_mock and response.status == "completed"
    assert (response.duration, response.resolution, response.aspect_ratio) == (None, None, None)


@pytest.mark.parametrize("form", ["bytes", "base64", "content"])
def test_mock_returns_fixture_video_bytes(form):
    clip = b"\x00\x00\x00\x18ftypmp42fixture-bytes"
    given = {"bytes": clip, "base64": base64.b64encode(clip).decode(),
             "content": {"content": clip, "content_type": "video/webm"}}[form]
    response = generate_video(mocked(responses=[MockOutcome(output_video=given)]), prompt="x")
    assert response.video["content"] == clip
    assert response.content_type == ("video/webm" if form == "content" else "video/mp4")


def test_mock_config_with_a_fixture_round_trips_through_json():
    mock = MockConfig(responses=[{"output_video": b"\xff\x00binary"}])
    assert MockConfig.model_validate_json(mock.model_dump_json()) == mock


def test_mock_outcome_is_a_success_or_an_error_not_both():
    with pytest.raises(pydantic.ValidationError, match="output_video and error='timeout' are both set"):
        MockOutcome(output_video=FIXTURE_URL, error="timeout")
    with pytest.raises(pydantic.ValidationError, match="output_video must be an http"):
        MockOutcome(output_video="not base64 at all!")


def test_custom_updates_must_match_the_status_sequence():
    with pytest.raises(pydantic.ValidationError, match="custom_updates has 2 values, status_sequence has 3"):
        MockPolling(status_sequence=["queued", "processing", "completed"], custom_updates=[{"a": 1}, {"b": 2}])


def test_custom_updates_are_the_payload_of_each_update():
    updates = []
    polling = {"status_sequence": ["queued", "processing", "completed"],
               "custom_updates": [{"position": 5}, {"logs": ["frame 1", "frame 2"]}, {"final": True}]}
    generate_video(mocked(polling=polling), prompt="x", duration_seconds=1, on_progress=updates.append)
    assert [u.update for u in updates[:2]] == [{"position": 5}, {"logs": ["frame 1", "frame 2"]}]


def _late_job(mock: MockConfig, seconds_ago: float):
    """A submitted mock job whose polls all land ``seconds_ago`` after its submit."""
    provider: MockProvider = get_provider("mock")
    ctx = provider.context(VideoGenerationConfig(provider="fal", model="m", mock=mock), "video")
    job = provider.submit(ctx, VideoGenerationRequest(prompt="late polls"))
    return provider, ctx, job.model_copy(update={"submitted_at": job.submitted_at - timedelta(seconds=seconds_ago)})


def test_mock_progress_advances_one_state_per_poll_however_late_the_polls():
    sequence = ["queued", "processing", "processing", "completed"]
    mock = MockConfig(polling={"status_sequence": sequence, "delay_between_updates": 0.5,
                               "progress_percentages": [0, 30, 70, 100]})
    provider, ctx, job = _late_job(mock, seconds_ago=3600)  # far later than every delay
    seen = []
    for _ in sequence:
        status = provider.poll(ctx, job)
        seen.append((status.state, status.progress_percent))
        job = job.polled()
    assert seen == [("queued", 0), ("processing", 30), ("processing", 70), ("completed", 100)]


def test_job_duration_is_a_lower_bound_that_holds_the_last_state_back():
    mock = MockConfig(job_duration_seconds=3600, polling={"status_sequence": ["queued", "processing", "completed"]})
    assert [simulated_state(mock, elapsed=1.0, polls=n).state for n in range(6)] == [
        "queued", "processing", "processing", "processing", "processing", "processing"]
    assert simulated_state(mock, elapsed=3600.0, polls=5).state == "completed"
    assert simulated_state(mock, elapsed=3600.0, polls=0).state == "queued"  # states are never skipped


def test_mock_without_polling_finishes_at_the_first_poll():
    assert simulated_state(MockConfig(), elapsed=0.0, polls=0).state == "completed"


# -- logging ----------------------------------------------------------------------------------------------


def _chain_with_a_retry_and_a_fallback() -> VideoGenerationConfig:
    failing = VideoGenerationConfig(
        provider="fal", model="first", api_key=CANARY,
        mock=MockConfig(responses=[{"error": "server_error", "error_message": f"upstream rejected key {CANARY}"}]),
    )
    return failing.model_copy(update={"fallback_configs": [
        VideoGenerationConfig(provider="xai", model="second", api_key=CANARY, mock=MockConfig())]})


def test_attempts_retries_and_fallbacks_are_logged_without_keys(caplog):
    caplog.set_level(logging.DEBUG, logger="providers")
    response = generate_video(_chain_with_a_retry_and_a_fallback(), prompt="x", duration_seconds=1, retry=FAST)
    records = [r for r in caplog.records if r.name == "providers.core.orchestrator"]
    ends = [r.mediagen for r in records if r.getMessage().startswith("attempt end")]
    assert [(e["provider"], e["model"], e["attempt"], e["try_number"], e["status"], e["error_type"]) for e in ends] == [
        ("fal", "first", 1, 1, "failed", "ProviderHTTPError"),
        ("fal", "first", 1, 2, "failed", "ProviderHTTPError"),
        ("xai", "second", 2, 1, "success", None),
    ]
    assert all(e["elapsed_seconds"] >= 0 for e in ends)
    starts = [r for r in records if r.getMessage().startswith("attempt start")]
    assert len(starts) == 3 and all(r.levelno == logging.DEBUG for r in starts)
    assert any(r.getMessage().startswith("retrying fal/first") and r.levelno == logging.INFO for r in records)
    assert any(r.getMessage().startswith("falling back to xai/second") and r.levelno == logging.INFO for r in records)
    assert response.execution_metadata.successful_attempt == 3
    for record in caplog.records:
        assert CANARY not in record.getMessage() and CANARY not in repr(vars(record)), record.getMessage()


def test_custom_handler_errors_are_logged_without_keys(caplog):
    class Leaky:
        def generate_video(self, config, request):
            raise GenerationFailedError(f"handler saw {config.api_key}")

    register_provider("contract-leaky", Leaky())
    caplog.set_level(logging.DEBUG, logger="providers")
    with pytest.raises(GenerationFailedError):
        generate_video(VideoGenerationConfig(provider="contract-leaky", model="m", api_key=CANARY), prompt="x",
                       retry=NO_RETRY)
    assert any("GenerationFailedError" in r.getMessage() for r in caplog.records)
    assert all(CANARY not in r.getMessage() and CANARY not in repr(vars(r)) for r in caplog.records)


def test_generation_of_other_modalities_logs_its_attempts(caplog):
    caplog.set_level(logging.INFO, logger="providers.core.orchestrator")
    generate_image(ImageGenerationConfig(provider="fal", model="m", mock=MockConfig()), prompt="x")
    generate_tts(AudioGenerationConfig(provider="cartesia", model="m", mock=MockConfig()), text="hello", voice_id="v")
    assert [r.mediagen["status"] for r in caplog.records if hasattr(r, "mediagen")] == ["success", "success"]
