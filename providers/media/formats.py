"""Media format facts shared by the providers: content types, file extensions, sizes and
aspect ratios."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

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
