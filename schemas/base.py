"""Shared pydantic bases: immutable configs that hide their secrets, requests
that collect unknown keyword arguments into ``extra_params``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, field_serializer, field_validator, model_validator

REVEAL_SECRETS = "reveal_secrets"
"""Serialisation context key: ``model_dump(context={REVEAL_SECRETS: True})`` keeps API keys."""


class InvalidAPIKeyError(Exception):
    """An API key that cannot be sent as-is (inner whitespace or control characters).

    Deliberately not a ``ValueError``: pydantic would wrap that into a validation error
    that repeats the input, i.e. the key. The message never contains the key.
    """


def normalise_api_key(value: str | None, source: str = "the API key") -> str | None:
    """``value`` with surrounding whitespace stripped (mounted secrets end in a newline);
    ``None`` when nothing is left. A key with whitespace or control characters inside is
    refused with :class:`InvalidAPIKeyError` naming ``source``, never the value."""
    if value is None:
        return None
    key = value.strip()
    if not key:
        return None
    bad = next((ch for ch in key if ch.isspace() or not ch.isprintable()), None)
    if bad is not None:
        raise InvalidAPIKeyError(
            f"{source} contains {'whitespace' if bad.isspace() else 'a control character'} "
            f"({len(key)} characters, value not shown); check how the key was stored"
        )
    return key


class GenerationConfigBase(BaseModel):
    """Fields every generation config shares. Immutable: derive with ``model_copy(update=...)``.

    ``api_key`` is excluded from ``repr``/``str`` and serialised as ``None`` unless the
    caller asks for it with the :data:`REVEAL_SECRETS` context, so a dumped config never
    carries a key by accident.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    api_key: str | None = Field(default=None, repr=False)
    provider_config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("api_key", mode="before")
    @classmethod
    def _coerce_api_key(cls, value: Any) -> str | None:
        # Never fail validation on the key: a validation error would echo its value.
        if value is None:
            return None
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        return normalise_api_key(str(value), "config.api_key")

    @field_serializer("api_key")
    def _hide_api_key(self, value: str | None, info: SerializationInfo) -> str | None:
        context = info.context or {}
        return value if context.get(REVEAL_SECRETS) else None


class GenerationRequestBase(BaseModel):
    """Requests keep unknown keyword arguments in ``extra_params`` instead of failing."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, ser_json_bytes="base64", val_json_bytes="base64")

    extra_params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_extra_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields)
        unknown = {k: v for k, v in data.items() if k not in known}
        if not unknown:
            return data
        kept = {k: v for k, v in data.items() if k in known}
        kept["extra_params"] = {**(data.get("extra_params") or {}), **unknown}
        return kept
