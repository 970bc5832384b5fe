"""Small helpers shared by the Tarash-contract test modules of this package."""

from __future__ import annotations

from typing import Any

from providers import RetryPolicy
from schemas import MockConfig, VideoGenerationConfig

NO_RETRY = RetryPolicy(max_retries=0)
FAST_RETRY = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.001)
CANARY_KEY = "sk-canary-7f3a9c1e5b2d8f4a6c0e"
FIXTURE_URL = "https://fixtures.example/clip.mp4"
STEPS = ["queued", "processing", "completed"]


def mocked(provider: str = "fal", model: str = "m", **mock: Any) -> VideoGenerationConfig:
    """A video config served by the offline mock, with ``mock`` as its MockConfig fields."""
    return VideoGenerationConfig(provider=provider, model=model, mock=MockConfig(**mock))
