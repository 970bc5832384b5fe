"""Every wait has a deadline: a result URL that trickles bytes cannot hold a worker, and a
provider answer cannot point the media store at local files."""

from __future__ import annotations

import pytest

from schemas import VideoGenerationResponse
from tests.emulator import EmuResponse
from transforms.media_store import MediaStore, MediaStoreError
from transforms.storage import Storage

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def trickle_url(emulator):
    """A URL answering 200 then sending one byte every 0.25 s (10 s in all)."""
    if "deadline.trickle" not in emulator.route_names():
        emulator.add_route("GET", "deadline", r"/trickle", lambda req: EmuResponse.stream_(
            (b"\0" for _ in range(40)), "video/mp4", chunk_delay=0.25), name="deadline.trickle")
    return emulator.url_for("deadline") + "/trickle"


def response(url: str) -> VideoGenerationResponse:
    return VideoGenerationResponse(request_id="r", video=url, videos=[url])


def test_a_trickling_result_url_stops_at_the_deadline(tmp_path, trickle_url):
    store = MediaStore(Storage(str(tmp_path / "out")))
    with pytest.raises(MediaStoreError, match="too slow: (deadline passed|no data before the deadline)"):
        store.store("video", KEY, response(trickle_url), timeout=1.0)
    assert not (tmp_path / "out" / "media").exists()


def test_a_trickle_below_the_minimum_throughput_stops_before_the_deadline(tmp_path, trickle_url, monkeypatch):
    import providers.core.http

    monkeypatch.setattr(providers.core.http, "THROUGHPUT_GRACE", 0.5)
    store = MediaStore(Storage(str(tmp_path / "out")), min_bytes_per_second=1000)
    with pytest.raises(MediaStoreError, match="below 1000 bytes/s"):
        store.store("video", KEY, response(trickle_url), timeout=600)


@pytest.mark.parametrize("uri", ["file:///proc/self/environ", "memory://x/y.mp4", "ftp://h/a.mp4"])
def test_a_provider_answer_cannot_name_local_or_odd_uris(tmp_path, uri):
    store = MediaStore(Storage(str(tmp_path / "out")))
    with pytest.raises(MediaStoreError, match="refusing to read"):
        store.store("video", KEY, response(uri))
