"""Loading a job file (YAML or JSON) with errors that name the file, the field and the value.

Values under secret-looking names (``apiKey``, ``x-api-key``, ``private_key``, ``token``...)
are never echoed: an error shows ``***`` for them. An API key written in the file, under
any spelling of ``api_key``, is refused without showing it.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic

from providers.redaction import KEY_SOURCE_FIELDS, MASK, is_secret_name
from schemas import JobConfig


class JobFileError(ValueError):
    """The job file cannot be read or is not a valid job."""


def load_job(path: str) -> JobConfig:
    """Read and validate ``path`` (local or any fsspec URI)."""
    import fsspec
    import yaml

    try:
        with fsspec.open(path, "rt", encoding="utf-8").open() as handle:
            text = handle.read()
    except (OSError, ValueError) as exc:
        raise JobFileError(f"{path}: cannot read the job file: {exc}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise JobFileError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except yaml.YAMLError as exc:
        raise JobFileError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_job(data, path)


def parse_job(data: Any, source: str = "<job>") -> JobConfig:
    """Validate already-parsed job data; refuses API keys written in the file."""
    if not isinstance(data, dict):
        raise JobFileError(f"{source}: a job file must be a mapping, got {type(data).__name__}")
    for location in _api_key_locations(data, ""):
        raise JobFileError(
            f"{source}: {location}: API keys are never written in job files (value not shown); "
            "name where the key comes from instead: api_key_env: FAL_KEY, or secret: projects/P/secrets/S/versions/latest"
        )
    try:
        return JobConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise JobFileError(f"{source}: {describe(exc)}") from None


def _yaml_problem(exc: Exception) -> str:
    """What is wrong and where, without the snippet of the file PyYAML quotes (it may hold a key)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(problem)


def is_api_key_name(name: Any) -> bool:
    """``api_key`` in any spelling: ``apiKey``, ``API-KEY``, ``api key``..."""
    return isinstance(name, str) and "".join(ch for ch in name.lower() if ch.isalnum()) == "apikey"


def _api_key_locations(value: Any, where: str) -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            location = f"{where}.{key}" if where else str(key)
            if is_api_key_name(key):
                found.append(location)
            found.extend(_api_key_locations(item, location))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_api_key_locations(item, f"{where}[{index}]"))
    return found


def describe(exc: pydantic.ValidationError) -> str:
    """Each problem as 'field.path: message (got value)'; values under secret-looking names masked."""
    parts = []
    for problem in exc.errors(include_url=False):
        location = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem["loc"]).lstrip(".")
        value = problem.get("input")
        secret = any(is_secret_name(p) and p not in KEY_SOURCE_FIELDS for p in problem["loc"])
        if secret:
            value = MASK
        shown = "" if isinstance(value, (dict, list)) or problem["type"] == "missing" else f" (got {value if secret else repr(value)})"
        parts.append(f"{location or 'job'}: {problem['msg']}{shown}")
    return "; ".join(parts)
