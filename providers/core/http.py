"""Shared HTTP plumbing for the built-in providers: sending with error translation,
Retry-After parsing, downloads, and turning input media into what an API wants."""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import json
import logging
import mimetypes
import time
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from schemas import MediaType

from providers.core.contract import ProviderContext
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    GenerationTimeoutError,
    InvalidRequestError,
    MediagenError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderHTTPError,
)
from providers.errors import TRANSIENT_STATUS_CODES, is_transient_status  # noqa: F401  (re-exported for downloads)
from providers.core.redaction import Redactor, is_secret_name

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
MAX_REDIRECTS = 10
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ERROR_TEXT = 500
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-fal-request-id", "x-goog-request-id", "x-amzn-requestid")


def url_for(ctx: ProviderContext, path_or_url: str) -> str:
    """An absolute URL: ``path_or_url`` itself, or a path joined onto the context's base URL."""
    if path_or_url.startswith(("http://", "https://")):
        return path_or_url
    return f"{ctx.base_url}/{path_or_url.lstrip('/')}"


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, lower-case host, port with the scheme's default filled in)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def credential_origins(ctx: ProviderContext) -> list[str]:
    """The URLs (origins) the attempt's key may be sent to: the config's endpoint, plus
    what the provider declares with an optional ``credential_origins(ctx)`` method
    (e.g. Azure's resource endpoint, Google's regional Vertex hosts)."""
    declared = getattr(ctx.provider, "credential_origins", None)
    origins = list(declared(ctx)) if callable(declared) else []
    if ctx.base_url:
        origins.append(ctx.base_url)
    return origins


def may_carry_credentials(ctx: ProviderContext, url: str) -> bool:
    """Whether ``url`` is on one of the provider's own origins (scheme, host and port);
    a leading ``*.`` in a declared origin's host matches any subdomain."""
    scheme, host, port = origin_of(url)
    for trusted in credential_origins(ctx):
        t_scheme, t_host, t_port = origin_of(trusted)
        if (scheme, port) != (t_scheme, t_port):
            continue
        if host == t_host or (t_host.startswith("*.") and host.endswith(t_host[1:])):
            return True
    return False


def _without_credentials(
    redactor: Redactor, headers: Mapping[str, str], params: Mapping[str, Any] | None
) -> tuple[dict[str, str], dict[str, Any] | None, list[str]]:
    """Headers and params with anything carrying a credential removed, and their names."""
    dropped = [k for k, v in headers.items() if is_secret_name(k) or redactor.found_in(str(v))]
    kept_headers = {k: v for k, v in headers.items() if k not in dropped}
    kept_params = None
    if params is not None:
        bad = [k for k, v in params.items() if is_secret_name(k) or redactor.found_in(str(v))]
        dropped += bad
        kept_params = {k: v for k, v in params.items() if k not in bad}
    return kept_headers, kept_params, dropped


def send(
    ctx: ProviderContext,
    method: str,
    path_or_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: Any = None,
    files: Any = None,
    params: Mapping[str, Any] | None = None,
    stream: bool = False,
) -> requests.Response:
    """Send one request within the attempt's deadline; raise the taxonomy's error on failure.

    Credentials (any header or parameter whose name looks like one or whose value holds
    the key) go only to the provider's own origins (:func:`may_carry_credentials`): a URL
    from a ledger entry or a provider answer that points elsewhere gets the request
    without them. Redirects are followed here, hop by hop, under the same rule (requests
    would keep custom auth headers such as ``xi-api-key`` across hosts).
    """
    redactor = redactor_for(ctx)
    url = url_for(ctx, path_or_url)
    body: dict[str, Any] = {"json": json_body, "data": data, "files": files}
    for _hop in range(MAX_REDIRECTS + 1):
        remaining = ctx.deadline.remaining()
        if remaining <= 0:
            late = GenerationTimeoutError(
                f"deadline of {ctx.config.timeout}s passed before {method} {_short(redactor, url)}",
                provider=ctx.provider.name,
                model=ctx.model,
            )
            late.request_sent = False  # type: ignore[attr-defined]
            raise late
        hop_headers, hop_params = dict(headers or {}), params
        if ctx.idempotency_key and ctx.provider.idempotency_header and method == "POST":
            hop_headers.setdefault(ctx.provider.idempotency_header, ctx.idempotency_key)
        if not may_carry_credentials(ctx, url):
            hop_headers, hop_params, dropped = _without_credentials(redactor, hop_headers, hop_params)
            if redactor.found_in(url):
                raise ProviderConnectionError(
                    f"refused to send the API key to {_short(redactor, url)}: not an endpoint of {ctx.provider.name}",
                    provider=ctx.provider.name, model=ctx.model, retryable=False,
                )
            if dropped:
                log.info("%s %s is not an endpoint of %s: sent without %s",
                         method, _short(redactor, url), ctx.provider.name, ", ".join(sorted(dropped)))
        try:
            response = ctx.session.request(
                method,
                url,
                headers=hop_headers,
                params=hop_params,
                stream=stream,
                timeout=(min(CONNECT_TIMEOUT, remaining), max(remaining, 0.05)),
                allow_redirects=False,
                **body,
            )
        except requests.Timeout as exc:
            timeout = GenerationTimeoutError(
                redactor.redact(f"{method} {_short(redactor, url)} timed out: {exc}"), provider=ctx.provider.name, model=ctx.model
            )
            timeout.request_sent = _request_was_sent(exc)  # type: ignore[attr-defined]
            raise timeout from None
        except requests.RequestException as exc:
            failure = ProviderConnectionError(
                redactor.redact(f"{method} {_short(redactor, url)} failed: {type(exc).__name__}: {exc}"),
                provider=ctx.provider.name,
                model=ctx.model,
            )
            failure.request_sent = _request_was_sent(exc)  # type: ignore[attr-defined]
            raise failure from None
        if not (response.is_redirect and response.headers.get("location")):
            break
        response.close()
        url = urljoin(response.url, response.headers["location"])
        params = None  # already part of response.url, hence of the Location it resolved against
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method, body = ("GET" if method != "HEAD" else method), {"json": None, "data": None, "files": None}
    else:
        raise ProviderConnectionError(
            f"more than {MAX_REDIRECTS} redirects from {_short(redactor, path_or_url)}",
            provider=ctx.provider.name, model=ctx.model, retryable=False,
        )
    if response.status_code >= 400:
        raise error_from_response(ctx, response)
    return response


def _request_was_sent(exc: requests.RequestException) -> bool:
    """Whether a failed request may have reached the server: only a connection that was
    never made (refused, unresolvable, connect timeout) proves it did not."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        import urllib3.exceptions

        return not isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError))
    return True


def _short(redactor: Redactor, url: str) -> str:
    """A URL for messages: without its query string (signed URLs carry credentials there)."""
    return redactor.redact(url.split("?", 1)[0])


def error_from_response(ctx: ProviderContext, response: requests.Response) -> MediagenError:
    """The taxonomy's error for an HTTP error response: the provider's own mapping first."""
    body = response_body(response)
    specific = ctx.provider.translate_error(ctx, response, body)
    error = specific or default_http_error(ctx, response, body)
    error.provider = error.provider or ctx.provider.name
    error.model = error.model or ctx.model
    error.request_id = error.request_id or request_id_from(response)
    if error.raw_response is None:
        error.raw_response = body
    if error.retry_after is None:
        error.retry_after = parse_retry_after(response.headers)
    return error.redact(redactor_for(ctx))


def default_http_error(ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError:
    """Status-code mapping shared by every provider."""
    status = response.status_code
    detail = error_text(body) or response.reason or "no details"
    common: dict[str, Any] = {"provider": ctx.provider.name, "model": ctx.model}
    if status in (401, 403):
        return ProviderAuthError(
            f"{ctx.provider.name} rejected the API key from {ctx.api_key_source} (HTTP {status}): {detail}",
            status_code=status,
            **common,
        )
    if status in (400, 422):
        return InvalidRequestError(f"{ctx.provider.name} rejected the request (HTTP {status}): {detail}", **common)
    if status == 451:
        return ContentModerationError(f"{ctx.provider.name} refused the content (HTTP 451): {detail}", **common)
    return ProviderHTTPError(f"HTTP {status} from {ctx.provider.name}: {detail}", status_code=status, **common)


def response_body(response: requests.Response) -> Any:
    """The body as JSON when it parses, else as (truncated) text."""
    try:
        return response.json()
    except ValueError:
        return response.text[:2000] if response.content else None


def error_text(body: Any) -> str:
    """Best-effort human message out of the many error shapes providers use.

    Understands plain text, ``{"error": {...}}``, ``{"message": ...}``, RFC 7807 and
    FastAPI/pydantic validation lists (``[{"loc": [...], "msg": ...}]`` -> ``body.field: msg``).
    """
    if isinstance(body, str):
        return body.strip()[:MAX_ERROR_TEXT]
    if isinstance(body, list):
        return "; ".join(error_text(item) for item in body)[:MAX_ERROR_TEXT]
    if not isinstance(body, dict):
        return ""
    if "msg" in body and "loc" in body:
        where = ".".join(str(part) for part in body.get("loc") or ())
        return f"{where}: {body['msg']}" if where else str(body["msg"])
    if isinstance(body.get("error"), str) and isinstance(body.get("message"), str) and len(body["error"]) < 40:
        return f"{body['error']}: {body['message']}"[:MAX_ERROR_TEXT]  # {"error": "Bad Request", "message": "..."}
    for key in ("error", "detail", "message", "title", "msg", "errors", "failure"):
        value = body.get(key)
        if value:
            text = error_text(value) if not isinstance(value, str) else value
            if text:
                return text[:MAX_ERROR_TEXT]
    return json.dumps(body)[:MAX_ERROR_TEXT]


def json_object(ctx: ProviderContext, response: requests.Response) -> dict[str, Any]:
    """The response body as a JSON object, or GenerationFailedError naming what came instead."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GenerationFailedError(
            f"expected a JSON object from {response.url.split('?', 1)[0]}, got {response.text[:200]!r}",
            provider=ctx.provider.name,
            model=ctx.model,
            request_id=request_id_from(response),
        )
    return body


def config_headers(ctx: ProviderContext, names: Mapping[str, str]) -> dict[str, str]:
    """Request headers from ``provider_config``: setting name -> header name, for each
    setting that is set (e.g. ``{"project": "OpenAI-Project"}``)."""
    extra = ctx.config.provider_config
    return {header: str(extra[key]) for key, header in names.items() if extra.get(key)}


def form_value(value: Any) -> str:
    """A multipart/form field value: booleans as ``true``/``false``, objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def multipart_fields(fields: Mapping[str, Any]) -> list[tuple[str, tuple[None, str]]]:
    """Form fields for ``files=`` so ``requests`` sends multipart even without a file part."""
    return [(name, (None, form_value(value))) for name, value in fields.items() if value is not None]


MAX_RAW_STRING = 2048
"""The longest string a raw response keeps: longer ones (inline base64 media, data URLs,
long logs) are replaced by a note of their length. The one limit for every raw response
(providers' ``raw_response``, errors' ``raw_response``, the results table's column)."""


def shrink_raw(value: Any) -> Any:
    """A copy of a raw response without its bulk: strings over :data:`MAX_RAW_STRING`
    characters become ``<N characters omitted>``, bytes ``<N bytes omitted>``.

    Media lands in storage; repeating it in ``raw_response`` (and so in the results
    table) only costs memory.
    """
    if isinstance(value, str):
        return f"<{len(value)} characters omitted>" if len(value) > MAX_RAW_STRING else value
    if isinstance(value, dict):
        return {k: shrink_raw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shrink_raw(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes omitted>"
    return value


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if _looks_like_date(value) else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _looks_like_date(value: str) -> bool:
    try:
        return email.utils.parsedate_to_datetime(value) is not None
    except (TypeError, ValueError):
        return False


def request_id_from(response: requests.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    return None


@functools.lru_cache(maxsize=64)
def _redactor_for_key(key: str | None) -> Redactor:
    return Redactor([key])


def redactor_for(ctx: ProviderContext) -> Redactor:
    """The redactor of the attempt's API key (and its variants)."""
    return _redactor_for_key(ctx.api_key)


def redact(ctx: ProviderContext, text: str) -> str:
    """``text`` with the attempt's API key (and its encoded variants) replaced."""
    return redactor_for(ctx).redact(text)


# -- media in and out -------------------------------------------------------------


MIN_BYTES_PER_SECOND = 16 * 1024
"""Downloads slower than this on average (after :data:`THROUGHPUT_GRACE` seconds) are stalled."""
THROUGHPUT_GRACE = 30.0
READ_SIZE = 1 << 16


class BodyTooSlow(Exception):
    """A body did not arrive within its deadline or at the minimum throughput."""


class BodyTooLarge(Exception):
    """A body is larger than allowed."""


def stream_body(
    response: requests.Response,
    deadline: float,
    *,
    max_bytes: int | None = None,
    min_bytes_per_second: float | None = None,
    grace: float | None = None,
) -> Iterator[bytes]:
    """The body of a streamed ``response``, chunk by chunk, bounded in time and size.

    ``deadline`` is a ``time.monotonic()`` instant: every socket read waits at most until
    then (a server trickling a byte every few seconds cannot stretch a read), and after
    ``grace`` seconds the average rate must stay above ``min_bytes_per_second``.
    Raises :class:`BodyTooSlow` / :class:`BodyTooLarge`; connection errors propagate as
    ``requests``/``urllib3`` exceptions.
    """
    min_rate = MIN_BYTES_PER_SECOND if min_bytes_per_second is None else min_bytes_per_second
    grace = THROUGHPUT_GRACE if grace is None else grace
    raw = response.raw
    started = time.monotonic()
    received = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise BodyTooSlow(f"deadline passed after {received} bytes")
        elapsed = now - started
        if elapsed > grace and received < min_rate * elapsed:
            raise BodyTooSlow(f"{received} bytes in {elapsed:.1f}s, below {min_rate:.0f} bytes/s")
        _limit_socket_wait(raw, deadline - now)
        try:
            chunk = raw.read1(READ_SIZE, decode_content=True)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise BodyTooSlow(f"no data before the deadline after {received} bytes") from exc
        if not chunk:
            return
        received += len(chunk)
        if max_bytes is not None and received > max_bytes:
            raise BodyTooLarge(f"larger than {max_bytes} bytes")
        yield chunk


def _limit_socket_wait(raw: Any, seconds: float) -> None:
    """Make the next socket read of ``raw`` (a urllib3 response) wait at most ``seconds``."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        try:
            current = sock.gettimeout()
            sock.settimeout(max(0.01, seconds if current is None else min(current, seconds)))
        except OSError:
            pass


def download(ctx: ProviderContext, url: str, *, headers: Mapping[str, str] | None = None) -> tuple[bytes, str | None]:
    """Download ``url`` fully (for SDK results and input media) within the attempt's deadline,
    checking its length. The key goes along only to the provider's own origins."""
    response = send(ctx, "GET", url, headers=headers, stream=True)
    with response:
        chunks = list(_iter_checked(ctx, response))
    return b"".join(chunks), response.headers.get("content-type")


def stream_get(
    session: requests.Session, url: str, *, headers: Mapping[str, str] | None = None,
    timeout: tuple[float, float] | float,
) -> requests.Response:
    """GET ``url`` as a stream (for the media store, which has no attempt context), following
    redirects hop by hop: ``headers`` (a result URL's credentials) go to ``url``'s own origin
    only, never to a host it redirects to. The caller closes the response and judges its
    status (:func:`is_transient_status`)."""
    origin = origin_of(url)
    for _hop in range(MAX_REDIRECTS + 1):
        hop_headers = dict(headers or {}) if origin_of(url) == origin else {}
        response = session.get(url, headers=hop_headers, stream=True, timeout=timeout, allow_redirects=False)
        if not (response.is_redirect and response.headers.get("location")):
            return response
        response.close()
        url = urljoin(response.url, response.headers["location"])
    raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")


def media_type(content_type: str | None) -> str | None:
    """A ``Content-Type`` header's bare MIME type (``video/mp4; codecs=..`` -> ``video/mp4``)."""
    return (content_type or "").split(";")[0].strip() or None


def _iter_checked(ctx: ProviderContext, response: requests.Response) -> Iterable[bytes]:
    expected = response.headers.get("content-length")
    received = 0
    where = _short(redactor_for(ctx), response.url)
    deadline = time.monotonic() + max(ctx.deadline.remaining(), 0.0)
    try:
        for chunk in stream_body(response, deadline):
            received += len(chunk)
            yield chunk
    except BodyTooSlow as exc:
        raise GenerationTimeoutError(
            f"download of {where} too slow: {exc} (timeout {ctx.config.timeout}s)",
            provider=ctx.provider.name,
            model=ctx.model,
        ) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise ProviderConnectionError(
            f"download of {where} broke off after {received} bytes: {type(exc).__name__}",
            provider=ctx.provider.name,
            model=ctx.model,
        ) from None
    if expected is not None and expected.isdigit() and received != int(expected):
        raise ProviderConnectionError(
            f"download of {where} truncated: {received} of {expected} bytes",
            provider=ctx.provider.name,
            model=ctx.model,
        )


def content_type_from_url(url: str) -> str | None:
    """The MIME type the extension of a URL's path (or a file name) names, if it is known:
    ``providers.media.formats.CONTENT_TYPES`` first, then the platform's table."""
    from providers.media.formats import CONTENT_TYPES# lazy: the media toolkit is heavy and rarely needed here

    name = (urlsplit(url).path if "://" in url else url.split("?", 1)[0]).rsplit("/", 1)[-1]
    if "." not in name:
        return None
    extension = name.rsplit(".", 1)[-1].lower()
    return CONTENT_TYPES.get(extension) or mimetypes.guess_type(f"x.{extension}")[0]


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def media_bytes(ctx: ProviderContext, media: MediaType, *, default_type: str = "application/octet-stream") -> tuple[bytes, str]:
    """Input media as raw bytes and a MIME type: decodes base64/data URLs, downloads URLs."""
    if isinstance(media, dict):
        return media["content"], media.get("content_type") or default_type
    if isinstance(media, (bytes, bytearray)):
        return bytes(media), default_type
    if is_url(media):
        data, content_type = download(ctx, media)
        return data, (content_type or default_type).split(";")[0]
    if media.startswith("data:"):
        content_type = media[5:].partition(",")[0].split(";")[0] or default_type
        return decode_base64(media, lambda: _not_media(media)), content_type
    return decode_base64(media, lambda: _not_media(media)), default_type


def decode_base64(value: str, error: Callable[[], Exception]) -> bytes:
    """Strictly decode base64 (a data URL's payload too); raises ``error()`` when it is not."""
    payload = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise error() from None


def _not_media(value: str) -> InvalidRequestError:
    value = value.partition(",")[2] if value.startswith("data:") else value
    preview = value[:40] + ("..." if len(value) > 40 else "")
    return InvalidRequestError(f"media {preview!r} is neither an http(s) URL nor valid base64")


def decode_output_base64(payload: str, *, provider: str, model: str | None = None, what: str = "media") -> bytes:
    """Strictly decode base64 media a provider returned; garbage is the provider's failure."""
    return decode_base64(payload, lambda: GenerationFailedError(
        f"{provider} returned {what} that is not valid base64", provider=provider, model=model
    ))


def data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def media_url_or_data_url(ctx: ProviderContext, media: MediaType, *, default_type: str = "image/png") -> str:
    """For APIs that accept a URL or a data URL: keep URLs, inline everything else."""
    if is_url(media):
        return media  # type: ignore[return-value]
    data, content_type = media_bytes(ctx, media, default_type=default_type)
    return data_url(data, content_type)
