"""One redaction everywhere: key variants, secret-looking names, job-file errors, manifests,
and SDK errors that pickle intact and without secrets."""

from __future__ import annotations

import base64
import pickle
from urllib.parse import quote, quote_plus

import pytest

from pipelines.job_file import JobFileError, load_job, parse_job
from providers import RetryPolicy, generate_tts
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    GenerationTimeoutError,
    InvalidRequestError,
    MediagenError,
    ProviderAuthError,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderHTTPError,
    UnsupportedRequestError,
)
from providers.core.redaction import Redactor, is_secret_name, mask_secrets, redact, redacted_job_data
from schemas import AudioGenerationConfig, ExecutionMetadata, JobConfig
from tests.emulator import Fault

KEY = "sk-canary-5e6f7a8b9c0d1e2f"


@pytest.mark.parametrize("form", [
    KEY, f"{KEY}\n", quote(KEY, safe=""), quote_plus(KEY + " "),
    base64.b64encode(f"user:{KEY}".encode()).decode(), base64.b64encode(f"ab:{KEY}".encode()).decode(),
    base64.b64encode(f"{KEY}:".encode()).decode(), base64.urlsafe_b64encode(f"u:{KEY}".encode()).decode(),
])
def test_the_key_and_its_obvious_variants_are_redacted(form):
    text = f"Authorization: Basic {form} rejected"
    redacted = Redactor([KEY]).redact(text)
    assert form.strip() not in redacted and "***" in redacted and redacted.startswith("Authorization: Basic ")


def test_redaction_reaches_into_nested_values_and_leaves_short_or_no_keys_alone():
    redactor = Redactor([KEY, None, "abc"])
    value = {"error": [f"bad {KEY}", {KEY: (KEY, 3)}], "abc": "abc"}
    assert redactor.redact_value(value) == {"error": ["bad ***", {"***": ("***", 3)}], "abc": "abc"}
    assert redact("nothing here", []) == "nothing here" and not Redactor()
    assert pickle.loads(pickle.dumps(redactor)).redact(KEY) == KEY, "a pickled redactor carries no keys"


@pytest.mark.parametrize("name, secret", [
    ("apiKey", True), ("x-api-key", True), ("private_key", True), ("bearer", True), ("key", True),
    ("Authorization", True), ("access_token", True), ("clientSecret", True), ("PASSWORD", True),
    ("credentials", True), ("keyframes", False), ("voice_id", False), ("monkey", False), ("model", False),
])
def test_secret_looking_names(name, secret):
    assert is_secret_name(name) is secret


def test_masking_and_the_manifest_job_keep_key_sources_visible():
    assert mask_secrets({"a": {"token": "t", "n": [{"password": "p"}]}, "b": 1}) == {
        "a": {"token": "***", "n": [{"password": "***"}]}, "b": 1}
    job = JobConfig(configs=[{
        "provider": "fal", "model": "m", "api_key_env": "FAL_KEY", "base_url": "https://u:pw@h.example/x?key=k1&a=1",
        "provider_config": {"x-api-key": "s1", "bearer": "s2", "private_key": "s3", "secret": "s4", "seed": 3},
        "fallback_configs": [{"provider": "fal", "model": "n", "secret": "projects/p/secrets/s/versions/1",
                              "provider_config": {"key": "s5"}}],
    }], global_rate_limit={"service_address": "h:1", "domain": "d", "descriptors": {"fal": [{"key": "provider"}]}})
    data = redacted_job_data(job)
    entry = data["configs"][0]
    assert entry["provider_config"] == {"x-api-key": "***", "bearer": "***", "private_key": "***", "secret": "***", "seed": 3}
    assert entry["api_key_env"] == "FAL_KEY" and entry["base_url"] == "https://***@h.example/x?key=***&a=1"
    assert entry["fallback_configs"][0]["secret"] == "projects/p/secrets/s/versions/1"
    assert entry["fallback_configs"][0]["provider_config"] == {"key": "***"}
    assert data["global_rate_limit"]["descriptors"] == {"fal": [{"key": "provider"}]}
    assert not any(s in str(data) for s in ("s1", "s2", "s3", "s4", "s5", "pw", "k1"))


@pytest.mark.parametrize("data, where", [
    ({"configs": [{"provider": "fal", "model": "m", "apiKey": KEY}]}, "configs[0].apiKey: API keys are never written"),
    ({"configs": [{"provider": "fal", "model": "m", "API-KEY": KEY}]}, "configs[0].API-KEY: API keys are never written"),
    ({"configs": [{"provider": "fal", "model": "m", "x-api-key": KEY}]}, "configs[0].x-api-key: Extra inputs are not permitted (got ***)"),
    ({"configs": [{"provider": "fal", "model": "m", "fallback_configs": [{"provider": "x", "model": "y", "token": KEY}]}]},
     "configs[0].fallback_configs[0].token: Extra inputs are not permitted (got ***)"),
])
def test_job_file_errors_mask_secret_looking_fields(data, where):
    with pytest.raises(JobFileError) as info:
        parse_job(data, "job.yaml")
    assert where in str(info.value) and KEY not in str(info.value)


def test_yaml_syntax_errors_do_not_quote_the_line(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(f"configs:\n  - provider: fal\n    model: m\n    provider_config: {{bearer: {KEY}: x}}\n")
    with pytest.raises(JobFileError) as info:
        load_job(str(path))
    assert "not valid YAML" in str(info.value) and "line 4" in str(info.value) and KEY not in str(info.value)


ERRORS = [
    MediagenError("m", provider="p"), InvalidRequestError("m"), ProviderConfigError("m"), UnsupportedRequestError("m"),
    ContentModerationError("m"), ProviderHTTPError("m", status_code=503, retry_after=2.0), ProviderAuthError("m", status_code=403),
    ProviderConnectionError("m"), GenerationTimeoutError("m"), GenerationFailedError("m", retryable=True),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_every_sdk_error_pickles_with_its_fields(error):
    error.raw_response = {"detail": "x"}
    error.execution_metadata = ExecutionMetadata(configs_in_chain=2)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and vars(copy) == vars(error) and copy.args == error.args and str(copy) == str(error)


def test_redacting_an_error_reaches_args_raw_response_and_attempts():
    error = ProviderHTTPError(f"bad key {KEY}\n", status_code=401, raw_response={"echo": [f"Bearer {KEY}"]})
    error.execution_metadata = ExecutionMetadata.model_validate({"attempts": [{
        "provider": "p", "model": "m", "attempt_number": 1, "started_at": "2026-01-01T00:00:00Z",
        "ended_at": "2026-01-01T00:00:01Z", "status": "failed", "error_message": f"bad key {KEY}"}]})
    error.redact(Redactor([KEY]))
    assert KEY.encode() not in pickle.dumps(error) and KEY not in repr(vars(error)) and KEY not in repr(error.args)
    assert error.message == "bad key ***\n" and error.args == (error.message,)


def test_an_sdk_call_whose_provider_echoes_the_key_raises_a_clean_error(emulator):
    emulator.keys["elevenlabs"] = KEY
    emulator.inject("elevenlabs.tts", Fault.http(401, {"detail": {"status": "invalid_api_key", "message": f"bad key {KEY}\n"}}))
    config = AudioGenerationConfig(provider="elevenlabs", model="eleven_multilingual_v2", api_key=KEY + "\n",
                                   base_url=emulator.url_for("elevenlabs"), timeout=30)
    with pytest.raises(ProviderAuthError) as info:
        generate_tts(config, text="hello", voice_id="v", retry=RetryPolicy(max_retries=0))
    error = info.value
    assert emulator.last("elevenlabs.tts").headers["xi-api-key"] == KEY, "the key was sent stripped"
    for text in (pickle.dumps(error), repr(vars(error)).encode(), str(error).encode(), repr(error.args).encode(),
                 error.execution_metadata.model_dump_json().encode()):
        assert KEY.encode() not in text
    assert "bad key ***" in str(error.raw_response)


def test_log_records_are_redacted_by_the_installed_filter():
    import io
    import logging

    from providers.core.redaction import install_log_redaction

    stream = io.StringIO()
    logger = logging.getLogger("mediagen.test.redaction")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        redactor = Redactor([KEY])
        install_log_redaction(redactor, logger)
        install_log_redaction(redactor, logger)
        assert len(handler.filters) == 1
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            logger.exception("calling with %s", f"Bearer {KEY}")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert KEY not in text and "calling with Bearer ***" in text and "boom ***" in text
