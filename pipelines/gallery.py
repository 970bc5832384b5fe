"""``python -m pipelines.gallery OUTPUT`` (also ``mediagen-gallery``): (re)write the static
gallery of an output root, local or gs:// s3://, from its results table.

    mediagen-gallery ./output            # then open ./output/gallery/index.html

Every run writes it too; this command rebuilds it for older outputs (making the video
posters their videos and large images lack) or after the table changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediagen-gallery",
        description="Write OUTPUT/gallery/index.html: a browsable, filterable grid of every row of OUTPUT's results table.",
    )
    parser.add_argument("output", metavar="OUTPUT", help="output root of mediagen-generate: a local path, gs:// or s3://")
    parser.add_argument("--storage_options", type=json.loads, default=None,
                        help="JSON of fsspec options for the output root (e.g. an S3 endpoint)")
    parser.add_argument("--posters", action=argparse.BooleanOptionalAction, default=True,
                        help="make the posters (small stills) that videos and large images lack (default); --no-posters only links existing ones")
    parser.add_argument("--verbose", action="store_true", help="on an unexpected failure, show the traceback")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script: 0 when written, 2 with one ``error:`` line when not."""
    from transforms.gallery import GalleryError, write_gallery

    from .errors import run_tool

    args = build_parser().parse_args(argv)

    def work() -> str:
        report = write_gallery(args.output, args.storage_options, make_posters=args.posters)
        return (f"gallery: {report.index_uri}  ({report.rows} rows, {report.pages} data pages, "
                f"{report.posters_made} posters made)")

    return run_tool(work, (GalleryError,), doing=f"build the gallery of {args.output!r}", verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
