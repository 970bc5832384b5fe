"""The provider registry: lazy built-ins, runtime registration, clear errors, cheap import."""

import subprocess
import sys

import pytest

from providers import get_provider_capabilities, known_providers, register_provider
from providers.registry import BUILTIN_PROVIDERS, UnknownProviderError, get_provider


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
