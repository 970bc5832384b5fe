"""Tarash's contract for its orchestrator (the fallback chain, its execution metadata and
its log records), restated in this project's own words: configs run depth-first, a
failure moves the chain on unless it must stop it, every attempt is recorded, and each
attempt, retry and fallback is logged without ever showing a key."""

import logging
from datetime import timezone

import pytest

from providers import generate_image, generate_tts, generate_video, generate_video_async, register_provider
from providers.core.orchestrator import flatten_chain
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderHTTPError,
)
from schemas import (
    AudioGenerationConfig,
    ImageGenerationConfig,
    MockConfig,
    VideoGenerationConfig,
    VideoGenerationResponse,
)
from tests.providers.tarash.contract import CANARY_KEY, FAST_RETRY, NO_RETRY, mocked


def with_fallbacks(config: VideoGenerationConfig, *fallbacks: VideoGenerationConfig) -> VideoGenerationConfig:
    return config.model_copy(update={"fallback_configs": list(fallbacks)})


# -- the chain -------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_type", [VideoGenerationConfig, ImageGenerationConfig, AudioGenerationConfig])
def test_fallback_configs_flatten_depth_first(config_type):
    leaf = config_type(provider="fal", model="d")
    middle = config_type(provider="fal", model="b", fallback_configs=[config_type(provider="fal", model="c")])
    root = config_type(provider="fal", model="a", fallback_configs=[middle, leaf])
    assert [c.model for c in flatten_chain(root)] == ["a", "b", "c", "d"]
    assert [c.model for c in flatten_chain(leaf)] == ["d"]


def test_success_at_the_first_attempt_is_recorded_as_such():
    response = generate_video(with_fallbacks(mocked("a"), mocked("b")), prompt="x", retry=NO_RETRY)
    meta = response.execution_metadata
    assert (meta.total_attempts, meta.successful_attempt, meta.fallback_triggered, meta.configs_in_chain) == (1, 1, False, 2)
    # The response's id is the SDK's; the attempt records the provider's own job id.
    assert meta.attempts[0].error_type is None and meta.attempts[0].request_id.startswith("mock-")


def test_fallback_runs_after_a_failure_and_metadata_tells_the_story():
    config = with_fallbacks(mocked("a", responses=[{"error": "server_error"}]), mocked("b"))
    response = generate_video(config, prompt="x", retry=NO_RETRY)
    meta = response.execution_metadata
    assert [(a.provider, a.attempt_number, a.status) for a in meta.attempts] == [("a", 1, "failed"), ("b", 2, "success")]
    assert meta.fallback_triggered and meta.successful_attempt == 2 and meta.configs_in_chain == 2
    assert meta.attempts[0].error_type == "ProviderHTTPError" and meta.attempts[0].is_retryable is True
    assert all(a.started_at.tzinfo == timezone.utc and a.elapsed_seconds >= 0 for a in meta.attempts)


@pytest.mark.parametrize(("kind", "error_type"), [("moderation", ContentModerationError),
                                                  ("invalid_request", InvalidRequestError)])
def test_errors_that_would_fail_anywhere_stop_the_chain(kind, error_type):
    config = with_fallbacks(mocked("a", responses=[{"error": kind}]), mocked("b"))
    with pytest.raises(error_type) as info:
        generate_video(config, prompt="x", retry=NO_RETRY)
    assert [a.provider for a in info.value.execution_metadata.attempts] == ["a"]


def test_a_failed_chain_raises_its_last_error_with_every_attempt():
    config = with_fallbacks(mocked("a", responses=[{"error": "server_error"}]),
                            mocked("b", responses=[{"error": "connection"}]))
    with pytest.raises(ProviderConnectionError) as info:
        generate_video(config, prompt="x", retry=NO_RETRY)
    meta = info.value.execution_metadata
    assert meta.total_attempts == 2 and meta.successful_attempt is None and meta.fallback_triggered
    assert [a.error_type for a in meta.attempts] == ["ProviderHTTPError", "ProviderConnectionError"]


class Failing:
    def __init__(self, error):
        self.error, self.calls = error, 0

    def generate_video(self, config, request):
        self.calls += 1
        raise self.error

    async def generate_video_async(self, config, request):
        return self.generate_video(config, request)


class Succeeding:
    def generate_video(self, config, request):
        return VideoGenerationResponse(request_id="ok-1", video="https://custom.example/ok.mp4")

    async def generate_video_async(self, config, request):
        return self.generate_video(config, request)


async def test_custom_handlers_fall_back_in_sync_and_async_runs():
    failing = Failing(ProviderHTTPError("upstream 500", status_code=500, provider="contract-down"))
    register_provider("contract-down", failing)
    register_provider("contract-up", Succeeding())
    config = with_fallbacks(VideoGenerationConfig(provider="contract-down", model="m"),
                            VideoGenerationConfig(provider="contract-up", model="m"))
    for response in (generate_video(config, prompt="x", retry=NO_RETRY),
                     await generate_video_async(config, prompt="x", retry=NO_RETRY)):
        assert response.request_id == "ok-1" and response.execution_metadata.successful_attempt == 2
    assert failing.calls == 2


def test_a_custom_handler_refusing_the_request_stops_the_chain():
    failing = Failing(InvalidRequestError("prompt too long", provider="contract-strict"))
    register_provider("contract-strict", failing)
    register_provider("contract-spare", Succeeding())
    config = with_fallbacks(VideoGenerationConfig(provider="contract-strict", model="m"),
                            VideoGenerationConfig(provider="contract-spare", model="m"))
    with pytest.raises(InvalidRequestError, match="prompt too long") as info:
        generate_video(config, prompt="x", retry=NO_RETRY)
    assert info.value.execution_metadata.total_attempts == 1


# -- logging -----------------------------------------------------------------------------------------


def _chain_with_a_retry_and_a_fallback() -> VideoGenerationConfig:
    failing = VideoGenerationConfig(
        provider="fal", model="first", api_key=CANARY_KEY,
        mock=MockConfig(responses=[{"error": "server_error", "error_message": f"upstream rejected key {CANARY_KEY}"}]),
    )
    return with_fallbacks(failing, VideoGenerationConfig(provider="xai", model="second", api_key=CANARY_KEY,
                                                         mock=MockConfig()))


def test_attempts_retries_and_fallbacks_are_logged_without_keys(caplog):
    caplog.set_level(logging.DEBUG, logger="providers")
    response = generate_video(_chain_with_a_retry_and_a_fallback(), prompt="x", duration_seconds=1, retry=FAST_RETRY)
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
        assert CANARY_KEY not in record.getMessage() and CANARY_KEY not in repr(vars(record)), record.getMessage()


def test_custom_handler_errors_are_logged_without_keys(caplog):
    class Leaky:
        def generate_video(self, config, request):
            raise GenerationFailedError(f"handler saw {config.api_key}")

    register_provider("contract-leaky", Leaky())
    caplog.set_level(logging.DEBUG, logger="providers")
    with pytest.raises(GenerationFailedError):
        generate_video(VideoGenerationConfig(provider="contract-leaky", model="m", api_key=CANARY_KEY), prompt="x",
                       retry=NO_RETRY)
    assert any("GenerationFailedError" in r.getMessage() for r in caplog.records)
    assert all(CANARY_KEY not in r.getMessage() and CANARY_KEY not in repr(vars(r)) for r in caplog.records)


def test_generation_of_other_modalities_logs_its_attempts(caplog):
    caplog.set_level(logging.INFO, logger="providers.core.orchestrator")
    generate_image(ImageGenerationConfig(provider="fal", model="m", mock=MockConfig()), prompt="x")
    generate_tts(AudioGenerationConfig(provider="cartesia", model="m", mock=MockConfig()), text="hello", voice_id="v")
    assert [r.mediagen["status"] for r in caplog.records if hasattr(r, "mediagen")] == ["success", "success"]
