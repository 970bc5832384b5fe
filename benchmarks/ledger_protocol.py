"""What the "never pay twice" ledger protocol costs: object-store requests per row and
throughput with and without claims, on the JobWindow driving mock-timed jobs.

Run from the repository root:  python benchmarks/ledger_protocol.py [--jobs 2000] [--duration 2] [--window 100]

For N jobs of D seconds kept C at a time (ideal rate C/D), it runs the window twice:
without a ledger (the SDK's behaviour), and with ``transforms.ledger.Ledger`` on a local
output root doing the pipeline's per-row work (done lookup, claim, job record, done
record, claim removal). It prints rows/s, the ratio to the ideal (whole run and steady
state: the middle 80% of finishes), and the store requests per row by kind, counted by a
wrapper around the storage calls. ``--store s3|gcs`` runs the ledger against moto's
server or fake-gcs-server instead (the test extra), where requests are real HTTP.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks.window import NullMediaProvider  # noqa: E402
from providers import RetryPolicy, register_provider  # noqa: E402
from providers.core.driver import Call  # noqa: E402
from providers.core.limits import LimiterRegistry  # noqa: E402
from providers.core.orchestrator import chain_keys, chain_steps  # noqa: E402
from providers.core.window import JobWindow  # noqa: E402
from schemas import ImageGenerationConfig, ImageGenerationRequest  # noqa: E402
from schemas.results import StoredMedia  # noqa: E402
from transforms.ledger import Ledger  # noqa: E402
from transforms.storage import Storage  # noqa: E402

RETRY = RetryPolicy(max_retries=0)
COUNTED = ("read_bytes", "write_bytes", "create_only", "exists", "list", "delete")


class CountingStorage(Storage):
    """A Storage that counts its calls by kind (each is one store request, or one LIST)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1


def _counted(name: str) -> Any:
    method = getattr(Storage, name)

    def wrapper(self: CountingStorage, *args: Any, **kwargs: Any) -> Any:
        self._count(name)
        return method(self, *args, **kwargs)

    return wrapper


for _name in COUNTED:
    setattr(CountingStorage, _name, _counted(_name))


def row_steps(ledger: Ledger | None, config: Any, index: int) -> Any:
    """One row as the pipeline runs it: reuse check, claimed chain, done record."""
    request = ImageGenerationRequest(prompt=f"bench {index}")
    if ledger is None:
        return (yield from chain_steps("image", config, request, RETRY))
    keys = chain_keys("image", config, request)
    done = yield Call(partial(ledger.finished, keys[0]), kind="ledger")
    if done is not None:
        return done
    response = yield from chain_steps("image", config, request, RETRY, ledger=ledger, keys=keys)
    media_path = f"media/image/{keys[0]}.png"
    yield Call(partial(ledger.storage.write_bytes, media_path, b"x"), kind="fetch")
    media = [StoredMedia(uri=ledger.storage.uri(media_path), content_type="image/png", bytes=1, sha256="0" * 64)]
    yield Call(partial(ledger.record_done, keys[0], "image", media, provider="bench-null", model="m",
                       is_mock=False, raw_response_json=None), kind="ledger")
    return response


def run(jobs: int, duration: float, window_size: int, ledger: Ledger | None) -> dict[str, float]:
    config = ImageGenerationConfig(provider="bench-null", model="m", provider_config={"duration": duration}, timeout=600)
    finishes: list[float] = []
    started = time.monotonic()
    with JobWindow(LimiterRegistry({}), max_in_flight=window_size, threads=8) as window:
        for index in range(jobs):
            window.add(str(index), row_steps(ledger, config, index))
            finishes.extend(time.monotonic() for r in window.poll_results() if r.ok)
        finishes.extend(time.monotonic() for r in window.drain() if r.ok)
    elapsed = time.monotonic() - started
    finishes.sort()
    low, high = finishes[len(finishes) // 10], finishes[(9 * len(finishes)) // 10]
    steady = (0.8 * len(finishes)) / (high - low) if high > low else float("nan")
    return {"ok": len(finishes), "rate": len(finishes) / elapsed, "steady": steady}


def store_root(kind: str, folder: str) -> tuple[str, dict[str, Any]]:
    if kind == "local":
        return folder, {}
    from tests.transforms.conftest import start_fake_gcs, start_moto_s3

    store = start_moto_s3() if kind == "s3" else start_fake_gcs()
    return store.fresh_root("bench"), store.storage_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--store", choices=["local", "s3", "gcs"], default="local")
    args = parser.parse_args()
    register_provider("bench-null", NullMediaProvider())
    ideal = args.window / args.duration if args.duration > 0 else float("nan")
    print(f"{args.jobs} jobs of {args.duration:g} s, window {args.window}: ideal {ideal:.1f} rows/s, store {args.store}")

    without = run(args.jobs, args.duration, args.window, None)
    with tempfile.TemporaryDirectory() as folder:
        uri, options = store_root(args.store, folder)
        storage = CountingStorage(uri, options)
        ledger = Ledger(storage, run_id="bench")
        claimed = run(args.jobs, args.duration, args.window, ledger)
        first_counts = dict(storage.counts)
        ledger.close()
        # A rerun over the same rows: every one is reused from its done record.
        storage.counts.clear()
        reused = run(args.jobs, args.duration, args.window, ledger)
        rerun_counts = dict(storage.counts)

    print(f"{'':24}{'rows/s':>10}{'of ideal':>10}{'steady':>10}{'of ideal':>10}")
    for name, result in (("without claims", without), ("with the ledger", claimed)):
        print(f"{name:24}{result['rate']:>10.1f}{result['rate'] / ideal:>10.2f}"
              f"{result['steady']:>10.1f}{result['steady'] / ideal:>10.2f}")
    print(f"with/without, steady state: {claimed['steady'] / without['steady']:.3f}")
    print(f"new rows, store requests per row: {sum(first_counts.values()) / args.jobs:.2f} ("
          + ", ".join(f"{k} {v / args.jobs:.2f}" for k, v in sorted(first_counts.items())) + ")")
    print(f"rerun of {args.jobs} finished rows: {reused['rate']:.0f} rows/s; store requests per row: "
          + ", ".join(f"{k} {v / args.jobs:.2f}" for k, v in sorted(rerun_counts.items())))


if __name__ == "__main__":
    main()
