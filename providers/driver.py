"""The shared driver: one description of "run a job" used by the sync and async APIs.

The logic is written once as generators that *yield steps* (call this blocking
function, sleep this long, report this progress) instead of doing I/O. ``drive_sync``
executes the steps in the calling thread; ``drive_async`` runs blocking calls in a
worker thread and sleeps with asyncio. Retry, deadline and polling rules therefore
cannot drift apart between the two APIs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import random
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Generator, Literal

from schemas import JobHandle, Modality

from .base import AnyConfig, AnyRequest, Deadline, JobProvider, JobStatus, ProgressCallback, ProviderContext, ProviderOutput
from .errors import GenerationFailedError, GenerationTimeoutError, MediagenError
from .responses import build_response, completed_update, failed_update, status_update

log = logging.getLogger(__name__)


CallKind = Literal["submit", "poll", "fetch", "other"]


@dataclass
class Call:
    """Run a blocking function and send its result back into the generator.

    ``kind`` and ``provider`` let a driver apply per-provider limits (submit and poll
    budgets) without knowing anything else about the call.
    """

    fn: Callable[[], Any]
    kind: CallKind = "other"
    provider: str | None = None
    model: str | None = None


@dataclass
class Submitted:
    """A job was accepted by the provider: a driver may record its handle (the ledger)."""

    job: JobHandle


@dataclass
class CallWithTimeout:
    """Call a handler that cannot see our deadline: sync and async variants, bounded by ``timeout``."""

    sync_fn: Callable[[], Any]
    async_fn: Callable[[], Any]
    timeout: float
    description: str


@dataclass
class Sleep:
    seconds: float


@dataclass
class Emit:
    """Report a progress update (already built for the modality) to ``on_progress``."""

    update: Any


Steps = Generator[Any, Any, Any]


def job_steps(
    provider: JobProvider, ctx: ProviderContext, request: AnyRequest, request_id: str, resume: JobHandle | None = None
) -> Steps:
    """Submit a job and follow it to its output; with ``resume``, follow that job instead of paying again."""
    if resume is not None:
        ctx.job = resume
        return (yield from follow_job(provider, ctx, resume, request_id))
    submitted = yield _call(ctx, "submit", partial(_submit, provider, ctx, request))
    if isinstance(submitted, ProviderOutput):
        return submitted
    ctx.job = submitted
    yield Submitted(submitted)
    return (yield from follow_job(provider, ctx, submitted, request_id))


def _submit(provider: JobProvider, ctx: ProviderContext, request: AnyRequest) -> JobHandle | ProviderOutput:
    # The attempt's clock starts now: time queued behind our own submit limits is not the provider's.
    ctx.deadline = Deadline(ctx.config.timeout)
    return provider.submit(ctx, request)


def _call(ctx: ProviderContext, kind: CallKind, fn: Callable[[], Any]) -> Call:
    return Call(fn, kind=kind, provider=ctx.config.provider, model=ctx.model)


def follow_job(provider: JobProvider, ctx: ProviderContext, job: JobHandle, request_id: str) -> Steps:
    """Poll ``job`` until it completes (then fetch) or fails, within deadline and poll budget."""
    wait = 0.0
    while True:
        if wait > 0:
            yield Sleep(min(wait, max(ctx.deadline.remaining(), 0.0)))
        if ctx.deadline.expired() or job.polls >= ctx.config.max_poll_attempts:
            raise _job_timeout(ctx, job)
        status: JobStatus = yield from _job_call(ctx, "poll", partial(provider.poll, ctx, job))
        job = job.polled()
        ctx.job = job
        if status.state == "completed":
            return (yield from _job_call(ctx, "fetch", partial(provider.fetch, ctx, job)))
        if status.state == "failed":
            failure = status.failure or GenerationFailedError("job failed without a reason")
            _annotate(failure, ctx, job)
            raise failure
        yield Emit(status_update(ctx.modality, request_id, status))
        wait = status.poll_after if status.poll_after is not None else float(ctx.config.poll_interval)


JOB_CALL_RETRIES = 5
"""Consecutive transient failures tolerated while polling or fetching one job."""


def _job_call(ctx: ProviderContext, kind: CallKind, fn: Callable[[], Any]) -> Steps:
    """Poll or fetch a job that is already paid for: a transient error (429, 5xx, a dropped
    connection) is retried on the same job, never turned into a new submission."""
    failures = 0
    while True:
        try:
            return (yield _call(ctx, kind, fn))
        except MediagenError as exc:
            failures += 1
            if not exc.retryable or failures > JOB_CALL_RETRIES or ctx.deadline.expired():
                raise
            backoff = min(30.0, 2.0 ** (failures - 1)) * (0.5 + random.random() / 2)
            wait = max(backoff, exc.retry_after or 0.0)
            yield Sleep(min(wait, max(ctx.deadline.remaining(), 0.0)))


def _job_timeout(ctx: ProviderContext, job: JobHandle) -> GenerationTimeoutError:
    if job.polls >= ctx.config.max_poll_attempts:
        reason = f"still running after max_poll_attempts={ctx.config.max_poll_attempts} polls"
    else:
        reason = f"still running after timeout={ctx.config.timeout}s"
    return GenerationTimeoutError(
        f"job {job.job_id} {reason}", provider=ctx.provider.name, model=ctx.model, request_id=job.request_id or job.job_id
    )


def _annotate(error: MediagenError, ctx: ProviderContext, job: JobHandle) -> None:
    error.provider = error.provider or ctx.provider.name
    error.model = error.model or ctx.model
    error.request_id = error.request_id or job.request_id or job.job_id


def provider_attempt_steps(
    provider: JobProvider, ctx: ProviderContext, request: AnyRequest, request_id: str, resume: JobHandle | None = None
) -> Steps:
    """One attempt on a built-in provider, ending in the typed response."""
    output: ProviderOutput = yield from job_steps(provider, ctx, request, request_id, resume)
    ctx.provider_request_id = output.request_id or (ctx.job.request_id or ctx.job.job_id if ctx.job else None)
    return (yield Call(partial(build_response, ctx, output, request_id, request)))


# -- executing steps -----------------------------------------------------------------


def drive_sync(steps: Steps, on_progress: ProgressCallback | None) -> Any:
    """Execute ``steps`` in this thread."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            if isinstance(step, Call):
                value = step.fn()
            elif isinstance(step, CallWithTimeout):
                value = _call_sync_with_timeout(step)
            elif isinstance(step, Sleep):
                time.sleep(max(step.seconds, 0.0))
            elif isinstance(step, Emit):
                notify_sync(on_progress, step.update)
            # Submitted: nothing to do outside the pipeline
        except Exception as exc:  # handed back to the generator, which decides
            error = exc


async def drive_async(steps: Steps, on_progress: ProgressCallback | None) -> Any:
    """Execute ``steps`` without blocking the event loop."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            if isinstance(step, Call):
                value = await asyncio.to_thread(step.fn)
            elif isinstance(step, CallWithTimeout):
                value = await _call_async_with_timeout(step)
            elif isinstance(step, Sleep):
                await asyncio.sleep(max(step.seconds, 0.0))
            elif isinstance(step, Emit):
                await notify_async(on_progress, step.update)
        except Exception as exc:
            error = exc


def _call_sync_with_timeout(step: CallWithTimeout) -> Any:
    # The worker thread is abandoned on timeout: Python cannot kill it, but the caller
    # gets its answer on time and the chain moves on.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mediagen-handler")
    future = pool.submit(step.sync_fn)
    pool.shutdown(wait=False)
    try:
        return future.result(timeout=step.timeout)
    except concurrent.futures.TimeoutError:
        raise GenerationTimeoutError(f"{step.description} did not finish within {step.timeout:g}s") from None


async def _call_async_with_timeout(step: CallWithTimeout) -> Any:
    try:
        return await asyncio.wait_for(step.async_fn(), timeout=step.timeout)
    except asyncio.TimeoutError:
        raise GenerationTimeoutError(f"{step.description} did not finish within {step.timeout:g}s") from None


def notify_sync(on_progress: ProgressCallback | None, update: Any) -> None:
    """Call ``on_progress`` (plain or async) from sync code; a failing callback is logged, not fatal."""
    if on_progress is None:
        return
    try:
        result = on_progress(update)
        if inspect.isawaitable(result):
            _run_awaitable(result)
    except Exception:
        log.warning("on_progress callback raised; generation continues", exc_info=True)


async def notify_async(on_progress: ProgressCallback | None, update: Any) -> None:
    if on_progress is None:
        return
    try:
        result = on_progress(update)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.warning("on_progress callback raised; generation continues", exc_info=True)


def _run_awaitable(awaitable: Any) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_await(awaitable))
        return
    # Called from sync code inside a running loop: run the coroutine on a helper thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _await(awaitable)).result()


async def _await(awaitable: Any) -> Any:
    return await awaitable


# -- a single provider without orchestration (the ProviderHandler methods) -------


def _single_steps(provider: JobProvider, modality: Modality, config: AnyConfig, request: AnyRequest) -> Steps:
    request_id = uuid.uuid4().hex
    ctx = provider.context(config, modality)
    try:
        response = yield from provider_attempt_steps(provider, ctx, request, request_id)
    except MediagenError as exc:
        yield Emit(failed_update(modality, request_id, str(exc)))
        raise
    yield Emit(completed_update(modality, response))
    return response


def run_single(
    provider: JobProvider, modality: Modality, config: AnyConfig, request: AnyRequest, on_progress: ProgressCallback | None
) -> Any:
    """Run one job on one provider, synchronously (no fallback, no retries)."""
    return drive_sync(_single_steps(provider, modality, config, request), on_progress)


async def run_single_async(
    provider: JobProvider, modality: Modality, config: AnyConfig, request: AnyRequest, on_progress: ProgressCallback | None
) -> Any:
    """Run one job on one provider, asynchronously (no fallback, no retries)."""
    return await drive_async(_single_steps(provider, modality, config, request), on_progress)
