"""The gallery's data: pages that add up, values that stay data, links that survive a move,
posters made once, the cost shown only when the table has it, and the command's errors.
(The page itself is exercised in a real browser: tests/pipelines/test_gallery_browser.py.)"""

from __future__ import annotations

import base64
import json
import logging
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines.gallery import main as gallery_main
from providers.media.synthesis import make_video
from schemas import MediaContent, VideoGenerationResponse
from schemas.results import RESULTS_SCHEMA
from transforms.gallery import DATA_DIR, INDEX_DATA, build_gallery, gallery_after_run, write_gallery
from transforms.media_store import MediaStore, poster_path
from transforms.storage import Storage

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
KEY = "0123456789abcdef0123456789abcdef"


def record(i: int, **values) -> dict:
    """A results-table row: completed mock video unless ``values`` say otherwise."""
    return {
        "row_id": f"r{i:05d}", "source": f"p.jsonl:{i}", "modality": "video", "prompt": f"prompt {i}",
        "provider": "mock", "model": "mock-video", "status": "completed", "reused": False, "is_mock": True,
        "media_uris": [], "media": [], "attempts": [], "total_attempts": 1, "run_id": "run-a",
        "finished_at": START + timedelta(seconds=i), **values,
    }


def write_table(root: Path, records: list[dict], name: str = "table.parquet", schema: pa.Schema = RESULTS_SCHEMA) -> None:
    (root / "results").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records, schema=schema), root / "results" / name, row_group_size=500)


def read_script(path: Path) -> list:
    """The arguments of a data file's ``mediagenGallery.<call>(...)``, parsed as JSON."""
    text = path.read_text(encoding="ascii")
    inner = text[text.index("(") + 1: text.rindex(");")]
    return json.loads(f"[{inner}]")


def index_of(root: Path) -> dict:
    return read_script(root / INDEX_DATA)[0]


def page_files(root: Path) -> dict[str, list]:
    pages = {}
    for path in sorted((root / DATA_DIR).glob("g*.js")):
        name, rows = read_script(path)
        assert name == path.stem
        pages[name] = rows
    return pages


def test_pages_hold_at_most_page_rows_and_groups_add_up(tmp_path):
    statuses = ["completed"] * 7 + ["failed", "invalid"]
    records = [record(i, status=statuses[i % len(statuses)], provider=["mock", "fal"][i % 2],
                      run_id="run-a" if i < 600 else "run-b") for i in range(1000)]
    write_table(tmp_path, records)
    report = write_gallery(str(tmp_path), page_rows=64)

    index = index_of(tmp_path)
    pages = page_files(tmp_path)
    assert report.rows == index["total"] == 1000 and report.pages == len(pages)
    assert sum(g["count"] for g in index["groups"]) == 1000
    for group in index["groups"]:
        mine = [rows for name, rows in pages.items() if name.startswith(group["id"] + "-")]
        assert len(mine) == group["pages"] == math.ceil(group["count"] / 64)
        assert all(len(rows) == 64 for rows in mine[:-1]) and 0 < len(mine[-1]) <= 64
        assert {(r["run"], r["status"], r["provider"]) for rows in mine for r in rows} == {
            (group["run"], group["status"], group["provider"])}
    assert sorted(r["id"] for rows in pages.values() for r in rows) == sorted(r["row_id"] for r in records)
    # newest run first, completed rows first within a run
    assert [g["run"] for g in index["groups"]][0] == "run-b"
    assert index["groups"][0]["status"] == "completed"
    for asset in ("index.html", "gallery.js", "gallery.css"):
        text = (tmp_path / "gallery" / asset).read_text()
        assert text and "http:" not in text and "https:" not in text and "//cdn" not in text  # nothing from the network


def test_values_stay_data_whatever_they_hold(tmp_path):
    nasty = '</script><script>alert(1)</script>\u2028<img src=x onerror=alert(2)> \u00e9\u6f22 "quoted"'
    write_table(tmp_path, [record(0, prompt=nasty, status="failed", error_type="X", error_message=nasty)])
    write_gallery(str(tmp_path))
    (rows,) = page_files(tmp_path).values()
    assert rows[0]["prompt"] == nasty and rows[0]["error"] == nasty
    raw = next((tmp_path / DATA_DIR).glob("g*.js")).read_bytes()
    assert raw.isascii() and b"\\u2028" in raw  # one valid JS literal, whatever the text
    page = (tmp_path / "gallery" / "gallery.js").read_text()
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page and "document.write" not in page


def test_a_rebuild_leaves_no_stale_pages(tmp_path):
    write_table(tmp_path, [record(i) for i in range(100)])
    write_gallery(str(tmp_path), page_rows=10)
    assert len(page_files(tmp_path)) == 10
    write_gallery(str(tmp_path), page_rows=200)
    assert list(page_files(tmp_path)) == ["g0001-00001"]


def test_media_links_are_relative_and_survive_moving_the_output(tmp_path):
    root = tmp_path / "out"
    records = [
        record(0, modality="image", media=[{"uri": str(root / "media/image/a.png"), "content_type": "image/png"}]),
        record(1, modality="image", media=[{"uri": "/where/it/was/out/media/image/b c.png", "content_type": "image/png"}]),
        record(2, modality="tts", media_uris=["media/tts/c.mp3"], content_type="audio/mpeg"),
        record(3, modality="image", media=[{"uri": "/elsewhere/d.png", "content_type": "image/png"}]),
    ]
    write_table(root, records)
    write_gallery(str(root))
    rows = {r["id"]: r for rows in page_files(root).values() for r in rows}
    assert rows["r00000"]["media"][0]["href"] == "../media/image/a.png"
    assert rows["r00001"]["media"][0]["href"] == "../media/image/b%20c.png"  # the folder moved since
    assert rows["r00002"]["media"][0] == {"type": "audio/mpeg", "href": "../media/tts/c.mp3", "uri": "media/tts/c.mp3"}
    assert rows["r00003"]["media"][0]["href"] is None and rows["r00003"]["media"][0]["uri"] == "/elsewhere/d.png"
    assert index_of(root)["object_store"] is False and index_of(root)["note"] == ""


def test_object_store_outputs_link_relatively_and_say_what_viewing_needs(tmp_path):
    storage = Storage("memory://gallery-test/out")
    storage.write_bytes("results/table.parquet", _parquet([record(
        0, modality="image", media=[{"uri": storage.uri("media/image/k.png"), "content_type": "image/png"}])]))
    build_gallery(storage)
    index = json.loads(_call_args(storage.read_bytes(INDEX_DATA)))[0]
    assert index["object_store"] is True and "HTTPS" in index["note"] and "signed URL" in index["note"]
    (page,) = [p for p in storage.list(DATA_DIR) if p.rsplit("/", 1)[1].startswith("g")]
    row = json.loads(_call_args(storage.read_bytes(page)))[1][0]
    assert row["media"][0]["href"] == "../media/image/k.png"
    assert row["media"][0]["uri"] == "memory://gallery-test/out/media/image/k.png"
    assert storage.exists("gallery/index.html")


def test_missing_posters_are_made_once_and_unreadable_videos_are_skipped(tmp_path, caplog):
    root = tmp_path / "out"
    (root / "media/video").mkdir(parents=True)
    (root / "media/video" / f"{KEY}.mp4").write_bytes(make_video("old output", 320, 240, 1.0))
    (root / "media/video/broken.mp4").write_bytes(b"not a video at all")
    video = {"uri": str(root / "media/video" / f"{KEY}.mp4"), "content_type": "video/mp4"}
    broken = {"uri": str(root / "media/video/broken.mp4"), "content_type": "video/mp4"}
    write_table(root, [record(0, media=[video]), record(1, media=[video], reused=True), record(2, media=[broken])])

    assert write_gallery(str(root), make_posters=False).posters_made == 0
    assert not (root / poster_path(f"media/video/{KEY}.mp4")).exists()
    caplog.set_level(logging.WARNING)
    assert write_gallery(str(root)).posters_made == 1
    assert "no poster for media/video/broken.mp4" in caplog.text
    rows = {r["id"]: r for rows in page_files(root).values() for r in rows}
    assert rows["r00000"]["media"][0]["poster"] == rows["r00001"]["media"][0]["poster"] == f"../media/video/{KEY}.poster.jpg"
    assert rows["r00002"]["media"][0]["poster"] is None
    assert write_gallery(str(root)).posters_made == 0  # kept from the first time


def test_posters_are_made_for_videos_on_an_object_store():
    storage = Storage("memory://gallery-test/posters")
    storage.write_bytes(f"media/video/{KEY}.mp4", make_video("remote", 320, 240, 1.0))
    video = {"uri": storage.uri(f"media/video/{KEY}.mp4"), "content_type": "video/mp4"}
    storage.write_bytes("results/table.parquet", _parquet([record(0, media=[video])]))
    assert build_gallery(storage).posters_made == 1
    assert storage.read_bytes(poster_path(f"media/video/{KEY}.mp4"))[:2] == b"\xff\xd8"
    assert build_gallery(storage).posters_made == 0


def test_large_images_get_a_poster_and_small_ones_are_their_own(tmp_path):
    from providers.media.synthesis import make_image

    root = tmp_path / "out"
    (root / "media/image").mkdir(parents=True)
    (root / "media/image/big.png").write_bytes(make_image("big", 1024, 768))
    (root / "media/image/small.png").write_bytes(make_image("small", 64, 64))
    write_table(root, [
        record(0, modality="image", media=[{"uri": str(root / "media/image/big.png"), "content_type": "image/png",
                                            "width": 1024, "height": 768}]),
        record(1, modality="image", media=[{"uri": str(root / "media/image/small.png"), "content_type": "image/png",
                                            "width": 64, "height": 64}]),
    ])
    assert write_gallery(str(root)).posters_made == 1
    rows = {r["id"]: r for rows in page_files(root).values() for r in rows}
    assert rows["r00000"]["media"][0]["poster"] == "../media/image/big.poster.jpg"
    assert "poster" not in rows["r00001"]["media"][0]
    with Image.open(root / "media/image/big.poster.jpg") as poster:
        assert poster.size == (320, 240)


def test_the_media_store_keeps_a_small_poster_beside_each_video_and_large_image(tmp_path):
    store = MediaStore(Storage(str(tmp_path / "out")))
    response = VideoGenerationResponse(request_id="r", video=MediaContent(
        content=make_video("poster me", 640, 360, 2.0), content_type="video/mp4"))
    (stored,) = store.store("video", KEY, response)
    poster = tmp_path / "out" / poster_path(f"media/video/{KEY}.mp4")
    assert stored.uri.endswith(f"{KEY}.mp4") and poster.read_bytes()[:2] == b"\xff\xd8"
    with Image.open(poster) as image:
        assert image.format == "JPEG" and image.size == (320, 180)
    assert poster.stat().st_size < 30_000

    from providers.media.synthesis import make_image
    from schemas import ImageGenerationResponse

    big, small = "b" * 32, "s" * 32
    for key, side in ((big, 1024), (small, 64)):
        image = base64.b64encode(make_image(key, side, side * 3 // 4)).decode()
        store.store("image", key, ImageGenerationResponse(request_id="r", images=[image]))
    assert (tmp_path / "out" / poster_path(f"media/image/{big}.png")).exists()
    assert not (tmp_path / "out" / poster_path(f"media/image/{small}.png")).exists()


def test_cost_is_shown_only_when_the_table_has_it(tmp_path):
    plain = pa.schema([f for f in RESULTS_SCHEMA if not f.name.startswith("cost")])
    write_table(tmp_path / "a", [{k: v for k, v in record(0).items() if k in plain.names}], schema=plain)
    write_gallery(str(tmp_path / "a"))
    (rows,) = page_files(tmp_path / "a").values()
    assert index_of(tmp_path / "a")["has_cost"] is False and "cost" not in rows[0]

    if "cost_usd" not in RESULTS_SCHEMA.names:
        pytest.skip("the results schema has no cost_usd column yet")
    write_table(tmp_path / "b", [record(0, cost_usd=0.25), record(1, cost_usd=None)])
    write_gallery(str(tmp_path / "b"))
    rows = sorted((r for rows in page_files(tmp_path / "b").values() for r in rows), key=lambda r: r["id"])
    assert index_of(tmp_path / "b")["has_cost"] is True and [r["cost"] for r in rows] == [0.25, None]


def test_the_command_writes_the_gallery_or_says_in_one_line_why_not(tmp_path, capsys):
    assert gallery_main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no results table under") and err.count("\n") == 1

    write_table(tmp_path / "out", [record(i) for i in range(3)])
    assert gallery_main([str(tmp_path / "out")]) == 0
    assert f"gallery: {tmp_path / 'out' / 'gallery' / 'index.html'}  (3 rows" in capsys.readouterr().out


def test_a_gallery_failure_after_a_run_is_logged_not_raised(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    assert gallery_after_run(str(tmp_path / "nothing")) is None
    assert "the gallery was not written" in caplog.text and "mediagen-gallery" in caplog.text


def _parquet(records: list[dict]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(records, schema=RESULTS_SCHEMA), sink)
    return sink.getvalue().to_pybytes()


def _call_args(data: bytes) -> str:
    text = data.decode("ascii")
    return f"[{text[text.index('(') + 1: text.rindex(');')]}]"


def test_an_unwritable_output_is_one_error_line(tmp_path, capsys):
    root = tmp_path / "out"
    write_table(root, [record(0)])
    (root / "gallery").write_text("a file where the gallery folder goes")
    assert gallery_main([str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot build the gallery of {str(root)!r}") and err.count("\n") == 1
