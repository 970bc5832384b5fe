"""Per-provider limits of a job: jobs in flight, submit and poll budgets, AIMD settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_INCREASE_SHARE = 0.1
"""Without ``additive_increase``, the submit rate regains this share of its budget per second."""


class ProviderLimits(BaseModel):
    """The limits of one provider (or one provider's model). ``None`` means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_in_flight: int | None = Field(default=None, ge=1, description="Cap on jobs submitted but not finished")
    submits_per_second: float | None = Field(default=None, gt=0, description="Budget on submit calls")
    polls_per_second: float | None = Field(default=None, gt=0, description="Budget on poll calls")
    burst: int | None = Field(default=None, ge=1, description="Token bucket capacity (default: max(1, rate))")
    min_submits_per_second: float = Field(default=0.05, gt=0, description="AIMD floor of the submit rate")
    additive_increase: float | None = Field(
        default=None, gt=0, description="Submit rate regained per second without 429 (default 10% of the rate)"
    )
    decrease_factor: float = Field(default=0.5, gt=0, lt=1, description="Submit rate multiplier on a 429")
    max_retry_after: float = Field(default=120.0, ge=0, description="Longest Retry-After that blocks submits")

    @model_validator(mode="after")
    def _check_floor(self) -> "ProviderLimits":
        rate = self.submits_per_second
        if rate is not None and self.min_submits_per_second > rate:
            raise ValueError(f"min_submits_per_second={self.min_submits_per_second} exceeds submits_per_second={rate}")
        return self

    @property
    def increase_per_second(self) -> float:
        """How fast (submits/s per second) the submit rate climbs back after a 429."""
        if self.additive_increase is not None:
            return self.additive_increase
        return DEFAULT_INCREASE_SHARE * (self.submits_per_second or 0.0)

    def capacity(self, rate: float) -> float:
        """Token bucket capacity for a bucket refilled at ``rate``."""
        return float(self.burst) if self.burst is not None else max(1.0, rate)

    def divided(self, workers: int) -> "ProviderLimits":
        """This budget shared by ``workers`` processes: rates divided, caps divided (at least 1)."""
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers == 1:
            return self

        def rate(value: float | None) -> float | None:
            return None if value is None else value / workers

        def cap(value: int | None) -> int | None:
            return None if value is None else max(1, value // workers)

        return self.model_copy(
            update={
                "max_in_flight": cap(self.max_in_flight),
                "submits_per_second": rate(self.submits_per_second),
                "polls_per_second": rate(self.polls_per_second),
                "burst": cap(self.burst),
                "min_submits_per_second": self.min_submits_per_second / workers,
                "additive_increase": rate(self.additive_increase),
            }
        )
