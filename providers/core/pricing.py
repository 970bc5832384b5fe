"""What a request costs, and the hard budget cap checked before every submit.

Prices are provider facts: each provider module lists them in a ``prices`` class
attribute next to ``models`` (model -> :class:`~schemas.pricing.Price` entries, a key
ending in ``*`` names a family by prefix). A job file's ``prices:`` replaces a model's
entries (negotiated rates, models the catalog does not know). A model without a price
is *unknown*, never free.

- :class:`PriceBook` estimates one attempt from the request actually sent and the model
  that serves it, and turns what a provider reports (Runway's credits, Replicate's
  ``metrics.predict_time``, token usage) into the actual cost.
- :class:`Spend` is one worker's running total and its share of the cap: ``reserve`` is
  atomic, so a window of racing submits never commits more than the cap.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from schemas import Modality
from schemas.pricing import BudgetSettings, CostSource, Price, PriceUnit

from providers.core.capabilities import family_lookup
from providers.errors import MediagenError

UNIT_LABELS: dict[str, str] = {
    "video_second": "s of video",
    "image": "image",
    "1k_characters": "1k chars",
    "audio_minute": "min of audio",
    "prediction_second": "s of prediction",
    "request": "request",
}
NO_PRICE = "no price known"


class BudgetExceededError(MediagenError):
    """The submit would take the committed spend past the budget cap (or its price is
    unknown under a cap): it was not sent. Stops the chain; a rerun with a larger
    budget submits it."""

    stops_chain = True


@dataclass(frozen=True)
class CostEstimate:
    """The cost of one attempt: ``usd`` (None when the price is unknown), where the figure
    comes from, and how it was reached (for messages and the dry run)."""

    usd: float | None
    source: CostSource
    detail: str = field(default="", compare=False)

    @property
    def known(self) -> bool:
        return self.usd is not None


FREE = CostEstimate(0.0, "none", "nothing submitted")


@dataclass(frozen=True)
class Reservation:
    """A submit's share of the committed spend: its estimate, and the dollars counted
    against the cap (``budget.unknown_price_usd`` for an unknown price)."""

    estimate: CostEstimate
    usd: float


@dataclass(frozen=True)
class Reported:
    """What a provider's answer says was billed: dollars, or billable units of a price unit."""

    usd: float | None = None
    units: float | None = None
    unit: PriceUnit | None = None


def price_sheet(source: str, read_on: str, note: str = "") -> Callable[..., Price]:
    """A maker of :class:`Price` entries read from one page on one day (for provider modules):
    ``sheet("video_second", 0.10, resolution="720p")``."""
    day = datetime.date.fromisoformat(read_on)

    def make(unit: PriceUnit, usd: float | None, **fields: Any) -> Price:
        return Price(unit=unit, usd=usd, source=source, read_on=day, **{"note": note, **fields})

    return make


def _is_mocked(cfg: Any) -> bool:
    mock = getattr(cfg, "mock", None)
    return cfg.provider == "mock" or (mock is not None and mock.enabled)


class PriceBook:
    """The provider catalogs' prices, with a job file's ``prices:`` taking precedence."""

    def __init__(self, overrides: Mapping[str, Iterable[Price]] | None = None) -> None:
        self.overrides: dict[str, dict[str, tuple[Price, ...]]] = {}
        for name, prices in (overrides or {}).items():
            provider, _, model = name.partition("/")
            self.overrides.setdefault(provider, {})[model] = tuple(prices)

    @classmethod
    def for_job(cls, job: Any) -> "PriceBook":
        return cls(getattr(job, "prices", None) or {})

    def prices(self, provider: str, model: str) -> tuple[Price, ...]:
        """The price entries of ``provider``/``model`` (empty: no price known)."""
        found = family_lookup(self.overrides.get(provider, {}), model)
        if found is not None:
            return found
        from providers.registry import UnknownProviderError, get_provider

        try:
            catalog = getattr(get_provider(provider), "prices", {})
        except UnknownProviderError:
            return ()
        return tuple(family_lookup(catalog, model) or ())

    def estimate(self, modality: Modality, cfg: Any, request: Any) -> CostEstimate:
        """The estimated cost of sending ``request`` to ``cfg``'s model once."""
        if _is_mocked(cfg):
            return CostEstimate(0.0, "estimated", "mock: free")
        where = f"{cfg.provider}/{cfg.model}"
        price = pick_price(self.prices(cfg.provider, cfg.model), modality, request)
        if price is None or price.usd is None:
            note = f" ({price.note})" if price is not None and price.note else ""
            return CostEstimate(None, "unknown", f"{where}: {NO_PRICE}{note}")
        units = billable_units(price, modality, request, _longest_duration(cfg))
        if units is None:
            return CostEstimate(None, "unknown", f"{where}: {describe_price(price)}, but the request's "
                                                 f"{UNIT_LABELS[price.unit]} count is not known before the call")
        return CostEstimate(round(units * price.usd, 6), "estimated",
                            f"{where}: {units:g} {UNIT_LABELS[price.unit]} x ${price.usd:g}")

    def actual(self, modality: Modality, cfg: Any, request: Any, charged: CostEstimate, raw: Any) -> CostEstimate:
        """The attempt's cost once its answer is in: what the provider reports where it
        reports it, else the estimate made when it was submitted."""
        reported = _reported(cfg, raw)
        if reported is None or _is_mocked(cfg):
            return charged
        if reported.usd is not None:
            return CostEstimate(round(reported.usd, 6), "provider-reported", f"{cfg.provider} reported ${reported.usd:g}")
        if reported.units is not None and reported.unit is not None:
            prices = [p for p in self.prices(cfg.provider, cfg.model) if p.unit == reported.unit and p.usd is not None]
            if prices:
                usd = reported.units * max(p.usd for p in prices)  # type: ignore[type-var]
                return CostEstimate(round(usd, 6), "provider-reported",
                                    f"{cfg.provider} reported {reported.units:g} {UNIT_LABELS[reported.unit]}")
        return charged


def _reported(cfg: Any, raw: Any) -> Reported | None:
    if not isinstance(raw, dict):
        return None
    from providers.registry import UnknownProviderError, get_provider

    try:
        provider = get_provider(cfg.provider)
    except UnknownProviderError:
        return None
    read = getattr(provider, "reported_cost", None)
    if read is None:
        return None
    try:
        return read(cfg.model, raw)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None  # an answer shaped unlike the docs: keep the estimate


def _request_filters(modality: Modality, request: Any) -> dict[str, object]:
    if modality == "video":
        return {"resolution": request.resolution, "audio": request.generate_audio}
    if modality == "image":
        return {"size": request.size, "quality": request.quality}
    return {}


def pick_price(prices: Iterable[Price], modality: Modality, request: Any) -> Price | None:
    """The entry that applies to ``request``: entries whose filters contradict the request
    are out; of the rest, those matching the most request fields exactly; of those, the
    dearest (a field the request leaves to the model's default is priced at its worst case)."""
    wanted = _request_filters(modality, request)
    candidates: list[tuple[int, Price]] = []
    for price in prices:
        filters = price.filters()
        if any(wanted.get(k) is not None and wanted.get(k) != v for k, v in filters.items()):
            continue
        candidates.append((sum(1 for k, v in filters.items() if wanted.get(k) == v), price))
    if not candidates:
        return None
    best = max(score for score, _ in candidates)
    chosen = [price for score, price in candidates if score == best]
    if any(p.usd is None for p in chosen):
        return next(p for p in chosen if p.usd is None)
    return max(chosen, key=lambda p: p.usd or 0.0)


def _longest_duration(cfg: Any) -> float | None:
    """The longest video the config's model makes: the duration a request that names none
    is priced at (the model's default is not in its capabilities; this is the worst case)."""
    from providers.registry import capabilities_for

    caps = capabilities_for(cfg.provider, cfg.model)
    if caps is None:
        return None
    if caps.durations:
        return float(max(caps.durations))
    return float(caps.max_duration) if caps.max_duration else None


def billable_units(price: Price, modality: Modality, request: Any, longest: float | None = None) -> float | None:
    """How many of ``price.unit`` the request buys (None: not known before the call). A video
    request without ``duration_seconds`` is priced at ``price.default_seconds``, else at
    ``longest`` (the model's longest video)."""
    unit = price.unit
    if unit == "request":
        return 1.0
    if unit == "image":
        return float(getattr(request, "n", None) or 1)
    if unit == "1k_characters":
        return len(getattr(request, "text", "") or "") / 1000
    if unit == "video_second":
        seconds = getattr(request, "duration_seconds", None) or price.default_seconds or longest
        return None if seconds is None else float(seconds) * (getattr(request, "number_of_videos", 1) or 1)
    if unit == "audio_minute":
        return None if price.default_seconds is None else price.default_seconds / 60
    if unit == "prediction_second":
        return price.default_seconds
    return None


def describe_price(price: Price | None) -> str:
    """One price as a README cell: ``$0.10/s of video (720p, audio)``."""
    if price is None or price.usd is None:
        return NO_PRICE
    filters = ", ".join(
        f"{'audio' if v else 'no audio'}" if k == "audio" else str(v) for k, v in price.filters().items()
    )
    return f"${price.usd:g}/{UNIT_LABELS[price.unit]}" + (f" ({filters})" if filters else "")


def describe_prices(prices: Iterable[Price]) -> str:
    """A model's prices as a README cell; ``no price known`` when it has none. More than
    three entries of one unit collapse into a range (``$0.011-$0.25/image by size, quality``)."""
    known = [p for p in prices if p.usd is not None]
    if not known:
        return NO_PRICE
    if len(known) > 3 and len({p.unit for p in known}) == 1:
        by = sorted({k for p in known for k in p.filters()})
        low, high = min(p.usd for p in known), max(p.usd for p in known)  # type: ignore[type-var]
        return f"${low:g}-${high:g}/{UNIT_LABELS[known[0].unit]} by {', '.join(by)}"
    return "; ".join(describe_price(p) for p in known)


def attempt_cost(charged: CostEstimate | None) -> CostEstimate:
    """What an attempt that ended without an answer cost: its charge when it was
    submitted (a failed job that was billed counts), else nothing."""
    return charged if charged is not None else FREE


def total_cost(costs: Iterable[CostEstimate | tuple[float | None, str]]) -> CostEstimate:
    """Several attempts' costs as one figure: unknown when any paid part is unknown;
    provider-reported only when every paid part is."""
    usd = 0.0
    sources: set[str] = set()
    for cost in costs:
        value, source = (cost.usd, cost.source) if isinstance(cost, CostEstimate) else cost
        if source == "none":
            continue
        sources.add(source)
        if value is not None:
            usd += value
    if not sources:
        return FREE
    if "unknown" in sources:
        return CostEstimate(None, "unknown")
    return CostEstimate(round(usd, 6), "provider-reported" if sources == {"provider-reported"} else "estimated")


class Spend:
    """One worker's spend: prices every submit and keeps it within this worker's share of
    the cap. Thread-safe: the check and the reservation are one step under a lock.

    ``earlier_usd`` is what earlier runs recorded under the output root (``scope: output``);
    with ``workers`` > 1 each worker gets ``(max_usd - earlier_usd) / workers``.
    """

    def __init__(self, book: PriceBook | None = None, budget: BudgetSettings | None = None,
                 earlier_usd: float = 0.0, workers: int = 1) -> None:
        self.book = book or PriceBook()
        self.budget = budget
        self.earlier_usd = earlier_usd if budget is not None and budget.scope == "output" else 0.0
        self.workers = max(1, workers)
        self.committed = 0.0
        """Estimates of every submit this worker sent (refused and rejected ones released)."""
        self._lock = threading.Lock()

    @property
    def cap(self) -> float | None:
        """This worker's share of what may still be committed, or None without a budget."""
        if self.budget is None:
            return None
        return max(0.0, self.budget.max_usd - self.earlier_usd) / self.workers

    def reserve(self, modality: Modality, cfg: Any, request: Any) -> Reservation:
        """Count this submit's estimate as committed, or raise ``BudgetExceededError`` (and
        count nothing) when it would not fit."""
        estimate = self.book.estimate(modality, cfg, request)
        amount = estimate.usd or 0.0
        if estimate.usd is None and self.budget is not None:
            if self.budget.unknown_price_usd is None:
                raise BudgetExceededError(
                    f"{estimate.detail}; under budget.max_usd={self.budget.max_usd:g} a submit of unknown price is "
                    "refused (add its price under prices:, or set budget.unknown_price_usd)",
                    provider=cfg.provider, model=cfg.model)
            amount = self.budget.unknown_price_usd
        with self._lock:
            cap = self.cap
            if cap is not None and self.committed + amount > cap + 1e-9:
                raise BudgetExceededError(
                    f"budget: committing ${amount:g} ({estimate.detail}) to ${self.committed:.2f} already committed "
                    f"would pass this worker's cap of ${cap:.2f} (budget.max_usd={self.budget.max_usd:g}"  # type: ignore[union-attr]
                    + (f", ${self.earlier_usd:.2f} spent by earlier runs" if self.earlier_usd else "")
                    + (f", {self.workers} workers" if self.workers > 1 else "") + "); not submitted",
                    provider=cfg.provider, model=cfg.model)
            self.committed += amount
        return Reservation(estimate, amount)

    def release(self, reservation: Reservation) -> None:
        """Un-commit a reservation whose submit was refused (nothing was billed)."""
        with self._lock:
            self.committed = max(0.0, self.committed - reservation.usd)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
