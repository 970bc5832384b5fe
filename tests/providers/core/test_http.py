"""Shared HTTP helpers every provider module relies on."""

import base64
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

from providers.core.http import MAX_RAW_STRING, error_text, form_value, multipart_fields, parse_retry_after, shrink_raw
from providers.media.probe import sniff_content_type


def test_shrink_raw_omits_long_strings_and_bytes_at_any_depth():
    payload = base64.b64encode(b"\x89PNG" * 1000).decode()
    body = {"a": [{"data": payload, "mimeType": "image/png", "note": "x" * MAX_RAW_STRING}], "pcm": b"\0" * 10}
    assert shrink_raw(body) == {
        "a": [{"data": f"<{len(payload)} characters omitted>", "mimeType": "image/png", "note": "x" * MAX_RAW_STRING}],
        "pcm": "<10 bytes omitted>",
    }
    assert shrink_raw(["y" * (MAX_RAW_STRING + 1), 3, None]) == [f"<{MAX_RAW_STRING + 1} characters omitted>", 3, None]


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


# -- credentials go only to the provider's own origins; downloads are bounded --------------

import pickle  # noqa: E402

import pytest  # noqa: E402

from providers.builtin.elevenlabs import ElevenLabsProvider  # noqa: E402
from providers.errors import GenerationTimeoutError, ProviderConnectionError, ProviderHTTPError  # noqa: E402
from providers.core.http import download, may_carry_credentials, send  # noqa: E402
from schemas import AudioGenerationConfig  # noqa: E402
from tests.emulator import EmuResponse  # noqa: E402

CANARY = "sk-canary-0123456789abcdef"


def _ctx(emulator, timeout=30):
    config = AudioGenerationConfig(provider="elevenlabs", model="eleven_multilingual_v2",
                                   base_url=emulator.url_for("elevenlabs"), api_key=CANARY, timeout=timeout)
    return ElevenLabsProvider().context(config, "tts")


def _foreign(emulator, path):
    """The emulator under another host name: a different origin that still answers."""
    return emulator.base_url.replace("127.0.0.1", "localhost") + path


@pytest.fixture
def echo_routes(emulator):
    """/sec/echo answers 200; /sec/redirect?to=URL redirects (302); /sec/trickle drips bytes."""
    if "sec.echo" not in emulator.route_names():
        emulator.add_route(["GET", "POST"], "sec", r"/echo", lambda req: {"ok": True}, name="sec.echo")
        emulator.add_route("GET", "sec", r"/redirect",
                           lambda req: EmuResponse.empty(302, {"Location": req.query["to"]}), name="sec.redirect")
        emulator.add_route("GET", "sec", r"/trickle", lambda req: EmuResponse.stream_(
            (b"x" for _ in range(40)), "video/mp4", chunk_delay=0.25), name="sec.trickle")
    return emulator


def test_the_key_goes_to_the_configured_origin(echo_routes):
    ctx = _ctx(echo_routes)
    send(ctx, "GET", echo_routes.url_for("sec") + "/echo", headers={"xi-api-key": CANARY})
    assert echo_routes.last("sec.echo").headers["xi-api-key"] == CANARY


def test_a_foreign_url_from_a_ledger_or_an_answer_gets_no_credentials(echo_routes):
    ctx = _ctx(echo_routes)
    foreign = _foreign(echo_routes, "/sec/echo")
    assert not may_carry_credentials(ctx, foreign)
    send(ctx, "GET", foreign, headers={"xi-api-key": CANARY, "Authorization": f"Bearer {CANARY}", "Accept": "x/y"},
         params={"key": CANARY, "page": "2"})
    sent = echo_routes.last("sec.echo")
    assert "xi-api-key" not in sent.headers and "Authorization" not in sent.headers and sent.headers["Accept"] == "x/y"
    assert sent.query == {"page": "2"} and CANARY not in sent.full_path


def test_a_key_inside_a_foreign_url_is_refused_before_sending(echo_routes):
    with pytest.raises(ProviderConnectionError) as info:
        send(_ctx(echo_routes), "GET", _foreign(echo_routes, f"/sec/echo?key={CANARY}"))
    assert CANARY not in str(info.value) and "not an endpoint of elevenlabs" in str(info.value)
    assert echo_routes.count("sec.echo") == 0


def test_redirects_to_another_origin_drop_custom_auth_headers(echo_routes):
    ctx = _ctx(echo_routes)
    target = _foreign(echo_routes, "/sec/echo")
    send(ctx, "GET", echo_routes.url_for("sec") + f"/redirect?to={target}", headers={"xi-api-key": CANARY})
    assert echo_routes.last("sec.redirect").headers["xi-api-key"] == CANARY  # own origin: sent
    assert "xi-api-key" not in echo_routes.last("sec.echo").headers  # requests alone would have forwarded it


def test_a_downgrade_to_http_of_another_port_is_another_origin(emulator):
    ctx = _ctx(emulator)
    assert may_carry_credentials(ctx, emulator.url_for("elevenlabs") + "/v1/x")
    assert not may_carry_credentials(ctx, emulator.url_for("elevenlabs").replace("http://", "https://") + "/v1/x")
    assert not may_carry_credentials(ctx, "http://127.0.0.1:1/elevenlabs")


def test_a_trickling_download_ends_at_the_attempt_deadline(echo_routes):
    with pytest.raises(GenerationTimeoutError) as info:
        download(_ctx(echo_routes, timeout=1), echo_routes.url_for("sec") + "/trickle")
    assert "too slow" in info.value.message


def test_http_errors_are_redacted_and_pickle_without_losing_fields(emulator):
    emulator.add_route("GET", "sec", r"/leak", lambda req: EmuResponse.error(
        503, {"error": f"bad key {req.headers.get('xi-api-key')}\n"}), name="sec.leak") if "sec.leak" not in emulator.route_names() else None
    with pytest.raises(ProviderHTTPError) as info:
        send(_ctx(emulator), "GET", emulator.url_for("sec") + "/leak", headers={"xi-api-key": CANARY})
    error = info.value
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.status_code, copy.retryable, copy.provider, copy.message) == (503, True, "elevenlabs", error.message)
    for text in (pickle.dumps(error), repr(vars(error)).encode(), repr(error.args).encode(), str(error).encode()):
        assert CANARY.encode() not in text
