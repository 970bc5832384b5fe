"""Export a finished output root as a training dataset, streaming.

Two layouts, both read from ``<root>/results/*.parquet`` and ``<root>/media/``:

- **WebDataset** (:func:`export_webdataset`): ``DEST/shard-000000.tar``, ... Each sample
  is ``<key>.json`` (the row's metadata, see :func:`sample_metadata`) plus its media,
  ``<key>.<ext>`` for the first output and ``<key>.<i>.<ext>`` for output ``i`` >= 1
  (a request with ``n`` > 1). Media bytes are copied into the tar in chunks, so neither
  a shard nor a large file is ever held in memory; each copy is checked against the
  table's sha256.
- **Hugging Face Parquet** (:func:`export_hf`): ``DEST/data/train-00000-of-0000N.parquet``
  plus ``DEST/README.md`` whose YAML header declares the features, so
  ``datasets.load_dataset(DEST)`` gives typed ``image`` / ``audio`` / ``video`` columns
  (structs ``{bytes, path}``, decoded by the ``Image`` / ``Audio`` / ``Video`` features).
  One dataset row per media object (``media_index`` says which output of its row); row
  groups are written batch by batch, so memory holds one row group, not the dataset.

Only ``completed`` rows by default. Sample keys are the row ids, made WebDataset-safe
(no dots, see :func:`sample_key`); when the results folder holds several tables (append
mode) each key starts with its table's run id, so keys stay unique across runs.
Shards are published atomically (a rename on local disk, an upload that only appears
when complete on object stores); shards of an earlier, larger export are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import posixpath
import re
import tarfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from .storage import CHUNK, RENAMING_PROTOCOLS, UPLOAD_CHUNK, Storage, open_input

RESULTS_DIR = "results"
FORMATS = ("webdataset", "hf")
ROW_STATUSES = ("completed", "failed", "invalid")
DEFAULT_STATUSES = ("completed",)
DEFAULT_SHARD_SIZE = 1000
BATCH_ROWS = 256
"""Rows read from the results table at a time (media bytes are not in the table)."""
ROW_GROUP_ROWS = 100
ROW_GROUP_BYTES = 32 << 20
"""A Hugging Face row group ends at this many rows or media bytes, whichever comes first."""
MAX_REQUEST_STRING = 2048
"""Longer strings in a request (inline input media as base64...) are left out of the metadata."""
TAR_BLOCK = 512

SKIPPED_COLUMNS = frozenset({"raw_response_json", "attempts"})
"""Bulky columns never read: the provider's raw answer and the per-attempt log."""
METADATA_FIELDS = (
    "row_id", "source", "request_key", "modality", "prompt", "config_name", "provider", "model", "status",
    "reused", "is_mock", "run_id", "finished_at", "cost_usd", "cost_source", "total_attempts",
    "fallback_triggered", "total_elapsed_seconds", "error_type", "error_message", "placeholder",
    "aspect_ratio", "resolution", "requested_duration_seconds", "seed", "image_size", "voice_id", "audio_format",
)
"""Row fields of a sample's metadata (those the table has: older tables lack some)."""
MEDIA_FIELDS = ("content_type", "bytes", "sha256", "duration_seconds", "width", "height")
MEDIA_KINDS = ("image", "audio", "video")
"""Hugging Face media columns, named after the kind of their content type."""


class ExportError(Exception):
    """The export cannot be made; the message names what and where."""


@dataclass
class ExportReport:
    """What an export wrote, and the rows it left out by status."""

    format: str
    destination: str
    shards: list[str] = field(default_factory=list)
    samples: int = 0
    media_files: int = 0
    media_bytes: int = 0
    excluded: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """One line for the command: what was written where, and what was left out."""
        left_out = ", ".join(f"{status}={count}" for status, count in sorted(self.excluded.items())) or "none"
        return (f"exported {self.samples} samples ({self.media_files} media files, {self.media_bytes:,} bytes) "
                f"as {self.format} into {len(self.shards)} shard(s) at {self.destination}; left out: {left_out}")


# --- reading the output root -------------------------------------------------------------


def results_tables(storage: Storage) -> list[str]:
    """The results tables of an output root (relative paths), ``table.parquet`` first."""
    tables = [path for path in storage.list(RESULTS_DIR) if path.endswith(".parquet")]
    if not tables:
        raise ExportError(f"no results table under {storage.uri(RESULTS_DIR)} (run mediagen-generate first)")
    return sorted(tables, key=lambda path: (posixpath.basename(path) != "table.parquet", path))


def sample_key(row_id: str, prefix: str | None = None) -> str:
    """A WebDataset-safe key for ``row_id``: letters, digits, ``_`` and ``-`` only (a dot would
    split the key from the extension). An id that had to change gets a hash of the original,
    so distinct ids keep distinct keys."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", row_id)[:120] or "_"
    if safe != row_id:
        safe = f"{safe}_{hashlib.sha256(row_id.encode('utf-8')).hexdigest()[:10]}"
    return f"{sample_key(prefix)}__{safe}" if prefix else safe


def _table_label(path: str) -> str:
    return posixpath.basename(path).removesuffix(".parquet").removeprefix("part-")


def iter_selected(storage: Storage, statuses: Iterable[str], excluded: Counter,
                  columns: Iterable[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(sample key, record)`` for every row whose status is in ``statuses``, table by table and
    a batch of rows at a time; rows left out are counted by status in ``excluded``."""
    import pyarrow.parquet as pq

    wanted = set(statuses)
    tables = results_tables(storage)
    for table in tables:
        prefix = _table_label(table) if len(tables) > 1 else None
        with storage.fs.open(storage.path(table), "rb") as handle:
            parquet = pq.ParquetFile(handle)
            names = parquet.schema_arrow.names
            selected = [c for c in names if c not in SKIPPED_COLUMNS and (columns is None or c in columns or c in ("row_id", "status"))]
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=selected):
                for record in batch.to_pylist():
                    if record["status"] not in wanted:
                        excluded[record["status"]] += 1
                        continue
                    yield sample_key(record["row_id"], prefix), record


def media_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The row's media objects (from ``media``, or ``media_uris`` for tables written before it)."""
    if record.get("media"):
        return list(record["media"])
    return [{"uri": uri, "content_type": record.get("content_type"), "bytes": None, "sha256": None}
            for uri in record.get("media_uris") or []]


def _media_location(storage: Storage, uri: str) -> tuple[str | None, str]:
    """``(path relative to the root, uri)`` for media of this root (a relative uri, one under
    the root, or one under the root's earlier place), else ``(None, uri)``: another location,
    opened as is."""
    from schemas.results import media_relpath

    try:
        return media_relpath(uri, storage.uri("")), uri
    except ValueError:
        return None, uri


@contextlib.contextmanager
def open_media(storage: Storage, uri: str) -> Iterator[IO[bytes]]:
    """Open a media object of the table for reading."""
    relpath, absolute = _media_location(storage, uri)
    try:
        if relpath is None:
            handle = open_input(absolute, "rb", storage.storage_options)
        elif storage.is_local:
            handle = open(storage.path(relpath), "rb")
        else:
            handle = storage.fs.open(storage.path(relpath), "rb")
    except FileNotFoundError:
        raise ExportError(f"media {uri!r} of the results table is missing") from None
    with handle:
        yield handle


class _HashingReader:
    """A read-only file object that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data


def _check_copy(uri: str, expected_size: int | None, expected_sha: str | None, reader: _HashingReader) -> None:
    if expected_size is not None and reader.size != expected_size:
        raise ExportError(f"media {uri!r} has {reader.size} bytes, the results table says {expected_size}")
    if expected_sha and reader.sha256.hexdigest() != expected_sha:
        raise ExportError(f"media {uri!r} does not match its sha256 in the results table ({expected_sha})")


def _media_size(storage: Storage, media: dict[str, Any]) -> int:
    if media.get("bytes") is not None:
        return int(media["bytes"])
    relpath, absolute = _media_location(storage, media["uri"])
    return storage.size(relpath) if relpath is not None else Storage(absolute, storage.storage_options).size("")


def extension_of(content_type: str | None, uri: str) -> str:
    """The file extension for a media object: from its content type, else from its URI."""
    from providers.media.formats import EXTENSIONS

    if content_type in EXTENSIONS:
        return EXTENSIONS[content_type]
    suffix = posixpath.splitext(uri)[1].lstrip(".").lower()
    return suffix if re.fullmatch(r"[a-z0-9]{1,8}", suffix) else "bin"


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _trimmed(value: Any) -> Any:
    """``value`` with long strings replaced by a note of their length."""
    if isinstance(value, str) and len(value) > MAX_REQUEST_STRING:
        return f"<{len(value)} characters left out>"
    if isinstance(value, dict):
        return {k: _trimmed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    return value


def request_params(record: dict[str, Any]) -> dict[str, Any] | None:
    """The row's request as sent (parsed ``request_json``), long strings left out."""
    text = record.get("request_json")
    if not text:
        return None
    try:
        return _trimmed(json.loads(text))
    except ValueError:
        return None


def sample_metadata(record: dict[str, Any], files: list[str] | None = None) -> dict[str, Any]:
    """The JSON metadata of one sample: the row's fields without the raw request and response
    JSON, its request parameters, and per media object the file name in the sample, content
    type, size, sha256, duration and dimensions."""
    meta = {name: _jsonable(record.get(name)) for name in METADATA_FIELDS if name in record}
    meta["request"] = request_params(record)
    meta["media"] = [
        {**({"file": files[i]} if files else {}), "uri": m.get("uri"), **{k: m.get(k) for k in MEDIA_FIELDS}}
        for i, m in enumerate(media_of(record))
    ]
    return meta


# --- writing the destination -------------------------------------------------------------


class _AtomicUpload:
    """A file written in place of ``relpath`` that readers see only once committed: a
    temporary name renamed on local disk and memory://, a streamed upload (in parts of
    :data:`UPLOAD_CHUNK`) that only appears when complete on object stores."""

    def __init__(self, storage: Storage, relpath: str) -> None:
        self.storage = storage
        self.final = storage.path(relpath)
        renames = storage.protocol in RENAMING_PROTOCOLS
        self.temporary = f"{self.final}.tmp-{uuid.uuid4().hex}" if renames else None
        target = self.temporary or self.final
        if storage.is_local:
            os.makedirs(posixpath.dirname(target), exist_ok=True)
            self.file: Any = open(target, "wb")
        else:
            # buffered writes: an object store uploads one part of UPLOAD_CHUNK at a time
            self.file = storage.fs.open(target, "wb", block_size=UPLOAD_CHUNK)

    def commit(self) -> None:
        self.file.close()
        if self.temporary is None:
            return
        if self.storage.is_local:
            os.replace(self.temporary, self.final)
        else:
            self.storage.fs.mv(self.temporary, self.final)

    def abort(self) -> None:
        """Drop what was written: no partial object may appear under the final name."""
        if self.temporary is None and hasattr(self.file, "discard"):
            self.file.discard()  # s3fs / gcsfs: abort the multipart or resumable upload
            self.file.closed = True  # closing now would publish the partial upload
        else:
            with contextlib.suppress(OSError):
                self.file.close()
        if self.temporary is not None:
            with contextlib.suppress(OSError, FileNotFoundError):
                if self.storage.is_local:
                    os.unlink(self.temporary)
                else:
                    self.storage.fs.rm(self.temporary)


@contextlib.contextmanager
def _upload(storage: Storage, relpath: str) -> Iterator[IO[bytes]]:
    upload = _AtomicUpload(storage, relpath)
    try:
        yield upload.file
    except BaseException:
        upload.abort()
        raise
    upload.commit()


class _Sharder:
    """Decides where shards end: after ``shard_size`` samples, or before a sample that would
    take the shard over ``max_shard_bytes`` (a sample larger than that gets a shard alone)."""

    def __init__(self, shard_size: int, max_shard_bytes: int | None, overhead: int = 0) -> None:
        if shard_size < 1:
            raise ExportError(f"shard_size must be at least 1, got {shard_size!r}")
        if max_shard_bytes is not None and max_shard_bytes < 1:
            raise ExportError(f"max_shard_bytes must be at least 1, got {max_shard_bytes!r}")
        self.shard_size = shard_size
        self.max_shard_bytes = max_shard_bytes
        self.overhead = overhead  # bytes a shard costs beyond its samples (a tar's end blocks and padding)
        self.count = 0
        self.bytes = 0

    def starts_new_shard(self, size: int) -> bool:
        """Place a sample of ``size`` bytes: True when it begins a new shard."""
        new = self.count == 0 or self.count >= self.shard_size or (
            self.max_shard_bytes is not None and self.overhead + self.bytes + size > self.max_shard_bytes)
        if new:
            self.count, self.bytes = 0, 0
        self.count += 1
        self.bytes += size
        return new


def _remove_stale(storage: Storage, folder: str, pattern: str, written: set[str]) -> None:
    """Remove files of an earlier export matching ``pattern`` that this export did not write."""
    for path in storage.list(folder):
        if re.fullmatch(pattern, posixpath.basename(path)) and path not in written:
            storage.delete(path)


def _tar_member_bytes(size: int) -> int:
    """Bytes a member takes in a tar, at most: its header, a PAX header for a long name
    (header + one block), and its data padded to whole blocks."""
    return 3 * TAR_BLOCK + math.ceil(size / TAR_BLOCK) * TAR_BLOCK


def _mtime(record: dict[str, Any]) -> float:
    finished = record.get("finished_at")
    return finished.timestamp() if isinstance(finished, datetime) else 0.0


def _validated(statuses: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(statuses)
    unknown = [s for s in chosen if s not in ROW_STATUSES]
    if unknown or not chosen:
        raise ExportError(f"status: {unknown[0] if unknown else ''!r} is not a row status (choose from {', '.join(ROW_STATUSES)})")
    return chosen


def export_webdataset(output_root: str, dest: str, *, shard_size: int = DEFAULT_SHARD_SIZE,
                      max_shard_bytes: int | None = None, statuses: Iterable[str] = DEFAULT_STATUSES,
                      storage_options: dict[str, Any] | None = None,
                      dest_options: dict[str, Any] | None = None) -> ExportReport:
    """Write the rows of ``output_root`` with a status in ``statuses`` as WebDataset tar shards
    ``dest/shard-000000.tar``...; see the module doc for the layout."""
    statuses = _validated(statuses)
    source = Storage(output_root, storage_options)
    target = Storage(dest, dest_options if dest_options is not None else storage_options)
    report = ExportReport("webdataset", target.uri(""))
    sharder = _Sharder(shard_size, max_shard_bytes, overhead=tarfile.RECORDSIZE)
    with contextlib.ExitStack() as shard_stack:
        tar: tarfile.TarFile | None = None
        for key, record in iter_selected(source, statuses, report.excluded):
            media = media_of(record)
            files = [f"{key}.{'' if i == 0 else f'{i}.'}{extension_of(m.get('content_type'), m['uri'])}"
                     for i, m in enumerate(media)]
            sizes = [_media_size(source, m) for m in media]
            meta = json.dumps(sample_metadata(record, files), ensure_ascii=False, default=str).encode("utf-8")
            sample_bytes = _tar_member_bytes(len(meta)) + sum(_tar_member_bytes(s) for s in sizes)
            if sharder.starts_new_shard(sample_bytes):
                shard_stack.close()
                relpath = f"shard-{len(report.shards):06d}.tar"
                sink = shard_stack.enter_context(_upload(target, relpath))
                tar = shard_stack.enter_context(tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT))
                tar.copybufsize = CHUNK  # type: ignore[attr-defined]
                report.shards.append(relpath)
            assert tar is not None
            mtime = _mtime(record)
            tar.addfile(_tar_info(f"{key}.json", len(meta), mtime), io.BytesIO(meta))
            for name, size, item in zip(files, sizes, media):
                with open_media(source, item["uri"]) as handle:
                    reader = _HashingReader(handle)
                    try:
                        tar.addfile(_tar_info(name, size, mtime), reader)  # type: ignore[arg-type]
                    except OSError:
                        if reader.size >= size:
                            raise  # the destination failed, not the media
                        raise ExportError(f"media {item['uri']!r} has {reader.size} bytes, the results table says {size}") from None
                    _check_copy(item["uri"], size, item.get("sha256"), reader)
                report.media_files += 1
                report.media_bytes += size
            report.samples += 1
    _remove_stale(target, "", r"shard-\d{6}\.tar", set(report.shards))
    report.shards = [target.uri(path) for path in report.shards]
    return report


def _tar_info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o444
    return info


# --- Hugging Face ------------------------------------------------------------------------

HF_COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "string"), ("row_id", "string"), ("media_index", "int32"), ("modality", "string"),
    ("prompt", "string"), ("provider", "string"), ("model", "string"), ("config_name", "string"),
    ("status", "string"), ("is_mock", "bool"), ("placeholder", "bool"), ("run_id", "string"), ("finished_at", "string"),
    ("request", "string"), ("content_type", "string"), ("sha256", "string"), ("bytes", "int64"),
    ("duration_seconds", "float64"), ("width", "int32"), ("height", "int32"), ("cost_usd", "float64"),
    ("source", "string"),
)
"""Plain columns of the Hugging Face layout and their ``datasets`` dtypes (``request`` is the
request parameters as a JSON string, as they differ by provider)."""
PLAN_COLUMNS = ("row_id", "status", "media", "media_uris", "content_type")


def media_kind(content_type: str | None) -> str | None:
    """``image``, ``audio`` or ``video`` for a content type; None for anything else."""
    kind = (content_type or "").split("/", 1)[0]
    return kind if kind in MEDIA_KINDS else None


def _hf_items(key: str, record: dict[str, Any]) -> list[tuple[str, int, dict[str, Any] | None]]:
    """(dataset key, media index, media) per dataset row of one results row: one per media
    object, or one without media for a row that has none."""
    media = media_of(record)
    if not media:
        return [(key, 0, None)]
    return [(key if i == 0 else f"{key}_{i}", i, m) for i, m in enumerate(media)]


@dataclass
class _HfPlan:
    shard_rows: list[int] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    excluded: Counter = field(default_factory=Counter)


def _plan_hf(source: Storage, statuses: tuple[str, ...], sharder: _Sharder) -> _HfPlan:
    """A first pass over the light columns only: the rows per shard (so names can say
    ``-of-N``) and which media columns the dataset needs."""
    plan = _HfPlan()
    for key, record in iter_selected(source, statuses, plan.excluded, columns=PLAN_COLUMNS):
        for _, _, media in _hf_items(key, record):
            kind = media_kind(media.get("content_type")) if media else None
            if kind:
                plan.kinds.add(kind)
            if sharder.starts_new_shard(_media_size(source, media) if media else 0):
                plan.shard_rows.append(0)
            plan.shard_rows[-1] += 1
    return plan


def hf_features(kinds: Iterable[str]) -> list[tuple[str, str]]:
    """(column, ``datasets`` dtype) of the layout, media columns for ``kinds`` last."""
    return [*HF_COLUMNS, *((kind, kind) for kind in MEDIA_KINDS if kind in set(kinds))]


def _arrow_schema(features: list[tuple[str, str]]) -> Any:
    import pyarrow as pa

    media = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    types = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
    hf = {name: ({"_type": dtype.capitalize()} if dtype in MEDIA_KINDS else {"dtype": dtype, "_type": "Value"})
          for name, dtype in features}
    return pa.schema([(name, media if dtype in MEDIA_KINDS else types[dtype]) for name, dtype in features],
                     metadata={"huggingface": json.dumps({"info": {"features": hf}})})


def _hf_row(key: str, index: int, record: dict[str, Any], media: dict[str, Any] | None,
            kinds: set[str], content: bytearray | None) -> dict[str, Any]:
    media = media or {}
    row = {
        "key": key, "media_index": index,
        "request": json.dumps(params, ensure_ascii=False) if (params := request_params(record)) is not None else None,
        "finished_at": _jsonable(record.get("finished_at")),
        **{name: record.get(name) for name in ("row_id", "modality", "prompt", "provider", "model", "config_name",
                                               "status", "is_mock", "placeholder", "run_id", "cost_usd", "source")},
        **{name: media.get(name) for name in MEDIA_FIELDS},
    }
    kind = media_kind(media.get("content_type"))
    for column in kinds:
        row[column] = None
    if kind and content is not None:
        row[kind] = {"bytes": content, "path": f"{key}.{extension_of(media.get('content_type'), media['uri'])}"}
    return row


def _read_media(source: Storage, media: dict[str, Any], size: int) -> bytearray:
    """The whole media object (a Parquet cell holds it whole), read into one buffer and checked."""
    content = bytearray(size)
    view = memoryview(content)
    with open_media(source, media["uri"]) as handle:
        reader = _HashingReader(handle)
        filled = 0
        while filled < size and (chunk := reader.read(min(CHUNK, size - filled))):
            view[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
        reader.read(1)  # a longer file fails the size check
    _check_copy(media["uri"], size, media.get("sha256"), reader)
    return content  # pyarrow takes a bytearray as binary: no extra copy


def export_hf(output_root: str, dest: str, *, shard_size: int = DEFAULT_SHARD_SIZE,
              max_shard_bytes: int | None = None, statuses: Iterable[str] = DEFAULT_STATUSES,
              storage_options: dict[str, Any] | None = None,
              dest_options: dict[str, Any] | None = None) -> ExportReport:
    """Write the rows of ``output_root`` with a status in ``statuses`` as a Hugging Face dataset:
    ``dest/data/train-XXXXX-of-NNNNN.parquet`` and ``dest/README.md``; see the module doc."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    statuses = _validated(statuses)
    source = Storage(output_root, storage_options)
    target = Storage(dest, dest_options if dest_options is not None else storage_options)
    plan = _plan_hf(source, statuses, _Sharder(shard_size, max_shard_bytes))
    features = hf_features(plan.kinds)
    schema = _arrow_schema(features)
    plain = [name for name, dtype in features if dtype not in MEDIA_KINDS]
    # media are compressed already: no codec, dictionary or min/max statistics for their bytes
    compression = {**{name: "zstd" for name in plain},
                   **{f"{kind}.{leaf}": ("none" if leaf == "bytes" else "zstd") for kind in plan.kinds for leaf in ("bytes", "path")}}
    report = ExportReport("hf", target.uri(""), excluded=Counter())
    total = max(len(plan.shard_rows), 1)
    names = [f"data/train-{i:05d}-of-{total:05d}.parquet" for i in range(total)]
    rows = (item for key, record in iter_selected(source, statuses, report.excluded)
            for item in ((key, record, *entry) for entry in _hf_items(key, record)))
    for name, count in zip(names, plan.shard_rows or [0]):
        with _upload(target, name) as sink, pq.ParquetWriter(
            sink, schema, compression=compression, use_dictionary=plain, write_statistics=plain,
        ) as writer:
            batch: list[Any] = []  # one-row record batches: a media object is converted (copied) once, then dropped
            batch_bytes = 0
            for _ in range(count):
                try:
                    key, record, item_key, index, media = next(rows)
                except StopIteration:
                    raise ExportError(f"the results table under {source.uri(RESULTS_DIR)} changed during the export; "
                                      "run it again") from None
                size = _media_size(source, media) if media else 0
                content = _read_media(source, media, size) if media and media_kind(media.get("content_type")) else None
                batch.append(pa.RecordBatch.from_pylist([_hf_row(item_key, index, record, media, plan.kinds, content)], schema=schema))
                report.samples += 1
                if content is not None:
                    report.media_files += 1
                    report.media_bytes += size
                    batch_bytes += size
                del content
                if len(batch) >= ROW_GROUP_ROWS or batch_bytes >= ROW_GROUP_BYTES:
                    writer.write_table(pa.Table.from_batches(batch, schema=schema))
                    batch, batch_bytes = [], 0
            if batch or count == 0:
                writer.write_table(pa.Table.from_batches(batch, schema=schema))
        report.shards.append(name)
    if next(rows, None) is not None:
        raise ExportError(f"the results table under {source.uri(RESULTS_DIR)} changed during the export; run it again")
    target.write_bytes("README.md", dataset_card(features, report.samples, source.uri("")).encode("utf-8"))
    _remove_stale(target, "data", r"train-\d{5}-of-\d{5}\.parquet", set(report.shards))
    report.shards = [target.uri(path) for path in report.shards]
    return report


def dataset_card(features: list[tuple[str, str]], rows: int, origin: str) -> str:
    """``README.md`` of the Hugging Face layout: YAML that names the data files and declares
    the features (so ``load_dataset`` types the media columns), then a short description."""
    import yaml

    header = {
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        "dataset_info": {
            "features": [{"name": name, "dtype": dtype} for name, dtype in features],
            "splits": [{"name": "train", "num_examples": rows}],
        },
    }
    kinds = [dtype for _, dtype in features if dtype in MEDIA_KINDS]
    return (f"---\n{yaml.safe_dump(header, sort_keys=False)}---\n\n# mediagen export\n\n"
            f"{rows} rows exported by `mediagen-export hf` from `{origin}`; media columns: {', '.join(kinds) or 'none'}.\n"
            "One row per media object (`media_index` numbers the outputs of one request); `request` holds the\n"
            "request parameters as JSON. Decoding `audio` and `video` needs `torchcodec` in recent `datasets`.\n")


EXPORTERS: dict[str, Callable[..., ExportReport]] = {"webdataset": export_webdataset, "hf": export_hf}


def export(fmt: str, output_root: str, dest: str, **options: Any) -> ExportReport:
    """Export ``output_root`` to ``dest`` in the format ``fmt`` (``webdataset`` or ``hf``)."""
    if fmt not in EXPORTERS:
        raise ExportError(f"format: unknown format {fmt!r} (choose from {', '.join(EXPORTERS)})")
    return EXPORTERS[fmt](output_root, dest, **options)
