"""Shared HTTP plumbing for the built-in providers: sending with error translation,
Retry-After parsing, downloads, and turning input media into what an API wants."""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import re
import time
from typing import Any, Iterable, Mapping

import requests

from schemas import MediaType

from .base import ProviderContext
from .errors import (
    ContentModerationError,
    GenerationFailedError,
    GenerationTimeoutError,
    InvalidRequestError,
    MediagenError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderHTTPError,
)

CONNECT_TIMEOUT = 10.0
MAX_ERROR_TEXT = 500
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-fal-request-id", "x-goog-request-id", "x-amzn-requestid")


def url_for(ctx: ProviderContext, path_or_url: str) -> str:
    """An absolute URL: ``path_or_url`` itself, or a path joined onto the context's base URL."""
    if path_or_url.startswith(("http://", "https://")):
        return path_or_url
    return f"{ctx.base_url}/{path_or_url.lstrip('/')}"


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
    """Send one request within the attempt's deadline; raise the taxonomy's error on failure."""
    remaining = ctx.deadline.remaining()
    if remaining <= 0:
        raise GenerationTimeoutError(
            f"deadline of {ctx.config.timeout}s passed before {method} {path_or_url}",
            provider=ctx.provider.name,
            model=ctx.model,
        )
    try:
        response = ctx.session.request(
            method,
            url_for(ctx, path_or_url),
            headers=dict(headers or {}),
            json=json_body,
            data=data,
            files=files,
            params=params,
            stream=stream,
            timeout=(min(CONNECT_TIMEOUT, remaining), max(remaining, 0.05)),
        )
    except requests.Timeout as exc:
        raise GenerationTimeoutError(
            redact(ctx, f"{method} {path_or_url} timed out: {exc}"), provider=ctx.provider.name, model=ctx.model
        ) from None
    except requests.RequestException as exc:
        raise ProviderConnectionError(
            redact(ctx, f"{method} {path_or_url} failed: {type(exc).__name__}: {exc}"),
            provider=ctx.provider.name,
            model=ctx.model,
        ) from None
    if response.status_code >= 400:
        raise error_from_response(ctx, response)
    return response


def error_from_response(ctx: ProviderContext, response: requests.Response) -> MediagenError:
    """The taxonomy's error for an HTTP error response: the provider's own mapping first."""
    body = response_body(response)
    specific = ctx.provider.translate_error(ctx, response, body)
    error = specific or default_http_error(ctx, response, body)
    error.message = redact(ctx, error.message)
    error.provider = error.provider or ctx.provider.name
    error.model = error.model or ctx.model
    error.request_id = error.request_id or request_id_from(response)
    if error.raw_response is None:
        error.raw_response = body
    if error.retry_after is None:
        error.retry_after = parse_retry_after(response.headers)
    return error


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


BASE64_MIN_CHARS = 256


def elide_base64(value: Any, keys: frozenset[str] | None = None) -> Any:
    """A copy of a raw response with inline media payloads replaced by a note of their size.

    Media lands in storage; repeating it as base64 in ``raw_response`` (and so in the
    results table) only costs memory. With ``keys`` only those fields are considered;
    otherwise any long base64-looking string is.
    """
    if isinstance(value, dict):
        return {k: _elide(k, v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [elide_base64(v, keys) for v in value]
    return value


def _elide(key: str, value: Any, keys: frozenset[str] | None) -> Any:
    if isinstance(value, str) and len(value) > BASE64_MIN_CHARS and (keys is None or key in keys):
        if keys is not None or _BASE64_TEXT.fullmatch(value[:4096]):
            return f"<{len(value)} base64 characters omitted>"
    return elide_base64(value, keys)


_BASE64_TEXT = re.compile(r"(data:[\w/+.-]+;base64,)?[A-Za-z0-9+/=\s_-]+")


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


def redact(ctx: ProviderContext, text: str) -> str:
    """``text`` with the attempt's API key (if any) replaced."""
    key = ctx.api_key
    if key and len(key) >= 4 and key in text:
        return text.replace(key, "***")
    return text


# -- media in and out -------------------------------------------------------------


def download(ctx: ProviderContext, url: str, *, headers: Mapping[str, str] | None = None) -> tuple[bytes, str | None]:
    """Download ``url`` fully (for SDK results and input media), checking its length."""
    response = send(ctx, "GET", url, headers=headers, stream=True)
    with response:
        chunks = list(_iter_checked(ctx, response))
    return b"".join(chunks), response.headers.get("content-type")


def _iter_checked(ctx: ProviderContext, response: requests.Response) -> Iterable[bytes]:
    expected = response.headers.get("content-length")
    received = 0
    try:
        for chunk in response.iter_content(chunk_size=1 << 16):
            received += len(chunk)
            yield chunk
    except requests.RequestException as exc:
        raise ProviderConnectionError(
            redact(ctx, f"download of {response.url} broke off after {received} bytes: {type(exc).__name__}"),
            provider=ctx.provider.name,
            model=ctx.model,
        ) from None
    if expected is not None and expected.isdigit() and received != int(expected):
        raise ProviderConnectionError(
            f"download of {response.url} truncated: {received} of {expected} bytes",
            provider=ctx.provider.name,
            model=ctx.model,
        )


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
        header, _, payload = media.partition(",")
        content_type = header[5:].split(";")[0] or default_type
        return _b64decode(payload), content_type
    return _b64decode(media), default_type


def _b64decode(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        preview = payload[:40] + ("..." if len(payload) > 40 else "")
        raise InvalidRequestError(f"media {preview!r} is neither an http(s) URL nor valid base64") from None


def decode_output_base64(payload: str, *, provider: str, model: str | None = None, what: str = "media") -> bytes:
    """Strictly decode base64 media a provider returned; garbage is the provider's failure."""
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise GenerationFailedError(
            f"{provider} returned {what} that is not valid base64", provider=provider, model=model
        ) from None


def data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def media_url_or_data_url(ctx: ProviderContext, media: MediaType, *, default_type: str = "image/png") -> str:
    """For APIs that accept a URL or a data URL: keep URLs, inline everything else."""
    if is_url(media):
        return media  # type: ignore[return-value]
    data, content_type = media_bytes(ctx, media, default_type=default_type)
    return data_url(data, content_type)


def media_base64(ctx: ProviderContext, media: MediaType, *, default_type: str = "image/png") -> tuple[str, str]:
    """For APIs that want plain base64 and a MIME type."""
    data, content_type = media_bytes(ctx, media, default_type=default_type)
    return base64.b64encode(data).decode("ascii"), content_type
