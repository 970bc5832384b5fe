"""The whole pipeline on object storage: prompts read from, and media, results table,
ledger and run manifest written to ``gs://`` (fake-gcs-server) and ``s3://`` (moto's
server), through the command line with ``--storage_options``. A second run reuses
every finished row without calling the provider."""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
from pathlib import Path
from typing import Any

import av
import pyarrow.parquet as pq
import pytest

from providers import register_provider
from schemas.results import RESULTS_SCHEMA, resolve_media_uri
from tests.pipelines.conftest import CountingMock, run_pipeline, write_job
from tests.transforms.conftest import ObjectStore, gcs_store, s3_store  # noqa: F401  (session fixtures)

PROVIDER = "counting-objstore"
ROWS = [
    {"id": "wide", "prompt": "a fox in snow", "resolution": "360p", "aspect_ratio": "16:9", "duration_seconds": 1},
    {"id": "square", "prompt": "a kite", "resolution": "360p", "aspect_ratio": "1:1", "duration_seconds": 1},
    {"id": "twin", "prompt": "a kite", "resolution": "360p", "aspect_ratio": "1:1", "duration_seconds": 1},
    {"id": "bad", "prompt": "x", "resolution": "8k"},
]
COMPLETED = {"wide", "square", "twin"}


class StoreRun:
    """One store, its output root and the provider that counts paid submissions."""

    def __init__(self, store: ObjectStore, root: str, job: Path, provider: CountingMock) -> None:
        self.store = store
        self.root = root
        self.job = job
        self.provider = provider
        self.fs = store.filesystem()

    @property
    def input_uri(self) -> str:
        return f"{self.root}/in/prompts.jsonl"

    @property
    def output_uri(self) -> str:
        return f"{self.root}/out"

    def run(self) -> int:
        return run_pipeline(
            "--input", self.input_uri, "--output", self.output_uri, "--config", self.job,
            "--storage_options", json.dumps(self.store.storage_options),
        )

    def key(self, uri: str) -> str:
        """The bucket/key path of a URI on this store."""
        return uri.split("://", 1)[1]

    def files(self, below: str = "") -> list[str]:
        base = self.key(f"{self.output_uri}/{below}".rstrip("/"))
        self.fs.invalidate_cache()
        return sorted(p[len(self.key(self.output_uri)) + 1:] for p in self.fs.find(base))

    def table(self) -> list[dict[str, Any]]:
        parts = [p for p in self.files("results") if p.endswith(".parquet")]
        rows: list[dict[str, Any]] = []
        for part in parts:
            with self.fs.open(self.key(f"{self.output_uri}/{part}"), "rb") as handle:
                table = pq.read_table(handle)
            assert table.schema.equals(RESULTS_SCHEMA, check_metadata=False)
            rows.extend(table.to_pylist())
        return rows

    def json(self, relpath: str) -> Any:
        return json.loads(self.fs.cat_file(self.key(f"{self.output_uri}/{relpath}")))


@pytest.fixture(scope="module", params=["gs", "s3"])
def store_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> StoreRun:
    """The first run on one store (prompts uploaded there first)."""
    store: ObjectStore = request.getfixturevalue("gcs_store" if request.param == "gs" else "s3_store")
    provider = CountingMock()
    register_provider(PROVIDER, provider)
    folder = tmp_path_factory.mktemp(f"objstore-{request.param}")
    job = write_job(folder / "job.yaml", {
        "modality": "video",
        "configs": [{"name": "main", "provider": PROVIDER, "model": "mock-video"}],
    })
    run = StoreRun(store, store.fresh_root("pipeline"), job, provider)
    run.fs.pipe_file(run.key(run.input_uri), "".join(json.dumps(r) + "\n" for r in ROWS).encode())
    assert run.run() == 0
    stray = [name for name in os.listdir(os.getcwd()) if name.startswith(("gs:", "s3:", store.bucket))]
    assert stray == [], "an object-store URI was written as a local path"
    return run


def test_run_writes_table_media_ledger_and_manifest_to_the_store(store_run: StoreRun) -> None:
    rows = {r["row_id"]: r for r in store_run.table()}
    assert set(rows) == {r["id"] for r in ROWS}
    assert {r for r, row in rows.items() if row["status"] == "completed"} == COMPLETED
    assert rows["bad"]["status"] == "invalid" and "'8k'" in rows["bad"]["error_message"]
    assert store_run.provider.submits == 2, "square and twin are one request, paid once"

    bucket_prefix = f"{store_run.store.protocol}://{store_run.store.bucket}/"
    for row_id in COMPLETED:
        row = rows[row_id]
        [uri] = row["media_uris"]
        uri = resolve_media_uri(uri, store_run.output_uri)  # stored relative to the output root
        assert uri.startswith(bucket_prefix) and re.search(r"/media/video/[0-9a-f]{32}\.mp4$", uri)
        data = store_run.fs.cat_file(store_run.key(uri))
        assert len(data) == row["bytes"] and hashlib.sha256(data).hexdigest() == row["sha256"]
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.width, stream.height) == ("h264", row["width"], row["height"])

    keys = {posixpath.basename(rows[r]["media_uris"][0]).split(".")[0] for r in COMPLETED}  # the output keys
    done_records = {p for p in store_run.files("_ledger") if p.endswith(".json") and p.count("/") == 1}
    assert {f"_ledger/{k}.json" for k in keys} == done_records
    for key in keys:
        entry = store_run.json(f"_ledger/{key}.json")
        assert entry["state"] == "done" and entry["media"][0]["uri"] == f"media/video/{key}.mp4"  # relative to the root

    [manifest_path] = store_run.files("_runs")
    manifest = store_run.json(manifest_path)
    assert manifest["rows"] == 4 and manifest["counts_by_status"] == {"completed": 3, "invalid": 1} and manifest["reused"] == 1
    assert manifest["inputs"] == [store_run.input_uri] and manifest["output"] == store_run.output_uri
    assert manifest["tables"] == [f"{store_run.output_uri}/results/table.parquet"]
    leftovers = [p for p in store_run.files() if "_tmp-" in p or ".tmp-" in p]
    assert leftovers == []


def test_rerun_reuses_every_finished_row_without_calling_the_provider(store_run: StoreRun) -> None:
    submits = store_run.provider.submits
    media_before = store_run.files("media")
    assert store_run.run() == 0
    assert store_run.provider.submits == submits
    rows = {r["row_id"]: r for r in store_run.table()}
    assert len(rows) == 4 and len([p for p in store_run.files("results") if p.endswith(".parquet")]) == 1
    for row_id in COMPLETED:
        assert rows[row_id]["status"] == "completed" and rows[row_id]["reused"] is True
        assert rows[row_id]["total_attempts"] == 0
    assert store_run.files("media") == media_before
    assert len(store_run.files("_runs")) == 2
