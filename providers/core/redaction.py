"""The one place secrets are recognised and removed from anything we print, store or raise.

- :class:`Redactor` knows the keys in use and replaces them, and their obvious variants
  (surrounding whitespace, URL-encoded, base64 of ``key``, ``user:key`` and ``key:``
  as HTTP Basic auth carries them), in text and in nested values.
- :func:`is_secret_name` tells whether a field name (``apiKey``, ``x-api-key``,
  ``private_key``, ``Authorization``...) probably holds a credential;
  :func:`mask_secrets` masks such fields in nested data before it is echoed, and
  :func:`describe_validation_error` in the messages of invalid input.
- :class:`RedactingFilter` / :func:`install_log_redaction` keep keys out of log output.
- Keys are normalised where they are resolved (:func:`normalise_api_key`, defined in
  ``schemas.base`` because configs validate with it).
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from typing import Any, Iterable
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

from schemas.base import InvalidAPIKeyError, normalise_api_key

__all__ = [
    "MASK",
    "InvalidAPIKeyError",
    "Redactor",
    "describe_validation_error",
    "is_secret_name",
    "mask_secrets",
    "normalise_api_key",
    "RedactingFilter",
    "install_log_redaction",
    "redact",
    "redacted_job_data",
]

MASK = "***"
MIN_KEY_CHARS = 4
"""Shorter values are not treated as keys: replacing them would mangle ordinary text."""
MIN_VARIANT_CHARS = 8
"""Encoded fragments shorter than this are too likely to occur by chance."""

_SECRET_WORDS = frozenset({
    "key", "apikey", "token", "secret", "bearer", "password", "passwd", "pwd", "credential", "credentials",
    "authorization", "auth", "private", "cookie", "signature", "passphrase",
})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
KEY_SOURCE_FIELDS = frozenset({"api_key_env", "secret"})
"""Job-file fields that name where a key comes from (an env var, a Secret Manager
version): not secrets themselves, kept visible in manifests."""


def is_secret_name(name: Any) -> bool:
    """Whether a field called ``name`` probably holds a credential.

    Splits ``apiKey``, ``x-api-key``, ``PRIVATE_KEY``, ``clientSecret`` into words and
    looks for key / token / secret / bearer / password / credential / authorization /
    private (and a few more); ``keyframes`` is not a secret, ``key_frames`` is masked
    (echoing less is the safe mistake).
    """
    if not isinstance(name, str):
        return False
    words = {w.lower() for w in _WORD.findall(name)}
    return bool(words & _SECRET_WORDS) or "apikey" in name.lower().replace("-", "").replace("_", "")


def mask_secrets(value: Any, keep: frozenset[str] = frozenset()) -> Any:
    """A copy of nested dicts/lists with every value under a secret-looking name masked.

    Names in ``keep`` are left alone at any depth.
    """
    if isinstance(value, dict):
        return {
            k: (MASK if v is not None and k not in keep and is_secret_name(k) else mask_secrets(v, keep))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, keep) for v in value]
    return value


def redacted_job_data(job: Any) -> dict[str, Any]:
    """A ``JobConfig`` as JSON data with secret-looking values masked, for manifests.

    Key sources (``api_key_env``, ``secret``) stay visible on the config entries; inside
    ``provider_config`` every secret-looking name is masked, whatever it is called.
    """
    data = job.model_dump(mode="json")

    def entry(config: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in config.items() if k not in ("provider_config", "fallback_configs")}
        out = mask_secrets(out, keep=KEY_SOURCE_FIELDS)
        if isinstance(out.get("base_url"), str):
            out["base_url"] = mask_url(out["base_url"])
        out["provider_config"] = mask_secrets(config.get("provider_config") or {})
        out["fallback_configs"] = [entry(f) for f in config.get("fallback_configs") or []]
        return out

    # The rest of a job file has a fixed schema without secrets (Envoy descriptors have "key"s).
    return {**data, "configs": [entry(c) for c in data.get("configs") or []]}


MAX_VALUE_SHOWN = 120
"""Longest ``repr`` of an invalid value a validation message repeats."""


def describe_validation_error(exc: Any, root: str = "value", keep: frozenset[str] = KEY_SOURCE_FIELDS) -> str:
    """A pydantic ``ValidationError`` as one line: ``field.path[0].name: message (got value)``
    per problem, joined by ``; ``. A missing field says so; nested objects are not
    repeated; a value under a secret-looking name (other than ``keep``) shows as ``***``;
    ``root`` names the whole input when the problem is not in a field."""
    parts = []
    for problem in exc.errors(include_url=False):
        loc = problem["loc"]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or root
        if problem["type"] == "missing":
            parts.append(f"{where}: required field is missing")
            continue
        value = problem.get("input")
        if any(is_secret_name(p) and p not in keep for p in loc):
            shown = f" (got {MASK})"
        elif isinstance(value, (dict, list)):
            shown = ""
        else:
            text = repr(value)
            shown = f" (got {text[:MAX_VALUE_SHOWN] + '...' if len(text) > MAX_VALUE_SHOWN else text})"
        parts.append(f"{where}: {problem['msg']}{shown}")
    return "; ".join(parts)


def mask_url(url: str) -> str:
    """``url`` with a password in it (``user:pass@``) and secret-looking query values masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(
        f"{name}={MASK}" if is_secret_name(name) else f"{name}={value}" if sep else name
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _base64_fragments(secret: bytes) -> set[str]:
    """Base64 text that encodes ``secret`` whatever precedes it (``user:`` of Basic auth).

    For each of the three alignments, keep only the characters whose 6 bits all come
    from ``secret``; they appear verbatim in any base64 of a string containing it.
    """
    fragments = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret + b"\0\0").decode("ascii")
        first = -(-8 * offset // 6)  # first character starting at or after the secret's first bit
        last = (8 * (offset + len(secret))) // 6  # characters ending at or before its last bit
        fragment = encoded[first:last]
        if len(fragment) >= MIN_VARIANT_CHARS:
            fragments.add(fragment)
            fragments.add(fragment.replace("+", "-").replace("/", "_"))  # base64url
    return fragments


def key_variants(key: str) -> set[str]:
    """The forms a key takes in text: as is, stripped, URL-encoded and base64 fragments."""
    variants = set()
    for form in {key, key.strip()}:
        if len(form) < MIN_KEY_CHARS:
            continue
        variants.update({form, quote(form, safe=""), quote_plus(form)})
        variants.update(_base64_fragments(form.encode("utf-8")))
    return {v for v in variants if len(v) >= MIN_KEY_CHARS}


class Redactor:
    """The secrets of one process (or one attempt) and how to remove them.

    Thread-safe; picklable without its keys (a copy redacts nothing until keys are added:
    secrets never travel in pickles).
    """

    def __init__(self, keys: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for key in keys:
            self.add(key)

    def add(self, key: str | None) -> None:
        """Remember ``key`` (ignored when ``None`` or too short to be a key)."""
        if not key or len(key.strip()) < MIN_KEY_CHARS:
            return
        with self._lock:
            if key in self._keys:
                return
            self._keys.add(key)
            variants = set().union(*(key_variants(k) for k in self._keys))
            # Longest first, so a key is replaced whole rather than one of its fragments.
            ordered = sorted(variants, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __bool__(self) -> bool:
        return bool(self._keys)

    def found_in(self, text: str | None) -> bool:
        """Whether ``text`` contains a key or one of its variants."""
        pattern = self._pattern
        return bool(text and pattern is not None and pattern.search(text))

    def redact(self, text: Any) -> Any:
        """``text`` with every key variant replaced by ``***`` (non-strings returned as they are)."""
        pattern = self._pattern
        if not isinstance(text, str) or pattern is None:
            return text
        return pattern.sub(MASK, text)

    def redact_value(self, value: Any) -> Any:
        """A copy of nested dicts/lists/tuples with every string redacted (keys of dicts too)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(k): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.redact_value(v) for v in value)
        if isinstance(value, (bytes, bytearray)):
            text = bytes(value).decode("utf-8", "replace")
            return text.encode("utf-8") if not self.found_in(text) else self.redact(text).encode("utf-8")
        return value

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Redactor({len(self._keys)} keys)"


def redact(text: Any, keys: Iterable[str | None]) -> Any:
    """``text`` with ``keys`` (and their variants) replaced by ``***``."""
    return Redactor(keys).redact(text)


class RedactingFilter(logging.Filter):
    """A logging filter that formats each record and removes the redactor's keys from it
    (and from its exception text), so no handler it guards can write a key."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor:
            message = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.msg, record.args = self.redactor.redact(message), None
            if record.exc_text:
                record.exc_text = self.redactor.redact(record.exc_text)
        return True


def install_log_redaction(redactor: Redactor, logger: logging.Logger | None = None) -> None:
    """Guard every handler of ``logger`` (default: the root logger) with one
    :class:`RedactingFilter` for ``redactor``; calling it again adds nothing."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        for existing in handler.filters:
            if isinstance(existing, RedactingFilter) and existing.redactor is redactor:
                break
        else:
            handler.addFilter(RedactingFilter(redactor))
