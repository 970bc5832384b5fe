"""ReadPrompts' row parsing: columns onto requests, ids, config choice, and invalid rows
that say exactly what is wrong where."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq

from schemas import DEFAULT_JOB, JobConfig
from transforms.read import input_format_of, parse_record, read_rows

TTS_JOB = JobConfig(modality="tts", configs=[{"name": "speech", "provider": "mock", "model": "m"}])
TWO_CONFIGS = JobConfig(configs=[{"name": "main", "provider": "mock", "model": "a"}, {"name": "alt", "provider": "mock", "model": "b"}])


def test_columns_map_onto_the_request_and_unknown_columns_become_extra_params():
    row = parse_record({"id": 7, "prompt": "a fox", "duration_seconds": 4, "camera": "dolly", "style": None}, "f:1", "f-1", DEFAULT_JOB)
    request = json.loads(row.request_json)
    assert row.row_id == "7" and row.is_valid and row.prompt == "a fox" and len(row.key) == 32
    assert request["duration_seconds"] == 4 and request["extra_params"] == {"camera": "dolly"}


def test_the_config_column_picks_a_config_and_changes_the_key():
    main = parse_record({"prompt": "x"}, "f:1", "f-1", TWO_CONFIGS)
    alt = parse_record({"prompt": "x", "config": "alt"}, "f:2", "f-2", TWO_CONFIGS)
    assert (main.config_name, alt.config_name) == ("main", "alt") and main.key != alt.key


def test_tts_rows_use_text_and_voice():
    row = parse_record({"text": "Hello", "voice_id": "v", "output_format": {"format": "wav"}}, "f:1", "f-1", TTS_JOB)
    assert row.is_valid and row.prompt == "Hello" and json.loads(row.request_json)["voice_id"] == "v"


def test_invalid_rows_name_source_field_and_value():
    cases = [
        ({"prompt": "x", "aspect_ratio": "2:1"}, "f:3: aspect_ratio: Input should be '16:9', '9:16', '1:1', '4:3' or '21:9' (got '2:1')"),
        ({"prompt": "x", "number_of_videos": "many"}, "f:3: number_of_videos: Input should be a valid integer"),
        ({"prompt": "   "}, "f:3: prompt: Value error, must not be empty"),
        (["not", "an", "object"], "f:3: a row must be a JSON object, got list"),
    ]
    for record, expected in cases:
        row = parse_record(record, "f:3", "f-3", DEFAULT_JOB)
        assert not row.is_valid and row.error.startswith(expected), row.error


def test_jsonl_files_gzip_and_blank_lines(tmp_path):
    path = tmp_path / "prompts.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"prompt": "one"}\n\n{"prompt": "two"}\n{broken\n')
    rows = list(read_rows(str(path), DEFAULT_JOB))
    assert [r.row_id for r in rows] == ["prompts-000001", "prompts-000003", "prompts-000004"]
    assert [r.is_valid for r in rows] == [True, True, False] and "prompts.jsonl.gz:4: not valid JSON" in rows[2].error


def test_parquet_rows_are_numbered_and_nulls_are_absent(tmp_path):
    pq.write_table(pa.table({"prompt": ["a", None], "seed": [1, None]}), tmp_path / "p.parquet")
    rows = list(read_rows(str(tmp_path / "p.parquet"), DEFAULT_JOB))
    assert rows[0].is_valid and json.loads(rows[0].request_json)["seed"] == 1
    assert not rows[1].is_valid and "p.parquet row 2: prompt: required field is missing" in rows[1].error


def test_format_comes_from_the_extension_or_the_option():
    assert input_format_of("gs://b/x.parquet", None) == "parquet" and input_format_of("x.jsonl.gz", None) == "jsonl"
    assert input_format_of("x.data", "parquet") == "parquet"
    try:
        input_format_of("x.csv", None)
    except ValueError as exc:
        assert "--input_format" in str(exc)
    else:
        raise AssertionError("csv was accepted")


def test_inputs_are_a_file_a_glob_or_a_folder(tmp_path):
    from transforms.storage import expand_inputs

    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.parquet").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not input")
    assert expand_inputs(str(tmp_path / "a.jsonl")) == [str(tmp_path / "a.jsonl")]
    assert expand_inputs(str(tmp_path / "*.jsonl")) == [str(tmp_path / "a.jsonl")]
    assert expand_inputs(str(tmp_path)) == [str(tmp_path / "a.jsonl"), str(tmp_path / "sub" / "b.parquet")]
    assert expand_inputs(str(tmp_path / "missing.jsonl")) == []
