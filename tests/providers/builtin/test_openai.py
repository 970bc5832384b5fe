"""OpenAI provider over the emulator: Sora 2 video jobs and GPT-image / DALL-E images.

Each test reads as a specification of what goes over the wire and what the caller
gets back, through the public ``providers.generate_*`` functions.
"""

import base64
import io
import time

import pytest
import requests
from PIL import Image

from providers import RetryPolicy, generate_image, generate_image_async, generate_video, generate_video_async
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderAuthError,
    ProviderHTTPError,
    UnsupportedRequestError,
)
from providers.media.probe import probe_media
from providers.builtin.openai import OpenAIProvider
from schemas import ImageGenerationConfig, MockConfig, VideoGenerationConfig, VideoGenerationRequest
from tests.conftest import serve_retired_models
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
P = "openai"
IMAGE_MODEL = "gpt-image-2.6-flare"  # current per openai-python 3.57.0 ImageModel; standard sizes
SORA_MODELS = [name for name in OpenAIProvider.models if name.startswith("sora-")]
SHIPPED_CATALOG = dict(OpenAIProvider.models)


@pytest.fixture(autouse=True)
def sora_still_served(monkeypatch):
    """Sora's API shut down on 2026-09-24, so its models are retired in the catalog and
    every request is skipped before HTTP (tested below). The wire behaviour is tested
    as if they were still served: the SDK still carries the methods, and Azure serves
    the same client code."""
    serve_retired_models(monkeypatch, OpenAIProvider.models, "sora-")


def video_config(emulator, model="sora-2", **fields) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        provider=P, model=model, base_url=emulator.url_for(P), api_key=emulator.key_for(P), poll_interval=0, timeout=30,
        **fields,
    )


def image_config(emulator, model=IMAGE_MODEL, **fields) -> ImageGenerationConfig:
    return ImageGenerationConfig(provider=P, model=model, base_url=emulator.url_for(P), api_key=emulator.key_for(P), **fields)


def mock_fallback(kind=VideoGenerationConfig):
    return kind(provider="mock", model="mock-model", mock=MockConfig())


def png(width, height, color=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def openai_error_body(code, message="nope", type_="invalid_request_error"):
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def summary(metadata):
    return [(a.provider, a.try_number, a.status, a.error_type) for a in metadata.attempts]


# -- Sora video -------------------------------------------------------------------------


def test_video_job_runs_submit_poll_download_and_returns_the_mp4(emulator):
    emulator.jobs.advance_per_poll()  # queued, processing, completed: one state per poll, whatever the load
    updates = []
    response = generate_video(
        video_config(emulator), prompt="a paper boat on a river", duration_seconds=8, aspect_ratio="9:16",
        on_progress=updates.append, retry=FAST,
    )

    create = emulator.last("openai.videos_create")
    assert create.headers["Authorization"] == f"Bearer {emulator.key_for(P)}"
    assert create.headers["Content-Type"].startswith("multipart/form-data")
    assert create.form == {"prompt": "a paper boat on a river", "model": "sora-2", "seconds": "8", "size": "720x1280"}
    video_id = emulator.jobs.all(P)[0].id
    assert emulator.last("openai.videos_retrieve").path == f"/videos/{video_id}"
    assert emulator.last("openai.videos_content").path == f"/videos/{video_id}/content"

    info = probe_media(response.video["content"])
    assert info.kind == "video" and info.duration_seconds == pytest.approx(8, abs=0.2)
    assert response.content_type == "video/mp4" and response.duration == 8.0
    assert response.resolution == "720x1280" and response.aspect_ratio == "9:16"
    assert response.raw_response["id"] == video_id and response.raw_response["status"] == "completed"
    assert response.execution_metadata.attempts[0].request_id == video_id

    statuses = [u.status for u in updates]
    assert statuses[0] == "queued" and "processing" in statuses and statuses[-1] == "completed"
    progress = [u.progress_percent for u in updates if u.status == "processing"]
    assert progress == sorted(progress) and updates[-1].result == response


async def test_video_job_async_with_async_callback(emulator):
    seen = []

    async def on_progress(update):
        seen.append(update.status)

    response = await generate_video_async(
        video_config(emulator, model="sora-2-pro"), prompt="city lights", resolution="1080p", aspect_ratio="16:9",
        on_progress=on_progress, retry=FAST,
    )
    assert emulator.last("openai.videos_create").form["size"] == "1792x1024"
    assert response.resolution == "1792x1024" and response.duration == 4.0
    assert probe_media(response.video["content"]).kind == "video"
    assert seen[0] == "queued" and seen[-1] == "completed"


def test_first_frame_is_uploaded_as_input_reference_at_the_output_size(emulator):
    generate_video(
        video_config(emulator), prompt="wake up", aspect_ratio="16:9",
        image_list=[{"image": {"content": png(640, 360), "content_type": "image/png"}, "type": "first_frame"}], retry=FAST,
    )
    upload = emulator.last("openai.videos_create").files["input_reference"][0]
    assert upload.content_type == "image/png"
    assert Image.open(io.BytesIO(upload.data)).size == (1280, 720)


def test_organization_and_project_headers_come_from_provider_config(emulator):
    config = video_config(emulator, provider_config={"organization": "org-123", "project": "proj_9"})
    generate_video(config, prompt="x", retry=FAST)
    create = emulator.last("openai.videos_create")
    assert create.headers["OpenAI-Organization"] == "org-123" and create.headers["OpenAI-Project"] == "proj_9"


def test_poll_interval_follows_the_openai_poll_after_ms_hint(emulator):
    # The driver waits a poll's ``poll_after`` instead of ``poll_interval``; what is checked
    # here is that the hint reaches it (a wall-clock bound would flake under load).
    emulator.state(P)["poll_after_ms"] = 30
    provider = OpenAIProvider()
    ctx = provider.context(video_config(emulator).model_copy(update={"poll_interval": 10}), "video")
    handle = provider.submit(ctx, VideoGenerationRequest(prompt="x"))
    assert provider.poll(ctx, handle).poll_after == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("model", "fields", "reason"),
    [
        ("sora-2", {"duration_seconds": 5}, "duration_seconds=5"),
        ("sora-2", {"resolution": "1080p"}, "resolution='1080p'"),
        ("sora-2-pro", {"aspect_ratio": "1:1"}, "aspect_ratio='1:1'"),
        ("sora-2", {"negative_prompt": "blur"}, "negative_prompt"),
        ("sora-2", {"number_of_videos": 2}, "number_of_videos=2"),
        ("sora-2", {"image_list": [{"image": "aGVsbG8=", "type": "last_frame"}]}, "last_frame"),
    ],
)
def test_requests_sora_cannot_serve_are_skipped_without_http(emulator, model, fields, reason):
    config = video_config(emulator, model=model, fallback_configs=[mock_fallback()])
    response = generate_video(config, prompt="x", retry=FAST, **fields)
    assert emulator.requests == []
    attempts = response.execution_metadata.attempts
    assert [(a.provider, a.status) for a in attempts] == [(P, "skipped"), ("mock", "success")]
    assert reason in attempts[0].error_message and response.is_mock


def test_a_chain_of_only_unservable_configs_raises_unsupported(emulator):
    with pytest.raises(UnsupportedRequestError) as info:
        generate_video(video_config(emulator), prompt="x", duration_seconds=30, retry=FAST)
    assert emulator.requests == [] and info.value.execution_metadata.attempts[0].status == "skipped"


def test_wrong_key_is_an_auth_error_that_never_shows_the_key(emulator):
    secret = "sk-proj-definitely-wrong-0123456789"
    config = video_config(emulator).model_copy(update={"api_key": secret})
    with pytest.raises(ProviderAuthError) as info:
        generate_video(config, prompt="x", retry=FAST)
    assert info.value.status_code == 401 and not info.value.retryable
    assert secret not in str(info.value) and "config.api_key" in str(info.value)
    assert emulator.count("openai.videos_create") == 1


def test_bad_field_is_invalid_request_and_stops_the_chain(emulator):
    config = video_config(emulator, fallback_configs=[mock_fallback()])
    with pytest.raises(InvalidRequestError) as info:
        generate_video(config, prompt="x", extra_params={"size": "1792x1024"}, retry=FAST)  # pro-only size on sora-2
    assert "1792x1024" in str(info.value)
    assert [a.provider for a in info.value.execution_metadata.attempts] == [P]


def test_refused_prompt_is_moderation_and_stops_the_chain(emulator):
    emulator.inject("openai.videos_create", Fault.moderation("This request may violate our guardrails."))
    config = video_config(emulator, fallback_configs=[mock_fallback()])
    with pytest.raises(ContentModerationError) as info:
        generate_video(config, prompt="x", retry=FAST)
    assert "moderation_blocked" in str(info.value) and not info.value.retryable
    assert summary(info.value.execution_metadata) == [(P, 1, "failed", "ContentModerationError")]


def test_job_failed_by_moderation_is_moderation(emulator):
    emulator.inject("openai.videos_create", Fault.custom("job_moderation", "output blocked"))
    with pytest.raises(ContentModerationError) as info:
        generate_video(video_config(emulator, fallback_configs=[mock_fallback()]), prompt="x", retry=FAST)
    assert "output blocked" in str(info.value)
    assert info.value.request_id == emulator.jobs.all(P)[0].id
    assert len(info.value.execution_metadata.attempts) == 1


def test_failed_job_is_generation_failed(emulator):
    emulator.inject("openai.videos_create", Fault.fail_job("renderer crashed"))
    with pytest.raises(GenerationFailedError) as info:
        generate_video(video_config(emulator), prompt="x", retry=FAST)
    assert "renderer crashed" in str(info.value) and "video_generation_failed" in str(info.value)
    assert emulator.count("openai.videos_content") == 0


def test_rate_limit_honours_retry_after_ms_then_succeeds(emulator):
    emulator.inject(
        "openai.videos_create",
        Fault.http(429, openai_error_body("rate_limit_exceeded", type_="requests"), {"retry-after-ms": "300"}),
    )
    started = time.monotonic()
    response = generate_video(video_config(emulator), prompt="x", retry=FAST)
    creates = emulator.requests_for("openai.videos_create")
    assert [r.status for r in creates] == [429, 200]
    assert creates[1].received_at - creates[0].received_at >= 0.3 and time.monotonic() - started >= 0.3
    assert summary(response.execution_metadata) == [(P, 1, "failed", "ProviderHTTPError"), (P, 2, "success", None)]


def test_insufficient_quota_is_not_retried_and_falls_back(emulator):
    emulator.inject("openai.videos_create", Fault.http(429, openai_error_body("insufficient_quota", type_="insufficient_quota")))
    response = generate_video(video_config(emulator, fallback_configs=[mock_fallback()]), prompt="x", retry=FAST)
    assert emulator.count("openai.videos_create") == 1
    first = response.execution_metadata.attempts[0]
    assert (first.status, first.is_retryable, first.error_type) == ("failed", False, "ProviderHTTPError")
    assert "quota" in first.error_message and response.is_mock


def test_server_errors_are_retried(emulator):
    emulator.inject("openai.videos_create", Fault.http(503, openai_error_body("server_error", type_="server_error")), times=2)
    response = generate_video(video_config(emulator), prompt="x", retry=FAST)
    assert emulator.count("openai.videos_create") == 3 and probe_media(response.video["content"]).kind == "video"


def test_x_should_retry_false_overrides_a_transient_status(emulator):
    emulator.inject("openai.videos_create", Fault.http(500, openai_error_body(None), {"x-should-retry": "false"}))
    with pytest.raises(ProviderHTTPError) as info:
        generate_video(video_config(emulator), prompt="x", retry=FAST)
    assert info.value.status_code == 500 and not info.value.retryable
    assert emulator.count("openai.videos_create") == 1


def test_persistent_5xx_falls_back_to_the_next_config(emulator):
    emulator.inject("openai.videos_create", Fault.http(502, openai_error_body(None)), times=None)
    response = generate_video(video_config(emulator, fallback_configs=[mock_fallback()]), prompt="x", retry=FAST)
    meta = response.execution_metadata
    assert summary(meta) == [
        (P, 1, "failed", "ProviderHTTPError"),
        (P, 2, "failed", "ProviderHTTPError"),
        (P, 3, "failed", "ProviderHTTPError"),
        ("mock", 1, "success", None),
    ]
    assert meta.fallback_triggered and meta.successful_attempt == 4 and response.is_mock


def test_emulated_videos_api_rejects_json_bodies_like_the_real_one(emulator):
    reply = requests.post(
        f"{emulator.url_for(P)}/videos", json={"prompt": "x"}, headers={"Authorization": f"Bearer {emulator.key_for(P)}"},
        timeout=5,
    )
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_content_type"


# -- images ----------------------------------------------------------------------------------


def test_gpt_image_generation_sends_json_and_returns_decoded_bytes(emulator):
    response = generate_image(
        image_config(emulator), prompt="a lighthouse", aspect_ratio="16:9", quality="hd", n=2,
        output_format="jpeg", retry=FAST,
    )
    call = emulator.last("openai.images_generations")
    assert call.headers["Authorization"] == f"Bearer {emulator.key_for(P)}"
    assert call.json == {"prompt": "a lighthouse", "model": IMAGE_MODEL, "n": 2, "size": "1536x1024",
                         "quality": "high", "output_format": "jpeg"}
    assert response.content_type == "image/jpeg" and len(response.images) == 2
    info = probe_media(base64.b64decode(response.images[0]))
    assert (info.kind, info.content_type, info.width, info.height) == ("image", "image/jpeg", 1536, 1024)
    assert response.raw_response["data"][0]["b64_json"].endswith(" characters omitted>")  # bytes are not duplicated
    assert response.execution_metadata.attempts[0].request_id.startswith("req_")


async def test_gpt_image_2_5_async_sends_xhigh_and_max_quality(emulator):
    updates = []
    response = await generate_image_async(
        image_config(emulator, model="gpt-image-2.5-flare"), prompt="a fox", aspect_ratio="9:16", quality="xhigh",
        on_progress=updates.append, retry=FAST,
    )
    assert emulator.last("openai.images_generations").json == {
        "prompt": "a fox", "model": "gpt-image-2.5-flare", "size": "864x1536", "quality": "xhigh"}
    assert response.raw_response["quality"] == "xhigh"
    info = probe_media(base64.b64decode(response.images[0]))
    assert (info.kind, info.width, info.height) == ("image", 864, 1536)
    assert updates[-1].status == "completed" and updates[-1].result == response
    generate_image(image_config(emulator, model="gpt-image-2.5-sunburst-2026-09-08"), prompt="x", quality="max", retry=FAST)
    assert emulator.last("openai.images_generations").json["quality"] == "max"


def test_input_images_go_to_the_edits_endpoint_as_multipart(emulator):
    references = [{"image": {"content": png(512, 512), "content_type": "image/png"}, "type": "reference"},
                  {"image": base64.b64encode(png(512, 512, (0, 0, 255))).decode(), "type": "style"}]
    response = generate_image(image_config(emulator), prompt="combine them", size="1024x1024", image_list=references, retry=FAST)
    call = emulator.last("openai.images_edits")
    assert call.form == {"prompt": "combine them", "model": IMAGE_MODEL, "size": "1024x1024"}
    assert [f.content_type for f in call.files["image[]"]] == ["image/png", "image/png"] and "image" not in call.files
    assert emulator.count("openai.images_generations") == 0
    assert probe_media(base64.b64decode(response.images[0])).kind == "image"


def test_a_single_image_with_mask_is_sent_as_image_and_mask(emulator):
    generate_image(
        image_config(emulator), prompt="add a hat",
        image_list=[{"image": {"content": png(256, 256), "content_type": "image/png"}, "type": "reference"}],
        mask_image={"content": png(256, 256, (255, 255, 255)), "content_type": "image/png"}, size="1024x1024", retry=FAST,
    )
    call = emulator.last("openai.images_edits")
    assert len(call.files["image"]) == 1 and len(call.files["mask"]) == 1 and call.form["model"] == IMAGE_MODEL


@pytest.mark.parametrize(
    ("model", "fields", "reason"),
    [
        (IMAGE_MODEL, {"style": "vivid"}, "style='vivid'"),
        (IMAGE_MODEL, {"aspect_ratio": "21:9"}, "aspect_ratio='21:9'"),
        (IMAGE_MODEL, {"quality": "xhigh"}, "quality='xhigh'"),
        ("gpt-image-2", {"quality": "max"}, "quality='max'"),
        ("gpt-image-2", {"size": "1000x1000"}, "multiples of 16"),
        ("gpt-image-2.5-flare", {"size": "4096x1024"}, "4096x1024"),
        (IMAGE_MODEL, {"negative_prompt": "text"}, "negative_prompt"),
    ],
)
def test_image_requests_the_model_cannot_serve_are_skipped(emulator, model, fields, reason):
    config = image_config(emulator, model=model, fallback_configs=[mock_fallback(ImageGenerationConfig)])
    response = generate_image(config, prompt="x", retry=FAST, **fields)
    assert emulator.requests == []
    first = response.execution_metadata.attempts[0]
    assert first.status == "skipped" and reason in first.error_message


def test_gpt_image_2_takes_exact_aspect_sizes(emulator):
    response = generate_image(image_config(emulator, model="gpt-image-2"), prompt="x", aspect_ratio="21:9", retry=FAST)
    assert emulator.last("openai.images_generations").json["size"] == "1680x720"
    assert probe_media(base64.b64decode(response.images[0])).width == 1680


@pytest.mark.parametrize(("model", "code"), [("chatgpt-image-latest", "moderation_blocked"), (IMAGE_MODEL, "moderation_blocked")])
def test_image_moderation_codes_stop_the_chain(emulator, model, code):
    emulator.inject("openai.images_generations", Fault.moderation())
    config = image_config(emulator, model=model, fallback_configs=[mock_fallback(ImageGenerationConfig)])
    with pytest.raises(ContentModerationError) as info:
        generate_image(config, prompt="x", retry=FAST)
    assert code in str(info.value) and len(info.value.execution_metadata.attempts) == 1


def test_image_rate_limit_with_retry_after_seconds_is_retried(emulator):
    emulator.inject("openai.images_generations", Fault.http(429, openai_error_body("rate_limit_exceeded"), {"Retry-After": "0.2"}))
    response = generate_image(image_config(emulator), prompt="x", retry=FAST)
    calls = emulator.requests_for("openai.images_generations")
    assert [c.status for c in calls] == [429, 200] and calls[1].received_at - calls[0].received_at >= 0.2
    assert response.execution_metadata.total_attempts == 2


# -- model lifecycle ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "model", "retired_on"),
    [
        ("video", "sora-2", "2026-09-24"),
        ("video", "sora-2-pro-2025-10-06", "2026-09-24"),
        ("image", "gpt-image-1", "2026-10-23"),
        ("image", "dall-e-3", "2026-05-12"),
        ("image", "dall-e-2", "2026-05-12"),
    ],
)
def test_retired_models_are_skipped_before_any_call(emulator, monkeypatch, kind, model, retired_on):
    monkeypatch.setitem(OpenAIProvider.models, model, SHIPPED_CATALOG[model])  # as shipped: retired
    if kind == "video":
        config, call = video_config(emulator, model=model, fallback_configs=[mock_fallback()]), generate_video
    else:
        config = image_config(emulator, model=model, fallback_configs=[mock_fallback(ImageGenerationConfig)])
        call = generate_image
    response = call(config, prompt="x", retry=FAST)
    assert emulator.requests == []
    first = response.execution_metadata.attempts[0]
    assert first.status == "skipped" and f"retired on {retired_on}" in first.error_message and response.is_mock


# -- Sora remix -----------------------------------------------------------------------------


def test_remix_posts_the_new_prompt_and_returns_a_new_video_of_the_source_shape(emulator):
    source = generate_video(video_config(emulator), prompt="a paper boat", duration_seconds=8, aspect_ratio="9:16", retry=FAST)
    source_id = source.raw_response["id"]

    remix = generate_video(video_config(emulator), prompt="the boat is red now", remix_video_id=source_id, retry=FAST)

    call = emulator.last("openai.videos_remix")
    assert call.path == f"/videos/{source_id}/remix" and call.json == {"prompt": "the boat is red now"}
    assert call.headers["Authorization"] == f"Bearer {emulator.key_for(P)}"
    assert call.headers["Content-Type"].startswith("application/json")
    assert emulator.count("openai.videos_create") == 1  # only the source was created from scratch
    assert remix.raw_response["remixed_from_video_id"] == source_id and remix.raw_response["id"] != source_id
    assert (remix.duration, remix.resolution, remix.aspect_ratio) == (8.0, "720x1280", "9:16")
    assert probe_media(remix.video["content"]).duration_seconds == pytest.approx(8, abs=0.2)


def test_remix_of_an_unfinished_video_is_an_invalid_request(emulator):
    emulator.jobs.advance_per_poll()  # never polled, the source stays unfinished however slow the machine
    source = requests.post(
        emulator.url_for(P) + "/videos", files={"prompt": (None, "x")},
        headers={"Authorization": f"Bearer {emulator.key_for(P)}"}, timeout=5,
    ).json()
    with pytest.raises(InvalidRequestError) as info:
        generate_video(video_config(emulator), prompt="y", remix_video_id=source["id"], retry=FAST)
    assert "cannot be remixed" in str(info.value) and emulator.count("openai.videos_remix") == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"duration_seconds": 8}, "duration_seconds"),
        ({"aspect_ratio": "16:9"}, "aspect_ratio"),
        ({"image_list": [{"image": "aGVsbG8=", "type": "first_frame"}]}, "image_list"),
        ({"size": "1280x720"}, "extra_params.size"),
    ],
)
def test_a_remix_takes_only_a_prompt(emulator, fields, reason):
    config = video_config(emulator, fallback_configs=[mock_fallback()])
    response = generate_video(config, prompt="x", remix_video_id="video_abc", retry=FAST, **fields)
    first = response.execution_metadata.attempts[0]
    assert emulator.requests == [] and first.status == "skipped" and reason in first.error_message


def test_a_malformed_remix_id_is_an_invalid_request_naming_the_value(emulator):
    with pytest.raises(InvalidRequestError) as info:
        generate_video(video_config(emulator), prompt="x", remix_video_id="../videos", retry=FAST)
    assert "remix_video_id='../videos'" in str(info.value) and emulator.requests == []
