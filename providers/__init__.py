"""mediagen's unified SDK: one set of functions over many media-generation providers.

    from providers import generate_video
    from schemas import VideoGenerationConfig, MockConfig

    config = VideoGenerationConfig(provider="fal", model="fal-ai/veo3", mock=MockConfig())
    response = generate_video(config, prompt="a red fox in fresh snow", duration_seconds=4)

Everything is imported lazily, so ``import providers`` stays cheap; built-in provider
modules load on first use. Beam is never imported here.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "generate_video": "providers.api",
    "generate_video_async": "providers.api",
    "generate_image": "providers.api",
    "generate_image_async": "providers.api",
    "generate_tts": "providers.api",
    "generate_tts_async": "providers.api",
    "generate_sts": "providers.api",
    "generate_sts_async": "providers.api",
    "register_provider": "providers.registry",
    "get_provider": "providers.registry",
    "known_providers": "providers.registry",
    "UnknownProviderError": "providers.registry",
    "get_provider_capabilities": "providers.registry",
    "ProviderHandler": "providers.core.base",
    "JobProvider": "providers.core.base",
    "RetryPolicy": "providers.core.orchestrator",
    "ModelCapabilities": "providers.core.capabilities",
    "Lifecycle": "providers.core.capabilities",
    "request_key": "providers.core.keys",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'providers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
