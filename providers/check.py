"""Live key check: is every key a job names accepted by its provider? Spends nothing.

    python -m providers.check --config job.yaml [--timeout 20] [--verbose]

For every config of the job (fallbacks included) the key is resolved exactly as the
pipeline resolves it (``api_key_env`` / ``secret`` through :class:`transforms.secrets.KeyResolver`,
else the provider's default environment variable), and the provider's cheapest
authenticated, non-generating call (its :class:`KeyCheck`: list models, list voices,
account info) is made once per distinct provider / endpoint / key source through
:func:`providers.core.http.send`. One table row per config says where the key was found
(never the key), whether it was accepted, and which models the job names that the
provider's list answer does not contain.

Exit code: 0 when every checked key is accepted (rows "not checked", e.g. mocks, do
not fail), 1 when any key is refused, missing, unusable or its endpoint unreachable,
2 for usage or job-file errors (one ``error:`` line on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

from schemas import ConfigEntry, JobConfig, Modality
from schemas.base import InvalidAPIKeyError, normalise_api_key

from providers.core.contract import AnyConfig, Deadline, ProviderContext
from providers.core.base import JobProvider
from providers.errors import GenerationTimeoutError, MediagenError, ProviderAuthError, ProviderConnectionError, ProviderHTTPError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
Resolve = Callable[[ConfigEntry], "str | None"]
"""Resolves a config's key source (:class:`transforms.secrets.KeyResolver`)."""


@dataclass(frozen=True)
class KeyCheck:
    """A provider's cheapest authenticated call that generates (and costs) nothing.

    Set as the class attribute ``key_check`` of a provider. The URL is ``path`` joined
    onto a root: the result of the provider method named by ``root`` (for providers
    whose endpoint is computed from the config), else ``config.base_url`` when set, else
    ``base_url`` (a check served by another host than generation), else the provider's
    ``default_base_url``.
    """

    path: str
    method: str = "GET"
    headers: str | None = None
    """Name of the provider method ``(ctx) -> dict`` building the auth (and version) headers."""
    key_header: str | None = None
    """For providers without such a method: the header that carries the bare key."""
    root: str | None = None
    base_url: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    models_from: str | None = None
    """Where the answer lists the usable models: ``data[].id`` (``[]`` iterates a list;
    a leading ``[]`` means the answer itself is the list). None: the answer lists none."""
    model_prefix: str = ""
    """Prefix of listed ids that configs leave out (Google's ``models/``)."""
    not_for: Mapping[str, str] = field(default_factory=dict)
    """``provider_config`` keys under which this check does not apply -> why (shown as 'not checked')."""
    source: str = ""
    """Where the endpoint is documented."""

    def __post_init__(self) -> None:
        if (self.headers is None) == (self.key_header is None):
            raise ValueError("KeyCheck needs exactly one of headers (a provider method name) or key_header")


# -- the result of one check -------------------------------------------------------------


ACCEPTED = "accepted"


@dataclass(frozen=True)
class Outcome:
    """What one key check found; ``ok`` results do not fail the command."""

    result: str
    ok: bool
    unusable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    config: str
    provider: str
    model: str
    key_from: str
    outcome: Outcome


@dataclass
class _Target:
    """One config to check, with its built generation config and resolved key."""

    label: str
    entry: ConfigEntry
    modality: Modality
    provider: Any
    config: AnyConfig | None
    key: str | None
    key_from: str
    problem: Outcome | None = None


# -- resolving configs and keys ------------------------------------------------------------


def walk_labelled(job: JobConfig) -> Iterator[tuple[str, ConfigEntry]]:
    """Every config of the job with a readable label; fallbacks as ``name.fallback[i]``."""

    def walk(label: str, entry: ConfigEntry) -> Iterator[tuple[str, ConfigEntry]]:
        yield label, entry
        for index, fallback in enumerate(entry.fallback_configs):
            yield from walk(f"{label}.fallback[{index}]", fallback)

    for name, entry in zip(job.config_names, job.configs):
        yield from walk(name, entry)


_ENV_SOURCE = re.compile(r"the (\S+) environment variable")


def _target(label: str, entry: ConfigEntry, modality: Modality, resolve: Resolve) -> _Target:
    from transforms.secrets import KeyResolutionError

    from providers.registry import get_provider

    target = _Target(label, entry, modality, get_provider(entry.provider), None, None, "-")  # unknown: usage error
    if entry.is_mocked:
        target.problem = Outcome("not checked (mock)", ok=True)
        return target
    target.config = entry.build(modality)
    try:
        target.key, target.key_from = _resolve_key(target, resolve)
    except (KeyResolutionError, InvalidAPIKeyError) as exc:  # their messages never hold the key
        target.key_from = _declared_source(entry)
        target.problem = Outcome(f"no usable key: {exc}", ok=False)
    return target


def _declared_source(entry: ConfigEntry) -> str:
    if entry.secret:
        return f"secret {entry.secret}"
    return f"env {entry.api_key_env}" if entry.api_key_env else "none"


def _resolve_key(target: _Target, resolve: Resolve) -> tuple[str | None, str]:
    """The key and where it was found: the config's own source through ``resolve`` (as the
    pipeline does), else the provider's default environment variable(s)."""
    entry, provider = target.entry, target.provider
    if entry.secret or entry.api_key_env:
        where = _declared_source(entry)
        key = normalise_api_key(resolve(entry), where)
    elif isinstance(provider, JobProvider) and target.config is not None:
        raw, source = provider.resolve_api_key(target.config)
        key = normalise_api_key(raw, source)
        match = _ENV_SOURCE.fullmatch(source)
        where = f"env {match.group(1)}" if match else source
    else:
        return None, "none"
    return key, (where if key is not None else "none")


# -- making the call -----------------------------------------------------------------------


def _context(target: _Target, timeout: float) -> ProviderContext:
    provider: JobProvider = target.provider
    assert target.config is not None
    ctx = provider.context(target.config, target.modality)
    ctx.api_key, ctx.api_key_source = target.key, target.key_from
    ctx.deadline = Deadline(timeout)
    return ctx


def check_url(check: KeyCheck, provider: JobProvider, ctx: ProviderContext) -> str:
    """The absolute URL of ``check`` for this context (see :class:`KeyCheck`)."""
    if check.root:
        root = getattr(provider, check.root)(ctx)
    elif ctx.config.base_url:
        root = ctx.config.base_url
    else:
        root = check.base_url or provider.default_base_url
    return f"{root.rstrip('/')}/{check.path.lstrip('/')}"


def check_headers(check: KeyCheck, provider: JobProvider, ctx: ProviderContext) -> dict[str, str]:
    """The provider's own auth headers (or the bare key in ``key_header``), asking for JSON."""
    if check.headers:
        headers = dict(getattr(provider, check.headers)(ctx))
    else:
        headers = {str(check.key_header): ctx.require_api_key()}
    headers["Accept"] = "application/json"  # generation headers may ask for audio/* or image/*
    return headers


def _get(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else None


def listed_models(body: Any, spec: str) -> set[str] | None:
    """The strings at ``spec`` (``data[].id``) in ``body``; None when the answer lacks that shape."""
    parts = spec.split(".")
    head = parts[0]
    top = body if head in ("", "[]") else _get(body, head.removesuffix("[]"))
    if top is None or (head.endswith("[]") and not isinstance(top, list)):
        return None
    items = [body]
    for part in parts:
        many = part.endswith("[]")
        name = part[:-2] if many else part
        found: list[Any] = []
        for item in items:
            value = item if not name else (item.get(name) if isinstance(item, dict) else None)
            if many and isinstance(value, list):
                found.extend(value)
            elif not many and value is not None:
                found.append(value)
        items = found
    return {item for item in items if isinstance(item, str)}


def run_check(provider: JobProvider, ctx: ProviderContext, models: Sequence[str]) -> Outcome:
    """Make the provider's key check once; which of ``models`` its answer does not list."""
    from providers.core.http import response_body, send

    check: KeyCheck = provider.key_check  # type: ignore[attr-defined]
    try:
        url = check_url(check, provider, ctx)
        headers = check_headers(check, provider, ctx)
    except MediagenError as exc:  # e.g. an Azure config without an endpoint; messages carry no key
        return Outcome(f"config error: {exc.message}", ok=False)
    params = dict(check.params)
    log.debug("key check: %s %s for %s models %s", check.method, url, provider.name, list(models))
    try:
        response = send(ctx, check.method, url, headers=headers, params=params or None)
    except ProviderAuthError as exc:
        return Outcome(f"refused (HTTP {exc.status_code})", ok=False)
    except GenerationTimeoutError:
        return Outcome("unreachable (timeout)", ok=False)
    except ProviderConnectionError:
        return Outcome("unreachable (connection error)", ok=False)
    except ProviderHTTPError as exc:
        return Outcome(f"error (HTTP {exc.status_code})", ok=False)
    except MediagenError as exc:  # 400/422: the check itself was refused, not the key
        return Outcome(f"error ({type(exc).__name__})", ok=False)
    log.debug("key check: %s answered HTTP %s", provider.name, response.status_code)
    if not check.models_from:
        return Outcome(ACCEPTED, ok=True)
    listed = listed_models(response_body(response), check.models_from)
    if listed is None:
        return Outcome(ACCEPTED, ok=True)
    usable = {m[len(check.model_prefix):] if m.startswith(check.model_prefix) else m for m in listed}
    return Outcome(ACCEPTED, ok=True, unusable=tuple(m for m in models if m not in usable))


def check_job(job: JobConfig, resolve: Resolve, *, timeout: float = DEFAULT_TIMEOUT) -> list[Row]:
    """One row per config of ``job``; each distinct provider / endpoint / key source is called once."""
    targets = [_target(label, entry, job.modality, resolve) for label, entry in walk_labelled(job)]
    groups: dict[tuple[str, ...], list[_Target]] = {}
    for target in targets:
        target.problem = target.problem or _precheck(target)
        if target.problem is None:
            groups.setdefault(_group_key(target), []).append(target)
    outcomes: dict[str, Outcome] = {}
    for members in groups.values():
        models = list(dict.fromkeys(member.entry.model for member in members))
        outcome = run_check(members[0].provider, _context(members[0], timeout), models)
        for member in members:
            mine = tuple(model for model in outcome.unusable if model == member.entry.model)
            outcomes[member.label] = replace(outcome, unusable=mine)
    return [
        Row(t.label, t.entry.provider, t.entry.model, t.key_from, t.problem or outcomes[t.label]) for t in targets
    ]


def _group_key(target: _Target) -> tuple[str, ...]:
    """Configs that would make the very same call: same provider, endpoint settings and key source."""
    entry = target.entry
    settings = json.dumps(entry.provider_config, sort_keys=True, default=str)
    return (entry.provider, entry.base_url or "", entry.api_version or "", settings, target.key_from)


def _precheck(target: _Target) -> Outcome | None:
    """Why ``target`` cannot be (or need not be) called, if it cannot."""
    check = getattr(target.provider, "key_check", None)
    if not isinstance(check, KeyCheck):
        return Outcome("not checked (the provider declares no key check)", ok=True)
    settings = target.config.provider_config if target.config is not None else {}
    for setting, reason in check.not_for.items():
        if settings.get(setting):
            return Outcome(f"not checked ({reason})", ok=True)
    if target.key is None:
        env = getattr(target.provider, "api_key_env", None)
        if target.entry.secret:
            return Outcome("missing key (the secret is empty)", ok=False)
        env = target.entry.api_key_env or getattr(target.provider, "api_key_env", None)
        return Outcome(f"missing key (set {env})" if env else "missing key", ok=False)
    return None


# -- output and the command ------------------------------------------------------------------


HEADER = ("config", "provider", "model", "key from", "result", "models the account cannot use")


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table, one row per config."""
    lines = [HEADER] + [
        (r.config, r.provider, r.model, r.key_from, r.outcome.result, ", ".join(r.outcome.unusable) or "-")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]

    def render(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([render(lines[0]), separator] + [render(line) for line in lines[1:]])


def exit_code(rows: Sequence[Row]) -> int:
    return EXIT_OK if all(row.outcome.ok for row in rows) else EXIT_FAILED


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m providers.check",
        description="Check every API key a job names with one cheap, non-generating call per provider.",
    )
    parser.add_argument("--config", required=True, help="job file (YAML or JSON, local or fsspec URI)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per check call")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG to stderr")
    return parser


def main(argv: Sequence[str] | None = None, *, resolver: Resolve | None = None) -> int:
    """Run the command; returns the exit code."""
    from pipelines.job_file import JobFileError, load_job
    from transforms.secrets import KeyResolver

    from providers.registry import UnknownProviderError

    try:
        args = build_parser().parse_args(argv)
        if args.timeout <= 0:
            raise _UsageError(f"--timeout must be positive, got {args.timeout}")
        if args.verbose:
            logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        job = load_job(args.config)
        rows = check_job(job, resolver or KeyResolver(), timeout=args.timeout)
    except (_UsageError, JobFileError, UnknownProviderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(format_table(rows))
    return exit_code(rows)


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: provider classes hold
    # providers.check.KeyCheck instances, which are not this copy's KeyCheck.
    from providers.check import main as _main

    sys.exit(_main())
