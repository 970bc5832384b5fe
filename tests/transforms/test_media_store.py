"""WriteMedia: streamed downloads with retries, validation before anything is published,
atomic writes, measured values."""

import base64
import hashlib

import pytest

from providers.media.synthesis import make_audio, make_image, make_video
from schemas import ImageGenerationResponse, MediaContent, TTSResponse, VideoGenerationResponse
from tests.emulator import Fault
from transforms.media_store import MediaStore, MediaStoreError
from transforms.storage import Storage

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def store(tmp_path):
    return MediaStore(Storage(str(tmp_path / "out")))


def video_response(*videos):
    return VideoGenerationResponse(request_id="r", video=videos[0], videos=list(videos))


def test_video_url_is_downloaded_probed_and_stored_under_its_key(store, emulator, tmp_path):
    data = make_video("stored", 320, 240, 1.0)
    url = emulator.host_media(data, "video/mp4", provider="demo")
    (stored,) = store.store("video", KEY, video_response(url))
    assert stored.uri == str(tmp_path / "out" / "media" / "video" / f"{KEY}.mp4")
    assert (tmp_path / "out" / "media" / "video" / f"{KEY}.mp4").read_bytes() == data
    assert (stored.width, stored.height, stored.bytes) == (320, 240, len(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and abs(stored.duration_seconds - 1.0) < 0.05
    assert not list((tmp_path / "out" / "media" / "video").glob("*.tmp-*"))


def test_variants_get_numbered_names_and_bytes_or_base64_are_decoded(store, tmp_path):
    png = make_image("a", 64, 48)
    jpeg = make_image("b", 32, 32, image_format="jpeg")
    stored = store.store("image", KEY, ImageGenerationResponse(request_id="r", images=[
        base64.b64encode(png).decode(), "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()]))
    assert [s.uri.rsplit("/", 1)[1] for s in stored] == [f"{KEY}.png", f"{KEY}-1.jpg"]
    assert [(s.width, s.height, s.content_type) for s in stored] == [(64, 48, "image/png"), (32, 32, "image/jpeg")]
    video = store.store("video", "k2" * 16, video_response(MediaContent(content=make_video("c", 160, 120, 0.5), content_type="video/mp4")))
    assert video[0].content_type == "video/mp4"


def test_truncated_downloads_are_retried_from_the_start(store, emulator):
    data = make_video("retry me", 320, 240, 1.0)
    url = emulator.host_media(data, "video/mp4", provider="demo")
    emulator.inject("media", Fault.truncate(1000), times=2)
    (stored,) = store.store("video", KEY, video_response(url))
    assert stored.bytes == len(data) and emulator.count("media") == 3


def test_transient_http_errors_are_retried(store, emulator):
    url = emulator.host_media(make_image("x", 16, 16), "image/png", provider="demo")
    emulator.inject("media", Fault.http(503), times=1)
    assert store.store("image", KEY, ImageGenerationResponse(request_id="r", images=[url]))[0].width == 16


def test_an_expired_result_url_fails_clearly_and_publishes_nothing(store, emulator, tmp_path):
    url = emulator.host_media(make_image("x", 16, 16), "image/png", provider="demo")
    emulator.inject("media", Fault.expired())
    with pytest.raises(MediaStoreError, match="expired or missing result URL"):
        store.store("image", KEY, ImageGenerationResponse(request_id="r", images=[url + "?X-Signature=secret"]))
    assert not (tmp_path / "out" / "media").exists()


def test_a_non_media_answer_is_refused(store, emulator):
    page = emulator.host_media(b"<html>Access denied</html>", "text/html", provider="demo")
    with pytest.raises(MediaStoreError, match="not media"):
        store.store("video", KEY, video_response(page))


def test_bytes_that_do_not_decode_fail_the_row(store, tmp_path):
    broken = make_video("cut", 320, 240, 1.0)[:3000]
    with pytest.raises(MediaStoreError, match="does not decode"):
        store.store("video", KEY, video_response(MediaContent(content=broken, content_type="video/mp4")))
    assert not (tmp_path / "out" / "media").exists()


def test_media_of_the_wrong_kind_fails(store):
    png = base64.b64encode(make_image("x", 16, 16)).decode()
    with pytest.raises(MediaStoreError, match="expected audio"):
        store.store("tts", KEY, TTSResponse(request_id="r", audio=png))


def test_raw_pcm_is_measured_at_the_requested_rate(store):
    clip = make_audio("raw speech", audio_format="pcm", sample_rate=16000, duration_seconds=1.5)
    (stored,) = store.store("tts", KEY, TTSResponse(request_id="r", audio=base64.b64encode(clip.data).decode()), raw_pcm_sample_rate=16000)
    assert abs(stored.duration_seconds - 1.5) < 0.01


def test_the_streamed_sha256_equals_hashlib_over_the_file_after_a_retried_download(store, emulator, tmp_path):
    data = make_video("hashed", 320, 240, 1.0)
    url = emulator.host_media(data, "video/mp4", provider="demo")
    emulator.inject("media", Fault.truncate(1000), times=1)  # the first try is cut short: rewound, rehashed
    (stored,) = store.store("video", KEY, video_response(url))
    on_disk = (tmp_path / "out" / "media" / "video" / f"{KEY}.mp4").read_bytes()
    assert stored.sha256 == hashlib.sha256(on_disk).hexdigest() and stored.bytes == len(on_disk) == len(data)


def test_a_hashing_sink_hashes_what_is_written_and_starts_over_when_rewound(tmp_path):
    from transforms.media_store import HashingSink

    with open(tmp_path / "f", "w+b") as handle:
        sink = HashingSink(handle)
        sink.write(b"partial download")
        sink.seek(0)
        sink.truncate()
        sink.write(b"\x00\xffwhole")
        sink.write("ünïcode".encode())
        sink.flush()
        with pytest.raises(ValueError, match="rewind to the start"):
            sink.seek(3)
    content = (tmp_path / "f").read_bytes()
    assert sink.hexdigest() == hashlib.sha256(content).hexdigest() and sink.size == len(content)


def _counting_spools(monkeypatch):
    """Every spool file the store makes, counted."""
    import tempfile

    made = []
    real = tempfile.mkstemp

    def counted(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("transforms.media_store.tempfile.mkstemp", counted)
    return made


@pytest.mark.parametrize("form", ["base64", "data_url"])
def test_media_answered_in_memory_is_stored_without_a_spool_file(tmp_path, monkeypatch, form):
    from providers.media.probe import probe_media
    from providers.media.synthesis import POSTER_MAX_SIDE

    made = _counting_spools(monkeypatch)
    png = make_image("in memory", 3 * POSTER_MAX_SIDE, 2 * POSTER_MAX_SIDE)  # large enough for a poster
    item = {"base64": base64.b64encode(png).decode(),
            "data_url": "data:image/png;base64," + base64.b64encode(png).decode()}[form]
    (stored,) = MediaStore(Storage(str(tmp_path / "out"))).store(
        "image", KEY, ImageGenerationResponse(request_id="r", images=[item]))
    assert made == []
    folder = tmp_path / "out" / "media" / "image"
    assert (folder / f"{KEY}.png").read_bytes() == png
    assert (stored.sha256, stored.bytes) == (hashlib.sha256(png).hexdigest(), len(png))
    assert (stored.width, stored.height) == (3 * POSTER_MAX_SIDE, 2 * POSTER_MAX_SIDE)
    poster = probe_media(folder / f"{KEY}.poster.jpg")
    assert poster.content_type == "image/jpeg" and max(poster.width, poster.height) == POSTER_MAX_SIDE
    assert sorted(p.name for p in folder.iterdir()) == [f"{KEY}.png", f"{KEY}.poster.jpg"]


def test_a_video_answered_in_memory_gets_its_poster_from_the_bytes(tmp_path, monkeypatch):
    from providers.media.probe import probe_media

    made = _counting_spools(monkeypatch)
    video = make_video("poster from bytes", 320, 240, 1.0)
    (stored,) = MediaStore(Storage(str(tmp_path / "out"))).store(
        "video", KEY, video_response(MediaContent(content=video, content_type="video/mp4")))
    assert made == [] and (stored.width, stored.height) == (320, 240)
    assert probe_media(tmp_path / "out" / "media" / "video" / f"{KEY}.poster.jpg").content_type == "image/jpeg"


def test_media_named_by_a_url_is_still_spooled_and_the_spool_removed(tmp_path, monkeypatch, emulator):
    made = _counting_spools(monkeypatch)
    spool = tmp_path / "spool"
    spool.mkdir()
    png = make_image("by url", 16, 16)
    url = emulator.host_media(png, "image/png", provider="demo")
    store = MediaStore(Storage(str(tmp_path / "out")), spool_dir=str(spool))
    (stored,) = store.store("image", KEY, ImageGenerationResponse(request_id="r", images=[url]))
    assert made == [1] and list(spool.iterdir()) == []
    assert stored.sha256 == hashlib.sha256(png).hexdigest()


def test_a_failed_download_leaves_no_spool_file(tmp_path, emulator):
    spool = tmp_path / "spool"
    spool.mkdir()
    url = emulator.host_media(make_image("gone", 16, 16), "image/png", provider="demo")
    emulator.inject("media", Fault.http(403), times=1)
    store = MediaStore(Storage(str(tmp_path / "out")), spool_dir=str(spool))
    with pytest.raises(MediaStoreError, match="HTTP 403"):
        store.store("image", KEY, ImageGenerationResponse(request_id="r", images=[url]))
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("kind", ["gs", "s3"])
def test_media_on_an_object_store_is_served_as_its_probed_type(kind, request, emulator):
    store = request.getfixturevalue("gcs_store" if kind == "gs" else "s3_store")
    storage = Storage(store.fresh_root("media-types"), store.storage_options)
    png = make_image("typed", 400, 300)  # large enough for a poster
    by_url = emulator.host_media(make_image("typed by url", 16, 16), "application/octet-stream", provider="demo")
    stored = MediaStore(storage).store("image", KEY, ImageGenerationResponse(
        request_id="r", images=[base64.b64encode(png).decode(), by_url]))

    def served_as(relpath):
        info = storage.fs.info(storage.path(relpath))
        return info.get("contentType") or info.get("ContentType")

    assert [served_as(storage.relative(s.uri)) for s in stored] == ["image/png", "image/png"]
    assert served_as(f"media/image/{KEY}.poster.jpg") == "image/jpeg"
