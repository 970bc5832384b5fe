"""Portability: the pipeline run with ``--direct_running_mode=multi_processing``, where
the DoFns, the job config and the clients are pickled and rebuilt in separate worker
processes, as on Dataflow workers. Run through the command line in a subprocess."""

from __future__ import annotations

import hashlib
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import av
import pyarrow.dataset as ds

from schemas.results import RESULTS_SCHEMA, resolve_media_uri

REPO = Path(__file__).resolve().parents[2]

ROWS = [
    {"id": "wide", "prompt": "a lighthouse at dusk", "resolution": "360p", "aspect_ratio": "16:9", "duration_seconds": 1},
    {"id": "tall", "prompt": "a heron", "resolution": "360p", "aspect_ratio": "9:16", "duration_seconds": 1},
    {"id": "square", "prompt": "a kite", "resolution": "360p", "aspect_ratio": "1:1", "duration_seconds": 1},
    {"id": "same-square", "prompt": "a kite", "resolution": "360p", "aspect_ratio": "1:1", "duration_seconds": 1},
    {"id": "fails", "prompt": "refused", "resolution": "360p", "duration_seconds": 1, "config": "refusing"},
    {"id": "bad", "prompt": "x", "resolution": "8k"},
]
JOB = {
    "modality": "video",
    "configs": [
        {"name": "main", "provider": "mock", "model": "mock-video"},
        {"name": "refusing", "provider": "mock", "model": "mock-video",
         "mock": {"responses": [{"error": "moderation", "error_message": "prompt refused"}]}},
    ],
    "limits": {"mock": {"max_in_flight": 4, "submits_per_second": 50}},
}


def test_multi_processing_run_writes_the_table_and_media(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    job = tmp_path / "job.json"
    job.write_text(json.dumps(JOB))
    output = tmp_path / "out"
    command = [
        sys.executable, "-m", "pipelines.generate", "--input", str(prompts), "--output", str(output),
        "--config", str(job), "--no-progress", "--run_id", "multi",
        "--direct_running_mode=multi_processing", "--direct_num_workers=2",
        "--verbose",  # keeps Beam's own log lines (sdk_worker_main) on stderr
    ]
    # The checkout on the path of the CLI and of the worker processes Beam starts (the
    # project may or may not be installed in this venv).
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 3, done.stderr[-4000:]  # the refused row failed (README "Exit codes")
    assert "run multi: 6 rows" in done.stdout
    assert "sdk_worker_main" in done.stderr, "the bundles ran in separate SDK worker processes"

    table = ds.dataset(output / "results", format="parquet").to_table()
    assert table.schema.equals(RESULTS_SCHEMA, check_metadata=False)
    rows = {r["row_id"]: r for r in table.to_pylist()}
    assert sorted(rows) == sorted(r["id"] for r in ROWS)
    statuses = {row_id: row["status"] for row_id, row in rows.items()}
    assert statuses == {"wide": "completed", "tall": "completed", "square": "completed", "same-square": "completed",
                        "fails": "failed", "bad": "invalid"}
    assert rows["fails"]["error_type"] == "ContentModerationError"
    # One generation for the repeated request: in one worker process the second row is
    # ``reused``; in two (no GroupByKey brings them together) the second follows the first's
    # recorded job through the ledger and stores the same media.
    assert False in (rows["square"]["reused"], rows["same-square"]["reused"])
    assert rows["square"]["media_uris"] == rows["same-square"]["media_uris"]

    expected = {"wide": (640, 360), "tall": (360, 640), "square": (360, 360)}
    for row_id, (width, height) in expected.items():
        row = rows[row_id]
        [uri] = row["media_uris"]
        uri = resolve_media_uri(uri, str(output))  # stored relative to the output root
        # Named by the output key of the config that made it (never by a row value).
        assert re.fullmatch(re.escape(str(output / "media" / "video")) + r"/[0-9a-f]{32}\.mp4", uri)
        data = Path(uri).read_bytes()
        assert len(data) == row["bytes"] and hashlib.sha256(data).hexdigest() == row["sha256"]
        with av.open(uri) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.width, stream.height) == ("h264", width, height)
        assert (row["width"], row["height"]) == (width, height) and abs(row["duration_seconds"] - 1) < 0.1

    manifest = json.loads((output / "_runs" / "multi.json").read_text())
    assert manifest["rows"] == 6
    assert manifest["counts_by_status"] == {"completed": 4, "failed": 1, "invalid": 1}
    assert manifest["reused"] == sum(rows[r]["reused"] for r in ("square", "same-square"))  # 0 across processes
    done_keys = {Path(rows[r]["media_uris"][0]).stem for r in expected}
    ledger = {p.name: json.loads(p.read_text()) for p in (output / "_ledger").glob("*.json")}
    assert {f"{k}.json" for k in done_keys} <= set(ledger)
    assert all(ledger[f"{k}.json"]["state"] == "done" for k in done_keys)
    assert not list(output.rglob("*.tmp-*")) and not list((output / "results").glob("_tmp-*"))
    # The input is read as one pass; the Reshuffle after it (pipelines/graph.py) spread the
    # rows over both worker processes: claims were made in two (worker = "<host>/<pid>/<nonce>").
    claim_pids = {json.loads(p.read_text())["worker"].split("/")[1] for p in output.glob("_ledger/*/claim-*.json")}
    assert len(claim_pids) == 2, claim_pids
