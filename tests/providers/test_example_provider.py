"""The provider guide's example provider, run end to end against emulated "Acme" routes:
what a new provider needs (one file plus these tests) is enough for the whole SDK."""

from typing import Any, Iterator

import pytest

from providers import RetryPolicy, generate_video
from providers import registry
from providers.errors import GenerationFailedError, UnsupportedRequestError
from schemas import VideoGenerationConfig
from tests.emulator import EmuRequest, EmuResponse, Fault, ProviderEmulator
from tests.providers.example_provider import AcmeProvider

FAST = RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.02)
ACME_STATUS = {"queued": "queued", "processing": "running", "completed": "done", "failed": "failed"}


def acme_routes(emu: ProviderEmulator) -> None:
    """Acme's two endpoints, the way tests/emulator/routes/<name>.py modules write them."""

    @emu.route("POST", "acme", r"/v1/videos", name="acme.create")
    def create(req: EmuRequest) -> EmuResponse:
        if (denied := emu.check_bearer(req, "acme")) is not None:
            return denied
        if not req.json.get("prompt"):
            return EmuResponse.error(400, {"error": "prompt is required"})
        job = emu.jobs.create("acme", params={"prompt": req.json["prompt"]}, faults=req.faults)
        return EmuResponse.json_({"id": job.id})

    @emu.route("GET", "acme", r"/v1/videos/(?P<id>[^/]+)", name="acme.get")
    def get(req: EmuRequest) -> EmuResponse:
        job = emu.jobs.get(req.params["id"] or "", poll=True)
        if job is None:
            return EmuResponse.error(404, {"error": "no such video"})
        view: dict[str, Any] = {"status": ACME_STATUS[job.state()], "progress": job.progress()}
        if job.state() == "completed":
            view["video_url"] = job.result_once(lambda: {"url": emu.host_video(job.params["prompt"], duration=1.0)})["url"]
        if job.state() == "failed":
            view["error"] = job.error_message
        return EmuResponse.json_(view)


@pytest.fixture(scope="module")
def acme_emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(routes_package=None) as emu:
        acme_routes(emu)
        yield emu


@pytest.fixture
def acme(acme_emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderEmulator]:
    monkeypatch.setitem(registry._handlers, "acme", AcmeProvider())  # registered for this test only
    acme_emulator.reset()
    acme_emulator.jobs.advance_per_poll()
    yield acme_emulator


def config(emu: ProviderEmulator, **overrides: Any) -> VideoGenerationConfig:
    settings = {"provider": "acme", "model": "acme-video-2", "base_url": emu.url_for("acme"),
                "api_key": emu.key_for("acme"), "poll_interval": 0, "max_poll_attempts": 50, "timeout": 30}
    return VideoGenerationConfig(**{**settings, **overrides})


def test_the_example_provider_generates_a_video_with_progress(acme):
    updates = []
    response = generate_video(config(acme), prompt="a paper boat", duration_seconds=5, seed=3,
                              on_progress=updates.append, retry=FAST)
    sent = acme.last("acme.create")
    assert sent.json == {"model": "acme-video-2", "prompt": "a paper boat", "length": "5s", "seed": 3}
    assert sent.headers["Authorization"] == f"Bearer {acme.key_for('acme')}"
    assert response.video.startswith("http") and acme.media_bytes(response.video)[4:8] == b"ftyp"
    assert [u.status for u in updates][-1] == "completed" and "processing" in [u.status for u in updates]


def test_the_example_provider_reports_a_failed_job_and_skips_what_the_model_cannot_do(acme):
    acme.inject("acme.create", Fault.fail_job("the boat sank"))
    with pytest.raises(GenerationFailedError, match="the boat sank"):
        generate_video(config(acme), prompt="a paper boat", retry=FAST)
    with pytest.raises(UnsupportedRequestError, match="duration"):
        generate_video(config(acme), prompt="a paper boat", duration_seconds=7, retry=FAST)
    assert acme.count("acme.create") == 1  # the unsupported duration never reached the API
