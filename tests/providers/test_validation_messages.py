"""One formatter for invalid input: field path, message and value, secrets masked."""

import pydantic
import pytest

from providers.core.redaction import describe_validation_error


class Entry(pydantic.BaseModel, extra="forbid"):
    model: str
    timeout: float = pydantic.Field(default=60, gt=0)
    api_key: str | None = None
    api_key_env: str | None = None


class Job(pydantic.BaseModel):
    configs: list[Entry]
    note: str = pydantic.Field(default="", max_length=3)


def message(data, **kwargs):
    with pytest.raises(pydantic.ValidationError) as caught:
        Job.model_validate(data)
    return describe_validation_error(caught.value, **kwargs)


def test_names_the_path_the_problem_and_the_value():
    assert message({"configs": [{"model": "m", "timeout": -5}]}) == (
        "configs[0].timeout: Input should be greater than 0 (got -5)"
    )
    assert message({"configs": [{}]}) == "configs[0].model: required field is missing"
    assert message({"configs": [{"model": "m", "colour": "red"}]}) == (
        "configs[0].colour: Extra inputs are not permitted (got 'red')"
    )


def test_masks_secret_named_values_but_not_key_sources_and_bounds_long_values():
    text = message({"configs": [{"model": "m", "api_key": 5, "api_key_env": 7}], "note": "x" * 500})
    assert "(got ***)" in text and "5" not in text.split("api_key:")[1].split(";")[0]
    assert "configs[0].api_key_env: Input should be a valid string (got 7)" in text
    assert f"note: String should have at most 3 characters (got '{'x' * 119}..." in text and "x" * 130 not in text


def test_root_names_a_problem_with_the_whole_input():
    with pytest.raises(pydantic.ValidationError) as caught:
        Job.model_validate([1])
    assert describe_validation_error(caught.value, root="row").startswith("row: ")
