"""Tests of the provider emulator core, over real HTTP with requests."""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.emulator import EmuRequest, EmuResponse, Fault, ProviderEmulator

DEMO = "demo"
AUTH = {"Authorization": f"Bearer test-{DEMO}-key"}


def register_demo_routes(emu: ProviderEmulator) -> None:
    """A tiny async provider: submit a job, poll it, fetch a hosted result."""

    @emu.route("POST", DEMO, r"/jobs", name="demo.submit")
    def submit(req: EmuRequest) -> EmuResponse:
        denied = emu.check_bearer(req, DEMO)
        if denied is not None:
            return denied
        moderation = req.take("moderation")
        if moderation is not None:
            return EmuResponse.error(400, {"error": "moderation", "message": moderation.message})
        job = emu.jobs.create(DEMO, kind="video", params=req.json or {}, faults=req.faults)
        return EmuResponse.json_({"id": job.id}, status=201)

    @emu.route("GET", DEMO, r"/jobs/(?P<job_id>[0-9a-f]+)", name="demo.status")
    def status(req: EmuRequest) -> EmuResponse:
        job = emu.jobs.get(req.params["job_id"] or "", poll=True)
        if job is None:
            return EmuResponse.error(404, {"error": "no such job"})
        return EmuResponse.json_(
            {"state": job.state(), "progress": job.progress(), "error": job.error_message}
        )

    @emu.route("GET", DEMO, r"/jobs/(?P<job_id>[0-9a-f]+)/result", name="demo.result")
    def result(req: EmuRequest) -> EmuResponse:
        job = emu.jobs.get(req.params["job_id"] or "")
        if job is None or job.state() != "completed":
            return EmuResponse.error(409, "not ready")
        data = job.result_once(
            lambda: {"url": emu.host_media(b"\x00video" * 5000, "video/mp4", provider=DEMO)}
        )
        return EmuResponse.json_({"url": data["url"]})

    @emu.route("POST", DEMO, r"/echo", name="demo.echo")
    def echo(req: EmuRequest) -> dict[str, object]:
        files = {
            name: [[f.filename, f.content_type, len(f.data)] for f in parts]
            for name, parts in req.files.items()
        }
        return {
            "json": req.json,
            "form": req.form,
            "form_multi": req.form_multi,
            "files": files,
            "is_multipart": req.is_multipart,
            "query_multi": req.query_multi,
        }

    @emu.route("POST", DEMO, r"/raw", name="demo.raw", raw_body=True)
    def raw(req: EmuRequest) -> EmuResponse:
        return EmuResponse.bytes_(req.body[::-1], "application/octet-stream")

    @emu.route("GET", DEMO, r"/slow", name="demo.slow")
    def slow(req: EmuRequest) -> dict[str, bool]:
        time.sleep(float(req.query.get("s", "0.2")))
        return {"ok": True}

    @emu.route("GET", DEMO, r"/items/special", name="demo.special")
    def special(req: EmuRequest) -> dict[str, str]:
        return {"item": "special"}

    @emu.route(("GET", "DELETE"), DEMO, r"/items/(?P<item>[^/]+)", name="demo.item")
    def item(req: EmuRequest) -> dict[str, str | None]:
        return {"item": req.params["item"], "method": req.method}

    @emu.route("GET", DEMO, r"/stream", name="demo.stream")
    def stream(req: EmuRequest) -> EmuResponse:
        return EmuResponse.stream_((bytes([i]) * 1000 for i in range(5)), "audio/mpeg")

    @emu.route("GET", DEMO, r"/events", name="demo.events")
    def events(req: EmuRequest) -> EmuResponse:
        return EmuResponse.sse_([{"n": 1}, ("done", "bye")])

    @emu.route("GET", DEMO, r"/boom", name="demo.boom")
    def boom(req: EmuRequest) -> EmuResponse:
        raise RuntimeError("handler bug")


@pytest.fixture(scope="module")
def demo_server() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(job_duration=0.3, routes_package=None) as emu:
        register_demo_routes(emu)
        yield emu


@pytest.fixture
def emu(demo_server: ProviderEmulator) -> ProviderEmulator:
    demo_server.reset()
    return demo_server


@pytest.fixture
def demo(emu: ProviderEmulator) -> str:
    return emu.url_for(DEMO)


def submit(demo: str, **json: object) -> requests.Response:
    return requests.post(f"{demo}/jobs", json=json, headers=AUTH, timeout=5)


def wait_state(demo: str, job_id: str, states: set[str], limit: float = 30.0) -> dict:
    deadline = time.monotonic() + limit
    while True:
        body = requests.get(f"{demo}/jobs/{job_id}", timeout=5).json()
        if body["state"] in states or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


# -- server and routing ------------------------------------------------------------


def test_urls_and_lifecycle() -> None:
    emu = ProviderEmulator(routes_package=None)
    with pytest.raises(RuntimeError):
        _ = emu.base_url
    with emu:
        assert emu.base_url.startswith("http://127.0.0.1:")
        assert emu.url_for("fal") == emu.base_url + "/fal"
    with pytest.raises(RuntimeError):
        _ = emu.base_url


def test_routing_params_first_match_404_405(emu: ProviderEmulator, demo: str) -> None:
    assert requests.get(f"{demo}/items/special").json() == {"item": "special"}
    assert requests.get(f"{demo}/items/a%20b").json() == {"item": "a b", "method": "GET"}
    assert requests.delete(f"{demo}/items/x").json()["method"] == "DELETE"

    missing = requests.get(f"{demo}/nothing/here")
    assert missing.status_code == 404
    assert missing.json()["path"] == "/demo/nothing/here"
    assert requests.get(f"{emu.base_url}/otherprovider/jobs").status_code == 404

    wrong_method = requests.put(f"{demo}/items/x")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "DELETE, GET, HEAD"

    recorded = emu.last("demo.item")
    assert recorded.params == {"item": "x"} and recorded.path == "/items/x"
    assert emu.requests[-1].route_name is None and emu.requests[-1].status == 405


def test_keep_alive_session_reuses_one_connection(emu: ProviderEmulator, demo: str) -> None:
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{demo}/items/special").status_code == 200
    ports = {r.client[1] for r in emu.requests_for("demo.special")}
    assert len(ports) == 1


def test_head_falls_back_to_get(emu: ProviderEmulator) -> None:
    url = emu.host_media(b"x" * 1234, "image/png")
    head = requests.head(url)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "1234"
    assert head.content == b""


def test_handler_exception_becomes_500_and_is_reported(emu: ProviderEmulator, demo: str) -> None:
    response = requests.get(f"{demo}/boom")
    assert response.status_code == 500
    assert len(emu.handler_errors) == 1 and "handler bug" in emu.handler_errors[0]


def test_streaming_and_sse_responses(emu: ProviderEmulator, demo: str) -> None:
    response = requests.get(f"{demo}/stream", stream=True)
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert b"".join(response.iter_content(None)) == b"".join(bytes([i]) * 1000 for i in range(5))
    events = requests.get(f"{demo}/events")
    assert events.headers["Content-Type"] == "text/event-stream"
    assert events.text == 'data: {"n": 1}\n\nevent: done\ndata: bye\n\n'


# -- auth ------------------------------------------------------------------------------


def test_bearer_auth(emu: ProviderEmulator, demo: str) -> None:
    assert requests.post(f"{demo}/jobs", json={}).status_code == 401
    wrong = requests.post(f"{demo}/jobs", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    lower = {"Authorization": f"bearer test-{DEMO}-key"}
    assert requests.post(f"{demo}/jobs", json={}, headers=lower).status_code == 201

    emu.keys[DEMO] = "rotated"
    assert submit(demo).status_code == 401
    rotated = {"Authorization": "Bearer rotated"}
    assert requests.post(f"{demo}/jobs", json={}, headers=rotated).status_code == 201
    emu.reset()
    assert emu.key_for(DEMO) == f"test-{DEMO}-key"


def test_key_matches_custom_header() -> None:
    req = EmuRequest(
        method="GET", path="/", full_path="/x/", raw_path="/x/", route_name=None, provider="x",
        params={}, query={}, query_multi={},
        headers=requests.structures.CaseInsensitiveDict({"xi-api-key": " k1 "}), body=b"",
    )
    assert ProviderEmulator.key_matches(req, "XI-API-KEY", "k1")
    assert not ProviderEmulator.key_matches(req, "xi-api-key", "k2")
    assert not ProviderEmulator.key_matches(req, "Authorization", "k1")


# -- body parsing ------------------------------------------------------------------------


def test_json_and_query_parsing(emu: ProviderEmulator, demo: str) -> None:
    body = requests.post(f"{demo}/echo?a=1&a=2&b=", json={"prompt": "ü", "n": [1, 2]}).json()
    assert body["json"] == {"prompt": "ü", "n": [1, 2]}
    assert body["query_multi"] == {"a": ["1", "2"], "b": [""]}
    recorded = emu.last("demo.echo")
    assert recorded.query == {"a": "1", "b": ""}
    assert recorded.headers["content-type"] == "application/json"

    vendor = requests.post(
        f"{demo}/echo", data=b'{"x": 1}', headers={"Content-Type": "application/vnd.x+json"}
    )
    assert vendor.json()["json"] == {"x": 1}


def test_invalid_json_is_rejected_before_handler_unless_raw(
    emu: ProviderEmulator, demo: str
) -> None:
    headers = {"Content-Type": "application/json"}
    bad = requests.post(f"{demo}/echo", data=b"{nope", headers=headers)
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid JSON body"}
    assert emu.last("demo.echo").status == 400

    raw = requests.post(f"{demo}/raw", data=b"{nope", headers=headers)
    assert raw.status_code == 200 and raw.content == b"epon{"


def test_urlencoded_form(emu: ProviderEmulator, demo: str) -> None:
    body = requests.post(f"{demo}/echo", data={"text": "hi there", "tag": ["a", "b"]}).json()
    assert body["form"] == {"text": "hi there", "tag": "a"}
    assert body["form_multi"]["tag"] == ["a", "b"]
    assert body["is_multipart"] is False and body["json"] is None


def test_multipart_form_with_binary_files(emu: ProviderEmulator, demo: str) -> None:
    payload = os.urandom(200_000) + b"\r\n--\r\n\n\r" + bytes(range(256))
    files = {
        "image": ("in.png", payload, "image/png"),
        "mask": ("mask.bin", b"", "application/octet-stream"),
    }
    data = {"prompt": "a cat ü", "n": ["1", "2"]}
    body = requests.post(f"{demo}/echo", data=data, files=files).json()
    assert body["is_multipart"] is True
    assert body["form"] == {"prompt": "a cat ü", "n": "1"}
    assert body["form_multi"]["n"] == ["1", "2"]
    assert body["files"]["image"] == [["in.png", "image/png", len(payload)]]
    assert body["files"]["mask"] == [["mask.bin", "application/octet-stream", 0]]

    recorded = emu.last("demo.echo").files["image"][0]
    assert recorded.filename == "in.png" and recorded.size == len(payload)
    assert recorded.data == payload


def test_malformed_multipart_is_400(emu: ProviderEmulator, demo: str) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    response = requests.post(f"{demo}/echo", data=b"garbage without boundaries", headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "malformed multipart body"}
    no_boundary = {"Content-Type": "multipart/form-data"}
    assert requests.post(f"{demo}/echo", data=b"--a\r\n", headers=no_boundary).status_code == 400


# -- jobs --------------------------------------------------------------------------------------


def test_job_lifecycle_over_http(emu: ProviderEmulator, demo: str) -> None:
    emu.jobs.advance_per_poll()  # one state per poll: no state is skipped however slow the polls
    job_id = submit(demo, prompt="cat").json()["id"]
    assert requests.get(f"{demo}/jobs/{job_id}/result").status_code == 409
    seen: list[str] = []
    progress: list[int] = []
    while not seen or seen[-1] != "completed":
        body = requests.get(f"{demo}/jobs/{job_id}").json()
        seen.append(body["state"])
        progress.append(body["progress"])
    assert seen == ["queued", "processing", "completed"] and progress == [0, 50, 100]

    job = emu.jobs.get(job_id)
    assert job is not None and job.params == {"prompt": "cat"} and job.provider == DEMO
    assert job.polls == len(progress)
    url = requests.get(f"{demo}/jobs/{job_id}/result").json()["url"]
    assert url == requests.get(f"{demo}/jobs/{job_id}/result").json()["url"]  # result_once
    assert url.startswith(emu.base_url + "/media/demo/") and url.endswith(".mp4")
    download = requests.get(url)
    assert download.headers["Content-Type"] == "video/mp4"
    assert download.content == emu.media_bytes(url) == b"\x00video" * 5000


class HandClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_job_states_by_time(emu: ProviderEmulator) -> None:
    clock = emu.jobs.clock = HandClock()
    job = emu.jobs.create("x", duration=0.25)
    assert job.state() == "queued" and job.progress() == 0
    clock.now += 0.1
    assert job.state() == "processing" and 0 <= job.progress() < 100
    clock.now += 0.2
    assert job.state() == "completed" and job.progress() == 100 and job.is_terminal

    doomed = emu.jobs.create("x", duration=0.05)
    doomed.fail("boom")
    assert doomed.state() in ("queued", "processing")
    clock.now += 0.08
    assert doomed.state() == "failed" and doomed.error_message == "boom"

    now_failed = emu.jobs.create("x", duration=10)
    now_failed.fail("bad input", immediately=True)
    assert now_failed.state() == "failed"
    cancelled = emu.jobs.create("x", duration=10)
    assert cancelled.cancel() and cancelled.state() == "cancelled"
    assert not job.cancel()

    assert emu.jobs.create("y", job_id="custom-1").id == "custom-1"
    assert [j.provider for j in emu.jobs.all("y")] == ["y"]
    assert emu.jobs.get("unknown") is None


def test_jobs_can_advance_one_state_per_poll(emu: ProviderEmulator) -> None:
    emu.jobs.advance_per_poll()
    job = emu.jobs.create("x", duration=0.0)  # the clock no longer matters
    seen = []
    for _ in range(4):
        polled = emu.jobs.get(job.id, poll=True)
        assert polled is not None
        seen.append((polled.state(), polled.progress()))
    assert seen == [("queued", 0), ("processing", 50), ("completed", 100), ("completed", 100)]
    doomed = emu.jobs.create("x", poll_sequence=("processing", "completed"))
    doomed.fail("boom")
    assert [emu.jobs.get(doomed.id, poll=True).state() for _ in range(2)] == ["processing", "failed"]
    emu.reset()
    assert emu.jobs.create("x", duration=10).state() == "queued" and emu.jobs.poll_sequence is None
    with pytest.raises(ValueError, match="poll_sequence must end in 'completed'"):
        emu.jobs.create("x", poll_sequence=("queued",))


def test_peak_running_jobs(emu: ProviderEmulator) -> None:
    emu.jobs.clock = HandClock()
    for _ in range(3):
        emu.jobs.create("p", duration=0.2)
    assert emu.jobs.peak_running("p") == 3
    emu.reset()
    clock = emu.jobs.clock = HandClock()
    first = emu.jobs.create("p", duration=0.05)
    clock.now += 0.07
    assert first.is_terminal
    emu.jobs.create("p", duration=0.05)
    assert emu.jobs.peak_running("p") == 1
    assert emu.jobs.peak_running("other") == 0


# -- faults -------------------------------------------------------------------------------------


def test_http_faults_times_and_fifo(emu: ProviderEmulator, demo: str) -> None:
    emu.inject(
        "demo.submit",
        Fault.http(429, body={"detail": "Rate limit exceeded"}, headers={"Retry-After": "1"}),
        times=2,
    )
    emu.inject("demo.submit", Fault.http(503))
    responses = [submit(demo) for _ in range(4)]
    assert [r.status_code for r in responses] == [429, 429, 503, 201]
    assert responses[0].json() == {"detail": "Rate limit exceeded"}
    assert responses[0].headers["Retry-After"] == "1"
    assert responses[2].json() == {"error": "Service Unavailable"}
    assert emu.count("demo.submit") == 4
    assert [r.fault for r in emu.requests_for("demo.submit")] == ["http", "http", "http", None]
    assert len(emu.jobs.all()) == 1


def test_fault_forever_until_reset(emu: ProviderEmulator, demo: str) -> None:
    emu.inject("demo.status", Fault.http(500, "oops"), times=None)
    for _ in range(3):
        response = requests.get(f"{demo}/jobs/abc")
        assert response.status_code == 500 and response.text == "oops"
    assert emu.pending_faults("demo.status")[0][1] is None
    emu.reset()
    assert requests.get(f"{demo}/jobs/abc").status_code == 404


def test_inject_unknown_route_name_raises(emu: ProviderEmulator) -> None:
    with pytest.raises(KeyError, match="demo.submit"):
        emu.inject("demo.sumbit", Fault.http(500))
    with pytest.raises(ValueError):
        emu.inject("demo.submit", Fault.http(500), times=0)


def test_delay_fault(emu: ProviderEmulator, demo: str) -> None:
    emu.inject("demo.special", Fault.delay(0.3))
    started = time.monotonic()
    assert requests.get(f"{demo}/items/special").status_code == 200
    assert time.monotonic() - started >= 0.3

    emu.inject("demo.special", Fault.delay(0.5))
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{demo}/items/special", timeout=0.15)


def test_truncated_download(emu: ProviderEmulator) -> None:
    data = os.urandom(300_000)
    url = emu.host_media(data, "video/mp4", provider="demo")
    emu.inject("media", Fault.truncate(1000), times=2)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url)

    received = bytearray()
    with requests.get(url, stream=True) as response:
        assert response.headers["Content-Length"] == str(len(data))
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in response.iter_content(256):
                received += chunk
    assert 0 < len(received) <= 1000 and data.startswith(bytes(received))

    assert requests.get(url).content == data


def test_expired_media(emu: ProviderEmulator) -> None:
    url = emu.host_media(b"abc", "image/png")
    emu.inject("media", Fault.expired())
    emu.inject("media", Fault.expired(404))
    forbidden = requests.get(url)
    assert forbidden.status_code == 403
    assert forbidden.headers["Content-Type"] == "application/xml"
    assert "<Code>AccessDenied</Code>" in forbidden.text
    missing = requests.get(url)
    assert missing.status_code == 404 and "NoSuchKey" in missing.text
    assert requests.get(url).content == b"abc"


def test_connection_reset(emu: ProviderEmulator, demo: str) -> None:
    emu.inject("demo.submit", Fault.connection_reset())
    with requests.Session() as session:
        with pytest.raises(requests.ConnectionError):
            session.post(f"{demo}/jobs", json={}, headers=AUTH)
        assert session.post(f"{demo}/jobs", json={}, headers=AUTH).status_code == 201
    first = emu.requests_for("demo.submit")[0]
    assert first.fault == "connection_reset" and first.status is None


def test_moderation_fault_is_handed_to_handler(emu: ProviderEmulator, demo: str) -> None:
    emu.inject("demo.submit", Fault.moderation("prompt flagged"))
    response = submit(demo, prompt="bad")
    assert response.status_code == 400
    assert response.json() == {"error": "moderation", "message": "prompt flagged"}
    assert emu.jobs.all() == []


def test_fail_job_and_slow_job_faults(emu: ProviderEmulator, demo: str) -> None:
    emu.inject("demo.submit", Fault.fail_job("GPU on fire"))
    emu.inject("demo.submit", Fault.slow_job(600.0))
    failing = submit(demo).json()["id"]
    slow = submit(demo).json()["id"]
    normal = submit(demo).json()["id"]

    slow_job = emu.jobs.get(slow)
    assert slow_job is not None and slow_job.duration == 600.0
    assert emu.jobs.get(normal).duration == emu.job_duration  # type: ignore[union-attr]
    body = wait_state(demo, failing, {"failed", "completed"})
    assert body == {"state": "failed", "progress": body["progress"], "error": "GPU on fire"}
    assert requests.get(f"{demo}/jobs/{slow}").json()["state"] in ("queued", "processing")
    assert wait_state(demo, normal, {"failed", "completed"})["state"] == "completed"


def test_custom_fault_and_take() -> None:
    fault = Fault.custom("quota", message="over quota", remaining=0)
    assert fault.data == {"remaining": 0} and not fault.is_generic
    with pytest.raises(ValueError):
        Fault.custom("http")
    req = EmuRequest(
        method="GET", path="/", full_path="/x/", raw_path="/x/", route_name=None, provider="x",
        params={}, query={}, query_multi={}, headers=requests.structures.CaseInsensitiveDict(),
        body=b"", faults=[Fault.moderation(), fault],
    )
    assert req.take("quota") is fault
    assert req.take("quota") is None
    assert [f.kind for f in req.faults] == ["moderation"]


# -- recording and concurrency --------------------------------------------------------------------


def test_recording(emu: ProviderEmulator, demo: str) -> None:
    submit(demo, prompt="a")
    submit(demo, prompt="b")
    requests.post(f"{demo}/echo", files={"f": ("a.txt", b"hello", "text/plain")})
    assert emu.count("demo.submit") == 2
    last = emu.last("demo.submit")
    assert last.json == {"prompt": "b"} and last.method == "POST"
    assert last.headers["authorization"] == AUTH["Authorization"]
    assert last.full_path == "/demo/jobs" and last.provider == DEMO and last.status == 201
    assert emu.last("demo.echo").files == {"f": [("a.txt", "text/plain", 5, b"hello")]}
    assert [r.route_name for r in emu.requests] == ["demo.submit", "demo.submit", "demo.echo"]
    assert len(emu.requests_for(provider=DEMO)) == 3
    received = [r.received_at for r in emu.requests]
    assert received == sorted(received)
    with pytest.raises(AssertionError, match="demo.status"):
        emu.last("demo.status")


def test_peak_concurrency(emu: ProviderEmulator, demo: str) -> None:
    barrier = threading.Barrier(5)
    codes: list[int] = []

    def call() -> None:
        barrier.wait()
        codes.append(requests.get(f"{demo}/slow", params={"s": "0.3"}).status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 5
    assert emu.peak_concurrency(DEMO) == 5
    # The server thread finishes its bookkeeping just after the client has the response.
    deadline = time.monotonic() + 2
    while emu.in_flight(DEMO) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.in_flight(DEMO) == 0
    requests.get(f"{demo}/slow", params={"s": "0"})
    emu.reset()
    assert emu.peak_concurrency(DEMO) == 0


# -- reset, discovery, media makers, fixtures -------------------------------------------------------


def test_reset_clears_everything(emu: ProviderEmulator, demo: str) -> None:
    url = emu.host_media(b"data", "audio/mpeg", provider=DEMO)
    submit(demo)
    emu.inject("demo.submit", Fault.http(500), times=None)
    emu.keys[DEMO] = "other"
    emu.job_duration = 9.0
    emu.state(DEMO)["voices"] = ["v1"]
    calls: list[int] = []
    emu.on_reset(lambda: calls.append(1))

    emu.reset()
    assert emu.requests == [] and emu.jobs.all() == []
    assert emu.pending_faults("demo.submit") == []
    assert emu.keys == {} and emu.job_duration == 0.3
    assert emu.state(DEMO) == {} and calls == [1]
    assert requests.get(url).status_code == 404
    with pytest.raises(KeyError):
        emu.media_bytes(url)
    assert submit(demo).status_code == 201
    emu._reset_callbacks.clear()


def test_routes_modules_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "emu_routes_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "b_prov.py").write_text(
        "def register(emu):\n"
        "    @emu.route('GET', 'bprov', r'/ping', name='bprov.ping')\n"
        "    def ping(req):\n"
        "        return {'pong': True}\n"
    )
    (package / "a_prov.py").write_text(
        "def register(emu):\n    emu.add_route('GET', 'aprov', r'/x', lambda req: {})\n"
    )
    (package / "helpers.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with ProviderEmulator(routes_package="emu_routes_for_test") as emu:
        assert emu.loaded_routes_modules == [
            "emu_routes_for_test.a_prov",
            "emu_routes_for_test.b_prov",
        ]
        assert requests.get(emu.url_for("bprov") + "/ping").json() == {"pong": True}
        assert "aprov.<lambda>" in emu.route_names()
    for name in ("emu_routes_for_test", "emu_routes_for_test.a_prov",
                 "emu_routes_for_test.b_prov", "emu_routes_for_test.helpers"):
        sys.modules.pop(name, None)


def test_default_routes_package_loads() -> None:
    emu = ProviderEmulator(routes_package="tests.emulator.routes")
    assert all(m.startswith("tests.emulator.routes.") for m in emu.loaded_routes_modules)


def test_media_makers_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []

    def make_video(prompt, width, height, duration_seconds, *, fps=24, seed=0):  # type: ignore[no-untyped-def]
        calls.append(("video", prompt, width, height, duration_seconds, fps, seed))
        return b"mp4:" + prompt.encode()

    def make_image(prompt, width, height, *, image_format="png", seed=0):  # type: ignore[no-untyped-def]
        calls.append(("image", prompt, image_format))
        return b"img:" + image_format.encode()

    def make_audio(text, *, audio_format="mp3", sample_rate=None, bitrate_kbps=None,  # type: ignore[no-untyped-def]
                   duration_seconds=None, seed=0):
        calls.append(("audio", text, audio_format))
        return types.SimpleNamespace(data=b"aud", content_type="audio/wav")

    fake = types.ModuleType("fake_media_for_test")
    fake.make_video, fake.make_image, fake.make_audio = make_video, make_image, make_audio  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_media_for_test", fake)

    with ProviderEmulator(routes_package=None, media_module="fake_media_for_test") as emu:
        assert emu.video_bytes("cat", width=64, height=48, duration=2.0) == b"mp4:cat"
        assert emu.video_bytes("cat", width=64, height=48, duration=2.0) == b"mp4:cat"
        assert calls == [("video", "cat", 64, 48, 2.0, 24, 0)]
        url = emu.host_image("dog", image_format="jpeg", provider="x")
        assert url.endswith(".jpg") and requests.get(url).content == b"img:jpeg"
        audio_url = emu.host_audio("hello", audio_format="wav")
        assert requests.get(audio_url).headers["Content-Type"] == "audio/wav"
        emu.audio_clip("hello", audio_format="wav")
        assert len(calls) == 3


def test_real_media_module_if_available(emu: ProviderEmulator) -> None:
    pytest.importorskip("providers.media.synthesis")
    data = emu.image_bytes("probe", width=32, height=32)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert emu.image_bytes("probe", width=32, height=32) is data


def test_conftest_fixture_is_started_and_reset(emulator: ProviderEmulator) -> None:
    assert emulator.requests == []
    assert requests.get(emulator.base_url + "/nowhere").status_code == 404
    assert emulator.count("media") == 0 and len(emulator.requests) == 1
