"""Issue #11, end to end: the real CLI in a subprocess against the emulator, with a canary key
(as a mounted secret would give it: with a trailing newline) in the environment.

Hostile rows (local files, internal addresses, broken bytes, deep nesting, duplicate ids) and a
provider that echoes the key in its errors must leave no trace of the key in any file under the
output root, in stdout/stderr, or in any request that did not go to the provider's own endpoint.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest
import yaml

from tests.emulator import Fault

ROOT = Path(__file__).resolve().parents[2]
CANARY = "sk-canary-7f3a9c1e5b2d4680"
OTHER_SECRET = "pk-provider-config-secret-4411"
ENV_NAME = "MEDIAGEN_CANARY_KEY"


def _variants(secret: str) -> list[bytes]:
    return [secret.encode(), quote(secret, safe="").encode(), base64.b64encode(f"user:{secret}".encode())[8:24]]


def _run_cli(*args: str, env_key: str = CANARY + "\n") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, ENV_NAME: env_key, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pipelines.generate", *args, "--no-progress"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _all_text_under(root: Path) -> bytes:
    """Every file's bytes, plus Parquet tables decoded (compressed pages would hide a string)."""
    chunks = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            chunks.append(path.read_bytes())
            if path.suffix == ".parquet":
                chunks.append(json.dumps(pq.read_table(path).to_pylist(), default=str).encode())
    return b"\n".join(chunks)


@pytest.fixture
def hostile_run(emulator, tmp_path):
    emulator.keys["elevenlabs"] = CANARY
    emulator.inject("elevenlabs.sts", Fault.http(401, {"detail": {"status": "invalid_api_key",
                                                                 "message": f"Invalid API key: '{CANARY}\n'"}}))
    good = emulator.host_audio("a clip", audio_format="mp3")
    job = {
        "modality": "sts",
        "retry": {"max_retries": 0},
        "inputs": {"allow_private_hosts": ["127.0.0.1"]},
        "configs": [{
            "name": "eleven", "provider": "elevenlabs", "model": "eleven_english_sts_v2", "api_key_env": ENV_NAME,
            "base_url": emulator.url_for("elevenlabs"), "timeout": 60,
            "provider_config": {"x-api-key": OTHER_SECRET, "private_key": OTHER_SECRET},
        }],
    }
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(job))
    lines = [
        json.dumps({"id": "good-1", "audio": good, "voice_id": "v1"}),
        json.dumps({"id": "good-2", "audio": good, "voice_id": "v2"}),
        json.dumps({"id": "environ", "audio": "file:///proc/self/environ", "voice_id": "v"}),
        json.dumps({"id": "path", "audio": "/proc/self/environ", "voice_id": "v"}),
        json.dumps({"id": "ssrf", "audio": emulator.url_for("elevenlabs").replace("127.0.0.1", "localhost") + "/v1/models",
                    "voice_id": "v"}),
        json.dumps({"id": "metadata", "audio": "http://169.254.169.254/latest/meta-data/iam", "voice_id": "v"}),
        json.dumps({"id": "deep", "audio": good, "voice_id": "v", "x": json.loads("[" * 300 + "]" * 300)}),
        json.dumps({"id": "good-1", "audio": good, "voice_id": "v3"}),
    ]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines[:3]).encode() + b"\n{\"id\": \"bad\xff\"}\n"
                        + "\n".join(lines[3:]).encode() + b"\n")
    output = tmp_path / "out"
    done = _run_cli("--input", str(prompts), "--output", str(output), "--config", str(config))
    table = pq.read_table(next((output / "results").rglob("*.parquet"))).to_pylist() if (output / "results").exists() else []
    return done, output, {r["row_id"]: r for r in table}


def test_hostile_rows_cost_only_themselves_and_the_canary_leaks_nowhere(hostile_run, emulator):
    done, output, rows = hostile_run
    assert done.returncode == 3, done.stderr[-3000:]  # invalid and failed rows: exit 3 (README "Exit codes")
    statuses = {row_id: row["status"] for row_id, row in rows.items()}
    assert {k: statuses[k] for k in ("environ", "path", "ssrf", "metadata")} == dict.fromkeys(
        ("environ", "path", "ssrf", "metadata"), "invalid")
    assert "audio: 'file:///proc/self/environ' is a local path" in rows["environ"]["error_message"]
    assert "localhost is not a public host" in rows["ssrf"]["error_message"]
    errors = [r["error_message"] or "" for r in rows.values()]
    assert sum("prompts.jsonl:4: not valid UTF-8" in e for e in errors) == 1  # the BOM'd line 1 is fine
    assert sum("prompts.jsonl:8: nested deeper than" in e for e in errors) == 1
    assert len(rows) == 9, sorted(rows)  # one result row per input line
    assert {"good-1", "good-2", "good-1~2"} <= set(rows), "the repeated id is kept, renamed"
    generated = [rows[k]["status"] for k in ("good-1", "good-2", "good-1~2")]
    assert generated.count("failed") == 1 and generated.count("completed") == 2, generated  # the 401 hit one row
    (failed,) = [rows[k] for k in ("good-1", "good-2", "good-1~2") if rows[k]["status"] == "failed"]
    assert "Invalid API key: '***" in failed["error_message"], failed["error_message"]  # echoed, then redacted
    assert "Invalid API key: '***" in failed["attempts"][0]["error_message"]

    leaked = _all_text_under(output) + done.stdout.encode() + done.stderr.encode()
    for variant in _variants(CANARY) + _variants(OTHER_SECRET):
        assert variant not in leaked, variant
    for recorded in emulator.requests:
        carries = any(CANARY in value for value in recorded.headers.values()) or CANARY in recorded.full_path
        assert not carries or recorded.provider == "elevenlabs", (recorded.route_name, recorded.full_path)
        assert not any(h.lower() in ("proc", "environ") for h in recorded.files)
    assert not any(b"MEDIAGEN_CANARY_KEY=" in r.body for r in emulator.requests), "the worker's environment was uploaded"
    manifest = json.loads(next((output / "_runs").glob("*.json")).read_text())
    assert manifest["job"]["configs"][0]["provider_config"] == {"x-api-key": "***", "private_key": "***"}
    assert manifest["job"]["configs"][0]["api_key_env"] == ENV_NAME


@pytest.mark.parametrize("text", [
    f"configs:\n  - provider: fal\n    model: m\n    apiKey: {CANARY}\n",
    f"configs:\n  - provider: fal\n    model: m\n    x-api-key: {CANARY}\n",
    f"configs:\n  - provider: fal\n    model: m\n    token: [{CANARY}]\n",
    f"configs:\n  - provider: fal\n    model: m\n    provider_config: {{bearer: {CANARY}: x}}\n",
])
def test_job_file_errors_never_echo_a_key(tmp_path, text):
    config = tmp_path / "job.yaml"
    config.write_text(text)
    (tmp_path / "p.jsonl").write_text('{"prompt": "x"}\n')
    done = _run_cli("--input", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "out"), "--config", str(config))
    assert done.returncode == 2 and "error:" in done.stderr
    assert CANARY not in done.stderr + done.stdout and "Traceback" not in done.stderr
