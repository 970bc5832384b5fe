"""``python -m pipelines.generate`` (also ``mediagen-generate``): prompt rows in; media in
object storage and a Parquet results table out.

    python -m pipelines.generate --input prompts.jsonl --output ./output [--config job.yaml] [Beam options]

mediagen's options (``pipelines.options.MediagenOptions``) and Beam's (``--runner``,
``--direct_num_workers``, Dataflow's ``--project/--region/--temp_location/--setup_file``...)
are parsed together; an argument neither knows is refused. Exit codes: ``EXIT_*`` below.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import traceback
import uuid
import threading
from typing import Any, Iterator, Sequence

from schemas import DEFAULT_JOB, JobConfig, utc_now

from .errors import (  # noqa: F401 - the exit codes are part of this module's interface
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    CredentialsError,
    InputError,
    explain,
)
from .options import UsageError, beam_flags, mediagen_parser, parse_command_line

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

Beam's options follow mediagen's, e.g. --runner DataflowRunner --project P --region R
--temp_location gs://B/tmp --setup_file ./setup.py (see README "Running on Dataflow").

Exit codes: 0 every valid row completed or reused; 1 the run stopped on an error;
2 usage or configuration error; 3 valid rows failed beyond --max_failed_fraction (or no row was valid);
130 interrupted (Ctrl-C): rerunning the same command resumes without paying again.
"""


PARSER_TEXT: dict[str, Any] = {
    "prog": "mediagen-generate",
    "usage": "%(prog)s --input PROMPTS --output ROOT [--config JOB] [mediagen options] [Beam options]",
    "description": "Generate media for every prompt row and write a Parquet results table.",
    "epilog": EPILOG,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}

def build_parser() -> argparse.ArgumentParser:
    """mediagen's own options (``--help`` lists Beam's too: ``pipelines.options.full_parser``)."""
    return mediagen_parser(**PARSER_TEXT)


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


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
    """Entry point of the console script; returns the exit code (README "Exit codes")."""
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        args = parse_command_line(argv, **PARSER_TEXT)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    quiet_library_loggers(args.verbose)
    try:
        return launch(args, argv)
    except KeyboardInterrupt:
        print("interrupted: rerunning the same command resumes without paying again "
              "(a job a remote runner already accepted keeps running there)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line (traceback with --verbose)
        code, message = explain(exc)
        print(f"error: {message}", file=sys.stderr)
        if args.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        return code


def launch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Load the job, run it, print the summary; the exit code for the rows' outcome."""
    from .job_file import load_job

    job = load_job(args.config) if args.config else DEFAULT_JOB
    job = with_budget(job, args.max_usd)
    manifest = run(args, beam_flags(argv), job)
    if manifest.get("dry_run"):
        from .dry_run import format_plan

        print(format_plan(manifest))
        return EXIT_OK
    print_summary(manifest)
    return exit_code(manifest, args.max_failed_fraction)


def exit_code(manifest: dict[str, Any], max_failed_fraction: float) -> int:
    """0 when every valid row completed or was reused, or the failed ones are at most
    ``max_failed_fraction`` of the valid rows; 3 otherwise, and when no row was valid at all.
    Invalid rows are reported by the summary but cost only themselves."""
    if manifest.get("submitted"):
        return EXIT_OK
    counts = manifest.get("counts_by_status", {})
    failed, invalid = counts.get("failed", 0), counts.get("invalid", 0)
    valid = (manifest.get("rows") or sum(counts.values())) - invalid
    if invalid and not valid:
        print(f"exit {EXIT_ROWS_FAILED}: all {invalid} row(s) were invalid; nothing was generated", file=sys.stderr)
        return EXIT_ROWS_FAILED
    if failed and failed > max_failed_fraction * valid:
        print(f"exit {EXIT_ROWS_FAILED}: {failed} of {valid} valid row(s) failed "
              f"(--max_failed_fraction {max_failed_fraction:g} tolerates {int(max_failed_fraction * valid)})",
              file=sys.stderr)
        return EXIT_ROWS_FAILED
    return EXIT_OK


def configure_logging() -> None:
    """mediagen's warnings on stderr; Beam's Dataflow runner at INFO, so its "Created job with
    id" line (which Airflow's Beam operator reads) and the console link still show."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam.runners.dataflow").setLevel(logging.INFO)


NOISY_LOGGERS = ("apache_beam", "gcsfs", "s3fs", "fsspec", "aiobotocore", "botocore", "urllib3", "google.auth", "google.api_core")
"""Beam (a failed bundle) and storage clients (every retry) log whole tracebacks; their
failures reach the user as one ``error:`` line instead (all of it with --verbose)."""


def quiet_library_loggers(verbose: bool) -> None:
    """Without --verbose, Beam and the storage clients log nothing below CRITICAL (a failed
    bundle's traceback among them); Beam's Dataflow runner keeps its INFO lines."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.CRITICAL)
    logging.getLogger("apache_beam.runners.dataflow").setLevel(logging.INFO)


def run(args: argparse.Namespace, beam_args: list[str], job: JobConfig) -> dict[str, Any]:
    """Build and run the pipeline; return the run manifest."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from transforms.progress import DEFAULT_INTERVAL, Progress, progress_mode
    from transforms.results import sweep_stale_temporaries
    from transforms.storage import Storage, StoreUnreachable, check_reachable, outside_output_roots

    run_id = valid_run_id(args.run_id) if args.run_id else f"{utc_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    files, left_out = outside_output_roots(input_files(args.input, args.storage_options), args.output, args.storage_options)
    if left_out:
        log.warning("--input %r: left out %d file(s) of output roots (e.g. %s); outputs are never read as prompts",
                    args.input, len(left_out), left_out[0])
    if not files:
        raise InputError(f"--input {args.input!r} matches no file" + (" outside output roots" if left_out else ""))
    check_input_formats(files, args.input_format)
    if getattr(args, "dry_run", False):
        from .dry_run import dry_run

        return dry_run(files, job, output=args.output, run_id=run_id, input_format=args.input_format,
                       storage_options=args.storage_options, strict_ids=args.strict_ids, limit=args.limit)
    output = Storage(args.output, args.storage_options)
    try:
        check_reachable(args.output, args.storage_options)
    except StoreUnreachable as exc:
        raise InputError(f"--output {args.output!r}: {exc}; check the network and --storage_options") from None
    check_output_writable(output, run_id)
    sweep_stale_temporaries(output)
    if getattr(args, "regenerate", None):
        from transforms.generate import regenerate_notice

        print(regenerate_notice(args.regenerate, output), file=sys.stderr)
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "DirectRunner"
    local = standard.runner in ("DirectRunner", "FnApiRunner", "BundleBasedDirectRunner")
    if local:
        check_credentials(job)
    show_progress = args.progress if args.progress is not None else local
    budget = job.budget.max_usd if job.budget is not None else None
    progress = Progress(count_rows(files, args), run_id, budget, mode=progress_mode(sys.stderr),
                        interval=getattr(args, "progress_interval", DEFAULT_INTERVAL)) if show_progress else None
    if progress is not None:
        progress.open()  # held here, so DoFns in this process draw on the same bar

    pipeline = beam.Pipeline(options=options)
    from .graph import build_graph

    build_graph(pipeline, args, job, files, run_id, progress)
    # The display is closed first (last line drawn, ticker stopped), so nothing redraws over an interrupt's message.
    with reporting_interrupts(args.output, args.storage_options, run_id) if local else contextlib.nullcontext(), \
            contextlib.closing(progress) if progress is not None else contextlib.nullcontext():
        result = pipeline.run()
        if not args.wait and not local:
            return {"run_id": run_id, "output": args.output, "submitted": True, **remote_job(result, options)}
        result.wait_until_finish()
    from transforms.read import duplicate_id_count

    manifest = Storage(args.output, args.storage_options).read_json(f"_runs/{run_id}.json")
    manifest = manifest or {"run_id": run_id, "output": args.output}
    manifest["duplicate_row_ids"] = duplicate_id_count(result)
    from transforms.gallery import gallery_after_run

    manifest["gallery"] = gallery_after_run(args.output, args.storage_options)
    return manifest


def input_files(pattern: str, storage_options: dict[str, Any] | None) -> list[str]:
    """``expand_inputs``, its failures (an unreachable store, a missing extra) as InputError."""
    from transforms.storage import StoreUnreachable, expand_inputs

    from .errors import missing_extra

    try:
        return expand_inputs(pattern, storage_options)
    except ImportError as exc:
        raise InputError(f"--input {pattern!r}: {missing_extra(exc)}") from None
    except StoreUnreachable as exc:
        raise InputError(f"--input {pattern!r}: {exc}; check the network and --storage_options") from None
    except Exception as exc:  # noqa: BLE001 - fsspec back ends raise many types for "cannot reach"
        raise InputError(f"--input {pattern!r} cannot be listed ({type(exc).__name__}: {first_line(exc)}); "
                         "check the path, the network and --storage_options") from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (fsspec back ends append whole responses)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def check_input_formats(files: list[str], declared: str | None) -> None:
    """Every input is JSONL or Parquet (by --input_format or its extension), else InputError."""
    from transforms.read import input_format_of

    for uri in files:
        try:
            input_format_of(uri, declared)
        except ValueError:
            raise InputError(f"--input {uri!r} is not a supported format (JSONL: .jsonl .json .ndjson, "
                             "Parquet: .parquet .pq, optionally compressed); rename it or pass "
                             "--input_format jsonl|parquet") from None


def check_credentials(job: JobConfig) -> None:
    """On a local run: when no config of the job can get an API key here (its environment
    variable unset, no secret named), say so before reading a row (InputError); a config
    without a key among others that have one is a warning (its rows fail with ProviderAuthError)."""

    from providers.registry import get_provider

    missing: list[tuple[str, str]] = []
    for name, chain in zip(job.config_names, job.configs):
        needs: list[str] = []
        for entry in chain.walk():
            if entry.is_mocked or entry.secret:
                needs = []
                break
            env = entry.api_key_env or getattr(get_provider(entry.provider), "api_key_env", None)
            if not env or os.environ.get(env, "").strip():
                needs = []
                break
            needs.append(env)
        if needs:
            missing.append((name, needs[0]))
    if not missing:
        return
    described = "; ".join(f"config {name!r} reads its key from ${env}, which is not set" for name, env in missing)
    if len(missing) == len(job.configs):
        raise CredentialsError(f"no API key: {described}; export it (or name a Secret Manager secret "
                               "in the job file) and rerun")
    log.warning("%s: its rows will fail with ProviderAuthError", described)


def remote_job(result: Any, options: Any) -> dict[str, Any]:
    """The job id and console URL of a submitted remote job, when its runner tells them."""
    job_id = getattr(result, "job_id", None)
    try:
        job_id = job_id() if callable(job_id) else job_id
    except Exception:  # noqa: BLE001 - a runner without job ids
        job_id = None
    if not job_id:
        return {}
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    cloud = options.view_as(GoogleCloudOptions)
    found: dict[str, Any] = {"job_id": str(job_id)}
    if cloud.region and cloud.project:
        found["console_url"] = (f"https://console.cloud.google.com/dataflow/jobs/{cloud.region}/{job_id}"
                                f"?project={cloud.project}")
    log.info("submitted job %s %s", job_id, found.get("console_url", ""))
    return found


@contextlib.contextmanager
def reporting_interrupts(output: str, storage_options: dict[str, Any] | None, run_id: str) -> Iterator[None]:
    """While a local run goes: Ctrl-C stops it at once and prints one line saying how many
    provider jobs this run recorded in the ledger and that a rerun resumes without paying
    again; exit 130. The process ends there (``os._exit``): the ledger is built to survive
    a kill at any moment, and Beam's threads would otherwise print their tracebacks."""
    import signal
    import time

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    started = time.time()

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while counting changes nothing
        try:
            recorded = f"{recorded_jobs(output, storage_options, run_id, started)} provider job(s)"
        except Exception:  # noqa: BLE001 - the message matters more than the count
            recorded = "the provider jobs submitted so far"
        lead = "\n" if sys.stderr.isatty() else ""
        sys.stderr.write(f"{lead}interrupted: run {run_id} stopped; {recorded} are recorded in "
                         f"{output}/_ledger. Rerun the same command to resume without paying again.\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def recorded_jobs(output: str, storage_options: dict[str, Any] | None, run_id: str, since: float) -> int:
    """Claims under ``<output>/_ledger`` written by ``run_id`` that hold a provider job id
    (local roots: only files modified since ``since`` are read)."""
    import json

    from transforms.ledger import LEDGER_DIR
    from transforms.storage import Storage

    storage = Storage(output, storage_options)
    count = 0
    for path in storage.fs.glob(storage.path(f"{LEDGER_DIR}/*/claim-*.json")):
        if storage.is_local and os.stat(path).st_mtime < since - 1:
            continue
        try:
            record = json.loads(storage.fs.cat_file(path))
        except (OSError, ValueError):
            continue
        count += bool(record.get("run_id") == run_id and record.get("job"))
    return count


MIN_FREE_BYTES = 256 * 1024
"""A local output with less room than this cannot hold even the ledger and the table."""


def check_output_writable(output: Any, run_id: str) -> None:
    """Before any money moves: the output root takes a create-only write, a read and a delete
    (the ledger's operations), and a local one has room for at least the ledger and the table.
    Raises InputError with the one-line reason."""
    import shutil

    from transforms.storage import ConditionalWriteUnsupported

    if output.is_local and os.path.isfile(output.path("")):
        raise InputError(f"--output {output.root_uri!r} is a file; give a folder (it is created when missing)")
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
    if output.is_local and os.path.isdir(output.path("")):
        free = shutil.disk_usage(output.path("")).free
        if free < MIN_FREE_BYTES:
            raise InputError(f"--output {output.root_uri!r} has only {free // 1024} KiB free (at least "
                             f"{MIN_FREE_BYTES // 1024} KiB needed); free space or choose another --output")


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
    from schemas.results import summary_queries

    if manifest.get("submitted"):
        print(f"run {manifest['run_id']} submitted; its table and manifest will be under {manifest['output']}")
        if manifest.get("job_id"):
            print(f"  job id:  {manifest['job_id']}")
        if manifest.get("console_url"):
            print(f"  console: {manifest['console_url']}")
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
    store = manifest.get("store") or {}
    if "requests" in store:  # transforms/store_counts.py: what the run asked of the object store
        lines.append(f"  store:    {store['requests']} requests ({store.get('requests_per_row', 0):g} per row), "
                     f"{store.get('objects_written', 0)} objects written ({store.get('objects_written_per_row', 0):g} per row)")
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
    if manifest.get("placeholders"):
        lines.append(f"  PLACEHOLDERS: {manifest['placeholders']} row(s) were made by the mock standing in for a real "
                     "provider (column placeholder); a rerun that can reach the provider replaces them")
    output = manifest.get("output", "")
    lines += [
        f"  table:    {output}/results/*.parquet",
        f"  media:    {output}/media/",
        f"  manifest: {output}/_runs/{manifest.get('run_id')}.json",
        *([f"  gallery:  {manifest['gallery']}"] if manifest.get("gallery") else []),
        *summary_queries(output, manifest.get("run_id")),
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
