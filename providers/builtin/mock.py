"""The offline mock provider: real, deterministic media made on the spot.

It implements the same job protocol as the real providers. Its job handle carries
everything needed to poll and fetch (the request, the MockConfig, the outcome and
the submit time), so a job submitted in one process can be followed from another.
Nothing here touches the network or the disk.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any, NamedTuple

from schemas import (
    ImageGenerationRequest,
    JobHandle,
    MockConfig,
    MockOutcome,
    MockPolling,
    STSRequest,
    TTSRequest,
    VideoGenerationRequest,
    utc_now,
)

from providers.core.contract import AnyRequest, GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    GenerationTimeoutError,
    InvalidRequestError,
    MediagenError,
    ProviderConnectionError,
    ProviderHTTPError,
)
from providers.core.keys import digest

DEFAULT_VIDEO_SECONDS = 4
DEFAULT_STS_SECONDS = 3.0
IMAGE_SIZES = {"1:1": (1024, 1024), "16:9": (1280, 720), "9:16": (720, 1280), "4:3": (1024, 768), "21:9": (1680, 720)}
SUCCESS = MockOutcome(weight=1.0)
_DEFAULT_POLLING = MockPolling()
# Errors a real provider gives when the job is submitted; the others surface while polling.
_JOB_ERRORS = {"timeout", "generation_failed"}


class MockProvider(JobProvider):
    """Serves any config whose ``mock`` is enabled, for all four modalities."""

    name = "mock"
    modalities = frozenset({"video", "image", "tts", "sts"})

    def submit(self, ctx: ProviderContext, request: AnyRequest) -> JobHandle:
        mock = ctx.config.mock or MockConfig()
        seed_key = digest({"m": ctx.modality, "p": ctx.config.provider, "model": ctx.model, "r": request.model_dump(mode="json")})
        outcome = choose_outcome(mock, seed_key, ctx.try_number)
        if outcome.error and outcome.error not in _JOB_ERRORS:
            raise mock_error(outcome, ctx)
        return JobHandle(
            provider=ctx.config.provider,
            model=ctx.model,
            modality=ctx.modality,
            job_id=f"mock-{seed_key[:20]}-{ctx.try_number}",
            is_mock=True,
            data={
                "request": request.model_dump_json(),
                "mock": mock.model_dump(mode="json"),
                "outcome": outcome.model_dump(mode="json"),
                "seed": int(seed_key[:8], 16),
            },
        )

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        mock = MockConfig.model_validate(job.data["mock"])
        elapsed = (utc_now() - job.submitted_at).total_seconds()
        answer = simulated_state(mock, elapsed, job.polls)
        raw = _poll_payload(mock, job, answer)
        if answer.state == "completed":
            outcome = MockOutcome.model_validate(job.data["outcome"])
            if outcome.error:
                return JobStatus("failed", answer.progress, raw, failure=mock_error(outcome, ctx))
        if answer.state == "failed":
            failure = GenerationFailedError("mock job failed (its status_sequence reached 'failed')")
            return JobStatus("failed", answer.progress, raw, failure=failure)
        return JobStatus(answer.state, answer.progress, raw, poll_after=answer.wait)  # type: ignore[arg-type]

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        seed = int(job.data["seed"])
        raw = {"mock": True, "job_id": job.job_id, "seed": seed}
        fixture = MockOutcome.model_validate(job.data["outcome"]).output_video
        if fixture is not None and job.modality == "video":
            output = _fixture_output(fixture)
        elif job.modality == "image":
            output = _image_output(job.data["request"], seed, render_text=job.data["mock"].get("render_text", True))
        else:
            maker = {"video": _video_output, "tts": _tts_output, "sts": _sts_output}[job.modality]
            output = maker(job.data["request"], seed)
        output.raw_response = {**raw, **output.raw_response}
        output.request_id = job.job_id
        output.is_mock = True
        return output


def choose_outcome(mock: MockConfig, seed_key: str, try_number: int) -> MockOutcome:
    """The weighted outcome for this request and try: reproducible, never random."""
    if not mock.responses:
        return SUCCESS
    total = sum(o.weight for o in mock.responses)
    if total <= 0:
        return SUCCESS
    point = _unit_interval(f"{seed_key}:{try_number}") * total
    for outcome in mock.responses:
        point -= outcome.weight
        if point < 0:
            return outcome
    return mock.responses[-1]


def _unit_interval(text: str) -> float:
    (value,) = struct.unpack(">Q", hashlib.sha256(text.encode()).digest()[:8])
    return value / 2**64


class SimulatedPoll(NamedTuple):
    """One simulated poll's answer; ``index`` is the state's place in the sequence
    (None for a plain ``MockConfig()``, which has no sequence)."""

    state: str
    progress: int
    wait: float
    index: int | None


def simulated_state(mock: MockConfig, elapsed: float, polls: int) -> SimulatedPoll:
    """The answer to the poll made after ``polls`` earlier polls, ``elapsed`` seconds after submit.

    Each poll advances exactly one state of the status sequence, so every state is
    reported in order however late the polls land. ``job_duration_seconds`` is a lower
    bound: the final state waits on the penultimate one until that much time has passed.
    """
    remaining = max(0.0, mock.job_duration_seconds - elapsed)
    polling = mock.polling
    if polling is None:
        if mock.job_duration_seconds <= 0:
            return SimulatedPoll("completed", 100, 0.0, None)  # MockConfig() alone finishes at the first poll
        polling = _DEFAULT_POLLING
    sequence = polling.status_sequence
    last = len(sequence) - 1
    index = min(polls, last)
    if remaining > 0 and index == last and last > 0:
        index = last - 1
    percentages = polling.progress_percentages or _even_percentages(len(sequence))
    if polling.delay_between_updates > 0:
        wait = polling.delay_between_updates
    else:  # spread the polls still to come over the time still to run
        wait = remaining / max(last - index, 1)
    return SimulatedPoll(sequence[index], percentages[index], wait, index)


def _poll_payload(mock: MockConfig, job: JobHandle, answer: SimulatedPoll) -> dict[str, Any]:
    """The raw answer of one poll: the caller's ``custom_updates`` entry for this state, if any."""
    custom = mock.polling.custom_updates if mock.polling is not None else None
    if custom is not None and answer.index is not None:
        return dict(custom[answer.index])
    return {"status": answer.state, "progress": answer.progress, "job_id": job.job_id}


def _even_percentages(count: int) -> list[int]:
    return [int(100 * i / max(count - 1, 1)) for i in range(count)]


def mock_error(outcome: MockOutcome, ctx: ProviderContext) -> MediagenError:
    """The exception a real provider would cause for an injected error kind."""
    message = outcome.error_message or f"mock {outcome.error.replace('_', ' ')}"  # type: ignore[union-attr]
    common: dict[str, Any] = {"provider": ctx.config.provider, "model": ctx.model}
    kind = outcome.error
    if kind == "rate_limit":
        return ProviderHTTPError(message, status_code=429, retry_after=outcome.retry_after, **common)
    if kind == "server_error":
        return ProviderHTTPError(message, status_code=500, **common)
    if kind in ("timeout", "connection"):
        error = GenerationTimeoutError(message, **common) if kind == "timeout" else ProviderConnectionError(message, **common)
        # The mock knows it made no job: an injected error is a refusal, never a lost answer
        # (lost answers are the provider emulator's to simulate).
        error.request_sent = False  # type: ignore[attr-defined]
        return error
    if kind == "moderation":
        return ContentModerationError(message, **common)
    if kind == "invalid_request":
        return InvalidRequestError(message, **common)
    return GenerationFailedError(message, **common)


def _video_output(data: str, seed: int) -> ProviderOutput:
    from providers.media.formats import resolution_for
    from providers.media.synthesis import make_video

    request = VideoGenerationRequest.model_validate_json(data)
    width, height = resolution_for(request.resolution, request.aspect_ratio)
    seconds = request.duration_seconds or DEFAULT_VIDEO_SECONDS
    media = [
        GeneratedMedia(data=make_video(request.prompt, width, height, seconds, seed=seed + i), content_type="video/mp4")
        for i in range(request.number_of_videos)
    ]
    return ProviderOutput(
        media=media,
        duration=float(seconds),
        resolution=f"{width}x{height}",
        aspect_ratio=request.aspect_ratio or "16:9",
    )


def _fixture_output(fixture: str) -> ProviderOutput:
    """The caller's own video (see ``MockOutcome.output_video``): a URL is returned as a
    URL, inline media as its bytes; nothing is probed, so duration and size stay unknown."""
    from providers.core.http import decode_output_base64

    if fixture.startswith("data:"):
        header, _, payload = fixture.partition(",")
        content_type = header[5:].split(";")[0] or "video/mp4"
        data = decode_output_base64("".join(payload.split()), provider="mock", what="output_video")
        return ProviderOutput(media=[GeneratedMedia(data=data, content_type=content_type)], raw_response={"fixture": True})
    return ProviderOutput(media=[GeneratedMedia(url=fixture, content_type="video/mp4")], raw_response={"fixture": True})


def _image_output(data: str, seed: int, render_text: bool = True) -> ProviderOutput:
    from providers.media.formats import CONTENT_TYPES, parse_size
    from providers.media.synthesis import make_image, make_plain_image

    request = ImageGenerationRequest.model_validate_json(data)
    if request.size and request.size != "auto":
        width, height = parse_size(request.size)
    else:
        width, height = IMAGE_SIZES[request.aspect_ratio or "1:1"]
    image_format = str(request.extra_params.get("output_format", "png")).lower()
    content_type = CONTENT_TYPES.get(image_format, "image/png")

    def made(index: int) -> bytes:
        if not render_text:
            return make_plain_image(width, height, image_format=image_format)
        return make_image(request.prompt, width, height, image_format=image_format, seed=seed + index)

    media = [GeneratedMedia(data=made(i), content_type=content_type) for i in range(request.n or 1)]
    return ProviderOutput(media=media, resolution=f"{width}x{height}")


def _tts_output(data: str, seed: int) -> ProviderOutput:
    from providers.media.synthesis import make_audio

    request = TTSRequest.model_validate_json(data)
    fmt = request.output_format
    clip = make_audio(
        request.text, audio_format=fmt.format, sample_rate=fmt.sample_rate, bitrate_kbps=fmt.bitrate, seed=seed
    )
    return ProviderOutput(media=[GeneratedMedia(data=clip.data, content_type=clip.content_type)], duration=clip.duration_seconds)


def _sts_output(data: str, seed: int) -> ProviderOutput:
    from providers.media.synthesis import make_audio

    request = STSRequest.model_validate_json(data)
    fmt = request.output_format
    clip = make_audio(
        f"voice {request.voice_id}",
        audio_format=fmt.format,
        sample_rate=fmt.sample_rate,
        bitrate_kbps=fmt.bitrate,
        duration_seconds=_input_duration(request.audio),
        seed=seed,
    )
    return ProviderOutput(media=[GeneratedMedia(data=clip.data, content_type=clip.content_type)], duration=clip.duration_seconds)


def _input_duration(audio: Any) -> float:
    """The input clip's length when we hold its bytes; a URL is not fetched (offline)."""
    from providers.media.probe import MediaProbeError, probe_media

    if isinstance(audio, dict):
        payload = audio.get("content", b"")
    elif isinstance(audio, str) and not audio.startswith(("http://", "https://")):
        try:
            payload = base64.b64decode(audio.split(",", 1)[-1], validate=True)
        except ValueError:
            return DEFAULT_STS_SECONDS
    else:
        return DEFAULT_STS_SECONDS
    try:
        return probe_media(payload).duration_seconds or DEFAULT_STS_SECONDS
    except MediaProbeError:
        return DEFAULT_STS_SECONDS
