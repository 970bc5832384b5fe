"""Shared HTTP helpers every provider module relies on."""

import base64
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

from providers.http import elide_base64, error_text, form_value, multipart_fields, parse_retry_after
from providers.media import sniff_content_type


def test_elide_base64_only_touches_named_fields_when_given():
    payload = base64.b64encode(b"\x89PNG" * 200).decode()
    body = {"a": [{"data": payload, "mimeType": "image/png", "note": "x" * 400}]}
    assert elide_base64(body, frozenset({"data"})) == {
        "a": [{"data": f"<{len(payload)} base64 characters omitted>", "mimeType": "image/png", "note": "x" * 400}]
    }


def test_elide_base64_finds_long_base64_anywhere_without_keys():
    payload = base64.b64encode(bytes(range(256)) * 4).decode()
    elided = elide_base64({"outer": {"inner": [payload]}, "text": "short prose, kept"})
    assert elided == {"outer": {"inner": [payload]}, "text": "short prose, kept"}  # lists of strings: no key
    assert elide_base64({"audio": payload})["audio"].endswith("base64 characters omitted>")
    assert elide_base64({"audio": "not base64! " * 50})["audio"].startswith("not base64!")


def test_error_text_understands_common_error_shapes():
    assert error_text({"error": {"message": "bad size", "code": "x"}}) == "bad size"
    assert error_text({"detail": [{"loc": ["body", "duration"], "msg": "too long", "type": "v"}]}) == "body.duration: too long"
    assert error_text({"error": "Bad Request", "message": "text too long"}) == "Bad Request: text too long"
    assert error_text({"type": "about:blank", "title": "Throttled", "status": 429}) == "Throttled"
    assert error_text("  plain text  ") == "plain text"
    assert len(error_text({"message": "x" * 5000})) == 500


def test_form_values_and_multipart_fields():
    assert form_value(True) == "true" and form_value(False) == "false"
    assert form_value({"a": 1}) == '{"a": 1}' and form_value(3.5) == "3.5"
    assert multipart_fields({"prompt": "p", "n": 2, "skip": None}) == [("prompt", (None, "p")), ("n", (None, "2"))]


def test_retry_after_in_seconds_milliseconds_and_http_dates():
    assert parse_retry_after({"retry-after": "7"}) == 7
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    future = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after({"retry-after": future}) <= 31
    assert parse_retry_after({}) is None and parse_retry_after({"retry-after": "soon"}) is None


def test_sniff_content_type_from_magic_bytes():
    assert sniff_content_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_content_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_content_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_content_type(b"<html>") is None
