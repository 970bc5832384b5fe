"""A run killed midway and started again pays for no job twice: jobs in flight are
re-attached from the ledger, finished ones reused, and every row lands exactly once.
The provider side (the emulator speaking fal's queue API) counts submissions."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parents[2]
ROWS = 12


def pipeline_command(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "pipelines.generate", "--input", str(tmp_path / "prompts.jsonl"),
            "--output", str(tmp_path / "out"), "--config", str(tmp_path / "job.json"), "--no-progress"]


def ledger_states(output: Path) -> Counter:
    """Done records and the states of the claims on jobs in flight."""
    states: Counter = Counter()
    for entry in [*(output / "_ledger").glob("*.json"), *(output / "_ledger").glob("*/claim-*.json")]:
        try:
            states[json.loads(entry.read_text())["state"]] += 1
        except (ValueError, OSError, KeyError):
            states["unreadable"] += 1
    return states


def test_killed_run_restarted_submits_no_job_twice(emulator, tmp_path):
    emulator.job_duration = 2.0
    with (tmp_path / "prompts.jsonl").open("w") as handle:
        for i in range(ROWS):
            handle.write(json.dumps({"id": f"r{i}", "prompt": f"resume prompt {i}", "size": "64x64"}) + "\n")
    (tmp_path / "job.json").write_text(json.dumps({
        "modality": "image",
        "configs": [{"name": "fal", "provider": "fal", "model": "fal-ai/flux/dev", "api_key_env": "FAL_KEY",
                     "base_url": emulator.url_for("fal"), "poll_interval": 1, "max_poll_attempts": 100}],
        "window": {"max_in_flight": 4, "threads": 4},
    }))
    env = {**os.environ, "FAL_KEY": emulator.key_for("fal"), "PYTHONPATH": str(ROOT)}
    output = tmp_path / "out"

    first = subprocess.Popen(pipeline_command(tmp_path), cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while ledger_states(output)["submitted"] < 4 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    submitted_before_kill = emulator.count("fal.submit")
    assert ledger_states(output)["submitted"] >= 4, first.stderr.read().decode()[-2000:]
    assert 4 <= submitted_before_kill < ROWS
    assert not (output / "results").exists() or not list((output / "results").glob("*.parquet"))

    second = subprocess.run(pipeline_command(tmp_path), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]

    submits_per_prompt = Counter(r.json["prompt"] for r in emulator.requests_for("fal.submit"))
    assert len(submits_per_prompt) == ROWS and set(submits_per_prompt.values()) == {1}
    rows = ds.dataset(str(output / "results")).to_table(columns=["row_id", "status", "provider"]).to_pylist()
    assert sorted(r["row_id"] for r in rows) == sorted(f"r{i}" for i in range(ROWS))
    assert {(r["status"], r["provider"]) for r in rows} == {("completed", "fal")}
    assert ledger_states(output)["done"] == ROWS
