"""The ledger protocol, on every store it runs on: who may pay for an output key, and what
a second worker, a crashed worker's rerun, a lost answer or a failing store get.

The object stores are real emulators (moto's S3 server, fake-gcs-server): the create-only
writes the protocol rests on are the stores' own preconditions, not mocks."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from providers.errors import LedgerUnavailableError, OutputAlreadyMadeError, PossiblyPaidError
from schemas import JobHandle
from schemas.results import StoredMedia
from tests.transforms.conftest import start_fake_gcs, start_moto_s3
from transforms.ledger import (INDEX_DIR, INDEX_PARTS_DIR, InFlightKeys, Ledger, claim_dir, claim_path, compact_index,
                               done_path)
from transforms.storage import Storage

KEY = "ab" * 16
JOB = JobHandle(provider="fal", model="m", modality="video", job_id="req-1", poll_url="https://q/status")


@pytest.fixture(params=["local", "memory", "s3", "gcs"])
def root(request, tmp_path) -> tuple[str, dict]:
    """An empty output root on each kind of store."""
    if request.param == "local":
        return str(tmp_path / "out"), {}
    if request.param == "memory":
        return f"memory://ledger-{tmp_path.name}", {}
    store = start_moto_s3() if request.param == "s3" else start_fake_gcs()
    return store.fresh_root("ledger"), store.storage_options


def ledger_at(root: tuple[str, dict], **kwargs) -> Ledger:
    uri, options = root
    return Ledger(Storage(uri, options), run_id=kwargs.pop("run_id", "run-a"), **kwargs)


def stored_media(ledger: Ledger) -> list[StoredMedia]:
    ledger.storage.write_bytes(f"media/video/{KEY}.mp4", b"video")
    return [StoredMedia(uri=ledger.storage.uri(f"media/video/{KEY}.mp4"), content_type="video/mp4", bytes=5, sha256="0" * 64)]


class Clock:
    """A settable clock for leases (no test waits for wall time)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def foreign_worker(ledger: Ledger) -> None:
    """Make ``ledger`` look like a worker on another machine (its liveness is its lease alone)."""
    ledger.worker = f"elsewhere/1/{ledger.worker.rsplit('/', 1)[-1]}"


# -- one worker -----------------------------------------------------------------------------


def test_a_fresh_key_is_claimed_then_the_job_recorded_then_done(root):
    ledger = ledger_at(root)
    claim = ledger.claim(KEY, "h1", idempotent=False)
    assert claim.action == "submit" and claim.idempotency_key == f"mediagen-{KEY}-0"
    assert ledger.storage.exists(claim_path(KEY, 0))
    ledger.record_job(KEY, "h1", JOB)
    again = ledger.claim(KEY, "h1", idempotent=False)  # the next try of the same chain follows the paid job
    assert again.action == "follow" and again.job == JOB

    media = stored_media(ledger)
    ledger.record_done(KEY, "video", media, provider="fal", model="m", is_mock=False, raw_response_json="{}")
    assert ledger.finished(KEY).media == media
    # The claim stays (removing it would open a race); a late claimer is sent to the media.
    assert [p.rsplit("/", 1)[-1] for p in ledger.storage.list(claim_dir(KEY))] == ["claim-000000.json"]
    with pytest.raises(OutputAlreadyMadeError):
        ledger.claim(KEY, "h2", idempotent=False)
    with pytest.raises(OutputAlreadyMadeError):
        ledger_at(root, run_id="other").claim(KEY, "h3", idempotent=False)


def test_done_media_that_was_deleted_is_not_reused(root):
    ledger = ledger_at(root)
    media = [StoredMedia(uri=ledger.storage.uri(f"media/video/{KEY}.mp4"), content_type="video/mp4", bytes=5, sha256="0" * 64)]
    ledger.record_done(KEY, "video", media, provider="fal", model="m", is_mock=False, raw_response_json=None)
    assert ledger.finished(KEY) is None


def test_a_second_chain_in_the_same_process_waits_for_the_first(root):
    ledger = ledger_at(root)
    assert ledger.claim(KEY, "h1", idempotent=False).action == "submit"
    assert ledger.claim(KEY, "h2", idempotent=False).action == "wait"
    ledger.record_job(KEY, "h1", JOB)
    assert ledger.claim(KEY, "h2", idempotent=False) == ledger.claim(KEY, "h1", idempotent=False)


def test_a_rejected_submit_frees_the_key_for_the_next_generation(root):
    ledger = ledger_at(root)
    ledger.claim(KEY, "h1", idempotent=False)
    ledger.release(KEY, "h1", "rejected")
    claim = ledger.claim(KEY, "h1", idempotent=False)
    assert claim.action == "submit" and claim.idempotency_key == f"mediagen-{KEY}-1"


# -- two workers ----------------------------------------------------------------------------


def test_racing_workers_create_exactly_one_claim(root):
    ledgers = [ledger_at(root, run_id=f"run-{i}") for i in range(8)]
    start = threading.Barrier(len(ledgers))
    answers: list[str] = []

    def race(ledger: Ledger) -> None:
        start.wait()
        answers.append(ledger.claim(KEY, "h", idempotent=False).action)

    threads = [threading.Thread(target=race, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == ["submit"] + ["wait"] * 7


def test_a_live_foreign_claim_is_waited_on_then_its_job_followed(root):
    clock = Clock()
    first, second = ledger_at(root, clock=clock), ledger_at(root, run_id="run-b", clock=clock)
    foreign_worker(first)
    first.claim(KEY, "h1", idempotent=False)
    assert second.claim(KEY, "h2", idempotent=False).action == "wait"
    first.record_job(KEY, "h1", JOB)
    claim = second.claim(KEY, "h2", idempotent=False)
    assert claim.action == "follow" and claim.job == JOB


def test_a_lapsed_claim_without_a_job_is_possibly_paid_never_resubmitted(root):
    clock = Clock()
    crashed = ledger_at(root, run_id="crashed", lease_seconds=60, clock=clock)
    foreign_worker(crashed)
    crashed.claim(KEY, "h1", idempotent=False)
    rerun = ledger_at(root, run_id="rerun", lease_seconds=60, clock=clock)
    assert rerun.claim(KEY, "h", idempotent=False).action == "wait"  # the lease is still live
    clock.advance(61)
    with pytest.raises(PossiblyPaidError, match="claimed by run crashed"):
        rerun.claim(KEY, "h", idempotent=False)


def test_a_lapsed_claim_is_resubmitted_with_its_idempotency_key_or_on_request(root):
    clock = Clock()
    crashed = ledger_at(root, run_id="crashed", lease_seconds=60, clock=clock)
    foreign_worker(crashed)
    first_key = crashed.claim(KEY, "h1", idempotent=True).idempotency_key
    clock.advance(61)
    # The provider dedupes on the key: the same key finds the first job instead of paying again.
    retry = ledger_at(root, run_id="rerun", clock=clock).claim(KEY, "h", idempotent=True)
    assert retry.action == "submit" and retry.idempotency_key == first_key
    assert ledger_at(root, clock=clock).storage.exists(claim_path(KEY, 1))


def test_resubmit_uncertain_takes_over_a_lost_answer_with_a_new_generation(root):
    ledger = ledger_at(root)
    ledger.claim(KEY, "h1", idempotent=False)
    ledger.release(KEY, "h1", "uncertain")  # the submit's answer was lost: no lease to wait out
    with pytest.raises(PossiblyPaidError, match="answer was lost"):
        ledger_at(root, run_id="rerun").claim(KEY, "h", idempotent=False)
    claim = ledger_at(root, run_id="rerun", resubmit_uncertain=True).claim(KEY, "h", idempotent=False)
    assert claim.action == "submit" and claim.idempotency_key == f"mediagen-{KEY}-1"


def test_a_crashed_workers_job_is_followed_by_the_rerun(root):
    crashed = ledger_at(root, run_id="crashed")
    foreign_worker(crashed)
    crashed.claim(KEY, "h1", idempotent=False)
    crashed.record_job(KEY, "h1", JOB)
    claim = ledger_at(root, run_id="rerun").claim(KEY, "h", idempotent=False)
    assert claim.action == "follow" and claim.job == JOB


def test_a_claim_of_a_dead_local_process_is_not_waited_on(tmp_path):
    clock = Clock()
    crashed = Ledger(Storage(str(tmp_path)), run_id="crashed", clock=clock)
    crashed.worker = crashed.worker.split("/")[0] + "/999999999/dead"  # this machine, no such process
    crashed.claim(KEY, "h1", idempotent=False)
    with pytest.raises(PossiblyPaidError):
        Ledger(Storage(str(tmp_path)), run_id="rerun", clock=clock).claim(KEY, "h", idempotent=False)


def test_leases_are_renewed_while_held(tmp_path):
    ledger = Ledger(Storage(str(tmp_path)), run_id="a", lease_seconds=0.3)
    ledger.claim(KEY, "h1", idempotent=False)
    first = ledger.storage.read_bytes(claim_path(KEY, 0))
    renewed = threading.Event()

    def watch() -> None:
        for _ in range(200):
            if ledger.storage.read_bytes(claim_path(KEY, 0)) != first:
                renewed.set()
                return
            threading.Event().wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    watcher.join()
    ledger.close()
    assert renewed.is_set()


# -- bad entries and failing stores ---------------------------------------------------------


def test_an_unreadable_done_record_is_reported_not_paid_again(root):
    ledger = ledger_at(root)
    ledger.storage.write_bytes(done_path(KEY), b'{"state": "weird"}')
    with pytest.raises(PossiblyPaidError, match=r"_ledger/abab.*\.json is unreadable"):
        ledger.finished(KEY)
    assert ledger_at(root, resubmit_uncertain=True).finished(KEY) is None
    assert not ledger.storage.exists(done_path(KEY))  # set aside, not deleted


def test_an_unreadable_claim_is_reported_not_paid_again(root):
    ledger = ledger_at(root)
    ledger.storage.write_bytes(claim_path(KEY, 0), b"not json")
    with pytest.raises(PossiblyPaidError, match="claim-000000.json is unreadable"):
        ledger.claim(KEY, "h", idempotent=False)


class FailingWrites(Storage):
    """A store whose writes fail (a full disk, a read-only bucket)."""

    def write_bytes(self, relpath: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    def create_only(self, relpath: str, data: bytes) -> bool:
        raise OSError(28, "No space left on device")


def test_a_failing_store_stops_new_claims_for_good(tmp_path):
    ledger = Ledger(FailingWrites(str(tmp_path)), run_id="a")
    with pytest.raises(LedgerUnavailableError, match="No space left"):
        ledger.claim(KEY, "h", idempotent=False)
    with pytest.raises(LedgerUnavailableError, match="nothing new is submitted"):
        ledger.claim("cd" * 16, "h", idempotent=False)


def test_a_failing_job_record_trips_the_breaker(tmp_path):
    storage = Storage(str(tmp_path))
    ledger = Ledger(storage, run_id="a")
    ledger.claim(KEY, "h", idempotent=False)
    ledger.storage = FailingWrites(str(tmp_path))
    with pytest.raises(LedgerUnavailableError):
        ledger.record_job(KEY, "h", JOB)
    with pytest.raises(LedgerUnavailableError):
        ledger.claim("cd" * 16, "h", idempotent=False)


# -- the done index: a rerun reads no record one by one -------------------------------------


class Requests(Storage):
    """A store recording the per-key requests a reused key would cost."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str]] = []

    def read_bytes(self, relpath: str) -> bytes:
        self.calls.append(("read", relpath))
        return super().read_bytes(relpath)

    def exists(self, relpath: str) -> bool:
        self.calls.append(("exists", relpath))
        return super().exists(relpath)


def finished_run(root, run_id: str, keys: list[str]) -> Ledger:
    """A run that made ``keys`` and published its index."""
    ledger = ledger_at(root, run_id=run_id)
    for key in keys:
        ledger.storage.write_bytes(f"media/video/{key}.mp4", b"video")
        media = [StoredMedia(uri=ledger.storage.uri(f"media/video/{key}.mp4"), content_type="video/mp4", bytes=5,
                             sha256="0" * 64)]
        ledger.record_done(key, "video", media, provider="fal", model=run_id, is_mock=False, raw_response_json=None)
    ledger.flush_index()
    assert compact_index(ledger.storage, run_id) == len(keys)
    return ledger


def rerun_ledger(root, run_id: str = "rerun") -> Ledger:
    uri, options = root
    return Ledger(Requests(uri, options), run_id=run_id)


def test_a_rerun_finds_done_records_in_the_index_without_per_key_requests(root):
    keys = [f"{i:032x}" for i in range(5)]
    first = finished_run(root, "run-a", keys)
    assert [p.rsplit("/", 1)[-1] for p in first.storage.list(INDEX_DIR) if p.endswith(".parquet")] == ["run-a.parquet"]
    assert not [p for p in first.storage.list(INDEX_PARTS_DIR) if p.endswith(".parquet")]  # merged, then removed
    rerun = rerun_ledger(root)
    for key in keys:
        entry = rerun.finished(key)
        assert entry is not None and entry.key == key and entry.model == "run-a"
    assert rerun.storage.calls == []  # neither the done records nor the media were read one by one
    assert rerun.finished("f" * 32) is None and rerun.storage.calls == [("read", done_path("f" * 32))]


def test_deleted_media_sends_an_indexed_key_back_to_the_per_key_check(root):
    keys = [f"{i:032x}" for i in range(2)]
    first = finished_run(root, "run-a", keys)
    first.storage.delete(f"media/video/{keys[0]}.mp4")
    rerun = rerun_ledger(root)
    assert rerun.finished(keys[0]) is None  # the user removed it to have it made again
    assert rerun.finished(keys[1]) is not None


def test_the_latest_runs_record_of_a_key_wins_and_fallback_reads_are_indexed_for_the_next_run(root):
    key, other = "a" * 32, "b" * 32
    finished_run(root, "run-a", [key])
    later = finished_run(root, "run-b", [key])
    assert rerun_ledger(root).finished(key).model == "run-b"
    # A record no index holds (a crashed run's last ones) is read once, then indexed by this run.
    later.storage.write_bytes(f"media/video/{other}.mp4", b"video")
    media = [StoredMedia(uri=later.storage.uri(f"media/video/{other}.mp4"), content_type="video/mp4", bytes=5, sha256="0" * 64)]
    Ledger(later.storage, run_id="crashed").record_done(other, "video", media, provider="fal", model="crashed",
                                                        is_mock=False, raw_response_json=None)
    third = rerun_ledger(root, "run-c")
    assert third.finished(other).model == "crashed" and ("read", done_path(other)) in third.storage.calls
    third.flush_index()
    compact_index(third.storage, "run-c")
    fourth = rerun_ledger(root, "run-d")
    assert fourth.finished(other).model == "crashed" and fourth.storage.calls == []


def test_an_unreadable_index_file_falls_back_to_per_key_reads(tmp_path):
    storage = Storage(str(tmp_path))
    finished_run((str(tmp_path), {}), "run-a", ["c" * 32])
    storage.write_bytes(f"{INDEX_DIR}/broken.parquet", b"not parquet")
    rerun = rerun_ledger((str(tmp_path), {}))
    assert rerun.finished("c" * 32) is not None


def test_a_key_in_flight_in_this_process_is_owned_by_one_item():
    keys = InFlightKeys()
    assert keys.take(KEY, "item-1") and keys.take(KEY, "item-1")
    assert not keys.take(KEY, "item-2")
    keys.release(KEY, "item-2")  # not the owner: nothing happens
    assert not keys.take(KEY, "item-2")
    keys.release(KEY, "item-1")
    assert keys.take(KEY, "item-2")
