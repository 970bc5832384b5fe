"""The gallery of a 300-row mixed run, in a real headless Chromium (Debian's ``chromium``).

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON), so no driver or extra Python package is needed.
The gallery is served from the output root by an ``http.server`` thread on 127.0.0.1.
Waits are on page state (the gallery's ``ready()`` promise), never on the clock.

Without Chromium the tests skip with the reason; under CI (``CI`` set) they fail instead:
``.ci/run`` installs it.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.pipelines.conftest import read_table, run_pipeline, write_job, write_jsonl

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--mute-audio", "--remote-debugging-pipe",
)
COMMAND_TIMEOUT = 120.0
"""Seconds one DevTools command may take: a backstop for a hung browser, not a synchronisation."""
XSS_PROMPT = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
VIDEO_ROWS, FAILED_ROWS, INVALID_ROWS = 292, 5, 3
IMAGE_ROWS, TTS_ROWS = 12, 6
TOTAL = VIDEO_ROWS + FAILED_ROWS + INVALID_ROWS + IMAGE_ROWS + TTS_ROWS


def find_chromium() -> str:
    """The browser's path; skip (fail under CI) when there is none."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    reason = f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}); on Debian: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (.ci/run installs it; CI must run the browser test)")
    pytest.skip(reason)


# --------------------------------------------------------------------------
# The output: a 300-row video run with failed and invalid rows, then image and speech runs


def video_job() -> dict[str, Any]:
    return {
        "modality": "video",
        "configs": [
            {"name": "main", "provider": "mock", "model": "mock-video", "mock": {"enabled": True}},
            {"name": "doomed", "provider": "mock", "model": "mock-refuser",
             "mock": {"responses": [{"error": "server_error", "error_message": "upstream <b>broke</b> loudly"}]}},
        ],
        "retry": {"max_retries": 1, "base_delay": 0.01},
    }


def video_rows() -> list[dict[str, Any]]:
    # 30 distinct requests: rows repeating one share its media (generated once), which keeps this fast
    rows = [{"id": f"v{i:03d}", "prompt": f"shot {i % 30}: a paper boat drifting on a pond",
             "resolution": "360p", "aspect_ratio": "16:9", "duration_seconds": 1} for i in range(VIDEO_ROWS - 1)]
    rows.append({"id": "xss-completed", "prompt": XSS_PROMPT, "resolution": "360p", "duration_seconds": 1})
    rows += [{"id": f"refused-{i}", "prompt": f"refused {i}", "resolution": "360p", "duration_seconds": 1,
              "config": "doomed"} for i in range(FAILED_ROWS)]
    rows += [
        {"id": "xss-invalid", "prompt": XSS_PROMPT, "resolution": "8k"},
        {"id": "no-prompt", "duration_seconds": 1},
        {"id": "bad-config", "prompt": "x", "config": "nope"},
    ]
    return rows


def make_mixed_output(base: Path) -> Path:
    """Three runs into one output root; returns the root (the gallery is written by the runs)."""
    base.mkdir(parents=True, exist_ok=True)
    output = base / "out"
    runs = [
        ("video-run", video_job(), video_rows(), "replace"),
        ("image-run", {"modality": "image", "configs": [{"name": "img", "provider": "mock", "model": "mock-image"}]},
         [{"id": f"img{i:02d}", "prompt": f"a tiny tile, pattern {i}", "size": "64x64"} for i in range(IMAGE_ROWS)],
         "append"),
        ("tts-run", {"modality": "tts", "configs": [{"name": "voice", "provider": "mock", "model": "mock-tts"}]},
         [{"id": f"say{i}", "text": f"hello number {i}"} for i in range(TTS_ROWS)], "append"),
    ]
    for run_id, job, rows, mode in runs:
        prompts = write_jsonl(base / f"{run_id}.jsonl", rows)
        config = write_job(base / f"{run_id}.yaml", job)
        code = run_pipeline("--input", prompts, "--output", output, "--config", config, "--run_id", run_id,
                            "--results_mode", mode)
        assert code == 0, f"{run_id} exited {code}"
    return output


@pytest.fixture(scope="module")
def mixed_output(tmp_path_factory) -> Path:
    output = make_mixed_output(tmp_path_factory.mktemp("gallery"))
    assert read_table(output).num_rows == TOTAL
    return output


# --------------------------------------------------------------------------
# Serving and driving the browser


@pytest.fixture(scope="module")
def served(mixed_output) -> str:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(mixed_output)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/gallery/index.html"
    server.shutdown()
    server.server_close()
    thread.join()


class Browser:
    """Headless Chromium over the DevTools protocol on a pipe; one page, its console recorded."""

    def __init__(self, executable: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="mediagen-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # out of the way of 3 and 4 first (and not inherited: only the dup2'd copies are)
        child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_read, from_browser_write))
        for fd in (to_browser_read, from_browser_write):
            os.close(fd)

        def onto_3_and_4() -> None:  # Chromium reads commands from fd 3 and answers on fd 4
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=onto_3_and_4, close_fds=False,  # Python's own fds are never inheritable (PEP 446)
        )
        os.close(child_in)
        os.close(child_out)
        self._next_id = 0
        self._answers: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.console: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    self._dispatch(json.loads(raw))
        with self._lock:  # the browser is gone: nobody waits for an answer that cannot come
            self._closed = True
            for answer in self._answers.values():
                answer.put({"error": "the browser closed its pipe"})

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            with self._lock:
                answer = self._answers.get(message["id"])
            if answer is not None:
                answer.put(message)
            return
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            self.console.append(f"console.{params['type']}: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            entry = params["entry"]
            self.console.append(f"log.{entry['level']}: {entry.get('text')} {entry.get('url', '')}")

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        with self._lock:
            if self._closed:
                raise AssertionError(f"cannot send {method}: the browser has exited")
            self._next_id += 1
            command_id = self._next_id
            answer: queue.Queue = queue.Queue()
            self._answers[command_id] = answer
        message = {"id": command_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        try:
            reply = answer.get(timeout=COMMAND_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"Chromium did not answer {method} within {COMMAND_TIMEOUT:.0f} s") from None
        finally:
            with self._lock:
                del self._answers[command_id]
        if "error" in reply:
            raise AssertionError(f"{method} failed: {reply['error']}")
        return reply.get("result", {})

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page's session."""
        return self.send(method, session=self.session, **params)

    def evaluate(self, expression: str) -> Any:
        """The value of a JS expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait until the gallery has drawn its first view."""
        self.call("Page.navigate", url=url)
        state = self.evaluate(
            "new Promise(done => { const go = () => window.mediagenGallery ? mediagenGallery.ready().then(done) : done('no gallery');"
            " document.readyState === 'complete' ? go() : addEventListener('load', go); })"
        )
        assert state == "ready", f"gallery state {state!r}; console: {self.console}"

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the middle of the element."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
                            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (AssertionError, OSError):
            pass
        try:
            self.process.wait(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        self._reader.join(timeout=COMMAND_TIMEOUT)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Browser:
    chrome = Browser(find_chromium())
    yield chrome
    chrome.close()


@pytest.fixture
def page(browser, served) -> Browser:
    browser.console.clear()
    browser.open(served)
    yield browser
    assert browser.console == [], "the page logged errors"


# --------------------------------------------------------------------------
# The tests


def cards(page: Browser) -> list[dict[str, Any]]:
    return page.evaluate(
        "[...document.querySelectorAll('#grid .card')].map(c => ({status: c.dataset.status, text: c.innerText,"
        " thumb: c.querySelector('.thumb').firstElementChild.tagName,"
        " src: (c.querySelector('.thumb img, .thumb audio') || {}).src || null}))"
    )


def test_first_page_shows_one_page_of_rows_and_the_total(page, tmp_path):
    shown = cards(page)
    assert len(shown) == 200
    assert page.evaluate("document.querySelector('#summary').dataset.total") == str(TOTAL)
    assert f"of {TOTAL}" in page.evaluate("document.querySelector('#summary').textContent")
    # newest run first: the speech and image runs' rows lead
    assert page.evaluate("document.querySelector('#filter-run').options.length") == 4
    # every thumbnail that is an image actually decoded (posters, image outputs)
    broken = page.evaluate(
        "Promise.all([...document.querySelectorAll('#grid img')].map(i => { i.loading = 'eager';"
        " return i.decode().then(() => null, () => i.src); }))"
    )
    assert [b for b in broken if b] == []
    page.screenshot(tmp_path / "gallery.png")
    assert (tmp_path / "gallery.png").stat().st_size > 1000
    if os.environ.get("MEDIAGEN_GALLERY_SCREENSHOT"):  # refreshes docs/gallery.png for the README
        page.screenshot(Path(os.environ["MEDIAGEN_GALLERY_SCREENSHOT"]))


def test_the_gallery_also_opens_from_disk(browser, mixed_output):
    browser.console.clear()
    browser.open((mixed_output / "gallery" / "index.html").as_uri())  # data come by <script>, which file:// allows
    assert browser.evaluate("document.querySelectorAll('#grid .card').length") == 200
    assert browser.evaluate("document.querySelector('#summary').dataset.total") == str(TOTAL)
    assert browser.console == []


def test_each_modality_is_shown_in_its_own_way(page):
    by_run = {}
    for run in ("video-run", "image-run", "tts-run"):
        page.evaluate(f"(() => {{ const s = document.querySelector('#filter-run'); s.value = {json.dumps(run)};"
                      " s.dispatchEvent(new Event('change')); })()")
        page.evaluate("mediagenGallery.ready()")
        by_run[run] = cards(page)
    assert len(by_run["video-run"]) == 200 and len(by_run["image-run"]) == IMAGE_ROWS and len(by_run["tts-run"]) == TTS_ROWS
    completed_video = [c for c in by_run["video-run"] if c["status"] == "completed"]
    assert completed_video and all(c["thumb"] == "IMG" and c["src"].endswith(".poster.jpg") for c in completed_video)
    assert all(c["thumb"] == "IMG" and c["src"].endswith(".png") for c in by_run["image-run"])
    assert all(c["thumb"] == "AUDIO" for c in by_run["tts-run"])
    assert page.evaluate("document.querySelector('#summary').dataset.total") == str(TTS_ROWS)


def test_status_filter_shows_only_those_rows_and_paging_walks_the_rest(page, mixed_output):
    page.evaluate("(() => { const s = document.querySelector('#filter-status'); s.value = 'failed';"
                  " s.dispatchEvent(new Event('change')); })()")
    page.evaluate("mediagenGallery.ready()")
    failed = cards(page)
    assert len(failed) == FAILED_ROWS and {c["status"] for c in failed} == {"failed"}
    error_types = {r["error_type"] for r in read_table(mixed_output).to_pylist() if r["status"] == "failed"}
    assert len(error_types) == 1 and all(error_types <= set(c["text"].split("\n")) for c in failed)

    page.evaluate("(() => { const s = document.querySelector('#filter-status'); s.value = 'completed';"
                  " s.dispatchEvent(new Event('change')); })()")
    page.evaluate("mediagenGallery.ready()")
    completed = VIDEO_ROWS + IMAGE_ROWS + TTS_ROWS
    assert page.evaluate("document.querySelector('#summary').dataset.total") == str(completed)
    page.click("#next")
    page.evaluate("mediagenGallery.ready()")
    second = cards(page)
    assert len(second) == completed - 200 and {c["status"] for c in second} == {"completed"}
    assert page.evaluate("location.hash") == "#status=completed&page=2"
    assert page.evaluate("document.querySelector('#next').disabled") is True


def test_clicking_a_row_shows_its_attempts_and_error(page):
    page.evaluate("(() => { const s = document.querySelector('#filter-status'); s.value = 'failed';"
                  " s.dispatchEvent(new Event('change')); })()")
    page.evaluate("mediagenGallery.ready()")
    page.click("#grid .card")
    assert page.evaluate("document.querySelector('#detail').open") is True
    attempts = page.evaluate("[...document.querySelectorAll('#detail .attempts tbody tr')].map(r => r.innerText)")
    assert len(attempts) == 2  # max_retries 1: two tries, both failed
    assert all("upstream <b>broke</b> loudly" in a and "mock / mock-refuser" in a for a in attempts)
    detail = page.evaluate("document.querySelector('#detail').innerText")
    assert "upstream <b>broke</b> loudly" in detail  # the error message shown as text
    assert page.evaluate("document.querySelector('#detail b')") is None
    page.call("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape", windowsVirtualKeyCode=27)
    page.call("Input.dispatchKeyEvent", type="keyUp", key="Escape", code="Escape", windowsVirtualKeyCode=27)
    assert page.evaluate("document.querySelector('#detail').open") is False


def test_a_prompt_with_markup_renders_as_text(page):
    for status in ("invalid", "completed"):
        page.evaluate(f"(() => {{ const s = document.querySelector('#filter-status'); s.value = {json.dumps(status)};"
                      " s.dispatchEvent(new Event('change')); })()")
        page.evaluate("mediagenGallery.ready()")
        for _ in range(2):  # page 1, then page 2
            texts = [c["text"] for c in cards(page)]
            if any(XSS_PROMPT in t for t in texts):
                break
            page.click("#next")
            page.evaluate("mediagenGallery.ready()")
        assert any(XSS_PROMPT in t for t in texts), f"the {status} row with markup in its prompt is not shown as text"
        page.evaluate("history.replaceState(null, '', '#'); null")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('#grid script, #grid img[onerror], #grid img[src=\"x\"]').length") == 0
