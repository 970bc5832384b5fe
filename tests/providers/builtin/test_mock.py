"""The offline mock: real media, deterministic, honouring the request, injectable errors,
and a job protocol that works across processes."""

import base64
import io
import json
import subprocess
import sys

import av
import pytest
from PIL import Image

from providers import RetryPolicy, generate_image, generate_sts, generate_tts, generate_video
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    GenerationTimeoutError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderHTTPError,
)
from providers.registry import get_provider
from schemas import AudioGenerationConfig, ImageGenerationConfig, JobHandle, MockConfig, VideoGenerationConfig

VIDEO = VideoGenerationConfig(provider="mock", model="mock-video", mock=MockConfig(enabled=True))
IMAGE = ImageGenerationConfig(provider="mock", model="mock-image", mock=MockConfig())
AUDIO = AudioGenerationConfig(provider="mock", model="mock-speech", mock=MockConfig())
NO_RETRY = RetryPolicy(max_retries=0)


def decode_video(data: bytes):
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, stream.width, stream.height, frames / float(stream.average_rate)


@pytest.mark.parametrize(
    "resolution, aspect, size",
    [("720p", "16:9", (1280, 720)), ("480p", "9:16", (480, 854)), ("360p", "1:1", (360, 360))],
)
def test_video_is_h264_at_requested_size_and_duration(resolution, aspect, size):
    response = generate_video(VIDEO, prompt="a red fox", resolution=resolution, aspect_ratio=aspect, duration_seconds=2)
    codec, width, height, seconds = decode_video(response.video["content"])
    assert codec == "h264" and (width, height) == size and abs(seconds - 2) < 0.05
    assert response.content_type == "video/mp4" and response.is_mock and response.duration == 2


def test_number_of_videos_gives_distinct_variants():
    response = generate_video(VIDEO, prompt="a fox", duration_seconds=1, resolution="360p", number_of_videos=2)
    assert len(response.videos) == 2 and response.videos[0]["content"] != response.videos[1]["content"]


def test_same_request_same_bytes_and_different_prompt_different_bytes():
    first = generate_video(VIDEO, prompt="a fox", duration_seconds=1, resolution="360p")
    again = generate_video(VIDEO, prompt="a fox", duration_seconds=1, resolution="360p")
    other = generate_video(VIDEO, prompt="a wolf", duration_seconds=1, resolution="360p")
    assert first.video["content"] == again.video["content"] != other.video["content"]


def test_images_honour_size_aspect_ratio_n_and_format():
    by_size = generate_image(IMAGE, prompt="a cat", size="640x480", n=2)
    assert len(by_size.images) == 2
    for encoded in by_size.images:
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert image.format == "PNG" and image.size == (640, 480)
    portrait = generate_image(IMAGE, prompt="a cat", aspect_ratio="9:16", output_format="jpeg")
    image = Image.open(io.BytesIO(base64.b64decode(portrait.images[0])))
    assert image.format == "JPEG" and image.size[0] < image.size[1] and portrait.content_type == "image/jpeg"


@pytest.mark.parametrize("fmt, codec, rate", [("mp3", "mp3", 44100), ("wav", "pcm_s16le", 24000), ("flac", "flac", 22050), ("opus", "opus", 48000)])
def test_speech_in_each_format_and_rate(fmt, codec, rate):
    response = generate_tts(AUDIO, text="Hello there, this is a test of speech.", output_format={"format": fmt, "sample_rate": rate})
    data = base64.b64decode(response.audio)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith(codec) and stream.codec_context.sample_rate == rate
    assert response.duration and response.duration > 1


def test_speech_grows_with_text():
    short = generate_tts(AUDIO, text="Hi.")
    long = generate_tts(AUDIO, text="Hi. " * 40)
    assert long.duration > short.duration * 3


def test_speech_to_speech_keeps_input_length():
    source = generate_tts(AUDIO, text="A sentence that takes a little while to say.", output_format={"format": "wav"})
    converted = generate_sts(AUDIO, audio=source.audio, voice_id="narrator")
    assert abs(converted.duration - source.duration) < 0.1 and converted.content_type == "audio/mpeg"


@pytest.mark.parametrize(
    "kind, error_type",
    [
        ("rate_limit", ProviderHTTPError),
        ("server_error", ProviderHTTPError),
        ("timeout", GenerationTimeoutError),
        ("connection", ProviderConnectionError),
        ("moderation", ContentModerationError),
        ("invalid_request", InvalidRequestError),
        ("generation_failed", GenerationFailedError),
    ],
)
def test_each_injected_error_kind_raises_its_exception(kind, error_type):
    config = VIDEO.model_copy(update={"mock": MockConfig(responses=[{"error": kind, "error_message": f"boom {kind}"}])})
    with pytest.raises(error_type, match=f"boom {kind}"):
        generate_video(config, prompt="x", duration_seconds=1, resolution="360p", retry=NO_RETRY)


def test_weighted_outcomes_are_reproducible_per_request():
    config = VIDEO.model_copy(update={"mock": MockConfig(responses=[{"weight": 1}, {"weight": 1, "error": "generation_failed"}])})

    def outcome(prompt):
        try:
            generate_video(config, prompt=prompt, duration_seconds=1, resolution="360p", retry=NO_RETRY)
            return "ok"
        except GenerationFailedError:
            return "failed"

    first = [outcome(f"prompt {i}") for i in range(12)]
    assert first == [outcome(f"prompt {i}") for i in range(12)]
    assert {"ok", "failed"} == set(first)


def test_mock_makes_no_network_or_disk_access():
    code = """
import socket, builtins, sys
def refuse(*a, **k): raise AssertionError('network touched')
socket.socket.connect = refuse
real_open = builtins.open
def no_write(file, mode='r', *a, **k):
    if any(m in mode for m in 'wax+'): raise AssertionError('disk written: %s' % file)
    return real_open(file, mode, *a, **k)
builtins.open = no_write
from providers import generate_video, generate_tts
from schemas import VideoGenerationConfig, AudioGenerationConfig, MockConfig
generate_video(VideoGenerationConfig(provider='fal', model='m', mock=MockConfig()), prompt='x', duration_seconds=1, resolution='360p')
generate_tts(AudioGenerationConfig(provider='x', model='m', mock=MockConfig()), text='hello')
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def test_job_submitted_in_one_process_is_fetched_in_another():
    provider = get_provider("mock")
    config = VIDEO.model_copy(update={"mock": MockConfig(job_duration_seconds=0.2)})
    from schemas import VideoGenerationRequest

    ctx = provider.context(config, "video")
    job = provider.submit(ctx, VideoGenerationRequest(prompt="cross process", duration_seconds=1, resolution="360p"))
    code = f"""
import sys, time
from providers.registry import get_provider
from schemas import JobHandle, VideoGenerationConfig, MockConfig
job = JobHandle.model_validate_json(sys.stdin.read())
provider = get_provider('mock')
ctx = provider.context(VideoGenerationConfig(provider='mock', model='mock-video', mock=MockConfig()), 'video')
while (status := provider.poll(ctx, job)).state != 'completed':
    job = job.polled()  # as the driver does: each poll advances the simulated job one state
    time.sleep(status.poll_after)
output = provider.fetch(ctx, job)
sys.stdout.write(str(len(output.media[0].data)))
"""
    result = subprocess.run([sys.executable, "-c", code], input=job.model_dump_json(), capture_output=True, text=True, timeout=120)
    local = provider.fetch(ctx, JobHandle.model_validate_json(job.model_dump_json()))
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(local.media[0].data) > 1000
    assert "api_key" not in json.dumps(job.data)


def test_plain_images_without_text_are_valid_cached_and_sized_as_asked():
    import base64

    from providers import generate_image
    from providers.media.probe import probe_media
    from providers.media.synthesis import make_plain_image
    from schemas import ImageGenerationConfig, MockConfig

    config = ImageGenerationConfig(provider="mock", model="m", mock=MockConfig(render_text=False))
    response = generate_image(config, prompt="no text drawn", size="96x48", extra_params={"output_format": "jpeg"})
    data = base64.b64decode(response.images[0].split(",", 1)[-1])
    info = probe_media(data)
    assert (info.content_type, info.width, info.height) == ("image/jpeg", 96, 48)
    assert make_plain_image(96, 48, image_format="jpeg") is make_plain_image(96, 48, image_format="jpeg")
