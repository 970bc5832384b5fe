"""Google provider (Veo, Imagen, Gemini image models) over the emulator, on both the
Gemini Developer API and Vertex AI, through the public SDK functions."""

from __future__ import annotations

import base64
import json
import pickle
import time

import pytest
import requests

from providers import (
    RetryPolicy,
    generate_image,
    generate_image_async,
    generate_video,
    generate_video_async,
    get_provider_capabilities,
)
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderAuthError,
    UnsupportedRequestError,
)
from providers.builtin.google import (
    GoogleProvider,
    backend_for,
    camel_case,
    is_daily_quota,
    may_send_key,
    model_url,
    retry_delay,
    size_plan,
    vertex_host,
)
from providers.media.probe import probe_media
from schemas import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    JobHandle,
    MockConfig,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tests.conftest import serve_retired_models
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
NO_RETRY = RetryPolicy(max_retries=0)
VEO = "veo-3.1-generate-001"
VERTEX = {"gcp_project": "my-proj", "location": "us-central1"}
VERTEX_VEO_PATH = f"/v1/projects/my-proj/locations/us-central1/publishers/google/models/{VEO}"


@pytest.fixture
def emu(emulator):
    emulator.job_duration = 0.05
    return emulator


def video_config(emu, model=VEO, vertex=False, **fields) -> VideoGenerationConfig:
    fields.setdefault("api_key", emu.key_for("google"))
    return VideoGenerationConfig(
        provider="google", model=model, base_url=emu.url_for("google"), poll_interval=0,
        provider_config=dict(VERTEX) if vertex else {}, **fields,
    )


IMAGE_MODEL = "gemini-3.1-flash-image"


@pytest.fixture
def imagen_served(monkeypatch):
    """Imagen is retired in the catalog; the protocol tests pretend it is still served."""
    from providers.builtin.google import GOOGLE_MODELS

    serve_retired_models(monkeypatch, GOOGLE_MODELS, "imagen-")


def image_config(emu, model=IMAGE_MODEL, vertex=False, **fields) -> ImageGenerationConfig:
    fields.setdefault("api_key", emu.key_for("google"))
    return ImageGenerationConfig(
        provider="google", model=model, base_url=emu.url_for("google"), poll_interval=0,
        provider_config=dict(VERTEX) if vertex else {}, **fields,
    )


def mock_video() -> VideoGenerationConfig:
    return VideoGenerationConfig(provider="mock", model="mock-video", mock=MockConfig())


def mock_image() -> ImageGenerationConfig:
    return ImageGenerationConfig(provider="mock", model="mock-image", mock=MockConfig())


def google_error(status: int, grpc_status: str, message: str, *details: dict) -> dict:
    error = {"code": status, "message": message, "status": grpc_status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def summary(metadata):
    return [(a.provider, a.status, a.error_type) for a in metadata.attempts]


def google_requests(emu):
    return emu.requests_for(provider="google")


# -- Veo ------------------------------------------------------------------------------------------


def test_veo_on_the_gemini_api_end_to_end(emu):
    emu.jobs.advance_per_poll()  # queued, processing, completed: one state per poll, whatever the load
    key = emu.key_for("google")
    jpeg = emu.image_bytes("first frame", width=64, height=64, image_format="jpeg")
    updates = []
    response = generate_video(
        video_config(emu),
        prompt="a red fox in fresh snow",
        duration_seconds=8,
        aspect_ratio="9:16",
        resolution="720p",
        negative_prompt="blur",
        image_list=[{"image": base64.b64encode(jpeg).decode(), "type": "first_frame"}],
        person_generation="allow_adult",
        on_progress=updates.append,
        retry=FAST,
    )

    sent = emu.last("google.predict_long_running")
    assert sent.path == f"/v1beta/models/{VEO}:predictLongRunning"
    assert sent.headers["x-goog-api-key"] == key and "Authorization" not in sent.headers and not sent.query
    instance = sent.json["instances"][0]
    assert instance["prompt"] == "a red fox in fresh snow"
    assert instance["image"] == {"bytesBase64Encoded": base64.b64encode(jpeg).decode(), "mimeType": "image/jpeg"}
    assert sent.json["parameters"] == {
        "sampleCount": 1, "durationSeconds": 8, "aspectRatio": "9:16", "resolution": "720p",
        "negativePrompt": "blur", "personGeneration": "allow_adult",
    }
    operation = response.execution_metadata.attempts[0].request_id
    assert operation.startswith(f"models/{VEO}/operations/")
    assert emu.last("google.get_operation").path == f"/v1beta/{operation}"
    download = emu.last("google.download_file")
    assert download.headers["x-goog-api-key"] == key and download.query == {"alt": "media"}

    info = probe_media(response.video["content"])
    assert info.kind == "video" and info.duration_seconds == pytest.approx(8, abs=0.1) and info.height > info.width
    assert response.content_type == "video/mp4" and response.duration == 8 and response.aspect_ratio == "9:16"
    assert key not in json.dumps(response.raw_response)
    assert any(u.status == "processing" for u in updates) and updates[-1].status == "completed"


async def test_veo_on_vertex_async(emu):
    response = await generate_video_async(
        video_config(emu, vertex=True),
        prompt="waves on a pebble beach",
        duration_seconds=4,
        seed=7,
        generate_audio=False,
        number_of_videos=2,
        retry=FAST,
    )
    sent = emu.last("google.vertex_predict_long_running")
    assert sent.path == f"{VERTEX_VEO_PATH}:predictLongRunning"
    assert sent.headers["Authorization"] == f"Bearer {emu.key_for('google')}" and "x-goog-api-key" not in sent.headers
    assert sent.json["parameters"] == {"sampleCount": 2, "durationSeconds": 4, "seed": 7, "generateAudio": False}
    fetch = emu.last("google.vertex_fetch_operation")
    assert fetch.path == f"{VERTEX_VEO_PATH}:fetchPredictOperation"
    assert fetch.json == {"operationName": response.execution_metadata.attempts[0].request_id}
    assert len(response.videos) == 2
    for video in response.videos:
        assert probe_media(video["content"]).duration_seconds == pytest.approx(4, abs=0.1)
    assert "characters omitted" in json.dumps(response.raw_response)


def test_vertex_storage_uri_gives_gs_urls(emu):
    config = video_config(emu, vertex=True).model_copy(
        update={"provider_config": {**VERTEX, "storage_uri": "gs://my-bucket/veo"}}
    )
    response = generate_video(config, prompt="a lighthouse at dusk", retry=FAST)
    assert emu.last("google.vertex_predict_long_running").json["parameters"]["storageUri"] == "gs://my-bucket/veo"
    assert response.video.startswith("gs://my-bucket/veo/") and response.video.endswith(".mp4")


def test_input_images_and_video_are_mapped_per_role(emu):
    png = emu.image_bytes("ref", width=32, height=32)
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    generate_video(
        video_config(emu, vertex=True), prompt="a hero walks", duration_seconds=8,
        image_list=[{"image": data_url, "type": "reference"}, {"image": data_url, "type": "asset"}], retry=FAST,
    )
    refs = emu.last("google.vertex_predict_long_running").json["instances"][0]["referenceImages"]
    # google-genai's enum values (tests/conformance/test_google.py)
    assert [r["referenceType"] for r in refs] == ["ASSET", "ASSET"] and refs[0]["image"]["mimeType"] == "image/png"

    clip = emu.video_bytes("earlier clip", width=64, height=36, duration=1.0)
    generate_video(
        video_config(emu, vertex=True), prompt="continue", video={"content": clip, "content_type": "video/mp4"},
        image_list=[{"image": "gs://b/first.jpg", "type": "first_frame"}, {"image": data_url, "type": "last_frame"}],
        retry=FAST,
    )
    instance = emu.last("google.vertex_predict_long_running").json["instances"][0]
    assert instance["image"] == {"gcsUri": "gs://b/first.jpg", "mimeType": "image/jpeg"}
    assert instance["lastFrame"]["bytesBase64Encoded"] == base64.b64encode(png).decode()
    assert base64.b64decode(instance["video"]["bytesBase64Encoded"]) == clip

    generate_video(video_config(emu, model="veo-2.0-generate-exp", vertex=True), prompt="in this style",
                   image_list=[{"image": data_url, "type": "style"}], retry=FAST)
    refs = emu.last("google.vertex_predict_long_running").json["instances"][0]["referenceImages"]
    assert refs[0]["referenceType"] == "STYLE"
    # google-genai refuses STYLE on the Gemini API (Vertex only): so do we, before any call.
    with pytest.raises(UnsupportedRequestError, match="style reference images"):
        generate_video(video_config(emu, model="veo-2.0-generate-exp"), prompt="in this style",
                       image_list=[{"image": data_url, "type": "style"}], retry=FAST)


@pytest.mark.parametrize("fields", [{"seed": 1}, {"generate_audio": False}, {"fps": 24}])
def test_vertex_only_fields_on_the_gemini_api_are_skipped(emu, fields):
    config = video_config(emu).model_copy(update={"fallback_configs": [mock_video()]})
    response = generate_video(config, prompt="x", retry=FAST, **fields)
    assert summary(response.execution_metadata) == [
        ("google", "skipped", "UnsupportedRequestError"), ("mock", "success", None)
    ]
    assert "gcp_project" in response.execution_metadata.attempts[0].error_message
    assert google_requests(emu) == []


@pytest.mark.parametrize(
    "modality, model, vertex, fields, reason",
    [
        ("video", VEO, False, {"duration_seconds": 5}, "duration_seconds=5"),
        ("video", VEO, False, {"duration_seconds": 4, "resolution": "1080p"}, "needs duration_seconds=8"),
        ("video", "veo-3.1-fast-generate-001", True, {"image_list": [{"image": "gs://b/a.png", "type": "last_frame"}]}, "last_frame"),
        ("video", VEO, True, {"image_list": [{"image": "gs://b/a.png", "type": "asset"}] * 4}, "maximum of 3"),
        ("video", VEO, True, {"image_list": [{"image": "gs://b/a.png", "type": "asset"}], "aspect_ratio": "9:16"}, "16:9"),
        ("video", "veo-2.0-generate-001", True, {"generate_audio": True}, "audio"),
        ("video", VEO, False, {"image_list": [{"image": "gs://b/a.png", "type": "first_frame"}]}, "gs://"),
        ("image", "imagen-4.0-generate-001", False, {}, "Vertex AI only"),
        ("image", "imagen-4.0-generate-001", True, {"aspect_ratio": "21:9"}, "aspect_ratio"),
        ("image", "imagen-4.0-fast-generate-001", True, {"size": "2048x2048"}, "2K"),
        ("image", "imagen-4.0-generate-001", True, {"seed": 3}, "add_watermark"),
        ("image", IMAGE_MODEL, False, {"negative_prompt": "x"}, "negative_prompt"),
        ("image", IMAGE_MODEL, False, {"n": 2}, "n=2"),
        ("image", IMAGE_MODEL, False, {"size": "1000x300"}, "no Google aspect ratio"),
        ("image", IMAGE_MODEL, False, {"image_list": [{"image": "gs://b/a.png", "type": "reference"}]}, "gs://"),
    ],
)
@pytest.mark.usefixtures("imagen_served")
def test_requests_a_model_cannot_serve_are_skipped_without_a_request(emu, modality, model, vertex, fields, reason):
    with pytest.raises(UnsupportedRequestError) as info:
        if modality == "video":
            generate_video(video_config(emu, model=model, vertex=vertex), prompt="x", retry=FAST, **fields)
        else:
            generate_image(image_config(emu, model=model, vertex=vertex), prompt="x", retry=FAST, **fields)
    assert reason in str(info.value)
    assert [a.status for a in info.value.execution_metadata.attempts] == ["skipped"]
    assert google_requests(emu) == []


def test_project_and_location_must_be_plain_ids(emu):
    config = video_config(emu).model_copy(update={"provider_config": {"gcp_project": "p", "location": "evil.com/x"}})
    with pytest.raises(UnsupportedRequestError, match="provider_config.location"):
        generate_video(config, prompt="x", retry=FAST)
    assert google_requests(emu) == []


def test_default_hosts_per_backend():
    provider = GoogleProvider()
    gemini = VideoGenerationConfig(provider="google", model=VEO)
    assert model_url(provider.context(gemini, "video"), backend_for(gemini), "predictLongRunning") == (
        f"https://generativelanguage.googleapis.com/v1beta/models/{VEO}:predictLongRunning"
    )
    vertex = gemini.model_copy(update={"provider_config": {"gcp_project": "p"}, "api_version": "v1beta1"})
    assert model_url(provider.context(vertex, "video"), backend_for(vertex), "fetchPredictOperation") == (
        f"https://us-central1-aiplatform.googleapis.com/v1beta1/projects/p/locations/us-central1"
        f"/publishers/google/models/{VEO}:fetchPredictOperation"
    )
    assert vertex_host("global") == "https://aiplatform.googleapis.com"
    assert vertex_host("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"


# -- images ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("imagen_served")
def test_imagen_on_vertex(emu):
    response = generate_image(
        image_config(emu, model="imagen-4.0-generate-001", vertex=True),
        prompt="a watercolour heron", n=2, size="2048x1152", output_format="jpeg", person_generation="dont_allow",
        retry=FAST,
    )
    sent = emu.last("google.vertex_predict")
    assert sent.path == "/v1/projects/my-proj/locations/us-central1/publishers/google/models/imagen-4.0-generate-001:predict"
    assert sent.headers["Authorization"] == f"Bearer {emu.key_for('google')}"
    assert sent.json == {
        "instances": [{"prompt": "a watercolour heron"}],
        "parameters": {
            "sampleCount": 2, "includeRaiReason": True, "aspectRatio": "16:9", "sampleImageSize": "2K",
            "outputOptions": {"mimeType": "image/jpeg"}, "personGeneration": "dont_allow",
        },
    }
    assert response.content_type == "image/jpeg" and len(response.images) == 2
    for image in response.images:
        info = probe_media(base64.b64decode(image))
        assert info.kind == "image" and info.content_type == "image/jpeg" and info.width > info.height


async def test_gemini_image_model_async_with_an_input_image(emu):
    png = emu.image_bytes("input", width=48, height=48)
    response = await generate_image_async(
        image_config(emu, model="gemini-3-pro-image"),
        prompt="make it night", aspect_ratio="1:1", size="2048x2048", seed=5,
        image_list=[{"image": "data:image/png;base64," + base64.b64encode(png).decode(), "type": "reference"}],
        retry=FAST,
    )
    sent = emu.last("google.generate_content")
    assert sent.path == "/v1beta/models/gemini-3-pro-image:generateContent"
    assert sent.headers["x-goog-api-key"] == emu.key_for("google")
    assert sent.json["contents"][0]["parts"] == [
        {"text": "make it night"}, {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}},
    ]
    assert sent.json["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "1:1", "imageSize": "2K"}, "seed": 5,
    }
    assert probe_media(base64.b64decode(response.images[0])).kind == "image"
    assert response.execution_metadata.attempts[0].request_id == response.raw_response["responseId"]
    assert "characters omitted" in json.dumps(response.raw_response)


def test_gemini_image_model_on_vertex(emu):
    response = generate_image(image_config(emu, vertex=True), prompt="a kite", retry=FAST)
    sent = emu.last("google.vertex_generate_content")
    assert sent.path.endswith(f"/publishers/google/models/{IMAGE_MODEL}:generateContent")
    assert probe_media(base64.b64decode(response.images[0])).content_type == "image/png"


def test_gemini_no_image_fails_and_falls_back(emu):
    emu.inject("google.generate_content", Fault.custom("no_image"))
    config = image_config(emu).model_copy(update={"fallback_configs": [mock_image()]})
    response = generate_image(config, prompt="x", retry=FAST)
    assert summary(response.execution_metadata) == [
        ("google", "failed", "GenerationFailedError"), ("mock", "success", None)
    ]
    assert "NO_IMAGE" in response.execution_metadata.attempts[0].error_message


# -- moderation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "modality, model, vertex, route, fault",
    [
        ("video", VEO, False, "google.predict_long_running", Fault.moderation("celebrity likeness")),
        ("video", VEO, True, "google.vertex_predict_long_running", Fault.moderation("celebrity likeness")),
        ("image", "imagen-4.0-generate-001", True, "google.vertex_predict", Fault.moderation("celebrity likeness")),
        ("image", IMAGE_MODEL, False, "google.generate_content", Fault.moderation("celebrity likeness")),
        ("image", IMAGE_MODEL, False, "google.generate_content", Fault.custom("moderation", where="prompt")),
        ("image", "imagen-4.0-generate-001", True, "google.vertex_predict", Fault.http(400, google_error(
            400, "INVALID_ARGUMENT", "The prompt contains sensitive words that violate Google's Responsible AI practices."))),
    ],
)
@pytest.mark.usefixtures("imagen_served")
def test_moderation_stops_the_chain(emu, modality, model, vertex, route, fault):
    emu.inject(route, fault)
    with pytest.raises(ContentModerationError) as info:
        if modality == "video":
            config = video_config(emu, model=model, vertex=vertex).model_copy(update={"fallback_configs": [mock_video()]})
            generate_video(config, prompt="x", retry=FAST)
        else:
            config = image_config(emu, model=model, vertex=vertex).model_copy(update={"fallback_configs": [mock_image()]})
            generate_image(config, prompt="x", retry=FAST)
    assert summary(info.value.execution_metadata) == [("google", "failed", "ContentModerationError")]
    assert emu.count(route) == 1


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("vertex, status", [(False, 400), (True, 401)])
def test_bad_credentials_raise_auth_errors_without_the_key(emu, vertex, status):
    secret = "wrong-secret-credential-123"
    with pytest.raises(ProviderAuthError) as info:
        generate_video(video_config(emu, vertex=vertex, api_key=secret), prompt="x", retry=FAST)
    error = info.value
    assert error.status_code == status and not error.retryable
    assert secret not in str(error) and secret not in json.dumps(error.raw_response)
    assert "config.api_key" in error.message


def test_invalid_argument_stops_the_chain(emu):
    config = video_config(emu).model_copy(update={"fallback_configs": [mock_video()]})
    with pytest.raises(InvalidRequestError, match="sampleCount"):
        generate_video(config, prompt="x", sample_count=9, retry=FAST)
    assert emu.count("google.predict_long_running") == 1


def test_rate_limit_honours_retry_info_then_succeeds(emu):
    body = google_error(
        429, "RESOURCE_EXHAUSTED", "Quota exceeded for metric: predict_long_running_requests_per_minute",
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "PredictLongRunningRequestsPerMinutePerProjectPerModel"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.2s"},
    )
    emu.inject("google.predict_long_running", Fault.http(429, body))
    started = time.monotonic()
    response = generate_video(video_config(emu), prompt="x", retry=FAST)
    assert time.monotonic() - started >= 0.2
    assert summary(response.execution_metadata) == [
        ("google", "failed", "ProviderHTTPError"), ("google", "success", None)
    ]
    assert response.execution_metadata.attempts[0].is_retryable
    assert emu.count("google.predict_long_running") == 2


def test_daily_quota_is_not_retried_and_falls_back(emu):
    body = google_error(
        429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.",
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36s"},
    )
    emu.inject("google.generate_content", Fault.http(429, body), times=None)
    config = image_config(emu).model_copy(update={"fallback_configs": [mock_image()]})
    response = generate_image(config, prompt="x", retry=FAST)
    meta = response.execution_metadata
    assert summary(meta) == [("google", "failed", "ProviderHTTPError"), ("mock", "success", None)]
    assert meta.attempts[0].is_retryable is False and meta.fallback_triggered
    assert emu.count("google.generate_content") == 1


def test_server_errors_are_retried(emu):
    unavailable = google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    emu.inject("google.generate_content", Fault.http(503, unavailable))
    generate_image(image_config(emu), prompt="x", retry=FAST)
    assert emu.count("google.generate_content") == 2

    emu.inject("google.get_operation", Fault.http(500, google_error(500, "INTERNAL", "Internal error")))
    response = generate_video(video_config(emu), prompt="x", retry=FAST)
    assert probe_media(response.video["content"]).kind == "video" and emu.count("google.get_operation") >= 2


def test_failed_operation_is_a_generation_failure(emu):
    emu.inject("google.vertex_predict_long_running", Fault.fail_job("Video generation failed: internal error"))
    with pytest.raises(GenerationFailedError, match="internal error") as info:
        generate_video(video_config(emu, vertex=True), prompt="x", retry=NO_RETRY)
    assert info.value.retryable and info.value.request_id.startswith("projects/my-proj/")

    emu.inject("google.vertex_predict_long_running", Fault.fail_job("Video generation failed: internal error"))
    response = generate_video(video_config(emu, vertex=True), prompt="x", retry=FAST)
    assert [a.status for a in response.execution_metadata.attempts] == ["failed", "success"]


# -- credentials ---------------------------------------------------------------------------------------


def test_gemini_key_falls_back_to_google_api_key(emu, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", emu.key_for("google"))
    generate_image(image_config(emu, api_key=None), prompt="x", retry=FAST)
    assert emu.last("google.generate_content").headers["x-goog-api-key"] == emu.key_for("google")

    monkeypatch.delenv("GOOGLE_API_KEY")
    with pytest.raises(ProviderAuthError) as info:
        generate_image(image_config(emu, api_key=None), prompt="x", retry=FAST)
    assert "GEMINI_API_KEY" in info.value.message and "GOOGLE_API_KEY" in info.value.message


class FakeCredentials:
    """Stands in for google-auth credentials: a token that expires when told to."""

    def __init__(self, token: str) -> None:
        self.next_token, self.token, self.valid, self.refreshes = token, None, False, 0

    def refresh(self, request) -> None:
        self.refreshes += 1
        self.token, self.valid = self.next_token, True


def test_vertex_uses_cached_application_default_credentials(emu, monkeypatch):
    import google.auth

    credentials = FakeCredentials(emu.key_for("google"))
    calls = []

    def fake_default(scopes=None, **kwargs):
        calls.append(scopes)
        return credentials, "my-proj"

    monkeypatch.setattr(google.auth, "default", fake_default)
    monkeypatch.setenv("GEMINI_API_KEY", "a-gemini-key-is-no-bearer-token")
    provider = GoogleProvider()
    config = image_config(emu, vertex=True, api_key=None)
    for _ in range(2):
        provider.generate_image(config, ImageGenerationRequest(prompt="x"))
    assert calls == [["https://www.googleapis.com/auth/cloud-platform"]] and credentials.refreshes == 1
    assert emu.last("google.vertex_generate_content").headers["Authorization"] == f"Bearer {emu.key_for('google')}"

    credentials.valid = False  # expired
    provider.generate_image(config, ImageGenerationRequest(prompt="x"))
    assert credentials.refreshes == 2 and len(calls) == 1

    copy = pickle.loads(pickle.dumps(provider))
    assert copy._credentials is None and emu.key_for("google").encode() not in pickle.dumps(provider)


def test_vertex_access_token_from_provider_config(emu):
    config = image_config(emu, vertex=True, api_key=None).model_copy(
        update={"provider_config": {**VERTEX, "access_token": emu.key_for("google"), "quota_project": "billing-proj"}}
    )
    generate_image(config, prompt="x", retry=FAST)
    sent = emu.last("google.vertex_generate_content")
    assert sent.headers["Authorization"] == f"Bearer {emu.key_for('google')}"
    assert sent.headers["x-goog-user-project"] == "billing-proj"


# -- the job handle ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vertex", [False, True])
def test_job_handle_is_json_and_followed_from_another_instance(emu, vertex):
    emu.jobs.advance_per_poll()
    config = video_config(emu, vertex=vertex)
    first = GoogleProvider()
    handle = first.submit(first.context(config, "video"), VideoGenerationRequest(prompt="x", duration_seconds=4))
    stored = handle.model_dump_json()
    assert emu.key_for("google") not in stored

    second = GoogleProvider()
    ctx = second.context(config, "video")
    resumed = JobHandle.model_validate_json(stored)
    states = []
    while (status := second.poll(ctx, resumed)).state != "completed":
        states.append(status.state)
        assert status.state == "processing" and len(states) < 5, states
    output = second.fetch(ctx, resumed)
    media = output.media[0]
    if media.data is None:  # the Gemini API's file URL comes with the header to fetch it by
        assert media.headers is not None and emu.key_for("google") not in repr(output)
        media.data = requests.get(media.url, headers=media.headers.reveal(), timeout=10).content
    assert probe_media(media.data).duration_seconds == pytest.approx(4, abs=0.1)
    assert output.request_id == handle.job_id


# -- small pieces --------------------------------------------------------------------------------------------


def test_error_detail_helpers():
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
    assert retry_delay({"details": [retry_info]}) == 1.5 and retry_delay({}) is None
    per_minute = {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                  "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]}
    assert not is_daily_quota({"message": "Quota exceeded", "details": [per_minute]})
    assert is_daily_quota({"message": "Quota exceeded for metric x, limit: 0", "details": [per_minute]})
    assert is_daily_quota({"details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                        "metadata": {"quota_limit": "Gemini25ProRequestsPerDay"}}]})


def test_key_only_travels_to_google_hosts():
    root = "https://generativelanguage.googleapis.com"
    assert may_send_key("https://generativelanguage.googleapis.com/v1beta/files/a:download?alt=media", root)
    assert may_send_key("http://127.0.0.1:9/google/v1beta/files/a:download", "http://127.0.0.1:9/google")
    assert not may_send_key("https://storage.example.com/a.mp4", root)
    assert not may_send_key("http://evil.googleapis.com.example/a", root)
    assert not may_send_key("http://x.googleapis.com/a", root)  # never over plain http


def test_size_plan_and_field_names():
    request = ImageGenerationRequest(prompt="x", size="2048x1152")
    assert size_plan(request, ("1K", "2K")) == ("16:9", "2K")
    assert size_plan(ImageGenerationRequest(prompt="x", size="1024x1024"), ("1K",)) == ("1:1", "1K")
    with pytest.raises(ValueError, match="contradicts"):
        size_plan(ImageGenerationRequest(prompt="x", size="1024x1024", aspect_ratio="16:9"), ("1K",))
    assert camel_case("person_generation") == "personGeneration" and camel_case("seed") == "seed"


def test_capability_table():
    assert get_provider_capabilities("google", "veo-3.1-fast-generate-001").durations == (4, 6, 8)
    veo2 = get_provider_capabilities("google", "veo-2.0-generate-001")
    assert (veo2.min_duration, veo2.max_duration, veo2.generates_audio) == (5, 8, False)
    assert get_provider_capabilities("google", "imagen-4.0-ultra-generate-001").max_outputs == 1
    assert get_provider_capabilities("google", "gemini-3-pro-image").modalities == {"image"}


# -- lifecycle --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "vertex", "message"),
    [
        ("imagen-4.0-generate-001", True, "imagen-4.0-generate-001 was retired on 2026-08-17"),
        ("imagen-4.0-ultra-generate-001", True, "use gemini-3-pro-image"),
        ("gemini-3.1-flash-image-preview", False, "retired on 2026-06-25"),
        ("imagen-3.0-generate-002", True, "retired on 2026-06-30"),
        ("gemini-2.5-flash-image", False, "gemini-2.5-flash-image was retired on 2026-10-02"),
    ],
)
def test_retired_image_models_are_skipped_and_the_chain_moves_on(emu, model, vertex, message):
    config = image_config(emu, model=model, vertex=vertex).model_copy(update={"fallback_configs": [mock_image()]})
    response = generate_image(config, prompt="x", retry=FAST)
    first = response.execution_metadata.attempts[0]
    assert (first.status, first.error_type) == ("skipped", "UnsupportedRequestError") and message in first.error_message
    assert response.is_mock and google_requests(emu) == []


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("veo-3.1-generate-preview", "veo-3.1-generate-preview was retired on 2026-10-22"),
        ("veo-3.1-fast-generate-preview", "use veo-3.1-fast-generate-001"),
        ("veo-3.0-generate-001", "veo-3.0-generate-001 was retired on 2026-06-30"),
    ],
)
def test_retired_veo_models_are_skipped(emu, model, message):
    config = video_config(emu, model=model).model_copy(update={"fallback_configs": [mock_video()]})
    response = generate_video(config, prompt="x", retry=FAST)
    assert message in response.execution_metadata.attempts[0].error_message and google_requests(emu) == []
