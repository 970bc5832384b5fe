"""Azure OpenAI conformance: the official ``openai`` Python SDK (its two Azure forms) is
the oracle.

- Images: ``openai.AzureOpenAI(azure_endpoint=<emu>/azure-openai, api_version=...)``
  calls ``{endpoint}/openai/deployments/{model}/images/{generations,edits}?api-version=``
  with ``api-key``; our client must send the same path, query and header.
- Sora 2: ``openai.OpenAI(base_url=<emu>/azure-openai/openai/v1/, api_key=key)``, the
  form Microsoft Learn documents for the v1 API, sends ``Authorization: Bearer <key>``
  to ``/openai/v1/videos...``; our client must send exactly that. The other official
  form, ``AzureOpenAI(api_version=...)``, sends ``/openai/videos?api-version=`` with
  ``api-key``: the emulator accepts it too (both are what an official client sends).

Every answer is validated strictly against the SDK's types (``Video``,
``ImagesResponse``); Azure's content-filter error parses into ``openai.BadRequestError``.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from providers import RetryPolicy, generate_image, generate_video
from schemas import ImageGenerationConfig, VideoGenerationConfig
from tests.conformance.sdk_oracle import multipart, strictly, wire
from tests.emulator import Fault

openai = pytest.importorskip("openai")
from openai.types import ImagesResponse, Video  # noqa: E402

P = "azure-openai"
API_VERSION = "2025-04-01-preview"
FAST = RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.02)


@pytest.fixture(autouse=True)
def no_endpoint_in_environment(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)


@pytest.fixture
def azure_sdk(emulator):
    client = openai.AzureOpenAI(azure_endpoint=emulator.url_for(P), api_version=API_VERSION,
                                api_key=emulator.key_for(P), max_retries=0)
    yield client
    client.close()


@pytest.fixture
def v1_sdk(emulator):
    client = openai.OpenAI(base_url=emulator.url_for(P) + "/openai/v1/", api_key=emulator.key_for(P), max_retries=0)
    yield client
    client.close()


def image_config(emulator, model: str = "gpt-image-2", **fields) -> ImageGenerationConfig:
    return ImageGenerationConfig(provider=P, model=model, base_url=emulator.url_for(P), api_key=emulator.key_for(P),
                                 api_version=API_VERSION, **fields)


def video_config(emulator, **fields) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider=P, model="sora-2", base_url=emulator.url_for(P), api_key=emulator.key_for(P),
                                 poll_interval=0, timeout=30, **fields)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 20, 20)).save(out, format="PNG")
    return out.getvalue()


def pair(emulator, route: str) -> tuple:
    calls = emulator.requests_for(route)
    assert len(calls) == 2, f"expected one call from our client and one from the SDK on {route}, got {len(calls)}"
    return calls[0], calls[1]


def test_image_generation_matches_azure_openai_client(emulator, azure_sdk):
    generate_image(image_config(emulator, provider_config={"deployment": "img-prod"}), prompt="a teapot",
                   size="1024x1536", quality="high", retry=FAST)
    raw = azure_sdk.images.with_raw_response.generate(model="img-prod", prompt="a teapot", size="1024x1536",
                                                      quality="high")
    strictly(ImagesResponse, json.loads(raw.http_response.text))

    ours, theirs = pair(emulator, "azure-openai.images_generations")
    assert theirs.path == "/openai/deployments/img-prod/images/generations"
    assert wire(ours, "api-key") == wire(theirs, "api-key")
    assert "Authorization" not in ours.headers and "Authorization" not in theirs.headers
    assert ours.json == theirs.json


def test_image_edit_matches_azure_openai_client(emulator, azure_sdk):
    image = png(256, 256)
    generate_image(image_config(emulator, provider_config={"deployment": "img-prod"}), prompt="hat", size="1024x1024",
                   image_list=[{"image": {"content": image, "content_type": "image/png"}, "type": "reference"}],
                   retry=FAST)
    raw = azure_sdk.images.with_raw_response.edit(model="img-prod", prompt="hat", size="1024x1024",
                                                  image=("image-0.png", image, "image/png"))
    strictly(ImagesResponse, json.loads(raw.http_response.text))
    ours, theirs = pair(emulator, "azure-openai.images_edits")
    assert wire(ours, "api-key") == wire(theirs, "api-key")
    assert multipart(ours) == multipart(theirs)


def test_sora_v1_routes_match_the_openai_client_on_the_v1_base_url(emulator, v1_sdk):
    emulator.job_duration = 0.05
    source = generate_video(video_config(emulator), prompt="waves", duration_seconds=4, aspect_ratio="16:9",
                            retry=FAST).raw_response["id"]
    generate_video(video_config(emulator), prompt="storm", remix_video_id=source, retry=FAST)
    created = v1_sdk.videos.with_raw_response.create(prompt="waves", model="sora-2", seconds="4", size="1280x720")
    strictly(Video, json.loads(created.http_response.text))
    remixed = v1_sdk.videos.with_raw_response.remix(source, prompt="storm")
    strictly(Video, json.loads(remixed.http_response.text))
    strictly(Video, json.loads(v1_sdk.videos.with_raw_response.retrieve(source).http_response.text))
    v1_sdk.videos.download_content(source)

    for route in ("azure-openai.videos_create", "azure-openai.videos_remix"):
        ours, theirs = pair(emulator, route)
        assert wire(ours, "Authorization", "api-key") == wire(theirs, "Authorization", "api-key"), route
        assert theirs.headers["Authorization"] == f"Bearer {emulator.key_for(P)}"
    ours, theirs = pair(emulator, "azure-openai.videos_create")
    assert multipart(ours) == multipart(theirs)
    content = emulator.requests_for("azure-openai.videos_content")
    assert wire(content[0], "Authorization", "Accept") == wire(content[-1], "Authorization", "Accept")


def test_the_azure_openai_client_form_for_videos_is_accepted_too(emulator, azure_sdk):
    emulator.job_duration = 0.05
    video = azure_sdk.videos.create(prompt="waves", model="sora-2", seconds="4", size="1280x720")
    create = emulator.last("azure-openai.videos_create")
    assert create.path == "/openai/videos" and create.query == {"api-version": API_VERSION}
    assert create.headers["api-key"] == emulator.key_for(P)
    strictly(Video, json.loads(azure_sdk.videos.with_raw_response.retrieve(video.id).http_response.text))


def test_content_filter_parses_into_the_sdk_error(emulator, azure_sdk):
    emulator.inject("azure-openai.images_generations", Fault.moderation())
    with pytest.raises(openai.BadRequestError) as info:
        azure_sdk.images.generate(model="img-prod", prompt="x")
    assert info.value.code == "content_filter"
