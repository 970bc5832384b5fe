"""ReadPrompts: prompt rows (JSONL or Parquet, any filesystem) -> validated requests.

A row that cannot become a request is not dropped: it becomes a ``PromptRow`` with
``error`` set, naming the file, line or row, field and value, and ends up in the
results table as ``invalid``. Bad input costs only itself: an undecodable byte, a NUL,
an over-long line, nesting deeper than :data:`MAX_DEPTH`, a corrupt Parquet row group
or file each make ``invalid`` rows naming the file and line (row, row group) and the
reason; everything else in the run goes on. A UTF-8 byte-order mark is accepted.

Row ids must be unique across the run's inputs; :class:`UniqueRowIds` reports
duplicates and renames them ``<id>~<n>`` in input order (or refuses them, ``strict``).
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
from dataclasses import replace
from typing import Any, BinaryIO, Iterable, Iterator

import apache_beam as beam
import pydantic
from apache_beam.metrics import Metrics

from providers.core.keys import request_key
from schemas import JobConfig, STSRequest, TTSRequest, VideoGenerationRequest, ImageGenerationRequest

from .prompt_row import PromptRow
from .row_media import MediaPolicy, check_row_media
from .storage import open_input

log = logging.getLogger(__name__)

REQUEST_TYPES: dict[str, type] = {
    "video": VideoGenerationRequest,
    "image": ImageGenerationRequest,
    "tts": TTSRequest,
    "sts": STSRequest,
}
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
            source = f"{uri} row {index}" if index else uri
            fallback_id = f"{stem}-{index:06d}"
            if problem is not None:
                yield _invalid(fallback_id, source, job, None, f"{source}: {problem}", position=(uri, index))
            else:
                yield _positioned(parse_record(record, source, fallback_id, job, policy), uri, index)
        return
    for line_no, line, problem in _jsonl_lines(uri, storage_options):
        source = f"{uri}:{line_no}" if line_no else uri
        fallback_id = f"{stem}-{line_no:06d}"
        if problem is None:
            record, problem = _decode_json(line)
        if problem is not None:
            yield _invalid(fallback_id, source, job, None, f"{source}: {problem}", position=(uri, line_no))
            continue
        yield _positioned(parse_record(record, source, fallback_id, job, policy), uri, line_no)


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
    value = fields.get("text" if modality == "tts" else "prompt")
    if modality == "sts":
        value = fields.get("audio")
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


def unique_ids(element: tuple[str, Iterable[PromptRow]], strict: bool = False) -> Iterator[PromptRow]:
    """The rows sharing one id: the first in input order keeps it; each later one is renamed
    ``<id>~2``, ``<id>~3``... (``duplicate_of`` says the original), or, with ``strict``,
    becomes ``invalid``. Counted in the ``mediagen/duplicate_row_ids`` counter."""
    row_id, grouped = element
    rows = sorted(grouped, key=lambda r: (r.position, r.source))
    yield rows[0]
    if len(rows) == 1:
        return
    Metrics.counter("mediagen", DUPLICATE_COUNTER).inc(len(rows) - 1)
    where = ", ".join(r.source for r in rows[:MAX_EXAMPLES]) + (", ..." if len(rows) > MAX_EXAMPLES else "")
    log.warning("row id %r appears %d times (%s)%s", row_id, len(rows), where,
                "; the repeats are invalid (strict ids)" if strict else f"; repeats renamed {row_id}{DUPLICATE_SUFFIX}<n>")
    for number, row in enumerate(rows[1:], start=2):
        if strict:
            yield replace(row, duplicate_of=row_id, error=(
                f"{row.source}: {ID_COLUMN}: row id {row_id!r} is already used by {rows[0].source} (ids must be unique)"))
        else:
            yield replace(row, row_id=f"{row_id}{DUPLICATE_SUFFIX}{number}", duplicate_of=row_id)


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
    """Files -> ``PromptRow`` elements (valid and invalid alike), row ids made unique
    (see :func:`unique_ids`; ``strict_ids`` refuses repeats instead of renaming them)."""

    def __init__(self, files: list[str], job: JobConfig, input_format: str | None = None,
                 storage_options: dict | None = None, strict_ids: bool = False):
        super().__init__()
        self.files = files
        self.job = job
        self.input_format = input_format
        self.storage_options = storage_options
        self.strict_ids = strict_ids

    def expand(self, pbegin: Any) -> Any:

        return (
            pbegin
            | "InputFiles" >> beam.Create(self.files)
            | "ParseRows" >> beam.FlatMap(read_rows, self.job, self.input_format, self.storage_options)
            | "KeyById" >> beam.Map(lambda row: (row.row_id, row)).with_output_types(tuple[str, PromptRow])
            | "GroupById" >> beam.GroupByKey()
            | "UniqueIds" >> beam.FlatMap(unique_ids, self.strict_ids).with_output_types(PromptRow)
        )
