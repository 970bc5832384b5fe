"""Specification tests for providers.media (formats, synthesis, probe): the real-media maker and the prober.

Generated media is decoded independently with PyAV / Pillow wherever the claim
is about the media itself, so a bug in probe_media cannot hide a bug in a maker.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from providers.media.formats import CONTENT_TYPES, EXTENSIONS, parse_size, resolution_for
from providers.media.probe import MediaInfo, MediaProbeError, probe_media
from providers.media.synthesis import AudioClip, make_audio, make_image, make_video

REPO_ROOT = Path(__file__).resolve().parents[3]
PROMPT = "A red fox jumping over a frozen river at dawn, cinematic, 35mm film"


def decode_video_frames(data: bytes) -> tuple[av.video.stream.VideoStream, list[np.ndarray]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
        return stream, frames


def decode_audio(data: bytes, *, fmt: str | None = None, rate: int | None = None) -> tuple[str, int, np.ndarray]:
    """Codec name, decoder sample rate and all samples (float, mono) of an audio payload."""
    options = {"sample_rate": str(rate), "ch_layout": "mono"} if fmt else {}
    with av.open(io.BytesIO(data), format=fmt, options=options) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray().astype(np.float64).reshape(-1) for frame in container.decode(stream)]
        return stream.codec_context.codec.canonical_name, stream.codec_context.sample_rate, np.concatenate(chunks)


# --------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize(
    ("resolution", "aspect", "expected"),
    [
        ("720p", "16:9", (1280, 720)),
        ("720p", "9:16", (720, 1280)),
        ("1080p", "16:9", (1920, 1080)),
        ("4k", "16:9", (3840, 2160)),
        ("720p", "1:1", (720, 720)),
        ("720p", "4:3", (960, 720)),
        ("720p", "21:9", (1680, 720)),
        ("480p", "16:9", (854, 480)),
        ("360p", "9:16", (360, 640)),
        (None, None, (1280, 720)),
    ],
)
def test_resolution_for_uses_short_side_and_even_long_side(resolution, aspect, expected):
    assert resolution_for(resolution, aspect) == expected
    assert all(side % 2 == 0 for side in expected)


@pytest.mark.parametrize(("resolution", "aspect", "named"), [("999p", "16:9", "999p"), ("720p", "5:4", "5:4")])
def test_resolution_for_rejects_unknown_values(resolution, aspect, named):
    with pytest.raises(ValueError, match=named):
        resolution_for(resolution, aspect)


def test_parse_size():
    assert parse_size("1024x1024") == (1024, 1024)
    assert parse_size(" 1792X1024 ") == (1792, 1024)
    for bad in ("1024", "axb", "0x512", "-5x5", "12x"):
        with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(")):
            parse_size(bad)


# --------------------------------------------------------------------------
# Video


@pytest.mark.parametrize(
    ("resolution", "aspect", "duration"),
    [("360p", "16:9", 1.3), ("360p", "9:16", 1.0), ("480p", "1:1", 0.5), ("360p", "21:9", 0.75), ("480p", "4:3", 1.1)],
)
def test_video_is_h264_mp4_of_exact_size_and_duration(resolution, aspect, duration):
    width, height = resolution_for(resolution, aspect)
    data = make_video(PROMPT, width, height, duration)
    assert data[4:8] == b"ftyp"
    stream, frames = decode_video_frames(data)
    assert stream.codec_context.codec.canonical_name == "h264"
    assert stream.codec_context.pix_fmt == "yuv420p"
    assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
    assert frames[0].shape == (height, width)
    fps = 24
    assert abs(len(frames) / fps - duration) <= 1 / fps
    assert abs(float(stream.duration * stream.time_base) - duration) <= 1 / fps


def test_video_frames_change_over_time():
    _, frames = decode_video_frames(make_video(PROMPT, 320, 240, 2.0))
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    assert min(diffs) > 0, "every frame should differ from the previous one"
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5


def test_video_shows_the_prompt():
    _, with_text = decode_video_frames(make_video(PROMPT, 640, 360, 0.1))
    _, other_text = decode_video_frames(make_video("something else entirely", 640, 360, 0.1))
    upper = slice(40, 250)  # the text area, above the moving block and the bar
    assert with_text[0][upper].std() > 10, "the text area should have contrast"
    assert np.abs(with_text[0][upper].astype(int) - other_text[0][upper].astype(int)).mean() > 1


def test_video_honours_fps():
    stream, frames = decode_video_frames(make_video("fps", 160, 120, 2.0, fps=12))
    assert len(frames) == 24
    assert stream.average_rate == 12


def test_video_is_deterministic_without_creation_time():
    first = make_video(PROMPT, 320, 180, 0.5, seed=3)
    assert make_video(PROMPT, 320, 180, 0.5, seed=3) == first
    assert make_video(PROMPT + "!", 320, 180, 0.5, seed=3) != first
    assert make_video(PROMPT, 320, 180, 0.5, seed=4) != first
    with av.open(io.BytesIO(first)) as container:
        assert "creation_time" not in container.metadata
        assert "creation_time" not in container.streams.video[0].metadata
    assert b"Lavf" not in first, "bitexact output carries no muxer version string"


@pytest.mark.parametrize(("width", "height", "named"), [(321, 240, "321"), (320, 241, "241"), (0, 240, "0")])
def test_video_rejects_bad_sizes(width, height, named):
    with pytest.raises(ValueError, match=named):
        make_video(PROMPT, width, height, 1.0)


@pytest.mark.parametrize("duration", [0, -1.0, float("nan")])
def test_video_rejects_bad_durations(duration):
    with pytest.raises(ValueError, match="duration"):
        make_video(PROMPT, 320, 240, duration)


# --------------------------------------------------------------------------
# Images


@pytest.mark.parametrize(
    ("image_format", "pil_format", "size"),
    [("png", "PNG", (1024, 1024)), ("jpeg", "JPEG", (640, 480)), ("jpg", "JPEG", (333, 517)),
     ("webp", "WEBP", (512, 288)), ("PNG", "PNG", (64, 64))],
)
def test_image_formats_and_sizes(image_format, pil_format, size):
    data = make_image(PROMPT, *size, image_format=image_format)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == pil_format
        assert image.size == size


def test_image_background_and_text_depend_on_prompt_and_seed():
    def pixels(prompt: str, seed: int) -> np.ndarray:
        with Image.open(io.BytesIO(make_image(prompt, 256, 256, seed=seed))) as image:
            return np.asarray(image.convert("RGB"))

    base = pixels(PROMPT, 0)
    assert base.reshape(-1, 3).std(axis=0).max() > 10, "text must be drawn over the background"
    assert not np.array_equal(base[-1, -1], pixels(PROMPT, 1)[-1, -1])
    assert not np.array_equal(base[-1, -1], pixels("another prompt", 0)[-1, -1])


def test_image_is_deterministic():
    for fmt in ("png", "jpeg", "webp"):
        assert make_image(PROMPT, 200, 100, image_format=fmt, seed=7) == make_image(
            PROMPT, 200, 100, image_format=fmt, seed=7
        )


def test_image_handles_long_and_empty_prompts():
    for prompt in ("", "x" * 5000, "word " * 2000):
        with Image.open(io.BytesIO(make_image(prompt, 300, 200))) as image:
            assert image.size == (300, 200)


def test_image_rejects_unknown_format_and_bad_size():
    with pytest.raises(ValueError, match="tiff"):
        make_image(PROMPT, 64, 64, image_format="tiff")
    with pytest.raises(ValueError, match="-1"):
        make_image(PROMPT, -1, 64)


# --------------------------------------------------------------------------
# Audio


AUDIO_CASES = [
    # format, sample_rate, container format for raw data, codec, expected decoder rate
    ("mp3", None, None, "mp3", 44100),
    ("mp3", 22050, None, "mp3", 22050),
    ("wav", None, None, "pcm_s16le", 44100),
    ("wav", 16000, None, "pcm_s16le", 16000),
    ("pcm", 24000, "s16le", "pcm_s16le", 24000),
    ("flac", 48000, None, "flac", 48000),
    ("opus", None, None, "opus", 48000),
    ("opus", 16000, None, "opus", 48000),  # Opus always decodes at 48 kHz
    ("ulaw", None, "mulaw", "pcm_mulaw", 8000),
    ("alaw", 16000, "alaw", "pcm_alaw", 16000),
]


@pytest.mark.parametrize(("fmt", "rate", "raw_format", "codec", "decoded_rate"), AUDIO_CASES)
def test_audio_formats_decode_with_right_codec_rate_and_duration(fmt, rate, raw_format, codec, decoded_rate):
    clip = make_audio("Hello there, general Kenobi.", audio_format=fmt, sample_rate=rate, duration_seconds=1.5)
    assert isinstance(clip, AudioClip)
    assert clip.audio_format == fmt
    assert clip.content_type == CONTENT_TYPES[fmt]
    assert clip.sample_rate == (rate or {"opus": 48000, "ulaw": 8000}.get(fmt, 44100))
    assert clip.duration_seconds == pytest.approx(1.5, abs=1e-3)
    decoded_codec, decoder_rate, samples = decode_audio(clip.data, fmt=raw_format, rate=clip.sample_rate)
    assert decoded_codec == codec
    assert decoder_rate == decoded_rate
    # mp3/opus add encoder delay and frame padding: allow a few frames.
    assert len(samples) / decoder_rate == pytest.approx(1.5, abs=0.08)
    assert np.sqrt(np.mean(samples**2)) > 0.01 * np.abs(samples).max() > 0, "audio must not be silence"


def test_audio_sounds_like_bursts_not_a_steady_tone():
    clip = make_audio("The quick brown fox, jumps over the lazy dog.", audio_format="pcm", sample_rate=16000)
    samples = np.frombuffer(clip.data, dtype="<i2").astype(np.float64)
    windows = samples[: len(samples) // 400 * 400].reshape(-1, 400)  # 25 ms windows
    rms = np.sqrt((windows**2).mean(axis=1))
    assert rms.max() > 1000
    assert (rms < 0.1 * rms.max()).sum() >= 3, "expected pauses between syllables and words"
    crossings = (np.diff(np.signbit(windows), axis=1) != 0).sum(axis=1)[rms > 0.3 * rms.max()]
    assert crossings.std() > 1, "pitch should vary between syllables"


def test_audio_short_text_over_long_duration_repeats_syllables():
    clip = make_audio("hi", audio_format="pcm", sample_rate=8000, duration_seconds=4.0)
    samples = np.frombuffer(clip.data, dtype="<i2").astype(np.float64)
    rms = np.sqrt((samples[:32000].reshape(-1, 200) ** 2).mean(axis=1))  # 25 ms windows
    loud = rms > 0.3 * rms.max()
    onsets = int((loud[1:] & ~loud[:-1]).sum())
    assert onsets >= 5, "a 4 s clip of one word should be several bursts, not one long tone"


def test_audio_wav_header_is_pcm_s16le_mono():
    data = make_audio("hi", audio_format="wav", sample_rate=22050).data
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.layout.nb_channels == 1


def test_audio_pcm_is_headerless_s16le():
    clip = make_audio("raw", audio_format="pcm", sample_rate=8000, duration_seconds=0.5)
    assert len(clip.data) == 8000 // 2 * 2
    assert clip.content_type == "audio/pcm"


@pytest.mark.parametrize(("text", "expected"), [("", 0.5), ("hi", 0.5), ("x" * 100, 6.0), ("y" * 5000, 120.0)])
def test_audio_duration_derived_from_text(text, expected):
    clip = make_audio(text, audio_format="pcm", sample_rate=8000)
    assert clip.duration_seconds == pytest.approx(expected, abs=1e-3)
    assert len(clip.data) / 2 / 8000 == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("kbps", [64, 192])
def test_mp3_bitrate_is_honoured(kbps):
    data = make_audio("bitrate " * 10, audio_format="mp3", bitrate_kbps=kbps, duration_seconds=3).data
    with av.open(io.BytesIO(data)) as container:
        bit_rate = container.streams.audio[0].bit_rate or container.bit_rate
    assert bit_rate == pytest.approx(kbps * 1000, rel=0.1)
    assert len(data) * 8 / 3 == pytest.approx(kbps * 1000, rel=0.15)


@pytest.mark.parametrize("kbps", [32, 96])
def test_opus_bitrate_is_honoured(kbps):
    data = make_audio("bitrate " * 10, audio_format="opus", bitrate_kbps=kbps, duration_seconds=3).data
    assert len(data) * 8 / 3 == pytest.approx(kbps * 1000, rel=0.2)


def test_mp3_default_bitrate_is_128k():
    data = make_audio("default", audio_format="mp3", duration_seconds=2).data
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.audio[0].bit_rate == pytest.approx(128_000, rel=0.1)


def test_opus_rejects_unsupported_rates_naming_them():
    with pytest.raises(ValueError, match=r"44100.*8000, 12000, 16000, 24000, 48000"):
        make_audio("x", audio_format="opus", sample_rate=44100)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"audio_format": "aiff"}, "aiff"),
        ({"sample_rate": 0}, "0"),
        ({"sample_rate": -8000}, "-8000"),
        ({"audio_format": "mp3", "sample_rate": 96000}, "96000"),
        ({"duration_seconds": 0.0}, "0.0"),
        ({"bitrate_kbps": 0}, "0"),
        ({"audio_format": "mp3", "bitrate_kbps": 400}, "400"),
        ({"duration_seconds": 601.0}, "601.0"),
    ],
)
def test_audio_rejects_bad_arguments(kwargs, named):
    with pytest.raises(ValueError, match=named):
        make_audio("x", **kwargs)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "pcm", "flac", "opus", "ulaw", "alaw"])
def test_audio_is_deterministic(fmt):
    first = make_audio("Determinism matters.", audio_format=fmt, seed=5).data
    assert make_audio("Determinism matters.", audio_format=fmt, seed=5).data == first
    assert make_audio("Determinism matters!", audio_format=fmt, seed=5).data != first
    assert make_audio("Determinism matters.", audio_format=fmt, seed=6).data != first


# --------------------------------------------------------------------------
# Tables


def test_content_types_and_extensions_agree():
    for name, content_type in CONTENT_TYPES.items():
        assert content_type in EXTENSIONS, name
    assert EXTENSIONS["video/mp4"] == "mp4"
    assert EXTENSIONS["audio/mpeg"] == "mp3"
    assert EXTENSIONS["image/png"] == "png"
    assert EXTENSIONS["audio/ogg"] == "ogg"
    assert CONTENT_TYPES["opus"] == "audio/ogg"


# --------------------------------------------------------------------------
# Probing


@pytest.fixture(scope="module")
def sample_video() -> bytes:
    return make_video(PROMPT, 640, 360, 2.0)


def test_probe_video(sample_video):
    info = probe_media(sample_video)
    assert info == MediaInfo(kind="video", content_type="video/mp4", codec="h264", duration_seconds=2.0,
                             width=640, height=360, sample_rate=None)


def test_probe_video_portrait_from_path_and_file(tmp_path):
    data = make_video(PROMPT, 360, 640, 1.0)
    path = tmp_path / "clip.bin"  # the extension must not matter
    path.write_bytes(data)
    for source in (path, str(path)):
        info = probe_media(source)
        assert (info.kind, info.width, info.height) == ("video", 360, 640)
    with path.open("rb") as handle:
        assert probe_media(handle).duration_seconds == pytest.approx(1.0, abs=1 / 24)
    # A file positioned past a prefix is probed from where it stands.
    prefixed = tmp_path / "prefixed.bin"
    prefixed.write_bytes(b"HEADER" + data)
    with prefixed.open("rb") as handle:
        handle.read(6)
        assert probe_media(handle).width == 360


@pytest.mark.parametrize(("fmt", "content_type", "codec"),
                         [("png", "image/png", "png"), ("jpeg", "image/jpeg", "jpeg"), ("webp", "image/webp", "webp")])
def test_probe_images(fmt, content_type, codec):
    info = probe_media(make_image(PROMPT, 300, 200, image_format=fmt))
    assert info == MediaInfo(kind="image", content_type=content_type, codec=codec, duration_seconds=None,
                             width=300, height=200, sample_rate=None)


@pytest.mark.parametrize(
    ("fmt", "rate", "content_type", "codec"),
    [("mp3", 44100, "audio/mpeg", "mp3"), ("wav", 16000, "audio/wav", "pcm_s16le"),
     ("flac", 22050, "audio/flac", "flac"), ("opus", 24000, "audio/ogg", "opus")],
)
def test_probe_audio(fmt, rate, content_type, codec):
    clip = make_audio("probe me", audio_format=fmt, sample_rate=rate, duration_seconds=2.0)
    info = probe_media(clip.data)
    assert (info.kind, info.content_type, info.codec, info.sample_rate) == ("audio", content_type, codec, rate)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.05)
    assert info.width is None and info.height is None


def test_probe_raw_pcm_only_with_a_rate():
    clip = make_audio("raw pcm", audio_format="pcm", sample_rate=16000, duration_seconds=1.25)
    with pytest.raises(MediaProbeError):
        probe_media(clip.data)
    info = probe_media(clip.data, raw_pcm_sample_rate=16000)
    assert (info.kind, info.content_type, info.codec, info.sample_rate) == ("audio", "audio/pcm", "pcm_s16le", 16000)
    assert info.duration_seconds == pytest.approx(1.25)
    assert probe_media(io.BytesIO(clip.data), raw_pcm_sample_rate=16000).duration_seconds == pytest.approx(1.25)
    # A sniffable format is still recognised when a raw rate is offered.
    assert probe_media(make_audio("x", audio_format="wav").data, raw_pcm_sample_rate=16000).content_type == "audio/wav"


HTML_ERROR = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>oops</body></html>"


@pytest.mark.parametrize("raw_rate", [None, 16000])
def test_probe_rejects_text_error_pages(raw_rate):
    with pytest.raises(MediaProbeError, match="3c 21 44 4f") as caught:
        probe_media(HTML_ERROR, raw_pcm_sample_rate=raw_rate)
    assert "expected" in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("payload", [b"", b"\x00\x01\x02garbage" * 10, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_probe_rejects_garbage(payload):
    with pytest.raises(MediaProbeError, match="expected"):
        probe_media(payload)


def test_probe_rejects_truncated_video(sample_video):
    for cut in (len(sample_video) // 2, len(sample_video) - 100):
        with pytest.raises(MediaProbeError, match="video/mp4"):
            probe_media(sample_video[:cut])


@pytest.mark.parametrize("fmt", ["mp3", "wav", "flac"])
def test_probe_rejects_truncated_audio(fmt):
    data = make_audio("truncate me", audio_format=fmt, duration_seconds=3.0).data
    with pytest.raises(MediaProbeError, match="truncated"):
        probe_media(data[: len(data) // 2])


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_probe_rejects_truncated_images(fmt):
    data = make_image(PROMPT, 200, 200, image_format=fmt)
    with pytest.raises(MediaProbeError, match=f"image/{fmt}"):
        probe_media(data[: len(data) * 3 // 4])


def test_probe_raw_pcm_from_path_and_odd_length(tmp_path):
    path = tmp_path / "speech.pcm"
    path.write_bytes(make_audio("path", audio_format="pcm", sample_rate=8000, duration_seconds=2.0).data)
    assert probe_media(path, raw_pcm_sample_rate=8000).duration_seconds == pytest.approx(2.0)
    with pytest.raises(MediaProbeError, match="odd length"):
        probe_media(path.read_bytes()[:-1], raw_pcm_sample_rate=8000)


def test_probe_missing_file_is_a_probe_error(tmp_path):
    with pytest.raises(MediaProbeError, match="cannot read"):
        probe_media(tmp_path / "missing.mp4")


# --------------------------------------------------------------------------
# Import cost


def test_import_is_lazy():
    code = textwrap.dedent(
        """
        import sys
        import providers.media.formats, providers.media.probe, providers.media.synthesis
        heavy = sorted(m for m in ("av", "PIL", "numpy") if m in sys.modules)
        print(",".join(heavy))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""
