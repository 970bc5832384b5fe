"""Tarash's contract for its public API (``generate_*`` and their async twins,
``register_provider``, custom handlers, runtime field mappings), restated in this
project's own words: ``on_progress`` may be passed positionally to every entry point,
custom handlers are handed the caller's callback, an unknown provider is an SDK error,
and a field mapping registered at runtime reaches the wire for a model no provider module knows."""

import inspect

import pytest

from providers import (
    generate_image,
    generate_image_async,
    generate_sts,
    generate_sts_async,
    generate_tts,
    generate_tts_async,
    generate_video,
    generate_video_async,
    register_provider,
)
from providers.core.field_mapping import Field, FieldMapping, register_field_mapping, unregister_field_mapping
from providers.errors import MediagenError
from providers.registry import UnknownProviderError, get_provider
from schemas import (
    AudioGenerationConfig,
    ImageGenerationConfig,
    ImageGenerationResponse,
    ImageGenerationUpdate,
    MockConfig,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)
from tests.providers.tarash.contract import NO_RETRY, STEPS, mocked

POLLING = MockConfig(polling={"status_sequence": STEPS})
SPEECH = AudioGenerationConfig(provider="mock", model="mock-speech", mock=POLLING)


def _sts_fields() -> dict:
    source = generate_tts(AudioGenerationConfig(provider="mock", model="mock-speech", mock=MockConfig()),
                          text="a short line", output_format={"format": "wav"})
    return {"audio": source.audio, "voice_id": "narrator"}


ENTRY_POINTS = {  # modality -> (sync, async, config, request fields)
    "video": (generate_video, generate_video_async, VideoGenerationConfig(provider="fal", model="m", mock=POLLING),
              lambda: {"prompt": "x", "duration_seconds": 1}),
    "image": (generate_image, generate_image_async, ImageGenerationConfig(provider="fal", model="m", mock=POLLING),
              lambda: {"prompt": "x"}),
    "tts": (generate_tts, generate_tts_async, SPEECH, lambda: {"text": "hello", "voice_id": "v"}),
    "sts": (generate_sts, generate_sts_async, SPEECH, _sts_fields),
}


# -- positional on_progress ---------------------------------------------------------------------


@pytest.mark.parametrize("modality", ENTRY_POINTS)
def test_on_progress_can_be_passed_positionally(modality):
    sync, _, config, fields = ENTRY_POINTS[modality]
    updates = []
    response = sync(config, None, updates.append, **fields())
    assert [u.status for u in updates] == STEPS
    assert updates[-1].result == response and all(u.result is None for u in updates[:-1])


@pytest.mark.parametrize("modality", ENTRY_POINTS)
async def test_on_progress_can_be_passed_positionally_to_the_async_twin(modality):
    _, twin, config, fields = ENTRY_POINTS[modality]
    plain, awaited = [], []

    async def on_progress(update):
        awaited.append(update.status)

    await twin(config, None, plain.append, **fields())
    response = await twin(config, None, on_progress, **fields())
    assert [u.status for u in plain] == STEPS and awaited == STEPS
    assert response.is_mock


def test_a_request_object_and_a_positional_callback_go_together():
    updates = []
    config = mocked(polling={"status_sequence": ["processing", "completed"], "progress_percentages": [40, 100]})
    generate_video(config, VideoGenerationRequest(prompt="x", duration_seconds=1), updates.append)
    assert [(u.status, u.progress_percent) for u in updates] == [("processing", 40), ("completed", 100)]


def test_on_progress_that_is_not_callable_is_named_in_the_error():
    with pytest.raises(TypeError, match="on_progress must be callable or None, got str"):
        generate_video(mocked(), None, "print", prompt="x")


# -- custom handlers ----------------------------------------------------------------------------------


class KeywordHandler:
    """A custom handler in the Tarash shape: ``on_progress`` is a keyword with a default."""

    def __init__(self):
        self.received = []

    def generate_video(self, config, request, on_progress=None):
        self.received.append(on_progress)
        if on_progress is not None:
            on_progress(VideoGenerationUpdate(request_id="c-1", status="processing", progress_percent=40))
        return VideoGenerationResponse(request_id="c-1", video="https://custom.example/v.mp4")

    async def generate_video_async(self, config, request, on_progress=None):
        self.received.append(on_progress)
        if on_progress is not None:
            result = on_progress(VideoGenerationUpdate(request_id="c-2", status="processing", progress_percent=60))
            if inspect.isawaitable(result):
                await result
        return VideoGenerationResponse(request_id="c-2", video="https://custom.example/v.mp4")

    def generate_image(self, config, request, on_progress=None):
        self.received.append(on_progress)
        on_progress(ImageGenerationUpdate(request_id="i-1", status="processing", progress_percent=50))
        return ImageGenerationResponse(request_id="i-1", images=["https://custom.example/i.png"])


class PositionalHandler:
    def generate_video(self, config, request, report):
        report(VideoGenerationUpdate(request_id="p-1", status="queued"))
        return VideoGenerationResponse(request_id="p-1", video="https://custom.example/p.mp4")


class NoProgressHandler:
    def generate_video(self, config, request):
        return VideoGenerationResponse(request_id="n-1", video="https://custom.example/n.mp4")


def custom(name: str, handler) -> VideoGenerationConfig:
    register_provider(name, handler)
    return VideoGenerationConfig(provider=name, model="m")


def test_custom_handler_is_given_on_progress_and_its_updates_reach_the_caller():
    handler = KeywordHandler()
    updates = []
    response = generate_video(custom("contract-keyword", handler), None, updates.append, prompt="x")
    assert response.request_id == "c-1" and callable(handler.received[0])
    assert [(u.status, u.progress_percent) for u in updates] == [("processing", 40), ("completed", 100)]
    assert updates[-1].result == response


def test_custom_image_handler_is_given_on_progress():
    handler = KeywordHandler()
    register_provider("contract-keyword-image", handler)
    updates = []
    generate_image(ImageGenerationConfig(provider="contract-keyword-image", model="m"), None, updates.append, prompt="x")
    assert [(type(u).__name__, u.status) for u in updates] == [
        ("ImageGenerationUpdate", "processing"), ("ImageGenerationUpdate", "completed")]


async def test_async_custom_handler_is_given_on_progress_for_plain_and_async_callbacks():
    handler = KeywordHandler()
    config = custom("contract-keyword-async", handler)
    plain, awaited = [], []

    async def on_progress(update):
        awaited.append(update.progress_percent)

    await generate_video_async(config, None, plain.append, prompt="x")
    await generate_video_async(config, prompt="x", on_progress=on_progress)
    assert [u.progress_percent for u in plain] == [60, 100] and awaited == [60, 100]
    assert all(callable(received) for received in handler.received)


async def test_a_sync_only_custom_handler_serves_the_async_api_with_progress():
    updates = []
    response = await generate_video_async(custom("contract-positional-async", PositionalHandler()), None,
                                          updates.append, prompt="x")
    assert response.request_id == "p-1" and [u.status for u in updates] == ["queued", "completed"]


def test_custom_handler_taking_progress_positionally_or_not_at_all_both_work():
    updates = []
    generate_video(custom("contract-positional", PositionalHandler()), None, updates.append, prompt="x")
    assert [u.status for u in updates] == ["queued", "completed"]
    response = generate_video(custom("contract-none", NoProgressHandler()), None, updates.append, prompt="x")
    assert response.request_id == "n-1"


def test_custom_handler_without_a_callback_is_given_none():
    handler = KeywordHandler()
    generate_video(custom("contract-keyword-none", handler), prompt="x")
    assert handler.received == [None]


def test_a_failing_callback_in_a_custom_handler_does_not_lose_the_result():
    def broken(update):
        raise RuntimeError("progress bar crashed")

    response = generate_video(custom("contract-keyword-broken", KeywordHandler()), None, broken, prompt="x")
    assert response.video == "https://custom.example/v.mp4"


def test_custom_handler_response_gets_execution_metadata():
    response = generate_video(custom("contract-meta", NoProgressHandler()), prompt="x")
    meta = response.execution_metadata
    assert (meta.total_attempts, meta.successful_attempt, meta.fallback_triggered) == (1, 1, False)
    assert meta.attempts[0].provider == "contract-meta" and meta.attempts[0].status == "success"


# -- the registry -------------------------------------------------------------------------------------


def test_register_provider_replaces_and_the_handler_is_kept():
    first, second = NoProgressHandler(), KeywordHandler()
    register_provider("contract-replace", first)
    assert get_provider("contract-replace") is first
    register_provider("contract-replace", second)
    generate_video(VideoGenerationConfig(provider="contract-replace", model="m"), prompt="x")
    assert get_provider("contract-replace") is second and second.received == [None]


def test_a_builtin_handler_is_made_once_and_reused():
    assert get_provider("fal") is get_provider("fal")


@pytest.mark.parametrize("modality", ENTRY_POINTS)
async def test_unknown_provider_is_a_mediagen_error_naming_the_provider(modality):
    sync, twin, config, fields = ENTRY_POINTS[modality]
    unknown = config.model_copy(update={"provider": "no-such-provider", "mock": None})
    with pytest.raises(MediagenError) as info:
        sync(unknown, **fields())
    assert isinstance(info.value, UnknownProviderError) and info.value.provider == "no-such-provider"
    assert "unknown provider 'no-such-provider'" in str(info.value)
    with pytest.raises(MediagenError, match="unknown provider 'no-such-provider'"):
        await twin(unknown, **fields())


def test_an_unknown_fallback_provider_fails_before_any_attempt():
    handler = KeywordHandler()
    config = custom("contract-before", handler).model_copy(
        update={"fallback_configs": [VideoGenerationConfig(provider="no-such-fallback", model="m")]})
    with pytest.raises(UnknownProviderError, match="no-such-fallback"):
        generate_video(config, prompt="x", retry=NO_RETRY)
    assert handler.received == []


# -- field mappings registered at runtime ----------------------------------------------------------


def test_a_field_mapping_registered_at_runtime_reaches_the_wire(emulator):
    emulator.jobs.advance_per_poll()
    config = VideoGenerationConfig(provider="fal", model="acme/new-model-v1", base_url=emulator.url_for("fal"),
                                   api_key=emulator.key_for("fal"), poll_interval=0, timeout=30)
    register_field_mapping("fal", "acme/new-model*", FieldMapping.of(
        Field("prompt", "prompt"), Field("clip_seconds", "duration_seconds", lambda s: f"{s}s"), Field("noise", "seed")))
    generate_video(config, prompt="a lighthouse", duration_seconds=8, seed=3, negative_prompt="fog", retry=NO_RETRY)
    assert emulator.last("fal.submit").json == {"prompt": "a lighthouse", "clip_seconds": "8s", "noise": 3}

    unregister_field_mapping("fal", "acme/new-model*")
    emulator.reset()
    emulator.jobs.advance_per_poll()
    generate_video(config, prompt="a lighthouse", duration_seconds=8, seed=3, retry=NO_RETRY)
    sent = emulator.last("fal.submit").json
    assert "clip_seconds" not in sent and sent["seed"] == 3  # the built-in generic family again
