"""Media a prompt row names (images, a video, a mask, audio): data, never instructions.

A row may give media

- inline: base64 or a ``data:`` URL (never opened as anything);
- as an ``http(s)`` URL of a *public* address: the worker fetches it itself, without any
  credential, refusing loopback, private, link-local, multicast, reserved and cloud
  metadata addresses at every redirect hop (hosts listed in the job's
  ``inputs.allow_private_hosts`` excepted), bounded in size and time, and hands the
  provider bytes; a provider never fetches a row's URL on the worker's behalf;
- as a local path, ``file://``, ``gs://``, ``s3://`` (any fsspec URI) only under a
  prefix listed in the job's ``inputs.media_roots``.

``check_row_media`` runs when rows are read (no I/O: a refused value makes the row
``invalid``); ``load_row_media`` runs before the provider call and does the fetching,
re-checking everything (addresses are only known once names are resolved).
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import socket
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator
from urllib.parse import unquote, urljoin, urlsplit

import requests

from providers.errors import InvalidRequestError
from providers.core.http import BodyTooLarge, BodyTooSlow, content_type_from_url, stream_body
from schemas import MediaContent

MAX_REDIRECTS = 5
FETCH_TIMEOUT = 120.0
CONNECT_TIMEOUT = 10.0
MAX_SHOWN = 80
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")
_PROTOCOL_ALIASES = {"gcs": "gs", "s3a": "s3", "local": "file"}
_BLOCKED_NAMES = ("localhost", "localhost.localdomain", "metadata", "metadata.google.internal")


class RowMediaError(InvalidRequestError):
    """A row's media value is refused by the job's input policy or cannot be read.

    The message names the field and the reason; the row is the user's to fix (it stops
    the fallback chain: no provider would do better)."""


@dataclass(frozen=True)
class MediaPolicy:
    """Where row media may come from (built from the job file's ``inputs`` section)."""

    media_roots: tuple[str, ...] = ()
    allow_private_hosts: frozenset[str] = frozenset()
    max_media_bytes: int = 200 * 1024 * 1024
    fetch_timeout: float = FETCH_TIMEOUT
    resolve: Callable[[str], list[str]] | None = field(default=None, compare=False, repr=False)
    """Host -> addresses; ``None`` is the system resolver (tests pass a fake one)."""

    @classmethod
    def from_job(cls, job: Any) -> "MediaPolicy":
        inputs = getattr(job, "inputs", None)
        if inputs is None:
            return cls()
        return cls(
            media_roots=tuple(inputs.media_roots),
            allow_private_hosts=frozenset(h.strip().lower().strip("[]") for h in inputs.allow_private_hosts),
            max_media_bytes=inputs.max_media_bytes,
        )


# -- which values a request carries ---------------------------------------------------------


def media_values(request: Any) -> Iterator[tuple[str, Any]]:
    """(field path, value) of every media input of a request (``image_list[0].image``...)."""
    for index, item in enumerate(getattr(request, "image_list", None) or []):
        yield f"image_list[{index}].image", item.get("image") if isinstance(item, dict) else None
    for name in _media_fields(type(request)):
        if getattr(request, name, None) is not None:
            yield name, getattr(request, name)


@lru_cache(maxsize=None)
def _media_fields(request_type: type) -> tuple[str, ...]:
    """The single-media fields a request type has (asked once per type: each row asks)."""
    return tuple(name for name in ("video", "mask_image", "audio") if name in request_type.model_fields)


def kind_of(value: Any) -> str:
    """'inline' (bytes, base64, data URL), 'url' (http/https) or 'storage' (a path or other URI)."""
    if not isinstance(value, str):
        return "inline"
    if value.startswith("data:"):
        return "inline"
    lowered = value[:8].lower()
    if lowered.startswith(("http://", "https://")):
        return "url"
    if _URI.match(value) or "::" in value:
        return "storage"
    compact = "".join(value.split())
    if _BASE64.match(value) and len(compact) % 4 == 0 and len(compact) >= 4:
        return "inline"
    return "storage"  # a local path (``clip.wav``, ``/data/a.png``, ``../x``) or junk


# -- checking without I/O (when rows are read) ------------------------------------------------


def check_row_media(request: Any, policy: MediaPolicy) -> list[str]:
    """Problems with the request's media under ``policy`` ('field: reason'); no I/O."""
    problems = []
    for name, value in media_values(request):
        try:
            _check_value(value, policy)
        except RowMediaError as exc:
            problems.append(f"{name}: {exc.message}")
    return problems


def _check_value(value: Any, policy: MediaPolicy) -> None:
    kind = kind_of(value)
    if kind == "url":
        _check_url_syntax(value, policy)
    elif kind == "storage":
        _storage_target(value, policy)


def _shown(value: str) -> str:
    text = value.split("?", 1)[0]  # signed URLs carry credentials in the query
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...")


def _check_url_syntax(url: str, policy: MediaPolicy) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise RowMediaError(f"{_shown(url)}: only http(s) URLs are fetched")
    host = (parts.hostname or "").lower()
    if not host:
        raise RowMediaError(f"{_shown(url)}: the URL has no host")
    if host in policy.allow_private_hosts:
        return host
    if host in _BLOCKED_NAMES or host.endswith((".localhost", ".internal", ".local")):
        raise RowMediaError(f"{_shown(url)}: {host} is not a public host{_HINT}")
    literal = _as_ip(host)
    if literal is not None and not _is_public(literal):
        raise RowMediaError(f"{_shown(url)}: {host} is not a public address{_HINT}")
    return host


_HINT = " (allow it explicitly with the job file's inputs.allow_private_hosts)"


def _as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        pass
    try:  # 2130706433, 0x7f000001, 127.1: forms inet_aton accepts and resolvers honour
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RowMediaError(f"cannot resolve {host}: {exc.strerror}") from None
    return sorted({info[4][0] for info in infos})


def check_address(url: str, policy: MediaPolicy) -> None:
    """Refuse ``url`` unless every address its host resolves to is public (or the host,
    or one of those addresses, is in ``allow_private_hosts``)."""
    host = _check_url_syntax(url, policy)
    if host in policy.allow_private_hosts:
        return
    addresses = (policy.resolve or _resolve)(host)
    if any(a.lower().split("%", 1)[0] in policy.allow_private_hosts for a in addresses):
        return
    for address in addresses:
        ip = _as_ip(address)
        if ip is None or not _is_public(ip):
            raise RowMediaError(f"{_shown(url)}: {host} resolves to {address}, not a public address{_HINT}")


# -- local paths and object-store URIs ------------------------------------------------------


def _storage_target(value: str, policy: MediaPolicy) -> str:
    """The normalised path or URI ``value`` names, when it lies under a media root."""
    if "::" in value or any(c in value for c in "*?[{"):
        raise RowMediaError(f"{_shown(value)}: chained or wildcard URIs are not allowed")
    target = _normalise(value)
    if target is None:
        raise RowMediaError(f"{_shown(value)}: '..' is not allowed in media URIs")
    roots = [r for r in (_normalise(root, is_root=True) for root in policy.media_roots) if r]
    for root in roots:
        if target == root.rstrip("/") or target.startswith(root):
            return target
    where = ", ".join(policy.media_roots) if policy.media_roots else "none set"
    raise RowMediaError(
        f"{_shown(value)} is a local path or storage URI outside the job's inputs.media_roots ({where}); "
        "rows may give media inline (base64, data: URL), as a public http(s) URL, or under an allowed root"
    )


def _normalise(value: str, is_root: bool = False) -> str | None:
    """``proto://path`` for URIs, an absolute real path for local files (symlinks resolved);
    roots end with a separator. None when a URI contains ``..``."""
    match = _URI.match(value)
    protocol = value[: match.end() - 3].lower() if match else "file"
    protocol = _PROTOCOL_ALIASES.get(protocol, protocol)
    rest = value[match.end():] if match else value
    if protocol == "file":
        path = os.path.realpath(os.path.expanduser(unquote(rest) if match else rest))
        return path.rstrip(os.sep) + os.sep if is_root else path
    segments = unquote(rest).split("/")
    if ".." in segments or "." in segments:
        return None
    path = posixpath.normpath(rest) if rest else ""
    normalised = f"{protocol}://{path.lstrip('/')}"
    return normalised.rstrip("/") + "/" if is_root else normalised


# -- loading (before the provider call) ------------------------------------------------------


def load_row_media(request: Any, policy: MediaPolicy, storage_options: dict[str, Any] | None = None,
                   session: requests.Session | None = None) -> Any:
    """``request`` with every URL and path it names replaced by the bytes, as the policy allows.

    Inline values are left as they are. Raises :class:`RowMediaError` naming the field.
    """
    updates: dict[str, Any] = {}
    images = [dict(item) for item in getattr(request, "image_list", None) or []]
    for name, value in media_values(request):
        kind = kind_of(value)
        if kind == "inline":
            continue
        try:
            content = _fetch(value, policy, session) if kind == "url" else _read(value, policy, storage_options)
        except RowMediaError as exc:
            raise RowMediaError(f"{name}: {exc.message}") from None
        if name.startswith("image_list["):
            images[int(name[len("image_list["):].split("]", 1)[0])]["image"] = content
            updates["image_list"] = images
        else:
            updates[name] = content
    return request.model_copy(update=updates) if updates else request


def _read(value: str, policy: MediaPolicy, storage_options: dict[str, Any] | None) -> MediaContent:
    from .storage import open_input

    target = _storage_target(value, policy)
    limit = policy.max_media_bytes
    try:
        with open_input(target, "rb", storage_options if "://" in target else None) as handle:
            data = handle.read(limit + 1)
    except (OSError, ValueError) as exc:
        raise RowMediaError(f"{_shown(value)}: cannot read it ({type(exc).__name__})") from None
    if len(data) > limit:
        raise RowMediaError(f"{_shown(value)}: larger than inputs.max_media_bytes ({limit})")
    content_type = content_type_from_url(target) or "application/octet-stream"
    return MediaContent(content=data, content_type=content_type)


def _fetch(url: str, policy: MediaPolicy, session: requests.Session | None) -> MediaContent:
    """GET a public URL, checking the address at every hop; no credentials, bounded."""
    session = session or requests.Session()
    deadline = time.monotonic() + policy.fetch_timeout
    for _hop in range(MAX_REDIRECTS + 1):
        check_address(url, policy)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RowMediaError(f"{_shown(url)}: not fetched within {policy.fetch_timeout:.0f}s")
        try:
            response = session.get(url, stream=True, allow_redirects=False,
                                   timeout=(min(CONNECT_TIMEOUT, remaining), remaining), headers={"Accept": "*/*"})
        except requests.RequestException as exc:
            raise RowMediaError(f"{_shown(url)}: cannot fetch it ({type(exc).__name__})") from None
        with response:
            _check_peer(response, url, policy)
            if response.is_redirect and response.headers.get("location"):
                url = urljoin(response.url, response.headers["location"])
                continue
            if response.status_code >= 400:
                raise RowMediaError(f"{_shown(url)}: HTTP {response.status_code}")
            try:
                data = b"".join(stream_body(response, deadline, max_bytes=policy.max_media_bytes))
            except BodyTooLarge:
                raise RowMediaError(f"{_shown(url)}: larger than inputs.max_media_bytes ({policy.max_media_bytes})") from None
            except BodyTooSlow as exc:
                raise RowMediaError(f"{_shown(url)}: too slow ({exc})") from None
            except Exception as exc:  # connection errors of requests/urllib3/socket
                raise RowMediaError(f"{_shown(url)}: download broke off ({type(exc).__name__})") from None
            content_type = (response.headers.get("content-type") or "").split(";")[0].strip()
            return MediaContent(content=data, content_type=content_type or content_type_from_url(url) or "application/octet-stream")
    raise RowMediaError(f"{_shown(url)}: more than {MAX_REDIRECTS} redirects")


def _check_peer(response: requests.Response, url: str, policy: MediaPolicy) -> None:
    """The address actually connected to must pass too: a name that resolved to a public
    address when checked and to an internal one when connected (DNS rebinding) gets its
    answer refused before a byte of it is used."""
    host = (urlsplit(url).hostname or "").lower()
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None or host in policy.allow_private_hosts:
        return
    try:
        peer = str(sock.getpeername()[0])
    except (OSError, IndexError):
        return
    ip = _as_ip(peer)
    if peer.lower() not in policy.allow_private_hosts and (ip is None or not _is_public(ip)):
        raise RowMediaError(f"{_shown(url)}: connected to {peer}, not a public address{_HINT}")
