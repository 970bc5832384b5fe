"""Rows stream from the reader through Generate into result parts: no GroupByKey, and a
Reshuffle only where a runner has several workers to spread the rows over. Rows repeating a request still share one generation when they
meet in one bundle, in different bundles, in different DoFn instances of one worker, or
in different runs, and each input row still lands exactly once in the table."""

from __future__ import annotations

import argparse
import json
import uuid
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.internal import pickler

from pipelines.graph import build_graph
from schemas import JobConfig
from tests.pipelines.conftest import manifest, rows_by_id, run_pipeline, write_job, write_jsonl
from transforms.generate import GenerateDoFn
from transforms.read import read_rows
from transforms.store_counts import STORE_COUNTS

JOB = {"modality": "image", "configs": [{"name": "m", "provider": "counting", "model": "mock-image"}]}


def prompt_rows(tmp_path, prompts: list[str]) -> list:
    """Parsed ``PromptRow`` elements, as ReadPrompts makes them."""
    path = write_jsonl(tmp_path / f"rows-{uuid.uuid4().hex[:6]}.jsonl",
                       [{"id": f"r{i}", "prompt": p, "size": "64x64"} for i, p in enumerate(prompts)])
    return list(read_rows(str(path), JobConfig.model_validate(JOB)))


def run_bundles(dofn: GenerateDoFn, bundles: list[list]) -> list:
    """Drive ``dofn`` as a runner does: one start/finish per bundle; every row it emits."""
    made = []
    for bundle in bundles:
        dofn.start_bundle()
        for row in bundle:
            made.extend(dofn.process(row))
        made.extend(value.value for value in dofn.finish_bundle())
    return made


def test_the_graph_has_no_shuffle_between_reading_and_the_results(tmp_path):
    labels = graph_labels(tmp_path)
    shuffles = [label for label in labels if any(word in label for word in ("GroupByKey", "Reshuffle"))
                and not label.startswith(("ReadPrompts/", "WriteResults/CollectShards"))]
    assert shuffles == []
    assert "Generate" in labels and "WriteResults/WriteShards" in labels


def graph_labels(tmp_path, **options) -> list[str]:
    """Every transform label of the graph ``build_graph`` makes with these options, composites included."""
    args = argparse.Namespace(input_format=None, storage_options=None, strict_ids=False, limit=None, workers=1,
                              lease_seconds=300.0, resubmit_uncertain=False, regenerate=None, output=str(tmp_path),
                              results_mode="replace", **options)
    pipeline = beam.Pipeline()
    build_graph(pipeline, args, JobConfig.model_validate(JOB), [str(tmp_path / "p.jsonl")], "run", None)
    labels: list[str] = []

    class Labels(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            labels.append(node.full_label)

        def visit_transform(self, node):
            labels.append(node.full_label)

    pipeline.visit(Labels())
    return labels


@pytest.mark.parametrize("options, spread", [
    ({}, False),
    ({"runner": "DirectRunner", "direct_running_mode": "in_memory", "direct_num_workers": 1}, False),
    ({"runner": "DirectRunner", "direct_running_mode": "multi_processing", "direct_num_workers": 1}, True),
    ({"runner": None, "direct_running_mode": "multi_threading", "direct_num_workers": 2}, True),
    ({"runner": "PortableRunner"}, True),
    ({"runner": "DataflowRunner"}, True),
    ({"runner": "apache_beam.runners.dataflow.dataflow_runner.DataflowRunner"}, True),
    ({"runner": "DataflowRunner", "reshuffle_rows": "off"}, False),
    ({"runner": "DirectRunner", "reshuffle_rows": "on"}, True),
    ({"runner": "PortableRunner", "reshuffle_rows": "auto"}, True),
])
def test_rows_are_reshuffled_only_where_there_are_workers_to_spread_them_over(tmp_path, options, spread):
    labels = graph_labels(tmp_path, **options)
    reshuffled = [label for label in labels if label.startswith("SpreadRows/")]
    assert bool(reshuffled) is spread
    if spread:  # right after the reader, before anything that generates
        assert labels.index(reshuffled[-1]) < min(i for i, label in enumerate(labels) if label.startswith("Generate"))


def test_reshuffle_rows_is_a_command_line_option():
    from pipelines.options import UsageError, parse_command_line

    assert parse_command_line(["--input", "i", "--output", "o"]).reshuffle_rows == "auto"
    assert parse_command_line(["--input", "i", "--output", "o", "--reshuffle_rows=off"]).reshuffle_rows == "off"
    with pytest.raises(UsageError, match="reshuffle_rows"):
        parse_command_line(["--input", "i", "--output", "o", "--reshuffle_rows", "maybe"])


def test_duplicates_in_one_bundle_and_in_later_bundles_are_paid_once(tmp_path, counting_provider):
    rows = prompt_rows(tmp_path, ["fox", "fox", "owl", "fox", "owl"])
    dofn = GenerateDoFn(JobConfig.model_validate(JOB), str(tmp_path / "out"), "run-1")
    dofn.setup()
    try:
        made = run_bundles(dofn, [rows[:3], rows[3:]])
    finally:
        dofn.teardown()
    assert sorted(r.row_id for r in made) == [f"r{i}" for i in range(5)]
    assert counting_provider.submits == 2
    by_id = {r.row_id: r for r in made}
    assert [by_id[f"r{i}"].reused for i in range(5)] == [False, True, False, True, True]
    assert {by_id[i].media[0].uri for i in ("r0", "r1", "r3")} == {by_id["r0"].media[0].uri}
    assert [by_id[f"r{i}"].status for i in range(5)] == ["completed"] * 5
    # the generation is paid once: only the first row of a request carries its cost
    assert [by_id[f"r{i}"].cost_source for i in range(5)] == ["unknown", "none", "unknown", "none", "none"]


def test_duplicates_in_two_instances_of_one_worker_share_one_generation(tmp_path, counting_provider):
    rows = prompt_rows(tmp_path, ["heron"] * 4)
    template = GenerateDoFn(JobConfig.model_validate(JOB), str(tmp_path / "out"), "run-2")
    first, second = (pickler.loads(pickler.dumps(template)) for _ in range(2))  # as a runner's worker threads
    first.setup()
    second.setup()
    try:
        first.start_bundle()
        second.start_bundle()
        made = [*first.process(rows[0]), *second.process(rows[1]), *first.process(rows[2]), *second.process(rows[3])]
        made += [v.value for v in first.finish_bundle()] + [v.value for v in second.finish_bundle()]
    finally:
        first.teardown()
        second.teardown()
    assert counting_provider.submits == 1
    assert sorted(r.row_id for r in made) == ["r0", "r1", "r2", "r3"]
    assert sorted(r.reused for r in made) == [False, True, True, True]
    assert len({r.media[0].uri for r in made}) == 1


def test_a_multi_threaded_run_with_repeated_requests_pays_once_per_request(tmp_path, counting_provider):
    STORE_COUNTS.take()  # requests of earlier tests in this process
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"r{i}", "prompt": f"p{i % 5}", "size": "64x64"} for i in range(40)])
    job = write_job(tmp_path / "job.yaml", JOB)
    output = tmp_path / "out"
    assert run_pipeline("--input", prompts, "--output", output, "--config", job,
                        "--direct_running_mode=multi_threading", "--direct_num_workers=2") == 0
    rows = rows_by_id(output)
    assert sorted(rows) == sorted(f"r{i}" for i in range(40))
    assert counting_provider.submits == 5
    assert sum(r["reused"] for r in rows.values()) == 35
    run = manifest(output)
    assert run["rows"] == 40 and run["reused"] == 35
    assert run["ledger_index_records"] == 5
    # Per new request: a claim (then its job record), the media and a done record; per run one
    # table and one index; the parts they were merged from are gone.
    left = Counter(p.relative_to(output).parts[0] + "/" + p.suffix for p in output.rglob("*") if p.is_file()
                   and p.parts[-2] != "_runs" and "gallery" not in p.parts)
    assert left == {"_ledger/.json": 10, "_ledger/.parquet": 1, "media/.png": 5, "results/.parquet": 1}
    # The claims are create-only writes; each request's job record, media (answered in memory)
    # and done record are plain writes.
    assert run["store"]["by_method"]["create_only"] == 5 and run["store"]["by_method"]["write_bytes"] >= 15

    # The rerun reads the index once instead of each key's record.
    assert run_pipeline("--input", prompts, "--output", output, "--config", job) == 0
    rerun = manifest(output)
    assert rerun["reused"] == 40 and counting_provider.submits == 5
    assert rerun["store"]["by_method"].get("read_bytes", 0) == 0
    assert rerun["store"]["by_method"].get("exists", 0) == 0
    assert json.loads(json.dumps(rerun["store"]))["requests_per_row"] < 1


@pytest.mark.parametrize("options, shares", [
    ({"workers": 1}, 1),
    ({"workers": 3}, 3),
    ({"workers": 1, "direct_running_mode": "multi_processing", "direct_num_workers": 2}, 2),
    ({"workers": 4, "direct_running_mode": "multi_processing", "direct_num_workers": 2}, 4),
    ({"workers": 1, "direct_running_mode": "in_memory", "direct_num_workers": 2}, 1),
])
def test_the_limits_are_shared_by_every_process_that_runs_the_generate_step(options, shares):
    """Two multi_processing workers without --workers would each take the whole budget."""
    from pipelines.graph import limit_shares

    assert limit_shares(argparse.Namespace(**options)) == shares
