"""Row ids made unique in ONE ordered pass over the run's files (``read_run``, ``RowIds``):
no grouping of rows, a digest per id held, rows streaming out as they are read."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas import DEFAULT_JOB
from transforms import read as read_module
from transforms.read import (MAX_EXAMPLES, DigestTable, PromptRow, ReadPrompts, RowIds, duplicate_id_count, id_digest,
                             read_run)


def write_rows(path: Path, ids: list[str]) -> str:
    path.write_text("".join(json.dumps({"id": i, "prompt": f"{path.stem} {n}"}) + "\n" for n, i in enumerate(ids)))
    return str(path)


def three_files(tmp_path: Path) -> list[str]:
    """a, b and c are repeated across three files; the later files' rows come later."""
    return [write_rows(tmp_path / "one.jsonl", ["a", "b"]),
            write_rows(tmp_path / "two.jsonl", ["b", "c", "a"]),
            write_rows(tmp_path / "three.jsonl", ["a", "c", "d"])]


def test_repeats_across_three_files_are_renamed_in_the_order_the_files_are_given(tmp_path):
    files = three_files(tmp_path)
    rows = list(read_run(files, DEFAULT_JOB))
    assert [(r.row_id, r.duplicate_of, r.source) for r in rows] == [
        ("a", None, f"{files[0]}:1"), ("b", None, f"{files[0]}:2"),
        ("b~2", "b", f"{files[1]}:1"), ("c", None, f"{files[1]}:2"), ("a~2", "a", f"{files[1]}:3"),
        ("a~3", "a", f"{files[2]}:1"), ("c~2", "c", f"{files[2]}:2"), ("d", None, f"{files[2]}:3")]
    assert all(r.is_valid for r in rows)
    # the same files in another order: the first file given keeps the ids
    again = {r.source: r.row_id for r in read_run(list(reversed(files)), DEFAULT_JOB)}
    assert again[f"{files[2]}:1"] == "a" and again[f"{files[0]}:1"] == "a~3"


def test_strict_ids_refuse_the_repeats_naming_where_the_id_was_first_used(tmp_path):
    files = three_files(tmp_path)
    rows = list(read_run(files, DEFAULT_JOB, strict_ids=True))
    assert [r.row_id for r in rows] == ["a", "b", "b", "c", "a", "a", "c", "d"]
    assert [r.is_valid for r in rows] == [True, True, False, True, False, False, False, True]
    assert rows[5].duplicate_of == "a"
    assert rows[5].error == f"{files[2]}:1: id: row id 'a' is already used by {files[0]}:1 (ids must be unique)"
    parquet = tmp_path / "four.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["x", "d"], "prompt": ["p", "q"]}), parquet)
    last = list(read_run([str(parquet), files[2]], DEFAULT_JOB, strict_ids=True))[-1]
    assert last.error == f"{files[2]}:3: id: row id 'd' is already used by {parquet} row 2 (ids must be unique)"


def test_a_rename_never_takes_an_id_some_row_already_has(tmp_path):
    path = write_rows(tmp_path / "p.jsonl", ["a", "a~2", "a", "a~3", "a"])
    assert [r.row_id for r in read_run([path], DEFAULT_JOB)] == ["a", "a~2", "a~3", "a~3~2", "a~4"]


def test_reading_makes_ids_unique_without_grouping_rows(tmp_path):
    """The one pass does it: ReadPrompts has no GroupByKey, and on a runner its output is the pass's."""
    files = three_files(tmp_path)
    pipeline = BeamPipeline(runner="FnApiRunner")
    ids = pipeline | ReadPrompts(files, DEFAULT_JOB) | beam.Map(lambda r: (r.row_id, r.duplicate_of))
    assert_that(ids, equal_to([(r.row_id, r.duplicate_of) for r in read_run(files, DEFAULT_JOB)]))
    labels: list[str] = []

    class Labels(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            labels.append(node.full_label)

    pipeline.visit(Labels())
    read_steps = [label for label in labels if label.startswith("ReadPrompts/")]
    assert read_steps and not [label for label in read_steps if "GroupByKey" in label or "Reshuffle" in label]
    result = pipeline.run()
    result.wait_until_finish()
    assert duplicate_id_count(result) == 4


def test_without_the_tracker_the_repeats_would_pass_through(tmp_path, monkeypatch):
    files = three_files(tmp_path)
    monkeypatch.setattr(RowIds, "resolve", lambda self, row: row)
    assert [r.row_id for r in read_run(files, DEFAULT_JOB)] == ["a", "b", "b", "c", "a", "a", "c", "d"]


def test_rows_stream_out_before_the_next_file_is_opened(tmp_path, monkeypatch):
    files = three_files(tmp_path)
    opened: list[str] = []
    real_open = read_module.open_input
    monkeypatch.setattr(read_module, "open_input", lambda uri, *a, **k: opened.append(uri) or real_open(uri, *a, **k))
    rows = read_run(files, DEFAULT_JOB)
    assert next(rows).row_id == "a" and opened == [files[0]]
    assert len(list(rows)) == 7 and opened == files


def test_limit_stops_the_pass_at_the_nth_valid_row(tmp_path, monkeypatch):
    files = three_files(tmp_path)
    opened: list[str] = []
    real_open = read_module.open_input
    monkeypatch.setattr(read_module, "open_input", lambda uri, *a, **k: opened.append(uri) or real_open(uri, *a, **k))
    rows = list(read_run(files, DEFAULT_JOB, strict_ids=True, limit=3))
    # strict repeats are invalid and do not count: up to the 3rd valid row (c), which is in file two
    assert [(r.row_id, r.is_valid) for r in rows] == [("a", True), ("b", True), ("b", False), ("c", True)]
    assert opened == files[:2]


def test_warnings_are_bounded_and_every_repeat_is_counted(tmp_path, caplog):
    path = write_rows(tmp_path / "p.jsonl", ["same"] * 50)
    with caplog.at_level(logging.WARNING, logger="transforms.read"):
        rows = list(read_run([path], DEFAULT_JOB))
    assert len({r.row_id for r in rows}) == 50
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == MAX_EXAMPLES + 1
    assert warnings[0] == f"row id 'same' at {path}:2 was already used by {path}:1; renamed same~2"
    assert warnings[-1].startswith("49 rows repeated an earlier row's id in all (44 more than shown above)")


def test_the_tracker_holds_digests_not_rows_and_grows_in_place():
    ids = RowIds()
    for n in range(20_000):
        row = PromptRow(row_id=f"row-{n}", source=f"f:{n + 1}", modality="image", config_name=None, prompt="p",
                        position=("f", n + 1))
        assert ids.resolve(row) is row  # a new id: the row itself, untouched
    table = ids._seen
    assert len(table) == 20_000
    assert 16 * len(table._keys) <= 16 * 32_768  # two 8-byte arrays, at most 3/4 full
    repeat = ids.resolve(PromptRow(row_id="row-12345", source="g:1", modality="image", config_name=None, prompt="p",
                                   position=("g", 1)))
    assert (repeat.row_id, repeat.duplicate_of) == ("row-12345~2", "row-12345")
    assert ids.repeats == 1


def test_the_digest_table_finds_what_it_stored_and_nothing_else():
    table = DigestTable(capacity=4)
    digests = [id_digest(str(n)) for n in range(1000)]
    assert all(table.setdefault(d, n) is None for n, d in enumerate(digests))
    assert [table.setdefault(d, 0) for d in digests] == list(range(1000))
    assert table.setdefault(id_digest("1000"), 7) is None
    assert id_digest("x") != 0 and id_digest("x") == id_digest("x") != id_digest("y")


@pytest.mark.parametrize("strict", [False, True])
def test_dry_run_resolves_ids_with_the_same_pass(tmp_path, strict):
    from pipelines.dry_run import read_all_rows

    files = three_files(tmp_path)
    assert read_all_rows(files, DEFAULT_JOB, None, None, strict) == list(read_run(files, DEFAULT_JOB, strict_ids=strict))
