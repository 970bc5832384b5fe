"""Helpers for running the real pipeline on the DirectRunner in this process."""

import json
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow.dataset as ds
import pytest
import yaml

from pipelines.generate import main
from providers import register_provider
from providers.builtin.mock import MockProvider


class CountingMock(MockProvider):
    """The mock provider, counting submissions per request (a 'paid' call each)."""

    name = "counting"

    def __init__(self):
        super().__init__()
        self.submits = 0
        self._count_lock = threading.Lock()

    def submit(self, ctx, request):
        with self._count_lock:
            self.submits += 1
        return super().submit(ctx, request)


@pytest.fixture
def counting_provider():
    provider = CountingMock()
    register_provider("counting", provider)
    return provider


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def write_job(path, job):
    path.write_text(yaml.safe_dump(job))
    return path


def run_pipeline(*args):
    """Run the CLI in-process (DirectRunner); return the exit code. Failed and invalid rows
    are tolerated (exit 0, not 3): these tests read the rows' outcomes from the table."""
    return main([str(a) for a in args] + ["--no-progress", "--max_failed_fraction=1"])


def read_table(output):
    return ds.dataset(f"{output}/results", format="parquet").to_table()


def rows_by_id(output):
    return {r["row_id"]: r for r in read_table(output).to_pylist()}


def manifest(output):
    """The latest run's manifest (run ids within one second do not sort by time)."""
    runs = [json.loads(path.read_text()) for path in (output / "_runs").glob("*.json")]
    return max(runs, key=lambda run: run["finished_at"])


@contextmanager
def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (mount's syntax, e.g. ``64k``) mounted at ``mount`` for the block; the
    test is skipped where this machine cannot mount (not root)."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
