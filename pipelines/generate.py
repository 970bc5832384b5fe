"""``python -m pipelines.generate`` (also ``mediagen-generate``): prompt rows in; media in
object storage and a Parquet results table out.

    python -m pipelines.generate --input prompts.jsonl --output ./output [--config job.yaml] [Beam options]

Every option this module does not know is passed to Beam (``--runner``,
``--direct_num_workers``, Dataflow's ``--project/--region/--temp_location/--setup_file``...).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import uuid
from typing import Any, Callable, Sequence

from schemas import DEFAULT_JOB, JobConfig, utc_now
from transforms.ledger import DEFAULT_LEASE_SECONDS

log = logging.getLogger("mediagen")

EPILOG = """\
Job config (YAML or JSON), see README "Job config":
  modality: video | image | tts | sts
  configs: named generation configs (provider, model, api_key_env or secret,
           timeout, fallback_configs, mock, provider_config); rows pick one with a
           'config' column, otherwise the first serves
  limits:  per provider: max_in_flight, submits_per_second, polls_per_second
  prices:  per provider/model: price entries replacing the catalog's (README "Cost and budgets")
  budget:  max_usd, scope (run | output), unknown_price_usd: a hard cap checked before every submit
Without --config the job is the offline mock provider making video.

Any other option goes to Beam, e.g. --runner DataflowRunner --project P --region R
--temp_location gs://B/tmp --setup_file ./setup.py (see README "Running on Dataflow").
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediagen-generate",
        description="Generate media for every prompt row and write a Parquet results table.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", required=True, help="prompt rows: a file, glob or folder, local or gs:// s3:// memory:// (JSONL or Parquet)")
    parser.add_argument("--output", required=True, help="output root: media/, results/, _ledger/, _runs/ go below it")
    parser.add_argument("--config", help="job config file (YAML or JSON); default: the mock provider making video")
    parser.add_argument("--input_format", choices=["jsonl", "parquet"], help="override the format taken from the extension")
    parser.add_argument("--run_id", help="name of this run (default: UTC timestamp + random suffix)")
    parser.add_argument("--results_mode", choices=["replace", "append"], default="replace",
                        help="replace: the table holds only this run's rows (default); append: keep earlier runs' parts")
    parser.add_argument("--storage_options", type=json.loads, default=None,
                        help="JSON of fsspec options for input and output (e.g. an S3 endpoint)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="live progress bar (default: on for local runs)")
    parser.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                        help="wait for the job to finish (default); --no-wait returns once a remote runner accepted it")
    parser.add_argument("--workers", type=int, default=1,
                        help="workers the limits are divided across (Dataflow: max_num_workers); default 1")
    parser.add_argument("--strict_ids", nargs="?", const=True, default=False, type=_boolean,
                        help="a row id used twice makes the repeats invalid (default: they are renamed <id>~2, <id>~3...)")
    parser.add_argument("--resubmit_uncertain", nargs="?", const=True, default=False, type=_boolean,
                        help="submit again the rows whose earlier submit may have been paid without a recorded job "
                             "(PossiblyPaidError): pays again on purpose")
    parser.add_argument("--lease_seconds", type=_positive(float, "number of seconds"), default=DEFAULT_LEASE_SECONDS,
                        help="how long a ledger claim of a stopped worker blocks others (default %(default)s)")
    parser.add_argument("--dry_run", nargs="?", const=True, default=False, type=_boolean,
                        help="read and plan every row, call no provider: prints per config the rows it would submit, "
                             "reuse, skip, and the estimated cost; writes only _runs/<run_id>.plan.json")
    parser.add_argument("--limit", type=_positive(int, "whole number"), default=None,
                        help="run only the first N valid rows (a cheap real sample before the full job)")
    parser.add_argument("--max_usd", type=_positive(float, "amount of US dollars"), default=None,
                        help="hard budget cap in USD (overrides budget.max_usd of the job file)")
    return parser


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _boolean(text: str) -> bool:
    """A flag's value as a Flex Template passes it (``--strict_ids=true``); the bare flag is true."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _positive(convert: Callable[[str], float], what: str) -> Callable[[str], float]:
    """An argparse type: ``convert(text)`` when it is a finite number above 0, else a usage error."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = 0
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, got {text!r}")
        return value

    return parse


def with_budget(job: JobConfig, max_usd: float | None) -> JobConfig:
    """``job`` with ``--max_usd`` as its budget cap (other budget settings kept)."""
    if max_usd is None:
        return job
    from schemas.pricing import BudgetSettings

    current = job.budget.model_dump() if job.budget is not None else {}
    return job.model_copy(update={"budget": BudgetSettings(**{**current, "max_usd": max_usd})})


def valid_run_id(value: str) -> str:
    """``value`` when it is a safe run id (it becomes part of file names), else InputError."""
    if not RUN_ID.fullmatch(value) or ".." in value:
        raise InputError(
            f"--run_id {value!r} is not a valid run id: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, without '..'"
        )
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = build_parser().parse_known_args(argv)
    from .job_file import JobFileError, load_job

    try:
        job = load_job(args.config) if args.config else DEFAULT_JOB
    except JobFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    job = with_budget(job, args.max_usd)
    try:
        manifest = run(args, beam_args, job)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if manifest.get("dry_run"):
        from .dry_run import format_plan

        print(format_plan(manifest))
        return 0
    print_summary(manifest)
    return 0


class InputError(ValueError):
    """No input files, or an input that cannot be read."""


def run(args: argparse.Namespace, beam_args: list[str], job: JobConfig) -> dict[str, Any]:
    """Build and run the pipeline; return the run manifest."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from transforms.progress import Progress
    from transforms.results import sweep_stale_temporaries
    from transforms.storage import Storage, expand_inputs, outside_output_roots

    run_id = valid_run_id(args.run_id) if args.run_id else f"{utc_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    files, left_out = outside_output_roots(expand_inputs(args.input, args.storage_options), args.output, args.storage_options)
    if left_out:
        log.warning("--input %r: left out %d file(s) of output roots (e.g. %s); outputs are never read as prompts",
                    args.input, len(left_out), left_out[0])
    if not files:
        raise InputError(f"--input {args.input!r} matches no file" + (" outside output roots" if left_out else ""))
    if getattr(args, "dry_run", False):
        from .dry_run import dry_run

        return dry_run(files, job, output=args.output, run_id=run_id, input_format=args.input_format,
                       storage_options=args.storage_options, strict_ids=args.strict_ids, limit=args.limit)
    output = Storage(args.output, args.storage_options)
    check_output_writable(output, run_id)
    sweep_stale_temporaries(output)
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "DirectRunner"
    local = standard.runner in ("DirectRunner", "FnApiRunner", "BundleBasedDirectRunner")
    show_progress = args.progress if args.progress is not None else (local and sys.stderr.isatty())
    budget = job.budget.max_usd if job.budget is not None else None
    progress = Progress(count_rows(files, args), run_id, budget) if show_progress else None
    if progress is not None:
        progress.open()  # held here, so DoFns in this process draw on the same bar

    pipeline = beam.Pipeline(options=options)
    from .graph import build_graph

    build_graph(pipeline, args, job, files, run_id, progress)
    result = pipeline.run()
    if not args.wait and not local:
        return {"run_id": run_id, "output": args.output, "submitted": True}
    result.wait_until_finish()
    if progress is not None:
        progress.close()
    from transforms.read import duplicate_id_count

    manifest = Storage(args.output, args.storage_options).read_json(f"_runs/{run_id}.json")
    manifest = manifest or {"run_id": run_id, "output": args.output}
    manifest["duplicate_row_ids"] = duplicate_id_count(result)
    from transforms.gallery import gallery_after_run

    manifest["gallery"] = gallery_after_run(args.output, args.storage_options)
    return manifest


def check_output_writable(output: Any, run_id: str) -> None:
    """Before any money moves: the output root takes a create-only write, a read and a delete
    (the ledger's operations). Raises InputError with the one-line reason."""
    from transforms.storage import ConditionalWriteUnsupported

    probe = f"_ledger/.preflight-{run_id}-{uuid.uuid4().hex[:8]}"
    try:
        if not output.create_only(probe, b"mediagen preflight"):
            raise OSError(f"{probe} already exists")
        if output.read_bytes(probe) != b"mediagen preflight":
            raise OSError(f"{probe} read back different bytes")
        output.delete(probe)
    except ConditionalWriteUnsupported as exc:
        raise InputError(f"--output {output.root_uri!r}: {exc}; use a local path, gs:// or s3://") from None
    except (OSError, ValueError) as exc:
        raise InputError(
            f"--output {output.root_uri!r} is not writable ({type(exc).__name__}: {exc}); nothing was submitted"
        ) from None


def count_rows(files: list[str], args: argparse.Namespace) -> int | None:
    """Rows in the input, for the progress bar's total (None when it cannot be told cheaply)."""
    from transforms.read import input_format_of
    from transforms.storage import open_input

    total = 0
    try:
        for uri in files:
            if input_format_of(uri, args.input_format) == "parquet":
                import pyarrow.parquet as pq

                with open_input(uri, "rb", args.storage_options) as handle:
                    total += pq.ParquetFile(handle).metadata.num_rows
            else:
                with open_input(uri, "rt", {**(args.storage_options or {}), "compression": "infer"}) as handle:
                    total += sum(1 for line in handle if line.strip())
    except (OSError, ValueError):
        return None
    return total


def print_summary(manifest: dict[str, Any]) -> None:
    """The end-of-run summary: counts, providers, wall time, where things are, how to query."""
    if manifest.get("submitted"):
        print(f"run {manifest['run_id']} submitted; its table and manifest will be under {manifest['output']}")
        return
    counts = manifest.get("counts_by_status", {})
    lines = [
        "",
        f"run {manifest.get('run_id')}: {manifest.get('rows', 0)} rows in {manifest.get('wall_seconds', 0):.1f}s",
        "  " + "  ".join(f"{status}={count}" for status, count in sorted(counts.items()))
        + (f"  (reused from earlier runs or duplicate rows: {manifest['reused']})" if manifest.get("reused") else ""),
    ]
    for name, count in sorted(manifest.get("completed_by_provider_model", {}).items()):
        lines.append(f"  completed by {name}: {count}")
    for name, count in sorted(manifest.get("not_completed_by_error_type", {}).items()):
        lines.append(f"  not completed, {name}: {count}")
    lines += spend_lines(manifest.get("cost"))
    if manifest.get("duplicate_row_ids"):
        lines.append(f"  {manifest['duplicate_row_ids']} row(s) repeated an earlier row's id: renamed <id>~2, <id>~3... "
                     "(--strict_ids makes them invalid); the log names examples")
    uncertain = manifest.get("not_completed_by_error_type", {}).get("PossiblyPaidError", 0)
    if uncertain:
        lines.append(f"  {uncertain} row(s) may already have been paid for without a recorded job and were not "
                     "sent again; --resubmit_uncertain pays for them again on purpose")
    refused = manifest.get("not_completed_by_error_type", {}).get("BudgetExceededError", 0)
    if refused:
        lines.append(f"  {refused} row(s) were not submitted because the budget cap was reached; a rerun with a "
                     "larger --max_usd submits them (rows already made are reused, not paid again)")
    output = manifest.get("output", "")
    lines += [
        f"  table:    {output}/results/*.parquet",
        f"  media:    {output}/media/",
        f"  manifest: {output}/_runs/{manifest.get('run_id')}.json",
        *([f"  gallery:  {manifest['gallery']}"] if manifest.get("gallery") else []),
        "  query:    python -c \"import pyarrow.dataset as ds; "
        f"print(ds.dataset('{output}/results').to_table(columns=['row_id','status','provider','media_uris']).to_pandas())\"",
        f"            duckdb -c \"select status, provider, count(*) from '{output}/results/*.parquet' group by all\"",
    ]
    print("\n".join(lines))


def spend_lines(cost: dict[str, Any] | None) -> list[str]:
    """The summary's spend: total (of the cap), per provider/model, unknown prices, refusals."""
    if not cost:
        return []
    budget = cost.get("budget") or {}
    cap = f" of a ${budget['max_usd']:g} cap" if budget.get("max_usd") else ""
    unknown = cost.get("unknown_price_attempts", 0)
    lines = [f"  spent:    ${cost.get('total_usd', 0):,.2f}{cap}"
             + (f" (+{unknown} paid attempt(s) of unknown price)" if unknown else "")]
    for name, entry in sorted(cost.get("by_provider_model", {}).items()):
        reported = f", {entry['provider_reported']:g} provider-reported" if entry.get("provider_reported") else ""
        lines.append(f"    {name}: ${entry['usd']:,.2f} over {entry['attempts']:g} paid attempt(s){reported}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
