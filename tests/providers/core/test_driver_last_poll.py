"""fetch sees the last poll: the driver hands the poll that said ``completed`` to ``fetch``
(``ctx.last_poll``), so providers whose poll already holds the finished answer ask
nothing more; a job re-attached without a poll in this process asks the provider."""

from __future__ import annotations

from typing import Iterator

import pytest

from providers import RetryPolicy, generate_video
from providers.builtin.google import GoogleProvider
from providers.builtin.replicate import ReplicateProvider
from providers.core.base import JobProvider
from providers.core.contract import GeneratedMedia, JobState, JobStatus, ProviderContext, ProviderOutput
from providers.core.driver import drive_sync, job_steps
from schemas import JobHandle, VideoGenerationConfig, VideoGenerationRequest

NO_RETRY = RetryPolicy(max_retries=0)
VEO = "veo-3.1-generate-001"


class Recording(JobProvider):
    """Two polls (processing, completed); fetch records what it was handed."""

    name = "recording"
    modalities = frozenset({"video"})

    def __init__(self) -> None:
        super().__init__()
        self.states: Iterator[JobState] = iter(["processing", "completed"])
        self.seen: JobStatus | None = None

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle:
        return JobHandle(provider=self.name, model=ctx.model, modality="video", job_id="j1")

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        state = next(self.states)
        result = {"url": "https://x/v.mp4"} if state == "completed" else None
        return JobStatus(state, raw={"state": state}, result=result)

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        self.seen = ctx.last_poll
        answer = ctx.finished_answer()
        assert answer is not None
        return ProviderOutput([GeneratedMedia(url=answer["url"])])


def test_fetch_is_handed_the_poll_that_said_completed():
    provider = Recording()
    config = VideoGenerationConfig(provider="recording", model="m", poll_interval=0)
    ctx = provider.context(config, "video")
    output = drive_sync(job_steps(provider, ctx, VideoGenerationRequest(prompt="x"), "r1"), None)
    assert output.media[0].url == "https://x/v.mp4"
    assert isinstance(provider.seen, JobStatus) and provider.seen.state == "completed"
    assert provider.seen.raw == {"state": "completed"}


def test_a_resumed_job_starts_without_a_last_poll():
    provider = Recording()
    ctx = provider.context(VideoGenerationConfig(provider="recording", model="m", poll_interval=0), "video")
    ctx.last_poll = JobStatus("completed", result={"url": "https://stale/other.mp4"})
    resume = JobHandle(provider="recording", model="m", modality="video", job_id="j1")
    drive_sync(job_steps(provider, ctx, VideoGenerationRequest(prompt="x"), "r1", resume=resume), None)
    assert provider.seen is not None and provider.seen.result == {"url": "https://x/v.mp4"}


def test_the_whole_answer_stays_out_of_reprs_and_progress():
    status = JobStatus("completed", 100, {"done": True}, result={"response": {"video": "A" * 10_000}})
    assert "AAAA" not in repr(status)
    assert JobStatus("processing", result={"x": 1}).result == {"x": 1}
    ctx = Recording().context(VideoGenerationConfig(provider="recording", model="m"), "video")
    ctx.last_poll = JobStatus("processing", result={"x": 1})
    assert ctx.finished_answer() is None  # only a completed poll counts


# -- providers over the emulator: the poll's answer is not asked for twice -----------------------


@pytest.fixture
def emu(emulator):
    emulator.jobs.advance_per_poll()  # queued, processing, completed: one state per poll
    return emulator


def _google_config(emu, vertex: bool) -> VideoGenerationConfig:
    provider_config = {"gcp_project": "my-proj", "location": "us-central1"} if vertex else {}
    return VideoGenerationConfig(provider="google", model=VEO, base_url=emu.url_for("google"), poll_interval=0,
                                 api_key=emu.key_for("google"), provider_config=provider_config)


@pytest.mark.parametrize("vertex, route", [(False, "google.get_operation"), (True, "google.vertex_fetch_operation")])
def test_google_fetches_from_the_finished_poll(emu, vertex, route):
    updates: list = []
    response = generate_video(_google_config(emu, vertex), prompt="a fox", duration_seconds=4,
                              on_progress=updates.append, retry=NO_RETRY)
    polls = [u for u in updates if u.status != "completed"]
    assert response.video is not None
    # One request per poll (the polls before completion, then the one that saw it done): none for fetch.
    assert emu.count(route) == len(polls) + 1


def test_google_re_attached_job_asks_for_the_operation(emu):
    config = _google_config(emu, vertex=False)
    first = GoogleProvider()
    handle = first.submit(first.context(config, "video"), VideoGenerationRequest(prompt="x", duration_seconds=4))
    ctx = first.context(config, "video")
    while first.poll(ctx, handle).state != "completed":
        pass
    before = emu.count("google.get_operation")
    output = GoogleProvider().fetch(GoogleProvider().context(config, "video"), handle)  # no poll in this process
    assert output.media and emu.count("google.get_operation") == before + 1


def _replicate_config(emu) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider="replicate", model="kwaivgi/kling-v2.1", base_url=emu.url_for("replicate"),
                                 api_key=emu.key_for("replicate"), poll_interval=0, max_poll_attempts=50)


def test_replicate_fetches_from_the_finished_poll(emu):
    updates: list = []
    response = generate_video(_replicate_config(emu), prompt="a fox", on_progress=updates.append, retry=NO_RETRY)
    polls = [u for u in updates if u.status != "completed"]
    assert response.video is not None
    assert emu.count("replicate.get") == len(polls) + 1


def test_replicate_re_attached_job_asks_for_the_prediction(emu):
    config = _replicate_config(emu)
    provider = ReplicateProvider()
    handle = provider.submit(provider.context(config, "video"), VideoGenerationRequest(prompt="x"))
    assert isinstance(handle, JobHandle)
    ctx = provider.context(config, "video")
    while provider.poll(ctx, handle).state != "completed":
        pass
    before = emu.count("replicate.get")
    output = provider.fetch(provider.context(config, "video"), handle)
    assert output.media and emu.count("replicate.get") == before + 1
