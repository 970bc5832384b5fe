"""ReadPrompts: prompt rows (JSONL or Parquet, any filesystem) -> validated requests.

A row that cannot become a request is not dropped: it becomes a ``PromptRow`` with
``error`` set, naming the file, line or row, field and value, and ends up in the
results table as ``invalid``. Bad input costs only itself: an undecodable byte, a NUL,
an over-long line, nesting deeper than :data:`MAX_DEPTH`, a corrupt Parquet row group
or file each make ``invalid`` rows naming the file and line (row, row group) and the
reason; everything else in the run goes on. A UTF-8 byte-order mark is accepted.

Row ids must be unique across the run's inputs: the files are read as one ordered pass
(:func:`read_run`) and :class:`RowIds` renames repeats ``<id>~<n>`` in input order (or
refuses them, ``strict``), holding a 64-bit digest per id, never the rows.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
from array import array
from dataclasses import replace
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

import apache_beam as beam
import pydantic
from apache_beam.metrics import Metrics

from providers.core.keys import request_key
from schemas import JobConfig
from schemas.modalities import MODALITIES

from .prompt_row import PromptRow
from .row_media import MediaPolicy, check_row_media
from .storage import open_input

log = logging.getLogger(__name__)

REQUEST_TYPES: dict[str, type] = {name: spec.request_type for name, spec in MODALITIES.items()}
"""A view of the one modality table (``schemas.modalities``)."""
ID_COLUMN = "id"
CONFIG_COLUMN = "config"
MAX_VALUE_IN_MESSAGE = 120
MAX_LINE_BYTES = 16 * 1024 * 1024
"""A JSONL line longer than this is refused (inline media included)."""
MAX_DEPTH = 32
"""Rows nested deeper than this are refused (requests are a few levels deep)."""
BOM = b"\xef\xbb\xbf"
DUPLICATE_SUFFIX = "~"


def input_format_of(uri: str, declared: str | None) -> str:
    """'jsonl' or 'parquet', from ``declared`` or the file extension."""
    if declared:
        return declared
    name = uri.lower()
    for suffix in (".gz", ".bz2", ".zst", ".xz"):
        name = name.removesuffix(suffix)
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {uri!r} from its extension; pass --input_format jsonl|parquet")


def read_rows(uri: str, job: JobConfig, declared_format: str | None = None, storage_options: dict | None = None) -> Iterator[PromptRow]:
    """Every row of one input file, parsed and validated; unreadable parts become invalid rows."""
    fmt = input_format_of(uri, declared_format)
    stem = _stem(uri)
    policy = MediaPolicy.from_job(job)
    if fmt == "parquet":
        for index, record, problem in _parquet_records(uri, storage_options):
            source = row_source(uri, index, fmt)
            fallback_id = f"{stem}-{index:06d}"
            if problem is not None:
                yield _invalid(fallback_id, source, job, None, f"{source}: {problem}", position=(uri, index))
            else:
                yield _positioned(parse_record(record, source, fallback_id, job, policy), uri, index)
        return
    for line_no, line, problem in _jsonl_lines(uri, storage_options):
        source = row_source(uri, line_no, fmt)
        fallback_id = f"{stem}-{line_no:06d}"
        if problem is None:
            record, problem = _decode_json(line)
        if problem is not None:
            yield _invalid(fallback_id, source, job, None, f"{source}: {problem}", position=(uri, line_no))
            continue
        yield _positioned(parse_record(record, source, fallback_id, job, policy), uri, line_no)


def row_source(uri: str, index: int, fmt: str) -> str:
    """How messages name a row: ``file:line`` (JSONL), ``file row N`` (Parquet), the file
    alone for index 0 (the file as a whole)."""
    if not index:
        return uri
    return f"{uri} row {index}" if fmt == "parquet" else f"{uri}:{index}"


def _positioned(row: PromptRow, uri: str, index: int) -> PromptRow:
    return replace(row, position=(uri, index))


def _jsonl_lines(uri: str, storage_options: dict | None) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, problem) of every non-blank line; problem set when the line is unusable.

    A file that cannot be opened or breaks off (corrupt gzip...) yields one last entry with
    the problem and line number 0 for "the file".
    """
    line_no = 0
    try:
        with open_input(uri, "rb", {**(storage_options or {}), "compression": "infer"}) as opened:
            handle = _with_bounded_readline(opened)
            while True:
                raw = handle.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                line_no += 1
                if line_no == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM):]
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    _skip_rest_of_line(handle)
                    yield line_no, "", f"line longer than {MAX_LINE_BYTES} bytes"
                    continue
                text, problem = _decode_line(raw)
                if problem is not None or text.strip():
                    yield line_no, text, problem
    except (OSError, EOFError, ValueError) as exc:
        after = f" after line {line_no}" if line_no else ""
        yield 0, "", f"cannot read the file{after}: {type(exc).__name__}: {_clip(str(exc))}"


def _with_bounded_readline(handle: Any) -> BinaryIO:
    """``handle`` with a ``readline(limit)``: object-store files (fsspec's buffered files)
    take no limit, so they are read through an ``io.BufferedReader``."""
    from fsspec.spec import AbstractBufferedFile

    return io.BufferedReader(handle) if isinstance(handle, AbstractBufferedFile) else handle


def _skip_rest_of_line(handle: BinaryIO) -> None:
    while True:
        chunk = handle.readline(1 << 20)
        if not chunk or chunk.endswith(b"\n"):
            return


def _decode_line(raw: bytes) -> tuple[str, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)"
    if "\x00" in text:
        return "", f"contains a NUL character (column {text.index(chr(0)) + 1})"
    return text, None


def _decode_json(line: str) -> tuple[Any, str | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, f"nested deeper than {MAX_DEPTH} levels"
    if depth_of(record) > MAX_DEPTH:
        return None, f"nested deeper than {MAX_DEPTH} levels"
    return record, None


def depth_of(value: Any) -> int:
    """Nesting depth of lists and dicts (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _parquet_records(uri: str, storage_options: dict | None) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(row number, record, problem) of every row; a row group that cannot be read yields one
    invalid entry per row it holds, a file that cannot be read one entry with row number 0."""
    import pyarrow.parquet as pq

    index = 0
    try:
        with open_input(uri, "rb", storage_options) as handle:
            parquet = pq.ParquetFile(handle)
            for group in range(parquet.num_row_groups):
                rows = parquet.metadata.row_group(group).num_rows
                start = index
                try:
                    for batch in parquet.iter_batches(batch_size=1024, row_groups=[group]):
                        for record in batch.to_pylist():
                            index += 1
                            problem = f"nested deeper than {MAX_DEPTH} levels" if depth_of(record) > MAX_DEPTH else None
                            yield index, (record if problem is None else None), problem
                except Exception as exc:  # pyarrow raises many types on corrupt pages
                    reason = f"row group {group} cannot be read: {type(exc).__name__}: {_clip(str(exc))}"
                    for _ in range(max(rows - (index - start), 1)):
                        index += 1
                        yield index, None, reason
    except Exception as exc:  # not Parquet at all, truncated footer, unreadable file
        yield 0, None, f"not a readable Parquet file: {type(exc).__name__}: {_clip(str(exc))}"


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _stem(uri: str) -> str:
    name = posixpath.basename(uri.rstrip("/"))
    return name.split(".", 1)[0] or "row"


def parse_record(
    record: Any, source: str, fallback_id: str, job: JobConfig, policy: MediaPolicy | None = None
) -> PromptRow:
    """Validate one record against the job's modality and its media against the job's
    input policy (``inputs``); never raises."""
    modality = job.modality
    if not isinstance(record, dict):
        return _invalid(fallback_id, source, job, None, f"{source}: a row must be a JSON object, got {type(record).__name__}")
    fields = {k: v for k, v in record.items() if v is not None}
    row_id = str(fields.pop(ID_COLUMN, fallback_id))
    config_name = fields.pop(CONFIG_COLUMN, None)
    prompt = _prompt_of(modality, fields)
    try:
        entry = job.entry(str(config_name) if config_name is not None else None)
    except KeyError as exc:
        return _invalid(row_id, source, job, config_name, f"{source}: {CONFIG_COLUMN}: {exc.args[0]}", prompt)
    try:
        request = REQUEST_TYPES[modality].model_validate(fields)
    except pydantic.ValidationError as exc:
        return _invalid(row_id, source, job, config_name, f"{source}: {describe_validation_error(exc)}", prompt)
    media_problems = check_row_media(request, policy or MediaPolicy.from_job(job))
    if media_problems:
        return _invalid(row_id, source, job, config_name, f"{source}: {'; '.join(media_problems)}", prompt)
    config = entry.build(modality)
    return PromptRow(
        row_id=row_id,
        source=source,
        modality=modality,
        config_name=config_name or job.config_names[0],
        prompt=prompt,
        request_json=request.model_dump_json(),
        key=request_key(modality, request, config),
    )


def _prompt_of(modality: str, fields: dict[str, Any]) -> str | None:
    value = fields.get(MODALITIES[modality].prompt_field)
    return value if isinstance(value, str) else None


def _invalid(row_id: str, source: str, job: JobConfig, config_name: Any, error: str, prompt: str | None = None,
             position: tuple[str, int] = ("", 0)) -> PromptRow:
    return PromptRow(
        position=position,
        row_id=row_id,
        source=source,
        modality=job.modality,
        config_name=str(config_name) if config_name is not None else None,
        prompt=prompt,
        error=error,
    )


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    """'field: message (got value)' for each problem, joined."""
    parts = []
    for problem in exc.errors(include_url=False):
        field = ".".join(str(p) for p in problem["loc"]) or "row"
        message = problem["msg"]
        if problem["type"] == "missing":
            parts.append(f"{field}: required field is missing")
            continue
        value = problem.get("input")
        shown = repr(value)
        if len(shown) > MAX_VALUE_IN_MESSAGE:
            shown = shown[:MAX_VALUE_IN_MESSAGE] + "..."
        parts.append(f"{field}: {message} (got {shown})")
    return "; ".join(parts)


DUPLICATE_COUNTER = "duplicate_row_ids"
MAX_EXAMPLES = 5
"""Repeats warned about one by one; the rest are counted in one closing line."""
_FILE_BITS, _INDEX_BITS = 24, 40
"""A row's position packed in 64 bits: its file's number in the pass, its line or row number."""


class DigestTable:
    """64-bit digests -> 64-bit values, open addressing over two ``array('Q')`` (16 bytes a
    slot, at most 3/4 full: 21-43 bytes per id, about 40 MB per million ids, instead of
    ~100 bytes per entry of a ``dict`` of Python ints). ``capacity``: a power of two."""

    def __init__(self, capacity: int = 1024) -> None:
        self._keys = array("Q", bytes(8 * capacity))
        self._values = array("Q", bytes(8 * capacity))
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def setdefault(self, digest: int, value: int) -> int | None:
        """The value stored for ``digest``; None when it was new (``value`` is stored)."""
        keys, mask = self._keys, len(self._keys) - 1
        slot = digest & mask
        while (found := keys[slot]) != 0:
            if found == digest:
                return self._values[slot]
            slot = (slot + 1) & mask
        keys[slot], self._values[slot] = digest, value
        self._count += 1
        if 4 * self._count > 3 * len(keys):
            self._grow()
        return None

    def _grow(self) -> None:
        old = zip(self._keys, self._values)
        self._keys = array("Q", bytes(16 * len(self._keys)))
        self._values = array("Q", bytes(8 * len(self._keys)))
        self._count = 0
        for digest, value in old:
            if digest:
                self.setdefault(digest, value)


def id_digest(row_id: str) -> int:
    """A row id as a non-zero 64-bit blake2b digest (0 marks an empty slot of the table).

    Two different ids share a digest with probability about n^2 / 2^65 among n ids
    (3e-8 at 1M ids, 3e-4 at 100M); the later one would then be treated as a repeat:
    renamed ``<id>~2`` (or invalid under ``strict``), never dropped or merged."""
    digest = int.from_bytes(hashlib.blake2b(row_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
    return digest or 1


class RowIds:
    """Makes row ids unique in one ordered pass over a run's rows, holding only a digest of
    each id seen and the position of its first row (:class:`DigestTable`), never the rows.

    The first row in input order keeps its id; each later one is renamed ``<id>~2``,
    ``<id>~3``... (``duplicate_of`` says the original; a name some row already uses is
    skipped), or, with ``strict``, becomes ``invalid``. Repeats are counted in the
    ``mediagen/duplicate_row_ids`` counter and warned about (the first
    :data:`MAX_EXAMPLES` one by one, the rest in one line by :meth:`close`).
    ``source_of(file, index)`` names the first row of a repeated id in messages."""

    def __init__(self, strict: bool = False, source_of: Callable[[str, int], str] | None = None) -> None:
        self.strict = strict
        self.source_of = source_of or (lambda uri, index: row_source(uri, index, "jsonl"))
        self.repeats = 0
        self._seen = DigestTable()
        self._files: dict[str, int] = {}
        self._uris: list[str] = []
        self._renamed: dict[str, int] = {}  # ids that repeated -> the last ~n given (repeats are rare)
        self._counter = Metrics.counter("mediagen", DUPLICATE_COUNTER)

    def resolve(self, row: PromptRow) -> PromptRow:
        """``row`` as the pass emits it: unchanged when its id is new, else renamed or refused."""
        code = self._code(row.position)
        first = self._seen.setdefault(id_digest(row.row_id), code)
        if first is None:
            return row
        self.repeats += 1
        self._counter.inc()
        first_source = self.source_of(*self._position(first))
        if self.strict:
            resolved = replace(row, duplicate_of=row.row_id, error=(
                f"{row.source}: {ID_COLUMN}: row id {row.row_id!r} is already used by {first_source} (ids must be unique)"))
        else:
            number = self._renamed.get(row.row_id, 1)
            while True:
                number += 1
                new_id = f"{row.row_id}{DUPLICATE_SUFFIX}{number}"
                if self._seen.setdefault(id_digest(new_id), code) is None:
                    break
            self._renamed[row.row_id] = number
            resolved = replace(row, row_id=new_id, duplicate_of=row.row_id)
        if self.repeats <= MAX_EXAMPLES:
            log.warning("row id %r at %s was already used by %s%s", row.row_id, row.source, first_source,
                        "; the repeat is invalid (strict ids)" if self.strict else f"; renamed {resolved.row_id}")
        return resolved

    def close(self) -> None:
        """The closing warning for the repeats not warned about one by one."""
        if self.repeats > MAX_EXAMPLES:
            log.warning("%d rows repeated an earlier row's id in all (%d more than shown above)%s", self.repeats,
                        self.repeats - MAX_EXAMPLES, "; repeats are invalid (strict ids)" if self.strict
                        else f"; repeats renamed <id>{DUPLICATE_SUFFIX}<n>")

    def _code(self, position: tuple[str, int]) -> int:
        uri, index = position
        number = self._files.get(uri)
        if number is None:
            number = self._files[uri] = len(self._uris)
            self._uris.append(uri)
        return (min(number, (1 << _FILE_BITS) - 1) << _INDEX_BITS) | min(max(index, 0), (1 << _INDEX_BITS) - 1)

    def _position(self, code: int) -> tuple[str, int]:
        return self._uris[min(code >> _INDEX_BITS, len(self._uris) - 1)], code & ((1 << _INDEX_BITS) - 1)


def read_run(files: Sequence[str], job: JobConfig, declared_format: str | None = None,
             storage_options: dict | None = None, strict_ids: bool = False,
             limit: int | None = None) -> Iterator[PromptRow]:
    """Every row of the run's input files as ONE ordered pass (files in the given order),
    ids made unique by :class:`RowIds`; with ``limit``, up to and including the
    ``limit``-th valid row. Rows stream: nothing but the ids' digests is held."""
    formats = {uri: input_format_of(uri, declared_format) for uri in files}
    ids = RowIds(strict_ids, lambda uri, index: row_source(uri, index, formats[uri]))
    valid = 0
    try:
        for uri in files:
            for row in read_rows(uri, job, declared_format, storage_options):
                row = ids.resolve(row)
                yield row
                valid += row.is_valid
                if limit is not None and valid >= limit:
                    return
    finally:
        ids.close()


def duplicate_id_count(result: Any) -> int:
    """How many rows repeated an earlier row's id, from a finished pipeline's metrics."""
    from apache_beam.metrics.metric import MetricsFilter

    counters = result.metrics().query(MetricsFilter().with_name(DUPLICATE_COUNTER))["counters"]
    return sum(c.committed or c.attempted or 0 for c in counters)


def duplicate_report(rows: Iterable[PromptRow]) -> tuple[int, list[str]]:
    """(rows that repeated an id, up to five examples ``'id' at source``) of resolved rows."""
    repeats = [r for r in rows if r.duplicate_of is not None]
    return len(repeats), [f"{r.duplicate_of!r} at {r.source}" for r in repeats[:MAX_EXAMPLES]]


class ReadPrompts(beam.PTransform):
    """Files -> ``PromptRow`` elements (valid and invalid alike), row ids made unique in one
    ordered pass over every file (:func:`read_run`; ``strict_ids`` refuses repeats instead
    of renaming them; ``limit`` stops after that many valid rows). No shuffle: the rows
    stream to the next step as they are read (``pipelines.graph`` adds a Reshuffle where a
    runner has several workers to spread them over)."""

    def __init__(self, files: list[str], job: JobConfig, input_format: str | None = None,
                 storage_options: dict | None = None, strict_ids: bool = False, limit: int | None = None):
        super().__init__()
        self.files = files
        self.job = job
        self.input_format = input_format
        self.storage_options = storage_options
        self.strict_ids = strict_ids
        self.limit = limit

    def expand(self, pbegin: Any) -> Any:
        return (
            pbegin
            | "InputFiles" >> beam.Create([list(self.files)])  # one element: the ordered file list
            | "ParseRows" >> beam.FlatMap(read_run, self.job, self.input_format, self.storage_options,
                                          self.strict_ids, self.limit).with_output_types(PromptRow)
        )
