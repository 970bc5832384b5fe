"""The fallback orchestrator: chain order, retries, skips, stops, metadata, timeouts."""

import asyncio
import threading
import time
from datetime import timezone

import pytest

from providers import RetryPolicy, generate_image, generate_video, generate_video_async, register_provider
from providers.errors import (
    ContentModerationError,
    GenerationTimeoutError,
    InvalidRequestError,
    MediagenError,
    ProviderHTTPError,
    UnsupportedRequestError,
)
from providers.core.contract import GeneratedMedia, JobStatus, ProviderOutput
from providers.core.base import JobProvider
from providers.core.orchestrator import flatten_chain
from providers.registry import UnknownProviderError
from schemas import ImageGenerationConfig, JobHandle, MockConfig, VideoGenerationConfig, VideoGenerationResponse

FAST = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.01)


def mocked(provider: str, model: str = "m", *, error: str | None = None, fallbacks=None, **mock) -> VideoGenerationConfig:
    responses = [{"weight": 1, "error": error}] if error else []
    return VideoGenerationConfig(
        provider=provider, model=model, mock=MockConfig(responses=responses, **mock), fallback_configs=fallbacks
    )


def summary(metadata):
    return [(a.provider, a.attempt_number, a.try_number, a.status, a.error_type) for a in metadata.attempts]


def test_chain_is_config_then_fallbacks_depth_first():
    chain = mocked("a", fallbacks=[mocked("b", fallbacks=[mocked("c")]), mocked("d")])
    assert [c.provider for c in flatten_chain(chain)] == ["a", "b", "c", "d"]


def test_first_success_wins_and_metadata_says_so():
    response = generate_video(mocked("a", fallbacks=[mocked("b")]), prompt="x", duration_seconds=1, retry=FAST)
    meta = response.execution_metadata
    assert summary(meta) == [("a", 1, 1, "success", None)]
    assert meta.successful_attempt == 1 and meta.total_attempts == 1 and meta.configs_in_chain == 2
    assert meta.fallback_triggered is False and response.is_mock
    attempt = meta.attempts[0]
    assert attempt.started_at.tzinfo == timezone.utc and attempt.elapsed_seconds >= 0 and attempt.request_id


def test_transient_errors_retry_same_config_then_fall_back():
    chain = mocked("a", error="server_error", fallbacks=[mocked("b", error="rate_limit", fallbacks=[mocked("c")])])
    response = generate_video(chain, prompt="x", duration_seconds=1, retry=FAST)
    meta = response.execution_metadata
    assert summary(meta) == [
        ("a", 1, 1, "failed", "ProviderHTTPError"),
        ("a", 1, 2, "failed", "ProviderHTTPError"),
        ("a", 1, 3, "failed", "ProviderHTTPError"),
        ("b", 2, 1, "failed", "ProviderHTTPError"),
        ("b", 2, 2, "failed", "ProviderHTTPError"),
        ("b", 2, 3, "failed", "ProviderHTTPError"),
        ("c", 3, 1, "success", None),
    ]
    assert meta.fallback_triggered and meta.successful_attempt == 7 and meta.total_attempts == 7
    assert all(a.is_retryable for a in meta.attempts[:-1])


@pytest.mark.parametrize("kind", ["connection", "timeout", "rate_limit", "server_error"])
def test_each_transient_kind_is_retried(kind):
    with pytest.raises(MediagenError) as info:
        generate_video(mocked("a", error=kind), prompt="x", retry=RetryPolicy(max_retries=1, base_delay=0.001))
    assert [a.try_number for a in info.value.execution_metadata.attempts] == [1, 2]


def test_retry_after_is_honoured():
    config = mocked("a", error="rate_limit", fallbacks=[mocked("b")])
    config = config.model_copy(update={"mock": MockConfig(responses=[{"error": "rate_limit", "retry_after": 0.3}])})
    started = time.monotonic()
    generate_video(config, prompt="x", retry=RetryPolicy(max_retries=1, base_delay=0.001))
    assert time.monotonic() - started >= 0.3


def test_backoff_is_capped_exponential_with_jitter():
    policy = RetryPolicy(base_delay=1, max_delay=5, jitter=0.5)
    delays = [policy.delay(n) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 2 <= delays[2] <= 4
    assert all(d <= 5 for d in delays)
    assert policy.delay(1, retry_after=9) == 9 and RetryPolicy(max_retry_after=3).delay(1, retry_after=9) == 3


@pytest.mark.parametrize("kind, error_type", [("moderation", ContentModerationError), ("invalid_request", InvalidRequestError)])
def test_moderation_and_invalid_input_stop_the_chain(kind, error_type):
    with pytest.raises(error_type) as info:
        generate_video(mocked("a", error=kind, fallbacks=[mocked("b")]), prompt="x", retry=FAST)
    assert summary(info.value.execution_metadata) == [("a", 1, 1, "failed", error_type.__name__)]


def test_generation_failed_moves_on_without_retry():
    response = generate_video(mocked("a", error="generation_failed", fallbacks=[mocked("b")]), prompt="x", retry=FAST)
    assert summary(response.execution_metadata) == [("a", 1, 1, "failed", "GenerationFailedError"), ("b", 2, 1, "success", None)]


def test_whole_chain_failure_carries_every_attempt():
    chain = mocked("a", error="server_error", fallbacks=[mocked("b", error="generation_failed")])
    with pytest.raises(MediagenError) as info:
        generate_video(chain, prompt="x", retry=RetryPolicy(max_retries=0))
    error = info.value
    assert type(error).__name__ == "GenerationFailedError" and error.provider == "b"
    assert [a.provider for a in error.execution_metadata.attempts] == ["a", "b"]
    assert error.execution_metadata.successful_attempt is None and error.execution_metadata.fallback_triggered


class VideoOnly:
    """A custom provider implementing just part of ProviderHandler."""

    def __init__(self):
        self.calls = []

    def generate_video(self, config, request, on_progress=None):
        self.calls.append((config.model, request.prompt))
        return VideoGenerationResponse(request_id="custom", video="https://example.invalid/v.mp4", raw_response={"ok": 1})

    def generate_image(self, config, request, on_progress=None):
        raise NotImplementedError("video only")


def test_custom_provider_registered_at_runtime_serves_the_chain():
    handler = VideoOnly()
    register_provider("acme", handler)
    config = VideoGenerationConfig(provider="acme", model="acme-1")
    response = generate_video(config, prompt="a custom fox")
    assert handler.calls == [("acme-1", "a custom fox")]
    assert response.video.endswith("v.mp4") and summary(response.execution_metadata) == [("acme", 1, 1, "success", None)]


def test_modality_a_provider_lacks_is_skipped():
    register_provider("acme", VideoOnly())
    chain = ImageGenerationConfig(
        provider="acme", model="acme-1", fallback_configs=[ImageGenerationConfig(provider="b", model="m", mock=MockConfig())]
    )
    response = generate_image(chain, prompt="x")
    assert [(a.provider, a.status, a.error_type) for a in response.execution_metadata.attempts] == [
        ("acme", "skipped", "UnsupportedRequestError"),
        ("b", "success", None),
    ]


def test_chain_of_only_skips_explains_why():
    register_provider("acme", VideoOnly())
    with pytest.raises(UnsupportedRequestError, match="no config in the chain can serve") as info:
        generate_image(ImageGenerationConfig(provider="acme", model="m"), prompt="x")
    assert info.value.execution_metadata.attempts[0].status == "skipped"


def test_unknown_provider_lists_known_ones():
    with pytest.raises(UnknownProviderError, match="known providers: .*fal.*mock"):
        generate_video(VideoGenerationConfig(provider="nope", model="m"), prompt="x")


class Sleepy:
    """A handler that never finishes on its own: only the deadline can end its attempt
    (were it not enforced, the handler's own error would show instead of a timeout)."""

    def __init__(self):
        self.release = threading.Event()

    def generate_video(self, config, request, on_progress=None):
        self.release.wait(60)
        raise AssertionError("should have been abandoned")

    async def generate_video_async(self, config, request, on_progress=None):
        await asyncio.Event().wait()
        raise AssertionError("should have been abandoned")


def test_timeout_is_a_real_deadline_for_custom_handlers():
    sleepy = Sleepy()
    register_provider("sleepy", sleepy)
    config = VideoGenerationConfig(provider="sleepy", model="m", timeout=1, fallback_configs=[mocked("b")])
    try:
        response = generate_video(config, prompt="x", retry=RetryPolicy(max_retries=0))
    finally:
        sleepy.release.set()  # let the abandoned worker thread end
    assert summary(response.execution_metadata)[0] == ("sleepy", 1, 1, "failed", "GenerationTimeoutError")


async def test_timeout_is_a_real_deadline_async():
    register_provider("sleepy", Sleepy())
    config = VideoGenerationConfig(provider="sleepy", model="m", timeout=1)
    with pytest.raises(GenerationTimeoutError, match="did not finish within 1s"):
        await generate_video_async(config, prompt="x", retry=RetryPolicy(max_retries=0))


def test_timeout_bounds_a_slow_polled_job():
    # The mock job needs 30 s; only the 1 s deadline can end the attempt with this error.
    config = mocked("a", job_duration_seconds=30).model_copy(update={"timeout": 1, "poll_interval": 0})
    with pytest.raises(GenerationTimeoutError, match="timeout=1s"):
        generate_video(config, prompt="x", retry=RetryPolicy(max_retries=0))


def test_max_poll_attempts_bounds_polling():
    config = mocked("a", polling={"status_sequence": ["queued"] * 10 + ["completed"]})
    config = config.model_copy(update={"max_poll_attempts": 3})
    with pytest.raises(GenerationTimeoutError, match="max_poll_attempts=3"):
        generate_video(config, prompt="x", retry=RetryPolicy(max_retries=0))


class Crashing:
    def generate_video(self, config, request, on_progress=None):
        raise KeyError("video")


def test_unexpected_exceptions_become_failed_attempts_not_crashes():
    register_provider("crashing", Crashing())
    response = generate_video(VideoGenerationConfig(provider="crashing", model="m", fallback_configs=[mocked("b")]), prompt="x")
    first = response.execution_metadata.attempts[0]
    assert first.status == "failed" and first.error_type == "GenerationFailedError" and "KeyError" in first.error_message


def test_errors_from_a_chain_are_provider_http_errors_with_status():
    with pytest.raises(ProviderHTTPError) as info:
        generate_video(mocked("a", error="rate_limit"), prompt="x", retry=RetryPolicy(max_retries=0))
    assert info.value.status_code == 429 and info.value.retryable


class FlakyPolls(JobProvider):
    """A provider whose status endpoint fails transiently a few times."""

    name = "flaky-polls"
    modalities = frozenset({"video"})

    def __init__(self, poll_failures: int, gone: bool = False):
        super().__init__()
        self.poll_failures = poll_failures
        self.gone = gone
        self.submits = 0

    def submit(self, ctx, request):
        self.submits += 1
        return JobHandle(provider=ctx.config.provider, model=ctx.model, modality="video", job_id=f"job-{self.submits}")

    def poll(self, ctx, job):
        if self.gone and job.job_id == "old-job":
            raise ProviderHTTPError("no such job", status_code=404)
        if self.poll_failures:
            self.poll_failures -= 1
            raise ProviderHTTPError("busy", status_code=503, retry_after=0.01)
        return JobStatus("completed")

    def fetch(self, ctx, job):
        return ProviderOutput(media=[GeneratedMedia(url=f"https://cdn.invalid/{job.job_id}.mp4")])


def test_transient_poll_errors_are_retried_on_the_same_job_not_resubmitted():
    provider = FlakyPolls(poll_failures=2)
    register_provider("flaky-polls", provider)
    response = generate_video(VideoGenerationConfig(provider="flaky-polls", model="m", poll_interval=0), prompt="x")
    assert provider.submits == 1 and response.video.endswith("job-1.mp4")
    assert [a.status for a in response.execution_metadata.attempts] == ["success"]


def test_a_resumed_job_that_is_gone_is_submitted_afresh_once():
    from providers.core.driver import drive_sync
    from providers.core.orchestrator import chain_steps
    from schemas import VideoGenerationRequest

    provider = FlakyPolls(poll_failures=0, gone=True)
    register_provider("flaky-polls", provider)
    config = VideoGenerationConfig(provider="flaky-polls", model="m", poll_interval=0)
    old = JobHandle(provider="flaky-polls", model="m", modality="video", job_id="old-job")
    steps = chain_steps("video", config, VideoGenerationRequest(prompt="x"), RetryPolicy(max_retries=0), resume=old)
    response = drive_sync(steps, None)
    assert provider.submits == 1 and response.video.endswith("job-1.mp4")
    assert [(a.try_number, a.status) for a in response.execution_metadata.attempts] == [(1, "failed"), (2, "success")]


def test_a_resumed_running_job_is_followed_without_a_new_submit():
    from providers.core.driver import drive_sync
    from providers.core.orchestrator import chain_steps
    from schemas import VideoGenerationRequest

    provider = FlakyPolls(poll_failures=0)
    register_provider("flaky-polls", provider)
    config = VideoGenerationConfig(provider="flaky-polls", model="m", poll_interval=0)
    old = JobHandle(provider="flaky-polls", model="m", modality="video", job_id="paid-earlier")
    response = drive_sync(chain_steps("video", config, VideoGenerationRequest(prompt="x"), resume=old), None)
    assert provider.submits == 0 and response.video.endswith("paid-earlier.mp4")


def test_credential_like_provider_config_does_not_change_the_request_key():
    from providers.core.keys import request_key
    from schemas import VideoGenerationRequest

    request = VideoGenerationRequest(prompt="x")
    a = VideoGenerationConfig(provider="google", model="veo", provider_config={"gcp_project": "p", "access_token": "t1"})
    b = a.model_copy(update={"provider_config": {"gcp_project": "p", "access_token": "t2"}})
    c = a.model_copy(update={"provider_config": {"gcp_project": "other", "access_token": "t1"}})
    assert request_key("video", request, a) == request_key("video", request, b) != request_key("video", request, c)


# -- follow the paid job, never replace it ----------------------------------------------------


def test_a_poll_storm_longer_than_the_job_retries_follows_the_same_job_on_the_next_try():
    from providers.core.driver import JOB_CALL_RETRIES

    provider = FlakyPolls(poll_failures=JOB_CALL_RETRIES + 3)  # outlasts one try's patience
    register_provider("flaky-polls", provider)
    config = VideoGenerationConfig(provider="flaky-polls", model="m", poll_interval=0)
    response = generate_video(config, prompt="x", retry=RetryPolicy(max_retries=2, base_delay=0.001))
    assert provider.submits == 1 and response.video.endswith("job-1.mp4")
    assert [a.status for a in response.execution_metadata.attempts] == ["failed", "success"]


class Endless(FlakyPolls):
    """Jobs that never finish; records cancels."""

    name = "endless"

    def __init__(self, can_cancel: bool):
        super().__init__(poll_failures=0)
        self.can_cancel = can_cancel
        self.cancelled: list[str] = []

    def poll(self, ctx, job):
        return JobStatus("processing", poll_after=0.01)

    def cancel(self, ctx, job):
        if self.can_cancel:
            self.cancelled.append(job.job_id)
        return self.can_cancel


@pytest.mark.parametrize("can_cancel, says", [(True, "cancelled"), (False, "left running")])
def test_a_job_past_its_deadline_is_cancelled_where_possible_and_never_resubmitted(can_cancel, says):
    provider = Endless(can_cancel)
    register_provider("endless", provider)
    config = VideoGenerationConfig(provider="endless", model="m", timeout=1, poll_interval=0)
    with pytest.raises(GenerationTimeoutError, match=says) as info:
        generate_video(config, prompt="x", retry=RetryPolicy(max_retries=3, base_delay=0.001))
    assert provider.submits == 1 and not info.value.retryable
    assert provider.cancelled == (["job-1"] if can_cancel else [])


def test_a_mocked_config_skips_what_the_real_model_would_skip():
    # fal's Veo 3.1 makes 720p, 1080p and 4k only: the mock must not pretend otherwise.
    config = VideoGenerationConfig(provider="fal", model="fal-ai/veo3.1", mock=MockConfig(),
                                   fallback_configs=[mocked("b")])
    response = generate_video(config, prompt="x", resolution="480p")
    first = response.execution_metadata.attempts[0]
    assert (first.provider, first.status, first.error_type) == ("fal", "skipped", "UnsupportedRequestError")
    assert "480p" in first.error_message


def test_output_identity_follows_what_the_provider_makes_not_the_chain():
    from providers.core.keys import output_key
    from schemas import VideoGenerationRequest

    request = VideoGenerationRequest(prompt="x")
    base = VideoGenerationConfig(provider="fal", model="m")
    same = [
        base.model_copy(update={"timeout": 5, "poll_interval": 1, "max_poll_attempts": 3}),
        base.model_copy(update={"fallback_configs": [mocked("b")]}),
        base.model_copy(update={"api_key": "k-1"}),
        base.model_copy(update={"provider_config": {"wait": 0}}),
    ]
    different = [
        base.model_copy(update={"base_url": "https://proxy.example"}),
        base.model_copy(update={"api_version": "2026-01-01"}),
        base.model_copy(update={"model": "m2"}),
        base.model_copy(update={"provider_config": {"enable_safety_checker": False}}),
        base.model_copy(update={"mock": MockConfig()}),
    ]
    key = output_key("video", request, base)
    assert all(output_key("video", request, c) == key for c in same)
    assert len({key, *(output_key("video", request, c) for c in different)}) == len(different) + 1
