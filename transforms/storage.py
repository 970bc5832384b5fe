"""Object storage through fsspec: local paths, memory://, gs:// (gcsfs), s3:// (s3fs).

Writes are atomic: on filesystems with a real rename (local, memory) we write a
temporary name and rename it; on object stores an object only appears once its
upload completes, so a single upload to the final name is already atomic.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import posixpath
import sys
import threading
import uuid
from typing import Any, Iterator

import fsspec

log = logging.getLogger(__name__)

RENAMING_PROTOCOLS = {"file", "local", "memory"}
CHUNK = 1 << 20
MADE_DIRS_REMEMBERED = 4096
"""Folders a Storage remembers having made (a forgotten one costs one more ``makedirs``)."""
UPLOAD_CHUNK = 8 << 20
"""Largest part of a streamed upload to an object store. The clients hold a few copies
of a part while sending it (about 2x on S3, 4x on GCS), never the whole file."""
UPLOAD_OPTIONS: dict[str, dict[str, int]] = {
    # s3fs: multipart above 2 parts; by default 50 MiB parts, 10 read ahead at once
    "s3": {"chunksize": UPLOAD_CHUNK, "max_concurrency": 1},
    # gcsfs: resumable upload in chunks of this size (a multiple of 256 KiB; default 50 MiB)
    "gs": {"chunksize": UPLOAD_CHUNK // 2},
}
CONTENT_TYPE_OPTION = {"gs": "content_type", "gcs": "content_type", "s3": "ContentType", "s3a": "ContentType"}
"""The keyword each object store's fsspec upload takes for the object's Content-Type."""
GCSFS_EXTENDED_SWITCH = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"
"""gcsfs reads this when imported; "false" selects the plain JSON-API filesystem."""


def prefer_plain_gcsfs_on_emulators(storage_options: dict[str, Any] | None = None) -> None:
    """Against a GCS emulator, keep gcsfs from probing the bucket type over gRPC.

    Recent gcsfs (the extended filesystem, on by default) asks the Storage Control API
    for each bucket's layout (zonal / hierarchical namespace) before opening files; an
    emulator such as fake-gcs-server does not speak that gRPC API, so every probe waits
    60 s before falling back, and the failed answer is not cached. When an emulator is
    configured (``STORAGE_EMULATOR_HOST`` or an ``endpoint_url`` storage option) we
    default the switch to off. It only counts before gcsfs is first imported; real GCS is
    left as gcsfs chooses.
    """
    emulated = bool(os.environ.get("STORAGE_EMULATOR_HOST") or (storage_options or {}).get("endpoint_url"))
    if not emulated or GCSFS_EXTENDED_SWITCH in os.environ:
        return
    os.environ[GCSFS_EXTENDED_SWITCH] = "false"
    if "gcsfs" in sys.modules:
        log.warning(
            "gcsfs was imported before a GCS emulator was configured; set %s=false before starting "
            "to avoid a 60 s gRPC bucket-type probe per operation", GCSFS_EXTENDED_SWITCH,
        )


STORE_REQUEST_TIMEOUT = 120.0
"""Seconds one object-store request may take. s3fs bounds its reads (15 s) by default;
gcsfs waits forever unless told, and a store that stops answering must not hang a run."""


def _prepare(uri: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """The storage options to use for ``uri``: the caller's, plus request timeouts on GCS and S3
    (a stalled connection becomes an error instead of a run that never ends)."""
    options = dict(storage_options or {})
    if uri.startswith(("gs://", "gcs://")):
        prefer_plain_gcsfs_on_emulators(storage_options)
        options.setdefault("requests_timeout", STORE_REQUEST_TIMEOUT)
    elif uri.startswith(("s3://", "s3a://")):
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", 30)
        config.setdefault("read_timeout", STORE_REQUEST_TIMEOUT)
        options["config_kwargs"] = config
    return options


prefer_plain_gcsfs_on_emulators()


class Storage:
    """A root folder on some filesystem, addressed by relative paths."""

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        self.root_uri = root.rstrip("/")
        self.storage_options = storage_options or {}
        self._fs: fsspec.AbstractFileSystem | None = None
        self._root_path = ""
        self._made_dirs: set[str] = set()
        self._temporary = TemporaryNames()

    def __getstate__(self) -> dict[str, Any]:
        return {"root_uri": self.root_uri, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root_uri"], state["storage_options"])  # type: ignore[misc]

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            options = _prepare(self.root_uri, self.storage_options)
            self._fs, self._root_path = fsspec.core.url_to_fs(self.root_uri, **options)
        return self._fs

    @property
    def protocol(self) -> str:
        protocol = self.fs.protocol
        return protocol[0] if isinstance(protocol, (tuple, list)) else protocol

    def path(self, relpath: str) -> str:
        """The filesystem path of ``relpath`` (no protocol)."""
        _ = self.fs
        return posixpath.join(self._root_path, relpath) if relpath else self._root_path

    def uri(self, relpath: str) -> str:
        """A full URI (with protocol) for the table and the manifest."""
        path = self.path(relpath)
        if self.is_local:
            return path
        return f"{self.protocol}://{path.lstrip('/')}"

    def relative(self, uri: str) -> str:
        """The path of ``uri`` relative to the root (a URI from :meth:`uri`, or a relative path)."""
        prefix = self.uri("")
        if uri.startswith(prefix):
            return uri[len(prefix):].lstrip("/")
        if "://" in uri or uri.startswith("/"):
            raise ValueError(f"{uri!r} is not under the output root {prefix!r}")
        return uri

    def exists(self, relpath: str) -> bool:
        if self.is_local:
            return os.path.exists(self.path(relpath))
        return self.fs.exists(self.path(relpath))

    def size(self, relpath: str) -> int:
        return int(self.fs.size(self.path(relpath)))

    def read_bytes(self, relpath: str) -> bytes:
        if self.is_local:
            with open(self.path(relpath), "rb") as handle:
                return handle.read()
        return self.fs.cat_file(self.path(relpath))

    def read_json(self, relpath: str) -> Any | None:
        """The parsed JSON at ``relpath``, or None when there is none."""
        try:
            return json.loads(self.read_bytes(relpath))
        except FileNotFoundError:
            return None

    def write_bytes(self, relpath: str, data: bytes, content_type: str | None = None) -> None:
        """Write ``data`` atomically; on GCS and S3 the object is served as ``content_type``."""
        final = self.path(relpath)
        self._ensure_parent(final)
        if self.protocol in RENAMING_PROTOCOLS:
            temporary = self._temporary.beside(final)
            with self._removed_on_failure(temporary):
                if self.is_local:  # plain file calls: fsspec's per-call overhead is most of a small write
                    write_new_local_file(temporary, data)
                else:
                    self.fs.pipe_file(temporary, data)
                self._rename(temporary, final)
        else:
            self.fs.pipe_file(final, data, **self._typed(content_type))

    def write_json(self, relpath: str, payload: Any) -> None:
        self.write_bytes(relpath, json.dumps(payload, indent=1, default=str).encode("utf-8"))

    def create_only(self, relpath: str, data: bytes) -> bool:
        """Write ``data`` at ``relpath`` only if nothing is there: True when this call created
        it, False when it already existed. Atomic on every store we support: a hard link
        of a fully written temporary file on local disk (``O_EXCL`` semantics), a
        precondition on GCS (``ifGenerationMatch=0``) and S3 (``If-None-Match: *``). Other
        stores raise :class:`ConditionalWriteUnsupported`."""
        final = self.path(relpath)
        self._ensure_parent(final)
        if self.is_local:
            return _link_into_place(final, self._temporary.beside(final), data)
        if self.protocol == "memory":
            with _MEMORY_CREATE_LOCK:  # the memory filesystem lives in this process only
                if self.fs.exists(final):
                    return False
                self.fs.pipe_file(final, data)
                return True
        if self.protocol not in CONDITIONAL_CREATE_PROTOCOLS:
            raise ConditionalWriteUnsupported(
                f"{self.protocol}:// has no create-only write; the ledger cannot guarantee one payment per output there"
            )
        try:
            self.fs.pipe_file(final, data, mode="create")
        except FileExistsError:
            return False
        return True

    def modified_before(self, relpath: str, cutoff: float) -> bool:
        """Whether the object at ``relpath`` was last written before ``cutoff`` (epoch seconds)."""
        info = self.fs.info(self.path(relpath))
        for name in ("mtime", "LastModified", "updated", "created"):
            value = info.get(name)
            if value is None:
                continue
            if hasattr(value, "timestamp"):
                return float(value.timestamp()) < cutoff
            if isinstance(value, str):
                from datetime import datetime

                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() < cutoff
            return float(value) < cutoff
        return False

    def put_file(self, local_path: str, relpath: str, content_type: str | None = None) -> None:
        """Upload a local file atomically, streaming it (never whole in memory); on GCS and
        S3 the object is served as ``content_type``."""
        final = self.path(relpath)
        self._ensure_parent(final)
        if self.protocol in RENAMING_PROTOCOLS:
            temporary = self._temporary.beside(final)
            with self._removed_on_failure(temporary):
                self._stream_file(local_path, temporary)
                self._rename(temporary, final)
        else:
            self.fs.put_file(local_path, final, **UPLOAD_OPTIONS.get(self.protocol, {}), **self._typed(content_type))

    def _typed(self, content_type: str | None) -> dict[str, str]:
        """The upload option that sets an object's Content-Type (gcsfs and s3fs name it
        differently; without it both store ``application/octet-stream``)."""
        option = CONTENT_TYPE_OPTION.get(self.protocol)
        return {option: content_type} if option is not None and content_type is not None else {}

    @contextlib.contextmanager
    def _removed_on_failure(self, temporary: str) -> Iterator[None]:
        """Remove ``temporary`` when the write fails (a full disk must not leave debris)."""
        try:
            yield
        except BaseException:
            try:
                self.fs.rm(temporary)
            except (OSError, FileNotFoundError):
                pass
            raise

    def _stream_file(self, local_path: str, target: str) -> None:
        with open(local_path, "rb") as source, (open(target, "wb") if self.is_local else self.fs.open(target, "wb")) as sink:
            while chunk := source.read(CHUNK):
                sink.write(chunk)

    def _rename(self, temporary: str, final: str) -> None:
        """Replace ``final`` by ``temporary`` in one step (readers see the old or the new file)."""
        if self.is_local:
            os.replace(temporary, final)
        else:
            self.fs.mv(temporary, final)

    @property
    def is_local(self) -> bool:
        return self.protocol in ("file", "local")

    def delete(self, relpath: str) -> None:
        try:
            self.fs.rm(self.path(relpath))
        except FileNotFoundError:
            pass

    def remove_empty_dir(self, reldir: str) -> None:
        """Remove the folder ``reldir`` if it is empty (object stores have no folders to remove)."""
        if self.protocol in RENAMING_PROTOCOLS:
            with contextlib.suppress(OSError, NotImplementedError):
                self.fs.rmdir(self.path(reldir))

    def move(self, source: str, target: str) -> None:
        """Move ``source`` over ``target``; readers of ``target`` see the old object or the new
        one (a rename on local disk, a server-side copy on object stores)."""
        final = self.path(target)
        self._ensure_parent(final)
        if self.is_local:
            os.replace(self.path(source), final)
        else:
            self.fs.mv(self.path(source), final)

    def list(self, reldir: str) -> Iterator[str]:
        """Relative paths of the files directly in ``reldir`` (none when it does not exist)."""
        base = self.path(reldir)
        if self.is_local:  # one getdents pass; fsspec stats every entry it lists
            try:
                names = os.listdir(base)
            except FileNotFoundError:
                return
            except NotADirectoryError:
                pass  # a file: fsspec's listing below names the file itself
            else:
                folder = posixpath.normpath(reldir).strip("/")
                yield from (f"{folder}/{name}" if folder not in ("", ".") else name for name in names)
                return
        self.fs.invalidate_cache(base)  # a cached listing would hide other workers' writes
        try:
            entries = self.fs.ls(base, detail=False)
        except FileNotFoundError:
            return
        prefix = "/" + self.path("").lstrip("/")
        head = posixpath.normpath(prefix).rstrip("/") + "/"
        for entry in entries:
            entry = entry.lstrip("/") if self.protocol not in ("file", "local") else entry
            full = "/" + entry.lstrip("/")
            if full.startswith(head) and posixpath.normpath(full) == full:  # a slice: relpath costs ~20 us a name
                yield full[len(head):]
            else:
                yield posixpath.relpath(full, prefix)

    def _ensure_parent(self, path: str) -> None:
        if not self.is_local:
            return
        parent = posixpath.dirname(path)
        if parent not in self._made_dirs:  # one mkdir per folder, not per write
            try:
                os.mkdir(parent)
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(parent, exist_ok=True)
            if len(self._made_dirs) >= MADE_DIRS_REMEMBERED:  # one folder per ledger key: bounded
                self._made_dirs.clear()
            self._made_dirs.add(parent)


CONDITIONAL_CREATE_PROTOCOLS = frozenset({"gs", "gcs", "s3", "s3a"})
_MEMORY_CREATE_LOCK = threading.Lock()


class ConditionalWriteUnsupported(OSError):
    """The store cannot write an object only if it is absent."""


def _link_into_place(final: str, temporary: str, data: bytes) -> bool:
    # Write the whole content under a temporary name, then hard-link it to the final
    # name: link() fails when the name exists, so a reader never sees a partial file
    # and exactly one of several racing writers wins.
    try:
        write_new_local_file(temporary, data)
        os.link(temporary, final)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return True


def write_new_local_file(path: str, data: bytes) -> None:
    """Create the local file ``path`` (which must not exist) holding ``data``, in three
    system calls: ``open()`` adds an fstat, an ioctl and lseeks, and each system call is a
    GIL hand-off among the window's threads."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


class TemporaryNames:
    """Names beside a final path that no other write of any process uses: a random tag
    drawn once (again in a forked child) and a counter, instead of a uuid4 per write
    (each one a getrandom call)."""

    def __init__(self) -> None:
        self._pid = -1

    def beside(self, final: str) -> str:
        pid = os.getpid()
        if self._pid != pid:  # set last: another thread sees a whole tag and counter or none
            self._tag, self._counter = f"{pid:x}{uuid.uuid4().hex[:12]}", itertools.count()
            self._pid = pid
        return f"{final}.tmp-{self._tag}-{next(self._counter):x}"


def open_input(uri: str, mode: str = "rb", storage_options: dict[str, Any] | None = None) -> Any:
    """Open an input file on any filesystem fsspec knows."""
    return fsspec.open(uri, mode, **_prepare(uri, storage_options)).open()


INPUT_SUFFIXES = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".parquet", ".pq")


def expand_inputs(pattern: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The input files ``pattern`` names, as full URIs, sorted: a file, a glob, or a folder
    (its JSONL and Parquet files), on any filesystem fsspec knows. A store that cannot be
    reached raises (``StoreUnreachable``, or the back end's error) rather than matching nothing."""
    fs, path = fsspec.core.url_to_fs(pattern, **_prepare(pattern, storage_options))
    check_reachable(pattern, storage_options)
    if any(c in path for c in "*?["):
        matches = [m for m in fs.glob(path) if fs.isfile(m)]
    else:
        try:  # info() raises what isdir()/isfile() would swallow (a connection refused...)
            kind = fs.info(path).get("type")
        except FileNotFoundError:
            kind = None
        if kind == "directory":
            matches = [m for m in fs.find(path) if m.lower().endswith(INPUT_SUFFIXES)]
        else:
            matches = [path] if kind == "file" else []
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    if protocol in ("file", "local"):
        return sorted(matches)
    return sorted(f"{protocol}://{m.lstrip('/')}" for m in matches)


class StoreUnreachable(OSError):
    """The object store's endpoint does not accept connections."""


DEFAULT_ENDPOINTS = {"gs": "https://storage.googleapis.com", "gcs": "https://storage.googleapis.com",
                     "s3": "https://s3.amazonaws.com", "s3a": "https://s3.amazonaws.com"}
PROBE_TIMEOUT = 10.0
"""Seconds a TCP connect to an object store's endpoint may take before it counts as unreachable."""


def check_reachable(uri: str, storage_options: dict[str, Any] | None = None) -> None:
    """One TCP connect to the endpoint serving ``uri`` (gs://, s3://), so an unreachable store
    fails at once instead of after the client's minutes of retries; ``StoreUnreachable``
    names the endpoint. Skipped behind an HTTP(S) proxy, where only the proxy is reachable."""
    import socket
    from urllib.parse import urlsplit

    protocol = uri.split("://", 1)[0] if "://" in uri else "file"
    if protocol not in DEFAULT_ENDPOINTS or any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return
    options = storage_options or {}
    endpoint = options.get("endpoint_url") or (options.get("client_kwargs") or {}).get("endpoint_url")
    if not endpoint and protocol in ("gs", "gcs") and os.environ.get("STORAGE_EMULATOR_HOST"):
        endpoint = os.environ["STORAGE_EMULATOR_HOST"]
    if not endpoint and protocol.startswith("s3"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    endpoint = endpoint or DEFAULT_ENDPOINTS[protocol]
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=PROBE_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StoreUnreachable(f"cannot reach {parts.scheme}://{parts.hostname}:{port} ({reason})") from None


OUTPUT_SUBDIRS = frozenset({"_ledger", "_runs", "results", "media", "gallery"})
"""What an output root holds; none of it is ever read back as prompts."""
OUTPUT_MARKERS = ("_ledger", "_runs")
"""A folder holding one of these is an output root."""


def outside_output_roots(
    files: list[str], output_root: str, storage_options: dict[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """(inputs to read, inputs left out): files under ``output_root`` or under the
    ``_ledger/``, ``_runs/``, ``results/``, ``media/`` or ``gallery/`` folder of any output
    root are left out, so a run never reads its own (or another run's) outputs as prompts."""
    own = _comparable(output_root, storage_options)
    fs, _ = fsspec.core.url_to_fs(output_root, **_prepare(output_root, storage_options))
    is_root: dict[str, bool] = {}

    def output_root_at(folder: str) -> bool:
        if folder not in is_root:
            is_root[folder] = any(fs.exists(posixpath.join(folder, marker)) for marker in OUTPUT_MARKERS)
        return is_root[folder]

    kept, left_out = [], []
    for uri in files:
        path = _comparable(uri, storage_options)
        parts = path.split("/")
        inside = path == own or path.startswith(own.rstrip("/") + "/") or any(
            part in OUTPUT_SUBDIRS and (part in OUTPUT_MARKERS or output_root_at("/".join(parts[:i])))
            for i, part in enumerate(parts[:-1])
        )
        (left_out if inside else kept).append(uri)
    return kept, left_out


def _comparable(uri: str, storage_options: dict[str, Any] | None) -> str:
    """A path comparable across spellings of the same location (absolute, no protocol)."""
    if "://" not in uri or uri.startswith("file://"):
        return os.path.abspath(uri.removeprefix("file://"))
    _, path = fsspec.core.url_to_fs(uri, **_prepare(uri, storage_options))
    return path.lstrip("/")

