"""The provider registry: lazy built-ins, runtime registration, clear errors, cheap import,
and registrations that never leak from one test into the next."""

import subprocess
import sys

import pytest

from providers import get_provider_capabilities, known_providers, register_provider
from providers.core.field_mapping import Field, FieldMapping, register_field_mapping, registered_field_mapping
from providers.registry import BUILTIN_PROVIDERS, UnknownProviderError, get_provider
from tests.conftest import registries_restored


def test_import_providers_loads_no_provider_module_nor_heavy_dependency():
    code = ("import sys, providers, schemas; "
            "print(sorted(m for m in sys.modules if m.startswith(('providers.', 'apache_beam', 'av', 'PIL', 'requests', 'pyarrow'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_every_builtin_provider_loads_and_describes_its_models():
    for name in BUILTIN_PROVIDERS:
        provider = get_provider(name)
        assert provider.name == name
        if name != "mock":
            assert provider.models, f"{name} documents no models"


def test_register_provider_adds_and_replaces():
    first, second = object(), object()
    register_provider("acme-registry", first)
    assert get_provider("acme-registry") is first and "acme-registry" in known_providers()
    register_provider("acme-registry", second)
    assert get_provider("acme-registry") is second


def test_unknown_provider_and_bad_names_are_clear():
    with pytest.raises(UnknownProviderError, match="unknown provider 'nope'; known providers: .*azure-openai.*fal"):
        get_provider("nope")
    with pytest.raises(ValueError, match="non-empty string"):
        register_provider("", object())
    with pytest.raises(UnknownProviderError, match="custom handler"):
        register_provider("acme-plain", object()) or get_provider_capabilities("acme-plain", "m")


def test_capabilities_of_a_builtin_model():
    caps = get_provider_capabilities("openai", "sora-2")
    assert caps.durations == (4, 8, 12) and "video" in caps.modalities


# -- isolation: a test's registrations do not outlive it (tests/conftest.py) ---------------------

LEAK_MAPPING = FieldMapping.of(Field("clip_seconds", "duration_seconds"))


def _register_leak_candidates() -> None:
    register_provider("acme-leak", object())
    register_provider("fal", object())  # a registration shadowing a built-in
    register_field_mapping("fal", "acme-leak/model*", LEAK_MAPPING)


def _assert_no_leak() -> None:
    assert "acme-leak" not in known_providers()
    with pytest.raises(UnknownProviderError):
        get_provider("acme-leak")
    assert type(get_provider("fal")).__name__ == "FalProvider"
    assert registered_field_mapping("fal", "acme-leak/model-1") is None


def test_registries_restored_undoes_registrations_and_keeps_earlier_ones():
    register_provider("acme-earlier", object())
    with registries_restored():
        _register_leak_candidates()
        assert "acme-leak" in known_providers() and registered_field_mapping("fal", "acme-leak/model-1") is LEAK_MAPPING
    _assert_no_leak()
    assert "acme-earlier" in known_providers()


def test_isolation_1_a_test_registers_a_provider_and_a_field_mapping():
    _register_leak_candidates()
    assert get_provider("acme-leak") is not None


def test_isolation_2_the_next_test_does_not_see_them():
    # Runs after test_isolation_1 in file order: the autouse fixture removed its registrations.
    _assert_no_leak()
