"""Throughput and cost of the JobWindow driver alone (no Beam), on the offline mock.

Run from the repository root:  python benchmarks/window.py [--jobs 2000] [--duration 2] [--window 100]

Prints, for N mock jobs of D seconds each kept C at a time:
- the window: rows/s against the ideal C/D, and the ratio, over the whole run and in
  steady state (start-up and the final drain left out);
- the baseline: a ThreadPoolExecutor(C) calling providers.generate_image/_video;
- CPU seconds per job with D=0 (pure overhead: steps, pydantic, mock media) for both;
- peak RSS of the process after the window's run, and at the end (after the baseline).
The mock makes real media at fetch time; the default is the cheapest (a 64x64 PNG),
``--media video`` makes 360p 1 s H.264 clips instead, and ``--media none`` swaps the
mock for a provider with the mock's timing and poll hints that returns one byte, to
measure the driver's own cost.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Callable  # noqa: E402

from providers import RetryPolicy, generate_image, generate_video, register_provider  # noqa: E402
from providers.core.contract import GeneratedMedia, JobStatus, ProviderContext, ProviderOutput# noqa: E402
from providers.core.base import JobProvider# noqa: E402
from providers.core.limits import LimiterRegistry  # noqa: E402
from providers.core.orchestrator import chain_steps  # noqa: E402
from providers.core.window import JobWindow  # noqa: E402
from schemas import (  # noqa: E402
    ImageGenerationConfig,
    ImageGenerationRequest,
    JobHandle,
    MockConfig,
    Modality,
    VideoGenerationConfig,
    VideoGenerationRequest,
)

RETRY = RetryPolicy(max_retries=0)


class NullMediaProvider(JobProvider):
    """The mock's timing and poll hints without its media: a job of ``provider_config['duration']`` s."""

    name = "bench-null"
    modalities = frozenset({"image"})

    def submit(self, ctx: ProviderContext, request: Any) -> JobHandle:
        return JobHandle(
            provider=ctx.config.provider, model=ctx.model, modality=ctx.modality, job_id=uuid.uuid4().hex,
            data={"started": time.time(), "duration": float(ctx.config.provider_config["duration"])},
        )  # fmt: skip

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        duration = job.data["duration"]
        elapsed = time.time() - job.data["started"]
        if elapsed >= duration:
            return JobStatus("completed", 100)
        return JobStatus(
            "processing", int(100 * elapsed / duration), poll_after=min(duration - elapsed, max(0.05, duration / 10))
        )

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        return ProviderOutput(media=[GeneratedMedia(data=b"x", content_type="image/png")], request_id=job.job_id)


class Workload:
    """N mock jobs of one modality and duration: configs, requests and the sync API call."""

    def __init__(self, media: str, duration: float) -> None:
        self.media = media
        self.config: Any
        self.api: Callable[..., Any]
        self.modality: Modality
        mock = MockConfig(job_duration_seconds=duration)
        if media == "none":
            register_provider(NullMediaProvider.name, NullMediaProvider())
            self.modality = "image"
            self.config = ImageGenerationConfig(
                provider=NullMediaProvider.name, model="m", poll_interval=0, provider_config={"duration": duration}
            )
            self.api = generate_image
        elif media == "image":
            self.modality = "image"
            self.config = ImageGenerationConfig(provider="fal", model="m", poll_interval=0, mock=mock)
            self.api = generate_image
        else:
            self.modality = "video"
            self.config = VideoGenerationConfig(provider="fal", model="m", poll_interval=0, mock=mock)
            self.api = generate_video

    def request(self, index: int) -> Any:
        if self.modality == "image":
            return ImageGenerationRequest(prompt=f"benchmark prompt {index}", size="64x64")
        return VideoGenerationRequest(prompt=f"benchmark prompt {index}", duration_seconds=1, resolution="360p")

    def steps(self, index: int) -> Any:
        return chain_steps(self.modality, self.config, self.request(index), RETRY)

    def call(self, index: int) -> Any:
        return self.api(self.config, self.request(index), retry=RETRY)


@dataclass
class Run:
    """One throughput run: wall and CPU seconds, and when each job finished (monotonic)."""

    wall: float
    cpu: float
    finished: list[float]
    stats: dict[str, Any] = field(default_factory=dict)

    def steady_rate(self, window: int) -> float:
        """Rows/s between the first finish of the second generation of jobs and the first
        finish of the last one: the pace once start-up and the final drain are left out."""
        times = sorted(self.finished)
        first, last = window, len(times) - window
        if last <= first or times[last] <= times[first]:
            return len(times) / self.wall
        return (last - first) / (times[last] - times[first])


def run_window(work: Workload, jobs: int, window: int, threads: int) -> Run:
    """``jobs`` through a JobWindow of ``window`` items on ``threads`` pool threads."""
    registry = LimiterRegistry()
    wall, cpu = time.perf_counter(), time.process_time()
    finished: list[float] = []
    results = []
    with JobWindow(registry, max_in_flight=window, threads=threads) as win:
        for index in range(jobs):
            win.add(str(index), work.steps(index))
            batch = win.poll_results()
            finished += [time.monotonic()] * len(batch)
            results += batch
        for result in win.drain():
            finished.append(time.monotonic())
            results.append(result)
        stats = win.stats
    failed = sum(not r.ok for r in results)
    if failed:
        raise SystemExit(f"{failed} window jobs failed")
    return Run(time.perf_counter() - wall, time.process_time() - cpu, finished, stats)


def run_baseline(work: Workload, jobs: int, window: int) -> Run:
    """``jobs`` with one thread per job in flight: ThreadPoolExecutor(window) over the sync API."""

    def job(index: int) -> float:
        work.call(index)
        return time.monotonic()

    wall, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=window) as pool:
        finished = list(pool.map(job, range(jobs)))
    return Run(time.perf_counter() - wall, time.process_time() - cpu, finished)


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS).
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per throughput run (default 2000)")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds each mock job takes (default 2)")
    parser.add_argument("--window", type=int, default=100, help="jobs in flight (default 100)")
    parser.add_argument("--threads", type=int, default=8, help="window pool threads (default 8)")
    parser.add_argument(
        "--media", choices=("image", "video", "none"), default="image",
        help="mock image 64x64 PNG (default), mock video 360p 1 s, or none (one byte, the mock's timing)",
    )  # fmt: skip
    parser.add_argument(
        "--cpu-jobs", type=int, default=1000, help="jobs of D=0 for the CPU-per-job figure (default 1000)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the thread-per-job baseline")
    args = parser.parse_args()

    work = Workload(args.media, args.duration)
    instant = Workload(args.media, 0.0)
    ideal = args.window / args.duration if args.duration > 0 else float("inf")
    media = {"image": "mock image 64x64 png", "video": "mock video 360p 1 s h264", "none": "no media (1 byte)"}[
        args.media
    ]
    print(f"{media}; {args.jobs} jobs of {args.duration:g} s; window {args.window}; {args.threads} pool threads")

    run_window(instant, min(50, args.jobs), args.window, args.threads)  # warm-up: imports, fonts, codecs

    runs = {"JobWindow": run_window(work, args.jobs, args.window, args.threads)}
    window_rss = peak_rss_mb()  # before the baseline, whose thread per job costs memory of its own
    if not args.no_baseline:
        runs["ThreadPool(C) sync API"] = run_baseline(work, args.jobs, args.window)
    print(
        f"{'driver':<24} {'wall s':>7} {'rows/s':>7} {'ideal':>6} {'ratio':>6} {'steady':>7} {'ratio':>6} {'cpu s':>6}"
    )
    for name, run in runs.items():
        rate, steady = args.jobs / run.wall, run.steady_rate(args.window)
        print(
            f"{name:<24} {run.wall:>7.2f} {rate:>7.1f} {ideal:>6.1f} {rate / ideal:>6.3f}"
            f" {steady:>7.1f} {steady / ideal:>6.3f} {run.cpu:>6.2f}"
        )
    stats = runs["JobWindow"].stats
    print(f"window calls: submits {stats['submits']}, polls {stats['polls']}, fetches {stats['fetches']}, "
          f"other {stats['other_calls']}; peak active {stats['peak_active']}")  # fmt: skip

    cpu0 = run_window(instant, args.cpu_jobs, args.window, args.threads).cpu
    line = f"CPU per job at D=0: JobWindow {1000 * cpu0 / args.cpu_jobs:.2f} ms"
    if not args.no_baseline:
        base_cpu0 = run_baseline(instant, args.cpu_jobs, args.window).cpu
        line += f", ThreadPool sync API {1000 * base_cpu0 / args.cpu_jobs:.2f} ms"
    print(line)
    print(f"peak RSS: {window_rss:.0f} MB after the window runs, {peak_rss_mb():.0f} MB at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
