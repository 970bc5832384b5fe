"""fal's queue API, over the emulator: what is sent, how jobs are followed, how errors
and moderation are classified, and which requests are skipped before any HTTP."""

import base64
import json

import pytest
import requests

from providers import (
    RetryPolicy,
    generate_image,
    generate_image_async,
    generate_tts,
    generate_tts_async,
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
from providers.builtin.fal import FalProvider, fal_image_size, video_input
from providers.media.probe import probe_media
from schemas import (
    AudioGenerationConfig,
    AudioOutputFormat,
    ImageGenerationConfig,
    ImageGenerationRequest,
    JobHandle,
    MockConfig,
    TTSRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)
PNG = {"content": base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
), "content_type": "image/png"}


@pytest.fixture
def emu(emulator):
    emulator.job_duration = 0.1
    return emulator


def _common(emu, **overrides):
    settings = {"provider": "fal", "base_url": emu.url_for("fal"), "api_key": emu.key_for("fal"),
                "poll_interval": 0, "max_poll_attempts": 5000}
    return {**settings, **overrides}


def video_config(emu, model="fal-ai/veo3", **overrides):
    return VideoGenerationConfig(model=model, **_common(emu, **overrides))


def image_config(emu, model="fal-ai/flux/dev", **overrides):
    return ImageGenerationConfig(model=model, **_common(emu, **overrides))


def audio_config(emu, model="fal-ai/minimax/speech-2.8-hd", **overrides):
    return AudioGenerationConfig(model=model, **_common(emu, **overrides))


def mock_fallback(config_type, model="mock-model"):
    return config_type(provider="mock", model=model, mock=MockConfig(job_duration_seconds=0))


def fetched(url):
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return probe_media(response.content)


def summary(error_or_response):
    return [(a.provider, a.try_number, a.status, a.error_type) for a in error_or_response.execution_metadata.attempts]


# -- successful jobs ------------------------------------------------------------------------


def test_video_job_sends_veo_fields_follows_the_queue_and_returns_playable_mp4(emu):
    emu.jobs.advance_per_poll()  # queued, processing, completed: one state per poll, whatever the load
    updates = []
    response = generate_video(
        video_config(emu), prompt="a red fox in snow", duration_seconds=4, aspect_ratio="9:16", resolution="1080p",
        generate_audio=True, negative_prompt="blur", seed=7, enhance_prompt=False, on_progress=updates.append,
    )
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/veo3" and submit.headers["Authorization"] == f"Key {emu.key_for('fal')}"
    assert submit.json == {"prompt": "a red fox in snow", "duration": "4s", "aspect_ratio": "9:16",
                           "resolution": "1080p", "generate_audio": True, "enhance_prompt": False,
                           "negative_prompt": "blur", "seed": 7}
    request_id = emu.jobs.all("fal")[0].id
    status = emu.last("fal.status")
    assert status.path == f"/fal-ai/veo3/requests/{request_id}/status" and status.query == {"logs": "true"}
    assert emu.last("fal.result").path == f"/fal-ai/veo3/requests/{request_id}"
    assert response.execution_metadata.attempts[0].request_id == request_id
    assert response.content_type == "video/mp4" and response.raw_response["video"]["url"] == response.video
    info = fetched(response.video)
    assert info.kind == "video" and (info.width, info.height) == (90, 160) and info.duration_seconds == pytest.approx(4, abs=0.2)
    statuses = [u.status for u in updates]
    assert statuses[0] == "queued" and "processing" in statuses and statuses[-1] == "completed"
    assert updates[0].update["status"] == "IN_QUEUE" and updates[-1].result == response


async def test_async_first_frame_sends_kling_text_endpoint_to_its_image_endpoint(emu):
    response = await generate_video_async(
        video_config(emu, model="fal-ai/kling-video/v2.1/master/text-to-video"),
        prompt="the fox starts to run", duration_seconds=10, negative_prompt="blur",
        image_list=[{"image": PNG, "type": "first_frame"}], retry=FAST,
    )
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/kling-video/v2.1/master/image-to-video"
    assert submit.json["image_url"] == "data:image/png;base64," + base64.b64encode(PNG["content"]).decode()
    assert submit.json["duration"] == "10" and submit.json["negative_prompt"] == "blur"
    assert emu.last("fal.status").path.startswith("/fal-ai/kling-video/requests/")  # status drops the subpath
    assert fetched(response.video).kind == "video"


def test_veo31_first_and_last_frames_use_the_first_last_frame_endpoint(emu):
    first, last = emu.host_image("first", provider="fal"), emu.host_image("last", provider="fal")
    generate_video(
        video_config(emu, model="fal-ai/veo3.1/fast"), prompt="morph", duration_seconds=8,
        image_list=[{"image": last, "type": "last_frame"}, {"image": first, "type": "first_frame"}],
    )
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/veo3.1/fast/first-last-frame-to-video"
    assert (submit.json["first_frame_url"], submit.json["last_frame_url"]) == (first, last)


def test_seedance_reference_images_go_to_reference_to_video(emu):
    refs = [emu.host_image(f"ref {i}", provider="fal") for i in range(2)]
    generate_video(
        video_config(emu, model="fal-ai/bytedance/seedance/v1/lite/text-to-video"), prompt="two friends",
        duration_seconds=5, image_list=[{"image": url, "type": "reference"} for url in refs],
    )
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/bytedance/seedance/v1/lite/reference-to-video"
    assert submit.json["reference_image_urls"] == refs and submit.json["duration"] == "5"


@pytest.mark.parametrize(
    ("model", "fields", "endpoint", "expected"),
    [
        ("fal-ai/veo3.1", {"duration_seconds": 6, "resolution": "4k"}, "fal-ai/veo3.1",
         {"duration": "6s", "resolution": "4k"}),
        ("fal-ai/kling-video/v3/pro/text-to-video", {"duration_seconds": 12, "generate_audio": False,
                                                     "aspect_ratio": "1:1"},
         "fal-ai/kling-video/v3/pro/text-to-video", {"duration": "12", "generate_audio": False, "aspect_ratio": "1:1"}),
        ("fal-ai/minimax/hailuo-02/standard/text-to-video", {"duration_seconds": 10, "resolution": "720p",
                                                            "enhance_prompt": False, "seed": 3},
         "fal-ai/minimax/hailuo-02/standard/text-to-video",
         {"duration": "10", "resolution": "768P", "prompt_optimizer": False}),
        ("fal-ai/wan/v2.2-a14b/text-to-video", {"duration_seconds": 5, "resolution": "720p"},
         "fal-ai/wan/v2.2-a14b/text-to-video", {"num_frames": 81, "resolution": "720p"}),
        ("fal-ai/wan-25-preview/text-to-video", {"duration_seconds": 10, "enhance_prompt": True},
         "fal-ai/wan-25-preview/text-to-video", {"duration": "10", "enable_prompt_expansion": True}),
        ("fal-ai/bytedance/seedance/v1/pro/text-to-video", {"duration_seconds": 7, "aspect_ratio": "21:9", "seed": 3,
                                                           "camera_fixed": True},
         "fal-ai/bytedance/seedance/v1/pro/text-to-video",
         {"duration": "7", "aspect_ratio": "21:9", "seed": 3, "camera_fixed": True}),
        ("fal-ai/sora-2/text-to-video/pro", {"duration_seconds": 8, "resolution": "1080p"},
         "fal-ai/sora-2/text-to-video/pro", {"duration": 8, "resolution": "1080p"}),
        ("fal-ai/veo3", {"duration_seconds": 8, "duration": "8s", "auto_fix": True}, "fal-ai/veo3",
         {"duration": "8s", "auto_fix": True}),
    ],
)
def test_each_family_gets_its_own_field_names_and_duration_form(model, fields, endpoint, expected):
    request = VideoGenerationRequest(prompt="x", **fields)
    got_endpoint, body = video_input(None, model, request)
    FalProvider().check_request("video", request, VideoGenerationConfig(provider="fal", model=model))
    assert got_endpoint == endpoint and {k: body.get(k) for k in expected} == expected
    assert body["prompt"] == "x" and ("seed" not in body or model.startswith("fal-ai/bytedance"))


def test_flux_images_sync_and_async_decode_with_requested_size_and_format(emu):
    response = generate_image(image_config(emu), prompt="a lighthouse", size="768x512", n=2, seed=5,
                              output_format="jpeg")
    assert emu.last("fal.submit").json == {"prompt": "a lighthouse", "image_size": {"width": 768, "height": 512},
                                           "num_images": 2, "seed": 5, "output_format": "jpeg"}
    assert response.content_type == "image/jpeg" and len(response.images) == 2
    assert [(i.kind, i.content_type, i.width, i.height) for i in map(fetched, response.images)] == [
        ("image", "image/jpeg", 768, 512)] * 2


async def test_async_image_aspect_ratio_becomes_fal_size_enum(emu):
    response = await generate_image_async(image_config(emu, model="fal-ai/flux/schnell"), prompt="x",
                                          aspect_ratio="16:9", output_format="png")
    assert emu.last("fal.submit").json["image_size"] == "landscape_16_9"
    info = fetched(response.images[0])
    assert (info.content_type, info.width, info.height) == ("image/png", 1024, 576)
    assert fal_image_size(ImageGenerationRequest(prompt="x", aspect_ratio="21:9")) == {"width": 1568, "height": 672}


def test_flux_dev_reference_image_routes_to_image_to_image(emu):
    ref = emu.host_image("source", provider="fal")
    generate_image(image_config(emu), prompt="make it night", image_list=[{"image": ref, "type": "reference"}],
                   strength=0.8)
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/flux/dev/image-to-image"
    assert submit.json["image_url"] == ref and submit.json["strength"] == 0.8


def test_minimax_speech_maps_voice_audio_and_language_and_returns_mp3(emu):
    response = generate_tts(
        audio_config(emu), text="Hello from the emulator", voice_id="Wise_Woman", language_code="en-GB",
        voice_settings={"speed": 1.2, "volume": 2, "emotion": "happy"},
        output_format=AudioOutputFormat(format="mp3", sample_rate=32000, bitrate=64),
    )
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/minimax/speech-2.8-hd"
    assert submit.json == {
        "prompt": "Hello from the emulator",
        "voice_setting": {"speed": 1.2, "vol": 2, "emotion": "happy", "voice_id": "Wise_Woman"},
        "audio_setting": {"format": "mp3", "sample_rate": 32000, "channel": 1, "bitrate": 64000},
        "language_boost": "English",
        "output_format": "url",
    }
    info = probe_media(base64.b64decode(response.audio))
    assert response.content_type == "audio/mpeg" and info.codec == "mp3" and info.sample_rate == 32000
    assert response.duration == pytest.approx(info.duration_seconds, abs=0.1)


async def test_async_older_minimax_speech_uses_text_field_and_raw_pcm(emu):
    request = TTSRequest(text="pcm please", output_format=AudioOutputFormat(format="pcm", sample_rate=24000))
    response = await generate_tts_async(audio_config(emu, model="fal-ai/minimax/speech-02-hd"), request)
    body = emu.last("fal.submit").json
    assert body["text"] == "pcm please" and "prompt" not in body
    assert body["audio_setting"] == {"format": "pcm", "sample_rate": 24000, "channel": 1}
    data = base64.b64decode(response.audio)
    assert response.content_type == "audio/pcm" and response.duration == pytest.approx(len(data) / 2 / 24000, abs=0.01)


def test_kokoro_returns_wav_and_elevenlabs_gets_its_voice_settings(emu):
    kokoro = generate_tts(audio_config(emu, model="fal-ai/kokoro/american-english"), text="hi there",
                          voice_id="af_heart", voice_settings={"speed": 1.1},
                          output_format=AudioOutputFormat(format="wav"), language_code="en-US")
    assert emu.last("fal.submit").json == {"prompt": "hi there", "voice": "af_heart", "speed": 1.1}
    assert probe_media(base64.b64decode(kokoro.audio)).content_type == "audio/wav"
    generate_tts(audio_config(emu, model="fal-ai/elevenlabs/tts/turbo-v2.5"), text="hey", voice_id="Rachel",
                 language_code="es-ES", voice_settings={"stability": 0.4, "similarity_boost": 0.8})
    assert emu.last("fal.submit").json == {"text": "hey", "voice": "Rachel", "language_code": "es",
                                           "stability": 0.4, "similarity_boost": 0.8}


def test_provider_config_sets_queue_headers_and_webhook(emu):
    config = video_config(emu, provider_config={"queue_priority": "low", "request_timeout": 300,
                                                "webhook_url": "https://example.test/hook"})
    generate_video(config, prompt="x", duration_seconds=4)
    submit = emu.last("fal.submit")
    assert submit.headers["X-Fal-Queue-Priority"] == "low" and submit.headers["X-Fal-Request-Timeout"] == "300"
    assert submit.query == {"fal_webhook": "https://example.test/hook"}


def test_a_job_handle_is_json_and_can_be_followed_from_another_provider_instance(emu):
    config = video_config(emu)
    first = FalProvider()
    handle = first.submit(first.context(config, "video"), VideoGenerationRequest(prompt="x", duration_seconds=4))
    restored = JobHandle.model_validate_json(json.dumps(handle.model_dump(mode="json")))
    assert restored.poll_url.endswith(f"/fal-ai/veo3/requests/{handle.job_id}/status")
    other = FalProvider()
    ctx = other.context(config, "video")
    while other.poll(ctx, restored).state != "completed":
        pass
    output = other.fetch(ctx, restored)
    assert output.request_id == handle.job_id and fetched(output.media[0].url).kind == "video"


def test_cancel_is_accepted_once(emu):
    emu.inject("fal.submit", Fault.slow_job(5))
    provider = FalProvider()
    ctx = provider.context(video_config(emu), "video")
    handle = provider.submit(ctx, VideoGenerationRequest(prompt="x"))
    assert provider.cancel(ctx, handle) is True and provider.cancel(ctx, handle) is False
    assert emu.last("fal.cancel").method == "PUT"


# -- errors ----------------------------------------------------------------------------------


def test_wrong_key_is_an_auth_error_that_never_shows_the_key(emu):
    with pytest.raises(ProviderAuthError) as info:
        generate_video(video_config(emu, api_key="sk-wrong-secret-123"), prompt="x", retry=FAST)
    assert "sk-wrong-secret-123" not in str(info.value) and "config.api_key" in str(info.value)
    assert emu.count("fal.submit") == 1 and info.value.status_code == 401


def test_schema_rejection_is_invalid_request_and_stops_the_chain(emu):
    config = video_config(emu, fallback_configs=[mock_fallback(VideoGenerationConfig)])
    with pytest.raises(InvalidRequestError) as info:
        generate_video(config, prompt="x", duration="7s", retry=FAST)
    assert "duration" in str(info.value) and summary(info.value) == [("fal", 1, "failed", "InvalidRequestError")]


def test_moderated_run_is_content_moderation_and_stops_the_chain(emu):
    emu.inject("fal.submit", Fault.moderation("prompt flagged"))
    config = video_config(emu, fallback_configs=[mock_fallback(VideoGenerationConfig)])
    with pytest.raises(ContentModerationError) as info:
        generate_video(config, prompt="bad things", retry=FAST)
    assert "prompt flagged" in str(info.value)
    assert summary(info.value) == [("fal", 1, "failed", "ContentModerationError")]
    assert info.value.execution_metadata.attempts[0].request_id == emu.jobs.all("fal")[0].id


def test_images_all_flagged_nsfw_are_moderated(emu):
    emu.inject("fal.submit", Fault.custom("nsfw"))
    config = image_config(emu, fallback_configs=[mock_fallback(ImageGenerationConfig)])
    with pytest.raises(ContentModerationError, match="has_nsfw_concepts"):
        generate_image(config, prompt="x", n=2, retry=FAST)
    assert emu.count("fal.submit") == 1


def test_rate_limit_honours_retry_after_then_succeeds(emu):
    emu.inject("fal.submit", Fault.http(429, {"detail": "Too many requests"}, {"Retry-After": "0"}))
    response = generate_video(video_config(emu), prompt="x", retry=FAST)
    assert emu.count("fal.submit") == 2
    assert summary(response) == [("fal", 1, "failed", "ProviderHTTPError"), ("fal", 2, "success", None)]


def test_infrastructure_5xx_is_retried(emu):
    emu.inject("fal.submit", Fault.http(503, {"detail": "no runner", "error_type": "runner_scheduling_failure"},
                                        {"X-Fal-Error-Type": "runner_scheduling_failure"}), times=2)
    response = generate_video(video_config(emu), prompt="x", retry=FAST)
    assert emu.count("fal.submit") == 3 and response.execution_metadata.attempts[0].is_retryable


@pytest.mark.parametrize(
    ("headers", "body"),
    [({"X-Fal-Retryable": "false"}, {"detail": "broken"}),
     ({"X-Fal-Request-Timeout-Type": "user"}, {"detail": "Request timed out", "error_type": "request_timeout"})],
)
def test_5xx_marked_final_by_fal_is_not_retried_and_falls_back(emu, headers, body):
    emu.inject("fal.submit", Fault.http(504, body, headers))
    # A model without a capability entry accepts a tiny request, which keeps the mock's video cheap.
    config = video_config(emu, model="fal-ai/ltx-video", fallback_configs=[mock_fallback(VideoGenerationConfig)])
    response = generate_video(config, prompt="x", duration_seconds=1, resolution="360p", retry=FAST)
    assert emu.count("fal.submit") == 1
    assert summary(response) == [("fal", 1, "failed", "ProviderHTTPError"), ("mock", 1, "success", None)]
    assert response.execution_metadata.attempts[0].is_retryable is False and response.execution_metadata.fallback_triggered


def test_failed_run_is_generation_failed(emu):
    emu.inject("fal.submit", Fault.fail_job("CUDA out of memory"))
    with pytest.raises(GenerationFailedError, match="CUDA out of memory") as info:
        generate_video(video_config(emu), prompt="x", retry=FAST)
    assert summary(info.value) == [("fal", 1, "failed", "GenerationFailedError")]
    assert emu.last("fal.result").status == 500


def test_runner_failure_during_the_run_is_retried(emu):
    emu.inject("fal.submit", Fault.custom("infra", "runner died", error_type="runner_disconnected"))
    response = generate_video(video_config(emu), prompt="x", retry=FAST)
    assert summary(response) == [("fal", 1, "failed", "GenerationFailedError"), ("fal", 2, "success", None)]


def test_persistent_5xx_falls_back_with_every_attempt_recorded(emu):
    emu.inject("fal.submit", Fault.http(500, {"detail": "Internal Server Error"}), times=None)
    config = video_config(emu, model="fal-ai/ltx-video", fallback_configs=[mock_fallback(VideoGenerationConfig)])
    response = generate_video(config, prompt="x", duration_seconds=1, resolution="360p", retry=FAST)
    assert emu.last("fal.submit").json == {"prompt": "x", "duration": "1", "resolution": "360p"}
    assert summary(response) == [("fal", 1, "failed", "ProviderHTTPError"), ("fal", 2, "failed", "ProviderHTTPError"),
                                 ("fal", 3, "failed", "ProviderHTTPError"), ("mock", 1, "success", None)]
    meta = response.execution_metadata
    assert meta.fallback_triggered and meta.successful_attempt == 4 and response.is_mock


# -- skipped before any HTTP --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modality", "model", "fields", "problem"),
    [
        ("video", "fal-ai/veo3", {"duration_seconds": 5}, "duration_seconds=5"),
        ("video", "fal-ai/veo3", {"aspect_ratio": "1:1"}, "aspect_ratio"),
        ("video", "fal-ai/sora-2/text-to-video", {"number_of_videos": 2}, "number_of_videos=2"),
        ("video", "fal-ai/kling-video/v2.1/standard/image-to-video", {}, "needs a first_frame"),
        ("video", "fal-ai/kling-video/v2.1/master/text-to-video",
         {"image_list": [{"image": "https://x.test/a.png", "type": "first_frame"},
                         {"image": "https://x.test/b.png", "type": "last_frame"}]}, "pro-tier"),
        ("video", "fal-ai/kling-video/v2.1/standard/text-to-video", {"resolution": "1080p"}, "resolution='1080p'"),
        ("video", "fal-ai/minimax/hailuo-02/standard/text-to-video", {"aspect_ratio": "9:16"}, "aspect_ratio='9:16'"),
        ("video", "fal-ai/minimax/hailuo-02/pro/text-to-video", {"duration_seconds": 10}, "duration_seconds=10"),
        ("video", "fal-ai/sora-2/text-to-video", {"resolution": "1080p"}, "resolution='1080p'"),
        ("video", "fal-ai/veo3.1/fast", {"image_list": [{"image": "https://x.test/a.png", "type": "reference"}]},
         "image roles"),
        ("video", "fal-ai/minimax/hailuo-02/standard/text-to-video", {"generate_audio": True}, "audio"),
        ("image", "fal-ai/flux-pro/v1.1-ultra", {"size": "1024x1024"}, "size='1024x1024'"),
        ("image", "fal-ai/flux/dev", {"output_format": "webp"}, "output_format='webp'"),
        ("image", "fal-ai/recraft/v3/text-to-image", {"n": 2}, "n=2"),
        ("tts", "fal-ai/minimax/speech-2.8-hd", {"output_format": AudioOutputFormat(format="wav")}, "output_format='wav'"),
        ("tts", "fal-ai/minimax/speech-2.8-hd", {"output_format": AudioOutputFormat(format="mp3", sample_rate=48000)},
         "sample_rate=48000"),
        ("tts", "fal-ai/minimax/speech-2.8-hd", {"voice_settings": {"stability": 0.5}}, "stability"),
        ("tts", "fal-ai/kokoro/american-english", {"output_format": AudioOutputFormat(format="wav"),
                                                   "language_code": "fr-FR"}, "language_code='fr-FR'"),
        ("tts", "fal-ai/elevenlabs/tts/multilingual-v2", {"output_format": AudioOutputFormat(format="pcm")},
         "output_format='pcm'"),
    ],
)
def test_requests_a_model_cannot_serve_are_skipped_without_http(emu, modality, model, fields, problem):
    run, config_type, base = {
        "video": (generate_video, VideoGenerationConfig, {"prompt": "x"}),
        "image": (generate_image, ImageGenerationConfig, {"prompt": "x"}),
        "tts": (generate_tts, AudioGenerationConfig, {"text": "x"}),
    }[modality]
    with pytest.raises(UnsupportedRequestError) as info:
        run(config_type(model=model, **_common(emu)), retry=FAST, **base, **fields)
    assert emu.count("fal.submit") == 0
    [skipped] = info.value.execution_metadata.attempts
    assert (skipped.status, skipped.error_type) == ("skipped", "UnsupportedRequestError")
    assert problem in skipped.error_message


def test_a_skipped_config_hands_over_to_the_next_one(emu):
    config = video_config(emu, fallback_configs=[mock_fallback(VideoGenerationConfig)])
    response = generate_video(config, prompt="x", duration_seconds=1, resolution="360p", retry=FAST)
    assert emu.count("fal.submit") == 0 and response.is_mock
    assert summary(response) == [("fal", 1, "skipped", "UnsupportedRequestError"), ("mock", 1, "success", None)]


def test_capability_table_describes_families():
    veo = get_provider_capabilities("fal", "fal-ai/veo3.1/fast/image-to-video")
    assert veo.durations == (4, 6, 8) and veo.generates_audio and "last_frame" in veo.image_roles
    assert get_provider_capabilities("fal", "fal-ai/minimax/speech-2.6-turbo").audio_formats == ("mp3", "pcm", "flac")
    assert get_provider_capabilities("fal", "fal-ai/minimax/hailuo-02/pro/text-to-video").modalities == {"video"}
    assert get_provider_capabilities("fal", "fal-ai/kling-video/v3/pro/text-to-video").max_duration == 15


# -- video-to-video endpoints (each its own catalog entry; fal model API pages) ----------------


def _mp4(emu):
    return {"content": emu.video_bytes("source clip", width=160, height=90, duration=2.0, fps=8),
            "content_type": "video/mp4"}


@pytest.mark.parametrize("model", ["fal-ai/veo3.1/extend-video", "fal-ai/veo3.1/fast/extend-video"])
def test_veo31_extend_video_sends_the_video_and_7s(emu, model):
    source = _mp4(emu)
    response = generate_video(
        video_config(emu, model=model), prompt="the fox keeps running", video=source, duration_seconds=7,
        resolution="1080p", aspect_ratio="16:9", generate_audio=False, seed=3, retry=FAST,
    )
    submit = emu.last("fal.submit")
    assert submit.path == f"/{model}"
    assert submit.json == {"prompt": "the fox keeps running", "duration": "7s", "aspect_ratio": "16:9",
                           "resolution": "1080p", "generate_audio": False, "seed": 3,
                           "video_url": "data:video/mp4;base64," + base64.b64encode(source["content"]).decode()}
    assert fetched(response.video).kind == "video"


def test_kling_o1_edit_sends_video_and_reference_images(emu):
    video_url = emu.host_video("source", provider="fal", width=160, height=90, duration=3.0, fps=8)
    refs = [emu.host_image(f"ref {i}", provider="fal") for i in range(2)]
    response = generate_video(
        video_config(emu, model="fal-ai/kling-video/o1/video-to-video/edit"),
        prompt="make @Image1 the sky", video=video_url, keep_audio=True, retry=FAST,
        image_list=[{"image": refs[0], "type": "style"}, {"image": refs[1], "type": "reference"}],
    )
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/kling-video/o1/video-to-video/edit"
    assert submit.json == {"prompt": "make @Image1 the sky", "image_urls": refs, "video_url": video_url,
                           "keep_audio": True}
    assert fetched(response.video).kind == "video"


def test_sora2_remix_takes_the_video_id_of_an_earlier_kept_generation(emu):
    first = generate_video(video_config(emu, model="fal-ai/sora-2/text-to-video"), prompt="a cat",
                           duration_seconds=4, delete_video=False, retry=FAST)
    video_id = first.raw_response["video_id"]
    remix = generate_video(video_config(emu, model="fal-ai/sora-2/video-to-video/remix"),
                           prompt="make the cat purple", video_id=video_id, retry=FAST)
    submit = emu.last("fal.submit")
    assert submit.path == "/fal-ai/sora-2/video-to-video/remix"
    assert submit.json == {"prompt": "make the cat purple", "video_id": video_id}
    assert fetched(remix.video).kind == "video"


def test_sora2_remix_of_a_deleted_generation_is_rejected_by_fal(emu):
    first = generate_video(video_config(emu, model="fal-ai/sora-2/text-to-video"), prompt="a cat", retry=FAST)
    with pytest.raises(InvalidRequestError, match="video_id"):
        generate_video(video_config(emu, model="fal-ai/sora-2/video-to-video/remix"), prompt="purple",
                       video_id=first.raw_response["video_id"], retry=FAST)


@pytest.mark.parametrize(
    ("model", "fields", "problem"),
    [
        ("fal-ai/veo3.1", {"video": "https://x.test/a.mp4"}, "model takes no input video"),
        ("fal-ai/sora-2/text-to-video", {"video": "https://x.test/a.mp4"}, "model takes no input video"),
        ("fal-ai/veo3.1/extend-video", {}, "set `video`"),
        ("fal-ai/veo3.1/extend-video", {"video": "https://x.test/a.mp4", "duration_seconds": 8}, "duration_seconds=8"),
        ("fal-ai/kling-video/o1/video-to-video/edit", {}, "set `video`"),
        ("fal-ai/kling-video/o1/video-to-video/edit", {"video": "https://x.test/a.mp4", "duration_seconds": 5},
         "takes no duration_seconds"),
        ("fal-ai/sora-2/video-to-video/remix", {}, "needs extra_params video_id"),
        ("fal-ai/sora-2/video-to-video/remix", {"video": "https://x.test/a.mp4", "video_id": "video_1"},
         "model takes no input video"),
    ],
)
def test_video_to_video_requests_an_endpoint_cannot_serve_are_skipped(emu, model, fields, problem):
    with pytest.raises(UnsupportedRequestError) as info:
        generate_video(video_config(emu, model=model), prompt="x", retry=FAST, **fields)
    assert emu.count("fal.submit") == 0 and problem in info.value.execution_metadata.attempts[0].error_message


def test_video_to_video_endpoints_are_catalog_entries_with_video_input():
    for model in ("fal-ai/veo3.1/extend-video", "fal-ai/veo3.1/fast/extend-video",
                  "fal-ai/kling-video/o1/video-to-video/edit"):
        assert get_provider_capabilities("fal", model).accepts_video_input, model
    assert not get_provider_capabilities("fal", "fal-ai/veo3.1/fast").accepts_video_input
    assert "fal-ai/sora-2/video-to-video/remix*" in FalProvider.models


def test_sora2_takes_the_documented_16_and_20_second_durations(emu):
    """fal's Sora 2 DurationEnum is 4|8|12|16|20 (fal's sora-2-text-to-video API reference)."""
    generate_video(video_config(emu, model="fal-ai/sora-2/text-to-video"), prompt="x", duration_seconds=20, retry=FAST)
    assert emu.last("fal.submit").json["duration"] == 20
    assert get_provider_capabilities("fal", "fal-ai/sora-2/text-to-video").durations == (4, 8, 12, 16, 20)
