"""Generate: the DoFn around the orchestrator.

Per request key (rows with the same key share one generation) it checks the ledger
(media already made: the rows are ``completed`` with ``reused``; a job in flight:
re-attach to it), otherwise runs the fallback chain through a window that keeps many
jobs in flight under per-provider limits, stores the media and writes the row.
Results (``transforms.rows``) and Beam metrics (``transforms.metrics``) are produced on
the DoFn's own thread.

A done record made by the mock for a chain whose first config is a real provider (a
placeholder) is not reused when that provider can serve now; ``regenerate`` (the
``--regenerate`` option) redoes more on purpose: ``mock`` every mock-made result, ``all``
everything (paying again). ``failed`` is handled by the ledger (see ``LedgerOptions``).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any, Iterator, Literal

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.shared import Shared

from providers.core.driver import Call, Sleep, Steps
from providers.errors import LedgerUnavailableError, OutputAlreadyMadeError
from providers.core.limits import LimiterRegistry
from providers.core.redaction import install_log_redaction
from providers.core.orchestrator import RetryPolicy, chain_keys, chain_steps, flatten_chain
from providers.core.pricing import PriceBook, Spend
from providers.core.window import JobWindow, WindowResult
from schemas import ConfigEntry, JobConfig
from schemas.results import LedgerEntry, ResultRow, StoredMedia

from .ledger import DEFAULT_LEASE_SECONDS, Ledger
from .media_store import MediaStore, MediaStoreError
from .metrics import NAMESPACE, MetricsCollector
from .read import REQUEST_TYPES, PromptRow
from .rows import (ItemOutcome, RowBuilder, first_can_serve, invalid_result, is_placeholder, reuse_decision,
                   winning_attempt)
from .row_media import MediaPolicy, kind_of, load_row_media, media_values
from .secrets import KeyResolver
from .storage import Storage
from .store_counts import CountingStorage

log = logging.getLogger(__name__)

SAME_KEY_WAIT_SECONDS = 0.2
"""How often an item waits for another item of this process generating the same key."""

Regenerate = Literal["failed", "mock", "all"]
REGENERATE_CHOICES: tuple[str, ...] = ("failed", "mock", "all")
__all__ = ["GenerateDoFn", "ItemOutcome", "LedgerOptions", "NAMESPACE", "WorkerClients", "invalid_result"]


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

    from providers.core.limits import RateLimiterAdapter

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
        regenerate: Regenerate | None = None,
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
        if regenerate is not None and regenerate not in REGENERATE_CHOICES:
            raise ValueError(f"regenerate: expected one of {', '.join(REGENERATE_CHOICES)}, got {regenerate!r}")
        self.regenerate = regenerate
        self.metrics = MetricsCollector(progress)

    # -- lifecycle -------------------------------------------------------------------

    _SETUP_STATE = ("worker", "storage", "ledger", "media", "media_policy", "configs", "chains", "retry", "window",
                    "pending", "rows", "can_serve", "_owner_prefix", "_owners")

    def __getstate__(self) -> dict[str, Any]:
        # What setup() builds (resolved keys inside configs, threads, sessions) never travels.
        return {k: v for k, v in self.__dict__.items() if k not in self._SETUP_STATE}

    def setup(self) -> None:
        self.worker: WorkerClients = self.shared.acquire(self._worker_clients, tag=f"mediagen-worker-{self.run_id}")
        self.storage = CountingStorage(self.output_root, self.storage_options)
        self.ledger = self.worker.ledger
        self.media = MediaStore(self.storage, self.worker.session)
        self.media_policy = MediaPolicy.from_job(self.job)
        self.configs = {
            name: entry.build(self.job.modality, self.worker.resolve_key)
            for name, entry in zip(self.job.config_names, self.job.configs)
        }
        self.chains = {name: flatten_chain(config) for name, config in self.configs.items()}
        # Owner ids for InFlightKeys: a random prefix per instance (an id() may be reused by a
        # later instance while an abandoned one's key is still held), a counter per item.
        self._owner_prefix, self._owners = uuid.uuid4().hex, itertools.count()
        retry = self.job.retry
        self.retry = RetryPolicy(max_retries=retry.max_retries, base_delay=retry.base_delay, max_delay=retry.max_delay)
        self.window = JobWindow(
            self.worker.limiters,
            max_in_flight=self.job.window.max_in_flight,
            threads=self.job.window.threads,
        )
        self.pending: dict[str, _Pending] = {}
        names = [None, *self.job.config_names]
        self.can_serve = {name: first_can_serve(self._config(name)) for name in names}
        self.rows = RowBuilder(self.run_id, self.storage.uri(""), self.worker.secrets)
        if self.progress is not None:
            self.progress.watch(self.worker.limiters)

    def _config(self, name: str | None) -> Any:
        """The built chain a row names (None: the job's first config)."""
        return self.configs[name or self.job.config_names[0]]

    def _chain(self, name: str | None) -> list[Any]:
        """The configs of that chain, flattened (``flatten_chain``), in order."""
        return self.chains[name or self.job.config_names[0]]

    def _worker_clients(self) -> WorkerClients:
        """What every DoFn instance of this process shares, the ledger (its claims, leases
        and breaker) among it."""
        storage = CountingStorage(self.output_root, self.storage_options)
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

    def process(self, row: PromptRow) -> Iterator[ResultRow]:
        """Start ``row``'s generation, or attach the row to the same request already pending
        here (no GroupByKey before this DoFn: duplicates meet here, in this worker's
        in-flight keys, or in the ledger). Yields the rows of the items finished so far."""
        if self.progress is not None:
            self.progress.started(1)
        pending = self.pending.get(row.key)
        if pending is not None:
            pending.rows.append(row)  # shares that item's generation: a ``reused`` row
        elif (reused := self._indexed_row(row)) is not None:
            yield reused
        else:
            self.pending[row.key] = _Pending([row], time.time())
            self.window.add(row.key, self._deduped_steps(row.key, row))
        if self.pending:
            yield from self._rows_for(self.window.poll_results())

    def _indexed_row(self, row: PromptRow) -> ResultRow | None:
        """The rerun shortcut: the ``reused`` row of a request whose output the done index
        holds (loaded once per worker; no per-key store request), made here on the DoFn's
        thread with no trip through the window. None sends the row the full way: media to
        load before its keys are known, an earlier config of its chain no index shows done
        (only a per-key read can tell), or a record to redo or replace (``_first_finished``)."""
        started = time.time()
        try:
            if not len(self.ledger.index()):  # a first run: nothing to reuse, no decoding twice
                return None
            request = self._request_for(row)
            if any(kind_of(value) != "inline" for _, value in media_values(request)):
                return None
            keys = chain_keys(self.job.modality, self._config(row.config_name), request)
            found = self._first_indexed(keys, self._chain(row.config_name), self.can_serve.get(row.config_name, False))
        except Exception:  # noqa: BLE001 - the full path meets the same error and makes it the row's failure
            log.debug("rerun shortcut skipped for row %s", row.row_id, exc_info=True)
            return None
        if found is None:
            return None
        entry, placeholder = found
        made = self.rows.reused(row, entry, placeholder=placeholder)
        self.metrics.row(made)
        self.metrics.generation(int(1000 * (time.time() - started)))
        return made

    def _first_indexed(self, keys: list[str], chain: list[Any], can_serve: bool) -> tuple[LedgerEntry, bool] | None:
        """(done record, placeholder) when :meth:`_first_finished` would reuse it and the index
        alone shows it: the chain's first distinct key the index lacks ends the walk, as does a
        record that is not simply reused (redone, replaced: the full path does that)."""
        for position, key in _first_occurrences(keys):
            entry = self.ledger.indexed(key)
            if entry is None or self._decision(entry, chain, position, can_serve) != "reuse":
                return None
            return entry, is_placeholder(chain, position)
        return None

    def finish_bundle(self) -> Iterator[Any]:
        for result in self.window.drain():
            for made in self._rows_for([result]):
                yield GlobalWindows.windowed_value(made)
        self.ledger.flush_index()  # this bundle's done records, for the next run's index

    def _deduped_steps(self, key: str, row: PromptRow) -> Steps:
        """``_item_steps``, once no other item of this worker process generates ``key``: a
        second DoFn instance's item with the same key waits (a timer, no thread), then
        finds the first one's done record and is ``reused``."""
        owner = f"{self._owner_prefix}-{next(self._owners)}"
        while not self.ledger.in_flight.take(key, owner):
            yield Sleep(SAME_KEY_WAIT_SECONDS)
        try:
            return (yield from self._item_steps(key, row))
        finally:
            self.ledger.in_flight.release(key, owner)

    # -- one request key, as driver steps (runs in the window) ---------------------------

    def _item_steps(self, key: str, row: PromptRow) -> Steps:
        request = yield Call(partial(self._request_for, row), kind="cpu")  # decoding only: inline in the window
        if any(kind_of(value) != "inline" for _, value in media_values(request)):
            request = yield Call(partial(load_row_media, request, self.media_policy, self.storage_options,
                                         session=self.worker.session))
        config = self._config(row.config_name)
        keys = chain_keys(self.job.modality, config, request)
        chain = self._chain(row.config_name)
        done = yield Call(partial(self._first_finished, keys, chain, self.can_serve.get(row.config_name, False)),
                          kind="ledger")
        if done is not None:
            return ItemOutcome(reused=done[0], placeholder=is_placeholder(chain, done[1]))
        try:
            response = yield from chain_steps(self.job.modality, config, request, self.retry, ledger=self.ledger, keys=keys,
                                              spend=self.worker.spend, stream_media=True)
        except OutputAlreadyMadeError as exc:
            made = yield Call(partial(self.ledger.finished, exc.key), kind="ledger")
            if made is None:
                raise
            return ItemOutcome(reused=made, placeholder=exc.key in keys and is_placeholder(chain, keys.index(exc.key)))
        winner = winning_attempt(response)
        position = winner.attempt_number - 1 if winner else 0
        served_by = chain[position]
        try:  # one pool call: storing, then recording, without a hand-off back to the scheduler between
            stored = yield Call(
                partial(self._store_and_record, keys[position], response, winner, _pcm_rate(request),
                        float(served_by.timeout)),
                kind="fetch",
            )
        except (MediaStoreError, LedgerUnavailableError) as exc:
            return ItemOutcome(response=response, store_error=exc)
        return ItemOutcome(response=response, stored=stored, placeholder=is_placeholder(chain, position))

    def _store_and_record(self, key: str, response: Any, winner: Any, pcm_rate: int | None,
                          timeout: float) -> list[StoredMedia]:
        """Store the response's media, then record ``key`` as done in the ledger."""
        stored = self.media.store(self.job.modality, key, response, pcm_rate, timeout=timeout)
        stored = self.rows.relative(stored)  # table and ledger hold uris relative to the output root
        self.ledger.record_done(
            key, self.job.modality, stored,
            provider=winner.provider if winner else None, model=winner.model if winner else None,
            is_mock=response.is_mock, raw_response_json=self.rows.raw_json(response),
        )
        return stored

    def _first_finished(self, keys: list[str], chain: list[Any], can_serve: bool) -> tuple[LedgerEntry, int] | None:
        """The done record of the earliest config in the chain that already made this output
        (and that config's position), when it may be reused.

        A placeholder (made by the mock standing in for the chain's real first config) is
        not reused while that first config ``can_serve``. ``--regenerate mock`` reopens
        every record the mock made, ``--regenerate all`` every record, so the chain makes
        (and pays for) them anew; records this run wrote itself are never reopened."""
        for position, key in _first_occurrences(keys):
            entry = self.ledger.finished(key)
            if entry is None:
                continue
            decision = self._decision(entry, chain, position, can_serve)
            if decision == "redo":
                self.ledger.reopen(key)
            if decision != "reuse":
                continue
            return entry, position
        return None

    def _decision(self, entry: LedgerEntry, chain: list[Any], position: int, can_serve: bool) -> str:
        """What this run does with ``entry`` (made by ``chain[position]``): always ``reuse`` a
        record this run wrote itself, else as :func:`reuse_decision` says."""
        return "reuse" if entry.run_id == self.run_id else reuse_decision(chain, position, can_serve, self.regenerate)

    def _request_for(self, row: PromptRow) -> Any:
        """The row's request, decoded; media it names by URL or path are loaded by a later step."""
        return REQUEST_TYPES[self.job.modality].model_validate_json(row.request_json or "{}")

    # -- results (on the DoFn thread) ----------------------------------------------------

    def _rows_for(self, results: list[WindowResult]) -> Iterator[ResultRow]:
        for result in results:
            pending = self.pending.pop(result.item_id)
            for row in self.rows.rows_for(pending.rows, result.response, result.error):
                self.metrics.row(row)
                yield row
            self.metrics.generation(int(1000 * (result.finished - pending.started)))


def _first_occurrences(keys: list[str]) -> Iterator[tuple[int, str]]:
    """(position, key) of each key of a chain the first time it appears (configs of one
    chain may share an output key)."""
    for position, key in enumerate(keys):
        if key not in keys[:position]:
            yield position, key


def _pcm_rate(request: Any) -> int | None:
    fmt = getattr(request, "output_format", None)
    if fmt is None or fmt.format != "pcm":
        return None
    return fmt.sample_rate or 44100


def regenerate_notice(mode: str, storage: Storage) -> str:
    """What ``--regenerate mode`` will redo, said before the run starts (never silently)."""
    from .ledger import LEDGER_DIR

    done = sum(1 for path in storage.list(LEDGER_DIR) if path.endswith(".json"))
    if mode == "all":
        return (f"--regenerate all: every row is generated again and paid again; the {done} finished "
                f"output(s) recorded under {storage.uri(LEDGER_DIR)} are set aside, not reused")
    if mode == "mock":
        return (f"--regenerate mock: every result the mock made (among the {done} finished output(s)) is made "
                "again, trying the chain from its first config; other results are reused")
    return ("--regenerate failed: rows whose earlier submit may have been paid without a recorded job "
            "(PossiblyPaidError) are submitted again and may be paid again; other failed rows are retried as always")
