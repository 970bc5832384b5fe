"""The row coders: every field survives the round trip, and Beam picks them for typed rows."""

import apache_beam as beam
import pytest
from apache_beam.typehints import Tuple

from transforms.prompt_row import PromptRowCoder
from transforms.prompt_row import PromptRow

ROWS = [
    PromptRow(row_id="r1", source="prompts", modality="image", config_name="fast", prompt="a cat ✓ ünïcode 猫",
              request_json='{"prompt": "a cat", "size": "64x64"}', key="k" * 64, error=None,
              position=("in/prompts.jsonl", 12), duplicate_of="r1"),
    PromptRow(row_id="", source="", modality="video", config_name=None, prompt=None),
    PromptRow(row_id="bad", source="s", modality="tts", config_name=None, prompt="", error="no text: 'text' is empty",
              position=("x.parquet", 0)),
]


@pytest.mark.parametrize("row", ROWS)
def test_every_field_round_trips(row):
    coder = PromptRowCoder()
    decoded = coder.decode(coder.encode(row))
    assert decoded == row and type(decoded.position) is tuple


def test_encoding_is_deterministic_and_smaller_than_pickle():
    import pickle

    coder = PromptRowCoder()
    assert coder.is_deterministic() and coder.encode(ROWS[0]) == coder.encode(ROWS[0])
    assert len(coder.encode(ROWS[0])) < len(pickle.dumps(ROWS[0]))


def test_beam_uses_it_for_prompt_rows_and_keyed_prompt_rows():
    registry = beam.coders.registry
    assert isinstance(registry.get_coder(PromptRow), PromptRowCoder)
    keyed = registry.get_coder(Tuple[str, PromptRow])
    assert isinstance(keyed.coders()[1], PromptRowCoder)


def test_the_read_transform_types_its_rows(tmp_path):
    import json

    from schemas import JobConfig
    from transforms.read import ReadPrompts

    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "a", "prompt": "x"}) + "\n")
    job = JobConfig.model_validate({"modality": "image", "configs": [{"name": "c", "provider": "mock", "model": "m"}]})
    rows = beam.Pipeline() | ReadPrompts([str(tmp_path / "p.jsonl")], job)
    assert rows.element_type is PromptRow
