"""The provider registry: the one piece of process-wide mutable state.

Built-in providers are named here and imported on first use, so ``import providers``
stays cheap. ``register_provider`` adds or replaces a handler at runtime.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from providers.core.capabilities import ModelCapabilities
from providers.errors import MediagenError

BUILTIN_PROVIDERS: dict[str, str] = {
    "fal": "providers.builtin.fal:FalProvider",
    "openai": "providers.builtin.openai:OpenAIProvider",
    "azure-openai": "providers.builtin.azure_openai:AzureOpenAIProvider",
    "runway": "providers.builtin.runway:RunwayProvider",
    "google": "providers.builtin.google:GoogleProvider",
    "replicate": "providers.builtin.replicate:ReplicateProvider",
    "stability": "providers.builtin.stability:StabilityProvider",
    "xai": "providers.builtin.xai:XAIProvider",
    "elevenlabs": "providers.builtin.elevenlabs:ElevenLabsProvider",
    "cartesia": "providers.builtin.cartesia:CartesiaProvider",
    "sarvam": "providers.builtin.sarvam:SarvamProvider",
    "hume": "providers.builtin.hume:HumeProvider",
    "mock": "providers.builtin.mock:MockProvider",
}

_handlers: dict[str, Any] = {}  # runtime registrations: they win over built-ins
_builtins: dict[str, Any] = {}  # built-in handlers, made on first use
_lock = threading.Lock()


class UnknownProviderError(MediagenError, ValueError):
    """A config names a provider that is neither built in nor registered.

    A :class:`MediagenError` like every SDK error; still a ``ValueError`` for callers
    written against earlier releases."""


def register_provider(name: str, handler: Any) -> None:
    """Add or replace the handler serving ``name`` (any object implementing ProviderHandler)."""
    if not name or not isinstance(name, str):
        raise ValueError(f"provider name must be a non-empty string, got {name!r}")
    with _lock:
        _handlers[name] = handler


def registrations() -> dict[str, Any]:
    """A copy of the runtime registrations, for :func:`restore_registrations`."""
    with _lock:
        return dict(_handlers)


def restore_registrations(saved: dict[str, Any]) -> None:
    """Make the runtime registrations exactly ``saved`` again (built-ins stay loaded)."""
    with _lock:
        _handlers.clear()
        _handlers.update(saved)


def known_providers() -> list[str]:
    """Every provider name a config may use."""
    with _lock:
        return sorted(set(BUILTIN_PROVIDERS) | set(_handlers))


def get_provider(name: str) -> Any:
    """The handler for ``name``, importing a built-in one on first use."""
    handler = _loaded(name)  # asked by every call of every row: no lock once loaded
    if handler is None:
        with _lock:
            handler = _loaded(name)
            if handler is None and name in BUILTIN_PROVIDERS:
                handler = _builtins[name] = _load_builtin(name)
    if handler is None:
        raise UnknownProviderError(
            f"unknown provider {name!r}; known providers: {', '.join(known_providers())}", provider=name
        )
    return handler


def _loaded(name: str) -> Any:
    """The handler registered for ``name`` at runtime, else its loaded built-in, else None."""
    handler = _handlers.get(name)
    return _builtins.get(name) if handler is None else handler


def _load_builtin(name: str) -> Any:
    module_name, _, class_name = BUILTIN_PROVIDERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise UnknownProviderError(f"provider {name!r} is not available in this installation", provider=name) from None
    return getattr(module, class_name)()


def handler_for(config: Any) -> Any:
    """The handler that serves ``config``: the mock when ``config.mock`` is enabled."""
    if config.mock is not None and config.mock.enabled:
        return get_provider("mock")
    return get_provider(config.provider)


def capabilities_for(provider: str, model: str) -> ModelCapabilities | None:
    """What a built-in provider's model accepts, or None for custom providers."""
    try:
        handler = get_provider(provider)
    except UnknownProviderError:
        return None
    capabilities = getattr(handler, "capabilities", None)
    if provider == "mock" or capabilities is None:
        return None
    return capabilities(model)


def get_provider_capabilities(provider: str, model: str) -> ModelCapabilities:
    """What ``model`` of a built-in ``provider`` accepts (durations, ratios, formats...)."""
    handler = get_provider(provider)
    capabilities = getattr(handler, "capabilities", None)
    if capabilities is None:
        raise UnknownProviderError(f"provider {provider!r} is a custom handler and does not describe its models")
    return capabilities(model)
