"""``python -m pipelines.run_status OUTPUT RUN_ID``: the exit code of a finished run, from its
manifest, for schedulers that launch with ``--no-wait`` (a Flex Template, Airflow's Beam
operator) and so never see the pipeline's own exit code.

Exit codes as ``pipelines.generate``: 0 the rows completed or were reused (within
``--max_failed_fraction`` of the valid rows), 3 more failed rows than that or no valid row, 2 no manifest (the run
did not finish, or OUTPUT / RUN_ID are wrong).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .errors import EXIT_USAGE
from .options import fraction


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.run_status", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="the run's output root (local, gs://, s3://)")
    parser.add_argument("run_id", help="the run's --run_id (its manifest is OUTPUT/_runs/RUN_ID.json)")
    parser.add_argument("--max_failed_fraction", type=fraction, default=0.0,
                        help="share of failed valid rows tolerated (default 0)")
    args = parser.parse_args(argv)
    from transforms.storage import Storage

    from .generate import exit_code

    manifest = Storage(args.output).read_json(f"_runs/{args.run_id}.json")
    if not manifest:
        print(f"error: no manifest {args.output}/_runs/{args.run_id}.json: the run did not finish "
              "(or the output or run id is wrong)", file=sys.stderr)
        return EXIT_USAGE
    counts = manifest.get("counts_by_status", {})
    print(f"run {args.run_id}: {manifest.get('rows', 0)} rows, "
          + " ".join(f"{status}={count}" for status, count in sorted(counts.items())))
    return exit_code(manifest, args.max_failed_fraction)


if __name__ == "__main__":
    sys.exit(main())
