"""Azure OpenAI provider over the emulator: deployment image routes with api-version,
Sora 2 on the v1 API (Bearer auth, remix), the api-key header, endpoint / api-version configuration and
Azure's content filter."""

import base64

import pytest
import requests

from providers import RetryPolicy, generate_image, generate_image_async, generate_video, generate_video_async
from providers.errors import ProviderConfigError
from providers.errors import ContentModerationError, GenerationFailedError, InvalidRequestError, ProviderAuthError
from providers.media.probe import probe_media
from schemas import ImageGenerationConfig, MockConfig, VideoGenerationConfig
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
P = "azure-openai"
API_VERSION = "2025-04-01-preview"


@pytest.fixture(autouse=True)
def no_endpoint_in_environment(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)


def image_config(emulator, model="gpt-image-1", **fields) -> ImageGenerationConfig:
    values = {"base_url": emulator.url_for(P), "api_key": emulator.key_for(P), "api_version": API_VERSION, **fields}
    return ImageGenerationConfig(provider=P, model=model, **values)


def video_config(emulator, model="sora-2", **fields) -> VideoGenerationConfig:
    values = {"base_url": emulator.url_for(P), "api_key": emulator.key_for(P), "poll_interval": 0, "timeout": 30, **fields}
    return VideoGenerationConfig(provider=P, model=model, **values)


def mock_fallback(kind):
    return kind(provider="mock", model="mock-model", mock=MockConfig())


# -- images on a deployment ---------------------------------------------------------------


def test_image_goes_to_the_deployment_route_with_api_version_and_api_key(emulator):
    config = image_config(emulator, provider_config={"deployment": "img-prod"})
    response = generate_image(config, prompt="a teapot", aspect_ratio="9:16", retry=FAST)

    call = emulator.last("azure-openai.images_generations")
    assert call.path == "/openai/deployments/img-prod/images/generations"
    assert call.query == {"api-version": API_VERSION}
    assert call.headers["api-key"] == emulator.key_for(P) and "Authorization" not in call.headers
    assert call.json == {"prompt": "a teapot", "model": "img-prod", "size": "1024x1536"}
    info = probe_media(base64.b64decode(response.images[0]))
    assert (info.kind, info.width, info.height) == ("image", 1024, 1536)
    assert response.execution_metadata.attempts[0].request_id.startswith("req_")


async def test_image_async_on_a_dall_e_3_deployment(emulator):
    response = await generate_image_async(image_config(emulator, model="dall-e-3"), prompt="a fox", quality="hd", retry=FAST)
    call = emulator.last("azure-openai.images_generations")
    assert call.path == "/openai/deployments/dall-e-3/images/generations" and call.json["quality"] == "hd"
    assert response.revised_prompt and probe_media(requests.get(response.images[0], timeout=5).content).kind == "image"


def test_image_edits_use_the_deployment_edits_route(emulator):
    image = {"content": probe_png(emulator), "content_type": "image/png"}
    generate_image(image_config(emulator), prompt="recolour", image_list=[{"image": image, "type": "reference"}], retry=FAST)
    call = emulator.last("azure-openai.images_edits")
    assert call.path == "/openai/deployments/gpt-image-1/images/edits" and call.query["api-version"] == API_VERSION
    assert len(call.files["image"]) == 1


def probe_png(emulator) -> bytes:
    return emulator.image_bytes("input", width=64, height=64)


def test_missing_api_version_fails_this_config_before_http_and_the_chain_goes_on(emulator):
    config = image_config(emulator, api_version=None, fallback_configs=[mock_fallback(ImageGenerationConfig)])
    response = generate_image(config, prompt="x", retry=FAST)
    assert emulator.requests == []
    first = response.execution_metadata.attempts[0]
    assert (first.status, first.error_type, first.is_retryable) == ("failed", "ProviderConfigError", False)
    assert "api_version" in first.error_message and response.is_mock


def test_missing_endpoint_is_a_clear_config_error(emulator):
    config = image_config(emulator, base_url=None)
    with pytest.raises(ProviderConfigError) as info:
        generate_image(config, prompt="x", retry=FAST)
    assert isinstance(info.value, InvalidRequestError) and "AZURE_OPENAI_ENDPOINT" in str(info.value)
    assert emulator.requests == []


@pytest.mark.parametrize("suffix", ["", "/", "/openai", "/openai/v1/"])
def test_endpoint_from_provider_config_or_environment(emulator, monkeypatch, suffix):
    endpoint = emulator.url_for(P) + suffix
    generate_image(image_config(emulator, base_url=None, provider_config={"endpoint": endpoint}), prompt="x", retry=FAST)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    generate_image(image_config(emulator, base_url=None), prompt="x", retry=FAST)
    assert [r.path for r in emulator.requests_for("azure-openai.images_generations")] == [
        "/openai/deployments/gpt-image-1/images/generations"] * 2


def test_emulated_deployment_route_needs_an_api_version(emulator):
    url = f"{emulator.url_for(P)}/openai/deployments/gpt-image-1/images/generations"
    reply = requests.post(url, json={"prompt": "x"}, headers={"api-key": emulator.key_for(P)}, timeout=5)
    assert reply.status_code == 404 and reply.json() == {"error": {"code": "404", "message": "Resource not found"}}


def test_content_filter_is_moderation_and_stops_the_chain(emulator):
    emulator.inject("azure-openai.images_generations", Fault.moderation())
    config = image_config(emulator, fallback_configs=[mock_fallback(ImageGenerationConfig)])
    with pytest.raises(ContentModerationError) as info:
        generate_image(config, prompt="x", retry=FAST)
    assert "ResponsibleAIPolicyViolation" in str(info.value)
    assert len(info.value.execution_metadata.attempts) == 1


def test_wrong_key_is_an_auth_error_without_the_key(emulator):
    secret = "0123456789abcdef0123456789abcdef"
    with pytest.raises(ProviderAuthError) as info:
        generate_image(image_config(emulator, api_key=secret), prompt="x", retry=FAST)
    assert info.value.status_code == 401 and secret not in str(info.value)


def test_rate_limit_with_retry_after_is_retried(emulator):
    body = {"error": {"code": "429", "message": "Requests have exceeded the call rate limit. Retry after 1 second."}}
    emulator.inject("azure-openai.images_generations", Fault.http(429, body, {"Retry-After": "0.2"}))
    response = generate_image(image_config(emulator), prompt="x", retry=FAST)
    assert [c.status for c in emulator.requests_for("azure-openai.images_generations")] == [429, 200]
    assert [a.status for a in response.execution_metadata.attempts] == ["failed", "success"]


def test_dall_e_2_is_not_offered_on_azure(emulator):
    config = image_config(emulator, model="dall-e-2", fallback_configs=[mock_fallback(ImageGenerationConfig)])
    response = generate_image(config, prompt="x", retry=FAST)
    assert emulator.requests == [] and response.execution_metadata.attempts[0].status == "skipped"


# -- Sora 2 on the v1 API --------------------------------------------------------------------


def test_video_uses_the_v1_routes_with_the_deployment_as_model(emulator):
    updates = []
    config = video_config(emulator, provider_config={"deployment": "sora-2-eastus"})
    response = generate_video(config, prompt="waves", duration_seconds=4, aspect_ratio="16:9", on_progress=updates.append,
                              retry=FAST)
    create = emulator.last("azure-openai.videos_create")
    assert create.path == "/openai/v1/videos" and create.query == {}
    # What openai.OpenAI(base_url=".../openai/v1/", api_key=key) sends on the v1 routes.
    assert create.headers["Authorization"] == f"Bearer {emulator.key_for(P)}" and "api-key" not in create.headers
    assert create.form == {"prompt": "waves", "model": "sora-2-eastus", "seconds": "4", "size": "1280x720"}
    video_id = emulator.jobs.all(P)[0].id
    assert emulator.last("azure-openai.videos_content").path == f"/openai/v1/videos/{video_id}/content"
    assert probe_media(response.video["content"]).kind == "video" and response.duration == 4.0
    assert updates[0].status == "queued" and updates[-1].status == "completed"


async def test_video_async_with_a_video_api_version(emulator):
    config = video_config(emulator, provider_config={"video_api_version": "preview"})
    response = await generate_video_async(config, prompt="rain", duration_seconds=8, retry=FAST)
    assert all(r.query == {"api-version": "preview"} for r in emulator.requests_for(provider=P))
    assert probe_media(response.video["content"]).duration_seconds == pytest.approx(8, abs=0.2)


def test_failed_video_job_is_generation_failed(emulator):
    emulator.inject("azure-openai.videos_create", Fault.fail_job("capacity"))
    with pytest.raises(GenerationFailedError, match="capacity"):
        generate_video(video_config(emulator), prompt="x", retry=FAST)


def test_video_content_filter_at_submit_is_moderation(emulator):
    emulator.inject("azure-openai.videos_create", Fault.moderation())
    config = video_config(emulator, fallback_configs=[mock_fallback(VideoGenerationConfig)])
    with pytest.raises(ContentModerationError):
        generate_video(config, prompt="x", retry=FAST)
    assert emulator.count("azure-openai.videos_create") == 1


def test_video_remix_uses_the_v1_remix_route(emulator):
    source = generate_video(video_config(emulator), prompt="waves", duration_seconds=4, retry=FAST)
    remix = generate_video(
        video_config(emulator), prompt="stormy waves", remix_video_id=source.raw_response["id"], retry=FAST
    )
    call = emulator.last("azure-openai.videos_remix")
    assert call.path == f"/openai/v1/videos/{source.raw_response['id']}/remix" and call.json == {"prompt": "stormy waves"}
    assert call.headers["Authorization"] == f"Bearer {emulator.key_for(P)}"
    assert remix.raw_response["remixed_from_video_id"] == source.raw_response["id"] and remix.duration == 4.0


def test_sora_on_azure_is_not_retired_by_openai_s_shutdown(emulator):
    from providers.builtin.azure_openai import AzureOpenAIProvider
    from providers.builtin.openai import OpenAIProvider

    assert OpenAIProvider.models["sora-2"].lifecycle.status == "retired"
    assert AzureOpenAIProvider.models["sora-2"].lifecycle.status == "active"


def test_emulated_v1_video_route_rejects_a_wrong_bearer_key(emulator):
    url = emulator.url_for(P) + "/openai/v1/videos/video_x"
    reply = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert reply.status_code == 401
