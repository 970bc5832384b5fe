"""The README tells the truth: its quick start runs offline and its provider table is
the one the code generates."""

import re
from pathlib import Path

from providers.catalog import markdown_table, with_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_provider_table_is_generated_from_the_code():
    text = README.read_text()
    assert with_table(text) == text, "run: python -m providers.catalog --write README.md"
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
