"""The shared driver: one description of "run a job" used by the sync and async APIs.

The logic is written once as generators that *yield steps* (call this blocking
function, sleep this long, report this progress) instead of doing I/O. ``drive_sync``
executes the steps in the calling thread; ``drive_async`` runs blocking calls in a
worker thread and sleeps with asyncio. Retry, deadline and polling rules therefore
cannot drift apart between the two APIs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.core.base import JobProvider

import asyncio
import concurrent.futures
import inspect
import logging
import random
import time
import uuid
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable, Generator, Literal

from schemas import JobHandle, Modality

from providers.core.contract import AnyConfig, AnyRequest, Deadline, GeneratedMedia, JobStatus, ProgressCallback, ProviderContext, ProviderOutput
from providers.core.claims import SUBMIT, Claim, ClaimedKey
from providers.errors import (
    GenerationFailedError,
    GenerationTimeoutError,
    MediagenError,
    PossiblyPaidError,
    ProviderConnectionError,
)
from providers.core.http import download, media_type
from providers.core.responses import build_response, completed_update, failed_update, status_update

log = logging.getLogger(__name__)

clock: Callable[[], float] = time.monotonic
"""The clock that measures ``queued_seconds`` (tests replace it)."""

CallKind = Literal["submit", "poll", "fetch", "ledger", "other", "cpu"]


@dataclass
class Call:
    """Run a blocking function and send its result back into the generator.

    ``kind`` and ``provider`` let a driver apply per-provider limits (submit and poll
    budgets) without knowing anything else about the call. Kind ``cpu`` marks quick,
    pure-CPU work (no I/O, no waiting): drivers run it inline, on their own thread,
    instead of handing it to a worker thread and back.
    """

    fn: Callable[[], Any]
    kind: CallKind = "other"
    provider: str | None = None
    model: str | None = None


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
    retry_of: tuple[str, str | None] | None = None  # (provider, model) when this is a retry's backoff: counted


@dataclass
class Emit:
    """Report a progress update (already built for the modality) to ``on_progress``."""

    update: Any


Steps = Generator[Any, Any, Any]


def job_steps(
    provider: JobProvider,
    ctx: ProviderContext,
    request: AnyRequest,
    request_id: str,
    resume: JobHandle | None = None,
    slot: ClaimedKey | None = None,
) -> Steps:
    """Submit a job and follow it to its output, never paying twice for it.

    With ``resume``, follow that job (already paid for) instead of submitting. With a
    ledger ``slot``, its key is claimed, submitted and recorded in one blocking call
    (after the provider's limits let it through, so a claim never waits in a queue), and
    a job some other worker paid for is followed instead (see ``providers.core.claims``).
    """
    if resume is not None:
        return (yield from _follow(provider, ctx, resume, request_id, slot))
    while True:
        ready_at = clock()
        submitted = yield _call(ctx, "submit", partial(_claim_and_submit, provider, ctx, request, request_id, slot, ready_at))
        if isinstance(submitted, Claim) and submitted.action == "wait":
            yield Sleep(submitted.wait_seconds)
            continue
        break
    if isinstance(submitted, Claim):  # another worker paid for it: follow that job
        return (yield from _follow(provider, ctx, submitted.job, request_id, slot))  # type: ignore[arg-type]
    if isinstance(submitted, ProviderOutput):
        return submitted
    return (yield from follow_job(provider, ctx, submitted, request_id, slot))


def _follow(provider: JobProvider, ctx: ProviderContext, job: JobHandle, request_id: str, slot: ClaimedKey | None) -> Steps:
    ctx.job, ctx.last_poll = job, None
    ctx.deadline = Deadline(ctx.config.timeout)
    return (yield from follow_job(provider, ctx, job, request_id, slot))


def claim_steps(slot: ClaimedKey, idempotent: bool) -> Steps:
    """Ask the ledger until it says submit or follow (it raises when neither is safe),
    waiting while another worker's live claim holds the key."""
    while True:
        claim: Claim = yield Call(partial(slot.claim, idempotent), kind="ledger")
        if claim.action != "wait":
            return claim
        yield Sleep(claim.wait_seconds)


def _claim_and_submit(
    provider: JobProvider,
    ctx: ProviderContext,
    request: AnyRequest,
    holder: str,
    slot: ClaimedKey | None,
    ready_at: float | None = None,
) -> JobHandle | ProviderOutput | Claim:
    """Claim ``key``, submit, record the job: one blocking call, so the job id is written
    the moment the provider's answer arrives. Returns the ledger's claim instead when it
    says wait or follow; raises the submit's error (after telling the ledger).

    ``ready_at`` (``clock()`` when the step was yielded): the wait until this call runs,
    behind the driver's limits, is added to ``ctx.queued_seconds``."""
    if ready_at is not None:
        ctx.queued_seconds = (ctx.queued_seconds or 0.0) + max(0.0, clock() - ready_at)
    if slot is None:
        claim = SUBMIT
        if provider.idempotency_header is not None:
            # Without a ledger, retries of this attempt's submit still share one idempotency key.
            claim = Claim("submit", idempotency_key=f"mediagen-{holder}-{ctx.config.provider}-{ctx.model}")
    else:
        claim = slot.claim(provider.idempotency_header is not None)
        if claim.action != "submit":
            return claim
    reservation = _reserve_spend(ctx, request, slot)
    try:
        submitted = _submit(provider, ctx, request, claim.idempotency_key)
    except MediagenError as exc:
        if reservation is not None:
            if may_have_been_accepted(exc):
                ctx.charge = reservation.estimate  # it may have been billed: it counts
            else:
                ctx.spend.release(reservation)
        raise _submit_failed(ctx, exc, claim, slot) from None
    if reservation is not None:
        ctx.charge = reservation.estimate
    if isinstance(submitted, JobHandle):
        ctx.job = submitted
        if slot is not None:
            try:
                slot.record_job(submitted)
            except MediagenError:
                # The job is paid for: follow it all the same. The ledger has stopped new submits.
                log.warning("job %s of %s/%s could not be recorded in the ledger; following it anyway",
                            submitted.job_id, submitted.provider, submitted.model)
    return submitted


def _reserve_spend(ctx: ProviderContext, request: AnyRequest, slot: ClaimedKey | None) -> Any:
    """Commit this submit's estimated cost against the budget (``ctx.spend``), atomically;
    a submit over the cap raises ``BudgetExceededError`` after releasing the claim as
    rejected, so a rerun with a larger budget may submit it."""
    if ctx.spend is None:
        return None
    try:
        return ctx.spend.reserve(ctx.modality, ctx.config, request)
    except MediagenError:
        if slot is not None:
            slot.release("rejected")
        raise


def _submit(
    provider: JobProvider, ctx: ProviderContext, request: AnyRequest, idempotency_key: str | None
) -> JobHandle | ProviderOutput:
    # The attempt's clock starts now: time queued behind our own submit limits is not the provider's.
    ctx.deadline = Deadline(ctx.config.timeout)
    ctx.idempotency_key = idempotency_key
    try:
        return provider.submit(ctx, request)
    finally:
        ctx.idempotency_key = None


def may_have_been_accepted(error: MediagenError) -> bool:
    """Whether a failed submit may still have reached the provider and been accepted:
    its answer was lost (read timeout, connection dropped after sending). A refusal the
    provider sent back (an HTTP error status) or a connection never made is not."""
    if not isinstance(error, (GenerationTimeoutError, ProviderConnectionError)):
        return False
    return bool(getattr(error, "request_sent", True))


def _submit_failed(ctx: ProviderContext, error: MediagenError, claim: Claim, slot: ClaimedKey | None) -> MediagenError:
    """The error to raise for a failed submit, after telling the ledger what it means."""
    if not may_have_been_accepted(error):
        if slot is not None:
            slot.release("rejected")
        return error
    if ctx.provider.idempotency_header is not None and claim.idempotency_key is not None:
        return error  # retrying with the same idempotency key finds the job instead of paying again
    if slot is not None:
        slot.release("uncertain")
    return PossiblyPaidError(
        f"the submit's answer was lost ({error.message}); the provider may have accepted and billed it, "
        "so it is not sent again (rerun with --resubmit_uncertain to pay again on purpose)",
        provider=ctx.provider.name, model=ctx.model,
    )


def _call(ctx: ProviderContext, kind: CallKind, fn: Callable[[], Any]) -> Call:
    return Call(fn, kind=kind, provider=ctx.config.provider, model=ctx.model)


def _download_authenticated(ctx: ProviderContext, output: ProviderOutput) -> ProviderOutput:
    """``output`` with every URL that needs credentials replaced by its bytes."""
    media = []
    for item in output.media:
        if item.url is not None and item.headers is not None:
            data, served = download(ctx, item.url, headers=item.headers.reveal())
            item = GeneratedMedia(data=data, content_type=_served_type(served, item.content_type))
        media.append(item)
    return replace(output, media=media)


def _served_type(served: str | None, declared: str | None) -> str | None:
    """The type the download was served as, unless it contradicts the kind the provider declared."""
    bare = media_type(served)
    if declared is None or (bare is not None and bare.split("/")[0] == declared.split("/")[0]):
        return bare or declared
    return declared


CANCEL_SECONDS = 30.0
"""Time allowed for cancelling a job that ran past its deadline."""


def follow_job(
    provider: JobProvider,
    ctx: ProviderContext,
    job: JobHandle,
    request_id: str,
    slot: ClaimedKey | None = None,
) -> Steps:
    """Poll ``job`` until it completes (then fetch) or fails, within deadline and poll budget.

    The job is paid for, so nothing here submits again: transient poll and fetch errors
    retry the same job (and leave it resumable), a job past its deadline is cancelled
    where the provider can cancel (otherwise left in the ledger for a rerun to pick up).
    """
    wait = 0.0
    while True:
        if wait > 0:
            yield Sleep(min(wait, max(ctx.deadline.remaining(), 0.0)))
        if ctx.deadline.expired() or job.polls >= ctx.config.max_poll_attempts:
            raise (yield from _give_up_on(provider, ctx, job, slot)) from None
        try:
            status: JobStatus = yield from _job_call(ctx, "poll", partial(provider.poll, ctx, job))
            job = job.polled()
            ctx.job, ctx.last_poll = job, status
            if status.state == "completed":
                return (yield from _job_call(ctx, "fetch", partial(provider.fetch, ctx, job)))
        except MediagenError as exc:
            raise (yield from _job_call_failed(exc, job, slot)) from None
        if status.state == "failed":
            failure = status.failure or GenerationFailedError("job failed without a reason")
            _annotate(failure, ctx, job)
            if slot is not None:
                yield Call(partial(slot.release, "failed"), kind="ledger")
            raise failure
        yield Emit(status_update(ctx.modality, request_id, status))
        wait = status.poll_after if status.poll_after is not None else float(ctx.config.poll_interval)


GONE_STATUSES = frozenset({404, 410})
"""A poll or fetch answered with these: the provider no longer knows the job."""


def _job_call_failed(error: MediagenError, job: JobHandle, slot: ClaimedKey | None) -> Steps:
    """A poll or fetch failed for good: a job the provider no longer knows frees its key;
    any other failure leaves the job resumable by the next try (``unfinished_job``)."""
    if getattr(error, "status_code", None) in GONE_STATUSES:
        if slot is not None:
            yield Call(partial(slot.release, "gone"), kind="ledger")
        return error
    error.unfinished_job = job  # type: ignore[attr-defined]
    return error


def _give_up_on(provider: JobProvider, ctx: ProviderContext, job: JobHandle, slot: ClaimedKey | None) -> Steps:
    """The timeout error for a job past its deadline, after cancelling it where possible."""
    error = _job_timeout(ctx, job)
    ctx.deadline = Deadline(CANCEL_SECONDS)
    try:
        cancelled = yield _call(ctx, "other", partial(provider.cancel, ctx, job))
    except MediagenError as exc:
        log.warning("cancelling job %s of %s/%s failed: %s", job.job_id, ctx.provider.name, ctx.model, exc.message)
        cancelled = False
    error.message += "; cancelled" if cancelled else "; left running (no cancel call), a rerun picks up its result"
    if slot is not None:
        yield Call(partial(slot.release, "cancelled") if cancelled else slot.abandon, kind="ledger")
    return error


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
            yield Sleep(min(wait, max(ctx.deadline.remaining(), 0.0)), retry_of=(ctx.config.provider, ctx.model))


def _job_timeout(ctx: ProviderContext, job: JobHandle) -> GenerationTimeoutError:
    if job.polls >= ctx.config.max_poll_attempts:
        reason = f"still running after max_poll_attempts={ctx.config.max_poll_attempts} polls"
    else:
        reason = f"still running after timeout={ctx.config.timeout}s"
    # Not retryable: another try on this config would pay for a second job.
    return GenerationTimeoutError(
        f"job {job.job_id} {reason}", provider=ctx.provider.name, model=ctx.model,
        request_id=job.request_id or job.job_id, retryable=False,
    )


def _annotate(error: MediagenError, ctx: ProviderContext, job: JobHandle) -> None:
    error.provider = error.provider or ctx.provider.name
    error.model = error.model or ctx.model
    error.request_id = error.request_id or job.request_id or job.job_id


def provider_attempt_steps(
    provider: JobProvider,
    ctx: ProviderContext,
    request: AnyRequest,
    request_id: str,
    resume: JobHandle | None = None,
    slot: ClaimedKey | None = None,
) -> Steps:
    """One attempt on a built-in provider, ending in the typed response."""
    output: ProviderOutput = yield from job_steps(provider, ctx, request, request_id, resume, slot)
    if not ctx.stream_media and any(m.headers is not None for m in output.media):
        # The SDK functions answer with bytes; the pipeline streams such URLs to storage itself.
        output = yield from _job_call(ctx, "fetch", partial(_download_authenticated, ctx, output))
    ctx.provider_request_id = output.request_id or (ctx.job.request_id or ctx.job.job_id if ctx.job else None)
    return (yield Call(partial(build_response, ctx, output, request_id, request), kind="cpu"))


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
                value = step.fn() if step.kind == "cpu" else await asyncio.to_thread(step.fn)
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
    yield Emit(completed_update(modality, response, ctx.last_poll_payload()))
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
