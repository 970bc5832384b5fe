"""API keys on workers: from an environment variable or a Secret Manager secret version.

Keys are resolved once per worker process (in ``DoFn.setup``) and cached there; they
never travel through pipeline options, pickled DoFns, outputs or logs.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any, Callable

from providers.core.redaction import Redactor
from schemas import ConfigEntry
from schemas.base import InvalidAPIKeyError, normalise_api_key

log = logging.getLogger(__name__)

SecretClientFactory = Callable[[], Any]
"""Builds an object with ``access_secret_version(request={"name": ...})`` (the
google-cloud-secret-manager client interface)."""

SECRET_CLIENT_FACTORY_ENV = "MEDIAGEN_SECRET_CLIENT_FACTORY"
"""Optional ``module:callable`` building the secret client instead of Secret Manager's
(read on the worker when the first secret is resolved; for tests and other secret stores)."""


class KeyResolutionError(RuntimeError):
    """A key source names a secret that cannot be read."""


def default_secret_client() -> Any:
    """A Secret Manager client, or the factory named by ``MEDIAGEN_SECRET_CLIENT_FACTORY``."""
    spec = os.environ.get(SECRET_CLIENT_FACTORY_ENV)
    if spec:
        module_name, _, attribute = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise KeyResolutionError(f"{SECRET_CLIENT_FACTORY_ENV}={spec!r} names no importable callable: {exc}") from None
        return factory()
    from google.cloud import secretmanager  # lazy: only jobs that name secrets need it

    return secretmanager.SecretManagerServiceClient()


class KeyResolver:
    """Resolves each config's key source; the result is cached per process.

    Keys are normalised on resolution (a mounted secret's trailing newline is stripped; a
    key with whitespace or control characters inside is refused without being shown), and
    every resolved key joins :attr:`redactor`, the process's one list of secrets to scrub.
    """

    def __init__(self, secret_client_factory: SecretClientFactory = default_secret_client) -> None:
        self._secret_client_factory = secret_client_factory
        self._client: Any = None
        self._cache: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self.redactor = Redactor()

    def __call__(self, entry: ConfigEntry) -> str | None:
        return self.resolve(entry)

    def resolve(self, entry: ConfigEntry) -> str | None:
        if entry.secret:
            return self._cached(f"secret:{entry.secret}", lambda: self._read_secret(entry.secret or ""))
        if entry.api_key_env:
            return self._cached(f"env:{entry.api_key_env}", lambda: self._read_env(entry.api_key_env or ""))
        return None

    def _cached(self, source: str, read: Callable[[], str | None]) -> str | None:
        with self._lock:
            if source not in self._cache:
                raw = read()
                self.redactor.add(raw)  # the raw form too: it is what a careless echo would show
                try:
                    key = normalise_api_key(raw, source)
                except InvalidAPIKeyError as exc:
                    raise KeyResolutionError(str(exc)) from None
                self.redactor.add(key)
                self._cache[source] = key
            return self._cache[source]

    @staticmethod
    def _read_env(name: str) -> str | None:
        value = os.environ.get(name)
        if not value or not value.strip():
            log.warning("environment variable %s is not set; configs using it will fail with an auth error", name)
            return None
        return value

    def _read_secret(self, name: str) -> str:
        if self._client is None:
            self._client = self._secret_client_factory()
        try:
            response = self._client.access_secret_version(request={"name": name})
        except Exception as exc:  # the client raises many types; none may carry the payload
            raise KeyResolutionError(f"cannot read secret {name}: {type(exc).__name__}") from None
        try:
            return response.payload.data.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyResolutionError(f"secret {name} is not UTF-8 text (value not shown)") from None

    def __getstate__(self) -> dict[str, Any]:
        # Never pickle resolved keys: a copy resolves them again where it runs.
        return {"_secret_client_factory": self._secret_client_factory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["_secret_client_factory"])  # type: ignore[misc]
