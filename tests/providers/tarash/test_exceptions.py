"""Tarash's contract for its exceptions, restated in this project's own words: one base
class (``MediagenError``) under every error the SDK raises, including an unknown provider,
a config the provider cannot use and a custom handler's unexpected exception; each error
carries its provider and model and knows whether retrying can help."""

import inspect
import pickle

import pytest

import providers.errors as errors_module
from providers import generate_image, generate_video, generate_video_async, register_provider
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    GenerationTimeoutError,
    InvalidRequestError,
    MediagenError,
    ProviderAuthError,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderHTTPError,
)
from providers.registry import UnknownProviderError
from schemas import ImageGenerationConfig, VideoGenerationConfig
from tests.providers.tarash.contract import NO_RETRY


def test_every_sdk_error_derives_from_mediagen_error():
    classes = [obj for obj in vars(errors_module).values() if inspect.isclass(obj) and issubclass(obj, Exception)]
    assert len(classes) > 8
    assert all(issubclass(cls, MediagenError) for cls in classes), [c for c in classes if not issubclass(c, MediagenError)]
    assert issubclass(UnknownProviderError, MediagenError) and issubclass(UnknownProviderError, ValueError)


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False), (403, False), (404, False),
                                                   (429, True), (500, True), (502, True), (503, True), (504, True)])
def test_http_errors_are_retryable_exactly_when_transient(status, retryable):
    assert ProviderHTTPError("x", status_code=status, provider="fal").retryable is retryable


def test_error_kinds_know_whether_a_retry_can_help():
    assert ProviderConnectionError("x").retryable and GenerationTimeoutError("x").retryable
    assert not InvalidRequestError("x").retryable and not ContentModerationError("x").retryable
    assert not ProviderAuthError("bad key").retryable and ProviderAuthError("bad key").status_code == 401


def test_errors_carry_their_context_and_survive_pickling():
    error = ProviderHTTPError("rate limited", status_code=429, provider="fal", model="veo3", request_id="r-1",
                              raw_response={"detail": "slow down"}, retry_after=7)
    assert (error.provider, error.model, error.request_id, error.raw_response) == ("fal", "veo3", "r-1",
                                                                                  {"detail": "slow down"})
    assert error.message == "rate limited" and str(error) == "[fal/veo3] rate limited"
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.status_code, copy.retry_after, copy.retryable) == (ProviderHTTPError, 429, 7, True)


@pytest.mark.parametrize("api", ["sync", "async"])
async def test_an_unknown_provider_is_caught_as_a_mediagen_error(api):
    config = VideoGenerationConfig(provider="no-such-provider", model="m")
    with pytest.raises(MediagenError, match="unknown provider 'no-such-provider'"):
        if api == "sync":
            generate_video(config, prompt="x")
        else:
            await generate_video_async(config, prompt="x")


def test_a_missing_api_key_is_a_mediagen_error_naming_where_the_key_comes_from(monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    with pytest.raises(MediagenError, match="no API key for fal: set config.api_key or the FAL_KEY") as info:
        generate_video(VideoGenerationConfig(provider="fal", model="fal-ai/veo3"), prompt="x", retry=NO_RETRY)
    assert isinstance(info.value, ProviderAuthError) and info.value.execution_metadata.total_attempts == 1


async def test_a_config_the_provider_cannot_use_is_a_mediagen_error(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    config = VideoGenerationConfig(provider="azure-openai", model="sora-2", api_key="k")
    with pytest.raises(ProviderConfigError, match="no Azure OpenAI endpoint") as info:
        await generate_video_async(config, prompt="x", retry=NO_RETRY)
    assert isinstance(info.value, MediagenError) and info.value.provider == "azure-openai"


def test_a_custom_handler_s_unexpected_exception_becomes_a_mediagen_error():
    class Crashing:
        def generate_image(self, config, request):
            raise KeyError("width")

    register_provider("contract-crashing", Crashing())
    with pytest.raises(MediagenError) as info:
        generate_image(ImageGenerationConfig(provider="contract-crashing", model="m"), prompt="x", retry=NO_RETRY)
    error = info.value
    assert isinstance(error, GenerationFailedError) and "unexpected KeyError" in str(error)
    assert (error.provider, error.model, error.retryable) == ("contract-crashing", "m", False)
    assert error.execution_metadata.attempts[0].error_type == "GenerationFailedError"


def test_a_custom_handler_s_own_sdk_error_passes_through_unchanged():
    original = ContentModerationError("refused", provider="contract-own", model="m")

    class Refusing:
        def generate_video(self, config, request):
            raise original

    register_provider("contract-own", Refusing())
    with pytest.raises(ContentModerationError) as info:
        generate_video(VideoGenerationConfig(provider="contract-own", model="m"), prompt="x", retry=NO_RETRY)
    assert info.value is original
