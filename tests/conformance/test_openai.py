"""OpenAI conformance: the official ``openai`` Python SDK is the oracle for the Videos
(Sora) and Images APIs.

The SDK client is pointed at the emulator (``OpenAI(base_url=<emu>/openai/v1)``, the
same ``/v1`` prefix as ``https://api.openai.com/v1``) and our client gets the same base
URL. Checked:

(a) the emulator accepts what the SDK sends, and our client sends the same method, path,
    query, ``Authorization: Bearer`` header, content type and body field names / part
    names as the SDK for: videos.create (multipart, with ``input_reference``),
    videos.retrieve, videos.download_content (``Accept: application/binary``),
    videos.remix (JSON ``{"prompt"}``), images.generate (JSON) and images.edit
    (multipart ``image`` / ``image[]`` / ``mask``);
(b) every answer validates strictly (pydantic strict mode, no undeclared field at any
    depth) against the SDK's own types: ``Video`` in every status (queued, in_progress,
    completed, failed with ``VideoCreateError``), ``ImagesResponse`` (``usage`` with its
    token details; ``quality`` / ``background`` only with values the type allows), and
    error bodies parse into the SDK's exceptions with ``code`` / ``param``.

Model lifecycle comes from the same SDK (``ImageModel`` docstring, Videos deprecation
decorators); see ``tests/providers/builtin/test_openai.py``.
"""

from __future__ import annotations

import io
import json
import time
import typing

import pytest
from PIL import Image

from providers import RetryPolicy, generate_image, generate_video
from providers.media.probe import probe_media
from providers.builtin.openai import OpenAIProvider, QUALITIES, image_family
from schemas import ImageGenerationConfig, VideoGenerationConfig
from tests.conformance.sdk_oracle import multipart, strictly, wire
from tests.conftest import serve_retired_models
from tests.emulator import Fault

openai = pytest.importorskip("openai")
from openai.types import ImageModel, ImagesResponse, Video, VideoSeconds, VideoSize  # noqa: E402

P = "openai"
FAST = RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.02)
BODY_TYPES = ("multipart/form-data", "application/json")


@pytest.fixture(autouse=True)
def sora_still_served(monkeypatch):
    """The Sora models are retired in our catalog (skipped before HTTP); the wire is
    compared as if they were served, which is what the SDK still does."""
    serve_retired_models(monkeypatch, OpenAIProvider.models, "sora-")


@pytest.fixture
def sdk(emulator):
    client = openai.OpenAI(base_url=emulator.url_for(P) + "/v1", api_key=emulator.key_for(P), max_retries=0)
    yield client
    client.close()


def base_url(emulator) -> str:
    return emulator.url_for(P) + "/v1"


def video_config(emulator, **fields) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider=P, model="sora-2", base_url=base_url(emulator), api_key=emulator.key_for(P),
                                 poll_interval=0, timeout=30, **fields)


def image_config(emulator, model: str, **fields) -> ImageGenerationConfig:
    return ImageGenerationConfig(provider=P, model=model, base_url=base_url(emulator), api_key=emulator.key_for(P),
                                 **fields)


def png(width: int, height: int, color=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def content_type(recorded) -> str:
    """The body's media type without parameters (the multipart boundary differs per call)."""
    return (recorded.headers.get("Content-Type") or "").split(";")[0].strip()


def at(job, fraction: float) -> None:
    """Put an emulator job ``fraction`` of the way through its duration (no sleeping)."""
    job.started = time.monotonic() - job.duration * fraction


def ours_and_sdks(emulator, route: str) -> tuple:
    calls = emulator.requests_for(route)
    assert len(calls) == 2, f"expected one call from our client and one from the SDK on {route}, got {len(calls)}"
    return calls[0], calls[1]


# -- (a) requests -----------------------------------------------------------------------


def test_video_create_sends_what_the_sdk_sends(emulator, sdk):
    reference = png(720, 1280)
    generate_video(video_config(emulator), prompt="a paper boat", duration_seconds=8, aspect_ratio="9:16",
                   image_list=[{"image": {"content": reference, "content_type": "image/png"}, "type": "first_frame"}],
                   retry=FAST)
    raw = sdk.videos.with_raw_response.create(
        prompt="a paper boat", model="sora-2", seconds="8", size="720x1280",
        input_reference=("reference.png", reference, "image/png"),
    )
    strictly(Video, json.loads(raw.http_response.text))

    ours, theirs = ours_and_sdks(emulator, "openai.videos_create")
    assert wire(ours, "Authorization") == wire(theirs, "Authorization")
    assert content_type(ours) == content_type(theirs) == "multipart/form-data"
    assert multipart(ours) == multipart(theirs)
    assert theirs.path == "/v1/videos" and theirs.status == ours.status == 200


def test_video_retrieve_and_download_send_what_the_sdk_sends(emulator, sdk):
    emulator.job_duration = 0.05
    response = generate_video(video_config(emulator), prompt="x", retry=FAST)
    video_id = response.raw_response["id"]
    video = sdk.videos.retrieve(video_id)
    content = sdk.videos.download_content(video_id)

    assert video.status == "completed"
    assert probe_media(content.content).kind == "video"
    ours = emulator.requests_for("openai.videos_retrieve")[-2]  # our fetch re-reads the video first
    theirs = emulator.last("openai.videos_retrieve")
    assert wire(ours, "Authorization") == wire(theirs, "Authorization")
    ours, theirs = ours_and_sdks(emulator, "openai.videos_content")
    assert wire(ours, "Authorization", "Accept") == wire(theirs, "Authorization", "Accept")
    assert theirs.headers["Accept"] == "application/binary"


def test_video_remix_sends_what_the_sdk_sends(emulator, sdk):
    emulator.job_duration = 0.05
    source = generate_video(video_config(emulator), prompt="a boat", retry=FAST).raw_response["id"]
    generate_video(video_config(emulator), prompt="a red boat", remix_video_id=source, retry=FAST)
    raw = sdk.videos.with_raw_response.remix(source, prompt="a red boat")
    remix = strictly(Video, json.loads(raw.http_response.text))

    ours, theirs = ours_and_sdks(emulator, "openai.videos_remix")
    assert wire(ours, "Authorization") == wire(theirs, "Authorization")
    assert theirs.path == f"/v1/videos/{source}/remix"
    assert content_type(ours) == content_type(theirs) == "application/json"
    assert ours.json == theirs.json == {"prompt": "a red boat"}
    assert remix.remixed_from_video_id == source


def test_image_generate_sends_what_the_sdk_sends(emulator, sdk):
    generate_image(image_config(emulator, "gpt-image-2.5-flare"), prompt="a lighthouse", size="1536x864", n=2,
                   quality="max", output_format="webp", retry=FAST)
    raw = sdk.images.with_raw_response.generate(model="gpt-image-2.5-flare", prompt="a lighthouse", size="1536x864",
                                                n=2, quality="max", output_format="webp")
    strictly(ImagesResponse, json.loads(raw.http_response.text))

    ours, theirs = ours_and_sdks(emulator, "openai.images_generations")
    assert wire(ours, "Authorization") == wire(theirs, "Authorization")
    assert content_type(ours) == content_type(theirs) == "application/json"
    assert ours.json == theirs.json


@pytest.mark.parametrize("count", [1, 2])
def test_image_edit_sends_what_the_sdk_sends(emulator, sdk, count):
    images = [png(512, 512, (count, 0, index)) for index in range(count)]
    mask = png(512, 512, (255, 255, 255)) if count == 1 else None
    generate_image(
        image_config(emulator, "gpt-image-2"), prompt="combine", size="1024x1024",
        image_list=[{"image": {"content": data, "content_type": "image/png"}, "type": "reference"} for data in images],
        mask_image={"content": mask, "content_type": "image/png"} if mask else None, retry=FAST,
    )
    files = [(f"image-{index}.png", data, "image/png") for index, data in enumerate(images)]
    extra = {"mask": ("mask.png", mask, "image/png")} if mask else {}
    raw = sdk.images.with_raw_response.edit(model="gpt-image-2", prompt="combine", size="1024x1024",
                                            image=files[0] if count == 1 else files, **extra)
    strictly(ImagesResponse, json.loads(raw.http_response.text))

    ours, theirs = ours_and_sdks(emulator, "openai.images_edits")
    assert wire(ours, "Authorization") == wire(theirs, "Authorization")
    assert multipart(ours) == multipart(theirs)
    assert set(theirs.files) == ({"image", "mask"} if count == 1 else {"image[]"})


# -- (b) answers --------------------------------------------------------------------------


def test_every_video_status_validates_against_the_sdk_video_type(emulator, sdk):
    emulator.job_duration = 1000
    video_id = sdk.videos.create(prompt="x", model="sora-2-pro", seconds="12", size="1792x1024").id
    job = emulator.jobs.get(video_id)
    seen = {}
    for fraction in (0.0, 0.5, 1.5):
        at(job, fraction)
        body = json.loads(sdk.videos.with_raw_response.retrieve(video_id).http_response.text)
        seen[strictly(Video, body).status] = body
    failed_id = sdk.videos.create(prompt="y").id
    emulator.jobs.get(failed_id).fail("GPU fell over", immediately=True)
    failed = strictly(Video, json.loads(sdk.videos.with_raw_response.retrieve(failed_id).http_response.text))

    assert set(seen) == {"queued", "in_progress", "completed"}
    assert seen["completed"]["expires_at"] is not None and seen["queued"]["completed_at"] is None
    assert failed.status == "failed" and failed.error is not None and failed.error.message == "GPU fell over"


def test_image_answers_validate_for_auto_quality_and_background(emulator, sdk):
    raw = sdk.images.with_raw_response.generate(model="gpt-image-2", prompt="x", quality="auto", background="auto")
    answer = strictly(ImagesResponse, json.loads(raw.http_response.text))
    assert answer.quality in ("low", "medium", "high") and answer.background == "opaque"
    assert answer.usage is not None and answer.usage.input_tokens_details.text_tokens > 0


def test_dall_e_url_answers_validate(emulator, sdk):
    raw = sdk.images.with_raw_response.generate(model="dall-e-3", prompt="x", response_format="url")
    answer = strictly(ImagesResponse, json.loads(raw.http_response.text))
    assert answer.data[0].url and answer.data[0].revised_prompt


def test_error_bodies_parse_into_the_sdk_exceptions(emulator, sdk):
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.videos.create(prompt="x", seconds="5")  # type: ignore[arg-type]
    assert (bad.value.code, bad.value.param) == ("invalid_value", "seconds")
    emulator.inject("openai.images_generations", Fault.moderation())
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.images.generate(model="gpt-image-2", prompt="x")
    assert refused.value.code == "moderation_blocked"
    wrong = openai.OpenAI(base_url=base_url(emulator), api_key="sk-wrong-key-123456", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.videos.retrieve("video_x")
    assert denied.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError):
        sdk.videos.remix("video_missing", prompt="x")


# -- the SDK's enumerations ----------------------------------------------------------------


def test_sora_sizes_and_seconds_are_the_sdk_literals():
    from providers.builtin.openai import SORA_SIZES
    from tests.emulator.routes.openai import SORA_PRO_SIZES, SORA_SECONDS

    assert set(SORA_SIZES.values()) == set(SORA_PRO_SIZES) == set(typing.get_args(VideoSize))
    assert set(SORA_SECONDS) == set(typing.get_args(VideoSeconds))
    assert OpenAIProvider.models["sora-2"].durations == tuple(int(s) for s in typing.get_args(VideoSeconds))


def test_catalog_covers_every_sdk_image_model_with_its_qualities():
    sdk_models = set(typing.get_args(ImageModel))
    assert sdk_models <= set(OpenAIProvider.models)
    for model in sdk_models:
        qualities = set(QUALITIES[image_family(model)])
        extended = {"xhigh", "max"} <= qualities
        assert extended == model.startswith("gpt-image-2.5"), model  # per the SDK's quality docs


def test_lifecycle_matches_the_sdk_deprecation_notes():
    doc = openai.types.image_model.__doc__ or ""
    source = open(openai.types.image_model.__file__, encoding="utf-8").read()
    assert "shut down on October 23, 2026" in source and "retired on May 12, 2026" in source, doc
    catalog = OpenAIProvider.models
    assert (catalog["gpt-image-1"].lifecycle.status, str(catalog["gpt-image-1"].lifecycle.date)) == ("retired", "2026-10-23")
    for name in ("dall-e-2", "dall-e-3"):
        assert (catalog[name].lifecycle.status, str(catalog[name].lifecycle.date)) == ("retired", "2026-05-12")
    videos_source = open(openai.resources.videos.__file__, encoding="utf-8").read()
    assert "permanently shut down on September 24, 2026" in videos_source
