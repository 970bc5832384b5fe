"""Pipeline throughput, CPU cost per row, start-up and memory, printed side by side in one run.

    python benchmarks/throughput.py            # C in {100, 1000, 2000}, D = 5 s, 6*C rows each
    python benchmarks/throughput.py --quick    # C = 100, D = 2 s: a minute or two
    python benchmarks/throughput.py --windows 1000 --duration 5 --skip-large

Measures, each in a fresh child process (so CPU time and peak RSS are its own):
1. for each window C, jobs of D seconds (ideal C/D rows/s): the pipeline on the
   DirectRunner, and a plain asyncio loop over the SDK (``generate_image_async`` under a
   ``Semaphore(C)``); "steady" = rows/s over the middle 80 % of finishing times / ideal;
2. CPU ms per row with D = 0 (process CPU time from ``getrusage`` in the child,
   pipeline run only, imports excluded, split into user and kernel time): with the
   mock's cheap images (``MockConfig(render_text=False)``: our own overhead) and with its
   text-rendered ones (the difference is media encoding). CPU time is robust on a busy
   machine, rates are not;
3. the pipeline with ``--direct_running_mode=multi_processing --direct_num_workers=2``
   (limits divided by ``--workers 2``, so both processes together keep C in flight):
   steady rate and CPU ms per row of every process (``RUSAGE_CHILDREN`` included);
4. start-up: seconds from launching ``python -m pipelines.generate`` to its first
   submitted job (the earliest attempt ``started_at`` in the results table), and Beam's
   import time alone for comparison;
5. peak RSS for small outputs and for large ones (a provider returning URLs to 50 MB MP4
   files served on loopback by this parent process): the media are streamed to disk,
   probed and uploaded from there, so the two should be close.

Outputs go to a tmpfs (``/dev/shm``) unless ``--output-on-disk``: the CPU figures are then
our code's, not the local disk's. The D = 0 CPU run is repeated with the outputs in the
machine's temporary folder for comparison. Each row makes five new files there (media,
claim, claim folder, job record, done record), and on some filesystems creating a file
is costly: this machine's ext4 has no journal, so its inode allocator checks every
candidate inode for a recent delete (``perf record``: ``recently_deleted`` under
``ext4_create``), and right after a test run deleted many files that cost up to ~5 ms of
kernel time per row, against 0.7 ms on a quiet disk. A run on GCS or S3 pays network
round trips there instead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEADY_LOW, STEADY_HIGH = 0.1, 0.9
"""The middle of a run: between the 10th and the 90th percentile of finishing times."""


def job_json(duration: float, window: int, provider: str = "mock", modality: str = "image", render_text: bool = False,
             workers: int = 1) -> str:
    job = {
        "modality": modality,
        "configs": [{"name": "bench", "provider": provider, "model": "bench-image",
                     "mock": {"job_duration_seconds": duration, "render_text": render_text} if provider == "mock" else None,
                     "poll_interval": 1}],
        "window": {"max_in_flight": window if workers == 1 else max(1, window // workers), "threads": 8},
    }
    if workers > 1:  # the job's budget: C in flight over all processes, each holding its share
        job["limits"] = {provider: {"max_in_flight": window}}
    return json.dumps(job)


def write_prompts(path: Path, rows: int, modality: str = "image") -> None:
    with path.open("w") as handle:
        for i in range(rows):
            row = {"id": f"r{i}", "prompt": f"benchmark prompt {i}", "size": "64x64"}
            if modality == "video":
                row = {"id": f"r{i}", "prompt": f"benchmark prompt {i}"}
            handle.write(json.dumps(row) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def steady_rate(finished: list[float]) -> float:
    """Rows per second over the middle of the run."""
    finished = sorted(finished)
    low, high = finished[int(len(finished) * STEADY_LOW)], finished[int((len(finished) - 1) * STEADY_HIGH)]
    return (STEADY_HIGH - STEADY_LOW) * len(finished) / (high - low) if high > low else float("nan")


FIXED_ROWS = 20
"""A run this small is nearly all fixed cost (runner start, graph, table publish, gallery)."""


def per_row_ms(run: dict, fixed: dict) -> float:
    """CPU ms per row of ``run`` without the fixed cost measured by ``fixed`` (a tiny run)."""
    return 1000 * (run["cpu"] - fixed["cpu"]) / (run["rows"] - fixed["rows"])


def _cpu_seconds() -> tuple[float, float]:
    """(user, kernel) CPU seconds of this process and of its finished children (multi-processing workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime


# -- child measurements ---------------------------------------------------------------


def child_pipeline(rows: int, duration: float, window: int, render_text: int = 0, workers: int = 1,
                   provider: str = "mock", modality: str = "image") -> dict:
    from pipelines.generate import main

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_prompts(work / "prompts.jsonl", rows, modality)
        (work / "job.json").write_text(job_json(duration, window, provider, modality, bool(render_text), workers))
        argv = ["--input", str(work / "prompts.jsonl"), "--output", str(work / "out"),
                "--config", str(work / "job.json"), "--no-progress"]
        if workers > 1:
            argv += ["--workers", str(workers), "--direct_running_mode=multi_processing",
                     f"--direct_num_workers={workers}"]
        (user0, sys0), wall0 = _cpu_seconds(), time.perf_counter()
        code = main(argv)
        (user1, sys1), wall = _cpu_seconds(), time.perf_counter() - wall0
        user, kernel = user1 - user0, sys1 - sys0
        import pyarrow.dataset as ds

        table = ds.dataset(str(work / "out" / "results")).to_table(columns=["status", "finished_at"])
        completed = table.column("status").to_pylist().count("completed")
        finished = [t.timestamp() for t in table.column("finished_at").to_pylist()]
    assert code == 0 and completed == rows, (code, completed)
    return {"rows": rows, "wall": wall, "cpu": user + kernel, "sys": kernel, "rss_mb": peak_rss_mb(),
            "steady": steady_rate(finished), "tmpdir": tempfile.gettempdir()}


def child_asyncio(rows: int, duration: float, window: int) -> dict:
    """The plain asyncio loop a user would write over the SDK: a semaphore of C."""
    import asyncio

    from providers import generate_image_async
    from schemas import ImageGenerationConfig, MockConfig

    config = ImageGenerationConfig(provider="mock", model="bench-image", poll_interval=1,
                                   mock=MockConfig(job_duration_seconds=duration, render_text=False))
    finished: list[float] = []

    async def run() -> None:
        semaphore = asyncio.Semaphore(window)

        async def one(i: int) -> None:
            async with semaphore:
                await generate_image_async(config, prompt=f"benchmark prompt {i}", size="64x64")
            finished.append(time.time())

        await asyncio.gather(*(one(i) for i in range(rows)))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    asyncio.run(run())
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert len(finished) == rows
    return {"rows": rows, "wall": wall, "cpu": cpu, "rss_mb": peak_rss_mb(), "steady": steady_rate(finished)}


def child_large(rows: int, url: str, window: int) -> dict:
    """The pipeline storing videos downloaded from ``url`` (served by the parent process)."""
    from providers import register_provider
    from providers.core.contract import GeneratedMedia, ProviderOutput
    from providers.core.base import JobProvider

    class UrlProvider(JobProvider):
        name = "bench-url"
        modalities = frozenset({"video"})

        def submit(self, ctx, request):
            return ProviderOutput(media=[GeneratedMedia(url=url, content_type="video/mp4")])

    register_provider("bench-url", UrlProvider())
    return child_pipeline(rows, 0.0, window, 0, 1, "bench-url", "video")


def child_beam_import() -> dict:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    import apache_beam  # noqa: F401
    from apache_beam.runners.direct import direct_runner  # noqa: F401

    return {"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0}


def child_startup(launched: float, rows: int = 4) -> dict:
    """Wall and CPU seconds from this process's launch (``launched``: the parent's clock)
    to the CLI's first submitted job, caught by wrapping the mock's submit (the DirectRunner
    runs the DoFns in this process)."""
    first: dict = {}
    from providers.builtin.mock import MockProvider

    submit = MockProvider.submit

    def timed_submit(self, ctx, request):
        first.setdefault("wall", time.time() - launched)
        first.setdefault("cpu", time.process_time())
        return submit(self, ctx, request)

    MockProvider.submit = timed_submit  # type: ignore[method-assign]
    from pipelines.generate import main

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_prompts(work / "prompts.jsonl", rows)
        (work / "job.json").write_text(job_json(0.0, 10))
        code = main(["--input", str(work / "prompts.jsonl"), "--output", str(work / "out"),
                     "--config", str(work / "job.json"), "--no-progress"])
    assert code == 0 and first, (code, first)
    return first


def padded_mp4(size_bytes: int) -> bytes:
    """A real 1 s H.264 MP4 grown to ``size_bytes`` with a trailing 'free' box (valid MP4)."""
    import struct

    from providers.media.synthesis import make_video

    video = make_video("large output", 320, 240, 1.0)
    pad = max(8, size_bytes - len(video))
    return video + struct.pack(">I", pad) + b"free" + bytes(pad - 8)


# -- parent -------------------------------------------------------------------------------


TMPFS = "/dev/shm"


def output_tmpdir(on_disk: bool) -> str | None:
    """Where children put their outputs: a tmpfs when there is one (None: the default temporary folder)."""
    return None if on_disk or not os.path.isdir(TMPFS) or not os.access(TMPFS, os.W_OK) else TMPFS


OUTPUT_DIR: str | None = None
"""Set once by ``main`` from ``--output-on-disk``."""


def run_child(*args: str, tmpdir: str | None = "default") -> dict:
    env = dict(os.environ)
    chosen = OUTPUT_DIR if tmpdir == "default" else tmpdir
    if chosen:
        env["TMPDIR"] = chosen
    else:
        env.pop("TMPDIR", None)
    result = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT,
                            env=env)
    if result.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="C = 100, D = 2 s, fewer rows: a minute or two")
    parser.add_argument("--windows", type=int, nargs="+", help="windows C (default 100 1000 2000)")
    parser.add_argument("--duration", type=float, help="mock job duration D, seconds (default 5)")
    parser.add_argument("--rows-per-window", type=int, default=6, help="rows = this x C (a steady middle)")
    parser.add_argument("--cpu-rows", type=int, help="rows for the D = 0 CPU measurement (default 2000)")
    parser.add_argument("--skip-multi", action="store_true", help="no multi_processing run")
    parser.add_argument("--skip-large", action="store_true", help="no RSS run with large downloaded media")
    parser.add_argument("--large-mb", type=int, default=50)
    parser.add_argument("--large-rows", type=int, default=8)
    parser.add_argument("--output-on-disk", action="store_true",
                        help="outputs in the default temporary folder instead of a tmpfs (/dev/shm)")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        functions = {"pipeline": child_pipeline, "asyncio": child_asyncio, "large": child_large,
                     "beam_import": child_beam_import, "startup": child_startup}
        numbers = [x if "://" in x else float(x) if "." in x else int(x) for x in rest]
        print(json.dumps(functions[kind](*numbers)))
        return

    windows = args.windows or ([100] if args.quick else [100, 1000, 2000])
    duration = args.duration or (2.0 if args.quick else 5.0)
    cpu_rows = args.cpu_rows or (500 if args.quick else 2000)
    global OUTPUT_DIR
    OUTPUT_DIR = output_tmpdir(args.output_on_disk)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(rates are noisy on a busy machine; CPU ms per row is not); "
          f"outputs under {OUTPUT_DIR or tempfile.gettempdir()}")

    print(f"\n| window C, job time D (ideal C/D) | pipeline steady | plain asyncio loop over the SDK |")
    print("|---|---|---|")
    multi_window = None
    for window in windows:
        rows, ideal = args.rows_per_window * window, window / duration
        pipeline = run_child("pipeline", str(rows), str(duration), str(window))
        baseline = run_child("asyncio", str(rows), str(duration), str(window))
        print(f"| {window}, {duration:g} s ({ideal:g}/s), {rows} rows | {pipeline['steady'] / ideal:.2f} "
              f"({pipeline['steady']:.0f}/s, {1000 * pipeline['cpu'] / rows:.1f} CPU ms/row) | "
              f"{baseline['steady'] / ideal:.2f} ({baseline['steady']:.0f}/s, {1000 * baseline['cpu'] / rows:.1f} CPU ms/row) |",
              flush=True)
        multi_window = window if window <= 1000 else multi_window

    fixed = run_child("pipeline", str(FIXED_ROWS), "0.0", "100", "0")
    fast = run_child("pipeline", str(cpu_rows), "0.0", "100", "0")
    text = run_child("pipeline", str(cpu_rows), "0.0", "100", "1")
    own, encoded = per_row_ms(fast, fixed), per_row_ms(text, fixed)
    kernel = 1000 * (fast["sys"] - fixed["sys"]) / (fast["rows"] - fixed["rows"])
    print(f"\nCPU per row, D = 0, {cpu_rows} rows, one process, outputs under {fast['tmpdir']}, the run's fixed "
          f"{fixed['cpu']:.2f} s ({FIXED_ROWS} rows) left out: {own:.2f} ms our overhead (cheap mock images; "
          f"{kernel:.2f} ms of it in the kernel) + {encoded - own:.2f} ms media encoding (text-rendered mock images: "
          f"{encoded:.2f} ms in all); with the fixed part: {1000 * fast['cpu'] / cpu_rows:.2f} ms")
    print(f"  -> one core sustains ~{1000 / own:.0f} finished jobs/s of our own work")
    if OUTPUT_DIR is not None:  # the same on the machine's temporary folder (its disk)
        disk_fixed = run_child("pipeline", str(FIXED_ROWS), "0.0", "100", "0", tmpdir=None)
        disk = run_child("pipeline", str(cpu_rows), "0.0", "100", "0", tmpdir=None)
        disk_kernel = 1000 * (disk["sys"] - disk_fixed["sys"]) / (disk["rows"] - disk_fixed["rows"])
        print(f"  the same with outputs under {disk['tmpdir']} (this machine's disk): {per_row_ms(disk, disk_fixed):.2f} "
              f"ms per row, {disk_kernel:.2f} ms of it in the kernel (five new files per row)")

    if not args.skip_multi and multi_window is not None:
        rows, ideal = args.rows_per_window * multi_window, multi_window / duration
        multi = run_child("pipeline", str(rows), str(duration), str(multi_window), "0", "2")
        multi_fixed = run_child("pipeline", str(FIXED_ROWS), "0.0", "100", "0", "2")
        multi_cpu = run_child("pipeline", str(cpu_rows), "0.0", "100", "0", "2")
        print(f"multi_processing, 2 workers, C = {multi_window} in all, D = {duration:g} s: steady "
              f"{multi['steady'] / ideal:.2f} ({multi['steady']:.0f}/s); D = 0: {per_row_ms(multi_cpu, multi_fixed):.2f} "
              f"CPU ms/row over every process (fixed {multi_fixed['cpu']:.1f} s left out), "
              f"{cpu_rows / multi_cpu['wall']:.0f} rows/s wall (one process: {cpu_rows / fast['wall']:.0f} rows/s)")

    startup = run_child("startup", repr(time.time()))
    beam = run_child("beam_import")
    print(f"start-up to the first submitted job: {startup['wall']:.2f} s wall, {startup['cpu']:.2f} s CPU; "
          f"Beam's own import alone {beam['wall']:.2f} s wall, {beam['cpu']:.2f} s CPU "
          f"(ours on top: {startup['cpu'] - beam['cpu']:.2f} s CPU)")

    if not args.skip_large:
        from tests.emulator import ProviderEmulator

        with ProviderEmulator(routes_package=None) as emulator:  # serves from this process, not the measured one
            small_url = emulator.host_media(padded_mp4(0), "video/mp4", provider="bench")
            large_url = emulator.host_media(padded_mp4(args.large_mb << 20), "video/mp4", provider="bench")
            small = run_child("large", str(args.large_rows), small_url, "100")
            large = run_child("large", str(args.large_rows), large_url, "100")
        print(f"peak RSS, {args.large_rows} rows of downloaded MP4: small outputs {small['rss_mb']:.0f} MB, "
              f"{args.large_mb} MB outputs {large['rss_mb']:.0f} MB (difference {large['rss_mb'] - small['rss_mb']:+.0f} MB)")


if __name__ == "__main__":
    main()
