"""Job files: YAML or JSON, validated, errors naming the file, the field and the value;
API keys are never accepted in them."""

import pytest

from pipelines.job_file import JobFileError, load_job, parse_job

SECRET = "sk-live-abcdef123456"


def test_a_complete_job_file_loads(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("""
modality: video
configs:
  - name: main
    provider: fal
    model: fal-ai/veo3
    api_key_env: FAL_KEY
    timeout: 900
    fallback_configs:
      - {provider: runway, model: gen4_turbo, api_key_env: RUNWAYML_API_SECRET}
  - name: preview
    provider: fal
    model: fal-ai/veo3
    mock: {enabled: true}
limits:
  fal: {max_in_flight: 40, submits_per_second: 4}
""")
    job = load_job(str(path))
    assert job.config_names == ["main", "preview"] and job.limits["fal"].max_in_flight == 40
    config = job.entry("main").build("video", lambda entry: f"key-for-{entry.api_key_env}")
    assert config.timeout == 900 and config.api_key == "key-for-FAL_KEY"
    assert config.fallback_configs[0].api_key == "key-for-RUNWAYML_API_SECRET"
    assert job.entry(None).name == "main" and job.entry("preview").is_mocked


@pytest.mark.parametrize("data, expected", [
    ({"configs": [{"provider": "fal", "model": "m", "timeout": -5}]}, "configs[0].timeout: Input should be greater than 0 (got -5)"),
    ({"modality": "music", "configs": [{"provider": "fal", "model": "m"}]}, "modality: Input should be 'video', 'image', 'tts' or 'sts' (got 'music')"),
    ({"configs": []}, "configs: List should have at least 1 item"),
    ({"configs": [{"provider": "fal", "model": "m", "colour": "red"}]}, "configs[0].colour: Extra inputs are not permitted (got 'red')"),
    ({"configs": [{"provider": "fal", "model": "m"}], "limits": {"fal": {"submits_per_second": "fast"}}}, "limits.fal.submits_per_second"),
    ({"configs": [{"name": "a", "provider": "fal", "model": "m"}, {"name": "a", "provider": "x", "model": "y"}]}, "repeated: a"),
])
def test_errors_name_the_file_the_field_and_the_value(data, expected):
    with pytest.raises(JobFileError) as info:
        parse_job(data, "jobs/night.yaml")
    assert str(info.value).startswith("jobs/night.yaml: ") and expected in str(info.value)


def test_an_api_key_in_the_file_is_refused_without_echoing_it():
    data = {"configs": [{"provider": "fal", "model": "m", "fallback_configs": [{"provider": "x", "model": "y", "api_key": SECRET}]}]}
    with pytest.raises(JobFileError) as info:
        parse_job(data, "job.yaml")
    message = str(info.value)
    assert "configs[0].fallback_configs[0].api_key" in message and "api_key_env" in message and SECRET not in message


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(JobFileError, match="cannot read the job file"):
        load_job(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("configs: [unclosed")
    with pytest.raises(JobFileError, match="bad.yaml: not valid YAML"):
        load_job(str(bad))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    with pytest.raises(JobFileError, match="not valid JSON"):
        load_job(str(bad_json))


def test_a_key_source_is_env_or_secret_not_both():
    with pytest.raises(JobFileError, match="either api_key_env"):
        parse_job({"configs": [{"provider": "fal", "model": "m", "api_key_env": "FAL_KEY", "secret": "projects/p/secrets/s/versions/1"}]})


def test_the_cli_reports_job_file_errors(tmp_path, capsys):
    from pipelines.generate import main

    job = tmp_path / "job.yaml"
    job.write_text("configs: [{provider: fal, model: m, timeout: soon}]")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "x"}\n')
    assert main(["--input", str(prompts), "--output", str(tmp_path / "out"), "--config", str(job)]) == 2
    assert "configs[0].timeout" in capsys.readouterr().err


# -- checked at load: provider names, catalog models, limits ------------------------------------


def write_yaml(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return str(path)


def test_a_misspelt_provider_names_file_field_value_and_suggestion(tmp_path):
    path = write_yaml(tmp_path, "configs:\n  - {provider: fal, model: fal-ai/veo3,\n"
                                "     fallback_configs: [{provider: runwya, model: gen4.5}]}\n")
    with pytest.raises(JobFileError) as raised:
        load_job(path)
    assert str(raised.value).startswith(f"{path}: configs[0].fallback_configs[0].provider: unknown provider 'runwya'")
    assert "did you mean 'runway'?" in str(raised.value)


def test_limits_and_prices_must_name_a_provider(tmp_path):
    path = write_yaml(tmp_path, "configs: [{provider: fal, model: fal-ai/veo3}]\nlimits: {fla: {max_in_flight: 2}}\n")
    with pytest.raises(JobFileError, match=r"limits\.fla: unknown provider 'fla'; did you mean 'fal'\?"):
        load_job(path)


def test_a_mocked_config_may_use_any_provider_name(tmp_path):
    path = write_yaml(tmp_path, "configs: [{provider: acme, model: acme-video, mock: {enabled: true}}]\n")
    assert load_job(path).configs[0].provider == "acme"


def test_a_model_missing_from_the_catalog_is_a_warning_not_an_error(tmp_path, caplog):
    path = write_yaml(tmp_path, "configs: [{provider: fal, model: fal-ai/veo9-preview}]\n")
    assert load_job(path).configs[0].model == "fal-ai/veo9-preview"
    assert "configs[0].model: 'fal-ai/veo9-preview' is not in fal's catalog" in caplog.text
    caplog.clear()
    load_job(write_yaml(tmp_path, "configs: [{provider: fal, model: fal-ai/veo3.1/fast}]\n"))
    assert "catalog" not in caplog.text


def test_shipped_example_chains_never_end_in_the_mock():
    """A placeholder must never pass for the real thing (issue #14): the provider examples'
    chains hold real providers only; the offline examples are mock-only by name."""
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    for path in sorted((examples / "providers").glob("*.yaml")):
        job = load_job(str(path))
        mocked = [entry.provider for entry in job.entries() if entry.is_mocked]
        assert mocked == [], f"{path.name}: {mocked}"
    for name in ("image.yaml", "tts.yaml"):
        assert all(entry.is_mocked for entry in load_job(str(examples / name)).entries())


def test_sample_prompt_files_are_valid_rows_for_their_offline_jobs():
    from pathlib import Path

    from transforms.read import read_rows

    examples = Path(__file__).resolve().parents[2] / "examples"
    for prompts, job in (("prompts_image.jsonl", "image.yaml"), ("prompts_tts.jsonl", "tts.yaml"),
                         ("prompts_image.jsonl", "providers/stability.yaml"),
                         ("prompts_tts.jsonl", "providers/elevenlabs.yaml")):
        rows = list(read_rows(str(examples / prompts), load_job(str(examples / job))))
        assert rows and all(row.is_valid for row in rows), [row.error for row in rows if not row.is_valid]
