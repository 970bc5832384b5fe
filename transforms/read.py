"""ReadPrompts: prompt rows (JSONL or Parquet, any filesystem) -> validated requests.

A row that cannot become a request is not dropped: it becomes a ``PromptRow`` with
``error`` set, naming the file, line or row, field and value, and ends up in the
results table as ``invalid``.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any, Iterator

import apache_beam as beam
import pydantic

from providers.keys import request_key
from schemas import JobConfig, Modality, STSRequest, TTSRequest, VideoGenerationRequest, ImageGenerationRequest

from .storage import open_input

REQUEST_TYPES: dict[str, type] = {
    "video": VideoGenerationRequest,
    "image": ImageGenerationRequest,
    "tts": TTSRequest,
    "sts": STSRequest,
}
ID_COLUMN = "id"
CONFIG_COLUMN = "config"
MAX_VALUE_IN_MESSAGE = 120


@dataclass(frozen=True)
class PromptRow:
    """One input row: a valid request with its key, or the reason it is invalid."""

    row_id: str
    source: str
    modality: Modality
    config_name: str | None
    prompt: str | None
    request_json: str | None = None
    key: str | None = None
    error: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.error is None


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
    """Every row of one input file, parsed and validated."""
    fmt = input_format_of(uri, declared_format)
    stem = _stem(uri)
    if fmt == "parquet":
        for index, record in _parquet_records(uri, storage_options):
            yield parse_record(record, f"{uri} row {index}", f"{stem}-{index:06d}", job)
        return
    for line_no, line in _jsonl_lines(uri, storage_options):
        source = f"{uri}:{line_no}"
        fallback_id = f"{stem}-{line_no:06d}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _invalid(fallback_id, source, job, None, f"{source}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        yield parse_record(record, source, fallback_id, job)


def _jsonl_lines(uri: str, storage_options: dict | None) -> Iterator[tuple[int, str]]:
    with open_input(uri, "rt", {**(storage_options or {}), "compression": "infer", "encoding": "utf-8"}) as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                yield line_no, line


def _parquet_records(uri: str, storage_options: dict | None) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    with open_input(uri, "rb", storage_options) as handle:
        index = 0
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                index += 1
                yield index, record


def _stem(uri: str) -> str:
    name = posixpath.basename(uri.rstrip("/"))
    return name.split(".", 1)[0] or "row"


def parse_record(record: Any, source: str, fallback_id: str, job: JobConfig) -> PromptRow:
    """Validate one record against the job's modality; never raises."""
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


def _invalid(row_id: str, source: str, job: JobConfig, config_name: Any, error: str, prompt: str | None = None) -> PromptRow:
    return PromptRow(
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


class ReadPrompts(beam.PTransform):
    """Files -> ``PromptRow`` elements (valid and invalid alike)."""

    def __init__(self, files: list[str], job: JobConfig, input_format: str | None = None, storage_options: dict | None = None):
        super().__init__()
        self.files = files
        self.job = job
        self.input_format = input_format
        self.storage_options = storage_options

    def expand(self, pbegin: Any) -> Any:
        return (
            pbegin
            | "InputFiles" >> beam.Create(self.files)
            | "ParseRows" >> beam.FlatMap(read_rows, self.job, self.input_format, self.storage_options)
        )
