"""The README tells the truth: its quick start runs offline and its provider table is
the one the code generates."""

import re
from pathlib import Path

from providers.core.catalog import markdown_table, with_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_provider_table_is_generated_from_the_code():
    text = README.read_text()
    assert with_table(text) == text, "run: python -m providers.core.catalog --write README.md"
    assert "`fal` | `fal-ai/veo3" in markdown_table() and "`sarvam` | `bulbul:v3`" in markdown_table()


def test_sdk_quick_start_runs_offline(tmp_path, monkeypatch):
    code = re.search(r"## SDK quick start.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README quick start", "exec"), {})
    assert (tmp_path / "fox.mp4").stat().st_size > 1000


def test_readme_starts_with_the_two_commands_ci_runs():
    head = README.read_text().split("## Contents")[0]
    assert "./run_local.sh" in head and "./run_tests.sh" in head
    assert "./run_tests.sh" in (README.parent / ".ci" / "run").read_text()


def test_the_annotated_job_config_in_the_readme_is_valid():
    import yaml

    from pipelines.job_file import parse_job

    block = re.search(r"## Job config.*?```yaml\n(.*?)```", README.read_text(), re.S).group(1)
    job = parse_job(yaml.safe_load(block), "README.md")
    assert job.config_names == ["main", "preview"] and job.entry("preview").is_mocked
    assert job.limits["fal"].max_in_flight == 40 and job.window.max_in_flight == 100


def test_the_limits_examples_in_the_readme_are_valid():
    import yaml

    from schemas import ProviderLimits
    from schemas.job import GlobalRateLimit

    section = README.read_text().split("## Performance and limits")[1].split("## Development")[0]
    limits_block, global_block = re.findall(r"```yaml\n(.*?)```", section, re.S)
    parsed = yaml.safe_load(limits_block)
    assert all(ProviderLimits.model_validate(v) for v in parsed["limits"].values())
    GlobalRateLimit.model_validate(yaml.safe_load(global_block)["global_rate_limit"])
