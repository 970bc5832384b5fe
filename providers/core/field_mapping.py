"""Declarative request -> payload mapping for the aggregators (fal, replicate, runway).

A model family's wire fields are a :class:`FieldMapping`: a table of :class:`Field` rows,
each naming the wire field, the request attribute it comes from, an optional transform
(our value -> the API's) and the endpoint modes it is sent on (``modes``: the
capability of the endpoint; ``None`` = every mode). Routing (which endpoint, which
image field per frame) stays in the provider; everything that is "this request value
goes to that field, converted so" lives in these tables.

New models are mapped at runtime, without editing a provider module::

    register_field_mapping("fal", "fal-ai/new-model/*", FieldMapping.of(
        Field("duration", "duration_seconds", seconds_suffix),
        Field("seed", "seed"),
    ))

A registered mapping wins over the provider's built-in family for every model its
pattern matches (an exact id, or ``prefix*``; the longest match wins).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from providers.core.capabilities import family_key, family_lookup

__all__ = [
    "OMIT",
    "REQUEST",
    "SPREAD",
    "Field",
    "FieldMapping",
    "family_key",
    "family_lookup",
    "field_mapping_registrations",
    "lookup",
    "register_field_mapping",
    "registered_field_mapping",
    "restore_field_mapping_registrations",
    "seconds_suffix",
    "unregister_field_mapping",
]

Transform = Callable[[Any], Any]


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
"""What a transform returns to send nothing for this value."""
REQUEST = ""
"""The :class:`Field` source that hands the transform the whole request."""
SPREAD = "*"
"""The :class:`Field` name whose value (a dict) is merged into the payload."""


@dataclass(frozen=True)
class Field:
    """One wire field: ``name`` on the wire, ``source`` the request attribute (dotted for
    nested ones, e.g. ``output_format.sample_rate``), ``transform`` our value -> the API's,
    ``modes`` the endpoint modes that accept it (``None``: all). The name ``"*"`` merges
    the (transformed) value, a dict, into the payload: one request value, several fields.
    A ``source`` of :data:`REQUEST` hands the transform the whole request (for fields
    made of several request values). An unset source takes ``default``; unset values
    (``None``, also as a transform's result) are never sent; nor are empty strings,
    unless ``send_empty``."""

    name: str
    source: str
    transform: Transform | None = None
    modes: frozenset[str] | None = None
    send_empty: bool = False
    default: Any = None

    def value(self, request: Any) -> Any:
        """The wire value for ``request``, or :data:`OMIT` (unset values are never sent)."""
        value: Any = request
        for part in self.source.split(".") if self.source != REQUEST else ():
            value = getattr(value, part, None)
            if value is None:
                value = self.default
                break
        if value is None:
            return OMIT
        if isinstance(value, str) and not value and not self.send_empty:
            return OMIT
        if self.transform is not None:
            value = self.transform(value)
        return OMIT if value is None else value


@dataclass(frozen=True)
class FieldMapping:
    """A model family's payload fields, plus (for APIs that name image inputs by role)
    ``images`` (role -> field) and ``image_lists`` (fields that take a list)."""

    fields: tuple[Field, ...] = ()
    images: Mapping[str, str] = field(default_factory=dict)
    image_lists: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *fields: Field, images: Mapping[str, str] | None = None,
           image_lists: Iterable[str] = ()) -> "FieldMapping":
        return cls(tuple(fields), dict(images or {}), frozenset(image_lists))

    def payload(self, request: Any, mode: str | None = None) -> dict[str, Any]:
        """The wire fields ``request`` sets, for an endpoint of ``mode``."""
        body: dict[str, Any] = {}
        for rule in self.fields:
            if rule.modes is not None and mode not in rule.modes:
                continue
            value = rule.value(request)
            if value is OMIT:
                continue
            if rule.name == SPREAD:
                body.update(value)
            else:
                body[rule.name] = value
        return body

    def sends(self, source: str, mode: str | None = None) -> bool:
        """Whether a set ``source`` is sent on an endpoint of ``mode``."""
        return any(rule.source == source and (rule.modes is None or mode in rule.modes) for rule in self.fields)

    def name_for(self, source: str) -> str | None:
        """The wire name ``source`` is sent as (None: the family has no such field)."""
        return next((rule.name for rule in self.fields if rule.source == source), None)

    def with_fields(self, *fields: Field, **changes: Any) -> "FieldMapping":
        """A copy where each of ``fields`` replaces the row with its source (or is added);
        ``changes`` replace ``images`` / ``image_lists``."""
        replaced = {rule.source: rule for rule in fields}
        rows = [replaced.pop(rule.source, rule) for rule in self.fields]
        return replace(self, fields=tuple(rows) + tuple(replaced.values()), **changes)

    def without(self, *sources: str) -> "FieldMapping":
        """A copy without the rows for ``sources``."""
        return replace(self, fields=tuple(rule for rule in self.fields if rule.source not in sources))


# -- transforms ---------------------------------------------------------------------------


def seconds_suffix(seconds: int) -> str:
    """``8`` -> ``"8s"``."""
    return f"{seconds}s"


def lookup(table: Mapping[Any, Any]) -> Transform:
    """A transform through ``table``; values not in it pass through unchanged."""
    return lambda value: table.get(value, value)


# -- runtime registration --------------------------------------------------------------------

_registered: dict[str, dict[str, FieldMapping]] = {}
_lock = threading.Lock()


def register_field_mapping(provider: str, pattern: str, mapping: FieldMapping) -> None:
    """Map the models ``pattern`` matches (an id, or ``prefix*``) on ``provider`` with
    ``mapping``, ahead of the provider's built-in families."""
    if not isinstance(mapping, FieldMapping):
        raise TypeError(f"mapping must be a FieldMapping, got {type(mapping).__name__}")
    if not pattern or pattern == "*":
        raise ValueError(f"pattern={pattern!r}: name a model id or a 'prefix*' family")
    with _lock:
        _registered.setdefault(provider, {})[pattern] = mapping


def unregister_field_mapping(provider: str, pattern: str) -> None:
    """Remove a registration (no error when there is none)."""
    with _lock:
        _registered.get(provider, {}).pop(pattern, None)


def field_mapping_registrations() -> dict[str, dict[str, FieldMapping]]:
    """A copy of every runtime registration, for :func:`restore_field_mapping_registrations`."""
    with _lock:
        return {provider: dict(table) for provider, table in _registered.items()}


def restore_field_mapping_registrations(saved: dict[str, dict[str, FieldMapping]]) -> None:
    """Make the runtime registrations exactly ``saved`` again."""
    with _lock:
        _registered.clear()
        _registered.update({provider: dict(table) for provider, table in saved.items()})


def registered_field_mapping(provider: str, model: str) -> FieldMapping | None:
    """The mapping registered for ``model`` on ``provider``, if any."""
    with _lock:
        table = dict(_registered.get(provider, {}))
    return family_lookup(table, model)
