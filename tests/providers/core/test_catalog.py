"""Model lifecycle: retired models are skipped before any call, deprecated ones warn once,
and the catalog (and the README table generated from it) never keeps a stale deprecation."""

import datetime
import logging

import pytest

from providers import generate_video
from providers.core import capabilities as capabilities_module
from providers.core.capabilities import Lifecycle, ModelCapabilities, check_request
from providers.core.catalog import COLUMNS, table_rows
from providers.errors import UnsupportedRequestError
from providers.registry import BUILTIN_PROVIDERS, get_provider
from schemas import MockConfig, VideoGenerationConfig, VideoGenerationRequest

RETIRED = ModelCapabilities(
    modalities=frozenset({"video"}),
    lifecycle=Lifecycle(status="retired", date=datetime.date(2026, 9, 24), replacement="new-model", source="the SDK docstring"),
)
DEPRECATED = ModelCapabilities(
    modalities=frozenset({"video"}),
    lifecycle=Lifecycle(status="deprecated", date=datetime.date(2027, 1, 15), replacement="x", source="deprecations page"),
)


@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(capabilities_module, "_warned", set())


def test_retired_model_is_refused_with_date_source_and_replacement():
    with pytest.raises(UnsupportedRequestError) as info:
        check_request(RETIRED, "video", VideoGenerationRequest(prompt="x"), provider="acme", model="old-model")
    assert str(info.value) == "old-model was retired on 2026-09-24 per the SDK docstring; use new-model"


def test_retired_is_checked_before_anything_else():
    """Even a request the model would otherwise refuse says 'retired' (the actionable reason)."""
    with pytest.raises(UnsupportedRequestError, match="was retired"):
        check_request(RETIRED, "image", object(), model="old-model")


def test_deprecated_model_warns_once_per_provider_and_model(caplog, fresh_warnings):
    request = VideoGenerationRequest(prompt="x")
    with caplog.at_level(logging.WARNING, logger="providers.core.capabilities"):
        for _ in range(3):
            check_request(DEPRECATED, "video", request, provider="acme", model="old")
        check_request(DEPRECATED, "video", request, provider="other", model="old")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "acme model old is deprecated and shuts down on 2027-01-15; use x (deprecations page)",
        "other model old is deprecated and shuts down on 2027-01-15; use x (deprecations page)",
    ]


def test_active_model_neither_warns_nor_refuses(caplog, fresh_warnings):
    with caplog.at_level(logging.WARNING, logger="providers.core.capabilities"):
        check_request(ModelCapabilities(modalities=frozenset({"video"})), "video", VideoGenerationRequest(prompt="x"))
    assert caplog.records == []


def test_retired_model_in_a_chain_is_a_skipped_attempt_and_the_chain_falls_through(monkeypatch):
    xai = get_provider("xai")
    monkeypatch.setitem(type(xai).models, "grok-retired-video", RETIRED)
    chain = VideoGenerationConfig(
        provider="xai", model="grok-retired-video", api_key="k",
        fallback_configs=[VideoGenerationConfig(provider="fal", model="fal-ai/veo3", mock=MockConfig())],
    )
    response = generate_video(chain, prompt="x", duration_seconds=4)
    first, second = response.execution_metadata.attempts
    assert (first.provider, first.status, first.error_type) == ("xai", "skipped", "UnsupportedRequestError")
    assert "grok-retired-video was retired on 2026-09-24" in first.error_message
    assert (second.provider, second.status) == ("fal", "success")


@pytest.mark.parametrize(
    ("lifecycle", "cell"),
    [
        (Lifecycle(), "active"),
        (Lifecycle(status="deprecated", date=datetime.date(2027, 1, 15), replacement="x"), "deprecated, shuts down 2027-01-15 → x"),
        (Lifecycle(status="retired", date=datetime.date(2026, 9, 24)), "retired 2026-09-24"),
        (Lifecycle(status="deprecated"), "deprecated"),
    ],
)
def test_lifecycle_cell(lifecycle, cell):
    assert lifecycle.describe() == cell


def test_lifecycle_is_strict():
    with pytest.raises(ValueError, match="status"):
        Lifecycle(status="sunset")
    with pytest.raises(ValueError, match="replacment"):
        Lifecycle(replacment="x")


def test_readme_table_has_a_lifecycle_column():
    assert COLUMNS[-1] == "lifecycle"
    assert all(len(row) == len(COLUMNS) for row in table_rows())


def _catalog():
    for name in sorted(BUILTIN_PROVIDERS):
        if name == "mock":
            continue
        for model, caps in getattr(get_provider(name), "models", {}).items():
            yield name, model, caps


def test_no_catalog_entry_is_deprecated_past_its_shutdown_date():
    """Deliberately date-dependent: it fails on the day a documented shutdown passes, so the
    entry gets flipped to ``retired`` (and refused) instead of silently failing at the provider."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    stale = [
        f"{name} {model} (shutdown {caps.lifecycle.date})"
        for name, model, caps in _catalog()
        if caps.lifecycle.status == "deprecated" and caps.lifecycle.date is not None and caps.lifecycle.date < today
    ]
    assert stale == [], "set lifecycle status='retired' for: " + ", ".join(stale)


def test_every_non_active_catalog_entry_names_its_source():
    missing = [f"{name} {model}" for name, model, caps in _catalog() if caps.lifecycle.status != "active" and not caps.lifecycle.source]
    assert missing == []


def test_an_empty_choice_means_the_model_takes_no_such_parameter():
    caps = ModelCapabilities(modalities=frozenset({"video"}), durations=(), resolutions=(), aspect_ratios=())
    request = VideoGenerationRequest(prompt="x", duration_seconds=5, resolution="720p", aspect_ratio="16:9")
    with pytest.raises(UnsupportedRequestError) as info:
        check_request(caps, "video", request)
    assert str(info.value).count("this model takes no") == 3
    assert (caps.describe()["durations"], caps.describe()["resolutions"]) == ("none", "none")
