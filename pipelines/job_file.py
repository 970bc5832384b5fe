"""Loading a job file (YAML or JSON) with errors that name the file, the field and the value.

Values under secret-looking names (``apiKey``, ``x-api-key``, ``private_key``, ``token``...)
are never echoed: an error shows ``***`` for them. An API key written in the file, under
any spelling of ``api_key``, is refused without showing it.
"""

from __future__ import annotations

import difflib
import json
import logging
from typing import Any

import pydantic

from providers.core.redaction import describe_validation_error
from schemas import JobConfig


log = logging.getLogger("mediagen")


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
    job = parse_job(data, path)
    check_providers(job, path)
    return job


def check_providers(job: JobConfig, source: str = "<job>") -> None:
    """What can be known before a run: every provider name of a config or fallback that is
    not mocked is one this installation serves (built in or registered), with a did-you-mean
    when it is not; limits and prices name a provider of the job or a known one; a model the
    provider's catalog does not list is a warning (new models work before the catalog knows them)."""
    from providers.core.capabilities import family_key
    from providers.registry import UnknownProviderError, get_provider, known_providers

    known = known_providers()
    for location, entry in _config_locations(job):
        if entry.is_mocked:  # served by the mock whatever its provider is called
            continue
        if entry.provider not in known:
            raise JobFileError(f"{source}: {location}.provider: {unknown_name(entry.provider, known, 'provider')}")
        try:
            models = getattr(get_provider(entry.provider), "models", None)
        except UnknownProviderError as exc:
            raise JobFileError(f"{source}: {location}.provider: {exc}") from None
        if models and family_key(entry.model, models) is None:
            guess = difflib.get_close_matches(entry.model, list(models), n=1)
            log.warning("%s: %s.model: %r is not in %s's catalog%s; it is sent as given", source, location,
                        entry.model, entry.provider, f" (did you mean {guess[0]!r}?)" if guess else "")
    named = set(known) | {entry.provider for _, entry in _config_locations(job)}
    for section, names in (("limits", job.limits), ("prices", job.prices)):
        for name in names:
            provider = name.split("/", 1)[0]
            if provider not in named:
                raise JobFileError(f"{source}: {section}.{name}: {unknown_name(provider, known, 'provider')}")


def unknown_name(value: str, known: list[str], what: str) -> str:
    """"unknown provider 'fall'; did you mean 'fal'? (known: ...)"."""
    guess = difflib.get_close_matches(value, known, n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return f"unknown {what} {value!r}{hint} (known: {', '.join(known)})"


def _config_locations(job: JobConfig) -> list[tuple[str, Any]]:
    """(field path, entry) of every config and fallback: configs[0], configs[0].fallback_configs[1]..."""
    found: list[tuple[str, Any]] = []

    def walk(entry: Any, where: str) -> None:
        found.append((where, entry))
        for index, fallback in enumerate(entry.fallback_configs):
            walk(fallback, f"{where}.fallback_configs[{index}]")

    for index, entry in enumerate(job.configs):
        walk(entry, f"configs[{index}]")
    return found


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
        raise JobFileError(f"{source}: {describe_validation_error(exc, root='job')}") from None


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

