"""Replicate conformance: the official ``replicate`` Python SDK is the oracle.

The SDK client (``replicate.Client(base_url=<emu>/replicate)``; its paths start with
``/v1`` like ``https://api.replicate.com/v1/...``) and our client (base URL
``<emu>/replicate/v1``) create the same predictions and the recorded requests are
compared. Checked:

(a) method, path, ``Authorization: Bearer`` and ``Prefer`` headers and the JSON body are
    equal for the three create forms (official model ``POST /v1/models/{owner}/{name}/
    predictions``; version ``POST /v1/predictions {version, input}``; deployment ``POST
    /v1/deployments/{owner}/{name}/predictions``), for ``GET /v1/predictions/{id}`` and
    for ``POST /v1/predictions/{id}/cancel``; ``Prefer: wait=N`` is the SDK's format
    (``wait=True`` sends a bare ``wait``, which the emulator also honours);
(b) every prediction the emulator answers (201 on create, every status on get, the
    cancel answer) validates strictly against the SDK's ``Prediction`` type (a pydantic
    v1 model, mirrored field for field into a strict pydantic v2 model that forbids
    extras) plus the fields Replicate's HTTP API reference documents beyond that type
    (``data_removed``, ``source``, ``deployment``: https://replicate.com/docs/reference/http);
    error bodies parse into ``ReplicateError`` with RFC 7807 ``title`` / ``detail``.

Not comparable offline: ``Cancel-After`` (the SDK never sends it; Replicate's HTTP
reference is the only source) and which inputs each model accepts (model schemas live
on replicate.com, not in the SDK).
"""

from __future__ import annotations

import time
from typing import Any, Literal, Optional

import pytest
import requests
from pydantic import ConfigDict, create_model

from providers import RetryPolicy, generate_image, generate_video
from schemas import ImageGenerationConfig, VideoGenerationConfig
from tests.conformance.sdk_oracle import wire
from tests.emulator import Fault

replicate = pytest.importorskip("replicate")
from replicate.exceptions import ReplicateError  # noqa: E402
from replicate.prediction import Prediction  # noqa: E402

P = "replicate"
FAST = RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.02)
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
HEADERS = ("Authorization", "Prefer")
# Beyond the SDK's Prediction fields, from https://replicate.com/docs/reference/http
# (prediction object): documented there, absent from replicate 1.0.7's model.
DOCUMENTED_EXTRAS: dict[str, Any] = {
    "data_removed": (Optional[bool], None),
    "source": (Optional[Literal["api", "web"]], None),
    "deployment": (Optional[str], None),
}
StrictPrediction = create_model(  # type: ignore[call-overload]
    "StrictPrediction",
    __config__=ConfigDict(strict=True, extra="forbid"),
    **{name: (field.annotation, ... if field.required else None) for name, field in Prediction.__fields__.items()},
    **DOCUMENTED_EXTRAS,
)


@pytest.fixture
def sdk(emulator):
    emulator.job_duration = 0.05
    return replicate.Client(api_token=emulator.key_for(P), base_url=emulator.url_for(P))


def our_base(emulator) -> str:
    return emulator.url_for(P) + "/v1"


def image_config(emulator, model: str, **provider_config) -> ImageGenerationConfig:
    return ImageGenerationConfig(provider=P, model=model, base_url=our_base(emulator), api_key=emulator.key_for(P),
                                 poll_interval=0, max_poll_attempts=5000, timeout=120, provider_config=provider_config)


def video_config(emulator, model: str, **provider_config) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider=P, model=model, base_url=our_base(emulator), api_key=emulator.key_for(P),
                                 poll_interval=0, max_poll_attempts=5000, timeout=120, provider_config=provider_config)


def strict_prediction(data: dict[str, Any]) -> Any:
    """``data`` as the SDK's Prediction, strictly; also parsed by the SDK's own model."""
    Prediction.parse_obj(data)
    return StrictPrediction.model_validate(data)


def raw(emulator, method: str, path: str) -> dict[str, Any]:
    reply = requests.request(method, emulator.url_for(P) + path, timeout=5,
                             headers={"Authorization": f"Bearer {emulator.key_for(P)}"})
    reply.raise_for_status()
    return reply.json()


def pair(emulator, route: str) -> tuple:
    calls = emulator.requests_for(route)
    assert len(calls) == 2, f"expected our call and the SDK's on {route}, got {len(calls)}"
    return calls[0], calls[1]


# -- (a) requests -----------------------------------------------------------------------


def test_official_model_create_matches_the_sdk(emulator, sdk):
    generate_image(image_config(emulator, "black-forest-labs/flux-schnell", wait=30), prompt="a fox",
                   aspect_ratio="16:9", n=2, seed=4, retry=FAST)
    prediction = sdk.models.predictions.create(
        model="black-forest-labs/flux-schnell", input={"prompt": "a fox", "seed": 4, "aspect_ratio": "16:9",
                                                       "num_outputs": 2}, wait=30,
    )
    ours, theirs = pair(emulator, "replicate.create_model")
    assert theirs.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert wire(ours, *HEADERS) == wire(theirs, *HEADERS) and theirs.headers["Prefer"] == "wait=30"
    assert ours.json == theirs.json
    assert prediction.status == "succeeded" and len(prediction.output) == 2


def test_version_create_matches_the_sdk(emulator, sdk):
    generate_video(video_config(emulator, f"acme/clip-maker:{VERSION}"), prompt="waves", duration_seconds=5,
                   retry=FAST)
    sdk.predictions.create(version=VERSION, input={"prompt": "waves", "duration": 5})
    ours, theirs = pair(emulator, "replicate.create_version")
    assert theirs.path == "/v1/predictions" and "Prefer" not in theirs.headers  # video: no wait by default
    assert wire(ours, *HEADERS) == wire(theirs, *HEADERS)
    assert ours.json == theirs.json == {"version": VERSION, "input": {"prompt": "waves", "duration": 5}}


def test_deployment_create_matches_the_sdk(emulator, sdk):
    generate_image(image_config(emulator, "black-forest-labs/flux-dev", deployment="acme/flux-prod", wait=10),
                   prompt="a fox", retry=FAST)
    sdk.deployments.predictions.create(deployment="acme/flux-prod", input={"prompt": "a fox"}, wait=10)
    ours, theirs = pair(emulator, "replicate.create_deployment")
    assert theirs.path == "/v1/deployments/acme/flux-prod/predictions"
    assert wire(ours, *HEADERS) == wire(theirs, *HEADERS)
    assert ours.json == theirs.json


def test_get_and_cancel_match_the_sdk(emulator, sdk):
    response = generate_video(video_config(emulator, "google/veo-3.1"), prompt="x", retry=FAST)
    prediction_id = response.raw_response["id"]
    sdk.predictions.get(prediction_id)
    ours, theirs = emulator.requests_for("replicate.get")[-2:]
    assert wire(ours, "Authorization") == wire(theirs, "Authorization")
    assert theirs.path == f"/v1/predictions/{prediction_id}"

    emulator.job_duration = 1000
    running = sdk.predictions.create(version=VERSION, input={"prompt": "y"})
    sdk.predictions.cancel(running.id)
    cancel = emulator.last("replicate.cancel")
    assert (cancel.method, cancel.path, cancel.status) == ("POST", f"/v1/predictions/{running.id}/cancel", 200)
    assert sdk.predictions.get(running.id).status == "canceled"


# -- (b) answers ----------------------------------------------------------------------------


def test_every_prediction_status_validates_against_the_sdk_type(emulator, sdk):
    emulator.job_duration = 1000
    created = requests.post(emulator.url_for(P) + "/v1/models/black-forest-labs/flux-schnell/predictions",
                            json={"input": {"prompt": "x"}}, timeout=5,
                            headers={"Authorization": f"Bearer {emulator.key_for(P)}"})
    assert created.status_code == 201
    first = strict_prediction(created.json())
    job = emulator.jobs.get(first.id)
    seen = {first.status}
    for fraction in (0.5, 1.5):
        job.started = time.monotonic() - job.duration * fraction
        seen.add(strict_prediction(raw(emulator, "GET", f"/v1/predictions/{first.id}")).status)
    failed = sdk.predictions.create(version=VERSION, input={"prompt": "y"}).id
    emulator.jobs.get(failed).fail("CUDA out of memory", immediately=True)
    failed_view = strict_prediction(raw(emulator, "GET", f"/v1/predictions/{failed}"))
    running = sdk.predictions.create(deployment="acme/flux-prod", input={"prompt": "z"}).id
    cancelled = strict_prediction(raw(emulator, "POST", f"/v1/predictions/{running}/cancel"))

    assert seen == {"starting", "processing", "succeeded"}
    assert failed_view.status == "failed" and failed_view.error == "CUDA out of memory"
    assert cancelled.status == "canceled" and cancelled.deployment == "acme/flux-prod"


def test_errors_parse_into_the_sdk_error(emulator, sdk):
    with pytest.raises(ReplicateError) as missing:
        sdk.predictions.create(version=VERSION, input={})
    assert (missing.value.status, missing.value.title) == (422, "Input validation failed")
    emulator.inject("replicate.create_model", Fault.http(429, {"detail": "Request was throttled."}), times=None)
    with pytest.raises(ReplicateError) as throttled:
        replicate.Client(api_token=emulator.key_for(P), base_url=emulator.url_for(P)).models.predictions.create(
            model="a/b", input={"prompt": "x"})
    assert throttled.value.status == 429 and throttled.value.detail == "Request was throttled."
    wrong = replicate.Client(api_token="r8_wrong", base_url=emulator.url_for(P))
    with pytest.raises(ReplicateError) as denied:
        wrong.predictions.get("abc")
    assert denied.value.status == 401


def test_a_bare_prefer_wait_from_the_sdk_holds_the_request(emulator, sdk):
    prediction = sdk.models.predictions.create(model="black-forest-labs/flux-dev", input={"prompt": "x"}, wait=True)
    assert emulator.last("replicate.create_model").headers["Prefer"] == "wait"
    assert prediction.status == "succeeded" and prediction.output
