"""The job ledger under ``<output>/_ledger/``: the pipeline's "never pay twice" protocol.

Per output key (``providers.core.keys.output_key``: the request under one config):

    _ledger/<key>.json                     done: where the media lies and what it measured
    _ledger/<key>/claim-<generation>.json  a worker's claim on paying for the key

The caller looks for the done record first; a worker pays for a key only while it holds
its newest claim generation, created with a
create-only write (exactly one writer wins on local disk, GCS and S3), and it records the
provider's job id in that claim the moment the submit returns. A claim carries a lease the
holder renews; what another worker finds decides what it does:

| newest claim found                     | what the finder does                                   |
|----------------------------------------|--------------------------------------------------------|
| none, or ``released``                  | create the next generation, then submit                |
| has a job (any state but released)     | follow that job (polls cost nothing), never resubmit   |
| ``claimed``, lease live                | wait: the holder is between submit and record          |
| ``claimed`` with lease expired, or     | ``PossiblyPaidError``: the row fails, nothing is sent, |
| ``uncertain`` (answer lost)            | unless the provider dedupes on an idempotency key or   |
|                                        | the user reruns with ``--resubmit_uncertain``          |
| unreadable                             | ``PossiblyPaidError`` naming the file                  |

Once a ledger write fails the ledger refuses new claims (``LedgerUnavailableError``):
jobs already submitted are still followed, nothing new is paid for unrecorded.

The done index. Every done record a worker writes (or reads from a run that indexed
none) is also buffered and written, per bundle, as a Parquet part under
``_ledger/index/parts/``; the run's finalize merges its parts into
``_ledger/index/<run_id>.parquet``. A worker loads every index file once (one listing,
a few reads), and lists a media folder once, so a rerun reuses a key with no request of
its own; the per-key read stays the fallback for keys no index holds (a crashed run's
last records, another run still going) and for media the listing does not show.
The index only ever says "done": a stale or missing index costs reads, never a payment.
Per-key done records stay too: claims and the race checks read them one key at a time,
and one file per bundle instead would make every such check read a whole part.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from pydantic import ValidationError

from providers.core.claims import Claim, ReleaseOutcome
from providers.errors import LedgerUnavailableError, OutputAlreadyMadeError, PossiblyPaidError
from schemas import JobHandle, utc_now
from schemas.results import ClaimRecord, LedgerEntry, StoredMedia, media_relpath

from .storage import Storage

log = logging.getLogger(__name__)

LEDGER_DIR = "_ledger"
DEFAULT_LEASE_SECONDS = 300.0
"""How long a claim stays live without a renewal. The holder renews it every third of
that; a crashed holder's claim is taken over (or reported uncertain) once it lapses."""
WAIT_SECONDS = 1.0
"""How often a worker waiting on another's live claim looks again."""
RACE_SECONDS = 0.05
"""How soon a worker that lost a create race looks at the winner's claim."""
FINAL_STATES = frozenset({"released"})


INDEX_DIR = f"{LEDGER_DIR}/index"
"""Compact done records: ``<run_id>.parquet`` per finished run (key -> done record JSON)."""
INDEX_PARTS_DIR = f"{INDEX_DIR}/parts"
"""Index parts flushed by workers while a run goes; the run's finalize merges its own."""
INDEX_FLUSH_ENTRIES = 2000
"""Done records a worker buffers before writing an index part (a few MB)."""


def done_path(key: str) -> str:
    return f"{LEDGER_DIR}/{key}.json"


def claim_dir(key: str) -> str:
    return f"{LEDGER_DIR}/{key}"


def claim_path(key: str, generation: int) -> str:
    return f"{claim_dir(key)}/claim-{generation:06d}.json"


def _encode(model: Any) -> bytes:
    return model.model_dump_json(exclude_none=True).encode("utf-8")


class SortedNames:
    """A set of ASCII names as one sorted NumPy byte array: a few bytes per name instead of
    a Python string each (a 1M-key index stays tens of MB)."""

    def __init__(self, names: Iterable[str]) -> None:
        import numpy as np

        self._names = np.sort(np.array([n.encode("ascii") for n in names], dtype=bytes))

    def position(self, name: str) -> int:
        """Where ``name`` is in the sorted array, or -1."""
        needle = name.encode("ascii")
        at = int(self._names.searchsorted(needle))  # the method: half the cost of np.searchsorted's wrapper
        return at if at < len(self._names) and self._names[at] == needle else -1

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.isascii() and self.position(name) >= 0

    def __len__(self) -> int:
        return len(self._names)


class DoneIndex:
    """Done records of earlier runs, read from ``_ledger/index/`` once per worker process:
    key -> done record, held as sorted keys plus one Arrow string column (no Python object
    per key). Later runs' records win over earlier ones."""

    def __init__(self, keys: list[str], entries: Any) -> None:
        import numpy as np

        import pyarrow as pa

        order = np.argsort(np.array([k.encode("ascii") for k in keys], dtype=bytes), kind="stable")
        self._keys = SortedNames(keys[i] for i in order) if keys else SortedNames([])
        # The entries' bytes and offsets, read by slicing: an Arrow scalar per lookup costs more.
        taken = (entries.take(order) if keys else entries).cast(pa.large_string())
        _, offsets, data = taken.buffers()
        self._offsets = np.frombuffer(offsets, dtype=np.int64)[taken.offset:taken.offset + len(taken) + 1] \
            if offsets is not None else np.zeros(1, np.int64)
        self._data = memoryview(data) if data is not None else memoryview(b"")

    @classmethod
    def load(cls, storage: Storage) -> "DoneIndex":
        """Every index file and part under the output root (one LIST per folder)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        paths = sorted(p for folder in (INDEX_DIR, INDEX_PARTS_DIR) for p in storage.list(folder)
                       if p.endswith(".parquet"))
        latest: dict[str, int] = {}
        keys: list[str] = []
        chunks = []
        for path in paths:
            try:
                with storage.fs.open(storage.path(path), "rb") as handle:
                    table = pq.read_table(handle, columns=["key", "entry", "updated_at"])
            except (OSError, pa.ArrowException) as exc:
                log.warning("ledger index %s is unreadable (%s); its keys are read one by one", storage.uri(path), exc)
                continue
            chunks.append(table)
        if not chunks:
            return cls([], pa.array([], pa.string()))
        table = pa.concat_tables(chunks).sort_by([("updated_at", "ascending")])
        for key in table.column("key").to_pylist():
            if key in latest:
                keys[latest[key]] = ""  # superseded by a later record of the same key
            latest[key] = len(keys)
            keys.append(key)
        del latest
        keep = [i for i, key in enumerate(keys) if key]
        entries = table.column("entry").combine_chunks().take(pa.array(keep, pa.int64()))
        return cls([keys[i] for i in keep], entries)

    def get(self, key: str) -> bytes | None:
        """The done record JSON of ``key``, or None."""
        at = self._keys.position(key) if key.isascii() else -1
        return None if at < 0 else self._data[self._offsets[at]:self._offsets[at + 1]].tobytes()

    def __len__(self) -> int:
        return len(self._keys)


INDEX_SCHEMA_FIELDS = (("key", "string"), ("entry", "string"), ("updated_at", "string"))


def index_table(entries: list[tuple[str, str, str]]) -> Any:
    """(key, done record JSON, updated_at ISO) rows as an index table."""
    import pyarrow as pa

    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in INDEX_SCHEMA_FIELDS])
    columns = list(zip(*entries)) if entries else [[] for _ in INDEX_SCHEMA_FIELDS]
    return pa.table([pa.array(list(c), pa.string()) for c in columns], schema=schema)


def write_index_part(storage: Storage, run_id: str, entries: list[tuple[str, str, str]]) -> str:
    """Write one index part of this run; returns its path."""
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(index_table(entries), buffer, compression="zstd")
    path = f"{INDEX_PARTS_DIR}/{run_id}-{uuid.uuid4().hex}.parquet"
    storage.write_bytes(path, buffer.getvalue())
    return path


def compact_index(storage: Storage, run_id: str) -> int:
    """Merge this run's index parts into ``_ledger/index/<run_id>.parquet`` (streamed row
    group by row group), then remove the parts. Returns how many records it holds."""
    import os
    import tempfile

    import pyarrow.parquet as pq

    parts = sorted(p for p in storage.list(INDEX_PARTS_DIR)
                   if p.rsplit("/", 1)[-1].startswith(f"{run_id}-") and p.endswith(".parquet"))
    if not parts:
        return 0
    rows = 0
    with tempfile.TemporaryDirectory(prefix="mediagen-index-") as spool:
        merged = os.path.join(spool, "index.parquet")
        with pq.ParquetWriter(merged, index_table([]).schema, compression="zstd") as writer:
            for path in parts:
                with storage.fs.open(storage.path(path), "rb") as handle:
                    part = pq.ParquetFile(handle)
                    for group in range(part.num_row_groups):
                        table = part.read_row_group(group)
                        rows += table.num_rows
                        writer.write_table(table)
        storage.put_file(merged, f"{INDEX_DIR}/{run_id}.parquet")
    for path in parts:  # only after the merged file exists: a crash in between loses nothing
        storage.delete(path)
    storage.remove_empty_dir(INDEX_PARTS_DIR)
    return rows


class InFlightKeys:
    """Request keys being generated by some item of this worker process: a second item
    with the same key waits for the first, then finds its done record (``reused``)."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def take(self, key: str, owner: str) -> bool:
        """Make ``owner`` the key's generator unless another item is; True when it is."""
        with self._lock:
            return self._owners.setdefault(key, owner) == owner

    def release(self, key: str, owner: str) -> None:
        with self._lock:
            if self._owners.get(key) == owner:
                del self._owners[key]


@dataclass
class _Held:
    """A claim this worker holds: which chain holds it, its current record, and the lock
    that orders writes of that one claim (writes of different claims run in parallel)."""

    holder: str
    record: ClaimRecord
    lock: threading.Lock = field(default_factory=threading.Lock)


class Ledger:
    """Claims, job records and done records under one output root (see the module docstring).

    One instance serves one worker process (it is the ``JobLedger`` the orchestrator
    consults); ``holder`` tells apart the chains running in it, so two items of the same
    process never both pay for one key.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        run_id: str = "",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        resubmit_uncertain: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.storage = storage
        self.run_id = run_id
        self.lease = timedelta(seconds=lease_seconds)
        self.resubmit_uncertain = resubmit_uncertain
        self.clock = clock
        self.worker = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.broken: str | None = None
        """Why ledger writes failed, once they have: no new claims from then on."""
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        self.in_flight = InFlightKeys()
        self._index: DoneIndex | None = None
        self._media_names: dict[str, SortedNames] = {}
        self._index_lock = threading.Lock()
        self._index_buffer: list[tuple[str, str, str]] = []
        self._reopened: set[str] = set()  # keys --regenerate set aside: their index entries are stale
        self._root: str | None = None  # what relative media uris are relative to (storage.uri(""), once)

    # -- reading ---------------------------------------------------------------------

    def finished(self, key: str) -> LedgerEntry | None:
        """The done record for ``key`` when every media object it names still exists.

        An unreadable record raises ``PossiblyPaidError`` naming it (the output was paid
        for once); with ``resubmit_uncertain`` it is set aside and treated as absent."""
        indexed = self.indexed(key)
        if indexed is not None:
            return indexed
        path = done_path(key)
        try:
            data = self.storage.read_bytes(path)
        except FileNotFoundError:
            return None
        try:
            entry = LedgerEntry.model_validate_json(data)
        except ValidationError as exc:
            return self._unreadable_done(path, exc)
        if not self._media_exist(entry):
            return None
        if entry.run_id != self.run_id:
            self._remember(entry, data)  # the next run finds it in this run's index
        return entry

    # -- the done index (a rerun reads no record one by one) ---------------------------------

    def indexed(self, key: str) -> LedgerEntry | None:
        """The indexed done record of ``key`` whose media the listing of its folder shows,
        with no per-key store request; None sends the caller to the per-key read
        (:meth:`finished`: not indexed, media not listed, unreadable, set aside by ``reopen``)."""
        data = None if key in self._reopened else self.index().get(key)
        if data is None:
            return None
        try:
            entry = LedgerEntry.model_validate_json(data)
        except ValidationError:
            return None
        return entry if entry.key == key and self._media_listed(entry) else None

    def index(self) -> DoneIndex:
        """Earlier runs' done records, loaded on first use (once per worker process)."""
        loaded = self._index
        if loaded is not None:  # once set it never changes: no lock on a rerun's every row
            return loaded
        with self._index_lock:
            if self._index is None:
                self._index = DoneIndex.load(self.storage)
                log.info("ledger index: %d done records", len(self._index))
            return self._index

    def _media_listed(self, entry: LedgerEntry) -> bool:
        if not entry.media:
            return False
        if self._root is None:
            self._root = self.storage.uri("")
        try:
            paths = [media_relpath(media.uri, self._root) for media in entry.media]
        except ValueError:
            return False
        for path in paths:
            folder, _, name = path.rpartition("/")
            names = self._media_names.get(folder)
            if names is None:
                with self._index_lock:
                    names = self._media_names.get(folder)
                    if names is None:
                        names = SortedNames(p.rsplit("/", 1)[-1] for p in self.storage.list(folder))
                        self._media_names[folder] = names
            if name not in names:
                return False
        return True

    def _remember(self, entry: LedgerEntry, data: bytes) -> None:
        with self._index_lock:
            self._index_buffer.append((entry.key, data.decode("utf-8"), entry.updated_at.isoformat()))
            full = len(self._index_buffer) >= INDEX_FLUSH_ENTRIES
        if full:
            self.flush_index()

    def flush_index(self) -> None:
        """Write the done records buffered since the last flush as an index part. Index
        parts only speed up later runs: a failed write is logged, never raised."""
        with self._index_lock:
            entries, self._index_buffer = self._index_buffer, []
        if not entries:
            return
        try:
            write_index_part(self.storage, self.run_id, entries)
        except OSError as exc:
            log.warning("could not write a ledger index part (%s); later runs read those %d records one by one",
                        exc, len(entries))

    def _unreadable_done(self, path: str, exc: ValidationError) -> None:
        reason = f"ledger entry {self.storage.uri(path)} is unreadable ({exc.error_count()} problems)"
        if not self.resubmit_uncertain:
            raise PossiblyPaidError(f"{reason}; its output was paid for once. Remove the file or rerun with "
                                    "--resubmit_uncertain to generate it again")
        log.warning("%s; set aside because of --resubmit_uncertain", reason)
        self.storage.move(path, f"{path}.unreadable-{uuid.uuid4().hex[:8]}")
        return None

    def _media_exist(self, entry: LedgerEntry) -> bool:
        if not entry.media:
            return False
        try:
            root = self.storage.uri("")  # relative uris; absolute ones of this root, moved or not
            return all(self.storage.exists(media_relpath(media.uri, root)) for media in entry.media)
        except ValueError:  # recorded under another root: not ours to reuse
            return False

    def _newest_claim(self, key: str) -> tuple[int, ClaimRecord | None, str | None]:
        """(generation, record, problem) of the newest claim; generation -1 when there is none."""
        names = [p.rsplit("/", 1)[-1] for p in self.storage.list(claim_dir(key))]
        generations = sorted(int(n[6:12]) for n in names if n.startswith("claim-") and n.endswith(".json") and n[6:12].isdigit())
        if not generations:
            return -1, None, None
        newest = generations[-1]
        path = claim_path(key, newest)
        try:
            return newest, ClaimRecord.model_validate_json(self.storage.read_bytes(path)), None
        except FileNotFoundError:
            return newest, None, f"claim {self.storage.uri(path)} vanished while being read"
        except ValidationError as exc:
            return newest, None, f"claim {self.storage.uri(path)} is unreadable ({exc.error_count()} problems)"

    # -- the JobLedger protocol ----------------------------------------------------------

    def claim(self, key: str, holder: str, idempotent: bool) -> Claim:
        """May ``holder`` pay for ``key`` now? See the module docstring's table."""
        with self._lock:
            held = self._held.get(key)
        if held is not None:
            if held.record.job is not None:
                return Claim("follow", job=held.record.job)
            if held.holder != holder:
                return Claim("wait", wait_seconds=WAIT_SECONDS)
            return Claim("submit", idempotency_key=held.record.idempotency_key)
        if self.broken:
            raise LedgerUnavailableError(f"nothing new is submitted: {self.broken}")
        generation, record, problem = self._newest_claim(key)
        if problem is not None:
            return self._take_over_uncertain(key, holder, generation, None, problem)
        if record is None or record.state in FINAL_STATES:
            return self._create(key, holder, generation + 1, job=None, idempotency_key=None)
        # Someone holds or held the key: its media may be done by now (the caller looked
        # before claiming; a claim is never removed, so "no claim" means "never started").
        if self.finished(key) is not None:
            raise OutputAlreadyMadeError(f"output {key} was made by another run or worker", key=key)
        if record.job is not None:
            return Claim("follow", job=record.job)
        if record.state == "claimed" and self._is_live(record):
            return Claim("wait", wait_seconds=WAIT_SECONDS)
        why = (f"claimed by run {record.run_id} at {record.claimed_at:%Y-%m-%d %H:%M:%S}Z, "
               f"which recorded no job ({'its submit answer was lost' if record.state == 'uncertain' else 'it stopped'})")
        inherited = record.idempotency_key if idempotent else None
        return self._take_over_uncertain(key, holder, generation, inherited, why)

    def _take_over_uncertain(self, key: str, holder: str, generation: int, idempotency_key: str | None, why: str) -> Claim:
        if idempotency_key is None and not self.resubmit_uncertain:
            raise PossiblyPaidError(
                f"{why}: the provider may have been paid; not submitted again "
                "(rerun with --resubmit_uncertain to pay again on purpose)"
            )
        # With the first claim's idempotency key the provider finds that job instead of
        # starting another; with --resubmit_uncertain the user accepts paying again.
        return self._create(key, holder, generation + 1, job=None, idempotency_key=idempotency_key)

    def _create(
        self, key: str, holder: str, generation: int, *, job: JobHandle | None, idempotency_key: str | None
    ) -> Claim:
        now = self.clock()
        record = ClaimRecord(
            key=key, generation=generation, state="submitted" if job else "claimed", run_id=self.run_id,
            worker=self.worker, claimed_at=now, lease_until=now + self.lease, job=job,
            idempotency_key=idempotency_key or f"mediagen-{key}-{generation}", updated_at=now,
        )
        try:
            created = self.storage.create_only(claim_path(key, generation), _encode(record))
        except OSError as exc:
            raise self._break(f"cannot write the ledger under {self.storage.uri(LEDGER_DIR)}: {exc}") from None
        if not created:
            return Claim("wait", wait_seconds=RACE_SECONDS)  # another worker won this generation: look again
        with self._lock:
            self._held[key] = _Held(holder, record)
        self._start_heartbeat()
        return Claim("submit", idempotency_key=record.idempotency_key)

    def record_job(self, key: str, holder: str, job: JobHandle) -> None:
        """The provider accepted ``job`` for ``key``: write it into the held claim."""
        self._update(key, state="submitted", job=job)

    def release(self, key: str, holder: str, outcome: ReleaseOutcome) -> None:
        """Nothing more will come of the held claim (``uncertain``: maybe something will)."""
        self._finish(key, "uncertain" if outcome == "uncertain" else "released")

    def abandon(self, key: str, holder: str) -> None:
        """Stop following the held claim's job; a rerun re-attaches to it."""
        self._finish(key, "abandoned")

    def record_done(
        self, key: str, modality: str, media: list[StoredMedia], *, provider: str | None, model: str | None,
        is_mock: bool, raw_response_json: str | None,
    ) -> None:
        """Write the done record. The key's claims stay: removing them would let a worker
        that looked for the done record a moment earlier see no claim and pay again."""
        entry = LedgerEntry(
            key=key, modality=modality, provider=provider, model=model, is_mock=is_mock,  # type: ignore[arg-type]
            media=media, raw_response_json=raw_response_json, run_id=self.run_id, updated_at=self.clock(),
        )
        data = _encode(entry)
        try:
            self.storage.write_bytes(done_path(key), data)
        except OSError as exc:
            raise self._break(f"cannot write the ledger under {self.storage.uri(LEDGER_DIR)}: {exc}") from None
        with self._lock:
            self._held.pop(key, None)
        self._remember(entry, data)

    def reopen(self, key: str) -> bool:
        """``--regenerate``: set ``key``'s done record aside (``<key>.json.replaced-<id>``) and
        close its claims, so the next claim pays for it again on purpose. A key this run
        already claimed is left alone (False): one run never pays twice for a key."""
        self._reopened.add(key)
        generation, record, _ = self._newest_claim(key)
        if record is not None and record.run_id == self.run_id:
            return False
        path = done_path(key)
        if self.storage.exists(path):
            self.storage.move(path, f"{path}.replaced-{uuid.uuid4().hex[:8]}")
        now = self.clock()
        closed = ClaimRecord(key=key, generation=generation + 1, state="released", run_id=self.run_id,
                             worker=self.worker, claimed_at=now, lease_until=now, updated_at=now)
        return self.storage.create_only(claim_path(key, generation + 1), _encode(closed))

    # -- held claims -------------------------------------------------------------------

    def _update(self, key: str, **changes: Any) -> None:
        with self._lock:
            held = self._held.get(key)
        if held is None:
            return
        with held.lock:
            held.record = held.record.model_copy(update={**changes, "updated_at": self.clock()})
            self._write_claim(held.record)

    def _finish(self, key: str, state: str) -> None:
        with self._lock:
            held = self._held.pop(key, None)
        if held is None:
            return
        with held.lock:
            held.record = held.record.model_copy(update={"state": state, "updated_at": self.clock()})
            try:
                self._write_claim(held.record)
            except LedgerUnavailableError:
                # Safe to lose: the claim's job (if any) is re-attached, a claim without one is uncertain.
                log.warning("could not mark the claim on %s %s", key, state)

    def _write_claim(self, record: ClaimRecord) -> None:
        """Overwrite the held generation (only its holder ever does)."""
        try:
            self.storage.write_bytes(claim_path(record.key, record.generation), _encode(record))
        except OSError as exc:
            raise self._break(f"cannot write the ledger under {self.storage.uri(LEDGER_DIR)}: {exc}") from None

    def _is_live(self, record: ClaimRecord) -> bool:
        if record.lease_until <= self.clock():
            return False
        host, _, rest = record.worker.partition("/")
        pid = rest.partition("/")[0]
        if host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid)):
            return False  # its process on this machine is gone: no need to wait out the lease
        return True

    def _break(self, reason: str) -> LedgerUnavailableError:
        if not self.broken:
            log.error("%s; no new jobs will be submitted", reason)
            self.broken = reason
        return LedgerUnavailableError(f"nothing new is submitted: {reason}")

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is not None:
                return
            self._heartbeat = threading.Thread(target=self._renew_leases, name="mediagen-ledger-lease", daemon=True)
            self._heartbeat.start()

    def _renew_leases(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            with self._lock:
                keys = [key for key, held in self._held.items() if held.record.state in ("claimed", "submitted")]
                if not keys:  # nothing to renew: stop; the next claim starts a fresh heartbeat
                    self._heartbeat = None
                    return
            for key in keys:
                try:
                    self._update(key, lease_until=self.clock() + self.lease)
                except LedgerUnavailableError:
                    return  # leases lapse; other workers then treat the claims as the table says

    def close(self) -> None:
        """Stop renewing leases (claims still held lapse after ``lease_seconds``); write the
        buffered index records."""
        self._stop.set()
        self.flush_index()

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a Ledger belongs to one worker process; build one per process")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
