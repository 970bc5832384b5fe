"""Real, playable media made locally, and a prober that proves media decodes.

The offline mock provider and the test provider-emulator use the makers to
return genuine H.264/MP4 video, PNG/JPEG/WEBP images and MP3/WAV/PCM/FLAC/Opus
audio. Everything is deterministic: the same arguments give the same bytes.

``probe_media`` is the validation step before a result row says ``completed``:
it sniffs the content type from the bytes, decodes the media and measures it.

PyAV, Pillow and NumPy are imported inside the functions so that importing this
module stays cheap for code that only needs the tables or the dataclasses.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import wave
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, BinaryIO, Union

if TYPE_CHECKING:
    import av
    import numpy as np
    from PIL import Image, ImageFont

__all__ = [
    "AudioClip",
    "CONTENT_TYPES",
    "EXTENSIONS",
    "MediaInfo",
    "MediaProbeError",
    "make_audio",
    "make_image",
    "make_plain_image",
    "make_video",
    "media_poster",
    "parse_size",
    "probe_media",
    "resolution_for",
]

CONTENT_TYPES: dict[str, str] = {
    # audio
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "ulaw": "audio/basic",
    "alaw": "audio/x-alaw-basic",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
    # image
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    # video
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
}
"""Format name -> MIME type, for the audio, image and video formats we know."""

EXTENSIONS: dict[str, str] = {
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/pcm": "pcm",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/basic": "ulaw",
    "audio/x-alaw-basic": "alaw",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/webm": "weba",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "video/ogg": "ogv",
}
"""MIME type -> file extension without the dot."""

MAX_SIDE = 8192
"""Largest width or height the makers accept (guards against memory blow-ups)."""

_SHORT_SIDES = {"360p": 360, "480p": 480, "720p": 720, "1080p": 1080, "4k": 2160}
_ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "21:9": (21, 9)}

_IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
_AUDIO_FORMATS = ("mp3", "wav", "pcm", "flac", "opus", "ulaw", "alaw")
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_MAX_SAMPLE_RATE = 384_000
_MAX_AUDIO_SECONDS = 600.0  # keeps the float32 synthesis buffer near 100 MB at 48 kHz
_BITRATES = {"mp3": (128, 8, 320), "opus": (64, 6, 510)}  # format -> (default, min, max) kbps
_SECONDS_PER_CHAR = 0.06
_MIN_AUTO_SECONDS = 0.5
_MAX_AUTO_SECONDS = 120.0
_MAX_DRAWN_CHARS = 600


# --------------------------------------------------------------------------
# Sizes


def resolution_for(resolution: str | None, aspect_ratio: str | None) -> tuple[int, int]:
    """Map a Resolution and an AspectRatio to an even ``(width, height)``.

    The resolution number is the short side: ``('720p', '16:9')`` is 1280x720,
    ``('720p', '9:16')`` is 720x1280, ``('4k', '16:9')`` is 3840x2160. Defaults
    are ``'720p'`` and ``'16:9'``; the long side is rounded to an even number.
    """
    res_key = (resolution or "720p").strip().lower()
    if res_key not in _SHORT_SIDES:
        raise ValueError(f"unknown resolution {resolution!r}; expected one of {sorted(_SHORT_SIDES)}")
    aspect_key = (aspect_ratio or "16:9").strip()
    if aspect_key not in _ASPECTS:
        raise ValueError(f"unknown aspect ratio {aspect_ratio!r}; expected one of {list(_ASPECTS)}")
    short = _SHORT_SIDES[res_key]
    a, b = _ASPECTS[aspect_key]
    long_side = 2 * round(short * max(a, b) / min(a, b) / 2)
    return (long_side, short) if a >= b else (short, long_side)


_SIZE_RE = re.compile(r"^\s*(\d+)\s*[x×*]\s*(\d+)\s*$", re.IGNORECASE)


def parse_size(size: str) -> tuple[int, int]:
    """Parse ``'1024x1024'`` (also ``'1024X768'``, ``'1024*768'``) into ``(width, height)``."""
    match = _SIZE_RE.match(size) if isinstance(size, str) else None
    if match is None:
        raise ValueError(f"malformed size {size!r}; expected WIDTHxHEIGHT, e.g. '1024x1024'")
    width, height = int(match.group(1)), int(match.group(2))
    if width <= 0 or height <= 0:
        raise ValueError(f"size {size!r} must have a positive width and height")
    return width, height


def _check_dimensions(width: int, height: int, *, even: bool) -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if value > MAX_SIDE:
            raise ValueError(f"{name} {value} exceeds the maximum of {MAX_SIDE}")
        if even and value % 2:
            raise ValueError(f"{name} must be even for yuv420p video, got {value}")


# --------------------------------------------------------------------------
# Deterministic parameters


def _digest(*parts: object) -> bytes:
    """A stable hash (unlike ``hash()``, which is salted per process)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()


def _hsv_to_rgb(hue: float, sat: float, val: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


@dataclass(frozen=True)
class _Palette:
    background: tuple[int, int, int]
    text: tuple[int, int, int]
    accent: tuple[int, int, int]
    track: tuple[int, int, int]


def _palette(prompt: str, seed: int) -> _Palette:
    """Dark, prompt/seed-derived background so white text is always readable."""
    d = _digest("palette", seed, prompt)
    hue = d[0] / 256
    return _Palette(
        background=_hsv_to_rgb(hue, 0.35 + d[1] / 1024, 0.28 + d[2] / 1280),
        text=(245, 245, 245),
        accent=_hsv_to_rgb(hue + 0.5, 0.65, 0.95),
        track=_hsv_to_rgb(hue, 0.25, 0.15),
    )


# --------------------------------------------------------------------------
# Text cards


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float) -> list[str]:
    """Greedy word wrap; words wider than a line are split by characters."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:
                if line and font.getlength(line + char) > max_width:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    return lines


def _fit_text(text: str, box_width: int, box_height: int) -> tuple[int, list[str]]:
    """The largest font size (shrinking by 15 % steps) whose wrapped lines fit the box."""
    size = max(10, min(box_width // 14, box_height // 5, 96))
    while True:
        font = _font(size)
        lines = _wrap(text, font, box_width)
        line_height = round(size * 1.25)
        if len(lines) * line_height <= box_height or size <= 10:
            max_lines = max(1, box_height // line_height)
            if len(lines) > max_lines:
                lines = lines[:max_lines]
                lines[-1] = lines[-1][: max(0, len(lines[-1]) - 1)] + "…"
            return size, lines
        size = max(10, int(size * 0.85))


def _render_card(prompt: str, width: int, height: int, palette: _Palette, *, caption: str,
                 text_bottom: int | None = None) -> Image.Image:
    """Draw the wrapped prompt, centred, above ``text_bottom`` on the palette background."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), palette.background)
    draw = ImageDraw.Draw(image)
    margin = max(4, min(width, height) // 20)
    caption_size = max(8, min(width, height) // 40)
    draw.text((margin, margin // 2), caption, fill=palette.accent, font=_font(caption_size))

    text = " ".join(prompt.split()) or "(empty prompt)"
    if len(text) > _MAX_DRAWN_CHARS:
        text = text[: _MAX_DRAWN_CHARS - 1] + "…"
    top = margin + caption_size
    bottom = text_bottom if text_bottom is not None else height - margin
    box_width, box_height = max(1, width - 2 * margin), max(1, bottom - top)
    size, lines = _fit_text(text, box_width, box_height)
    font = _font(size)
    line_height = round(size * 1.25)
    y = top + (box_height - len(lines) * line_height) // 2
    for line in lines:
        x = (width - font.getlength(line)) / 2
        draw.text((x, y), line, fill=palette.text, font=font)
        y += line_height
    return image


# --------------------------------------------------------------------------
# Images


def make_image(prompt: str, width: int, height: int, *, image_format: str = "png", seed: int = 0) -> bytes:
    """Encode a ``width`` x ``height`` image showing ``prompt`` on a prompt/seed-derived colour.

    ``image_format`` is ``'png'``, ``'jpeg'``/``'jpg'`` or ``'webp'``. Deterministic.
    """
    fmt = image_format.lower() if isinstance(image_format, str) else image_format
    if fmt not in _IMAGE_FORMATS:
        raise ValueError(f"unsupported image format {image_format!r}; expected one of {sorted(_IMAGE_FORMATS)}")
    _check_dimensions(width, height, even=False)
    palette = _palette(prompt, seed)
    image = _render_card(prompt, width, height, palette, caption=f"mock image · seed {seed}")
    out = io.BytesIO()
    pil_format = _IMAGE_FORMATS[fmt]
    options = {"PNG": {"compress_level": 6}, "JPEG": {"quality": 90}, "WEBP": {"quality": 90}}[pil_format]
    image.save(out, format=pil_format, **options)
    return out.getvalue()


@lru_cache(maxsize=32)
def make_plain_image(width: int, height: int, *, image_format: str = "png") -> bytes:
    """A valid one-colour ``width`` x ``height`` image, made once per size and format.

    The mock's cheap mode (``MockConfig(render_text=False)``): real, decodable media
    without the cost of drawing text, for benchmarks of the pipeline itself.
    """
    from PIL import Image

    fmt = image_format.lower() if isinstance(image_format, str) else image_format
    if fmt not in _IMAGE_FORMATS:
        raise ValueError(f"unsupported image format {image_format!r}; expected one of {sorted(_IMAGE_FORMATS)}")
    _check_dimensions(width, height, even=False)
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 60, 90)).save(out, format=_IMAGE_FORMATS[fmt])
    return out.getvalue()


# --------------------------------------------------------------------------
# Video


def _rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range, matching what swscale produces for yuv420p."""
    r, g, b = (c / 255 for c in rgb)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return round(y), round(u), round(v)


class _Planes:
    """Writable Y/U/V views over one flat yuv420p buffer (the layout PyAV expects)."""

    def __init__(self, flat: np.ndarray, width: int, height: int) -> None:
        luma = width * height
        self.flat = flat
        self.width, self.height = width, height
        self.y = flat[:luma].reshape(height, width)
        self.u = flat[luma : luma + luma // 4].reshape(height // 2, width // 2)
        self.v = flat[luma + luma // 4 :].reshape(height // 2, width // 2)

    def fill(self, x0: int, y0: int, x1: int, y1: int, yuv: tuple[int, int, int]) -> None:
        """Paint a rectangle; coordinates are rounded down to even for the chroma planes."""
        x0, x1 = (min(max(c, 0), self.width) for c in (x0, x1))
        y0, y1 = (min(max(c, 0), self.height) for c in (y0, y1))
        x0, y0, x1, y1 = (c - c % 2 for c in (x0, y0, x1, y1))
        if x1 <= x0 or y1 <= y0:
            return
        self.y[y0:y1, x0:x1] = yuv[0]
        self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = yuv[1]
        self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = yuv[2]


@dataclass(frozen=True)
class _MotionLayout:
    """Where the per-frame progress bar and moving block go."""

    bar: tuple[int, int, int, int]
    block_size: int
    block_top: int
    block_travel: int

    @classmethod
    def for_size(cls, width: int, height: int) -> _MotionLayout:
        margin = max(4, min(width, height) // 20)
        bar_height = max(4, height // 40)
        bar_bottom = height - margin
        block = max(4, min(width, height) // 14)
        return cls(
            bar=(margin, bar_bottom - bar_height, width - margin, bar_bottom),
            block_size=block,
            block_top=bar_bottom - bar_height - margin // 2 - block,
            block_travel=max(0, width - 2 * margin - block),
        )

    @property
    def text_bottom(self) -> int:
        return self.block_top - self.block_size // 4

    def paint(self, planes: _Planes, progress: float, seconds: float, colour: tuple[int, int, int]) -> None:
        """Fill the bar up to ``progress`` (0..1) and place the block for time ``seconds``."""
        x0, y0, x1, y1 = self.bar
        planes.fill(x0, y0, x0 + round((x1 - x0) * progress), y1, colour)
        # Triangle wave: the block crosses the frame in one second and comes back in the next.
        phase = seconds % 2.0
        x = x0 + round(self.block_travel * (phase if phase <= 1 else 2 - phase))
        planes.fill(x, self.block_top, x + self.block_size, self.block_top + self.block_size, colour)


def make_video(prompt: str, width: int, height: int, duration_seconds: float, *, fps: int = 24,
               seed: int = 0) -> bytes:
    """Encode an H.264 (libx264, yuv420p) MP4 of ``width`` x ``height`` lasting ``duration_seconds``.

    Frames show the wrapped prompt plus a progress bar that fills and a block that
    moves back and forth, so it is visibly a video. The frame count is
    ``round(duration_seconds * fps)`` (at least one), so the duration is within
    one frame of the request. Both sides must be even. Deterministic: no
    creation time or version strings are written (``fflags=+bitexact``).
    """
    _check_dimensions(width, height, even=True)
    if not isinstance(fps, int) or isinstance(fps, bool) or not 1 <= fps <= 240:
        raise ValueError(f"fps must be an integer between 1 and 240, got {fps!r}")
    if not (isinstance(duration_seconds, (int, float)) and math.isfinite(duration_seconds)
            and duration_seconds > 0):
        raise ValueError(f"duration_seconds must be a positive number, got {duration_seconds!r}")
    frame_count = max(1, round(duration_seconds * fps))

    import av
    import numpy as np

    palette = _palette(prompt, seed)
    layout = _MotionLayout.for_size(width, height)
    card = _render_card(prompt, width, height, palette, caption=f"mock video · seed {seed}",
                        text_bottom=layout.text_bottom)
    base = av.VideoFrame.from_image(card).reformat(format="yuv420p").to_ndarray().reshape(-1)
    accent = _rgb_to_yuv(palette.accent)
    _Planes(base, width, height).fill(*layout.bar, _rgb_to_yuv(palette.track))

    out = io.BytesIO()
    with av.open(out, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        flat = np.empty_like(base)
        planes = _Planes(flat, width, height)
        for index in range(frame_count):
            np.copyto(flat, base)
            layout.paint(planes, (index + 1) / frame_count, index / fps, accent)
            frame = av.VideoFrame.from_ndarray(flat.reshape(-1, width), format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


# --------------------------------------------------------------------------
# Audio


@dataclass(frozen=True)
class AudioClip:
    """Encoded audio and what it is."""

    data: bytes
    content_type: str
    duration_seconds: float
    sample_rate: int
    audio_format: str


def _audio_duration(text: str, duration_seconds: float | None) -> float:
    if duration_seconds is None:
        return min(_MAX_AUTO_SECONDS, max(_MIN_AUTO_SECONDS, _SECONDS_PER_CHAR * len(text)))
    if not (isinstance(duration_seconds, (int, float)) and math.isfinite(duration_seconds)
            and 0 < duration_seconds <= _MAX_AUDIO_SECONDS):
        raise ValueError(f"duration_seconds must be a number in (0, {_MAX_AUDIO_SECONDS:g}], "
                         f"got {duration_seconds!r}")
    return float(duration_seconds)


def _audio_rate(audio_format: str, sample_rate: int | None) -> int:
    if sample_rate is None:
        return {"opus": 48000, "ulaw": 8000, "alaw": 8000}.get(audio_format, 44100)
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if sample_rate > _MAX_SAMPLE_RATE:
        raise ValueError(f"sample_rate {sample_rate} exceeds the maximum of {_MAX_SAMPLE_RATE}")
    allowed = {"opus": _OPUS_RATES, "mp3": _MP3_RATES}.get(audio_format)
    if allowed is not None and sample_rate not in allowed:
        raise ValueError(f"{audio_format} does not support sample_rate {sample_rate}; "
                         f"allowed rates: {', '.join(map(str, allowed))}")
    return sample_rate


def _audio_bitrate(audio_format: str, bitrate_kbps: int | None) -> int | None:
    """Bitrate in kbps for lossy formats; None (ignored) for lossless and raw ones."""
    if audio_format not in _BITRATES:
        return None
    default, lowest, highest = _BITRATES[audio_format]
    if bitrate_kbps is None:
        return default
    if not isinstance(bitrate_kbps, int) or isinstance(bitrate_kbps, bool) or not lowest <= bitrate_kbps <= highest:
        raise ValueError(f"{audio_format} bitrate_kbps must be an integer from {lowest} to {highest}, "
                         f"got {bitrate_kbps!r}")
    return bitrate_kbps


# Rough (F1, F2) formants in Hz, so that different vowels sound different.
_FORMANTS = {"a": (730, 1090), "e": (530, 1840), "i": (270, 2290), "o": (570, 840),
             "u": (300, 870), "y": (300, 2000)}
_DEFAULT_FORMANTS = (500, 1500)
_HARMONICS = 10
_UNIT_RE = re.compile(r"[^\W\d_]{1,3}|\d|\s+|[^\w\s]")


@dataclass(frozen=True)
class _Unit:
    token: str
    weight: float
    voiced: bool


def _speech_units(text: str) -> list[_Unit]:
    """Split text into syllable-like chunks (voiced) and gaps (spaces, punctuation)."""
    units = []
    for token in _UNIT_RE.findall(text) or ["ah"]:
        if token.isspace():
            units.append(_Unit(token, 0.6, False))
        elif token.isalnum():
            units.append(_Unit(token, len(token) + 0.5, True))
        else:
            units.append(_Unit(token, 1.5 if token in ".,;:!?" else 0.5, False))
    if not any(unit.voiced for unit in units):
        units.append(_Unit("ah", 2.5, True))
    return units


@dataclass(frozen=True)
class _Syllable:
    token: str
    start: int
    end: int
    key: int


def _plan_syllables(text: str, total: int, rate: int) -> list[_Syllable]:
    """Spread the units over ``total`` samples; voiced units longer than 0.35 s are split up.

    Splitting keeps a short text stretched over a long duration sounding like
    repeated syllables rather than one long tone, and bounds per-syllable memory.
    """
    units = _speech_units(text)
    scale = total / sum(unit.weight for unit in units)
    longest = max(1, round(0.35 * rate))
    syllables: list[_Syllable] = []
    position = 0.0
    for index, unit in enumerate(units):
        start, end = round(position), round(position + unit.weight * scale)
        position += unit.weight * scale
        if not unit.voiced or end <= start:
            continue
        pieces = -(-(end - start) // longest)
        bounds = [start + (end - start) * i // pieces for i in range(pieces + 1)]
        syllables += [_Syllable(unit.token, a, b, index * 1000 + i)
                      for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    return syllables


def _synthesize_speech(text: str, duration: float, rate: int, seed: int) -> np.ndarray:
    """Mono int16 samples: harmonic tone bursts with vowel formants, pitch glides and consonant noise."""
    import numpy as np

    total = max(1, round(duration * rate))
    voice = _digest("voice", seed, text)
    base_f0 = 95 + voice[0] * 0.5  # 95..222 Hz: low to high voices
    rng = np.random.default_rng(int.from_bytes(voice[8:16], "little"))
    out = np.zeros(total, dtype=np.float32)
    for syllable in _plan_syllables(text, total, rate):
        d = _digest("syllable", seed, syllable.key, syllable.token)
        # Declining intonation over the utterance plus per-syllable variation.
        pitch = base_f0 * (1.1 - 0.2 * syllable.start / total) * (0.85 + 0.3 * d[0] / 255)
        glide = 0.92 + 0.16 * d[1] / 255
        loudness = 0.55 + 0.45 * d[2] / 255
        out[syllable.start : syllable.end] = loudness * _render_syllable(
            syllable.token, syllable.end - syllable.start, pitch, glide, rate, rng
        )
    np.clip(out, -1.0, 1.0, out=out)
    return np.round(out * 0.9 * 32767).astype(np.int16)


def _render_syllable(token: str, length: int, pitch: float, glide: float, rate: int,
                     rng: np.random.Generator) -> np.ndarray:
    """One burst in -1..1: harmonics of a gliding pitch, weighted by the vowel's formants."""
    import numpy as np

    f0 = np.linspace(pitch, pitch * glide, length)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    vowel = next((c for c in token.lower() if c in _FORMANTS), None)
    weights = _harmonic_weights(pitch, _FORMANTS.get(vowel, _DEFAULT_FORMANTS), rate)
    signal = np.zeros(length)
    for k, weight in enumerate(weights, start=1):
        if weight:
            signal += weight * np.sin(k * phase)
    signal *= _burst_envelope(length, rate) / max(float(weights.sum()), 1e-9)
    if token[0].lower() not in _FORMANTS:  # a consonant onset: a short noise burst
        burst = min(length, max(1, rate // 50))
        signal[:burst] += np.linspace(0.25, 0.0, burst) * rng.standard_normal(burst)
    return signal


def _burst_envelope(length: int, rate: int) -> np.ndarray:
    """Flat-topped envelope with raised-cosine attack (~25 ms) and release (~40 ms)."""
    import numpy as np

    env = np.ones(length)
    attack = min(length // 3, max(1, rate // 40))
    release = min(length // 3, max(1, rate // 25))
    if attack:
        env[:attack] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, attack))
    if release:
        env[length - release :] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, release))
    return env


def _harmonic_weights(f0: float, formants: tuple[int, int], rate: int) -> np.ndarray:
    import numpy as np

    freqs = f0 * np.arange(1, _HARMONICS + 1)
    f1, f2 = formants
    weights = (1 / np.arange(1, _HARMONICS + 1)) * (
        1 + 3 * np.exp(-(((freqs - f1) / 150) ** 2)) + 2 * np.exp(-(((freqs - f2) / 250) ** 2))
    )
    # Stay clear of aliasing at low rates, but never drop the fundamental (no silence).
    weights[1:][freqs[1:] * 1.15 >= rate / 2] = 0.0
    return weights


def _encode_wav(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


@dataclass(frozen=True)
class _AvAudio:
    container: str
    encoder: str
    sample_format: str
    frame_samples: int  # samples per frame handed to the encoder; 0 means 20 ms at the rate
    options: tuple[tuple[str, str], ...] = ()


_AV_AUDIO = {
    "mp3": _AvAudio("mp3", "libmp3lame", "s16p", 1152),
    "flac": _AvAudio("flac", "flac", "s16", 4608),
    # Unconstrained VBR overshoots the requested bitrate by ~70 % on tonal audio.
    "opus": _AvAudio("ogg", "libopus", "s16", 0, (("vbr", "constrained"),)),
    "ulaw": _AvAudio("mulaw", "pcm_mulaw", "s16", 4096),
    "alaw": _AvAudio("alaw", "pcm_alaw", "s16", 4096),
}


def _encode_with_av(samples: np.ndarray, rate: int, audio_format: str, bitrate_kbps: int | None) -> bytes:
    import av

    spec = _AV_AUDIO[audio_format]
    chunk = spec.frame_samples or rate // 50
    out = io.BytesIO()
    # bitexact keeps the Ogg stream serial number and version tags fixed.
    with av.open(out, "w", format=spec.container, options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(spec.encoder, rate=rate, layout="mono")
        stream.options = dict(spec.options)
        if bitrate_kbps is not None:
            stream.bit_rate = bitrate_kbps * 1000
        for offset in range(0, len(samples), chunk):
            frame = av.AudioFrame.from_ndarray(samples[None, offset : offset + chunk], format=spec.sample_format,
                                               layout="mono")
            frame.sample_rate = rate
            frame.pts = offset
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def make_audio(text: str, *, audio_format: str = "mp3", sample_rate: int | None = None,
               bitrate_kbps: int | None = None, duration_seconds: float | None = None,
               seed: int = 0) -> AudioClip:
    """Synthesize speech-like mono audio for ``text`` and encode it.

    Formats: ``'mp3'`` (libmp3lame, ``bitrate_kbps`` default 128), ``'wav'``
    (PCM s16le), ``'pcm'`` (raw s16le, no header), ``'flac'``, ``'opus'``
    (libopus in Ogg, ``bitrate_kbps`` default 64; rates 8000/12000/16000/24000/48000),
    ``'ulaw'`` / ``'alaw'`` (raw G.711). ``sample_rate`` defaults to 44100
    (48000 for opus, 8000 for ulaw/alaw). Without ``duration_seconds`` the length
    is 0.06 s per character, clamped to 0.5..120 s. Deterministic.
    """
    fmt = audio_format.lower() if isinstance(audio_format, str) else audio_format
    if fmt not in _AUDIO_FORMATS:
        raise ValueError(f"unsupported audio format {audio_format!r}; expected one of {list(_AUDIO_FORMATS)}")
    rate = _audio_rate(fmt, sample_rate)
    bitrate = _audio_bitrate(fmt, bitrate_kbps)
    duration = _audio_duration(text, duration_seconds)
    samples = _synthesize_speech(text, duration, rate, seed)
    if fmt == "wav":
        data = _encode_wav(samples, rate)
    elif fmt == "pcm":
        data = samples.astype("<i2").tobytes()
    else:
        data = _encode_with_av(samples, rate, fmt, bitrate)
    return AudioClip(data=data, content_type=CONTENT_TYPES[fmt], duration_seconds=len(samples) / rate,
                     sample_rate=rate, audio_format=fmt)


# --------------------------------------------------------------------------
# Probing


class MediaProbeError(ValueError):
    """The bytes are not decodable media of a kind we recognise."""


@dataclass(frozen=True)
class MediaInfo:
    """What ``probe_media`` measured.

    ``content_type`` is sniffed from the bytes; ``codec`` is FFmpeg's canonical
    codec name (``'h264'``, ``'mp3'``, ``'opus'``...) or Pillow's format in lower
    case for images. For Opus, ``sample_rate`` is the encoder's input rate from
    the OpusHead (the decoder always runs at 48 kHz).
    """

    kind: str
    content_type: str
    codec: str | None
    duration_seconds: float | None
    width: int | None
    height: int | None
    sample_rate: int | None


_Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", BinaryIO]

_SNIFF_BYTES = 4096  # enough to walk a WAV header to its data chunk
_IMAGE_CODECS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "GIF": "gif"}
_EXPECTED = ("an image (PNG, JPEG, WEBP, GIF), audio (MP3, WAV, FLAC, Ogg, AAC, M4A, AU) "
             "or video (MP4, MOV, WebM, MKV)")


def sniff_content_type(head: bytes) -> str | None:
    """The MIME type from the first bytes of a file (magic numbers), or None when unknown.

    Containers that may hold audio or video (MP4, Matroska) are reported as video.
    """
    return _sniff(head)


def _sniff(head: bytes) -> str | None:
    """Content type from magic bytes; for containers that may be audio or video, the video type."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "video/ogg"
    if head.startswith(b".snd"):
        return "audio/basic"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0x3
        return "audio/aac" if layer == 0 else "audio/mpeg"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head else "video/x-matroska"
    return None


_AUDIO_ONLY_TYPES = {"video/mp4": "audio/mp4", "video/quicktime": "audio/mp4", "video/webm": "audio/webm",
                     "video/x-matroska": "audio/x-matroska", "video/ogg": "audio/ogg"}


class _Opened:
    """A probe source as something both Pillow and PyAV can open, plus its first bytes."""

    def __init__(self, source: _Source) -> None:
        self.path: str | None = None
        self.file: BinaryIO | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.file = io.BytesIO(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            self.path = os.fspath(source)
        elif hasattr(source, "read"):
            # PyAV seeks by absolute offsets, so only a seekable file at offset 0 is used in place.
            if _seekable(source) and source.tell() == 0:
                self.file = source
            else:
                self.file = io.BytesIO(source.read())
        else:
            raise TypeError(f"probe_media expects bytes, a path or a binary file, got {type(source).__name__}")
        self.head = self._read_head()

    def _read_head(self) -> bytes:
        if self.path is not None:
            try:
                with open(self.path, "rb") as handle:
                    return handle.read(_SNIFF_BYTES)
            except OSError as exc:
                raise MediaProbeError(f"cannot read media file {self.path!r}: {exc}") from exc
        head = self.rewound().read(_SNIFF_BYTES)
        self.rewound()
        return head

    def rewound(self) -> BinaryIO:
        assert self.file is not None
        self.file.seek(0)
        return self.file

    def target(self) -> str | BinaryIO:
        """A fresh handle on the data: the path, or the file rewound to its start."""
        return self.path if self.path is not None else self.rewound()

    def size(self) -> int:
        """Total byte count."""
        if self.path is not None:
            return os.path.getsize(self.path)
        size = self.rewound().seek(0, os.SEEK_END)
        self.rewound()
        return size


def _seekable(handle: BinaryIO) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _fail(expected: str, head: bytes, detail: object) -> MediaProbeError:
    return MediaProbeError(f"expected {expected}; data starts with {head[:16].hex(' ') or '(empty)'}: {detail}")


def probe_media(source: bytes | str | os.PathLike | BinaryIO, *,
                raw_pcm_sample_rate: int | None = None) -> MediaInfo:
    """Sniff, decode and measure media, raising ``MediaProbeError`` if it is not decodable.

    Images are verified and fully loaded with Pillow. Audio and video are opened
    with PyAV: the first frame is decoded and every packet is demuxed (not
    decoded), so truncated files whose header promises more than their packets
    deliver are rejected. The duration comes from stream or container metadata,
    falling back to the packet timeline, then to decoding every frame. Paths and
    seekable files are streamed, never read into memory whole.

    Raw PCM has no header: only with ``raw_pcm_sample_rate`` are unrecognised
    bytes treated as s16le mono at that rate (text, such as an HTML or JSON
    error page, is still rejected).
    """
    opened = _Opened(source)
    content_type = _sniff(opened.head)
    if content_type is None:
        if raw_pcm_sample_rate is not None:
            return _probe_raw_pcm(opened, raw_pcm_sample_rate)
        hint = " (looks like text)" if _looks_like_text(opened.head) else ""
        raise _fail(_EXPECTED, opened.head, f"unrecognised data{hint}")
    if content_type.startswith("image/"):
        return _probe_image(opened, content_type)
    if content_type == "audio/wav":
        _check_wav_length(opened)
    return _probe_av(opened, content_type)


def _check_wav_length(opened: _Opened) -> None:
    """FFmpeg quietly shortens a WAV whose data chunk is cut off; we call that truncated."""
    head, offset = opened.head, 12
    while offset + 8 <= len(head):
        chunk_id, chunk_size = head[offset : offset + 4], int.from_bytes(head[offset + 4 : offset + 8], "little")
        if chunk_id == b"data":
            available = opened.size() - offset - 8
            # 0 and 0xFFFFFFFF are what streaming writers put before they know the size.
            if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                raise _fail("decodable audio/wav media", head,
                            f"truncated: data chunk declares {chunk_size} bytes but {available} are present")
            return
        offset += 8 + chunk_size + (chunk_size % 2)


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    return len(sample) >= 8 and all(b in (9, 10, 13) or 32 <= b < 127 for b in sample)


def _probe_raw_pcm(opened: _Opened, sample_rate: int) -> MediaInfo:
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"raw_pcm_sample_rate must be a positive integer, got {sample_rate!r}")
    expected = f"raw s16le mono PCM at {sample_rate} Hz"
    size = opened.size()
    if size == 0:
        raise _fail(expected, opened.head, "no data")
    if size % 2:
        raise _fail(expected, opened.head, f"odd length {size} is not whole 16-bit samples")
    if _looks_like_text(opened.head):
        raise _fail(expected, opened.head, "data looks like text, not audio samples")
    return MediaInfo(kind="audio", content_type="audio/pcm", codec="pcm_s16le",
                     duration_seconds=size / 2 / sample_rate, width=None, height=None, sample_rate=sample_rate)


def _probe_image(opened: _Opened, content_type: str) -> MediaInfo:
    from PIL import Image

    expected = f"a decodable {content_type} image"
    try:
        with Image.open(opened.target()) as image:
            image.verify()
        # verify() leaves the image unusable; reopen to decode the pixels.
        with Image.open(opened.target()) as image:
            image.load()
            width, height, pil_format = image.width, image.height, image.format
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, struct.error...) on bad data
        raise _fail(expected, opened.head, f"{type(exc).__name__}: {exc}") from exc
    return MediaInfo(kind="image", content_type=content_type,
                     codec=_IMAGE_CODECS.get(pil_format or "", (pil_format or "").lower() or None),
                     duration_seconds=None, width=width, height=height, sample_rate=None)


def _probe_av(opened: _Opened, sniffed: str) -> MediaInfo:
    import av

    expected = f"decodable {sniffed} media"
    try:
        with av.open(opened.target(), "r") as container:
            return _measure_container(container, sniffed, expected, opened.head)
    except MediaProbeError:
        raise
    except Exception as exc:  # FFmpeg errors surface as many OSError/ValueError subclasses
        raise _fail(expected, opened.head, f"{type(exc).__name__}: {exc}") from exc


def _measure_container(container: av.container.InputContainer, sniffed: str, expected: str,
                       head: bytes) -> MediaInfo:
    video, audio = container.streams.video, container.streams.audio
    if not video and not audio:
        raise _fail(expected, head, "no audio or video stream")
    stream = video[0] if video else audio[0]
    kind = "video" if video else "audio"
    content_type = sniffed if video or sniffed not in _AUDIO_ONLY_TYPES else _AUDIO_ONLY_TYPES[sniffed]
    if kind == "video" and not sniffed.startswith("video/"):
        raise _fail(expected, head, "unexpected video stream in an audio container")

    first_frame, packet_span, packet_count = _demux(container, stream)
    if packet_count == 0:
        raise _fail(expected, head, "no packets")
    if first_frame is None:
        raise _fail(expected, head, "no frame could be decoded")

    declared = _declared_duration(container, stream)
    if declared is not None and packet_span is not None and packet_span + _tolerance(declared) < declared:
        raise _fail(expected, head, f"truncated: packets cover {packet_span:.3f} s of the declared {declared:.3f} s")
    duration = declared if declared is not None else packet_span
    if duration is None:
        duration = _decoded_duration(container, stream)

    codec = stream.codec_context.codec.canonical_name
    if kind == "video":
        return MediaInfo(kind=kind, content_type=content_type, codec=codec, duration_seconds=duration,
                         width=first_frame.width, height=first_frame.height, sample_rate=None)
    return MediaInfo(kind=kind, content_type=content_type, codec=codec, duration_seconds=duration,
                     width=None, height=None, sample_rate=_audio_sample_rate(stream, codec))


def _demux(container: av.container.InputContainer, stream: av.stream.Stream
           ) -> tuple[object | None, float | None, int]:
    """Read every packet of ``stream``; decode until the first frame appears.

    Returns the first frame, the time span the packets cover (None when they carry
    no timestamps) and the packet count.
    """
    first_frame = None
    start: int | None = None
    end: int | None = None
    count = 0
    for packet in container.demux(stream):
        if packet.size == 0 and packet.pts is None:
            continue  # flush marker
        count += 1
        if packet.pts is not None:
            start = packet.pts if start is None else min(start, packet.pts)
            packet_end = packet.pts + (packet.duration or 0)
            end = packet_end if end is None else max(end, packet_end)
        if first_frame is None:
            frames = packet.decode()
            first_frame = frames[0] if frames else None
    if first_frame is None and count:
        frames = stream.codec_context.decode(None)
        first_frame = frames[0] if frames else None
    span = None
    if start is not None and end is not None and stream.time_base is not None and end > start:
        span = float((end - start) * stream.time_base)
    return first_frame, span, count


def _tolerance(declared: float) -> float:
    """Slack for encoder delay/padding between the declared duration and packet timestamps."""
    return max(0.15, 0.03 * declared)


def _declared_duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _decoded_duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """Last resort: decode everything and count samples (audio) or frames at the stream rate (video)."""
    container.seek(0)
    samples = frames = 0
    for frame in container.decode(stream):
        frames += 1
        samples += getattr(frame, "samples", 0)
    if stream.type == "audio" and stream.codec_context.sample_rate:
        return samples / stream.codec_context.sample_rate
    rate = stream.average_rate or stream.guessed_rate
    return float(frames / rate) if rate else None


def _audio_sample_rate(stream: av.stream.Stream, codec: str) -> int | None:
    extradata = stream.codec_context.extradata or b""
    if codec == "opus" and extradata.startswith(b"OpusHead") and len(extradata) >= 16:
        input_rate = int.from_bytes(extradata[12:16], "little")
        if input_rate:
            return input_rate
    return stream.codec_context.sample_rate or None


# --------------------------------------------------------------------------
# Posters: the small stills a gallery shows

POSTER_MAX_SIDE = 320
"""Largest side of a poster; images no larger than this are their own poster."""
_POSTER_AT_SECONDS = 1.0  # the first frame is often a fade from black


def media_poster(source: str | os.PathLike, kind: str, *, max_side: int = POSTER_MAX_SIDE, quality: int = 80) -> bytes:
    """A small JPEG still of the ``kind`` ("video" or "image") media at ``source`` (a local
    path), at most ``max_side`` pixels wide or high. For a video: its frame at one second,
    or at a third of a shorter clip, decoding from the start only up to that frame.
    Raises ``MediaProbeError`` when no still can be taken."""
    image = _video_still(source) if kind == "video" else _image_still(source)
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _video_still(source: str | os.PathLike) -> Image.Image:
    import av

    try:
        with av.open(os.fspath(source), "r") as container:
            if not container.streams.video:
                raise MediaProbeError("no video stream to take a poster frame from")
            stream = container.streams.video[0]
            declared = _declared_duration(container, stream)
            target = min(_POSTER_AT_SECONDS, declared / 3) if declared else 0.0
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is None or frame.time >= target:
                    break
            if chosen is None:
                raise MediaProbeError("no frame could be decoded")
            return chosen.to_image()
    except MediaProbeError:
        raise
    except Exception as exc:  # FFmpeg errors surface as many OSError/ValueError subclasses
        raise MediaProbeError(f"cannot take a poster frame: {type(exc).__name__}: {exc}") from exc


def _image_still(source: str | os.PathLike) -> Image.Image:
    from PIL import Image as PILImage

    try:
        with PILImage.open(os.fspath(source)) as image:
            image.seek(0)  # the first frame of an animated GIF/WEBP
            return image.copy()
    except Exception as exc:  # Pillow raises many types for bad data
        raise MediaProbeError(f"cannot read the image: {type(exc).__name__}: {exc}") from exc
