"""Every failure of a run as one line naming the cause and the fix, with its exit code.

``explain`` is what ``pipelines.generate.main`` prints after ``error:``. Errors raised in a
DoFn reach the launcher wrapped by Beam (a RuntimeError whose text holds the worker's
traceback); they are unwrapped to the root cause's last line first.
"""

from __future__ import annotations

import errno
import logging
import re
import sys
from typing import Callable

EXTRAS = {"s3fs": "s3", "gcsfs": "gcs"}
"""fsspec back end -> how it is installed: ``pip install 'mediagen[s3]'``; gcsfs comes with mediagen."""

EXIT_OK = 0
"""Every valid row completed or was reused (or the failed share is within --max_failed_fraction)."""
EXIT_UNEXPECTED = 1
"""The run stopped on an error (disk full part way, an unexpected exception)."""
EXIT_USAGE = 2
"""Usage or configuration: unknown option, bad value, job file, input, output or credentials."""
EXIT_ROWS_FAILED = 3
"""The run finished but more rows failed (or were invalid) than --max_failed_fraction allows."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT)."""


class InputError(ValueError):
    """No input files, an input that cannot be read, or an output that cannot be written."""


class CredentialsError(InputError):
    """No configured key source holds a key."""


_TRACEBACK_ERROR = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Exit|Interrupt)):\s?(.*)$")
_ERRNO = re.compile(r"\[Errno (\d+)\]")


def explain(exc: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for ``exc`` (README "Exit codes")."""
    from .job_file import JobFileError
    from .options import UsageError

    root = root_cause(exc)
    if isinstance(root, (UsageError, JobFileError, InputError)):
        return EXIT_USAGE, str(root)
    if isinstance(root, ImportError):
        return EXIT_USAGE, missing_extra(root)
    name, text = _wrapped(root)
    code = _errno_of(root, text)
    if code == errno.ENOSPC:
        return EXIT_UNEXPECTED, ("no space left on the device of the output while writing; free space (or use "
                                 "another --output) and rerun the same command: finished rows are reused and jobs "
                                 "in flight are followed, not paid again")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return EXIT_USAGE, f"{text or name} (the output is read-only or not writable); fix the permissions or choose another --output"
    if name == "KeyResolutionError":
        return EXIT_USAGE, f"{text}; grant the worker access to the secret or fix its name in the job file"
    if name in ("ModuleNotFoundError", "ImportError"):
        return EXIT_USAGE, missing_extra(ImportError(text))
    if name == "KeyboardInterrupt":
        return EXIT_INTERRUPTED, "interrupted"
    where = f"{name}: {text}" if text else name
    return EXIT_UNEXPECTED, f"{where} (unexpected; rerun with --verbose for the traceback)"


def root_cause(exc: BaseException) -> BaseException:
    """The innermost explicitly chained cause (``raise ... from``), else ``exc``."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def _wrapped(exc: BaseException) -> tuple[str, str]:
    """(type name, message) of the error Beam wrapped in ``exc``'s text, else of ``exc``:
    the last ``SomeError: message`` line of an embedded traceback."""
    text = str(exc)
    found = None
    if "Traceback" in text or "\n" in text:
        for line in text.splitlines():
            match = _TRACEBACK_ERROR.match(line.strip())
            if match and match.group(1) not in ("RuntimeError",) or (match and found is None):
                found = match
        if found is not None:
            message = found.group(2).strip()
            message = re.sub(r"\s*\[while running '[^']*'\]\s*$", "", message)
            return found.group(1), message[:500]
    lines = text.strip().splitlines()
    return type(exc).__name__, (lines[0][:500] if lines else "")


def _errno_of(exc: BaseException, text: str) -> int | None:
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    match = _ERRNO.search(text) or _ERRNO.search(str(exc))
    if match:
        return int(match.group(1))
    if "No space left on device" in text or "No space left on device" in str(exc):
        return errno.ENOSPC
    return None


def missing_extra(exc: BaseException, uri: str = "") -> str:
    """The install command for the fsspec back end an ImportError says is missing."""
    text = str(exc)
    for module, extra in EXTRAS.items():
        if module in text:
            scheme = "s3://" if extra == "s3" else "gs://"
            install = f"pip install 'mediagen[{extra}]'" if extra == "s3" else f"pip install {module}"
            return f"{uri or scheme} needs {module}, which is not installed: {install}"
    name = getattr(exc, "name", None) or text
    return f"a module is missing ({name}); reinstall mediagen with its extras (pip install 'mediagen[s3]')"


def run_tool(work: Callable[[], str], expected: tuple[type[BaseException], ...], *, doing: str, verbose: bool) -> int:
    """The shell of the small commands (``mediagen-gallery``, ``mediagen-export``): print what
    ``work`` returns and exit 0; an expected error, a missing filesystem extra or any other
    failure is one ``error:`` line and exit 2 (the traceback only with ``--verbose``)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        print(work())
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        print(f"error: {missing_extra(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - unreachable stores, permissions, full disks: one line, not a traceback
        if verbose:
            raise
        print(f"error: cannot {doing} ({type(exc).__name__}: {exc}); --verbose shows the traceback", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
