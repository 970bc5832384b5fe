"""The output root is not trusted: a run id cannot point outside it, and a URL edited into a
ledger claim (by anyone who can write the bucket) never receives the provider's key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from providers.core.orchestrator import chain_keys
from schemas import ImageGenerationRequest, JobHandle, utc_now
from schemas.results import ClaimRecord
from tests.emulator import ProviderEmulator

ROOT = Path(__file__).resolve().parents[2]
CANARY = "fal-canary-5d1e9b7c3a"


def cli(tmp_path: Path, *args: str, key: str = CANARY) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FAL_KEY": key, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pipelines.generate", *args, "--no-progress"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("run_id", ["x/../../../victim", "../victim", "/tmp/victim", "a b", "..", ".hidden", "x" * 129])
def test_hostile_run_ids_are_refused_and_nothing_is_written(tmp_path, run_id):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "p"}) + "\n")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("precious")
    done = cli(tmp_path, "--input", str(prompts), "--output", str(tmp_path / "box" / "out"), "--run_id", run_id)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith("error: --run_id")
    assert not (tmp_path / "box").exists()
    assert (tmp_path / "victim" / "keep.txt").read_text() == "precious"


class Recorder(BaseHTTPRequestHandler):
    """A foreign host: records every request's headers, answers 404."""

    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        Recorder.seen.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def foreign_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_edited_ledger_url_gets_no_credentials(emulator: ProviderEmulator, tmp_path, foreign_host):
    emulator.keys["fal"] = CANARY
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "a lighthouse", "size": "64x64"}) + "\n")
    entry = {"name": "fal", "provider": "fal", "model": "fal-ai/flux/dev", "api_key_env": "FAL_KEY",
             "base_url": emulator.url_for("fal"), "poll_interval": 0, "timeout": 30}
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"modality": "image", "configs": [entry], "retry": {"max_retries": 0}}))

    # The claim a crashed run would have left, its URLs edited to point at a foreign host.
    from pipelines.job_file import load_job

    config = load_job(str(job)).entry(None).build("image")
    [key] = chain_keys("image", config, ImageGenerationRequest(prompt="a lighthouse", size="64x64"))
    handle = JobHandle(provider="fal", model="fal-ai/flux/dev", modality="image", job_id="req-1",
                       poll_url=f"{foreign_host}/status", result_url=f"{foreign_host}/result",
                       cancel_url=f"{foreign_host}/cancel")
    now = utc_now()
    claim = ClaimRecord(key=key, generation=0, state="submitted", run_id="crashed", worker="elsewhere/1/x",
                        claimed_at=now, lease_until=now, job=handle, updated_at=now)
    (tmp_path / "out" / "_ledger" / key).mkdir(parents=True)
    (tmp_path / "out" / "_ledger" / key / "claim-000000.json").write_text(claim.model_dump_json())

    done = cli(tmp_path, "--input", str(prompts), "--output", str(tmp_path / "out"), "--config", str(job))
    assert done.returncode in (0, 1, 3), done.stderr[-2000:]
    assert Recorder.seen, "the run followed the recorded job"
    for request in Recorder.seen:
        assert CANARY not in json.dumps(request)
        assert "authorization" not in request
    assert emulator.count("fal.submit") == 0  # the job on record was followed, not paid for again
