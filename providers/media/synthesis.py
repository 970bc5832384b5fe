"""Real, playable media made locally: the offline mock provider, the test emulator and the
benchmarks use these makers for genuine H.264/MP4 video, PNG/JPEG/WEBP images and
MP3/WAV/PCM/FLAC/Opus audio. Deterministic: the same arguments give the same bytes.

PyAV, Pillow and NumPy are imported inside the functions."""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import wave
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image, ImageFont
from providers.media.formats import CONTENT_TYPES, _AUDIO_FORMATS, _BITRATES, _IMAGE_FORMATS, _MAX_AUDIO_SECONDS, _MAX_AUTO_SECONDS, _MAX_DRAWN_CHARS, _MAX_SAMPLE_RATE, _MIN_AUTO_SECONDS, _MP3_RATES, _OPUS_RATES, _SECONDS_PER_CHAR, _check_dimensions
from providers.media.probe import MediaProbeError, _declared_duration

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
# Posters: the small stills a gallery shows

POSTER_MAX_SIDE = 320
"""Largest side of a poster; images no larger than this are their own poster."""
_POSTER_AT_SECONDS = 1.0  # the first frame is often a fade from black


def media_poster(source: str | os.PathLike | bytes, kind: str, *, max_side: int = POSTER_MAX_SIDE,
                 quality: int = 80) -> bytes:
    """A small JPEG still of the ``kind`` ("video" or "image") media at ``source`` (a local
    path, or the media's bytes), at most ``max_side`` pixels wide or high. For a video: its frame at one second,
    or at a third of a shorter clip, decoding from the start only up to that frame.
    Raises ``MediaProbeError`` when no still can be taken."""
    image = _video_still(source) if kind == "video" else _image_still(source)
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _readable(source: str | os.PathLike | bytes) -> str | io.BytesIO:
    """What PyAV and Pillow open: a path, or the bytes as a file."""
    return io.BytesIO(source) if isinstance(source, bytes) else os.fspath(source)


def _video_still(source: str | os.PathLike | bytes) -> Image.Image:
    import av

    try:
        with av.open(_readable(source), "r") as container:
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


def _image_still(source: str | os.PathLike | bytes) -> Image.Image:
    from PIL import Image as PILImage

    try:
        with PILImage.open(_readable(source)) as image:
            image.seek(0)  # the first frame of an animated GIF/WEBP
            return image.copy()
    except Exception as exc:  # Pillow raises many types for bad data
        raise MediaProbeError(f"cannot read the image: {type(exc).__name__}: {exc}") from exc
