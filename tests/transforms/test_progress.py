"""The progress display: exact counters from a real LimiterRegistry, the bar rendered in a real
pseudo-terminal at 80 and 200 columns (nothing cut or wrapped), plain log lines without a
terminal on an injected clock, and retries and 429s counted where the window observes them."""

from __future__ import annotations

import fcntl
import io
import itertools
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest

from providers import RetryPolicy, register_provider
from providers.core.contract import GeneratedMedia, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.errors import ProviderHTTPError
from providers.core.limits import LimiterRegistry
from providers.core.orchestrator import chain_steps
from providers.core.window import JobWindow
from schemas import JobHandle, MockConfig, VideoGenerationConfig, VideoGenerationRequest
from tests.fakes import FakeClock
from transforms.progress import (
    Progress,
    ProgressDisplay,
    ProviderFigures,
    bar_lines,
    log_line,
    progress_mode,
)

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_names = itertools.count()


def scripted_registry(clock: FakeClock) -> LimiterRegistry:
    """fal: 12 of 25 slots taken (after 14 taken and 2 given back), three 429s (rate 2/s halved once), five retries;
    runway/gen4.5: 1 of 4; mock (no limits): 2 in flight."""
    registry = LimiterRegistry(
        {"fal": {"max_in_flight": 25, "submits_per_second": 2.0, "additive_increase": 1e-9},
         "runway/gen4.5": {"max_in_flight": 4}},
        clock=clock,
    )
    fal = registry.limiter("fal", "fal-ai/veo3")
    for _ in range(14):
        assert fal.in_flight.try_take()
    fal.in_flight.release()
    fal.in_flight.release()
    fal.on_throttled(None)
    fal.on_throttled(None, sent_at=clock() - 1)  # sent before that 429: one overload lowers the rate once
    fal.on_throttled(None, sent_at=clock() - 1)
    for _ in range(5):
        fal.on_retry()
    assert registry.limiter("runway", "gen4.5").in_flight.try_take()
    mock = registry.limiter("mock")
    assert mock.in_flight.try_take() and mock.in_flight.try_take()
    return registry


def scripted_rows(display: ProgressDisplay, clock: FakeClock) -> None:
    """120 completed ($0.10 each), 10 reused, 3 failed (1 of unknown cost), 2 invalid: one row every 0.5 s."""
    events = [("completed", 0.1)] * 120 + [("reused", 0.0)] * 10 + [("failed", 0.0)] * 2 + [("failed", None)]
    events += [("invalid", 0.0)] * 2
    for status, cost in events:
        clock.advance(0.5)
        display.finished(status, cost)


# -- exact figures -----------------------------------------------------------------------


def test_counters_are_exact_for_a_scripted_sequence_of_events():
    clock = FakeClock()
    display = ProgressDisplay(300, 250.0, mode="log", stream=io.StringIO(), clock=clock, ticker=False)
    registry = scripted_registry(clock)
    display.watch(registry)
    display.watch(registry)  # watching twice counts once
    scripted_rows(display, clock)

    snapshot = display.snapshot()
    assert snapshot.counts == {"completed": 120, "reused": 10, "failed": 3, "invalid": 2}
    assert snapshot.done == 135 and snapshot.total == 300
    assert snapshot.elapsed == pytest.approx(67.5)
    assert snapshot.rate == pytest.approx(2.0)  # 120 rows in the last 60 s
    assert snapshot.eta == pytest.approx(165 / 2.0)
    assert snapshot.spend == "spent=$12.00/$250 (+1 of unknown cost)"
    by_key = {figures.key: figures for figures in snapshot.providers}
    assert by_key["fal"] == ProviderFigures("fal", 12, 25, 14, 3, 5, by_key["fal"].submit_rate)
    assert by_key["fal"].submit_rate == pytest.approx(1.0)  # halved once by the first 429
    assert by_key["runway/gen4.5"] == ProviderFigures("runway/gen4.5", 1, 4, 1, 0, 0, None)
    assert by_key["mock"] == ProviderFigures("mock", 2, None, 2, 0, 0, None)
    assert [f.key for f in snapshot.providers] == ["fal", "mock", "runway/gen4.5"]


def test_rate_only_counts_the_last_minute_and_is_unknown_before_any_row():
    clock = FakeClock()
    display = ProgressDisplay(10, mode="log", stream=io.StringIO(), clock=clock, ticker=False)
    assert display.snapshot().rate is None and display.snapshot().eta is None
    for _ in range(4):
        clock.advance(1)
        display.finished("completed", 0.0)
    assert display.snapshot().rate == pytest.approx(1.0)
    clock.advance(120)
    assert display.snapshot().rate is None  # nothing finished in the last minute


# -- a real pseudo-terminal ----------------------------------------------------------------


class Screen:
    """Just enough of a terminal to replay the display: CR, LF, cursor up, erase line.
    A character written at or past the last column counts as an overflow (it would wrap)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.lines: list[str] = [""]
        self.row = 0
        self.col = 0
        self.overflows = 0

    def feed(self, text: str) -> None:
        position = 0
        while position < len(text):
            match = ANSI.match(text, position)
            if match:
                self._control(match.group())
                position = match.end()
                continue
            char = text[position]
            position += 1
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self.row += 1
                if self.row == len(self.lines):
                    self.lines.append("")
            else:
                if self.col >= self.width - 1:
                    self.overflows += 1
                line = self.lines[self.row].ljust(self.col)
                self.lines[self.row] = line[: self.col] + char + line[self.col + 1 :]
                self.col += 1

    def _control(self, sequence: str) -> None:
        final, argument = sequence[-1], sequence[2:-1]
        if final == "A":
            self.row = max(0, self.row - int(argument or 1))
        elif final == "K":
            self.lines[self.row] = "" if argument == "2" else self.lines[self.row][: self.col]
        else:
            raise AssertionError(f"unexpected control sequence {sequence!r}")

    def text(self) -> list[str]:
        return [line.rstrip() for line in self.lines if line.strip()]


CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    from test_progress import FakeClock, scripted_registry, scripted_rows
    from transforms.progress import ProgressDisplay, progress_mode

    assert progress_mode(sys.stderr) == "bar", "stderr is the pseudo-terminal"
    clock = FakeClock()
    display = ProgressDisplay(300, 250.0, mode=progress_mode(sys.stderr), clock=clock, ticker=False)
    display.watch(scripted_registry(clock))
    scripted_rows(display, clock)
    display.tick()
    display.close()
    """
)


def run_in_pty(columns: int, rows: int = 24) -> str:
    """Run the scripted display in a child whose stderr is a pseudo-terminal ``columns`` wide."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ROOT), str(Path(__file__).parent)],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, cwd=ROOT,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    output = b"".join(chunks).decode("utf-8")
    assert child.wait(timeout=60) == 0, output[-3000:]
    return output


@pytest.mark.parametrize("columns", [80, 200])
def test_the_bar_fits_the_terminal_and_shows_every_provider_figure(columns):
    output = run_in_pty(columns)
    screen = Screen(columns)
    screen.feed(output)
    lines = screen.text()
    assert screen.overflows == 0, lines
    assert all(len(line) < columns for line in lines), lines
    text = "\n".join(lines)
    assert lines[0].startswith("mediagen:  45%|") and "135/300" in lines[0]
    bar = lines[0].split("|")[1]
    assert len(bar) >= (20 if columns == 80 else 100), "the bar keeps a readable width"
    assert "ok 120  reused 10  failed 3  invalid 2" in text
    assert "spent=$12.00/$250 (+1 of unknown cost)" in text
    assert "fal 12/25 in flight, 429s 3, retries 5" in text
    assert "runway/gen4.5 1/4 in flight, 429s 0, retries 0" in text
    assert "mock 2 in flight" in text
    if columns == 200:
        assert "peak 14" in text and "submit 1/s" in text, "a wide terminal shows more"
        assert len(lines) == 3, lines  # bar, counts, every provider on one line
    else:
        assert "peak" not in text
        assert len(lines) >= 4, lines


def test_redrawing_in_place_leaves_one_copy_of_the_display():
    """Every redraw goes back over the last one: the screen ends with one bar, not one per row."""
    output = run_in_pty(80)
    assert output.count("mediagen:") > 100  # redrawn on (nearly) every row
    screen = Screen(80)
    screen.feed(output)
    assert sum(line.startswith("mediagen:") for line in screen.text()) == 1


def test_fewer_lines_than_the_last_drawing_are_cleared():
    clock = FakeClock()
    stream = io.StringIO()
    display = ProgressDisplay(5, mode="bar", stream=stream, clock=clock, ticker=False, width=80)
    registry = LimiterRegistry({f"p{i}": {"max_in_flight": 2} for i in range(3)}, clock=clock)
    for i in range(3):
        registry.get(f"p{i}").in_flight.try_take()
    display.watch(registry)
    display.tick()
    narrow = bar_lines(display.snapshot(), 80)
    display._width = 200  # a wider terminal now: fewer lines
    display.tick()
    screen = Screen(200)
    screen.feed(stream.getvalue())
    assert len(screen.text()) == len(bar_lines(display.snapshot(), 200)) < len(narrow)


# -- without a terminal ------------------------------------------------------------------------


def test_without_a_terminal_one_plain_line_every_interval_and_one_at_the_end():
    clock = FakeClock()
    stream = io.StringIO()
    display = ProgressDisplay(300, 250.0, mode="log", interval=30, stream=stream, clock=clock, ticker=False)
    display.watch(scripted_registry(clock))
    clock.advance(29)
    display.tick()
    assert stream.getvalue() == ""
    clock.advance(1)
    display.tick()
    assert len(stream.getvalue().splitlines()) == 1
    scripted_rows(display, clock)  # 67.5 s more: rows never write lines themselves
    assert len(stream.getvalue().splitlines()) == 1
    display.tick()  # 67.5 s since the last line
    clock.advance(10)
    display.tick()  # 10 s since the last line: not due
    display.close()
    display.close()  # closing twice writes nothing more
    display.tick()  # nor does a tick after the end

    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert lines[0].startswith("mediagen progress [30s] 0/300 rows (0%): ok 0, reused 0, failed 0, invalid 0;")
    assert lines[1] == (
        "mediagen progress [1m38s] 135/300 rows (45%): ok 120, reused 10, failed 3, invalid 2; 2.00 rows/s, ETA 1m22s; "
        "spent=$12.00/$250 (+1 of unknown cost); fal 12/25 in flight, 429s 3, retries 5, peak 14, submit 1/s; "
        "mock 2 in flight, 429s 0, retries 0, peak 2; runway/gen4.5 1/4 in flight, 429s 0, retries 0, peak 1"
    )
    assert lines[2].startswith("mediagen done [1m48s] 135/300 rows (45%): ok 120, reused 10, failed 3, invalid 2;")
    assert "ETA" not in lines[2]


def test_the_mode_follows_the_stream():
    read, write = os.pipe()
    with os.fdopen(write, "w") as pipe:
        assert progress_mode(pipe) == "log"
    os.close(read)
    assert progress_mode(io.StringIO()) == "log"
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as terminal:
        assert progress_mode(terminal) == "bar"
    os.close(master)


def test_bad_mode_or_interval_is_one_clear_error():
    with pytest.raises(ValueError, match="'fancy'"):
        ProgressDisplay(1, mode="fancy", ticker=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--progress_interval.*-5"):
        Progress(1, "run", interval=-5)


def test_log_line_without_total_or_rate():
    clock = FakeClock()
    display = ProgressDisplay(None, mode="log", stream=io.StringIO(), clock=clock, ticker=False)
    assert log_line(display.snapshot()) == (
        "mediagen progress [0s] 0 rows: ok 0, reused 0, failed 0, invalid 0; rate unknown; spent=$0.00"
    )


# -- the handle and the worker's limiters ---------------------------------------------------


def test_the_handle_pickles_without_its_display_and_shares_it_by_run():
    progress = Progress(3, "handle-run", mode="log", interval=5)
    progress.open()
    try:
        copy = pickle.loads(pickle.dumps(progress))
        assert copy._display is None and (copy.mode, copy.interval) == ("log", 5)
        registry = LimiterRegistry({"fal": {"max_in_flight": 2}})
        registry.get("fal").in_flight.try_take()
        copy.watch(registry)
        copy.finished("completed", 0.5)
        assert copy.display is progress.display  # one display per process and run
        snapshot = progress.display.snapshot()
        assert snapshot.counts == {"completed": 1}
        assert [(f.key, f.in_flight, f.cap) for f in snapshot.providers] == [("fal", 1, 2)]
    finally:
        progress.close()


class FlakyPolls(JobProvider):
    """Jobs whose first poll answers 503 (retried on the same job by the driver), then complete."""

    name = "flaky-polls"
    modalities = frozenset({"video"})

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def submit(self, ctx: ProviderContext, request) -> JobHandle:
        return JobHandle(provider=ctx.config.provider, model=ctx.model, modality=ctx.modality, job_id="job-1")

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        self.polls += 1
        if self.polls == 1:
            raise ProviderHTTPError("busy", status_code=503, retry_after=0.0)
        return JobStatus("completed", 100)

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        return ProviderOutput(media=[GeneratedMedia(data=b"x", content_type="video/mp4")], request_id=job.job_id)


def test_retries_and_429s_are_counted_where_the_window_sees_them():
    """Submit retries (the orchestrator's) and poll retries (the driver's) both reach the
    provider's limiter; so does every 429."""
    registry = LimiterRegistry()
    throttled = VideoGenerationConfig(
        provider="fal", model="m", poll_interval=0, mock=MockConfig(responses=[{"error": "rate_limit"}])
    )
    flaky = f"test-progress-{next(_names)}"
    register_provider(flaky, FlakyPolls())
    polled = VideoGenerationConfig(provider=flaky, model="m", poll_interval=0)
    retry = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.001)
    with JobWindow(registry, max_in_flight=4) as window:
        window.add("throttled", chain_steps("video", throttled, VideoGenerationRequest(prompt="a"), retry))
        window.add("polled", chain_steps("video", polled, VideoGenerationRequest(prompt="b"), retry))
        results = {result.item_id: result for result in window.drain()}
    assert not results["throttled"].ok and results["polled"].ok, results
    stats = registry.stats()
    assert set(stats) == {"fal", flaky}, stats
    assert (stats["fal"]["throttles"], stats["fal"]["retries"]) == (3, 2)  # three tries, two retries
    assert (stats[flaky]["throttles"], stats[flaky]["retries"]) == (0, 1)
    assert stats["fal"]["in_flight"] == 0 and stats[flaky]["in_flight"] == 0


# -- a whole local run -------------------------------------------------------------------------

JOB = {
    "modality": "image",
    "configs": [{"name": "m", "provider": "fal", "model": "fal-ai/flux/dev", "poll_interval": 0,
                 "mock": {"job_duration_seconds": 0}}],
    "limits": {"fal": {"max_in_flight": 2}},
}  # fmt: skip


def run_command(tmp_path: Path, *extra: str) -> list[str]:
    """``mediagen-generate`` on six image rows served by the offline mock under fal's limits."""
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": f"r{i}", "prompt": f"cat {i}", "size": "64x64"} for i in range(6)]
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    job = tmp_path / "job.json"
    job.write_text(json.dumps(JOB))
    return [sys.executable, "-m", "pipelines.generate", "--input", str(prompts), "--output", str(tmp_path / "out"),
            "--config", str(job), *extra]  # fmt: skip


def test_a_local_run_in_a_terminal_ends_with_the_full_display(tmp_path):
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    child = subprocess.Popen(run_command(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=slave, env=env, cwd=ROOT)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    output = b"".join(chunks).decode("utf-8")
    assert child.wait(timeout=300) == 0, output[-3000:]
    screen = Screen(80)
    screen.feed(output)
    lines = screen.text()
    display = [line for line in lines if line.startswith(("mediagen:", "ok ", "fal "))]
    assert len(display) == 3, lines
    assert all(len(line) < 80 for line in display), display
    assert display[0].startswith("mediagen: 100%|") and "6/6" in display[0]
    assert display[1] == "ok 6  reused 0  failed 0  invalid 0  spent=$0.00"
    assert display[2] == "fal 0/2 in flight, 429s 0, retries 0", "the worker's limiters are watched"


def test_a_local_run_without_a_terminal_logs_plain_lines(tmp_path):
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        done = subprocess.run(run_command(tmp_path, "--progress_interval", "3600"),
                              stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT, timeout=300)  # fmt: skip
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    assert "\r" not in text and "\x1b" not in text
    lines = [line for line in text.splitlines() if line.startswith("mediagen ")]
    assert len(lines) == 1, text[-3000:]  # the interval is an hour: only the closing line
    assert re.fullmatch(
        r"mediagen done \[\d+(m\d\ds)?s?\] 6/6 rows \(100%\): ok 6, reused 0, failed 0, invalid 0; "
        r"[\d.]+ rows/s; spent=\$0\.00; fal 0/2 in flight, 429s 0, retries 0, peak [12]",
        lines[0],
    ), lines[0]
