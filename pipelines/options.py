"""mediagen's command-line options as a Beam ``PipelineOptions`` subclass.

Declared here once, they are listed by ``--help`` next to Beam's options and travel in the
pipeline options (visible in the Dataflow UI with the job). ``parse_command_line`` refuses
any argument that neither mediagen nor Beam knows, with a did-you-mean.

Add a mediagen option in ``MediagenOptions._add_argparse_args``; never ``required=True``
there (Beam builds a parser of every options class whenever it reads options, also on
workers): ``parse_command_line`` checks the required ones.
"""

from __future__ import annotations

import argparse
import difflib
import json
from typing import Any, Callable, NoReturn, Sequence

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.ledger import DEFAULT_LEASE_SECONDS

REQUIRED = ("input", "output")
"""Options a run cannot do without (checked by ``parse_command_line``, not argparse)."""


class UsageError(ValueError):
    """The command line is not one mediagen can run: exit 2 with this one-line message."""


def boolean(text: str) -> bool:
    """A flag's value as a Flex Template passes it (``--strict_ids=true``); the bare flag is true."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def positive(convert: Callable[[str], float], what: str) -> Callable[[str], float]:
    """An argparse type: ``convert(text)`` when it is a finite number above 0, else a usage error."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = 0
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, got {text!r}")
        return value

    parse.__name__ = convert.__name__
    return parse


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1, got {text!r}")
    return value


def json_object(text: str | dict[str, Any]) -> dict[str, Any]:
    """An argparse type: a JSON object (Beam hands an already-parsed dict back on workers)."""
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"must be a JSON object: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {type(value).__name__}")
    return value


def _flag(parser: Any, name: str, help: str) -> None:
    """A boolean flag given bare (``--strict_ids``) or with a value (``--strict_ids=false``)."""
    parser.add_argument(name, nargs="?", const=True, default=False, type=boolean, metavar="true|false", help=help)


class MediagenOptions(PipelineOptions):
    """mediagen's own options (``python -m pipelines.generate --help`` lists them first)."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        group = parser.add_argument_group("mediagen options")
        group.add_argument("--input", help="prompt rows: a file, glob or folder, local or gs:// s3:// memory:// "
                                           "(JSONL or Parquet) [required]")
        group.add_argument("--output", help="output root: media/, results/, _ledger/, _runs/ go below it [required]")
        group.add_argument("--config", help="job config file (YAML or JSON); default: the mock provider making video")
        group.add_argument("--input_format", choices=["jsonl", "parquet"],
                           help="override the format taken from the extension")
        group.add_argument("--run_id", help="name of this run (default: UTC timestamp + random suffix)")
        group.add_argument("--results_mode", choices=["replace", "append"], default="replace",
                           help="replace: the table holds only this run's rows (default); append: keep earlier runs' parts")
        group.add_argument("--storage_options", type=json_object, default=None,
                           help="JSON of fsspec options for input and output (e.g. an S3 endpoint)")
        group.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                           help="show progress (default: on for local runs): a live display on a terminal, "
                                "else one plain line every --progress_interval seconds")
        group.add_argument("--progress_interval", type=positive(float, "number of seconds"), default=30.0,
                           help="seconds between progress lines when stderr is not a terminal (default %(default)s)")
        group.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                           help="wait for the job to finish (default); --no-wait returns once a remote runner "
                                "accepted it, printing the job id")
        group.add_argument("--workers", type=positive(int, "whole number"), default=1,
                           help="workers the limits are divided across (Dataflow: max_num_workers); default 1")
        _flag(group, "--strict_ids",
              "a row id used twice makes the repeats invalid (default: they are renamed <id>~2, <id>~3...)")
        _flag(group, "--resubmit_uncertain",
              "submit again the rows whose earlier submit may have been paid without a recorded job "
              "(PossiblyPaidError): pays again on purpose")
        group.add_argument("--regenerate", choices=["failed", "mock", "all"], default=None,
                           help="redo on purpose what a rerun would keep: failed = also the rows held back as "
                                "possibly paid (like --resubmit_uncertain); mock = every result the mock made; "
                                "all = everything, paying again")
        group.add_argument("--lease_seconds", type=positive(float, "number of seconds"), default=DEFAULT_LEASE_SECONDS,
                           help="how long a ledger claim of a stopped worker blocks others (default %(default)s)")
        group.add_argument("--limit", type=positive(int, "whole number"), default=None,
                           help="run only the first N valid rows (a cheap real sample before the full job)")
        group.add_argument("--max_usd", type=positive(float, "amount of US dollars"), default=None,
                           help="hard budget cap in USD (overrides budget.max_usd of the job file)")
        group.add_argument("--max_failed_fraction", type=fraction, default=0.0,
                           help="share of valid rows that may fail before the exit code is 3 "
                                "(default 0: any failed row exits 3; invalid rows never do unless no row is valid)")
        group.add_argument("--reshuffle_rows", choices=["auto", "on", "off"], default="auto",
                           help="spread the rows read over the workers with a Reshuffle: auto (default) = on for "
                                "remote and portable runners and DirectRunner multi_processing or "
                                "--direct_num_workers > 1, off in the in-process DirectRunner")
        _flag(group, "--verbose", "on an error, print the traceback too (default: one 'error:' line)")


LAUNCH_ONLY = ("--dry_run",)
"""mediagen options read only where the job is launched, never handed to Beam: Beam's own
``TestOptions`` owns ``--dry_run`` (a Dataflow dry run), so ours is declared apart from
``MediagenOptions`` and left out of the pipeline options."""


def _add_launch_only_args(parser: Any) -> None:
    _flag(parser, "--dry_run",
          "read and plan every row, call no provider: prints per config the rows it would submit, "
          "reuse, skip, and the estimated cost; writes only _runs/<run_id>.plan.json")


class _Parser(argparse.ArgumentParser):
    """argparse raising ``UsageError`` (one line, exit 2 by ``main``) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def mediagen_parser(**kwargs: Any) -> argparse.ArgumentParser:
    """A parser of mediagen's options alone."""
    parser = _Parser(allow_abbrev=False, **kwargs)
    MediagenOptions._add_argparse_args(parser)
    _add_launch_only_args(parser)
    return parser


def full_parser(**kwargs: Any) -> argparse.ArgumentParser:
    """mediagen's options followed by every Beam ``PipelineOptions`` class's (for --help and checking)."""
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class Parser(_Parser, _BeamArgumentParser):
        pass

    parser = Parser(allow_abbrev=False, **kwargs)
    MediagenOptions._add_argparse_args(parser)
    _add_launch_only_args(parser)
    seen: set[str] = set()
    for options_class in _option_classes():
        if options_class is MediagenOptions or str(options_class) in seen:
            continue
        seen.add(str(options_class))
        options_class._add_argparse_args(_Unclaimed(parser, f"Beam: {options_class.__name__}"))
    return parser


class _Unclaimed:
    """An argument group of ``parser`` that skips options another class already declared
    (Beam's ``--dry_run`` of TestOptions: mediagen's is the one the command line means)."""

    def __init__(self, parser: Any, title: str) -> None:
        self._parser = parser
        self._group = parser.add_argument_group(title)

    def add_argument(self, *names: str, **kwargs: Any) -> Any:
        if any(name in self._parser._option_string_actions for name in names):
            return None
        return self._group.add_argument(*names, **kwargs)

    def add_value_provider_argument(self, *names: str, **kwargs: Any) -> Any:
        from apache_beam.options.pipeline_options import _BeamArgumentParser

        return _BeamArgumentParser.add_value_provider_argument(self, *names, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._group, name)


def _option_classes() -> list[type]:
    """Every PipelineOptions subclass Beam would parse with (runner modules imported first)."""
    import apache_beam.options.pipeline_options  # noqa: F401 - the standard option classes

    try:  # the Dataflow and portable runners' option classes, when installed
        import apache_beam.runners.dataflow.dataflow_runner  # noqa: F401
        import apache_beam.runners.portability.portable_runner  # noqa: F401
    except ImportError:
        pass
    return list(PipelineOptions.__subclasses__())


def option_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every ``--name`` the parser knows."""
    return sorted({s for action in parser._actions for s in action.option_strings if s.startswith("--")})


def beam_flags(argv: Sequence[str]) -> list[str]:
    """``argv`` without the launch-only options (and a value given to them as the next word)."""
    flags: list[str] = []
    skip_value = False
    for word in argv:
        if skip_value:
            skip_value = False
            if word.lower() in ("true", "false", "1", "0", "yes", "no"):
                continue
        name = word.split("=", 1)[0]
        if name in LAUNCH_ONLY:
            skip_value = "=" not in word
            continue
        flags.append(word)
    return flags


def parse_command_line(argv: Sequence[str], **parser_text: Any) -> argparse.Namespace:
    """mediagen's and Beam's options of ``argv`` as one namespace; ``UsageError`` for an argument
    neither knows (with a did-you-mean), a bad value, or a missing required option.
    ``parser_text``: prog, description, epilog... of the --help text."""
    parser = full_parser(**parser_text)
    args, unknown = parser.parse_known_args(list(argv))
    if unknown:
        raise UsageError(unknown_argument(unknown[0], option_names(parser)))
    missing = [f"--{name}" for name in REQUIRED if getattr(args, name) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")
    return args


def unknown_argument(argument: str, known: list[str]) -> str:
    """'unknown argument --confg; did you mean --config?' (difflib over every known option)."""
    name = argument.split("=", 1)[0]
    if not name.startswith("-"):
        return f"unexpected argument {argument!r} (options take the form --name value or --name=value)"
    guesses = difflib.get_close_matches(name if name.startswith("--") else f"-{name}", known, n=1, cutoff=0.6)
    hint = f"; did you mean {guesses[0]}?" if guesses else "; --help lists mediagen's and Beam's options"
    return f"unknown argument {name}{hint}"
