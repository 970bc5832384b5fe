"""Body parsing: JSON, application/x-www-form-urlencoded and multipart/form-data.

Multipart bodies are parsed with the stdlib :mod:`email` parser (the ``cgi``
module is gone from newer Pythons).
"""

from __future__ import annotations

import email.policy
import json
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value
from typing import Any
from urllib.parse import parse_qs

from .messages import UploadedFile


class BodyError(ValueError):
    """The body does not match its declared content type (answered with 400)."""


@dataclass
class ParsedBody:
    """Result of :func:`parse_body`; ``error`` is set when the body was malformed."""

    json: Any = None
    form_multi: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)
    is_multipart: bool = False
    error: str | None = None


def media_type(content_type: str | None) -> str:
    """``'Application/JSON; charset=utf-8'`` -> ``'application/json'``."""
    return (content_type or "").split(";")[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    """True for ``application/json`` and ``*/*+json`` media types."""
    kind = media_type(content_type)
    return kind == "application/json" or kind.endswith("+json")


def parse_query(query_string: str) -> dict[str, list[str]]:
    """Parse a query string, keeping blank values and repeated keys."""
    return parse_qs(query_string, keep_blank_values=True)


def first_values(multi: dict[str, list[str]]) -> dict[str, str]:
    """``{'a': ['1', '2']}`` -> ``{'a': '1'}``."""
    return {key: values[0] for key, values in multi.items() if values}


def parse_body(content_type: str | None, body: bytes) -> ParsedBody:
    """Parse ``body`` according to ``content_type``; never raises."""
    kind = media_type(content_type)
    try:
        if is_json_type(content_type):
            return ParsedBody(json=_parse_json(body))
        if kind == "application/x-www-form-urlencoded":
            return ParsedBody(form_multi=_parse_urlencoded(body))
        if kind == "multipart/form-data":
            form, files = parse_multipart(content_type or "", body)
            return ParsedBody(form_multi=form, files=files, is_multipart=True)
    except BodyError as exc:
        return ParsedBody(is_multipart=kind == "multipart/form-data", error=str(exc))
    return ParsedBody()


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError("invalid JSON body") from exc


def _parse_urlencoded(body: bytes) -> dict[str, list[str]]:
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise BodyError("invalid form body") from exc


def parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, list[str]], dict[str, list[UploadedFile]]]:
    """Split a multipart/form-data body into text fields and file parts.

    Raises :class:`BodyError` when the body is malformed (no boundary, missing
    start/close boundary, a part without a field name, ...).
    """
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if message.defects or not message.is_multipart():
        raise BodyError("malformed multipart body")
    form: dict[str, list[str]] = {}
    files: dict[str, list[UploadedFile]] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        _add_part(part, form, files)
    return form, files


def _add_part(
    part: Message, form: dict[str, list[str]], files: dict[str, list[UploadedFile]]
) -> None:
    name = _disposition_param(part, "name")
    if part.defects or name is None:
        raise BodyError("malformed multipart body")
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise BodyError("malformed multipart body")
    filename = _disposition_param(part, "filename")
    if filename is not None:
        content_type = part.get_content_type() if "Content-Type" in part else ""
        upload = UploadedFile(name, filename, content_type, data)
        files.setdefault(name, []).append(upload)
        return
    charset = part.get_content_charset() or "utf-8"
    try:
        form.setdefault(name, []).append(data.decode(charset))
    except (LookupError, UnicodeDecodeError) as exc:
        raise BodyError("malformed multipart body") from exc


def _disposition_param(part: Message, param: str) -> str | None:
    value = part.get_param(param, header="content-disposition")
    if value is None:
        return None
    return collapse_rfc2231_value(value)
