"""Runway conformance: the official ``runwayml`` SDK is the oracle.

The SDK client (``RunwayML(base_url=<emu>/runway)``; its paths carry ``/v1`` like
``https://api.dev.runwayml.com/v1/...``) and our client make the same generation, and
the recorded requests are compared. Checked:

(a) method, path, ``Authorization: Bearer`` and ``X-Runway-Version`` headers and the JSON
    body are equal between our client and the SDK for text_to_video (veo3.1 with seed,
    negativePrompt, audio), image_to_video (gen4.5), video_to_video (aleph2) and
    text_to_image (gen4_image_turbo with tagged references); every key our client sends
    is declared by the SDK's request TypedDict for that model (wire aliases), and every
    key it requires is sent;
(b) create answers validate strictly against the SDK's ``*CreateResponse`` types and
    ``GET /v1/tasks/{id}`` against the ``TaskRetrieveResponse`` union in every status
    (PENDING, THROTTLED, RUNNING, SUCCEEDED, FAILED, CANCELLED), including the
    ``estimatedCost`` / ``cost`` objects; validation errors parse into the SDK's
    ``BadRequestError``.

Model ids: our active catalog entries must be the ``model`` literal of some SDK request
type; ``veo3`` and ``gen4_aleph`` are in none (they are retired in the catalog).
"""

from __future__ import annotations

import time
import typing

import pytest

from providers import RetryPolicy, generate_image, generate_video
from providers.builtin.runway import MODELS
from schemas import ImageGenerationConfig, VideoGenerationConfig
from tests.conformance.sdk_oracle import strictly, wire
from tests.emulator import Fault

runwayml = pytest.importorskip("runwayml")
from runwayml._utils import PropertyInfo  # noqa: E402
from runwayml.types import (  # noqa: E402
    ImageToVideoCreateResponse,
    TaskRetrieveResponse,
    TextToImageCreateResponse,
    TextToVideoCreateResponse,
    VideoToVideoCreateResponse,
    image_to_video_create_params,
    text_to_image_create_params,
    text_to_video_create_params,
    video_to_video_create_params,
)

P = "runway"
FAST = RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.02)
HEADERS = ("Authorization", "X-Runway-Version")
PARAMS = {
    "text_to_video": text_to_video_create_params,
    "image_to_video": image_to_video_create_params,
    "video_to_video": video_to_video_create_params,
    "text_to_image": text_to_image_create_params,
}
CREATE_RESPONSES = {
    "text_to_video": TextToVideoCreateResponse,
    "image_to_video": ImageToVideoCreateResponse,
    "video_to_video": VideoToVideoCreateResponse,
    "text_to_image": TextToImageCreateResponse,
}


@pytest.fixture
def sdk(emulator):
    emulator.job_duration = 0.05
    client = runwayml.RunwayML(api_key=emulator.key_for(P), base_url=emulator.url_for(P), max_retries=0)
    yield client
    client.close()


def video_config(emulator, model: str, **fields) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider=P, model=model, base_url=emulator.url_for(P), api_key=emulator.key_for(P),
                                 poll_interval=0, max_poll_attempts=5000, timeout=30, **fields)


def image_config(emulator, model: str) -> ImageGenerationConfig:
    return ImageGenerationConfig(provider=P, model=model, base_url=emulator.url_for(P), api_key=emulator.key_for(P),
                                 poll_interval=0, max_poll_attempts=5000, timeout=30)


def request_types(endpoint: str) -> dict[str, type]:
    """model id -> the SDK's request TypedDict for it on ``endpoint``."""
    union = getattr(PARAMS[endpoint], "".join(part.title() for part in endpoint.split("_")) + "CreateParams")
    out = {}
    for member in typing.get_args(union):
        model_hint = typing.get_type_hints(member, include_extras=True)["model"]
        literal = next(arg for arg in _unwrap(model_hint) if typing.get_origin(arg) is typing.Literal)
        for model in typing.get_args(literal):
            out[model] = member
    return out


def _unwrap(hint) -> list:
    """The hint and what it wraps (Required / Annotated), outermost first."""
    found = [hint]
    while typing.get_args(hint) and typing.get_origin(hint) in (typing.Annotated, typing_extensions_required()):
        hint = typing.get_args(hint)[0]
        found.append(hint)
    return found


def typing_extensions_required():
    import typing_extensions

    return typing_extensions.Required


def wire_keys(request_type: type) -> tuple[set[str], set[str]]:
    """(every declared key, the required keys) of an SDK request TypedDict, as wire names."""
    hints = typing.get_type_hints(request_type, include_extras=True)
    names = {}
    for key, hint in hints.items():
        metadata = [m for layer in _unwrap(hint) for m in getattr(layer, "__metadata__", ())]
        alias = next((m.alias for m in metadata if isinstance(m, PropertyInfo) and m.alias), None)
        names[key] = alias or key
    # The SDK modules use postponed annotations, so __required_keys__ is empty: read Required.
    required = {names[key] for key, hint in hints.items() if typing.get_origin(hint) is typing_extensions_required()}
    return set(names.values()), required


def assert_declared(endpoint: str, body: dict) -> None:
    declared, required = wire_keys(request_types(endpoint)[body["model"]])
    assert set(body) <= declared, f"undeclared for {body['model']} on {endpoint}: {sorted(set(body) - declared)}"
    assert required <= set(body), f"required but missing for {body['model']}: {sorted(required - set(body))}"


def compare(emulator, endpoint: str, raw) -> None:
    strictly(CREATE_RESPONSES[endpoint], raw.http_response.text)
    calls = emulator.requests_for(f"runway.{endpoint}")
    assert len(calls) == 2, f"expected our call and the SDK's on {endpoint}, got {len(calls)}"
    ours, theirs = calls
    assert wire(ours, *HEADERS) == wire(theirs, *HEADERS)
    assert theirs.path == f"/v1/{endpoint}" and theirs.status == ours.status == 200
    assert ours.json == theirs.json
    assert_declared(endpoint, ours.json)


# -- (a) requests -----------------------------------------------------------------------


def test_text_to_video_veo3_1_matches_the_sdk(emulator, sdk):
    generate_video(video_config(emulator, "veo3.1"), prompt="a storm at sea", duration_seconds=8, resolution="1080p",
                   aspect_ratio="9:16", seed=42, negative_prompt="people", generate_audio=True, retry=FAST)
    raw = sdk.text_to_video.with_raw_response.create(
        model="veo3.1", prompt_text="a storm at sea", ratio="1080:1920", duration=8, seed=42,
        negative_prompt="people", audio=True,
    )
    compare(emulator, "text_to_video", raw)


def test_image_to_video_gen4_5_matches_the_sdk(emulator, sdk):
    frame = "https://cdn.example.com/first.png"
    generate_video(video_config(emulator, "gen4.5", provider_config={"public_figure_threshold": "low"}),
                   prompt="wake up", duration_seconds=5, aspect_ratio="1:1", seed=7,
                   image_list=[{"image": frame, "type": "first_frame"}], retry=FAST)
    raw = sdk.image_to_video.with_raw_response.create(
        model="gen4.5", prompt_image=frame, prompt_text="wake up", ratio="960:960", duration=5, seed=7,
        content_moderation={"public_figure_threshold": "low"},
    )
    compare(emulator, "image_to_video", raw)


def test_image_to_video_veo3_1_first_and_last_frames_match_the_sdk(emulator, sdk):
    first, last = "https://cdn.example.com/a.png", "https://cdn.example.com/b.png"
    generate_video(video_config(emulator, "veo3.1_fast"), prompt="a door opens", duration_seconds=6,
                   image_list=[{"image": first, "type": "first_frame"}, {"image": last, "type": "last_frame"}],
                   retry=FAST)
    raw = sdk.image_to_video.with_raw_response.create(
        model="veo3.1_fast", prompt_image=[{"uri": first, "position": "first"}, {"uri": last, "position": "last"}],
        prompt_text="a door opens", ratio="1280:720", duration=6,
    )
    compare(emulator, "image_to_video", raw)


def test_video_to_video_aleph2_matches_the_sdk(emulator, sdk):
    clip = "https://cdn.example.com/clip.mp4"
    generate_video(video_config(emulator, "aleph2", provider_config={"public_figure_threshold": "auto"}),
                   prompt="make it snow", video=clip, seed=9, retry=FAST)
    raw = sdk.video_to_video.with_raw_response.create(
        model="aleph2", video_uri=clip, prompt_text="make it snow", seed=9,
        content_moderation={"public_figure_threshold": "auto"},
    )
    compare(emulator, "video_to_video", raw)


def test_text_to_image_matches_the_sdk(emulator, sdk):
    refs = ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"]
    generate_image(image_config(emulator, "gen4_image_turbo"), prompt="@hero and @car", aspect_ratio="16:9", seed=11,
                   image_list=[{"image": refs[0], "type": "reference"}, {"image": refs[1], "type": "asset"}],
                   extra_params={"reference_tags": ["hero", "car"]}, retry=FAST)
    raw = sdk.text_to_image.with_raw_response.create(
        model="gen4_image_turbo", prompt_text="@hero and @car", ratio="1920:1080", seed=11,
        reference_images=[{"uri": refs[0], "tag": "hero"}, {"uri": refs[1], "tag": "car"}],
    )
    compare(emulator, "text_to_image", raw)


def test_task_get_and_delete_match_the_sdk(emulator, sdk):
    emulator.job_duration = 0.05
    response = generate_video(video_config(emulator, "gen4.5"), prompt="x", duration_seconds=2, retry=FAST)
    task_id = response.raw_response["id"]
    sdk.tasks.retrieve(task_id)
    ours, theirs = emulator.requests_for("runway.task")[-2:]
    assert wire(ours, *HEADERS) == wire(theirs, *HEADERS) and theirs.path == f"/v1/tasks/{task_id}"
    sdk.tasks.delete(task_id)
    deleted = emulator.last("runway.cancel")
    assert (deleted.method, deleted.path, deleted.status) == ("DELETE", f"/v1/tasks/{task_id}", 204)
    with pytest.raises(runwayml.NotFoundError):
        sdk.tasks.retrieve(task_id)


# -- (b) answers ----------------------------------------------------------------------------


def test_every_task_status_validates_against_the_sdk_union(emulator, sdk):
    emulator.job_duration = 1000
    seen = {}

    def status_of(task_id: str) -> str:
        task = strictly(TaskRetrieveResponse, sdk.tasks.with_raw_response.retrieve(task_id).http_response.text)
        seen[task.status] = task
        return task.status

    running = sdk.text_to_video.create(model="gen4.5", prompt_text="x", ratio="1280:720", duration=5).id
    job = emulator.jobs.get(running)
    for fraction, expected in ((0.0, "PENDING"), (0.5, "RUNNING"), (1.5, "SUCCEEDED")):
        job.started = time.monotonic() - job.duration * fraction
        assert status_of(running) == expected
    emulator.inject("runway.text_to_video", Fault.custom("throttled"))
    assert status_of(sdk.text_to_video.create(model="gen4.5", prompt_text="x", ratio="1280:720", duration=5).id) == "THROTTLED"
    failed = sdk.text_to_video.create(model="gen4.5", prompt_text="x", ratio="1280:720", duration=5).id
    emulator.jobs.get(failed).fail("bad output", immediately=True)
    assert status_of(failed) == "FAILED"
    cancelled = sdk.text_to_video.create(model="gen4.5", prompt_text="x", ratio="1280:720", duration=5).id
    sdk.tasks.delete(cancelled)
    assert status_of(cancelled) == "CANCELLED"

    assert seen["SUCCEEDED"].output and 0 < seen["RUNNING"].progress < 1
    assert seen["FAILED"].failure_code == "INTERNAL.BAD_OUTPUT.CODE01"


def test_validation_errors_parse_into_the_sdk_error(emulator, sdk):
    with pytest.raises(runwayml.BadRequestError) as info:
        sdk.text_to_video.create(model="veo3.1", prompt_text="x", ratio="640:480")  # type: ignore[arg-type]
    assert info.value.status_code == 400 and "ratio" in str(info.value.body)


# -- model ids --------------------------------------------------------------------------


def test_active_catalog_models_are_sdk_model_literals_and_retired_ones_are_not():
    sdk_models = {endpoint: set(request_types(endpoint)) for endpoint in PARAMS}
    for name, spec in MODELS.items():
        served = [endpoint for endpoint in spec.ratios]
        if spec.lifecycle.status == "retired":
            assert all(name not in sdk_models[endpoint] for endpoint in PARAMS), name
        else:
            assert all(name in sdk_models[endpoint] for endpoint in served), (name, served)
