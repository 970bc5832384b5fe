"""Pipeline throughput, CPU cost and memory, printed side by side.

    python benchmarks/throughput.py                      # defaults: 2000 rows, 2 s jobs, window 100
    python benchmarks/throughput.py --rows 500 --duration 1 --window 50

Measures, each in a fresh child process (so peak RSS is its own):
1. the real pipeline on the DirectRunner, mock provider with a fixed job duration D,
   window C: rows/s against the ideal C / D;
2. a baseline: a plain ThreadPoolExecutor(C) calling providers.generate_image;
3. CPU seconds per row with D = 0 (the pipeline's own cost per row);
4. peak RSS for small outputs and for large ones (a provider returning URLs to 50 MB
   MP4 files served on loopback by this parent process): the media is streamed to disk,
   probed from there and uploaded from there, so the two should be close. (Speech is
   different by contract: TTSResponse.audio is base64, so speech is held in memory.)
The mock makes 64x64 PNG images, so media making does not hide the orchestration cost.
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


def job_yaml(duration: float, window: int, provider: str = "mock", modality: str = "image") -> str:
    return json.dumps({
        "modality": modality,
        "configs": [{"name": "bench", "provider": provider, "model": "bench-image",
                     "mock": {"job_duration_seconds": duration} if provider == "mock" else None,
                     "poll_interval": 1}],
        "window": {"max_in_flight": window, "threads": 8},
    })


def write_prompts(path: Path, rows: int, modality: str = "image") -> None:
    with path.open("w") as handle:
        for i in range(rows):
            row = {"id": f"r{i}", "prompt": f"benchmark prompt {i}", "size": "64x64"}
            if modality == "video":
                row = {"id": f"r{i}", "prompt": f"benchmark prompt {i}"}
            handle.write(json.dumps(row) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child measurements ---------------------------------------------------------------


def child_pipeline(rows: int, duration: float, window: int, provider: str = "mock", modality: str = "image") -> dict:
    from pipelines.generate import main

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_prompts(work / "prompts.jsonl", rows, modality)
        (work / "job.json").write_text(job_yaml(duration, window, provider, modality))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        code = main(["--input", str(work / "prompts.jsonl"), "--output", str(work / "out"),
                     "--config", str(work / "job.json"), "--no-progress"])
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        import pyarrow.dataset as ds

        table = ds.dataset(str(work / "out" / "results")).to_table(columns=["status", "finished_at"])
        completed = table.column("status").to_pylist().count("completed")
        finished = sorted(t.timestamp() for t in table.column("finished_at").to_pylist())
    assert code == 0 and completed == rows, (code, completed)
    low, high = finished[len(finished) // 10], finished[(9 * len(finished)) // 10]
    steady = (0.8 * rows) / (high - low) if high > low else float("nan")
    return {"rows": rows, "wall": wall, "cpu": cpu, "rss_mb": peak_rss_mb(), "steady": steady}


def child_baseline(rows: int, duration: float, window: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from providers import generate_image
    from schemas import ImageGenerationConfig, MockConfig

    config = ImageGenerationConfig(provider="mock", model="bench-image", poll_interval=1,
                                   mock=MockConfig(job_duration_seconds=duration))
    wall0 = time.perf_counter()
    with ThreadPoolExecutor(window) as pool:
        results = list(pool.map(lambda i: generate_image(config, prompt=f"benchmark prompt {i}", size="64x64"), range(rows)))
    assert len(results) == rows
    return {"rows": rows, "wall": time.perf_counter() - wall0, "rss_mb": peak_rss_mb()}


def child_large(rows: int, url: str, window: int) -> dict:
    """The pipeline storing videos downloaded from ``url`` (served by the parent process)."""
    from providers import register_provider
    from providers.base import GeneratedMedia, JobProvider, ProviderOutput

    class UrlProvider(JobProvider):
        name = "bench-url"
        modalities = frozenset({"video"})

        def submit(self, ctx, request):
            return ProviderOutput(media=[GeneratedMedia(url=url, content_type="video/mp4")])

    register_provider("bench-url", UrlProvider())
    return child_pipeline(rows, 0.0, window, provider="bench-url", modality="video")


def padded_mp4(size_bytes: int) -> bytes:
    """A real 1 s H.264 MP4 grown to ``size_bytes`` with a trailing 'free' box (valid MP4)."""
    import struct

    from providers.media import make_video

    video = make_video("large output", 320, 240, 1.0)
    pad = max(8, size_bytes - len(video))
    return video + struct.pack(">I", pad) + b"free" + bytes(pad - 8)


# -- parent -------------------------------------------------------------------------------


def run_child(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=2.0, help="mock job duration D, seconds")
    parser.add_argument("--window", type=int, default=100, help="jobs in flight C")
    parser.add_argument("--cpu-rows", type=int, default=1000, help="rows for the D=0 CPU measurement")
    parser.add_argument("--large-mb", type=int, default=50)
    parser.add_argument("--large-rows", type=int, default=8)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        functions = {"pipeline": child_pipeline, "baseline": child_baseline, "large": child_large}
        numbers = [x if "://" in x else float(x) if "." in x else int(x) for x in rest]
        print(json.dumps(functions[kind](*numbers)))
        return

    ideal = args.window / args.duration
    print(f"rows={args.rows} job duration D={args.duration}s window C={args.window}  ideal C/D = {ideal:.1f} rows/s")
    pipeline = run_child("pipeline", str(args.rows), str(float(args.duration)), str(args.window))
    baseline = run_child("baseline", str(args.rows), str(float(args.duration)), str(args.window))
    cpu = run_child("pipeline", str(args.cpu_rows), "0.0", str(args.window))
    from tests.emulator import ProviderEmulator

    with ProviderEmulator(routes_package=None) as emulator:  # serves from this process, not the measured one
        small_url = emulator.host_media(padded_mp4(0), "video/mp4", provider="bench")
        large_url = emulator.host_media(padded_mp4(args.large_mb << 20), "video/mp4", provider="bench")
        small = run_child("large", str(args.large_rows), small_url, str(args.window))
        large = run_child("large", str(args.large_rows), large_url, str(args.window))

    rate = args.rows / pipeline["wall"]
    base_rate = args.rows / baseline["wall"]
    cpu_per_row = cpu["cpu"] / args.cpu_rows
    print(f"{'':34}{'rows/s':>10}{'ratio to ideal':>16}{'wall s':>9}{'peak RSS MB':>13}")
    print(f"{'pipeline (DirectRunner + window)':34}{rate:>10.1f}{rate / ideal:>16.2f}{pipeline['wall']:>9.1f}{pipeline['rss_mb']:>13.0f}")
    steady = pipeline["steady"]
    print(f"{'  steady state (middle 80% of rows)':34}{steady:>10.1f}{steady / ideal:>16.2f}")
    print(f"{'baseline ThreadPoolExecutor(C)':34}{base_rate:>10.1f}{base_rate / ideal:>16.2f}{baseline['wall']:>9.1f}{baseline['rss_mb']:>13.0f}")
    print(f"CPU per row with D=0: {1000 * cpu_per_row:.2f} ms ({args.cpu_rows} rows, {cpu['cpu']:.1f} CPU s incl. start-up)")
    jobs = 1.0 / cpu_per_row if cpu_per_row else float("inf")
    print(f"  -> one core sustains ~{jobs:.0f} finished jobs/s; with jobs of 60 s that is ~{jobs * 60:.0f} jobs in flight per core")
    print(f"peak RSS, {args.large_rows} rows of downloaded MP4: small outputs {small['rss_mb']:.0f} MB, "
          f"{args.large_mb} MB outputs {large['rss_mb']:.0f} MB (difference {large['rss_mb'] - small['rss_mb']:+.0f} MB)")


if __name__ == "__main__":
    main()
