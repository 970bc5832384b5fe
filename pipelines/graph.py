"""The pipeline's graph: prompt rows -> Generate -> results table (``build_graph``)."""

from __future__ import annotations

import argparse
from typing import Any

from schemas import JobConfig, utc_now


def build_graph(pipeline: Any, args: argparse.Namespace, job: JobConfig, files: list[str], run_id: str, progress: Any) -> None:
    """prompt rows -> (valid -> Generate -> result parts) + (invalid -> result parts) -> table.

    No shuffle between reading and the table on the in-process runner (see
    :func:`reshuffles_rows` for the others): rows stream into Generate (rows repeating a
    request share its generation: in the DoFn, the worker or the ledger, see
    ``GenerateDoFn.process``) and each bundle's rows are written as Parquet parts where they
    are made; only the parts' small summaries reach the step that publishes the table. A
    bundle the runner retries runs Generate again: the ledger turns that into reuse."""
    import apache_beam as beam

    from transforms.generate import GenerateDoFn, LedgerOptions
    from transforms.read import ReadPrompts
    from transforms.results import WriteResults

    rows = pipeline | "ReadPrompts" >> ReadPrompts(files, job, args.input_format, args.storage_options, args.strict_ids,
                                                   getattr(args, "limit", None))
    if reshuffles_rows(args):
        rows = rows | "SpreadRows" >> beam.Reshuffle()
    valid, invalid = rows | "SplitInvalid" >> beam.Partition(lambda row, _: 0 if row.is_valid else 1, 2)
    generated = (
        valid
        | "Generate" >> beam.ParDo(
            GenerateDoFn(job, args.output, run_id, storage_options=args.storage_options,
                         workers=limit_shares(args), progress=progress,
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


IN_PROCESS_RUNNERS = ("DirectRunner", "SwitchingDirectRunner", "FnApiRunner", "BundleBasedDirectRunner")


def reshuffles_rows(args: argparse.Namespace) -> bool:
    """Whether a Reshuffle follows the reader (``--reshuffle_rows``; ``auto`` decides by runner).

    The input is read as one ordered pass (one element), and a runner fuses the steps after
    it with the read: without a shuffle every row would be generated on the one worker that
    read it. ``auto`` reshuffles where there are several workers to spread rows over (a
    remote or portable runner, the DirectRunner's ``multi_processing`` mode or more than one
    ``--direct_num_workers``) and not in the in-process DirectRunner, where a shuffle only
    holds every row in memory and delays the first media until the whole input is read."""
    choice = getattr(args, "reshuffle_rows", None) or "auto"
    if choice != "auto":
        return choice == "on"
    runner = str(getattr(args, "runner", None) or "DirectRunner").rsplit(".", 1)[-1]
    if runner not in IN_PROCESS_RUNNERS:
        return True
    return (getattr(args, "direct_running_mode", None) == "multi_processing"
            or int(getattr(args, "direct_num_workers", None) or 1) > 1)


def limit_shares(args: argparse.Namespace) -> int:
    """How many processes share the job's limits: ``--workers``, or more when the DirectRunner
    runs ``multi_processing`` with more processes than that (each process holds one share,
    so together they keep to the job's budget rather than each taking all of it)."""
    workers = int(args.workers or 1)
    if getattr(args, "direct_running_mode", None) == "multi_processing":
        workers = max(workers, int(getattr(args, "direct_num_workers", None) or 1))
    return workers


def _resubmit_uncertain(args: argparse.Namespace) -> bool:
    """``--regenerate failed`` retries the rows held back as possibly paid, like ``--resubmit_uncertain``."""
    return bool(args.resubmit_uncertain or getattr(args, "regenerate", None) == "failed")


def _invalid_row(row: Any, run_id: str, progress: Any) -> Any:
    from transforms.metrics import MetricsCollector
    from transforms.rows import invalid_result

    result = invalid_result(row, run_id)
    MetricsCollector(progress).row(result)
    return result
