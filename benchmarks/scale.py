"""Memory against rows, time to the first media, the cost of a rerun, and what a run asks
of the object store, printed in one run.

    python benchmarks/scale.py                       # 10k, 100k and 300k rows; rerun of 100k
    python benchmarks/scale.py --quick               # 1k and 3k rows; rerun of 3k (a minute or two)
    python benchmarks/scale.py --rows 10000 30000 --rerun-rows 30000

Each run is the real pipeline (``pipelines.generate.main`` on the DirectRunner) in a
fresh child process, so ``ru_maxrss`` is that run's own peak: mock provider, job
duration 0, 64x64 images without text rendering (``mock.render_text: false``), every
prompt distinct. Printed:

- peak RSS per row count, the spread between the smallest and the largest count, and
  the least-squares slope extrapolated to 1M rows;
- the time from the pipeline's start to the first media object on disk;
- the rerun of a finished output (every row reused) and its wall time;
- objects written and store requests per row (from the run manifests, which count
  every ``Storage`` call: ``transforms/store_counts.py``), and what a 1M-row run means
  on GCS: objects left, class A / B operations and their price.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GCS_PRICES = {"A": 0.005 / 1000, "B": 0.0004 / 1000, "storage_gb_month": 0.020}
"""USD, Standard storage in a region (us-east1), as in Google's own worked example:
https://cloud.google.com/storage/pricing-examples ("Class A operations * $0.005 per 1,000
operations", "Class B operations * $0.0004 per 1,000 operations", "$0.020 per GB").
Multi-region buckets charge twice that for class A and B. Deletes are free."""
LIST_PAGE = 1000
"""Objects per page of a GCS / S3 listing: each page is one class A operation."""
MILLION = 1_000_000
SLOPE_MIN_ROWS = 100_000
"""The largest row count from which a slope per million rows is printed."""


def job_json() -> str:
    return json.dumps({
        "modality": "image",
        "configs": [{"name": "bench", "provider": "mock", "model": "bench-image",
                     "mock": {"job_duration_seconds": 0, "render_text": False}, "poll_interval": 0}],
        "window": {"max_in_flight": 100, "threads": 8},
    })


def write_prompts(path: Path, rows: int) -> None:
    with path.open("w") as handle:
        for i in range(rows):
            handle.write(json.dumps({"id": f"r{i}", "prompt": f"scale prompt {i}", "size": "64x64"}) + "\n")


# -- the child: one pipeline run ------------------------------------------------------------


def watch_first_media(folder: Path, started: float, found: dict) -> None:
    while "first_media_s" not in found:
        try:
            if any(".tmp-" not in entry.name for entry in os.scandir(folder)):
                found["first_media_s"] = round(time.perf_counter() - started, 2)
                return
        except FileNotFoundError:
            pass
        time.sleep(0.05)


def child_run(prompts: str, output: str, job: str) -> dict:
    imports = time.perf_counter()
    from pipelines.generate import main

    started = time.perf_counter()
    found: dict = {}
    watcher = threading.Thread(target=watch_first_media, args=(Path(output) / "media" / "image", started, found),
                               daemon=True)
    watcher.start()
    cpu0 = time.process_time()
    code = main(["--input", prompts, "--output", output, "--config", job, "--no-progress"])
    wall = time.perf_counter() - started
    found.setdefault("first_media_s", None)
    runs = sorted(Path(output, "_runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    manifest = json.loads(runs[-1].read_text()) if runs else {}
    return {"exit": code, "wall_s": round(wall, 2), "cpu_s": round(time.process_time() - cpu0, 2),
            "import_s": round(started - imports, 2), "rss_mb": round(peak_rss_mb(), 1),
            "first_media_s": found["first_media_s"], "rows": manifest.get("rows"),
            "reused": manifest.get("reused"), "store": manifest.get("store", {})}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(prompts: Path, output: Path, job: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(prompts), str(output), str(job)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def files_under(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


# -- the parent ---------------------------------------------------------------------------------


def slope_per_million(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per 1M rows."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mean_x) * (y - mean_y) for x, y in points) / var * MILLION


def gcs_projection(fresh: dict, fresh_rows: int, objects_per_row: float, rerun: dict | None, rerun_rows: int) -> list[str]:
    """What 1M rows mean on GCS, from the measured per-row requests."""
    lines = []
    per_class = fresh["store"].get("by_class", {})
    a = per_class.get("A", 0) / fresh_rows * MILLION
    b = per_class.get("B", 0) / fresh_rows * MILLION
    cost = a * GCS_PRICES["A"] + b * GCS_PRICES["B"]
    lines.append(f"  fresh 1M-row run: {objects_per_row * MILLION:,.0f} objects left "
                 f"({objects_per_row:.2f} per row), {a:,.0f} class A + {b:,.0f} class B operations = ${cost:,.2f}")
    if rerun is not None:
        rerun_class = rerun["store"].get("by_class", {})
        # One listing call per folder is one class A operation per page of LIST_PAGE objects.
        lists = rerun["store"].get("by_method", {}).get("list", 0)
        media_pages = MILLION / LIST_PAGE
        ra = (rerun_class.get("A", 0) - lists) / rerun_rows * MILLION + lists + media_pages
        rb = rerun_class.get("B", 0) / rerun_rows * MILLION
        rcost = ra * GCS_PRICES["A"] + rb * GCS_PRICES["B"]
        lines.append(f"  rerun of 1M finished rows: ~{ra:,.0f} class A (the media listing is "
                     f"{media_pages:,.0f} pages) + {rb:,.0f} class B operations = ${rcost:,.2f}; "
                     f"before the index: 2M class B reads (${2 * MILLION * GCS_PRICES['B']:,.2f}) and 2M sequential round trips")
    lines.append("  prices: class A $0.005, class B $0.0004 per 1,000 (Standard, regional; "
                 "https://cloud.google.com/storage/pricing-examples)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", help="row counts for the memory curve")
    parser.add_argument("--rerun-rows", type=int, help="rows of the rerun (a run of that size is made first if needed)")
    parser.add_argument("--quick", action="store_true", help="1k and 3k rows, rerun of 3k")
    parser.add_argument("--keep", action="store_true", help="keep the output folders (printed)")
    parser.add_argument("--child", nargs=3, metavar=("PROMPTS", "OUTPUT", "JOB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_run(*args.child)))
        return
    sizes = args.rows or ([1000, 3000] if args.quick else [10_000, 100_000, 300_000])
    rerun_rows = args.rerun_rows or (3000 if args.quick else 100_000)
    work = Path(tempfile.mkdtemp(prefix="mediagen-scale-"))
    job = work / "job.json"
    job.write_text(job_json())
    print(f"pipeline on the DirectRunner, mock images 64x64 without text, D=0, window 100; work dir {work}; "
          f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    print(f"{'rows':>9}{'peak RSS MB':>13}{'wall s':>9}{'rows/s':>9}{'CPU ms/row':>12}{'first media s':>15}"
          f"{'objects/row':>13}{'requests/row':>14}{'load avg':>10}")
    results: dict[int, dict] = {}
    for rows in sorted(set(sizes) | {rerun_rows}):
        prompts = work / f"prompts-{rows}.jsonl"
        write_prompts(prompts, rows)
        output = work / f"out-{rows}"
        result = run_child(prompts, output, job)
        result["objects_per_row"] = files_under(output) / rows
        results[rows] = result
        store = result["store"]
        print(f"{rows:>9,}{result['rss_mb']:>13.0f}{result['wall_s']:>9.1f}{rows / result['wall_s']:>9.0f}"
              f"{1000 * result['cpu_s'] / rows:>12.1f}{result['first_media_s'] or float('nan'):>15.1f}"
              f"{result['objects_per_row']:>13.2f}{store.get('requests_per_row', float('nan')):>14.2f}"
              f"{os.getloadavg()[0]:>10.1f}", flush=True)
    curve = [(rows, results[rows]["rss_mb"]) for rows in sorted(sizes)]
    spread = max(r for _, r in curve) - min(r for _, r in curve)
    slope = slope_per_million(curve) if len(curve) > 1 else float("nan")
    if curve[-1][0] >= SLOPE_MIN_ROWS:
        trend = (f"least-squares slope {slope:.0f} MB per 1M rows (target < 100) -> "
                 f"{curve[-1][1] + slope * (MILLION - curve[-1][0]) / MILLION:.0f} MB extrapolated to 1M rows")
    else:  # below that, start-up allocations and caches filling up are most of the difference
        trend = f"no slope below {SLOPE_MIN_ROWS:,} rows"
    print(f"peak RSS spread {curve[0][0]:,}..{curve[-1][0]:,} rows: {spread:.0f} MB (target < 100); {trend}; "
          f"first media after {max(results[rows]['first_media_s'] or 0 for rows in sizes):.1f} s at most", flush=True)

    rerun_out = work / f"out-{rerun_rows}"
    rerun = run_child(work / f"prompts-{rerun_rows}.jsonl", rerun_out, job)
    print(f"rerun of {rerun_rows:,} finished rows: {rerun['wall_s']:.1f} s wall ({rerun['import_s']:.1f} s imports before), "
          f"{rerun['reused']:,} reused, peak RSS {rerun['rss_mb']:.0f} MB, "
          f"{rerun['store'].get('requests', 0)} store requests ({rerun['store'].get('by_method', {})}) (target < 60 s)")
    print(f"  rerun per row: {1000 * rerun['wall_s'] / rerun_rows:.2f} ms wall (target < 0.6), "
          f"{1000 * rerun['cpu_s'] / rerun_rows:.2f} ms CPU, {rerun['store'].get('requests_per_row', 0)} store requests, "
          f"{rerun['store'].get('objects_written_per_row', 0)} objects written; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    fresh = results[rerun_rows]
    print(f"store requests of a fresh run, per row: {fresh['store'].get('requests_per_row')} "
          f"({fresh['store'].get('by_method', {})}); objects written per row "
          f"{fresh['store'].get('objects_written_per_row')}, objects left per row {fresh['objects_per_row']:.2f}")
    print("a 1M-row run on GCS:")
    for line in gcs_projection(fresh, rerun_rows, fresh["objects_per_row"], rerun, rerun_rows):
        print(line)
    if args.keep:
        print(f"outputs kept under {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
