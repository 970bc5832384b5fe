"""fal conformance: the official ``fal-client`` SDK is the oracle for the queue protocol.

The SDK's sync client is pointed at the emulator (its queue base is the module constant
``QUEUE_URL_FORMAT``, built from ``FAL_QUEUE_RUN_HOST`` as ``https://<host>/``; the
emulator is plain http under a path prefix, so the constant is patched) and reads the
key from ``FAL_KEY``. Checked:

(a) the emulator accepts what the SDK sends (submit / status / result / cancel paths and
    methods, ``Authorization: Key <key>``, ``X-Fal-Queue-Priority`` /
    ``X-Fal-Request-Timeout``), and our client sends the same paths, methods and headers;
(b) every answer parses with the SDK's own parsing (``_parse_status`` needs
    ``queue_position`` / ``logs``; errors become ``FalClientHTTPError`` with fal's
    ``detail`` and ``error_type``).

Model inputs have no SDK types (fal-client passes JSON through); for the video-to-video
endpoints the documented input fields are copied below from fal's model API pages.
"""

from __future__ import annotations

import pytest

from providers import generate_video
from providers.builtin.fal import FalProvider
from schemas import VideoGenerationConfig, VideoGenerationRequest
from tests.conformance.sdk_oracle import wire
from tests.emulator import Fault

fal_client = pytest.importorskip("fal_client")
from fal_client import client as fal_sdk  # noqa: E402
from fal_client._headers import QUEUE_PRIORITY_HEADER, REQUEST_TIMEOUT_HEADER  # noqa: E402

# Input fields per endpoint, from fal's API reference pages:
DOCUMENTED_INPUTS = {
    # https://fal.ai/docs/model-api-reference/video-generation-api/veo3.1-extend-video
    "fal-ai/veo3.1/extend-video": {"prompt", "aspect_ratio", "duration", "negative_prompt", "resolution",
                                   "generate_audio", "seed", "auto_fix", "safety_tolerance", "video_url"},
    # https://fal.ai/models/fal-ai/sora-2/video-to-video/remix/llms.txt
    "fal-ai/sora-2/video-to-video/remix": {"video_id", "prompt", "delete_video"},
    # https://fal.ai/docs/model-api-reference/video-generation-api/kling-video-o1-video-to-video
    "fal-ai/kling-video/o1/video-to-video/edit": {"prompt", "video_url", "keep_audio", "image_urls", "elements"},
}
# The "Input Example" of each page above, verbatim apart from the long prompts.
DOCUMENTED_EXAMPLES = {
    "fal-ai/veo3.1/extend-video": {
        "prompt": "Continue the scene naturally, maintaining the same style and motion.",
        "video_url": "https://v3b.fal.media/files/b/0a8670fe/pY8UGl4_C452wOm9XUBYO_9ae04df8771c4f3f979fa5cabeca6ada.mp4",
    },
    "fal-ai/kling-video/o1/video-to-video/edit": {
        "prompt": "Replace the character in the video with @Element1, maintaining the same movements and camera angles.",
        "video_url": "https://v3b.fal.media/files/b/rabbit/ku8_Wdpf-oTbGRq4lB5DU_output.mp4",
    },
}


@pytest.fixture
def emu(emulator):
    emulator.job_duration = 0.05
    return emulator


@pytest.fixture
def sdk(emu, monkeypatch):
    monkeypatch.setattr(fal_sdk, "QUEUE_URL_FORMAT", emu.url_for("fal") + "/")
    monkeypatch.setenv("FAL_KEY", emu.key_for("fal"))
    monkeypatch.delenv("FAL_KEY_ID", raising=False)
    monkeypatch.delenv("FAL_KEY_SECRET", raising=False)
    client = fal_client.SyncClient()
    yield client
    client._client.close()


def _config(emu, model: str, **provider_config) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider="fal", model=model, base_url=emu.url_for("fal"), api_key=emu.key_for("fal"),
                                 poll_interval=0, max_poll_attempts=5000, provider_config=provider_config)


def _shape(recorded) -> tuple[str, str, str]:
    """(route, method, path with the request id masked)."""
    path = recorded.path
    if "/requests/" in path:
        head, _, tail = path.partition("/requests/")
        path = head + "/requests/{id}" + tail[tail.find("/"):] if "/" in tail else head + "/requests/{id}"
    return recorded.route_name, recorded.method, path


def _follow(handle):
    statuses = list(handle.iter_events(with_logs=True, interval=0.01))
    return statuses, handle.get(interval=0.01)


def test_sdk_queue_round_trip_is_accepted_and_every_answer_parses(emu, sdk):
    handle = sdk.submit("fal-ai/veo3.1/fast/image-to-video",
                        {"prompt": "a fox", "image_url": emu.host_image("f", provider="fal"), "duration": "8s"},
                        priority="low", start_timeout=30)
    statuses, result = _follow(handle)
    assert isinstance(statuses[-1], fal_client.Completed) and statuses[-1].error is None
    assert all(isinstance(s, (fal_client.Queued, fal_client.InProgress, fal_client.Completed)) for s in statuses)
    assert statuses[-1].logs, "logs=true (what the SDK sends) must return logs"
    assert result["video"]["url"].startswith(emu.url_for("fal").rsplit("/", 1)[0])
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/veo3.1/fast/image-to-video"
    assert submit.headers["Authorization"] == f"Key {emu.key_for('fal')}"
    assert submit.headers[QUEUE_PRIORITY_HEADER] == "low" and submit.headers[REQUEST_TIMEOUT_HEADER] == "30.0"
    assert {_shape(r) for r in emu.requests_for(provider="fal") if r.route_name != "fal.submit"} == {
        ("fal.status", "GET", "/fal-ai/veo3.1/requests/{id}/status"),
        ("fal.result", "GET", "/fal-ai/veo3.1/requests/{id}"),
    }


def test_our_client_sends_what_the_sdk_sends(emu, sdk):
    model = "fal-ai/kling-video/v2.1/pro/text-to-video"
    _follow(sdk.submit(model, {"prompt": "x", "duration": "5"}, priority="low", start_timeout=30))
    sdk_requests = emu.requests_for(provider="fal")
    emu.reset()
    emu.job_duration = 0.05
    generate_video(_config(emu, model, queue_priority="low", request_timeout=30), prompt="x", duration_seconds=5)
    ours = emu.requests_for(provider="fal")

    def shapes(recorded):
        return {_shape(r) for r in recorded if r.route_name != "media"}

    assert shapes(ours) == shapes(sdk_requests)
    for name in ("fal.submit", "fal.status", "fal.result"):
        theirs, mine = ([r for r in rs if r.route_name == name][0] for rs in (sdk_requests, ours))
        assert mine.headers["Authorization"] == theirs.headers["Authorization"]
        assert mine.query == theirs.query, name  # status: logs=true, as iter_events(with_logs=True) sends
    sdk_submit, our_submit = (next(r for r in rs if r.route_name == "fal.submit") for rs in (sdk_requests, ours))
    assert wire(our_submit, "Authorization", QUEUE_PRIORITY_HEADER) == wire(sdk_submit, "Authorization",
                                                                             QUEUE_PRIORITY_HEADER)
    assert float(our_submit.headers[REQUEST_TIMEOUT_HEADER]) == float(sdk_submit.headers[REQUEST_TIMEOUT_HEADER])
    assert our_submit.json == sdk_submit.json


def test_cancel_matches_the_sdk(emu, sdk):
    emu.job_duration = 30
    handle = sdk.submit("fal-ai/veo3", {"prompt": "x"})
    handle.cancel()
    theirs = emu.last("fal.cancel")
    with pytest.raises(fal_client.FalClientHTTPError) as info:
        handle.cancel()
    assert info.value.status_code == 400

    provider = FalProvider()
    ctx = provider.context(_config(emu, "fal-ai/veo3"), "video")
    job = provider.submit(ctx, VideoGenerationRequest(prompt="x"))
    assert provider.cancel(ctx, job) is True and provider.cancel(ctx, job) is False
    mine = emu.last("fal.cancel")
    assert _shape(mine) == _shape(theirs) == ("fal.cancel", "PUT", "/fal-ai/veo3/requests/{id}/cancel")
    assert mine.headers["Authorization"] == theirs.headers["Authorization"]


def test_errors_parse_as_the_sdk_expects(emu, sdk):
    with pytest.raises(fal_client.FalClientHTTPError) as info:
        sdk.submit("fal-ai/veo3", {"prompt": "x", "duration": "5s"})
    assert info.value.status_code == 422 and info.value.message[0]["loc"] == ["body", "duration"]
    emu.inject("fal.submit", Fault.custom("infra", "runner down", error_type="runner_server_error"))
    handle = sdk.submit("fal-ai/veo3", {"prompt": "x"})
    statuses = list(handle.iter_events(interval=0.01))
    assert statuses[-1].error == "runner down" and statuses[-1].error_type == "runner_server_error"
    with pytest.raises(fal_client.FalClientHTTPError) as info:
        handle.get(interval=0.01)
    assert info.value.status_code == 503 and info.value.error_type == "runner_server_error"
    sdk_wrong_key = fal_client.SyncClient(key="wrong")
    with pytest.raises(fal_client.FalClientHTTPError) as info:
        sdk_wrong_key.submit("fal-ai/veo3", {"prompt": "x"})
    assert info.value.status_code == 401
    sdk_wrong_key._client.close()


@pytest.mark.parametrize("endpoint", sorted(DOCUMENTED_EXAMPLES))
def test_documented_video_to_video_examples_are_accepted(emu, sdk, endpoint):
    result = sdk.subscribe(endpoint, DOCUMENTED_EXAMPLES[endpoint], interval=0.01)
    assert result["video"]["url"]


def test_sora_remix_round_trip_through_the_sdk(emu, sdk):
    first = sdk.subscribe("fal-ai/sora-2/text-to-video", {"prompt": "a cat", "delete_video": False}, interval=0.01)
    remix = sdk.subscribe("fal-ai/sora-2/video-to-video/remix",
                          {"video_id": first["video_id"], "prompt": "Change the cat's fur color to purple."},
                          interval=0.01)
    assert remix["video"]["url"]
    with pytest.raises(fal_client.FalClientHTTPError) as info:
        sdk.submit("fal-ai/sora-2/video-to-video/remix", {"video_id": "video_123", "prompt": "x"})
    assert info.value.status_code == 422


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("fal-ai/veo3.1/extend-video", {"duration_seconds": 7, "resolution": "720p", "aspect_ratio": "16:9",
                                        "generate_audio": True, "negative_prompt": "blur", "seed": 1}),
        ("fal-ai/kling-video/o1/video-to-video/edit", {"image_list": [{"image": "https://x.test/a.png",
                                                                       "type": "reference"}]}),
    ],
)
def test_our_video_to_video_bodies_use_only_documented_fields(emu, model, fields):
    video = emu.host_video("src", provider="fal", width=160, height=90, duration=3.0, fps=8)
    generate_video(_config(emu, model), prompt="x", video=video, **fields)
    sent = emu.last("fal.submit").json
    assert set(sent) <= DOCUMENTED_INPUTS[model] and "video_url" in sent


def test_our_remix_body_uses_only_documented_fields(emu):
    first = generate_video(_config(emu, "fal-ai/sora-2/text-to-video"), prompt="x", delete_video=False)
    generate_video(_config(emu, "fal-ai/sora-2/video-to-video/remix"), prompt="y",
                   video_id=first.raw_response["video_id"])
    assert set(emu.last("fal.submit").json) == {"prompt", "video_id"}
