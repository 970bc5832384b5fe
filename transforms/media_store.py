"""WriteMedia: put a response's media under ``<output>/media/<modality>/<key>[-<n>].<ext>``.

Each output is first spooled to a local temporary file (streamed, hashed on the
way), then probed: it must decode as the modality's kind of media, and the measured
duration / size go into the row. Only then is it uploaded under its final name,
atomically. Memory stays bounded whatever the media's size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

import requests

from schemas.results import StoredMedia

from .storage import Storage

log = logging.getLogger(__name__)

CHUNK = 1 << 20
DOWNLOAD_ATTEMPTS = 4
MODALITY_KIND = {"video": "video", "image": "image", "tts": "audio", "sts": "audio"}
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class MediaStoreError(Exception):
    """The media could not be fetched or is not what the row asked for."""


@dataclass
class Spooled:
    path: str
    size: int
    sha256: str


class MediaStore:
    """Streams, validates and atomically stores generated media."""

    def __init__(self, storage: Storage, session: requests.Session | None = None, spool_dir: str | None = None) -> None:
        self.storage = storage
        self.session = session or requests.Session()
        self.spool_dir = spool_dir

    def store(self, modality: str, key: str, response: Any, raw_pcm_sample_rate: int | None = None) -> list[StoredMedia]:
        """Store every output of ``response``; raise MediaStoreError when one is unusable."""
        stored = []
        for index, item in enumerate(media_items(modality, response)):
            with self._spool(item) as spooled:
                stored.append(self._publish(modality, key, index, spooled, raw_pcm_sample_rate))
        if not stored:
            raise MediaStoreError("the response holds no media")
        return stored

    def _publish(self, modality: str, key: str, index: int, spooled: Spooled, raw_pcm_sample_rate: int | None) -> StoredMedia:
        from providers.media import EXTENSIONS, MediaProbeError, probe_media

        try:
            info = probe_media(spooled.path, raw_pcm_sample_rate=raw_pcm_sample_rate)
        except MediaProbeError as exc:
            raise MediaStoreError(f"output {index} does not decode as media: {exc}") from None
        expected = MODALITY_KIND[modality]
        if info.kind != expected:
            raise MediaStoreError(f"output {index} is {info.kind} ({info.content_type}), expected {expected}")
        extension = EXTENSIONS.get(info.content_type, "bin")
        relpath = f"media/{modality}/{key}{'' if index == 0 else f'-{index}'}.{extension}"
        self.storage.put_file(spooled.path, relpath)
        return StoredMedia(
            uri=self.storage.uri(relpath),
            content_type=info.content_type,
            bytes=spooled.size,
            sha256=spooled.sha256,
            duration_seconds=info.duration_seconds,
            width=info.width,
            height=info.height,
        )

    def _spool(self, item: Any) -> "_SpoolContext":
        return _SpoolContext(self, item)

    def write_item(self, item: Any, sink: BinaryIO) -> None:
        """Write one media item (URL, gs:// or s3:// URI, base64, data URL or MediaContent) to ``sink``."""
        if isinstance(item, dict):
            content = item.get("content", b"")
            sink.write(content if isinstance(content, (bytes, bytearray)) else decode_base64(str(content)))
        elif isinstance(item, (bytes, bytearray)):
            sink.write(item)
        elif isinstance(item, str) and item.startswith(("http://", "https://")):
            self._download(item, sink)
        elif isinstance(item, str) and "://" in item.split(",", 1)[0] and not item.startswith("data:"):
            self._copy_uri(item, sink)
        elif isinstance(item, str):
            sink.write(decode_base64(item))
        else:
            raise MediaStoreError(f"unsupported media value of type {type(item).__name__}")

    def _download(self, url: str, sink: BinaryIO) -> None:
        """Stream ``url`` into ``sink``, retrying transient failures from the start."""
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            sink.seek(0)
            sink.truncate()
            try:
                self._download_once(url, sink)
                return
            except _TransientDownloadError as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise MediaStoreError(f"download failed after {attempt} attempts: {exc}") from None
                log.info("retrying download of %s: %s", _short(url), exc)
                time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))

    def _download_once(self, url: str, sink: BinaryIO) -> None:
        try:
            with self.session.get(url, stream=True, timeout=(10, 120)) as response:
                if response.status_code in TRANSIENT_STATUS:
                    raise _TransientDownloadError(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise MediaStoreError(
                        f"download of {_short(url)} refused with HTTP {response.status_code} (expired or missing result URL?)"
                    )
                content_type = response.headers.get("content-type", "")
                if content_type.startswith(("text/html", "application/json", "text/plain", "application/xml")):
                    raise MediaStoreError(f"{_short(url)} answered {content_type!r}, not media")
                expected = response.headers.get("content-length")
                received = 0
                for chunk in response.iter_content(chunk_size=CHUNK):
                    sink.write(chunk)
                    received += len(chunk)
        except requests.RequestException as exc:
            raise _TransientDownloadError(f"{type(exc).__name__}: {exc}") from None
        if expected and expected.isdigit() and received != int(expected):
            raise _TransientDownloadError(f"truncated: {received} of {expected} bytes")

    def _copy_uri(self, uri: str, sink: BinaryIO) -> None:
        import fsspec

        with fsspec.open(uri, "rb").open() as source:
            while chunk := source.read(CHUNK):
                sink.write(chunk)


class _TransientDownloadError(Exception):
    pass


class _SpoolContext:
    """Spools a media item into a temporary file that is removed on exit."""

    def __init__(self, store: MediaStore, item: Any) -> None:
        self.store = store
        self.item = item
        self.path = ""

    def __enter__(self) -> Spooled:
        handle, self.path = tempfile.mkstemp(prefix="mediagen-", dir=self.store.spool_dir)
        with os.fdopen(handle, "w+b") as sink:
            self.store.write_item(self.item, sink)
            sink.flush()
        return Spooled(self.path, os.path.getsize(self.path), _sha256_of(self.path))

    def __exit__(self, *exc: Any) -> None:
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def media_items(modality: str, response: Any) -> Iterator[Any]:
    """The media values of a response, in order."""
    if modality == "video":
        yield from (response.videos or [response.video])
    elif modality == "image":
        yield from response.images
    else:
        yield response.audio


def decode_base64(value: str) -> bytes:
    payload = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaStoreError(f"media value {value[:32]!r}... is neither a URL nor base64") from None


def _short(url: str) -> str:
    """A URL without its query string (signed URLs carry credentials there)."""
    return url.split("?", 1)[0]
