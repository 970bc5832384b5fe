"""mediagen-export: a real output root (image, speech and video runs of the pipeline with the
mock providers, appended into one root) exported as WebDataset shards and as a Hugging Face
Parquet dataset, then read back with the libraries that consume them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # load_dataset on a local folder must not reach the Hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from pipelines.export import main as export_main  # noqa: E402
from tests.pipelines.conftest import read_table, run_pipeline, write_job, write_jsonl  # noqa: E402
from transforms.export import ExportError, export_hf, export_webdataset, sample_key  # noqa: E402
from transforms.storage import Storage  # noqa: E402

IMAGE_ROWS = [
    {"id": "cat", "prompt": "a cat", "size": "64x48"},
    {"id": "pair.v1/a b", "prompt": "two of them", "size": "32x40", "n": 2},  # dots, a slash and a space in the id
    {"id": "no-prompt"},
]
TTS_ROWS = [
    {"id": "hello", "text": "Hello there, welcome to the show.", "voice_id": "narrator"},
    {"id": "wav", "text": "A second line, spoken as wav.", "output_format": {"format": "wav", "sample_rate": 24000}},
]
VIDEO_ROWS = [
    {"id": "clip", "prompt": "a fox in snow", "resolution": "360p", "aspect_ratio": "1:1", "duration_seconds": 1},
    {"id": "doomed", "prompt": "always fails", "config": "doomed"},
]


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    """One output root holding three appended runs: images (one row with n=2, one invalid),
    speech (mp3 and wav) and video (one completed, one failed)."""
    base = tmp_path_factory.mktemp("export")
    root = base / "out"
    jobs = [
        ("image", IMAGE_ROWS, {"modality": "image", "configs": [{"name": "m", "provider": "mock", "model": "mock-image"}]}),
        ("tts", TTS_ROWS, {"modality": "tts", "configs": [{"name": "m", "provider": "elevenlabs", "model": "eleven_multilingual_v2",
                                                            "mock": {}, "provider_config": {"voice_id": "narrator"}}]}),
        ("video", VIDEO_ROWS, {"modality": "video", "configs": [
            {"name": "main", "provider": "mock", "model": "mock-video"},
            {"name": "doomed", "provider": "mock", "model": "mock-video",
             "mock": {"responses": [{"error": "moderation", "error_message": "prompt refused"}]}}],
            "retry": {"max_retries": 0}}),
    ]
    for name, rows, job in jobs:
        prompts = write_jsonl(base / f"{name}.jsonl", rows)
        config = write_job(base / f"{name}.yaml", job)
        assert run_pipeline("--input", prompts, "--output", root, "--config", config, "--results_mode", "append",
                            "--run_id", f"run-{name}") in (0, 3)  # 3: some rows failed, as intended here
    return root


def copy_with_uris(output: Path, copy: Path, uri: Callable[[str], str]) -> Path:
    """A copy of ``output`` whose table names each media object ``uri(relative path)``."""
    shutil.copytree(output, copy)
    for part in (copy / "results").glob("*.parquet"):
        table = pq.read_table(part)
        media = [[{**m, "uri": uri(relative(m["uri"], output))} for m in row] for row in table.column("media").to_pylist()]
        index = table.schema.get_field_index("media")
        table = table.set_column(index, "media", pa.array(media, type=table.schema.field("media").type))
        pq.write_table(table, part)
    return copy


def relative(uri: str, root: Path) -> str:
    return os.path.relpath(uri, root) if uri.startswith("/") else uri


def expected_keys(root: Path) -> dict[str, dict]:
    """Sample key -> results row, for the completed rows (three tables: keys carry the run id)."""
    keys = {}
    for part in sorted((root / "results").glob("part-*.parquet")):
        run = part.stem.removeprefix("part-")
        for row in pq.read_table(part).to_pylist():
            if row["status"] == "completed":
                keys[sample_key(row["row_id"], run)] = row
    return keys


def test_the_fixture_output_has_every_kind_of_row(output):
    statuses = sorted(r["status"] for r in read_table(output).to_pylist())
    assert statuses == ["completed"] * 5 + ["failed", "invalid"]


def test_sample_keys_are_webdataset_safe_and_distinct():
    keys = [sample_key(r) for r in ("a.b", "a_b", "a/b", "x y", "plain-id_1", "é")]
    assert all("." not in k and "/" not in k and " " not in k for k in keys)
    assert len(set(keys)) == len(keys) and keys[4] == "plain-id_1"
    assert sample_key("r.1", "run.2").startswith("run_2_") and "__r_1_" in sample_key("r.1", "run.2")


def test_webdataset_shards_read_back_with_webdataset(output, tmp_path):
    import webdataset as wds

    dest = tmp_path / "wds"
    report = export_webdataset(str(output), str(dest), shard_size=2)
    shards = sorted(str(p) for p in dest.glob("shard-*.tar"))
    assert [Path(s).name for s in shards] == [f"shard-{i:06d}.tar" for i in range(3)] == [Path(s).name for s in report.shards]
    assert report.samples == 5 and report.media_files == 6 and dict(report.excluded) == {"failed": 1, "invalid": 1}

    expected = expected_keys(output)
    samples = {s["__key__"]: s for s in wds.WebDataset(shards, shardshuffle=False, empty_check=False)}
    assert set(samples) == set(expected)
    for key, sample in samples.items():
        row = expected[key]
        meta = json.loads(sample["json"])
        assert (meta["row_id"], meta["prompt"], meta["provider"], meta["model"]) == (row["row_id"], row["prompt"], row["provider"], row["model"])
        assert "raw_response_json" not in meta and "request_json" not in meta and isinstance(meta["request"], dict)
        assert len(meta["media"]) == len(row["media"])
        for index, (item, stored) in enumerate(zip(meta["media"], row["media"])):
            field = item["file"].split(".", 1)[1]  # webdataset's field: everything after the key
            assert item["file"].startswith(key + ".") and (index == 0) == ("." not in field)
            assert hashlib.sha256(sample[field]).hexdigest() == item["sha256"] == stored["sha256"]
            assert item["content_type"] == stored["content_type"] and len(sample[field]) == stored["bytes"]
    pair = next(s for k, s in samples.items() if "pair" in k)
    assert set(pair) >= {"json", "png", "1.png"} and json.loads(pair["json"])["request"]["n"] == 2
    assert Image.open(io.BytesIO(pair["png"])).size == (32, 40)
    tts = {json.loads(s["json"])["row_id"]: s for s in samples.values() if json.loads(s["json"])["modality"] == "tts"}
    assert "mp3" in tts["hello"] and "wav" in tts["wav"] and tts["wav"]["wav"][:4] == b"RIFF"
    assert "mp4" in next(s for s in samples.values() if json.loads(s["json"])["row_id"] == "clip")


def test_webdataset_max_shard_bytes_bounds_each_shard(output, tmp_path):
    largest = max(m["bytes"] for r in expected_keys(output).values() for m in r["media"])
    limit = largest + 16 * 1024
    report = export_webdataset(str(output), str(tmp_path / "wds"), shard_size=1000, max_shard_bytes=limit)
    sizes = [(tmp_path / "wds" / Path(s).name).stat().st_size for s in report.shards]
    assert len(sizes) > 1 and report.samples == 5
    with_members = [len(tarfile.open(tmp_path / "wds" / Path(s).name).getmembers()) for s in report.shards]
    assert all(size <= limit or members <= 2 for size, members in zip(sizes, with_members))  # one sample alone may exceed


def test_a_second_export_replaces_the_first_shards(output, tmp_path):
    dest = tmp_path / "wds"
    export_webdataset(str(output), str(dest), shard_size=1)
    assert len(list(dest.glob("shard-*.tar"))) == 5
    export_webdataset(str(output), str(dest), shard_size=100)
    assert [p.name for p in dest.iterdir()] == ["shard-000000.tar"]


def test_webdataset_from_and_to_memory_and_other_statuses(output, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    relative_copy = copy_with_uris(output, tmp_path / "copy", lambda path: path)  # media read from memory:// only
    for path in relative_copy.rglob("*"):
        if path.is_file():
            fs.pipe_file(f"/export-src/out/{path.relative_to(relative_copy)}", path.read_bytes())
    assert export_webdataset("memory://export-src/out", "memory://export-test/all").media_files == 6
    dest = "memory://export-test/wds"
    report = export_webdataset("memory://export-src/out", dest, statuses=("failed", "invalid"))
    assert report.samples == 2 and report.media_files == 0 and dict(report.excluded) == {"completed": 5}
    assert fs.ls("/export-test/wds", detail=False) == ["/export-test/wds/shard-000000.tar"]
    with tarfile.open(fileobj=io.BytesIO(fs.cat("/export-test/wds/shard-000000.tar"))) as tar:
        metas = [json.load(tar.extractfile(m)) for m in tar.getmembers()]
    failed = next(m for m in metas if m["status"] == "failed")
    assert failed["error_type"] == "ContentModerationError" and failed["media"] == []


@pytest.mark.parametrize("kind", ["s3", "gs"])
def test_both_formats_to_an_object_store_and_no_object_from_a_failed_export(output, tmp_path, kind, request):
    store = request.getfixturevalue("gcs_store" if kind == "gs" else "s3_store")
    dest = store.fresh_root("export")
    wds_report = export_webdataset(str(output), f"{dest}/wds", shard_size=4, dest_options=store.storage_options)
    hf_report = export_hf(str(output), f"{dest}/hf", dest_options=store.storage_options)
    target = Storage(dest, store.storage_options)
    tars = sorted(target.list("wds"))
    assert tars == ["wds/shard-000000.tar", "wds/shard-000001.tar"] and wds_report.samples == 5
    with tarfile.open(fileobj=io.BytesIO(target.read_bytes(tars[0]))) as tar:
        assert len([m for m in tar.getmembers() if m.name.endswith(".json")]) == 4
    assert sorted(target.list("hf/data")) == ["hf/data/train-00000-of-00001.parquet"] and hf_report.samples == 6
    table = pq.read_table(io.BytesIO(target.read_bytes("hf/data/train-00000-of-00001.parquet")))
    assert sorted(table.column("row_id").to_pylist()) == sorted(["cat", "pair.v1/a b", "pair.v1/a b", "hello", "wav", "clip"])
    assert "dtype: image" in target.read_bytes("hf/README.md").decode()

    copy = copy_with_uris(output, tmp_path / "bad", lambda path: path)
    for media in (copy / "media").rglob("*.*"):
        media.write_bytes(media.read_bytes()[:-1] + b"\0")
    with pytest.raises(ExportError, match="sha256"):
        export_webdataset(str(copy), f"{dest}/failed", dest_options=store.storage_options)
    assert list(target.list("failed")) == []


def test_media_that_does_not_match_its_sha256_fails_and_leaves_no_partial_shard(output, tmp_path):
    copy = copy_with_uris(output, tmp_path / "out", lambda path: path)
    image = next((copy / "media" / "image").glob("*.png"))
    image.write_bytes(image.read_bytes()[:-1] + b"\0")
    dest = tmp_path / "wds"
    with pytest.raises(ExportError, match=r"sha256") as caught:
        export_webdataset(str(copy), str(dest), shard_size=1)
    assert image.name in str(caught.value)
    assert [p for p in dest.glob("*") if not p.name.endswith(".tar")] == []  # no temporary file left
    assert all(tarfile.open(p).getmembers() for p in dest.glob("*.tar"))  # shards before the bad one are whole


@pytest.mark.parametrize("spelling", ["relative", "absolute", "moved"])
def test_media_uris_resolve_relative_absolute_or_under_an_earlier_root(output, tmp_path, spelling):
    copy = tmp_path / "copy"
    uri = {"relative": lambda path: path, "absolute": lambda path: f"{copy}/{path}",
           "moved": lambda path: f"/somewhere/else/out/{path}"}[spelling]
    copy_with_uris(output, copy, uri)
    uris = [m["uri"] for row in read_table(copy).column("media").to_pylist() for m in row]
    assert len(uris) == 6 and all(u.startswith("media/") == (spelling == "relative") for u in uris)
    report = export_webdataset(str(copy), str(tmp_path / "wds"))
    assert report.samples == 5 and report.media_files == 6


def test_hf_layout_loads_with_datasets_and_decodes_images(output, tmp_path):
    import datasets

    dest = tmp_path / "hf"
    report = export_hf(str(output), str(dest), shard_size=3)
    names = sorted(p.name for p in (dest / "data").iterdir())
    assert names == [f"train-{i:05d}-of-00002.parquet" for i in range(2)]  # 6 media objects, 3 per shard
    assert report.samples == 6 and dict(report.excluded) == {"failed": 1, "invalid": 1}

    dataset = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    assert isinstance(dataset.features["image"], datasets.Image)
    assert isinstance(dataset.features["audio"], datasets.Audio)
    assert isinstance(dataset.features["video"], datasets.Video)
    assert dataset.num_rows == 6

    expected = expected_keys(output)
    by_row = {}
    images = dataset.select_columns(["key", "row_id", "media_index", "image", "width", "height", "prompt"])
    for record in images:
        by_row[(record["row_id"], record["media_index"])] = record
        if record["image"] is not None:
            assert isinstance(record["image"], Image.Image)
            assert record["image"].size == (record["width"], record["height"])
    assert by_row[("cat", 0)]["image"].size == (64, 48) and by_row[("cat", 0)]["prompt"] == "a cat"
    assert by_row[("pair.v1/a b", 1)]["image"].size == (32, 40)
    assert {(r, i) for r, i in by_row} == {(row["row_id"], i) for row in expected.values() for i in range(len(row["media"]))}


def test_hf_audio_and_video_bytes_match_the_table(output, tmp_path):
    """Decoding audio and video in datasets >= 4 needs torchcodec (and with it PyTorch), which is
    not a test dependency; the columns are typed Audio / Video and their bytes are checked."""
    import datasets

    dest = tmp_path / "hf"
    export_hf(str(output), str(dest))
    dataset = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    raw = dataset.cast_column("audio", datasets.Audio(decode=False)).cast_column("video", datasets.Video(decode=False))
    seen = set()
    for record in raw:
        for column in ("audio", "video"):
            value = record[column]
            if value is not None:
                assert hashlib.sha256(value["bytes"]).hexdigest() == record["sha256"]
                assert value["path"] == f"{record['key']}.{ {'audio/mpeg': 'mp3', 'audio/wav': 'wav', 'video/mp4': 'mp4'}[record['content_type']]}"
                seen.add((column, record["row_id"]))
    assert seen == {("audio", "hello"), ("audio", "wav"), ("video", "clip")}
    card = (dest / "README.md").read_text()
    assert "- name: audio\n    dtype: audio" in card and "num_examples: 6" in card


def test_hf_parquet_keeps_media_out_of_statistics_and_dictionaries(output, tmp_path):
    export_hf(str(output), str(tmp_path / "hf"))
    meta = pq.ParquetFile(next((tmp_path / "hf" / "data").glob("*.parquet"))).metadata
    columns = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
    media = [c for c in columns if c.path_in_schema.endswith(".bytes")]
    assert media and all(not c.is_stats_set and not c.has_dictionary_page for c in media)


def test_cli_prints_a_summary_and_errors_in_one_line(output, tmp_path, capsys):
    assert export_main(["webdataset", str(output), str(tmp_path / "wds"), "--shard_size", "4"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "exported 5 samples" in out[0] and "2 shard(s)" in out[0] and "failed=1, invalid=1" in out[0]

    assert export_main(["parquet", str(output), str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "'parquet'" in err[0] and "webdataset, hf" in err[0]

    assert export_main(["hf", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no results table under") and "nowhere" in err[0]

    assert export_main(["webdataset", str(output), str(tmp_path / "x"), "--shard_size", "0"]) == 2
    assert "shard_size must be at least 1, got 0" in capsys.readouterr().err
