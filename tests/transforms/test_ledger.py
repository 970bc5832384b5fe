"""The job ledger: what is in flight, what is done, and when done media no longer counts."""

from schemas import JobHandle
from schemas.results import StoredMedia
from transforms.ledger import Ledger
from transforms.storage import Storage

KEY = "ab" * 16


def test_submitted_then_done(tmp_path):
    storage = Storage(str(tmp_path))
    ledger = Ledger(storage)
    assert ledger.lookup(KEY) == (None, None)
    job = JobHandle(provider="fal", model="m", modality="video", job_id="req-1", poll_url="https://q/status")
    ledger.record_submitted(KEY, job)
    assert ledger.lookup(KEY) == (None, job) and ledger.in_flight(KEY) == job

    storage.write_bytes(f"media/video/{KEY}.mp4", b"video")
    media = [StoredMedia(uri=storage.uri(f"media/video/{KEY}.mp4"), content_type="video/mp4", bytes=5, sha256="0" * 64)]
    ledger.record_done(KEY, "video", media, provider="fal", model="m", is_mock=False, raw_response_json="{}")
    done, in_flight = ledger.lookup(KEY)
    assert in_flight is None and done.media == media and done.provider == "fal"


def test_done_media_that_was_deleted_is_not_reused(tmp_path):
    storage = Storage(str(tmp_path))
    ledger = Ledger(storage)
    media = [StoredMedia(uri=storage.uri(f"media/video/{KEY}.mp4"), content_type="video/mp4", bytes=5, sha256="0" * 64)]
    ledger.record_done(KEY, "video", media, provider="fal", model="m", is_mock=False, raw_response_json=None)
    assert ledger.finished_media(KEY) is None


def test_an_unreadable_entry_counts_as_none(tmp_path):
    storage = Storage(str(tmp_path))
    storage.write_bytes(f"_ledger/{KEY}.json", b'{"state": "weird"}')
    assert Ledger(storage).lookup(KEY) == (None, None)
