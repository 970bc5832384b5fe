"""Result rows: what the Generate DoFn emits for each input row (completed, reused, failed,
invalid), their cost, and the raw response shrunk for the table.

Media uris in rows (and in the ledger's done records) are relative to the output root;
:func:`schemas.results.resolve_media_uri` gives a reader where they lie.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Literal

from providers.errors import MediagenError
from providers.core.http import shrink_raw
from providers.core.orchestrator import flatten_chain
from providers.core.pricing import FREE, total_cost
from providers.core.redaction import Redactor
from schemas import utc_now
from schemas.results import LedgerEntry, ResultRow, StoredMedia, media_relpath

from .prompt_row import PromptRow
from .row_media import RowMediaError



@dataclass
class ItemOutcome:
    """What happened to one request key."""

    response: Any = None
    stored: list[StoredMedia] = field(default_factory=list)
    reused: LedgerEntry | None = None
    store_error: Exception | None = None
    placeholder: bool = False
    """The media came from the mock standing in for the chain's real first config."""


# -- placeholders: the mock standing in for a real provider ------------------------------------


def is_real(cfg: Any) -> bool:
    """Whether ``cfg`` calls a real provider (not the mock provider, not mocked)."""
    return cfg.provider != "mock" and not (cfg.mock is not None and cfg.mock.enabled)


def is_placeholder(chain: list[Any], position: int) -> bool:
    """Whether media made by ``chain[position]`` (0-based) is a placeholder: the chain
    starts with a real provider and that config is the mock (or mocked)."""
    return is_real(chain[0]) and not is_real(chain[position])


def first_can_serve(config: Any) -> bool:
    """Whether the chain's first config is real, and its key resolves (from the job's
    ``api_key_env``/``secret`` or the provider's own environment variable)."""
    first = flatten_chain(config)[0]
    if not is_real(first):
        return False
    if first.api_key:
        return True
    from providers.registry import handler_for

    try:
        resolve = getattr(handler_for(first), "resolve_api_key", None)
        return resolve is not None and resolve(first)[0] is not None
    except Exception:  # an unknown provider or a malformed key serves nothing
        return False


Reuse = Literal["reuse", "redo", "replace"]


def reuse_decision(chain: list[Any], position: int, can_serve: bool, regenerate: str | None = None) -> Reuse:
    """What a run does with an earlier run's done record made by ``chain[position]``:
    ``reuse`` it; ``redo`` it on purpose (``--regenerate all``, or ``mock`` for what the
    mock made: the record is reopened and paid again); or ``replace`` a placeholder, since
    the chain's real first config ``can_serve`` now (the chain runs again from its start)."""
    if regenerate == "all" or (regenerate == "mock" and not is_real(chain[position])):
        return "redo"
    if can_serve and is_placeholder(chain, position):
        return "replace"
    return "reuse"


def key_named(entry: Any) -> bool:
    """Whether a job file's config entry (``schemas.job.ConfigEntry``) can have a key here
    without resolving it: a secret named, or its environment variable (or the provider's) set."""
    import os

    from providers.registry import get_provider

    if entry.secret:
        return True
    try:
        env = entry.api_key_env or getattr(get_provider(entry.provider), "api_key_env", None)
    except Exception:  # an unknown provider has no key to find
        return False
    return bool(env and os.environ.get(env, "").strip())


# -- building rows -------------------------------------------------------------------------------


@dataclass
class RowBuilder:
    """Builds the table rows of one request key's outcome.

    ``root`` is the output root's URI (media uris are stored relative to it);
    ``secrets`` redacts keys from messages."""

    run_id: str
    root: str
    secrets: Redactor

    def rows_for(self, rows: list[PromptRow], outcome: ItemOutcome | None,
                 error: BaseException | None) -> Iterator[ResultRow]:
        """One row per input row sharing a request key; the first carries the cost, the
        others are ``reused`` duplicates of it."""
        for index, row in enumerate(rows):
            duplicate = index > 0
            if error is not None or outcome is None:
                made = self.failed(row, error or RuntimeError("no outcome"))
            elif outcome.reused is not None:
                made = self.reused(row, outcome.reused, placeholder=outcome.placeholder)
            elif outcome.store_error is not None:
                made = self.failed(row, outcome.store_error, response=outcome.response)
            else:
                made = self.completed(row, outcome, reused=duplicate)
            yield made if duplicate else with_cost(made)

    def base(self, row: PromptRow) -> dict[str, Any]:
        return {
            "row_id": row.row_id,
            "source": row.source,
            "request_key": row.key,
            "modality": row.modality,
            "prompt": row.prompt,
            "config_name": row.config_name,
            "request_json": row.request_json,
            "run_id": self.run_id,
            "finished_at": utc_now(),
        }

    def completed(self, row: PromptRow, outcome: ItemOutcome, reused: bool) -> ResultRow:
        response = outcome.response
        winner = winning_attempt(response)
        return ResultRow(
            **self.base(row),
            status="completed",
            reused=reused,
            provider=winner.provider if winner else None,
            model=winner.model if winner else None,
            media=self.relative(outcome.stored),
            is_mock=response.is_mock,
            placeholder=outcome.placeholder,
            raw_response_json=self.raw_json(response),
            execution=response.execution_metadata,
        )

    def reused(self, row: PromptRow, entry: LedgerEntry, placeholder: bool = False) -> ResultRow:
        """A row reusing ``entry``'s media: nothing paid in this run (its cost is set here,
        so :func:`with_cost` has nothing to redo)."""
        return ResultRow(
            **self.base(row),
            status="completed",
            reused=True,
            provider=entry.provider,
            model=entry.model,
            media=self.relative(entry.media),
            is_mock=entry.is_mock,
            placeholder=placeholder,
            raw_response_json=entry.raw_response_json,
            cost_usd=FREE.usd,
            cost_source=FREE.source,
        )

    def failed(self, row: PromptRow, error: BaseException, response: Any = None) -> ResultRow:
        if isinstance(error, MediagenError):
            error.redact(self.secrets)
        execution = getattr(error, "execution_metadata", None) or getattr(response, "execution_metadata", None)
        attempts = execution.attempts if execution else []
        ran = [a for a in attempts if a.status != "skipped"] or attempts
        last = ran[-1] if ran else None
        message = str(error.message) if isinstance(error, MediagenError) else str(error)
        return ResultRow(
            **self.base(row),
            status="invalid" if isinstance(error, RowMediaError) else "failed",
            provider=last.provider if last else None,
            model=last.model if last else None,
            error_type=type(error).__name__,
            error_message=self.secrets.redact(message),
            is_mock=bool(last and last.is_mock),
            raw_response_json=self.raw_json(response) if response is not None else None,
            execution=execution,
        )

    def relative(self, media: Iterable[StoredMedia]) -> list[StoredMedia]:
        """``media`` with uris relative to the output root (older absolute ones rebased)."""
        return [m if m.uri == (rel := media_relpath(m.uri, self.root)) else m.model_copy(update={"uri": rel})
                for m in media]

    def raw_json(self, response: Any) -> str | None:
        """The provider's raw answer for the table: redacted, bulk elided."""
        raw = getattr(response, "raw_response", None)
        if not raw:
            return None
        return self.secrets.redact(json.dumps(shrink_raw(raw), default=str))


def with_cost(row: ResultRow) -> ResultRow:
    """``row`` with the cost of its attempts in this run (rows sharing a request carry it
    once: on the first row, the others cost nothing)."""
    attempts = row.execution.attempts if row.execution is not None else []
    cost = total_cost((a.cost_usd, a.cost_source) for a in attempts)
    if (row.cost_usd, row.cost_source) == (cost.usd, cost.source):
        return row
    return row.model_copy(update={"cost_usd": cost.usd, "cost_source": cost.source})


def winning_attempt(response: Any) -> Any:
    """The attempt that produced ``response``, or None."""
    metadata = getattr(response, "execution_metadata", None)
    if metadata is None or metadata.successful_attempt is None:
        return None
    return metadata.attempts[metadata.successful_attempt - 1]


def invalid_result(row: PromptRow, run_id: str) -> ResultRow:
    """The results-table row for an input row that never became a request."""
    return ResultRow(
        row_id=row.row_id,
        source=row.source,
        modality=row.modality,
        prompt=row.prompt,
        config_name=row.config_name,
        status="invalid",
        error_type="InvalidRow",
        error_message=row.error,
        request_json=row.request_json,
        run_id=run_id,
        finished_at=utc_now(),
    )
