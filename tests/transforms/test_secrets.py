"""API keys on workers: resolved from an environment variable or a Secret Manager secret
version, once per worker process, cached, and never present in what leaves the process:
pickled DoFns, pipeline options, logs, error messages or outputs.

Secret Manager is faked at its client interface (``access_secret_version(request=
{"name": ...})`` returning ``.payload.data``); one test drives the real client library
(REST transport) against a loopback server speaking the same API.
"""

from __future__ import annotations

import base64
import bz2
import json
import logging
import pickle
import threading
import traceback
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import apache_beam as beam
import pytest

from providers import register_provider
from providers.builtin.mock import MockProvider
from schemas import ConfigEntry, JobConfig
from transforms.generate import GenerateDoFn
from transforms.secrets import SECRET_CLIENT_FACTORY_ENV, KeyResolutionError, KeyResolver

SECRET_NAME = "projects/mediagen-test/secrets/fal-key/versions/latest"
SECRET_VALUE = "sk-live-SECRET-MANAGER-7c1e5a9b"
LEAKY_DETAIL = "internal-token-0xDEADBEEF"


# -- a fake of the Secret Manager client interface -------------------------------------------


@dataclass
class _Payload:
    data: bytes


@dataclass
class _AccessResponse:
    name: str
    payload: _Payload


class FakeSecretManager:
    """``access_secret_version`` like google-cloud-secret-manager's client, over a dict."""

    secrets: dict[str, bytes] = {}
    clients_built = 0
    accesses: Counter[str] = Counter()
    _lock = threading.Lock()

    def access_secret_version(self, request: dict[str, str] | None = None, **_: Any) -> _AccessResponse:
        name = (request or {})["name"]
        with self._lock:
            FakeSecretManager.accesses[name] += 1
        if name not in self.secrets:
            # Real client errors can carry server details; none may reach our messages.
            raise PermissionError(f"403 Permission denied on {name} (caller {LEAKY_DETAIL})")
        return _AccessResponse(name, _Payload(self.secrets[name]))

    @classmethod
    def reset(cls, secrets: dict[str, bytes]) -> None:
        cls.secrets = dict(secrets)
        cls.clients_built = 0
        cls.accesses = Counter()


def fake_secret_manager_client() -> FakeSecretManager:
    """A client factory (module level, so DoFns holding it pickle by reference)."""
    FakeSecretManager.clients_built += 1
    return FakeSecretManager()


@pytest.fixture
def fake_secrets() -> Iterator[type[FakeSecretManager]]:
    FakeSecretManager.reset({SECRET_NAME: f"{SECRET_VALUE}\n".encode()})
    yield FakeSecretManager
    FakeSecretManager.reset({})


def secret_entry(name: str = SECRET_NAME) -> ConfigEntry:
    return ConfigEntry(provider="fal", model="fal-ai/veo3", secret=name)


# -- KeyResolver ------------------------------------------------------------------------------


def test_secret_version_is_read_once_and_cached(fake_secrets: type[FakeSecretManager]) -> None:
    resolver = KeyResolver(fake_secret_manager_client)
    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(resolver(secret_entry()))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [SECRET_VALUE] * 8, "the payload is decoded and stripped"
    assert fake_secrets.accesses == Counter({SECRET_NAME: 1})
    assert fake_secrets.clients_built == 1


def test_no_secret_client_unless_a_secret_is_named(fake_secrets: type[FakeSecretManager], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAGEN_TEST_FAL_KEY", "sk-from-env-1234")
    resolver = KeyResolver(fake_secret_manager_client)
    assert resolver(ConfigEntry(provider="fal", model="m", api_key_env="MEDIAGEN_TEST_FAL_KEY")) == "sk-from-env-1234"
    assert resolver(ConfigEntry(provider="mock", model="mock-video")) is None
    assert fake_secrets.clients_built == 0


def test_env_var_path_reads_once_and_warns_without_value_when_unset(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = KeyResolver(fake_secret_manager_client)
    monkeypatch.setenv("MEDIAGEN_TEST_KEY_A", "sk-env-value-5678")
    entry = ConfigEntry(provider="fal", model="m", api_key_env="MEDIAGEN_TEST_KEY_A")
    assert resolver(entry) == "sk-env-value-5678"
    monkeypatch.setenv("MEDIAGEN_TEST_KEY_A", "changed later")
    assert resolver(entry) == "sk-env-value-5678", "cached for the life of the worker"
    monkeypatch.delenv("MEDIAGEN_TEST_KEY_B", raising=False)
    with caplog.at_level(logging.WARNING):
        assert resolver(ConfigEntry(provider="fal", model="m", api_key_env="MEDIAGEN_TEST_KEY_B")) is None
    assert "MEDIAGEN_TEST_KEY_B is not set" in caplog.text


def test_unreadable_secret_error_names_the_secret_but_not_the_cause(fake_secrets: type[FakeSecretManager]) -> None:
    missing = "projects/mediagen-test/secrets/absent/versions/3"
    resolver = KeyResolver(fake_secret_manager_client)
    with pytest.raises(KeyResolutionError) as raised:
        resolver(secret_entry(missing))
    assert str(raised.value) == f"cannot read secret {missing}: PermissionError"
    shown = "".join(traceback.format_exception(raised.value))
    assert LEAKY_DETAIL not in shown and raised.value.__cause__ is None


def test_resolver_pickles_without_resolved_keys(fake_secrets: type[FakeSecretManager]) -> None:
    resolver = KeyResolver(fake_secret_manager_client)
    assert resolver(secret_entry()) == SECRET_VALUE
    data = pickle.dumps(resolver)
    assert SECRET_VALUE.encode() not in data
    copy = pickle.loads(data)
    assert copy(secret_entry()) == SECRET_VALUE and fake_secrets.accesses[SECRET_NAME] == 2


def test_env_hook_names_the_client_factory(fake_secrets: type[FakeSecretManager], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_CLIENT_FACTORY_ENV, f"{__name__}:fake_secret_manager_client")
    assert KeyResolver()(secret_entry()) == SECRET_VALUE
    monkeypatch.setenv(SECRET_CLIENT_FACTORY_ENV, f"{__name__}:no_such_factory")
    with pytest.raises(KeyResolutionError, match="names no importable callable"):
        KeyResolver()(secret_entry())


class _SecretManagerREST(BaseHTTPRequestHandler):
    """``GET /v1/{name}:access`` of Secret Manager's REST API, over a fixed secret map."""

    secrets: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        name = path.removeprefix("/v1/").removesuffix(":access")
        if name in self.secrets:
            status, body = 200, {"name": name, "payload": {"data": base64.b64encode(self.secrets[name]).decode()}}
        else:
            status, body = 403, {"error": {"code": 403, "message": f"denied ({LEAKY_DETAIL})", "status": "PERMISSION_DENIED"}}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_real_client_library_against_a_loopback_secret_manager() -> None:
    secretmanager = pytest.importorskip("google.cloud.secretmanager")
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    _SecretManagerREST.secrets = {SECRET_NAME: SECRET_VALUE.encode()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SecretManagerREST)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        resolver = KeyResolver(lambda: secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options=ClientOptions(api_endpoint=endpoint),
        ))
        assert resolver(secret_entry()) == SECRET_VALUE
        with pytest.raises(KeyResolutionError) as raised:
            resolver(secret_entry("projects/mediagen-test/secrets/other/versions/1"))
        assert LEAKY_DETAIL not in "".join(traceback.format_exception(raised.value))
        assert str(raised.value) == "cannot read secret projects/mediagen-test/secrets/other/versions/1: Forbidden"
    finally:
        server.shutdown()


# -- GenerateDoFn: once per worker, nothing in pickles ----------------------------------------


def secret_job(provider: str = "fal") -> JobConfig:
    return JobConfig.model_validate({
        "modality": "video",
        "configs": [
            {"name": "main", "provider": provider, "model": "mock-video", "secret": SECRET_NAME,
             "fallback_configs": [{"provider": "mock", "model": "mock-video", "secret": SECRET_NAME}]},
            {"name": "other", "provider": "mock", "model": "mock-video", "secret": SECRET_NAME},
        ],
    })


def unpack(payload: bytes) -> bytes:
    """A Beam pickle payload (base64 of a bz2- or zlib-compressed pickle), decompressed
    so it can be searched; other bytes as they are."""
    try:
        compressed = base64.b64decode(payload, validate=True)
    except ValueError:
        return payload
    for decompress in (bz2.decompress, zlib.decompress):
        try:
            return decompress(compressed)
        except (OSError, ValueError, zlib.error):
            continue
    return payload


def beam_pickled(obj: Any) -> bytes:
    """What Beam ships to workers for ``obj``, decompressed."""
    from apache_beam.internal import pickler

    return unpack(pickler.dumps(obj))


def test_keys_are_resolved_once_per_worker_process(fake_secrets: type[FakeSecretManager], tmp_path: Path) -> None:
    from apache_beam.internal import pickler

    dofn = GenerateDoFn(secret_job(), str(tmp_path / "out"), f"run-{uuid.uuid4().hex[:8]}",
                        key_resolver=KeyResolver(fake_secret_manager_client))
    instances = [pickler.loads(pickler.dumps(dofn)) for _ in range(3)]  # as Beam does, per worker thread
    try:
        for instance in instances:
            instance.setup()
        for instance in instances:
            main = instance.configs["main"]
            assert main.api_key == SECRET_VALUE and main.fallback_configs[0].api_key == SECRET_VALUE
        assert fake_secrets.accesses == Counter({SECRET_NAME: 1}) and fake_secrets.clients_built == 1
    finally:
        for instance in instances:
            instance.teardown()


def test_pickled_dofn_holds_no_key_before_setup(fake_secrets: type[FakeSecretManager], tmp_path: Path) -> None:
    resolver = KeyResolver(fake_secret_manager_client)
    resolver(secret_entry())  # even a resolver that has resolved ships without the key
    dofn = GenerateDoFn(secret_job(), str(tmp_path / "out"), "run-pickle", key_resolver=resolver)
    data = beam_pickled(dofn)
    assert SECRET_VALUE.encode() not in data
    assert SECRET_NAME.encode() in data, "the secret's name travels; its value does not"


def test_pickled_dofn_holds_no_key_after_setup(fake_secrets: type[FakeSecretManager], tmp_path: Path) -> None:
    dofn = GenerateDoFn(secret_job(), str(tmp_path / "out"), f"run-{uuid.uuid4().hex[:8]}",
                        key_resolver=KeyResolver(fake_secret_manager_client))
    dofn.setup()
    try:
        assert dofn.configs["main"].api_key == SECRET_VALUE
        for data in (pickle.dumps(dofn), beam_pickled(dofn)):
            assert SECRET_VALUE.encode() not in data
    finally:
        dofn.teardown()


# -- a whole pipeline run with a secret-sourced key -------------------------------------------


class KeyRecordingProvider(MockProvider):
    """The mock, recording the API key each submission was given."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str | None] = []

    def submit(self, ctx: Any, request: Any) -> Any:
        self.keys.append(ctx.api_key)
        log.debug("submitting for %s", ctx.model)
        return super().submit(ctx, request)


log = logging.getLogger("mediagen.test.secrets")


def _dofn_payloads(proto: Any) -> Iterator[bytes]:
    """Every pickled DoFn / callable in a pipeline proto, decompressed."""
    from apache_beam.portability.api import beam_runner_api_pb2

    for transform in proto.components.transforms.values():
        if transform.spec.urn != "beam:transform:pardo:v1":
            continue
        payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn.payload
        if payload:
            yield unpack(payload)


def test_pipeline_run_with_a_secret_sourced_key_leaks_it_nowhere(
    fake_secrets: type[FakeSecretManager], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.pipelines.conftest import rows_by_id, run_pipeline, write_job, write_jsonl

    provider = KeyRecordingProvider()
    register_provider("keyed", provider)
    monkeypatch.setenv(SECRET_CLIENT_FACTORY_ENV, f"{__name__}:fake_secret_manager_client")
    shipped: dict[str, Any] = {}
    original_run = beam.Pipeline.run

    def spy_run(pipeline: beam.Pipeline, *args: Any, **kwargs: Any) -> Any:
        shipped["proto"] = pipeline.to_runner_api()
        shipped["options"] = json.dumps(pipeline.options.get_all_options(), default=str)
        return original_run(pipeline, *args, **kwargs)

    monkeypatch.setattr(beam.Pipeline, "run", spy_run)
    caplog.set_level(logging.DEBUG)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"id": "a", "prompt": "a lantern", "resolution": "360p", "duration_seconds": 1},
        {"id": "b", "prompt": "a harbour", "resolution": "360p", "duration_seconds": 1},
    ])
    job = write_job(tmp_path / "job.yaml", {
        "modality": "video",
        "configs": [{"name": "main", "provider": "keyed", "model": "mock-video", "secret": SECRET_NAME}],
    })
    output = tmp_path / "out"
    assert run_pipeline("--input", prompts, "--output", output, "--config", job) == 0

    assert provider.keys == [SECRET_VALUE, SECRET_VALUE], "the provider got the key from Secret Manager"
    assert fake_secrets.accesses == Counter({SECRET_NAME: 1})
    assert {r["status"] for r in rows_by_id(output).values()} == {"completed"}
    secret = SECRET_VALUE.encode()
    for path in output.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert SECRET_VALUE not in caplog.text and "submitting for mock-video" in caplog.text
    printed = capsys.readouterr()
    assert SECRET_VALUE not in printed.out + printed.err
    assert SECRET_VALUE not in shipped["options"]
    payloads = list(_dofn_payloads(shipped["proto"]))
    assert payloads and all(p.startswith(b"\x80") for p in payloads), "every payload was unpacked to a pickle"
    assert all(secret not in p for p in payloads)
    assert any(SECRET_NAME.encode() in p for p in payloads), "the Generate DoFn was among those searched"
    assert secret not in shipped["proto"].SerializeToString()


# -- keys are normalised where they are resolved ------------------------------------------


def test_a_key_with_a_trailing_newline_is_stripped_and_both_forms_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAGEN_TEST_NL_KEY", "sk-mounted-file-9f8e7d\n")
    resolver = KeyResolver(fake_secret_manager_client)
    assert resolver(ConfigEntry(provider="fal", model="m", api_key_env="MEDIAGEN_TEST_NL_KEY")) == "sk-mounted-file-9f8e7d"
    text = "echo: 'sk-mounted-file-9f8e7d\n' and sk-mounted-file-9f8e7d and c2stbW91bnRlZC1maWxlLTlmOGU3ZA=="
    assert "9f8e7d" not in resolver.redactor.redact(text).replace("***", "")


@pytest.mark.parametrize("value", ["sk-two words", "sk-tab\there", "sk-ctrl\x07x", "sk-inner\nline"])
def test_a_key_with_inner_whitespace_or_control_characters_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MEDIAGEN_TEST_BAD_KEY", value)
    with pytest.raises(KeyResolutionError) as info:
        KeyResolver(fake_secret_manager_client)(ConfigEntry(provider="fal", model="m", api_key_env="MEDIAGEN_TEST_BAD_KEY"))
    message = str(info.value)
    assert "env:MEDIAGEN_TEST_BAD_KEY contains" in message and "value not shown" in message
    assert value.split()[0] not in message and "sk-" not in message


def test_the_sdk_config_normalises_its_key_the_same_way() -> None:
    from schemas import VideoGenerationConfig
    from schemas.base import InvalidAPIKeyError

    assert VideoGenerationConfig(provider="fal", model="m", api_key="  sk-abc-123\r\n").api_key == "sk-abc-123"
    with pytest.raises(InvalidAPIKeyError) as info:
        VideoGenerationConfig(provider="fal", model="m", api_key="sk-abc 123")
    assert "sk-abc" not in str(info.value) and "config.api_key contains whitespace" in str(info.value)
