"""A result that carries an authenticated URL: the pipeline streams it to storage with
the provider's credentials (checked by the emulator) instead of the provider buffering
the whole video, and the key shows up in no output, log, repr or pickle."""

from __future__ import annotations

import logging
import pickle

import pytest
import requests

from providers import RetryPolicy
from providers.core.driver import drive_sync
from providers.core.http import stream_get
from providers.core.orchestrator import chain_steps
from schemas import VideoGenerationConfig, VideoGenerationRequest
from schemas.media import UrlHeaders
from providers.builtin.openai import OpenAIProvider
from tests.conftest import serve_retired_models
from tests.emulator import EmuResponse
from tests.pipelines.conftest import rows_by_id, run_pipeline, write_job, write_jsonl
from transforms.media_store import MediaStore
from transforms.storage import Storage

NO_RETRY = RetryPolicy(max_retries=0)
KEY_ENVS = {"google": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY"}
CASES = [  # provider, model, the route serving the file, the header that carries the key
    ("google", "veo-3.1-generate-001", "google.download_file", "x-goog-api-key"),
    ("openai", "sora-2", "openai.videos_content", "Authorization"),
]


@pytest.fixture
def emu(emulator, monkeypatch):
    emulator.jobs.advance_per_poll()
    serve_retired_models(monkeypatch, OpenAIProvider.models, "sora-")  # Sora's wire protocol, as in test_openai
    return emulator


def _config(emu, provider: str, model: str) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider=provider, model=model, base_url=emu.url_for(provider),
                                 api_key=emu.key_for(provider), poll_interval=0, max_poll_attempts=50)


def _everything_under(root) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


@pytest.mark.parametrize("provider, model, route, header", CASES)
def test_the_pipeline_path_streams_the_url_with_the_key_in_a_header(emu, tmp_path, caplog, provider, model, route,
                                                                    header):
    caplog.set_level(logging.DEBUG)
    key = emu.key_for(provider)
    request = VideoGenerationRequest(prompt="a lighthouse", duration_seconds=4)
    response = drive_sync(chain_steps("video", _config(emu, provider, model), request, NO_RETRY, stream_media=True), None)

    assert isinstance(response.video, str) and emu.count(route) == 0  # nothing buffered by the provider
    credentials = response.url_headers(response.video)
    assert credentials is not None and key in str(credentials.reveal())
    for shown in (repr(response), str(response), response.model_dump_json(), repr(credentials),
                  str(response.execution_metadata), caplog.text):
        assert key not in shown
    assert key.encode() not in pickle.dumps(response)
    assert pickle.loads(pickle.dumps(response)).url_headers(response.video).reveal() == {}

    (stored,) = MediaStore(Storage(str(tmp_path / "out"))).store("video", "k" * 32, response)
    assert stored.width and stored.duration_seconds
    assert key in emu.last(route).headers[header]  # the emulator refuses the file without it
    assert key.encode() not in _everything_under(tmp_path / "out")
    assert key not in caplog.text


@pytest.mark.parametrize("provider, model, route, header", CASES)
def test_the_sdk_path_still_answers_with_bytes(emu, provider, model, route, header):
    request = VideoGenerationRequest(prompt="a lighthouse", duration_seconds=4)
    response = drive_sync(chain_steps("video", _config(emu, provider, model), request, NO_RETRY), None)
    assert isinstance(response.video, dict) and response.video["content"][:16]
    assert response.video["content_type"] == "video/mp4" and emu.count(route) == 1


@pytest.mark.parametrize("provider, model, route, header", CASES)
def test_a_pipeline_run_stores_the_video_and_writes_the_key_nowhere(emu, tmp_path, monkeypatch, caplog, provider,
                                                                    model, route, header):
    caplog.set_level(logging.DEBUG)
    key = emu.key_for(provider)
    monkeypatch.setenv(KEY_ENVS[provider], key)
    config = {"name": "only", "provider": provider, "model": model, "api_key_env": KEY_ENVS[provider],
              "base_url": emu.url_for(provider), "poll_interval": 0, "max_poll_attempts": 50}
    job = write_job(tmp_path / "job.yaml", {"modality": "video", "configs": [config]})
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"id": "one", "prompt": "a lighthouse", "duration_seconds": 4}])
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0

    row = rows_by_id(tmp_path / "out")["one"]
    assert row["status"] == "completed" and row["media_uris"] and row["duration_seconds"]
    assert key in emu.last(route).headers[header] and emu.count(route) == 1
    assert key.encode() not in _everything_under(tmp_path / "out")
    assert key not in caplog.text


def test_credentials_do_not_follow_a_redirect_to_another_origin(emulator):
    data = emulator.image_bytes("x", width=8, height=8)
    elsewhere = emulator.host_media(data, "image/png", provider="demo").replace("127.0.0.1", "localhost")
    emulator.add_route("GET", "demo", r"/moved", lambda req: EmuResponse(302, b"", "text/plain", {"Location": elsewhere}),
                       name="demo.moved")
    session = requests.Session()
    url = emulator.url_for("demo") + "/moved"
    with stream_get(session, url, headers={"Authorization": "Bearer secret"}, timeout=5) as response:
        assert response.status_code == 200 and response.content == data
    assert emulator.last("demo.moved").headers.get("Authorization") == "Bearer secret"
    hosted = emulator.requests_for("media")
    assert hosted and all("Authorization" not in r.headers for r in hosted)


def test_url_headers_are_opaque():
    headers = UrlHeaders({"x-goog-api-key": "AIza-secret"})
    assert "secret" not in repr(headers) and b"secret" not in pickle.dumps(headers)
    assert headers.reveal() == {"x-goog-api-key": "AIza-secret"}
