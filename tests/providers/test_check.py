"""``python -m providers.check``: the live key check, run against the emulator."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from providers.check import KeyCheck, listed_models, main
from providers.registry import BUILTIN_PROVIDERS, get_provider
from tests.emulator import Fault, ProviderEmulator
from transforms.secrets import KeyResolver

ROOT = Path(__file__).resolve().parents[2]
CANARY = "sk-CANARY-7f3a9c2e5b1d"

# One model per provider; the emulator's key-check answer lists those it can (openai,
# xai, elevenlabs, google).
MODELS = {
    "fal": "fal-ai/veo3",
    "openai": "sora-2",
    "azure-openai": "sora-2",
    "runway": "gen4_turbo",
    "google": "veo-3.0-generate-001",
    "replicate": "black-forest-labs/flux-schnell",
    "stability": "sd3.5-large",
    "xai": "grok-imagine-video",
    "elevenlabs": "eleven_multilingual_v2",
    "cartesia": "sonic-2",
    "sarvam": "bulbul:v2",
    "hume": "octave-2",
}
PROVIDERS = sorted(MODELS)


def env_name(provider: str) -> str:
    return f"MEDIAGEN_CHECK_{provider.upper().replace('-', '_')}"


def entry(emu: ProviderEmulator, provider: str, **extra: Any) -> dict[str, Any]:
    config = {"name": provider, "provider": provider, "model": MODELS[provider], "api_key_env": env_name(provider),
              "base_url": emu.url_for(provider)}
    config.update(extra)
    return config


def write_job(tmp_path: Path, configs: list[dict[str, Any]], modality: str = "image") -> str:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"modality": modality, "configs": configs}))
    return str(path)


def table_rows(out: str) -> dict[str, list[str]]:
    """config name -> its cells, from the printed Markdown table."""
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]
    return {row[0]: row for row in rows}


def run(argv: list[str], capsys: pytest.CaptureFixture[str], **kwargs: Any) -> tuple[int, str, str]:
    code = main(argv, **kwargs)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_builtin_provider_declares_a_key_check() -> None:
    for name in BUILTIN_PROVIDERS:
        if name == "mock":
            continue
        check = get_provider(name).key_check
        assert isinstance(check, KeyCheck), name
        assert check.method == "GET" and check.source.startswith("https://"), name


@pytest.mark.parametrize("provider", PROVIDERS)
def test_good_key_is_accepted_with_one_non_generating_call(
    provider: str, emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env_name(provider), emulator.key_for(provider))
    code, out, err = run(["--config", write_job(tmp_path, [entry(emulator, provider)])], capsys)
    row = table_rows(out)[provider]
    assert row[1:] == [provider, MODELS[provider], f"env {env_name(provider)}", "accepted", "-"], out
    assert code == 0, (out, err)
    assert [r.route_name for r in emulator.requests] == [f"{provider}.key_check"]
    assert emulator.requests[0].method == "GET"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_key_is_refused(
    provider: str, emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env_name(provider), CANARY)
    code, out, err = run(["--config", write_job(tmp_path, [entry(emulator, provider)])], capsys)
    assert table_rows(out)[provider][4].startswith("refused (HTTP 40"), out
    assert code == 1
    assert CANARY not in out + err


def test_missing_key_makes_no_call_and_names_the_variable(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(env_name("openai"), raising=False)
    code, out, _ = run(["--config", write_job(tmp_path, [entry(emulator, "openai")])], capsys)
    row = table_rows(out)["openai"]
    assert row[3:5] == ["none", f"missing key (set {env_name('openai')})"]
    assert code == 1
    assert emulator.requests == []


def test_provider_default_variable_is_used_when_the_config_names_no_source(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ELEVENLABS_API_KEY", emulator.key_for("elevenlabs"))
    config = entry(emulator, "elevenlabs")
    del config["api_key_env"]
    code, out, _ = run(["--config", write_job(tmp_path, [config], modality="tts")], capsys)
    assert table_rows(out)["elevenlabs"][3:5] == ["env ELEVENLABS_API_KEY", "accepted"]
    assert code == 0


def test_unreachable_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:  # a port nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(env_name("runway"), "some-key")
    config = {"name": "runway", "provider": "runway", "model": "gen4_turbo", "api_key_env": env_name("runway"),
              "base_url": f"http://127.0.0.1:{port}"}
    code, out, _ = run(["--config", write_job(tmp_path, [config]), "--timeout", "5"], capsys)
    assert table_rows(out)["runway"][4] == "unreachable (connection error)"
    assert code == 1


def test_connection_reset_is_unreachable(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env_name("stability"), emulator.key_for("stability"))
    emulator.inject("stability.key_check", Fault.connection_reset())
    code, out, _ = run(["--config", write_job(tmp_path, [entry(emulator, "stability")])], capsys)
    assert table_rows(out)["stability"][4] == "unreachable (connection error)"
    assert code == 1


def test_server_error_fails_without_calling_it_a_refusal(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env_name("replicate"), emulator.key_for("replicate"))
    emulator.inject("replicate.key_check", Fault.http(503, {"detail": "maintenance"}))
    code, out, _ = run(["--config", write_job(tmp_path, [entry(emulator, "replicate")])], capsys)
    assert table_rows(out)["replicate"][4] == "error (HTTP 503)"
    assert code == 1


def test_models_the_account_cannot_use_are_named_per_config(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env_name("openai"), emulator.key_for("openai"))
    fallback = {"provider": "openai", "model": "sora-9", "api_key_env": env_name("openai"),
                "base_url": emulator.url_for("openai")}
    google = entry(emulator, "google", model="veo-9.9-generate-001")
    monkeypatch.setenv(env_name("google"), emulator.key_for("google"))
    code, out, _ = run(
        ["--config", write_job(tmp_path, [entry(emulator, "openai", fallback_configs=[fallback]), google])], capsys
    )
    rows = table_rows(out)
    assert rows["openai"][4:] == ["accepted", "-"]
    assert rows["openai.fallback[0]"][4:] == ["accepted", "sora-9"]
    assert rows["google"][4:] == ["accepted", "veo-9.9-generate-001"]  # listed as models/<id>: prefix stripped
    assert code == 0  # the keys are accepted; the column reports the models
    assert emulator.count("openai.key_check") == 1  # same provider, endpoint and key: one call


def test_distinct_key_sources_are_checked_separately(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env_name("xai"), emulator.key_for("xai"))
    monkeypatch.setenv("MEDIAGEN_CHECK_XAI_OLD", "revoked-key")
    old = entry(emulator, "xai", name="xai-old", api_key_env="MEDIAGEN_CHECK_XAI_OLD")
    code, out, _ = run(["--config", write_job(tmp_path, [entry(emulator, "xai"), old])], capsys)
    rows = table_rows(out)
    assert rows["xai"][4] == "accepted" and rows["xai-old"][4].startswith("refused")
    assert emulator.count("xai.key_check") == 2
    assert code == 1


def test_check_sends_the_providers_own_auth_and_version_headers_and_asks_for_json(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    for provider in ("runway", "cartesia", "elevenlabs", "google", "hume", "fal"):
        monkeypatch.setenv(env_name(provider), emulator.key_for(provider))
    configs = [entry(emulator, p) for p in ("runway", "cartesia", "elevenlabs", "google", "hume", "fal")]
    code, out, _ = run(["--config", write_job(tmp_path, configs)], capsys)
    assert code == 0, out
    assert emulator.last("runway.key_check").headers["X-Runway-Version"] == "2024-11-06"
    assert emulator.last("cartesia.key_check").headers["Cartesia-Version"]
    assert emulator.last("elevenlabs.key_check").headers["Accept"] == "application/json"
    assert emulator.last("google.key_check").headers["x-goog-api-key"] == emulator.key_for("google")
    assert "key" not in emulator.last("google.key_check").query  # never in the URL, where logs would show it
    assert emulator.last("hume.key_check").query["provider"] == "CUSTOM_VOICE"
    assert emulator.last("fal.key_check").headers["Authorization"] == f"Key {emulator.key_for('fal')}"


def test_azure_checks_the_resource_endpoint_and_reports_a_missing_one(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env_name("azure-openai"), emulator.key_for("azure-openai"))
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with_endpoint = entry(emulator, "azure-openai", base_url=None,
                          provider_config={"endpoint": emulator.url_for("azure-openai") + "/openai/v1"})
    without = entry(emulator, "azure-openai", name="no-endpoint", base_url=None)
    code, out, _ = run(["--config", write_job(tmp_path, [with_endpoint, without])], capsys)
    rows = table_rows(out)
    assert rows["azure-openai"][4] == "accepted"
    assert emulator.last("azure-openai.key_check").path == "/openai/v1/models"
    assert rows["no-endpoint"][4].startswith("config error: no Azure OpenAI endpoint")
    assert code == 1


def test_mock_and_vertex_configs_are_not_checked_and_do_not_fail(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    vertex = entry(emulator, "google", name="vertex", provider_config={"gcp_project": "my-project"})
    mocked = {"name": "mocked", "provider": "fal", "model": "fal-ai/veo3", "mock": {"enabled": True}}
    code, out, _ = run(["--config", write_job(tmp_path, [vertex, mocked])], capsys)
    rows = table_rows(out)
    assert rows["vertex"][4].startswith("not checked (Vertex AI")
    assert rows["mocked"][4] == "not checked (mock)"
    assert code == 0
    assert emulator.requests == []


def test_secret_sources_are_read_through_the_key_resolver(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "projects/p/secrets/sarvam-key/versions/latest"
    key = emulator.key_for("sarvam")

    class Payload:
        data = f"{key}\n".encode()  # mounted secrets end in a newline

    class Client:
        def access_secret_version(self, request: dict[str, str]) -> Any:
            assert request["name"] == secret
            return type("Answer", (), {"payload": Payload})()

    config = entry(emulator, "sarvam", secret=secret)
    del config["api_key_env"]
    code, out, _ = run(["--config", write_job(tmp_path, [config], modality="tts")], capsys,
                       resolver=KeyResolver(Client))
    assert table_rows(out)["sarvam"][3:5] == [f"secret {secret}", "accepted"]
    assert code == 0


def test_unreadable_secret_is_no_usable_key(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    class Client:
        def access_secret_version(self, request: dict[str, str]) -> Any:
            raise PermissionError(f"denied {CANARY}")

    config = entry(emulator, "hume", secret="projects/p/secrets/hume/versions/1")
    del config["api_key_env"]
    code, out, err = run(["--config", write_job(tmp_path, [config], modality="tts")], capsys,
                         resolver=KeyResolver(Client))
    expected = "no usable key: cannot read secret projects/p/secrets/hume/versions/1: PermissionError"
    assert table_rows(out)["hume"][4] == expected
    assert code == 1 and CANARY not in out + err


@pytest.mark.parametrize("accepted", [True, False])
def test_canary_key_never_appears_in_output_or_debug_logs(
    accepted: bool, emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    for provider in PROVIDERS:
        if accepted:
            emulator.keys[provider] = CANARY
        monkeypatch.setenv(env_name(provider), CANARY + "\n")  # as a mounted file would hold it
    caplog.set_level(logging.DEBUG)
    code, out, err = run(["--config", write_job(tmp_path, [entry(emulator, p) for p in PROVIDERS])], capsys)
    results = {row[4] for row in table_rows(out).values()}
    if accepted:
        assert results == {"accepted"} and code == 0, out
    else:
        assert all(r.startswith("refused") for r in results) and code == 1, out
    assert any("key check" in record.getMessage() for record in caplog.records)
    logs = "\n".join(record.getMessage() for record in caplog.records)
    for text in (out, err, logs):
        assert CANARY not in text
        assert CANARY[4:] not in text  # not even a partial echo


def test_key_with_inner_whitespace_is_reported_not_sent(
    emulator: ProviderEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env_name("openai"), f"{CANARY[:8]} {CANARY[8:]}")
    code, out, err = run(["--config", write_job(tmp_path, [entry(emulator, "openai")])], capsys)
    assert table_rows(out)["openai"][4].startswith("no usable key: ")
    assert "contains whitespace" in table_rows(out)["openai"][4]
    assert code == 1 and emulator.requests == []
    assert CANARY[8:] not in out + err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --config"),
        (["--config"], "expected one argument"),
        (["--config", "{tmp}/absent.yaml"], "cannot read the job file"),
        (["--config", "{tmp}/bad.yaml"], "configs"),
        (["--config", "{tmp}/unknown.yaml"], "unknown provider 'nobody-registers-this'"),
        (["--config", "{tmp}/ok.yaml", "--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_usage_and_job_file_errors_exit_2_with_one_error_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "bad.yaml").write_text("modality: video\nconfigs: []\n")
    (tmp_path / "unknown.yaml").write_text(yaml.safe_dump({"configs": [{"provider": "nobody-registers-this", "model": "m"}]}))
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump({"configs": [{"provider": "mock", "model": "m"}]}))
    code, out, err = run([arg.replace("{tmp}", str(tmp_path)) for arg in argv], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_listed_models_reads_the_declared_shape() -> None:
    assert listed_models({"data": [{"id": "a"}, {"id": "b"}]}, "data[].id") == {"a", "b"}
    assert listed_models([{"model_id": "x"}, {"name": "no id"}], "[].model_id") == {"x"}
    assert listed_models({"models": [{"name": "models/veo"}]}, "models[].name") == {"models/veo"}
    assert listed_models({"error": "other shape"}, "data[].id") is None  # no judgement on an unexpected answer
    assert listed_models({"data": "not a list"}, "data[].id") is None


# -- as a command ------------------------------------------------------------------------------


def _subprocess(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGEN_CHECK_")}
    full_env = {**inherited, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "providers.check", *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
        timeout=120,
    )


def test_command_line_good_refused_and_missing_keys(emulator: ProviderEmulator, tmp_path: Path) -> None:
    emulator.keys["openai"] = CANARY
    configs = [
        entry(emulator, "openai"),
        entry(emulator, "cartesia", name="wrong"),
        entry(emulator, "hume", name="absent"),
    ]
    env = {env_name("openai"): CANARY + "\n", env_name("cartesia"): CANARY}
    result = _subprocess(["--config", write_job(tmp_path, configs), "--verbose"], env)
    rows = table_rows(result.stdout)
    assert rows["openai"][4] == "accepted"
    assert rows["wrong"][4] == "refused (HTTP 401)"
    assert rows["absent"][4].startswith("missing key")
    assert result.returncode == 1, result.stderr
    assert "key check" in result.stderr  # --verbose logs at DEBUG
    assert CANARY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_command_line_all_accepted_exits_0_and_usage_error_exits_2(emulator: ProviderEmulator, tmp_path: Path) -> None:
    env = {env_name("replicate"): emulator.key_for("replicate")}
    ok = _subprocess(["--config", write_job(tmp_path, [entry(emulator, "replicate")])], env)
    assert ok.returncode == 0, ok.stderr
    assert table_rows(ok.stdout)["replicate"][4] == "accepted"
    bad = _subprocess(["--config", str(tmp_path / "missing.yaml")], env)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stdout == ""
