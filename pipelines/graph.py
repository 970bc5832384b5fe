"""The pipeline's graph: prompt rows -> Generate -> results table (``build_graph``)."""

from __future__ import annotations

import argparse
from typing import Any

from schemas import JobConfig, utc_now


def build_graph(pipeline: Any, args: argparse.Namespace, job: JobConfig, files: list[str], run_id: str, progress: Any) -> None:
    """prompt rows -> (valid -> Generate -> result parts) + (invalid -> result parts) -> table.

    No shuffle between reading and the table: rows stream into Generate (rows repeating a
    request share its generation: in the DoFn, the worker or the ledger, see
    ``GenerateDoFn.process``) and each bundle's rows are written as Parquet parts where they
    are made; only the parts' small summaries reach the step that publishes the table. A
    bundle the runner retries runs Generate again: the ledger turns that into reuse."""
    import apache_beam as beam

    from transforms.generate import GenerateDoFn, LedgerOptions
    from transforms.read import ReadPrompts
    from transforms.results import WriteResults

    rows = pipeline | "ReadPrompts" >> ReadPrompts(files, job, args.input_format, args.storage_options, args.strict_ids)
    if getattr(args, "limit", None) is not None:
        rows = rows | "Limit" >> beam.Filter(_in_sample, sample_of(files, job, args))
    valid, invalid = rows | "SplitInvalid" >> beam.Partition(lambda row, _: 0 if row.is_valid else 1, 2)
    generated = (
        valid
        | "Generate" >> beam.ParDo(
            GenerateDoFn(job, args.output, run_id, storage_options=args.storage_options,
                         workers=args.workers, progress=progress,
                         ledger_options=LedgerOptions(args.lease_seconds, _resubmit_uncertain(args)),
                         regenerate=getattr(args, "regenerate", None))
        )
    )
    invalid_rows = invalid | "InvalidRows" >> beam.Map(_invalid_row, run_id, progress)
    (
        (generated, invalid_rows)
        | "WriteResults" >> WriteResults(
            args.output, run_id, job, files, utc_now(), args.storage_options, args.results_mode
        )
    )


def sample_of(files: list[str], job: JobConfig, args: argparse.Namespace) -> frozenset[tuple[str, str]]:
    """(source, row id) of the rows ``--limit`` keeps: up to the N-th valid row in input order."""
    from .dry_run import first_valid, read_all_rows

    rows = read_all_rows(files, job, args.input_format, args.storage_options, args.strict_ids)
    return frozenset((row.source, row.row_id) for row in first_valid(rows, args.limit))


def _in_sample(row: Any, sample: frozenset[tuple[str, str]]) -> bool:
    return (row.source, row.row_id) in sample


def _resubmit_uncertain(args: argparse.Namespace) -> bool:
    """``--regenerate failed`` retries the rows held back as possibly paid, like ``--resubmit_uncertain``."""
    return bool(args.resubmit_uncertain or getattr(args, "regenerate", None) == "failed")


def _invalid_row(row: Any, run_id: str, progress: Any) -> Any:
    from transforms.metrics import MetricsCollector
    from transforms.rows import invalid_result

    result = invalid_result(row, run_id)
    MetricsCollector(progress).row(result)
    return result
