"""Publishing the results table: at every instant a reader globbing ``results/*.parquet``
sees the previous table or the new one, never both, never a part; crashed runs' leftovers
are swept later."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from schemas import DEFAULT_JOB
from schemas.results import ResultRow
from transforms.results import STALE_SECONDS, TABLE, finalize, rows_to_parquet, shard_summary, sweep_stale_temporaries, tmp_dir
from transforms.storage import Storage

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


def rows(run_id: str, count: int) -> list[ResultRow]:
    return [ResultRow(row_id=f"{run_id}-{i}", source="in.jsonl", modality="video", status="invalid",
                      run_id=run_id, finished_at=NOW) for i in range(count)]


def write_shards(storage: Storage, run_id: str, *sizes: int) -> list[dict]:
    shards = []
    for index, size in enumerate(sizes):
        part = [r.model_copy(update={"row_id": f"{run_id}-{index}-{i}"}) for i, r in enumerate(rows(run_id, size))]
        relpath = f"{tmp_dir(run_id)}/shard-{index}.parquet"
        storage.write_bytes(relpath, rows_to_parquet(part))
        shards.append(shard_summary(relpath, part))
    return shards


def publish(root: Path, run_id: str, shards: list[dict], mode: str = "replace") -> dict:
    return finalize(shards, output_root=str(root), storage_options=None, run_id=run_id, job=DEFAULT_JOB,
                    inputs=["in.jsonl"], started_at=NOW, mode=mode)


def visible_row_ids(root: Path) -> list[str]:
    files = sorted(str(p) for p in (root / "results").glob("*.parquet"))
    return sorted(ds.dataset(files, format="parquet").to_table(columns=["row_id"]).column("row_id").to_pylist())


def test_shards_become_one_table_and_the_temporaries_go(tmp_path):
    storage = Storage(str(tmp_path))
    manifest = publish(tmp_path, "run-1", write_shards(storage, "run-1", 3, 2, 0))
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["table.parquet"]
    assert len(visible_row_ids(tmp_path)) == 5 and manifest["rows"] == 5
    assert manifest["tables"] == [storage.uri(TABLE)]


def test_a_publish_that_dies_midway_leaves_the_previous_table_alone(tmp_path, monkeypatch):
    storage = Storage(str(tmp_path))
    publish(tmp_path, "run-1", write_shards(storage, "run-1", 4))
    before = visible_row_ids(tmp_path)

    def half_written(self: Storage, local_path: str, target: str) -> None:  # the disk fills mid-write
        Path(target).write_bytes(b"PAR1 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Storage, "_stream_file", half_written)
    with pytest.raises(OSError):
        publish(tmp_path, "run-2", write_shards(storage, "run-2", 6, 3))  # two shards: merged, then uploaded
    assert visible_row_ids(tmp_path) == before
    assert not [p for p in (tmp_path / "results").iterdir() if ".tmp-" in p.name]  # no debris either


def test_a_single_shard_is_published_by_one_move(tmp_path):
    storage = Storage(str(tmp_path))
    publish(tmp_path, "run-1", write_shards(storage, "run-1", 3))
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["table.parquet"]
    assert visible_row_ids(tmp_path) == ["run-1-0-0", "run-1-0-1", "run-1-0-2"]


def test_append_mode_adds_one_part_per_run(tmp_path):
    storage = Storage(str(tmp_path))
    publish(tmp_path, "run-1", write_shards(storage, "run-1", 2))
    publish(tmp_path, "run-2", write_shards(storage, "run-2", 3), mode="append")
    names = sorted(p.name for p in (tmp_path / "results").glob("*.parquet"))
    assert names == ["part-run-2.parquet", "table.parquet"] and len(visible_row_ids(tmp_path)) == 5
    publish(tmp_path, "run-3", write_shards(storage, "run-3", 1))  # replace again: one table
    assert [p.name for p in (tmp_path / "results").glob("*.parquet")] == ["table.parquet"]


def test_a_crashed_runs_leftovers_are_swept_once_stale(tmp_path):
    storage = Storage(str(tmp_path))
    write_shards(storage, "crashed", 2)
    storage.write_bytes("results/table.parquet.tmp-abc", b"half")
    storage.write_bytes("media/video/k.mp4.tmp-def", b"half a video")
    storage.write_bytes("media/video/k2.mp4", b"a whole video")
    assert sweep_stale_temporaries(storage) == 0  # fresh: maybe a live run's
    later = time.time() + STALE_SECONDS + 1
    assert sweep_stale_temporaries(storage, now=later) == 3
    assert sorted(os.listdir(tmp_path / "results")) == []
    assert os.listdir(tmp_path / "media" / "video") == ["k2.mp4"]
