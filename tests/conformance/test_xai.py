"""xAI conformance against the published REST reference (no REST SDK exists: xai-sdk speaks gRPC).

The expected shapes are copied here from:

- xAI REST reference, https://docs.x.ai/developers/rest-api-reference/inference/images and
  .../inference/videos (``POST /v1/images/generations``, ``POST /v1/videos/generations``,
  ``POST /v1/videos/edits``, ``GET /v1/videos/{request_id}``; ``Authorization: Bearer``);
- the field names and enums of xai-sdk-python's protos, which the REST JSON mirrors
  (``src/xai_sdk/proto/v6/video_pb2.pyi``: ``GenerateVideoRequest``, ``VideoAspectRatio``,
  ``VideoResolution``, ``GeneratedVideo``, ``VideoError``);
- docs.x.ai/developers/model-capabilities/video/generation (1080p: grok-imagine-video-1.5,
  text-to-video only) and the xAI migration guides for the image-model lifecycle.

Checked: (a) every body our client sends uses only documented fields with documented
values, on the documented paths with Bearer auth; (b) every answer the emulator gives
uses only documented fields with the documented types.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from providers import RetryPolicy, generate_image, generate_video
from schemas import ImageGenerationConfig, MockConfig, VideoGenerationConfig
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=0)

# POST /v1/images/generations (docs.x.ai images reference): size and style are listed as not supported.
IMAGE_REQUEST = {"model": str, "prompt": str, "n": int, "response_format": str, "aspect_ratio": str,
                 "resolution": str, "quality": str, "user": str}
IMAGE_ENUMS = {"response_format": {"url", "b64_json"}, "resolution": {"1k", "2k"},
               "quality": {"low", "medium", "high"},
               "aspect_ratio": {"1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9",
                                "1:2", "2:1", "auto"}}
IMAGE_ANSWER = {"data": list, "block_reason": (str, type(None)), "usage": dict, "created": int, "model": str}
IMAGE_ITEM = {"url": (str, type(None)), "b64_json": (str, type(None)), "mime_type": str, "revised_prompt": str}
# GenerateVideoRequest (video_pb2.pyi); image/video are {url} objects in REST.
VIDEO_REQUEST = {"prompt": str, "image": dict, "model": str, "duration": int, "video": dict, "aspect_ratio": str,
                 "resolution": str, "reference_images": list, "storage_options": dict, "reference_audios": list,
                 "generate_audio": bool}
VIDEO_ENUMS = {"aspect_ratio": {"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"},
               "resolution": {"480p", "720p", "1080p"}}
EDIT_REQUEST = {"prompt": str, "model": str, "video": dict}
URL_OBJECT = {"url": str}
SUBMIT_ANSWER = {"request_id": str}
# GET /v1/videos/{request_id}: status + the VideoResponse fields, flattened.
STATUS_ANSWER = {"status": str, "video": dict, "model": str, "error": dict, "progress": int, "usage": dict}
STATUSES = {"pending", "done", "failed", "expired"}
GENERATED_VIDEO = {"url": str, "duration": int, "respect_moderation": bool}
VIDEO_ERROR = {"code": str, "message": str}


def assert_shape(obj: dict[str, Any], shape: dict[str, Any], where: str) -> None:
    unknown = set(obj) - set(shape)
    assert not unknown, f"{where}: undocumented fields {sorted(unknown)}"
    for key, value in obj.items():
        assert isinstance(value, shape[key]) and not (shape[key] is int and isinstance(value, bool)), \
            f"{where}.{key}={value!r} is not {shape[key]}"


def _config(kind, emu, model: str, **fields):
    return kind(provider="xai", model=model, api_key=emu.key_for("xai"), base_url=emu.url_for("xai"), **fields)


@pytest.fixture
def emu(emulator):
    emulator.job_duration = 0.05
    return emulator


def _check_bearer(recorded, emu) -> None:
    assert recorded.headers["Authorization"] == f"Bearer {emu.key_for('xai')}"
    assert recorded.path.startswith(("/images/", "/videos/"))  # under the /v1 base


@pytest.mark.parametrize("model", ["grok-imagine-image", "grok-imagine-image-2.0"])
@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_image_request_and_answer_follow_the_reference(emu, model, response_format):
    generate_image(_config(ImageGenerationConfig, emu, model, provider_config={"response_format": response_format}),
                   prompt="a lighthouse", n=2, aspect_ratio="16:9", quality="medium", resolution="2k", retry=FAST)
    sent = emu.last("xai.images")
    _check_bearer(sent, emu)
    assert (sent.method, sent.path) == ("POST", "/images/generations")
    assert_shape(sent.json, IMAGE_REQUEST, "images request")
    for key, allowed in IMAGE_ENUMS.items():
        assert key not in sent.json or sent.json[key] in allowed, key
    answer = _post(emu, "/images/generations", sent.json)
    assert_shape(answer, IMAGE_ANSWER, "images answer")
    for item in answer["data"]:
        assert_shape(item, IMAGE_ITEM, "images answer data[]")
        assert (item["url"] is None) == (response_format == "b64_json")


def test_blocked_image_answer_follows_the_reference(emu):
    emu.inject("xai.images", Fault.moderation("rejected"))
    answer = _post(emu, "/images/generations", {"model": "grok-imagine-image", "prompt": "x"})
    assert_shape(answer, IMAGE_ANSWER, "blocked images answer")
    assert answer["block_reason"] and answer["data"] == []


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("grok-imagine-video", {"duration_seconds": 6, "aspect_ratio": "9:16", "resolution": "720p",
                                "generate_audio": False}),
        ("grok-imagine-video", {"image_list": [{"image": "https://x.example/a.png", "type": "first_frame"}]}),
        ("grok-imagine-video-1.5", {"resolution": "1080p", "duration_seconds": 10}),
    ],
)
def test_video_request_and_every_status_answer_follow_the_reference(emu, model, fields):
    generate_video(_config(VideoGenerationConfig, emu, model, poll_interval=0, max_poll_attempts=100_000),
                   prompt="a fox", retry=FAST, **fields)
    sent = emu.last("xai.videos")
    _check_bearer(sent, emu)
    assert (sent.method, sent.path) == ("POST", "/videos/generations")
    assert_shape(sent.json, VIDEO_REQUEST, "videos request")
    for key, allowed in VIDEO_ENUMS.items():
        assert key not in sent.json or sent.json[key] in allowed, key
    if "image" in sent.json:
        assert_shape(sent.json["image"], URL_OBJECT, "videos request image")
    [job] = emu.jobs.all("xai")
    answer = _get(emu, f"/videos/{job.id}")
    _check_status(answer)
    assert answer["status"] == "done" and answer["video"]["url"]


@pytest.mark.parametrize("fault", [None, Fault.moderation("blocked"), Fault.fail_job("boom"),
                                   Fault.custom("expire"), Fault.slow_job(30)])
def test_status_answers_in_every_state_follow_the_reference(emu, fault):
    if fault is not None:
        emu.inject("xai.videos", fault)
    submit = _post(emu, "/videos/generations", {"model": "grok-imagine-video", "prompt": "x"})
    assert_shape(submit, SUBMIT_ANSWER, "submit answer")
    job = emu.jobs.get(submit["request_id"])
    if fault is None or fault.kind != "slow_job":
        job.duration = 0  # finished: the state the answer is about
    _check_status(_get(emu, f"/videos/{submit['request_id']}"))


def test_video_edit_request_follows_the_reference(emu):
    video = emu.host_video("src", provider="xai", width=64, height=36, duration=1.0)
    generate_video(_config(VideoGenerationConfig, emu, "grok-imagine-video", poll_interval=0,
                           max_poll_attempts=100_000), prompt="make it snow", video=video, retry=FAST)
    sent = emu.last("xai.video_edits")
    assert (sent.method, sent.path) == ("POST", "/videos/edits")
    assert_shape(sent.json, EDIT_REQUEST, "edits request")
    assert_shape(sent.json["video"], URL_OBJECT, "edits request video")


def test_retired_image_slugs_are_refused_not_sent(emu):
    for model in ("grok-imagine-image-quality", "grok-imagine-image-pro"):
        config = _config(ImageGenerationConfig, emu, model,
                         fallback_configs=[ImageGenerationConfig(provider="mock", model="m", mock=MockConfig())])
        response = generate_image(config, prompt="x", retry=FAST)
        assert response.execution_metadata.attempts[0].status == "skipped"
    assert emu.requests_for(provider="xai") == []


def _check_status(answer: dict[str, Any]) -> None:
    assert_shape(answer, STATUS_ANSWER, "status answer")
    assert answer["status"] in STATUSES
    if "video" in answer:
        assert_shape(answer["video"], GENERATED_VIDEO, "status answer video")
    if "error" in answer:
        assert_shape(answer["error"], VIDEO_ERROR, "status answer error")


def _post(emu, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{emu.url_for('xai')}{path}", json=body,
                             headers={"Authorization": f"Bearer {emu.key_for('xai')}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _get(emu, path: str) -> dict[str, Any]:
    response = requests.get(f"{emu.url_for('xai')}{path}", headers={"Authorization": f"Bearer {emu.key_for('xai')}"},
                            timeout=10)
    assert response.status_code == 200, response.text
    return response.json()
