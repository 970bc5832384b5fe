"""``python -m pipelines.export FORMAT OUTPUT DEST`` (also ``mediagen-export``): a finished
output root as a training dataset, streamed (never the whole dataset in memory).

    mediagen-export webdataset ./output ./wds --shard_size 1000   # ./wds/shard-000000.tar ...
    mediagen-export hf ./output ./hf                              # datasets.load_dataset("./hf")

Only ``completed`` rows unless ``--status`` says otherwise; the rows left out are counted
in the one-line summary. See transforms/export.py for the layouts.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    from transforms.export import DEFAULT_SHARD_SIZE, FORMATS, ROW_STATUSES

    parser = argparse.ArgumentParser(
        prog="mediagen-export",
        description="Export the rows and media of an output root as WebDataset tar shards or a Hugging Face Parquet dataset.",
    )
    parser.add_argument("format", metavar="FORMAT", help=f"{' or '.join(FORMATS)}")
    parser.add_argument("output", metavar="OUTPUT_ROOT", help="output root of mediagen-generate: a local path, gs://, s3:// or memory://")
    parser.add_argument("dest", metavar="DEST", help="folder to write the dataset to: a local path, gs://, s3:// or memory://")
    parser.add_argument("--shard_size", type=int, default=DEFAULT_SHARD_SIZE,
                        help=f"samples per shard (default {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--max_shard_bytes", type=int, default=None,
                        help="also end a shard before it would exceed this many bytes (a larger sample gets a shard alone)")
    parser.add_argument("--status", action="append", choices=ROW_STATUSES, default=None,
                        help="export rows with this status; repeat for several (default: completed)")
    parser.add_argument("--storage_options", type=json.loads, default=None,
                        help="JSON of fsspec options for OUTPUT_ROOT (and DEST unless --dest_storage_options)")
    parser.add_argument("--dest_storage_options", type=json.loads, default=None, help="JSON of fsspec options for DEST")
    parser.add_argument("--verbose", action="store_true", help="on an unexpected failure, show the traceback")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script: 0 when exported, 2 with one ``error:`` line when not."""
    from transforms.export import DEFAULT_STATUSES, ExportError, export

    from .errors import run_tool

    args = build_parser().parse_args(argv)

    def work() -> str:
        return export(args.format, args.output, args.dest, shard_size=args.shard_size,
                      max_shard_bytes=args.max_shard_bytes, statuses=args.status or DEFAULT_STATUSES,
                      storage_options=args.storage_options, dest_options=args.dest_storage_options).summary()

    return run_tool(work, (ExportError,), doing=f"export {args.output!r} to {args.dest!r}", verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
