"""The fallback orchestrator: run ``config`` then its ``fallback_configs`` (depth-first),
retrying transient errors on the same config, skipping configs that cannot serve the
request, stopping on moderation and invalid input, and recording every attempt."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from schemas import AttemptMetadata, ExecutionMetadata, JobHandle, Modality, utc_now

from .base import AnyConfig, AnyRequest, JobProvider
from .driver import CallWithTimeout, Emit, Sleep, Steps, provider_attempt_steps
from .errors import GenerationFailedError, MediagenError, UnsupportedRequestError
from .registry import capabilities_for, handler_for
from .responses import completed_update, failed_update


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


def chain_steps(
    modality: Modality,
    config: AnyConfig,
    request: AnyRequest,
    retry: RetryPolicy = DEFAULT_RETRY,
    request_id: str | None = None,
    resume: JobHandle | None = None,
) -> Steps:
    """The whole fallback chain as driver steps; returns the response or raises the last error.

    ``resume`` is a job submitted earlier (from the pipeline's ledger): the first try of
    the config it belongs to follows that job instead of submitting again. Should the
    provider report it failed or gone, later tries submit afresh.
    """
    request_id = request_id or uuid.uuid4().hex
    chain = flatten_chain(config)
    handlers = [handler_for(cfg) for cfg in chain]  # unknown providers fail before any attempt
    metadata = ExecutionMetadata(configs_in_chain=len(chain))
    last_error: MediagenError | None = None
    for position, (cfg, handler) in enumerate(zip(chain, handlers), start=1):
        try_number = 0
        while True:
            try_number += 1
            started = utc_now()
            attempt = partial(_record, metadata, cfg, position, try_number, started, handler)
            resumable = _resumable(resume, cfg, try_number)
            try:
                _check_supported(handler, modality, request, cfg)
                response, provider_request_id = yield from _attempt_steps(
                    handler, modality, cfg, request, request_id, try_number, resumable
                )
            except UnsupportedRequestError as exc:
                attempt("skipped", exc)
                last_error = last_error or exc
                break
            except MediagenError as exc:
                _scrub_key(exc, cfg)
                attempt("failed", exc)
                last_error = exc
                if exc.stops_chain:
                    break
                if resumable is not None:
                    continue  # the earlier job failed or is gone: submit afresh on the same config
                if exc.retryable and try_number <= retry.max_retries:
                    yield Sleep(retry.delay(try_number, exc.retry_after))
                    continue
                break
            else:
                attempt("success", None, request_id=provider_request_id)
                metadata.successful_attempt = len(metadata.attempts)
                response.execution_metadata = metadata
                yield Emit(completed_update(modality, response))
                return response
        if last_error is not None and last_error.stops_chain:
            break
    error = _chain_error(modality, metadata, last_error)
    yield Emit(failed_update(modality, request_id, str(error)))
    raise error from None


def _check_supported(handler: Any, modality: Modality, request: AnyRequest, cfg: AnyConfig) -> None:
    if isinstance(handler, JobProvider) and not _is_mocked(cfg):
        handler.check_request(modality, request, cfg)
        return
    caps = capabilities_for(cfg.provider, cfg.model)
    if caps is not None:
        from .capabilities import check_request

        check_request(caps, modality, request)


def _resumable(resume: JobHandle | None, cfg: AnyConfig, try_number: int) -> JobHandle | None:
    if resume is None or try_number != 1:
        return None
    if (resume.provider, resume.model) != (cfg.provider, cfg.model) or resume.is_mock != _is_mocked(cfg):
        return None
    return resume


def _attempt_steps(
    handler: Any,
    modality: Modality,
    cfg: AnyConfig,
    request: AnyRequest,
    request_id: str,
    try_number: int,
    resume: JobHandle | None = None,
) -> Steps:
    if isinstance(handler, JobProvider):
        ctx = handler.context(cfg, modality, try_number=try_number)
        try:
            response = yield from provider_attempt_steps(handler, ctx, request, request_id, resume)
            return response, ctx.provider_request_id
        except MediagenError as exc:
            if exc.request_id is None and ctx.job is not None:
                exc.request_id = ctx.job.request_id or ctx.job.job_id
            raise
        except Exception as exc:  # a provider answer we could not understand
            raise _unexpected(exc, cfg) from exc
    response = yield from _custom_handler_steps(handler, modality, cfg, request)
    return response, None


def _custom_handler_steps(handler: Any, modality: Modality, cfg: AnyConfig, request: AnyRequest) -> Steps:
    sync_method = getattr(handler, f"generate_{modality}", None)
    async_method = getattr(handler, f"generate_{modality}_async", None)
    if sync_method is None and async_method is None:
        raise UnsupportedRequestError(f"provider {cfg.provider!r} has no generate_{modality}")

    def call_sync() -> Any:
        if sync_method is None:
            raise NotImplementedError(f"generate_{modality}")
        return sync_method(cfg, request)

    async def call_async() -> Any:
        if async_method is None:
            import asyncio

            return await asyncio.to_thread(call_sync)
        return await async_method(cfg, request)

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


def _unexpected(exc: Exception, cfg: AnyConfig) -> MediagenError:
    return GenerationFailedError(
        f"unexpected {type(exc).__name__}: {exc}", provider=cfg.provider, model=cfg.model, retryable=False
    )


def _scrub_key(error: MediagenError, cfg: AnyConfig) -> None:
    """A careless handler may echo its key into an error: never let it out."""
    key = cfg.api_key
    if key and len(key) >= 4 and key in error.message:
        error.message = error.message.replace(key, "***")
        error.args = (error.message,)


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
            is_mock=_is_mocked(cfg),
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
