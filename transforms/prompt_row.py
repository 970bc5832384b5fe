"""``PromptRow``: one input row on its way through the pipeline, and its Beam coder.

Pickling a ``PromptRow`` writes its class path and every field name with every
element; :class:`PromptRowCoder` writes the field values only, as a tuple through
Beam's compiled ``FastPrimitivesCoder``. It is registered for ``PromptRow`` when this
module is imported (it always is: this is where the class lives), so any PCollection
typed ``PromptRow`` (or a KV holding one) uses it on every runner: the coder travels in
the pipeline proto, pickled, and needs no registration on the workers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.coders import Coder, FastPrimitivesCoder

from schemas import Modality


@dataclass(frozen=True)
class PromptRow:
    """One input row: a valid request with its key, or the reason it is invalid."""

    row_id: str
    source: str
    modality: Modality
    config_name: str | None
    prompt: str | None
    request_json: str | None = None
    key: str | None = None
    error: str | None = None
    position: tuple[str, int] = ("", 0)
    """(input file, line or row number): the input order, for duplicate ids."""
    duplicate_of: str | None = None
    """Set when this row's id repeated an earlier row's: the id as the input gave it."""

    @property
    def is_valid(self) -> bool:
        return self.error is None


_PROMPT_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(PromptRow))


class PromptRowCoder(Coder):
    """``PromptRow`` <-> the tuple of its field values, in declaration order."""

    def __init__(self) -> None:
        self._values = FastPrimitivesCoder()

    def encode(self, row: PromptRow) -> bytes:
        return self._values.encode(tuple(getattr(row, name) for name in _PROMPT_ROW_FIELDS))

    def decode(self, encoded: bytes) -> PromptRow:
        values: Any = self._values.decode(encoded)
        row = PromptRow(*values)
        if not isinstance(row.position, tuple):  # keep the field's type whatever the tuple coding gives back
            object.__setattr__(row, "position", tuple(row.position))
        return row

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self) -> type:
        return PromptRow

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


beam.coders.registry.register_coder(PromptRow, PromptRowCoder)
