"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from providers.core.field_mapping import field_mapping_registrations, restore_field_mapping_registrations
from providers.registry import registrations, restore_registrations
from tests.emulator import ProviderEmulator


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[ProviderEmulator]:
    """One started provider emulator for the whole test session."""
    with ProviderEmulator() as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: ProviderEmulator) -> Iterator[ProviderEmulator]:
    """The session emulator, reset before the test; fails the test if a route
    handler raised while it ran."""
    emulator_server.reset()
    yield emulator_server
    errors = list(emulator_server.handler_errors)
    if errors:
        pytest.fail("emulator route handler error(s):\n" + "\n".join(errors), pytrace=False)


def serve_retired_models(monkeypatch: pytest.MonkeyPatch, models: dict, prefix: str = "") -> None:
    """Lift the retirement of the catalog entries in ``models`` whose names start with
    ``prefix``, for this test only, so a retired model's wire protocol can still be tested."""
    from providers.core.capabilities import Lifecycle

    for name, caps in list(models.items()):
        if name.startswith(prefix):
            monkeypatch.setitem(models, name, caps.model_copy(update={"lifecycle": Lifecycle()}))




@contextmanager
def registries_restored() -> Iterator[None]:
    """Undo, on exit, every provider and field-mapping registration made inside."""
    providers, mappings = registrations(), field_mapping_registrations()
    try:
        yield
    finally:
        restore_registrations(providers)
        restore_field_mapping_registrations(mappings)


@pytest.fixture(autouse=True)
def isolated_registries() -> Iterator[None]:
    """Every test starts from, and leaves behind, the same provider and field-mapping
    registrations: what a test registers (``register_provider``, ``register_field_mapping``)
    is gone after it, so no test depends on another having run first. Registrations made
    by a wider-scoped fixture, set up before this one, are kept."""
    with registries_restored():
        yield
