"""Stability AI over the emulator: multipart requests, bytes or JSON answers, errors."""

import asyncio
import base64

import pytest
import requests

from providers import RetryPolicy, generate_image, generate_image_async
from providers.errors import ContentModerationError, InvalidRequestError, ProviderAuthError, UnsupportedRequestError
from providers.media.probe import probe_media
from schemas import ImageGenerationConfig, MockConfig
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
ERROR_BODY = {"id": "e1", "name": "internal_error", "errors": ["An unexpected server error occurred"]}


def config(emu, model="stable-image-ultra", **kwargs):
    return ImageGenerationConfig(
        provider="stability", model=model, base_url=emu.url_for("stability"), api_key=emu.key_for("stability"), **kwargs
    )


def mock_fallback():
    return ImageGenerationConfig(provider="mock", model="mock-image", mock=MockConfig())


def decoded(response):
    return base64.b64decode(response.images[0])


# -- success ---------------------------------------------------------------------------


def test_ultra_sends_multipart_without_a_file_and_returns_the_bytes(emulator):
    updates = []
    response = generate_image(
        config(emulator), prompt="a lighthouse at dusk", negative_prompt="people", aspect_ratio="16:9", seed=42,
        on_progress=updates.append, retry=FAST,
    )  # fmt: skip
    sent = emulator.last("stability.generate")
    assert sent.path == "/v2beta/stable-image/generate/ultra"
    assert sent.headers["Authorization"] == f"Bearer {emulator.key_for('stability')}"
    assert sent.headers["Accept"] == "image/*"
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert sent.form == {
        "prompt": "a lighthouse at dusk", "negative_prompt": "people", "aspect_ratio": "16:9", "seed": "42",
        "output_format": "png",
    }  # fmt: skip
    assert list(sent.files) == ["none"] and sent.files["none"][0].size == 0
    info = probe_media(decoded(response))
    assert (info.kind, info.content_type, info.width > info.height) == ("image", "image/png", True)
    assert response.content_type == "image/png"
    assert response.raw_response["finish_reason"] == "SUCCESS" and response.raw_response["seed"] == "42"
    assert response.execution_metadata.attempts[0].request_id  # the x-request-id header
    assert [u.status for u in updates] == ["completed"]


def test_core_async_with_json_answers_and_a_style_preset(emulator):
    cfg = config(emulator, model="stable-image-core", provider_config={"accept": "application/json"})
    response = asyncio.run(
        generate_image_async(cfg, prompt="a fox", style="anime", output_format="webp", retry=FAST)
    )
    sent = emulator.last("stability.generate")
    assert sent.path == "/v2beta/stable-image/generate/core" and sent.headers["Accept"] == "application/json"
    assert sent.form == {"prompt": "a fox", "style_preset": "anime", "output_format": "webp"}
    assert response.content_type == "image/webp"
    assert probe_media(decoded(response)).content_type == "image/webp"
    assert "image" not in response.raw_response and response.raw_response["finish_reason"] == "SUCCESS"


def test_sd3_image_to_image_uploads_the_image_with_strength(emulator):
    source = emulator.image_bytes("source", width=96, height=96)
    response = generate_image(
        config(emulator, model="sd3.5-large-turbo"),
        prompt="make it winter",
        aspect_ratio="16:9",
        image_list=[{"image": {"content": source, "content_type": "image/png"}, "type": "reference"}],
        strength=0.7,
        output_format="jpeg",
        retry=FAST,
    )
    sent = emulator.last("stability.generate")
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    assert sent.form == {
        "prompt": "make it winter", "model": "sd3.5-large-turbo", "mode": "image-to-image", "strength": "0.7",
        "output_format": "jpeg",
    }  # fmt: skip
    upload = sent.files["image"][0]
    assert upload.data == source and upload.content_type == "image/png" and "none" not in sent.files
    assert probe_media(decoded(response)).content_type == "image/jpeg"


def test_sd3_takes_a_style_preset(emulator):
    """Comfy's Stability API nodes send style_preset to /generate/sd3 (tests/conformance/test_stability.py)."""
    generate_image(config(emulator, model="sd3.5-flash"), prompt="x", style="anime", retry=FAST)
    sent = emulator.last("stability.generate")
    assert sent.form["style_preset"] == "anime" and sent.form["model"] == "sd3.5-flash"


def test_sd3_text_to_image_names_the_model(emulator):
    generate_image(config(emulator, model="sd3.5-medium"), prompt="x", cfg_scale=5, retry=FAST)
    assert emulator.last("stability.generate").form == {
        "prompt": "x", "output_format": "png", "model": "sd3.5-medium", "cfg_scale": "5",
    }  # fmt: skip


# -- errors ------------------------------------------------------------------------------


def test_bad_key_is_an_auth_error_without_the_key(emulator):
    cfg = config(emulator).model_copy(update={"api_key": "sk-not-the-right-one"})
    with pytest.raises(ProviderAuthError) as info:
        generate_image(cfg, prompt="x", retry=FAST)
    assert "sk-not-the-right-one" not in str(info.value)
    assert emulator.count("stability.generate") == 1


def test_parameters_the_api_rejects_are_invalid_requests(emulator):
    with pytest.raises(InvalidRequestError) as info:
        generate_image(
            config(emulator, fallback_configs=[mock_fallback()]), prompt="x", extra_params={"aspect_ratio": "7:3"}, retry=FAST
        )
    assert "aspect_ratio" in str(info.value) and "bad_request" in str(info.value)
    assert len(info.value.execution_metadata.attempts) == 1  # the chain stopped


def test_moderation_403_stops_the_chain(emulator):
    emulator.inject("stability.generate", Fault.moderation())
    with pytest.raises(ContentModerationError) as info:
        generate_image(config(emulator, fallback_configs=[mock_fallback()]), prompt="x", retry=FAST)
    assert "content moderation" in str(info.value)
    assert [(a.provider, a.status) for a in info.value.execution_metadata.attempts] == [("stability", "failed")]
    assert emulator.count("stability.generate") == 1


def test_content_filtered_output_is_moderation(emulator):
    emulator.inject("stability.generate", Fault.custom("content_filtered"))
    with pytest.raises(ContentModerationError) as info:
        generate_image(config(emulator), prompt="x", retry=FAST)
    assert "CONTENT_FILTERED" in str(info.value)
    assert info.value.execution_metadata.attempts[0].request_id


def test_rate_limit_is_retried_honouring_retry_after(emulator):
    body = {"id": "r1", "name": "rate_limit_exceeded", "errors": ["You have exceeded the rate limit"]}
    emulator.inject("stability.generate", Fault.http(429, body, {"Retry-After": "0"}))
    response = generate_image(config(emulator), prompt="x", retry=FAST)
    assert emulator.count("stability.generate") == 2
    assert [a.status for a in response.execution_metadata.attempts] == ["failed", "success"]


def test_server_errors_are_retried(emulator):
    emulator.inject("stability.generate", Fault.http(500, ERROR_BODY), times=2)
    response = generate_image(config(emulator), prompt="x", retry=FAST)
    assert emulator.count("stability.generate") == 3 and probe_media(decoded(response)).kind == "image"


def test_falls_back_when_stability_keeps_failing(emulator):
    emulator.inject("stability.generate", Fault.http(503, ERROR_BODY), times=None)
    response = generate_image(config(emulator, fallback_configs=[mock_fallback()]), prompt="x", retry=FAST)
    meta = response.execution_metadata
    assert [(a.provider, a.status) for a in meta.attempts] == [("stability", "failed")] * 3 + [("mock", "success")]
    assert meta.fallback_triggered and response.is_mock


@pytest.mark.parametrize(
    "model, fields, reason",
    [
        ("stable-image-ultra", {"n": 2}, "n=2"),
        ("stable-image-ultra", {"aspect_ratio": "4:3"}, "aspect_ratio='4:3'"),
        ("stable-image-ultra", {"size": "1024x1024"}, "size="),
        ("stable-image-ultra", {"seed": 4294967295}, "seed=4294967295"),
        ("stable-image-ultra", {"style": "vivid"}, "style_preset"),
        ("stable-image-core", {"image_list": [{"image": "aGk=", "type": "reference"}]}, "no input images"),
        ("sd3.5-large", {"output_format": "webp"}, "output_format='webp'"),
        ("sd3.5-large", {"mask_image": "aGk="}, "inpainting"),
        ("dall-e-3", {}, "not a Stability image model"),
    ],
)
def test_requests_a_model_cannot_serve_are_skipped_without_http(emulator, model, fields, reason):
    response = generate_image(
        config(emulator, model=model, fallback_configs=[mock_fallback()]), prompt="x", retry=FAST, **fields
    )
    skipped = response.execution_metadata.attempts[0]
    assert (skipped.provider, skipped.status) == ("stability", "skipped") and reason in skipped.error_message
    assert emulator.count("stability.generate") == 0


def test_unknown_model_alone_is_an_unsupported_error(emulator):
    with pytest.raises(UnsupportedRequestError):
        generate_image(config(emulator, model="dall-e-3"), prompt="x", retry=FAST)


# -- the emulator keeps the API's rules -------------------------------------------------------


def test_emulator_rejects_bodies_that_are_not_multipart(emulator):
    url = emulator.url_for("stability") + "/v2beta/stable-image/generate/core"
    headers = {"Authorization": f"Bearer {emulator.key_for('stability')}", "Accept": "image/*"}
    for body in ({"json": {"prompt": "x"}}, {"data": {"prompt": "x"}}):
        answer = requests.post(url, headers=headers, timeout=5, **body)
        assert answer.status_code == 400 and answer.json()["errors"] == ["content-type: must be multipart/form-data"]
    ok = requests.post(url, headers=headers, data={"prompt": "x"}, files={"none": ""}, timeout=5)
    assert ok.status_code == 200 and ok.headers["finish-reason"] == "SUCCESS" and ok.headers["seed"]
    assert probe_media(ok.content).content_type == "image/png"
    wrong_accept = requests.post(url, headers={**headers, "Accept": "text/html"}, data={"prompt": "x"}, files={"none": ""}, timeout=5)
    assert wrong_accept.status_code == 400
