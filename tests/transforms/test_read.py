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


# -- bad input costs only itself ------------------------------------------------------------

from transforms import read as read_module  # noqa: E402
from transforms.read import PromptRow, ReadPrompts, RowIds, duplicate_id_count, duplicate_report  # noqa: E402

STS_JOB = JobConfig(modality="sts", configs=[{"provider": "mock", "model": "m"}])


def test_bad_bytes_lines_and_nesting_become_invalid_rows_and_the_rest_goes_on(tmp_path):
    deep = "[" * 300 + "]" * 300
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"prompt": "bom"}\n'
                     + b'{"prompt": "caf\xe9"}\n'
                     + b'{"prompt": "nul\x00"}\n'
                     + ('{"prompt": "deep", "x": ' + deep + "}\n").encode()
                     + b'{"prompt": "last"}\n')
    rows = list(read_rows(str(path), DEFAULT_JOB))
    assert [r.is_valid for r in rows] == [True, False, False, False, True]
    assert rows[0].prompt == "bom" and rows[4].prompt == "last"
    assert rows[1].error == f"{path}:2: not valid UTF-8 (byte 0xe9 at byte 16 of the line)"
    assert rows[2].error == f"{path}:3: contains a NUL character (column 16)"
    assert rows[3].error == f"{path}:4: nested deeper than 32 levels"


def test_an_over_long_line_is_refused_and_reading_resumes_after_it(tmp_path, monkeypatch):
    monkeypatch.setattr(read_module, "MAX_LINE_BYTES", 64)
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "' + "x" * 500 + '"}\n{"prompt": "next"}\n')
    rows = list(read_rows(str(path), DEFAULT_JOB))
    assert rows[0].error == f"{path}:1: line longer than 64 bytes" and rows[1].prompt == "next" and rows[1].is_valid


def test_a_file_that_breaks_off_keeps_its_good_lines(tmp_path):
    good = gzip.compress(b'{"prompt": "one"}\n{"prompt": "two"}\n' * 50)
    path = tmp_path / "p.jsonl.gz"
    path.write_bytes(good[: len(good) - 12])  # truncated gzip stream
    rows = list(read_rows(str(path), DEFAULT_JOB))
    assert rows[-1].source == str(path) and "cannot read the file after line" in rows[-1].error
    assert all(r.is_valid for r in rows[:-1]) and len(rows) > 1


def test_a_corrupt_parquet_file_is_one_invalid_row_naming_it(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 not really")
    (row,) = read_rows(str(path), DEFAULT_JOB)
    assert row.source == str(path) and row.error.startswith(f"{path}: not a readable Parquet file: ")


def test_a_corrupt_row_group_costs_its_rows_only(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": [f"p{i}" for i in range(6)]}), path, row_group_size=2, compression="none")
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata.row_group(1).column(0)
    start = meta.dictionary_page_offset or meta.data_page_offset
    data[start:start + meta.total_compressed_size] = b"\xff" * meta.total_compressed_size
    path.write_bytes(bytes(data))
    rows = list(read_rows(str(path), DEFAULT_JOB))
    assert [r.is_valid for r in rows] == [True, True, False, False, True, True]
    assert "row group 1 cannot be read" in rows[2].error and rows[2].source == f"{path} row 3"


def test_row_media_outside_the_policy_makes_the_row_invalid_when_read():
    row = parse_record({"audio": "file:///proc/self/environ", "voice_id": "v"}, "f:1", "f-1", STS_JOB)
    assert not row.is_valid and row.error.startswith("f:1: audio: 'file:///proc/self/environ' is a local path")
    job = JobConfig(modality="sts", configs=[{"provider": "mock", "model": "m"}], inputs={"media_roots": ["/proc/self/"]})
    assert parse_record({"audio": "/proc/self/environ", "voice_id": "v"}, "f:1", "f-1", job).is_valid


def _row(row_id, source, index):
    return PromptRow(row_id=row_id, source=source, modality="video", config_name=None, prompt="p",
                     position=(source.split(":")[0], index))


def _resolved_in_input_order(rows, strict=False):
    sources = {r.position: r.source for r in rows}
    ids = RowIds(strict, lambda uri, index: sources[(uri, index)])
    return [ids.resolve(r) for r in sorted(rows, key=lambda r: r.position)]


def test_duplicate_ids_are_renamed_in_input_order_or_refused_when_strict():
    rows = [_row("a", "g:1", 1), _row("a", "f:9", 9), _row("a", "f:10", 10)]
    renamed = _resolved_in_input_order(rows)
    assert [(r.row_id, r.source, r.duplicate_of) for r in renamed] == [
        ("a", "f:9", None), ("a~2", "f:10", "a"), ("a~3", "g:1", "a")]
    assert duplicate_report(renamed) == (2, ["'a' at f:10", "'a' at g:1"])
    strict = _resolved_in_input_order(rows, strict=True)
    assert [r.is_valid for r in strict] == [True, False, False]
    assert strict[1].error == "f:10: id: row id 'a' is already used by f:9 (ids must be unique)"


def test_default_ids_of_two_prompts_files_in_different_folders_are_made_unique(tmp_path):
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    files = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        files.append(str(tmp_path / folder / "prompts.jsonl"))
        (tmp_path / folder / "prompts.jsonl").write_text('{"prompt": "x"}\n')
    pipeline = TestPipeline(runner="FnApiRunner")
    ids = pipeline | ReadPrompts(files, DEFAULT_JOB) | beam.Map(lambda r: (r.row_id, r.duplicate_of))
    assert_that(ids, equal_to([("prompts-000001", None), ("prompts-000001~2", "prompts-000001")]))
    result = pipeline.run()
    result.wait_until_finish()
    assert duplicate_id_count(result) == 1
