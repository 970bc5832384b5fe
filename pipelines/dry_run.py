"""``--dry_run``: what a job would do and cost, without calling any provider.

Every row is read and validated as the pipeline reads it (same functions, same id
renaming); each valid row's chain is resolved the way the Generate step resolves it:
the capability and lifecycle checks of every config, the ledger's done records of
earlier runs (reused), repeated requests in the input (reused), and the estimated cost
(best case: the first config that can serve it; worst case: every such config tried
once). Only the plan file ``_runs/<run_id>.plan.json`` is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from providers.errors import MediagenError
from providers.core.orchestrator import _check_supported, chain_keys, flatten_chain
from providers.core.pricing import CostEstimate, PriceBook
from providers.registry import UnknownProviderError, handler_for
from schemas import JobConfig

ROWS_LISTED = 10_000
"""Rows listed one by one in the plan file (the counts always cover every row)."""


def read_all_rows(files: list[str], job: JobConfig, input_format: str | None,
                  storage_options: dict[str, Any] | None, strict_ids: bool) -> list[Any]:
    """Every input row in input order, ids made unique as ``ReadPrompts`` makes them."""
    from transforms.read import read_run

    return list(read_run(files, job, input_format, storage_options, strict_ids))


def first_valid(rows: list[Any], limit: int | None) -> list[Any]:
    """``rows`` up to and including the ``limit``-th valid one (all of them without a limit)."""
    if limit is None:
        return rows
    kept, valid = [], 0
    for row in rows:
        if valid >= limit:
            break
        kept.append(row)
        valid += row.is_valid
    return kept


@dataclass
class ConfigPlan:
    """The dry run's counts for the rows naming one config."""

    rows: int = 0
    submit: int = 0
    reused: int = 0
    skipped: int = 0
    invalid: int = 0
    best_usd: float = 0.0
    worst_usd: float = 0.0
    unknown_price_rows: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "best_usd": round(self.best_usd, 6), "worst_usd": round(self.worst_usd, 6)}


def plan_rows(rows: Iterable[Any], job: JobConfig, ledger: Any) -> Iterator[dict[str, Any]]:
    """One plan entry per row: what the run would do with it and what that would cost."""
    from transforms.read import REQUEST_TYPES

    book = PriceBook.for_job(job)
    configs = {name: entry.build(job.modality) for name, entry in zip(job.config_names, job.configs)}
    seen: set[str] = set()
    for row in rows:
        name = row.config_name or job.config_names[0]
        entry: dict[str, Any] = {"row_id": row.row_id, "config": name}
        if not row.is_valid:
            yield {**entry, "action": "invalid", "reason": row.error}
            continue
        if row.key in seen:
            yield {**entry, "action": "reused", "reason": "repeats an earlier row's request"}
            continue
        seen.add(row.key)
        config = configs[name]
        request = REQUEST_TYPES[job.modality].model_validate_json(row.request_json or "{}")
        try:
            done = next((k for k in dict.fromkeys(chain_keys(job.modality, config, request))
                         if ledger is not None and (made := ledger.finished(k)) is not None
                         and _reused(made, k, job, name, config, request)), None)
        except (MediagenError, UnknownProviderError) as exc:
            yield {**entry, "action": "skipped", "reason": f"{type(exc).__name__}: {exc}"}
            continue
        if done is not None:
            yield {**entry, "action": "reused", "reason": "made by an earlier run"}
            continue
        serving, reasons = _serving_costs(job, config, request, book)
        if not serving:
            yield {**entry, "action": "skipped", "reason": "; ".join(reasons)}
            continue
        costs = [cost for _, cost in serving]
        yield {**entry, "action": "submit", "served_by": serving[0][0],
               "best_usd": costs[0].usd, "worst_usd": sum(c.usd or 0.0 for c in costs),
               "unknown_price": any(c.usd is None for c in costs), "estimate": costs[0].detail}


def _serving_costs(
    job: JobConfig, config: Any, request: Any, book: PriceBook
) -> tuple[list[tuple[str, CostEstimate]], list[str]]:
    """(provider/model, estimate) of each config in the chain that can serve ``request``
    (in chain order), and why the others cannot."""
    costs: list[tuple[str, CostEstimate]] = []
    reasons: list[str] = []
    for cfg in flatten_chain(config):
        try:
            _check_supported(handler_for(cfg), job.modality, request, cfg)
        except (MediagenError, UnknownProviderError) as exc:
            reasons.append(f"{cfg.provider}/{cfg.model}: {getattr(exc, 'message', exc)}")
            continue
        costs.append((f"{cfg.provider}/{cfg.model}", book.estimate(job.modality, cfg, request)))
    return costs, reasons


def _reused(made: Any, key: str, job: JobConfig, name: str, config: Any, request: Any) -> bool:
    """Whether the run would reuse the done record ``made`` (a placeholder is replaced when
    the chain's real first config has a key here: see transforms.rows.reuse_decision)."""
    from providers.core.orchestrator import flatten_chain
    from transforms.rows import key_named, reuse_decision

    chain = flatten_chain(config)
    position = chain_keys(job.modality, config, request).index(key)
    entry = job.configs[job.config_names.index(name)]
    return reuse_decision(chain, position, key_named(entry)) == "reuse"


def summarise(entries: list[dict[str, Any]], job: JobConfig) -> dict[str, ConfigPlan]:
    """The plan entries counted per config (every config of the job appears)."""
    plans = {name: ConfigPlan() for name in job.config_names}
    for entry in entries:
        plan = plans.setdefault(entry["config"], ConfigPlan())
        plan.rows += 1
        action = entry["action"]
        setattr(plan, action, getattr(plan, action) + 1)
        if action == "skipped":
            reason = str(entry.get("reason", ""))[:200]
            plan.skip_reasons[reason] = plan.skip_reasons.get(reason, 0) + 1
        if action == "submit":
            plan.best_usd += entry["best_usd"] or 0.0
            plan.worst_usd += entry["worst_usd"]
            plan.unknown_price_rows += entry["unknown_price"]
    return plans


def dry_run(files: list[str], job: JobConfig, *, output: str, run_id: str, input_format: str | None = None,
            storage_options: dict[str, Any] | None = None, strict_ids: bool = False,
            limit: int | None = None) -> dict[str, Any]:
    """Plan the job over ``files``, write ``_runs/<run_id>.plan.json`` and return the plan."""
    from schemas import utc_now
    from transforms.ledger import Ledger
    from transforms.storage import Storage

    storage = Storage(output, storage_options)
    rows = first_valid(read_all_rows(files, job, input_format, storage_options, strict_ids), limit)
    entries = list(plan_rows(rows, job, Ledger(storage, run_id=run_id)))
    plans = summarise(entries, job)
    totals = ConfigPlan()
    for plan in plans.values():
        for name in ("rows", "submit", "reused", "skipped", "invalid", "best_usd", "worst_usd", "unknown_price_rows"):
            setattr(totals, name, getattr(totals, name) + getattr(plan, name))
    plan_doc = {
        "run_id": run_id,
        "dry_run": True,
        "planned_at": utc_now().isoformat(),
        "inputs": files,
        "output": storage.uri(""),
        "limit": limit,
        "budget": job.budget.model_dump() if job.budget is not None else None,
        "configs": {name: plan.as_dict() for name, plan in plans.items()},
        "total": totals.as_dict(),
        "rows_listed": min(len(entries), ROWS_LISTED),
        "rows": entries[:ROWS_LISTED],
    }
    storage.write_json(f"_runs/{run_id}.plan.json", plan_doc)
    return plan_doc


def format_plan(plan: dict[str, Any]) -> str:
    """The dry run's report: per config, rows to submit / reused / skipped / invalid and
    the estimated cost range."""
    lines = ["", f"dry run {plan['run_id']}: nothing was submitted; plan written to "
                 f"{plan['output']}/_runs/{plan['run_id']}.plan.json"]
    header = f"  {'config':<20} {'rows':>6} {'submit':>7} {'reused':>7} {'skipped':>8} {'invalid':>8}  estimated cost"
    lines.append(header)
    for name, counts in [*plan["configs"].items(), ("total", plan["total"])]:
        lines.append(f"  {name:<20} {counts['rows']:>6} {counts['submit']:>7} {counts['reused']:>7} "
                     f"{counts['skipped']:>8} {counts['invalid']:>8}  {_cost_range(counts)}")
    for name, counts in plan["configs"].items():
        for reason, count in sorted(counts["skip_reasons"].items(), key=lambda kv: -kv[1])[:3]:
            shown = reason if len(reason) <= 150 else reason[:147] + "..."
            lines.append(f"  skipped in {name} ({count}): {shown}")
    budget = plan.get("budget")
    if budget:
        worst = plan["total"]["worst_usd"]
        verdict = "fits" if worst <= budget["max_usd"] else "may exceed it: rows past the cap fail with BudgetExceededError"
        lines.append(f"  budget: max ${budget['max_usd']:g} (scope {budget['scope']}); the worst case {verdict}")
    if plan.get("limit") is not None:
        lines.append(f"  --limit {plan['limit']}: only the first {plan['limit']} valid rows were planned")
    return "\n".join(lines)


def _cost_range(counts: dict[str, Any]) -> str:
    best, worst = counts["best_usd"], counts["worst_usd"]
    text = f"${best:,.2f}" if abs(worst - best) < 0.005 else f"${best:,.2f} - ${worst:,.2f}"
    if counts["unknown_price_rows"]:
        text = f"at least {text} (+{counts['unknown_price_rows']} rows of unknown price)"
    return text
