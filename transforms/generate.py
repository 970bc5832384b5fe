"""Generate: the DoFn around the orchestrator.

Per request key (rows with the same key share one generation) it checks the ledger
(media already made: the rows are ``completed`` with ``reused``; a job in flight:
re-attach to it), otherwise runs the fallback chain through a window that keeps many
jobs in flight under per-provider limits, stores the media and writes the row.
Results and Beam metrics are produced on the DoFn's own thread.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.shared import Shared

from providers.driver import Call, Steps
from providers.errors import LedgerUnavailableError, MediagenError, OutputAlreadyMadeError
from providers.limits import LimiterRegistry
from providers.redaction import install_log_redaction
from providers.orchestrator import RetryPolicy, chain_keys, chain_steps, flatten_chain
from providers.pricing import PriceBook, Spend, total_cost
from providers.window import JobWindow, WindowResult
from schemas import ConfigEntry, JobConfig, utc_now
from schemas.results import LedgerEntry, ResultRow, StoredMedia

from .ledger import DEFAULT_LEASE_SECONDS, Ledger
from .media_store import MediaStore, MediaStoreError
from .read import REQUEST_TYPES, PromptRow
from .row_media import MediaPolicy, RowMediaError, load_row_media
from .secrets import KeyResolver
from .storage import Storage

log = logging.getLogger(__name__)

NAMESPACE = "mediagen"
MAX_RAW_STRING = 2048


class WorkerClients:
    """What one worker process shares between all its DoFn instances: resolved keys,
    provider limiters, the download session, the ledger and the spend (prices and this
    worker's share of the budget cap, like its share of the rate limits)."""

    def __init__(self, job: JobConfig, key_resolver: KeyResolver, workers: int = 1, ledger: Ledger | None = None,
                 earlier_usd: float = 0.0) -> None:
        import requests

        self.key_resolver = key_resolver
        self.spend = Spend(PriceBook.for_job(job), job.budget, earlier_usd=earlier_usd, workers=workers)
        self.limiters = LimiterRegistry(dict(job.limits), workers=workers, global_limiter=global_limiter(job))
        self.session = requests.Session()
        self.secrets = key_resolver.redactor
        self.ledger = ledger
        install_log_redaction(self.secrets)

    def resolve_key(self, entry: ConfigEntry) -> str | None:
        return self.key_resolver(entry)  # the resolver adds every key to its redactor


def global_limiter(job: JobConfig) -> Any:
    """Beam's EnvoyRateLimiter per provider when the job names an Envoy Rate Limit Service."""
    settings = job.global_rate_limit
    if settings is None:
        return None
    from apache_beam.io.components.rate_limiter import EnvoyRateLimiter

    from providers.limits import RateLimiterAdapter

    return RateLimiterAdapter({
        key: EnvoyRateLimiter(service_address=settings.service_address, domain=settings.domain,
                              descriptors=descriptors, timeout=settings.timeout, namespace=NAMESPACE)
        for key, descriptors in settings.descriptors.items()
    })


@dataclass(frozen=True)
class LedgerOptions:
    """How the ledger treats other runs' claims (``--lease_seconds``, ``--resubmit_uncertain``)."""

    lease_seconds: float = DEFAULT_LEASE_SECONDS
    resubmit_uncertain: bool = False


@dataclass
class ItemOutcome:
    """What happened to one request key."""

    response: Any = None
    stored: list[StoredMedia] = field(default_factory=list)
    reused: LedgerEntry | None = None
    store_error: Exception | None = None


@dataclass
class _Pending:
    rows: list[PromptRow]
    started: float


class GenerateDoFn(beam.DoFn):
    """(request key, rows) -> one ``ResultRow`` per row."""

    def __init__(
        self,
        job: JobConfig,
        output_root: str,
        run_id: str,
        *,
        storage_options: dict[str, Any] | None = None,
        key_resolver: KeyResolver | None = None,
        shared: Shared | None = None,
        workers: int = 1,
        progress: Any = None,
        ledger_options: LedgerOptions | None = None,
    ) -> None:
        self.job = job
        self.output_root = output_root
        self.run_id = run_id
        self.storage_options = storage_options
        self.key_resolver = key_resolver or KeyResolver()
        self.shared = shared or Shared()
        self.workers = workers
        self.progress = progress
        self.ledger_options = ledger_options or LedgerOptions()
        self.rows_counter = {s: Metrics.counter(NAMESPACE, f"rows_{s}") for s in ("completed", "failed", "reused")}
        self.latency = Metrics.distribution(NAMESPACE, "generation_ms")

    # -- lifecycle -------------------------------------------------------------------

    _SETUP_STATE = ("worker", "storage", "ledger", "media", "media_policy", "configs", "retry", "window", "pending")

    def __getstate__(self) -> dict[str, Any]:
        # What setup() builds (resolved keys inside configs, threads, sessions) never travels.
        return {k: v for k, v in self.__dict__.items() if k not in self._SETUP_STATE}

    def setup(self) -> None:
        self.worker: WorkerClients = self.shared.acquire(self._worker_clients, tag=f"mediagen-worker-{self.run_id}")
        self.storage = Storage(self.output_root, self.storage_options)
        self.ledger = self.worker.ledger
        self.media = MediaStore(self.storage, self.worker.session)
        self.media_policy = MediaPolicy.from_job(self.job)
        self.configs = {
            name: entry.build(self.job.modality, self.worker.resolve_key)
            for name, entry in zip(self.job.config_names, self.job.configs)
        }
        retry = self.job.retry
        self.retry = RetryPolicy(max_retries=retry.max_retries, base_delay=retry.base_delay, max_delay=retry.max_delay)
        self.window = JobWindow(
            self.worker.limiters,
            max_in_flight=self.job.window.max_in_flight,
            threads=self.job.window.threads,
        )
        self.pending: dict[str, _Pending] = {}

    def _worker_clients(self) -> WorkerClients:
        """What every DoFn instance of this process shares, the ledger (its claims, leases
        and breaker) among it."""
        storage = Storage(self.output_root, self.storage_options)
        ledger = Ledger(
            storage, run_id=self.run_id,
            lease_seconds=self.ledger_options.lease_seconds, resubmit_uncertain=self.ledger_options.resubmit_uncertain,
        )
        earlier = 0.0
        if self.job.budget is not None and self.job.budget.scope == "output":
            from .results import earlier_spend

            earlier = earlier_spend(storage, self.run_id)
        return WorkerClients(self.job, self.key_resolver, self.workers, ledger, earlier_usd=earlier)

    def teardown(self) -> None:
        window = getattr(self, "window", None)
        if window is not None:
            window.close()

    # -- processing ----------------------------------------------------------------------

    def process(self, element: tuple[str, Iterable[PromptRow]]) -> Iterator[ResultRow]:
        key, grouped = element
        rows = sorted(grouped, key=lambda r: (r.row_id, r.source))
        self.pending[key] = _Pending(rows, time.time())
        if self.progress is not None:
            self.progress.started(len(rows))
        self.window.add(key, self._item_steps(key, rows[0]))
        yield from self._rows_for(self.window.poll_results())

    def finish_bundle(self) -> Iterator[Any]:
        for result in self.window.drain():
            for row in self._rows_for([result]):
                yield GlobalWindows.windowed_value(row)

    # -- one request key, as driver steps (runs in the window) ---------------------------

    def _item_steps(self, key: str, row: PromptRow) -> Steps:
        request = yield Call(partial(self._request_for, row))
        config = self.configs[row.config_name or self.job.config_names[0]]
        keys = chain_keys(self.job.modality, config, request)
        done = yield Call(partial(self._first_finished, keys), kind="ledger")
        if done is not None:
            return ItemOutcome(reused=done)
        try:
            response = yield from chain_steps(self.job.modality, config, request, self.retry, ledger=self.ledger, keys=keys,
                                              spend=self.worker.spend)
        except OutputAlreadyMadeError as exc:
            made = yield Call(partial(self.ledger.finished, exc.key), kind="ledger")
            if made is None:
                raise
            return ItemOutcome(reused=made)
        winner = _winning_attempt(response)
        position = winner.attempt_number - 1 if winner else 0
        served_by = flatten_chain(config)[position]
        try:
            stored = yield Call(
                partial(self.media.store, self.job.modality, keys[position], response, _pcm_rate(request),
                        timeout=float(served_by.timeout)),
                kind="fetch",
            )
            yield Call(
                partial(
                    self.ledger.record_done, keys[position], self.job.modality, stored,
                    provider=winner.provider if winner else None, model=winner.model if winner else None,
                    is_mock=response.is_mock, raw_response_json=self._raw_json(response),
                ),
                kind="ledger",
            )
        except (MediaStoreError, LedgerUnavailableError) as exc:
            return ItemOutcome(response=response, store_error=exc)
        return ItemOutcome(response=response, stored=stored)

    def _first_finished(self, keys: list[str]) -> LedgerEntry | None:
        """The done record of the earliest config in the chain that already made this output."""
        for key in dict.fromkeys(keys):
            entry = self.ledger.finished(key)
            if entry is not None:
                return entry
        return None

    def _request_for(self, row: PromptRow) -> Any:
        request = REQUEST_TYPES[self.job.modality].model_validate_json(row.request_json or "{}")
        return load_row_media(request, self.media_policy, self.storage_options, session=self.worker.session)

    # -- results (on the DoFn thread) ----------------------------------------------------

    def _rows_for(self, results: list[WindowResult]) -> Iterator[ResultRow]:
        for result in results:
            pending = self.pending.pop(result.item_id)
            rows = list(self._result_rows(result, pending))
            for row in rows:
                self._count(row)
                yield row
            self.latency.update(int(1000 * (result.finished - pending.started)))

    def _result_rows(self, result: WindowResult, pending: _Pending) -> Iterator[ResultRow]:
        outcome: ItemOutcome | None = result.response
        for index, row in enumerate(pending.rows):
            duplicate = index > 0
            if result.error is not None:
                made = self._failed_row(row, result.error)
            elif outcome.reused is not None:
                made = self._reused_row(row, outcome.reused)
            elif outcome.store_error is not None:
                made = self._failed_row(row, outcome.store_error, response=outcome.response)
            else:
                made = self._completed_row(row, outcome, reused=duplicate)
            yield made if duplicate else _with_cost(made)

    def _base(self, row: PromptRow) -> dict[str, Any]:
        return {
            "row_id": row.row_id,
            "source": row.source,
            "request_key": row.key,
            "modality": row.modality,
            "prompt": row.prompt,
            "config_name": row.config_name,
            "request_json": row.request_json,
            "run_id": self.run_id,
            "finished_at": utc_now(),
        }

    def _completed_row(self, row: PromptRow, outcome: ItemOutcome, reused: bool) -> ResultRow:
        response = outcome.response
        winner = _winning_attempt(response)
        return ResultRow(
            **self._base(row),
            status="completed",
            reused=reused,
            provider=winner.provider if winner else None,
            model=winner.model if winner else None,
            media=outcome.stored,
            is_mock=response.is_mock,
            raw_response_json=self._raw_json(response),
            execution=response.execution_metadata,
        )

    def _reused_row(self, row: PromptRow, entry: LedgerEntry) -> ResultRow:
        return ResultRow(
            **self._base(row),
            status="completed",
            reused=True,
            provider=entry.provider,
            model=entry.model,
            media=entry.media,
            is_mock=entry.is_mock,
            raw_response_json=entry.raw_response_json,
        )

    def _failed_row(self, row: PromptRow, error: BaseException, response: Any = None) -> ResultRow:
        if isinstance(error, MediagenError):
            error.redact(self.worker.secrets)
        execution = getattr(error, "execution_metadata", None) or getattr(response, "execution_metadata", None)
        attempts = execution.attempts if execution else []
        ran = [a for a in attempts if a.status != "skipped"] or attempts
        last = ran[-1] if ran else None
        message = str(error.message) if isinstance(error, MediagenError) else str(error)
        return ResultRow(
            **self._base(row),
            status="invalid" if isinstance(error, RowMediaError) else "failed",
            provider=last.provider if last else None,
            model=last.model if last else None,
            error_type=type(error).__name__,
            error_message=self.worker.secrets.redact(message),
            is_mock=bool(last and last.is_mock),
            raw_response_json=self._raw_json(response) if response is not None else None,
            execution=execution,
        )

    def _raw_json(self, response: Any) -> str | None:
        raw = getattr(response, "raw_response", None)
        if not raw:
            return None
        return self.worker.secrets.redact(json.dumps(_shorten(raw), default=str))

    def _count(self, row: ResultRow) -> None:
        status = "reused" if row.reused else row.status
        self.rows_counter[status].inc()
        Metrics.counter(NAMESPACE, f"{row.provider}/{row.model}/{status}").inc()
        if self.progress is not None:
            self.progress.finished(status, row.cost_usd)


def _with_cost(row: ResultRow) -> ResultRow:
    """``row`` with the cost of its attempts in this run (rows sharing a request carry it
    once: on the first row, the others cost nothing)."""
    attempts = row.execution.attempts if row.execution is not None else []
    cost = total_cost((a.cost_usd, a.cost_source) for a in attempts)
    return row.model_copy(update={"cost_usd": cost.usd, "cost_source": cost.source})


def _winning_attempt(response: Any) -> Any:
    metadata = getattr(response, "execution_metadata", None)
    if metadata is None or metadata.successful_attempt is None:
        return None
    return metadata.attempts[metadata.successful_attempt - 1]


def _pcm_rate(request: Any) -> int | None:
    fmt = getattr(request, "output_format", None)
    if fmt is None or fmt.format != "pcm":
        return None
    return fmt.sample_rate or 44100


def _shorten(value: Any) -> Any:
    """The raw response without its bulk: long strings (base64 media) are elided."""
    if isinstance(value, str) and len(value) > MAX_RAW_STRING:
        return f"<{len(value)} characters omitted>"
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes omitted>"
    return value


def invalid_result(row: PromptRow, run_id: str) -> ResultRow:
    """The results-table row for an input row that never became a request."""
    return ResultRow(
        row_id=row.row_id,
        source=row.source,
        modality=row.modality,
        prompt=row.prompt,
        config_name=row.config_name,
        status="invalid",
        error_type="InvalidRow",
        error_message=row.error,
        run_id=run_id,
        finished_at=utc_now(),
    )
