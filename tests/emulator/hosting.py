"""Hosted result media and cached synthetic media makers."""

from __future__ import annotations

import importlib
import mimetypes
import threading
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from providers.media.synthesis import AudioClip

T = TypeVar("T")

_EXTENSIONS = {
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
    "audio/aac": ".aac",
    "audio/pcm": ".pcm",
}


def extension_for(content_type: str) -> str:
    """File extension (with dot) for a content type, or '' when unknown."""
    kind = content_type.split(";")[0].strip().lower()
    return _EXTENSIONS.get(kind) or mimetypes.guess_extension(kind) or ""


@dataclass(frozen=True)
class HostedMedia:
    """One blob served at a result URL."""

    id: str
    data: bytes
    content_type: str
    provider: str | None


class MediaHost:
    """Thread-safe store of hosted blobs, keyed by a random id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, HostedMedia] = {}

    def add(self, data: bytes, content_type: str, provider: str | None) -> HostedMedia:
        """Store ``data`` and return its record (with a fresh id)."""
        item = HostedMedia(uuid.uuid4().hex, bytes(data), content_type, provider)
        with self._lock:
            self._items[item.id] = item
        return item

    def get(self, media_id: str) -> HostedMedia | None:
        """The hosted blob with ``media_id`` or None."""
        with self._lock:
            return self._items.get(media_id)

    def get_by_url(self, url: str) -> HostedMedia | None:
        """The hosted blob a result URL points to, or None."""
        last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        return self.get(last.split(".", 1)[0])

    def clear(self) -> None:
        """Forget all hosted blobs."""
        with self._lock:
            self._items.clear()


class MediaMakers:
    """Cached wrappers around ``providers.media.synthesis`` (imported lazily on first use)."""

    def __init__(self, module_name: str = "providers.media.synthesis") -> None:
        self.module_name = module_name
        self._lock = threading.Lock()
        self._cache: dict[Hashable, Any] = {}

    def _module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def _cached(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[no-any-return]
        value = make()  # outside the lock: making media is slow; a rare duplicate is harmless
        with self._lock:
            return self._cache.setdefault(key, value)  # type: ignore[no-any-return]

    def video(
        self, prompt: str, width: int, height: int, duration: float, fps: int, seed: int
    ) -> bytes:
        """``providers.media.synthesis.make_video`` output, cached by arguments."""
        key = ("video", prompt, width, height, duration, fps, seed)
        return self._cached(
            key,
            lambda: self._module().make_video(prompt, width, height, duration, fps=fps, seed=seed),
        )

    def image(
        self, prompt: str, width: int, height: int, image_format: str, seed: int
    ) -> bytes:
        """``providers.media.synthesis.make_image`` output, cached by arguments."""
        key = ("image", prompt, width, height, image_format, seed)
        return self._cached(
            key,
            lambda: self._module().make_image(
                prompt, width, height, image_format=image_format, seed=seed
            ),
        )

    def audio(
        self,
        text: str,
        audio_format: str,
        sample_rate: int | None,
        bitrate_kbps: int | None,
        duration: float | None,
        seed: int,
    ) -> AudioClip:
        """``providers.media.synthesis.make_audio`` output (an ``AudioClip``), cached by arguments."""
        key = ("audio", text, audio_format, sample_rate, bitrate_kbps, duration, seed)
        return self._cached(
            key,
            lambda: self._module().make_audio(
                text,
                audio_format=audio_format,
                sample_rate=sample_rate,
                bitrate_kbps=bitrate_kbps,
                duration_seconds=duration,
                seed=seed,
            ),
        )
