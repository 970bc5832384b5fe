"""The fallback orchestrator: run ``config`` then its ``fallback_configs`` (depth-first),
retrying transient errors on the same config, skipping configs that cannot serve the
request, stopping on moderation and invalid input, and recording every attempt."""

from __future__ import annotations

import inspect
import logging
import random
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from schemas import AttemptMetadata, ExecutionMetadata, JobHandle, Modality, utc_now

from providers.core.contract import AnyConfig, AnyRequest, ProgressCallback
from providers.core.base import JobProvider
from providers.core.claims import ClaimedKey, JobLedger
from providers.core.driver import (
    GONE_STATUSES,
    Call,
    CallWithTimeout,
    Emit,
    Sleep,
    Steps,
    claim_steps,
    notify_sync,
    provider_attempt_steps,
)
from providers.errors import GenerationFailedError, MediagenError, PossiblyPaidError, UnsupportedRequestError
from providers.core.keys import output_key
from providers.core.pricing import CostEstimate, Spend, attempt_cost
from providers.core.redaction import Redactor
from providers.registry import UnknownProviderError, capabilities_for, get_provider, handler_for
from providers.core.responses import completed_update, failed_update

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one config after a transient error: capped exponential backoff with jitter.

    The n-th retry waits ``min(max_delay, base_delay * 2**(n-1))``, scaled by a random
    factor in ``[1 - jitter, 1]``; a provider's Retry-After is honoured (up to
    ``max_retry_after``) when it asks for longer.
    """

    max_retries: int = 2
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        backoff = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        backoff *= 1 - self.jitter * random.random()
        if retry_after is not None:
            return max(backoff, min(retry_after, self.max_retry_after))
        return backoff


DEFAULT_RETRY = RetryPolicy()


def flatten_chain(config: AnyConfig) -> list[AnyConfig]:
    """``config`` then each of its fallbacks (and theirs), depth-first."""
    chain = [config]
    for fallback in config.fallback_configs or []:
        chain.extend(flatten_chain(fallback))
    return chain


def chain_keys(modality: Modality, config: AnyConfig, request: AnyRequest) -> list[str]:
    """The output key (:func:`providers.core.keys.output_key`) of each config in the chain, in order."""
    keys = []
    for cfg in flatten_chain(config):
        handler = handler_for(cfg)
        real = _real_provider(cfg) if _is_mocked(cfg) else handler
        keys.append(output_key(modality, request, cfg, getattr(real, "default_base_url", None)))
    return keys


def chain_steps(
    modality: Modality,
    config: AnyConfig,
    request: AnyRequest,
    retry: RetryPolicy = DEFAULT_RETRY,
    request_id: str | None = None,
    resume: JobHandle | None = None,
    ledger: JobLedger | None = None,
    keys: list[str] | None = None,
    spend: Spend | None = None,
    on_progress: ProgressCallback | None = None,
    stream_media: bool = False,
) -> Steps:
    """The whole fallback chain as driver steps; returns the response or raises the last error.

    A job already paid for is followed, never replaced: ``resume`` (a job submitted
    earlier) is followed by the first try of the config it belongs to, and a try that
    failed while following its job (poll errors, a 5xx storm) hands that job to the next
    try. Only the provider saying the job failed or is gone lets a later try submit
    afresh. With a ``ledger`` every paid call is claimed first under the config's output
    key (``keys``, computed when not given; see ``providers.core.claims``). ``spend`` prices every
    submit, checks it against the budget cap and gives each attempt its cost.
    A custom handler is handed ``on_progress`` (the caller's callback, which built-in
    providers reach through the driver's ``Emit`` steps) when its method accepts one.
    ``stream_media`` (the pipeline): a result URL that needs the provider's credentials is
    left a URL, its headers kept on the response for the media store, instead of downloaded.
    """
    request_id = request_id or uuid.uuid4().hex
    spend = spend or Spend()
    chain = flatten_chain(config)
    handlers = [handler_for(cfg) for cfg in chain]  # unknown providers fail before any attempt
    if ledger is not None and keys is None:
        keys = chain_keys(modality, config, request)
    metadata = ExecutionMetadata(configs_in_chain=len(chain))
    last_error: MediagenError | None = None
    for position, (cfg, handler) in enumerate(zip(chain, handlers), start=1):
        slot = ClaimedKey(ledger, keys[position - 1], request_id) if ledger is not None and keys is not None else None
        follow = _resumable(resume, cfg)
        try_number = 0
        if position > 1:
            _log_fallback(cfg, position, len(chain), last_error)
        while True:
            try_number += 1
            started = utc_now()
            attempt = partial(_record, metadata, cfg, position, try_number, started, handler)
            attempt = _logged(attempt, metadata, cfg)
            log.debug("attempt start %s/%s attempt=%d try=%d", cfg.provider, cfg.model, position, try_number,
                      extra=_log_fields(cfg, position, try_number))
            try:
                _check_supported(handler, modality, request, cfg)
                tried = yield from _attempt_steps(
                    handler, modality, cfg, request, request_id, try_number, follow, slot, spend, on_progress,
                    stream_media,
                )
                response, provider_request_id, cost, queued = tried.response, tried.request_id, tried.cost, tried.queued
            except UnsupportedRequestError as exc:
                attempt("skipped", exc)
                last_error = last_error or exc
                break
            except MediagenError as exc:
                exc.redact(Redactor([cfg.api_key]))  # a careless handler may echo its key
                attempt("failed", exc, cost=attempt_cost(exc.__dict__.pop("attempt_cost", None)),
                        queued_seconds=exc.__dict__.pop("attempt_queued", None))
                last_error = exc
                if exc.stops_chain:
                    break
                follow = getattr(exc, "unfinished_job", None)
                if exc.retryable and try_number <= retry.max_retries:
                    delay = retry.delay(try_number, exc.retry_after)
                    log.info("retrying %s/%s attempt=%d try=%d in %.2fs after %s", cfg.provider, cfg.model, position,
                             try_number + 1, delay, type(exc).__name__,
                             extra=_log_fields(cfg, position, try_number + 1, error_type=type(exc).__name__))
                    yield Sleep(delay, retry_of=(cfg.provider, cfg.model))
                    continue
                if follow is None and _followed_a_job(exc) and try_number == 1 and resume is not None:
                    continue  # the job resumed from an earlier run failed or is gone: one fresh submit
                break
            else:
                attempt("success", None, request_id=provider_request_id, cost=cost, queued_seconds=queued)
                metadata.successful_attempt = len(metadata.attempts)
                response.execution_metadata = metadata
                yield Emit(completed_update(modality, response, tried.last_update))
                return response
        if last_error is not None and last_error.stops_chain:
            break
    error = _chain_error(modality, metadata, last_error)
    yield Emit(failed_update(modality, request_id, str(error)))
    raise error from None


def _followed_a_job(error: MediagenError) -> bool:
    """Whether ``error`` is the provider saying a job it accepted failed or no longer exists."""
    return isinstance(error, GenerationFailedError) or getattr(error, "status_code", None) in GONE_STATUSES


def _real_provider(cfg: AnyConfig) -> Any:
    """The built-in provider a mocked config stands in for, or None for custom names."""
    try:
        return get_provider(cfg.provider)
    except UnknownProviderError:
        return None


def _check_supported(handler: Any, modality: Modality, request: AnyRequest, cfg: AnyConfig) -> None:
    """Raise ``UnsupportedRequestError`` when the config's model cannot serve the request.
    A mocked config runs the real provider's own checks, so a mocked dry run skips exactly
    the rows the real provider would."""
    real = _real_provider(cfg) if _is_mocked(cfg) else handler
    if isinstance(real, JobProvider) and real.name != "mock":
        real.check_request(modality, request, cfg)
        return
    caps = capabilities_for(cfg.provider, cfg.model)
    if caps is not None:
        from providers.core.capabilities import check_request

        check_request(caps, modality, request, provider=cfg.provider, model=cfg.model)


def _resumable(resume: JobHandle | None, cfg: AnyConfig) -> JobHandle | None:
    if resume is None:
        return None
    if (resume.provider, resume.model) != (cfg.provider, cfg.model) or resume.is_mock != _is_mocked(cfg):
        return None
    return resume


class _Try(NamedTuple):
    """What one successful try of one config gave."""

    response: Any
    request_id: str | None
    cost: Any
    queued: float | None
    last_update: dict[str, Any] | None = None
    """The completing poll's payload: the completed progress update carries it."""


def _attempt_steps(
    handler: Any,
    modality: Modality,
    cfg: AnyConfig,
    request: AnyRequest,
    request_id: str,
    try_number: int,
    resume: JobHandle | None = None,
    slot: ClaimedKey | None = None,
    spend: Spend | None = None,
    on_progress: ProgressCallback | None = None,
    stream_media: bool = False,
) -> Steps:
    """One try of one config, as a :class:`_Try`. A failed try's cost (its submit may have been billed) and queued seconds travel on the
    error as ``attempt_cost`` and ``attempt_queued``."""
    spend = spend or Spend()
    if isinstance(handler, JobProvider):
        ctx = handler.context(cfg, modality, try_number=try_number)
        ctx.spend, ctx.stream_media = spend, stream_media
        try:
            response = yield from provider_attempt_steps(handler, ctx, request, request_id, resume, slot)
        except MediagenError as exc:
            if exc.request_id is None and ctx.job is not None:
                exc.request_id = ctx.job.request_id or ctx.job.job_id
            exc.attempt_cost = ctx.charge  # type: ignore[attr-defined]
            exc.attempt_queued = ctx.queued_seconds  # type: ignore[attr-defined]
            raise
        except Exception as exc:  # a provider answer we could not understand
            error = _unexpected(exc, cfg)
            error.attempt_cost = ctx.charge  # type: ignore[attr-defined]
            error.attempt_queued = ctx.queued_seconds  # type: ignore[attr-defined]
            raise error from exc
        cost = attempt_cost(ctx.charge)
        if ctx.charge is not None:
            cost = spend.book.actual(modality, cfg, request, ctx.charge, getattr(response, "raw_response", None))
        return _Try(response, ctx.provider_request_id, cost, ctx.queued_seconds, ctx.last_poll_payload())
    if slot is not None:
        # A custom handler's call is paid for like a submit: claim it first.
        claim = yield from claim_steps(slot, idempotent=False)
        if claim.action == "follow":
            raise PossiblyPaidError(f"a job of {cfg.provider}/{cfg.model} is recorded for this request, but "
                                    "custom handlers cannot be re-attached to", provider=cfg.provider, model=cfg.model)
    try:
        reservation = spend.reserve(modality, cfg, request)
    except MediagenError:
        if slot is not None:
            yield Call(partial(slot.release, "rejected"), kind="ledger")
        raise
    try:
        response = yield from _custom_handler_steps(handler, modality, cfg, request, on_progress)
    except MediagenError as exc:
        if slot is not None:
            yield Call(partial(slot.release, "failed"), kind="ledger")
        if isinstance(exc, UnsupportedRequestError):
            spend.release(reservation)  # the handler lacks the modality: nothing was called
        else:
            exc.attempt_cost = reservation.estimate  # type: ignore[attr-defined]
        raise
    return _Try(response, None, reservation.estimate, None)


def _custom_handler_steps(
    handler: Any, modality: Modality, cfg: AnyConfig, request: AnyRequest, on_progress: ProgressCallback | None = None
) -> Steps:
    sync_method = getattr(handler, f"generate_{modality}", None)
    async_method = getattr(handler, f"generate_{modality}_async", None)
    if sync_method is None and async_method is None:
        raise UnsupportedRequestError(f"provider {cfg.provider!r} has no generate_{modality}")

    def call_sync() -> Any:
        if sync_method is None:
            raise NotImplementedError(f"generate_{modality}")
        forward = None if on_progress is None else partial(notify_sync, on_progress)
        return _call_handler(sync_method, cfg, request, forward)

    async def call_async() -> Any:
        if async_method is None:
            import asyncio

            return await asyncio.to_thread(call_sync)
        forward = None if on_progress is None else partial(_forward_async, on_progress)
        return await _call_handler(async_method, cfg, request, forward)

    try:
        return (
            yield CallWithTimeout(call_sync, call_async, float(cfg.timeout), f"{cfg.provider}/{cfg.model} generate_{modality}")
        )
    except NotImplementedError as exc:
        raise UnsupportedRequestError(f"provider {cfg.provider!r} does not implement {modality}: {exc}") from None
    except MediagenError:
        raise
    except Exception as exc:
        raise _unexpected(exc, cfg) from exc


def _call_handler(method: Any, cfg: AnyConfig, request: AnyRequest, forward: ProgressCallback | None) -> Any:
    """``method(cfg, request)``, plus ``forward`` as its ``on_progress`` when it takes one."""
    if forward is None:
        return method(cfg, request)
    style = _progress_parameter(method)
    if style == "keyword":
        return method(cfg, request, on_progress=forward)
    if style == "positional":
        return method(cfg, request, forward)
    return method(cfg, request)


def _progress_parameter(method: Any) -> str | None:
    """How ``method`` takes a progress callback: by the name ``on_progress`` ("keyword"),
    as a third positional parameter ("positional"), or not at all (None)."""
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.name == "on_progress" or p.kind is p.VAR_KEYWORD for p in parameters):
        return "keyword"
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return "positional"
    return None


def _forward_async(on_progress: ProgressCallback, update: Any) -> Any:
    """Hand ``update`` to the caller's callback from an async handler: a plain callback
    runs at once (None), an async one gives its awaitable for the handler to await.
    A failing callback is logged, never fatal, as for built-in providers."""
    try:
        result = on_progress(update)
    except Exception:
        log.warning("on_progress callback raised; generation continues", exc_info=True)
        return None
    return _guarded(result) if inspect.isawaitable(result) else None


async def _guarded(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.warning("on_progress callback raised; generation continues", exc_info=True)


def _log_fields(cfg: AnyConfig, position: int, try_number: int, **more: Any) -> dict[str, Any]:
    """The ``extra`` of a log record: its fields under ``record.mediagen`` for structured handlers."""
    return {"mediagen": {"provider": cfg.provider, "model": cfg.model, "attempt": position, "try_number": try_number,
                         **more}}


def _log_fallback(cfg: AnyConfig, position: int, chain_length: int, last_error: MediagenError | None) -> None:
    reason = type(last_error).__name__ if last_error is not None else "a skipped config"
    log.info("falling back to %s/%s (attempt %d of %d) after %s", cfg.provider, cfg.model, position, chain_length,
             reason, extra=_log_fields(cfg, position, 1, error_type=reason))


def _logged(record: Any, metadata: ExecutionMetadata, cfg: AnyConfig) -> Any:
    """``record`` (the attempt recorder), then one log record of the attempt's end:
    INFO with provider, model, attempt, try, elapsed and error type (keys redacted)."""

    def record_and_log(status: str, error: MediagenError | None, **fields: Any) -> None:
        record(status, error, **fields)
        _log_end(metadata.attempts[-1], Redactor([cfg.api_key]))

    return record_and_log


def _log_end(attempt: AttemptMetadata, redactor: Redactor) -> None:
    details = {
        "provider": attempt.provider,
        "model": attempt.model,
        "attempt": attempt.attempt_number,
        "try_number": attempt.try_number,
        "status": attempt.status,
        "elapsed_seconds": attempt.elapsed_seconds,
        "error_type": attempt.error_type,
    }
    message = redactor.redact(attempt.error_message) if attempt.error_message else ""
    log.info(
        "attempt end %s/%s attempt=%d try=%d status=%s elapsed=%.3fs%s",
        attempt.provider, attempt.model, attempt.attempt_number, attempt.try_number, attempt.status,
        attempt.elapsed_seconds or 0.0, f" error={attempt.error_type}: {message}" if attempt.error_type else "",
        extra={"mediagen": details},
    )


def _unexpected(exc: Exception, cfg: AnyConfig) -> MediagenError:
    return GenerationFailedError(
        f"unexpected {type(exc).__name__}: {exc}", provider=cfg.provider, model=cfg.model, retryable=False
    )


def _is_mocked(cfg: AnyConfig) -> bool:
    return cfg.mock is not None and cfg.mock.enabled


def _record(
    metadata: ExecutionMetadata,
    cfg: AnyConfig,
    position: int,
    try_number: int,
    started: Any,
    handler: Any,
    status: str,
    error: MediagenError | None,
    request_id: str | None = None,
    cost: CostEstimate | None = None,
    queued_seconds: float | None = None,
) -> None:
    metadata.attempts.append(
        AttemptMetadata(
            provider=cfg.provider,
            model=cfg.model,
            attempt_number=position,
            try_number=try_number,
            started_at=started,
            ended_at=utc_now(),
            status=status,  # type: ignore[arg-type]
            error_type=type(error).__name__ if error else None,
            error_message=str(error.message) if error else None,
            is_retryable=error.retryable if error else None,
            request_id=(error.request_id if error else request_id),
            status_code=getattr(error, "status_code", None),
            is_mock=_is_mocked(cfg),
            cost_usd=cost.usd if cost is not None else 0.0,
            cost_source=cost.source if cost is not None else "none",
            queued_seconds=queued_seconds,
        )
    )
    metadata.total_attempts = len(metadata.attempts)
    metadata.fallback_triggered = any(a.attempt_number > 1 for a in metadata.attempts)


def _chain_error(modality: Modality, metadata: ExecutionMetadata, last_error: MediagenError | None) -> MediagenError:
    if last_error is None or all(a.status == "skipped" for a in metadata.attempts):
        reasons = "; ".join(f"{a.provider}/{a.model}: {a.error_message}" for a in metadata.attempts)
        last_error = UnsupportedRequestError(f"no config in the chain can serve this {modality} request ({reasons})")
    last_error.execution_metadata = metadata
    return last_error
