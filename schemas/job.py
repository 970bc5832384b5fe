"""The job file: which modality, which named generation configs, which limits.

API keys are never written here: a config names where its key comes from
(``api_key_env`` or a Secret Manager ``secret``) and the worker resolves it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .audio import AudioGenerationConfig
from .image import ImageGenerationConfig
from .limits import ProviderLimits
from .media import Modality
from .mock import MockConfig
from .modalities import modality_spec
from .pricing import BudgetSettings, Price
from .video import VideoGenerationConfig

AnyGenerationConfig = Union[VideoGenerationConfig, ImageGenerationConfig, AudioGenerationConfig]
_PASSED_THROUGH = ("base_url", "api_version", "timeout", "max_poll_attempts", "poll_interval", "mock", "provider_config")


class ConfigEntry(BaseModel):
    """One generation config of a job file (a fallback entry has the same shape, minus the name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(default=None, description="Environment variable holding the key")
    secret: str | None = Field(
        default=None, description="Secret Manager version, e.g. projects/P/secrets/fal-key/versions/latest"
    )
    base_url: str | None = None
    api_version: str | None = None
    timeout: int | None = Field(default=None, gt=0)
    max_poll_attempts: int | None = Field(default=None, gt=0)
    poll_interval: int | None = Field(default=None, ge=0)
    mock: MockConfig | None = None
    provider_config: dict[str, Any] = Field(default_factory=dict)
    fallback_configs: list[ConfigEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_key_source(self) -> "ConfigEntry":
        if self.api_key_env and self.secret:
            raise ValueError(
                f"give either api_key_env ({self.api_key_env!r}) or secret ({self.secret!r}), not both"
            )
        return self

    def build(
        self, modality: Modality, resolve_key: Callable[["ConfigEntry"], str | None] | None = None
    ) -> AnyGenerationConfig:
        """The SDK config for ``modality``, keys filled in by ``resolve_key`` (on the worker)."""
        fields: dict[str, Any] = {"provider": self.provider, "model": self.model}
        fields.update({k: getattr(self, k) for k in _PASSED_THROUGH if getattr(self, k) is not None})
        if resolve_key is not None:
            fields["api_key"] = resolve_key(self)
        if self.fallback_configs:
            fields["fallback_configs"] = [f.build(modality, resolve_key) for f in self.fallback_configs]
        return modality_spec(modality).config_type(**fields)

    def walk(self) -> Iterator["ConfigEntry"]:
        """This entry and every fallback below it."""
        yield self
        for fallback in self.fallback_configs:
            yield from fallback.walk()

    @property
    def is_mocked(self) -> bool:
        return self.provider == "mock" or (self.mock is not None and self.mock.enabled)


class RetrySettings(BaseModel):
    """Same-config retries after transient errors (see providers.RetryPolicy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_retries: int = Field(default=2, ge=0)
    base_delay: float = Field(default=1.0, ge=0)
    max_delay: float = Field(default=30.0, ge=0)


class WindowSettings(BaseModel):
    """How many jobs one worker keeps in flight, on how many threads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_in_flight: int = Field(default=100, ge=1)
    threads: int = Field(default=8, ge=1)


class GlobalRateLimit(BaseModel):
    """One submit budget for the whole job across all workers, kept by an Envoy Rate Limit
    Service (Beam's ``EnvoyRateLimiter``). Descriptors name the budget per provider."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_address: str = Field(min_length=1, description="host:port of the Envoy RLS (gRPC)")
    domain: str = Field(min_length=1)
    descriptors: dict[str, list[dict[str, str]]] = Field(
        min_length=1, description="per provider (or provider/model): the RLS descriptors of its budget"
    )
    timeout: float = Field(default=5.0, gt=0)


class InputSettings(BaseModel):
    """What media a prompt row may make the worker read (rows are data, not instructions).

    By default a row may give media inline (base64, data URL) or as an http(s) URL of a
    public address; the worker fetches such URLs itself, refusing loopback, private,
    link-local and metadata addresses (also after redirects). Local paths and object-store
    URIs are read only under ``media_roots``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    media_roots: list[str] = Field(
        default_factory=list,
        description="prefixes rows may read media from, e.g. gs://bucket/audio/ or /data/clips/",
    )
    allow_private_hosts: list[str] = Field(
        default_factory=list,
        description="hosts (names or IPs) allowed even though they resolve to a non-public address, e.g. 127.0.0.1",
    )
    max_media_bytes: int = Field(default=200 * 1024 * 1024, gt=0, description="largest input media a row may name")


class JobConfig(BaseModel):
    """A whole job file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    modality: Modality = "video"
    configs: list[ConfigEntry] = Field(min_length=1)
    limits: dict[str, ProviderLimits] = Field(
        default_factory=dict, description="Per provider (or provider/model): max_in_flight, submits_per_second, ..."
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    window: WindowSettings = Field(default_factory=WindowSettings)
    global_rate_limit: GlobalRateLimit | None = None
    inputs: InputSettings = Field(default_factory=InputSettings)
    prices: dict[str, list[Price]] = Field(
        default_factory=dict,
        description="Per provider/model (a trailing * names a family): prices replacing the catalog's, "
        "e.g. negotiated rates or models the catalog does not know",
    )
    budget: BudgetSettings | None = None

    @model_validator(mode="after")
    def _names_are_unique(self) -> "JobConfig":
        names = [c.name or f"config{i + 1}" for i, c in enumerate(self.configs)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"config names must be unique; repeated: {', '.join(duplicates)}")
        for index, entry in enumerate(self.configs):
            entry.build(self.modality)  # surfaces modality-specific errors now, not on a worker
        for name in self.prices:
            if name.count("/") < 1 or not all(name.split("/", 1)):
                raise ValueError(f"prices: key {name!r} must be provider/model (e.g. fal/fal-ai/veo3)")
        return self

    @property
    def config_names(self) -> list[str]:
        return [c.name or f"config{i + 1}" for i, c in enumerate(self.configs)]

    def entry(self, name: str | None) -> ConfigEntry:
        """The config called ``name``; the first one when ``name`` is None or empty."""
        if not name:
            return self.configs[0]
        for config_name, entry in zip(self.config_names, self.configs):
            if config_name == name:
                return entry
        raise KeyError(f"config {name!r} is not in the job (known: {', '.join(self.config_names)})")

    def entries(self) -> Iterator[ConfigEntry]:
        for entry in self.configs:
            yield from entry.walk()


DEFAULT_JOB = JobConfig(
    modality="video",
    configs=[ConfigEntry(name="mock", provider="mock", model="mock-video", mock=MockConfig())],
)
"""Without --config: the offline mock making video."""
