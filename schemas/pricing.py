"""Prices and budgets as data: one price entry of a model, and the job file's ``budget:``.

The provider modules list their models' prices with :class:`Price`; a job file may
override or extend them (``prices:``) and cap the spend (``budget:``). The arithmetic
lives in ``providers.core.pricing``.
"""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PriceUnit = Literal["video_second", "image", "1k_characters", "audio_minute", "prediction_second", "request"]
"""What one price is paid for: a second of output video, one image, 1,000 characters of
text to speech, a minute of input audio (speech to speech), a second of prediction time
(Replicate's hardware-billed models), or one call."""

CostSource = Literal["estimated", "provider-reported", "unknown", "none"]
"""Where a cost figure comes from. ``none``: nothing was paid (reused, skipped, refused)."""


class Price(BaseModel):
    """One price of one model, optionally only for requests with a given resolution,
    audio setting, image size or quality (unset filters match every request).

    ``usd=None`` says explicitly that no price is known; such a price is never taken as zero.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: PriceUnit
    usd: float | None = Field(ge=0, description="USD per unit; None = no price known")
    resolution: str | None = Field(default=None, description="only for video of this resolution (e.g. 1080p)")
    audio: bool | None = Field(default=None, description="only for video with (True) or without (False) audio")
    size: str | None = Field(default=None, description="only for images of this size (e.g. 1024x1024)")
    quality: str | None = Field(default=None, description="only for images of this quality (e.g. high)")
    default_seconds: float | None = Field(
        default=None, gt=0,
        description="seconds assumed when the request does not say (video without duration_seconds, "
        "prediction time, input audio length)",
    )
    source: str = Field(default="", description="where the price was read (the provider's pricing page)")
    read_on: datetime.date | None = Field(default=None, description="when it was read")
    note: str = ""

    def filters(self) -> dict[str, object]:
        """The request fields this price is restricted to."""
        return {k: v for k, v in (("resolution", self.resolution), ("audio", self.audio), ("size", self.size),
                                  ("quality", self.quality)) if v is not None}


class BudgetSettings(BaseModel):
    """``budget:`` of a job file: a hard cap on what the job may commit to spend.

    Before every submit, the committed spend plus that submit's estimate must stay within
    ``max_usd``; otherwise it is not sent and the row fails with ``BudgetExceededError``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_usd: float = Field(gt=0, description="the cap in US dollars")
    scope: Literal["run", "output"] = Field(
        default="run",
        description="run: this run's submits only; output: also what earlier runs recorded under the output root",
    )
    unknown_price_usd: float | None = Field(
        default=None, ge=0,
        description="what a submit whose price is unknown counts against the cap; unset: such submits are refused",
    )
