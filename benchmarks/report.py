"""Every figure of the README's "Performance and limits" section, in one run (about an
hour on a 2-core machine):

    python benchmarks/report.py            # throughput.py, then scale.py, with their defaults
    python benchmarks/report.py --quick    # both with --quick: a few minutes

1. ``benchmarks/throughput.py``: the pipeline against a plain asyncio loop over the SDK
   for C in {100, 1000, 2000} at D = 5 s, CPU ms per row split into our overhead and
   media encoding, the multi-process run, start-up, and peak RSS with large media;
2. ``benchmarks/scale.py``: peak RSS at 10k, 100k and 300k rows with the slope
   extrapolated to 1M, time to the first media, the rerun of 100k finished rows, and what
   a run asks of the object store (and would cost on GCS).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pass --quick to both benchmarks")
    args = parser.parse_args()
    extra = ["--quick"] if args.quick else []
    for script in ("throughput.py", "scale.py"):
        print(f"\n== {script} {' '.join(extra)}".rstrip(), flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *extra], check=False)
        if done.returncode != 0:
            print(f"error: {script} exited with {done.returncode}", file=sys.stderr)
            return done.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
