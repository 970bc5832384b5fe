"""Request keys: a stable hash of what determines an output, secrets excluded.

The pipeline names media objects and ledger entries after this key, so the same
request under the same config is never paid for twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from schemas import Modality

KEY_VERSION = 1
OUTPUT_KEY_VERSION = 2
# Settings that change how long we wait, not what is made.
_NOT_OUTPUT_AFFECTING = {"api_key", "timeout", "max_poll_attempts", "poll_interval", "base_url"}


SECRET_LIKE = re.compile(r"token|secret|password|passwd|credential|api_?key|auth", re.IGNORECASE)


def is_secret_like(name: str) -> bool:
    """Whether a settings key probably holds a credential (e.g. provider_config.access_token)."""
    return bool(SECRET_LIKE.search(name))


def without_secrets(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with credential-like entries removed (short-lived tokens must not change keys)."""
    return {k: v for k, v in settings.items() if not is_secret_like(k)}


def config_fingerprint(config: Any) -> dict[str, Any]:
    """The parts of a config (and its fallbacks) that decide the output."""
    data = config.model_dump(mode="json", exclude=_NOT_OUTPUT_AFFECTING | {"fallback_configs"})
    data["provider_config"] = without_secrets(data.get("provider_config") or {})
    data["fallback_configs"] = [config_fingerprint(c) for c in config.fallback_configs or []]
    return data


WAIT_ONLY_PROVIDER_SETTINGS = frozenset({"wait", "webhook_url", "cancel_after", "enable_logging"})
"""provider_config entries that change how we wait or what the provider logs, not what it makes."""


def config_identity(config: Any, default_base_url: str | None = None) -> dict[str, Any]:
    """What one config contributes to its output: provider, model, endpoint, API version and
    the provider settings that change what is made. Secrets, timeouts, retries, limits and the
    rest of the fallback chain are left out, so changing them never re-pays; a different
    endpoint (another Azure resource, a proxy) or a mocked config makes a different output."""
    mock = getattr(config, "mock", None)
    settings = without_secrets(dict(config.provider_config or {}))
    return {
        "provider": config.provider,
        "model": config.model,
        "endpoint": (getattr(config, "base_url", None) or default_base_url or "").rstrip("/"),
        "api_version": getattr(config, "api_version", None),
        "provider_config": {k: v for k, v in settings.items() if k not in WAIT_ONLY_PROVIDER_SETTINGS},
        "mock": mock.model_dump(mode="json") if mock is not None and mock.enabled else None,
    }


def output_key(modality: Modality, request: Any, config: Any, default_base_url: str | None = None) -> str:
    """32 hex characters naming the output ``config`` alone makes for ``request``: the key of
    the pipeline's ledger entries and media objects."""
    return digest({
        "v": OUTPUT_KEY_VERSION,
        "modality": modality,
        "request": request_fingerprint(request),
        "config": config_identity(config, default_base_url),
    })


def request_fingerprint(request: Any) -> dict[str, Any]:
    return request.model_dump(mode="json")


def request_key(modality: Modality, request: Any, config: Any) -> str:
    """32 hex characters naming the output of ``request`` under ``config``."""
    payload = {
        "v": KEY_VERSION,
        "modality": modality,
        "request": request_fingerprint(request),
        "config": config_fingerprint(config),
    }
    return digest(payload)


def digest(payload: Any) -> str:
    """sha256 of the canonical JSON of ``payload``, first 32 hex characters."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
