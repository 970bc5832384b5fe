"""Every example job file in examples/ is a valid job whose configs build."""

from pathlib import Path

import pytest

from pipelines.job_file import load_job

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.yaml"))


def test_there_is_an_example_per_provider():
    names = {path.stem for path in EXAMPLES}
    for provider in ("fal", "openai", "azure_openai", "runway", "google", "replicate", "stability", "xai",
                     "elevenlabs", "cartesia", "sarvam", "hume"):
        assert provider in names, provider


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_job_file_loads_and_builds(path):
    job = load_job(str(path))
    for entry in job.configs:
        config = entry.build(job.modality, lambda e: "key-from-" + (e.api_key_env or e.secret or "none"))
        assert config.provider and config.model
