"""WriteMedia: put a response's media under ``<output>/media/<modality>/<key>[-<n>].<ext>``.

An output named by a URL is first spooled to a local temporary file (streamed, hashed
on the way); one the provider answered with in memory (bytes, base64, a data URL) stays
in memory, since it is already whole there. Either is then probed: it must decode as the
modality's kind of media, and the measured duration / size go into the row. Only then is
it uploaded under its final name, atomically. Memory stays bounded whatever the size of
downloaded media.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import tempfile
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

import requests
import urllib3

from providers.core.http import BodyTooSlow, decode_base64 as _decode_base64, is_transient_status, stream_body, stream_get
from schemas.media import UrlHeaders
from schemas.modalities import modality_spec
from schemas.results import StoredMedia

from .storage import Storage

log = logging.getLogger(__name__)

CHUNK = 1 << 20
DOWNLOAD_ATTEMPTS = 4
DOWNLOAD_TIMEOUT = 600.0
"""Seconds all downloads of one response may take, unless ``store`` is given a deadline."""
OBJECT_STORE_PROTOCOLS = ("gs://", "gcs://", "s3://", "s3a://")
"""The only non-HTTP URIs a provider answer may point the worker at (never file://)."""


class MediaStoreError(Exception):
    """The media could not be fetched or is not what the row asked for."""


@dataclass
class Spooled:
    """One output ready to publish: a local spool file (``path``) or the bytes themselves
    (``data``), with its size and sha256."""

    path: str
    size: int
    sha256: str
    data: bytes | None = None

    @classmethod
    def of(cls, data: bytes) -> "Spooled":
        return cls("", len(data), hashlib.sha256(data).hexdigest(), data)

    @property
    def source(self) -> str | bytes:
        """What the prober and the poster maker read: the bytes, or the spool file."""
        return self.data if self.data is not None else self.path


class MediaStore:
    """Streams, validates and atomically stores generated media."""

    def __init__(self, storage: Storage, session: requests.Session | None = None, spool_dir: str | None = None,
                 min_bytes_per_second: float | None = None) -> None:
        self.storage = storage
        self.session = session or requests.Session()
        self.spool_dir = spool_dir
        self.min_bytes_per_second = min_bytes_per_second  # None: providers.core.http.MIN_BYTES_PER_SECOND

    def store(self, modality: str, key: str, response: Any, raw_pcm_sample_rate: int | None = None,
              timeout: float | None = None) -> list[StoredMedia]:
        """Store every output of ``response``; raise MediaStoreError when one is unusable.

        Downloads are bounded: all of them together by ``timeout`` seconds (default
        :data:`DOWNLOAD_TIMEOUT`; pass what is left of the attempt's deadline), each by a
        minimum throughput, so a result URL trickling bytes cannot hold a worker.
        """
        stored = []
        deadline = time.monotonic() + (DOWNLOAD_TIMEOUT if timeout is None else timeout)
        for index, item in enumerate(media_items(modality, response)):
            data = in_memory_bytes(item)
            if data is not None:  # already whole in memory: no spool file, no second read
                stored.append(self._publish(modality, key, index, Spooled.of(data), raw_pcm_sample_rate))
                continue
            with self._spool(item, deadline, _url_headers(response, item)) as spooled:
                stored.append(self._publish(modality, key, index, spooled, raw_pcm_sample_rate))
        if not stored:
            raise MediaStoreError("the response holds no media")
        return stored

    def _publish(self, modality: str, key: str, index: int, spooled: Spooled, raw_pcm_sample_rate: int | None) -> StoredMedia:
        from providers.media.formats import EXTENSIONS
        from providers.media.probe import MediaProbeError, probe_media

        try:
            info = probe_media(spooled.source, raw_pcm_sample_rate=raw_pcm_sample_rate)
        except MediaProbeError as exc:
            raise MediaStoreError(f"output {index} does not decode as media: {exc}") from None
        expected = modality_spec(modality).media_kind
        if info.kind != expected:
            raise MediaStoreError(f"output {index} is {info.kind} ({info.content_type}), expected {expected}")
        extension = EXTENSIONS.get(info.content_type, "bin")
        relpath = f"media/{modality}/{key}{'' if index == 0 else f'-{index}'}.{extension}"
        if spooled.data is not None:
            self.storage.write_bytes(relpath, spooled.data, info.content_type)
        else:
            self.storage.put_file(spooled.path, relpath, info.content_type)
        if needs_poster(info.kind, info.width, info.height):
            store_poster(self.storage, relpath, spooled.source, info.kind)
        return StoredMedia(
            uri=self.storage.uri(relpath),
            content_type=info.content_type,
            bytes=spooled.size,
            sha256=spooled.sha256,
            duration_seconds=info.duration_seconds,
            width=info.width,
            height=info.height,
        )

    def _spool(self, item: Any, deadline: float | None = None, headers: UrlHeaders | None = None) -> "_SpoolContext":
        return _SpoolContext(self, item, deadline, headers)

    def write_item(self, item: Any, sink: BinaryIO, deadline: float | None = None,
                   headers: UrlHeaders | None = None) -> None:
        """Write one media item (URL, gs:// or s3:// URI, base64, data URL or MediaContent) to ``sink``;
        a download ends by ``deadline`` (``time.monotonic()``; default: :data:`DOWNLOAD_TIMEOUT` from now).
        ``headers``: what an authenticated result URL is fetched with (the provider's credentials)."""
        data = in_memory_bytes(item)
        if data is not None:
            sink.write(data)
        elif isinstance(item, str) and item.startswith(("http://", "https://")):
            self._download(item, sink, deadline or time.monotonic() + DOWNLOAD_TIMEOUT, headers)
        elif isinstance(item, str) and item.startswith(OBJECT_STORE_PROTOCOLS):
            self._copy_uri(item, sink)
        elif isinstance(item, str):
            raise MediaStoreError(f"refusing to read {item.split('://', 1)[0]}:// media named by a provider answer")
        else:
            raise MediaStoreError(f"unsupported media value of type {type(item).__name__}")

    def _download(self, url: str, sink: BinaryIO, deadline: float, headers: UrlHeaders | None = None) -> None:
        """Stream ``url`` into ``sink``, retrying transient failures from the start, within the deadline."""
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            sink.seek(0)
            sink.truncate()
            try:
                self._download_once(url, sink, deadline, headers)
                return
            except _TransientDownloadError as exc:
                backoff = min(8.0, 0.5 * 2 ** (attempt - 1))
                if attempt == DOWNLOAD_ATTEMPTS or time.monotonic() + backoff >= deadline:
                    raise MediaStoreError(f"download of {_short(url)} failed after {attempt} attempts: {exc}") from None
                log.info("retrying download of %s: %s", _short(url), exc)
                time.sleep(backoff)

    def _download_once(self, url: str, sink: BinaryIO, deadline: float, headers: UrlHeaders | None = None) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MediaStoreError(f"download of {_short(url)} not finished before its deadline")
        try:
            sent = headers.reveal() if headers is not None else None
            with stream_get(self.session, url, headers=sent, timeout=(min(10.0, remaining), remaining)) as response:
                if is_transient_status(response.status_code):
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
                for chunk in stream_body(response, deadline, min_bytes_per_second=self.min_bytes_per_second):
                    sink.write(chunk)
                    received += len(chunk)
        except BodyTooSlow as exc:
            raise MediaStoreError(f"download of {_short(url)} too slow: {exc}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _TransientDownloadError(type(exc).__name__) from None
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

    def __init__(self, store: MediaStore, item: Any, deadline: float | None = None,
                 headers: UrlHeaders | None = None) -> None:
        self.store = store
        self.item = item
        self.deadline = deadline
        self.headers = headers
        self.path = ""

    def __enter__(self) -> Spooled:
        handle, self.path = tempfile.mkstemp(prefix="mediagen-", dir=self.store.spool_dir)
        try:
            with os.fdopen(handle, "w+b") as file:
                sink = HashingSink(file)
                self.store.write_item(self.item, sink, self.deadline, self.headers)  # type: ignore[arg-type]
                file.flush()
        except BaseException:  # a failed download: ``with`` calls no __exit__ when __enter__ raises
            self.__exit__()
            raise
        return Spooled(self.path, sink.size, sink.hexdigest())

    def __exit__(self, *exc: Any) -> None:
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)


def poster_path(relpath: str) -> str:
    """Where the poster of the media at ``relpath`` is kept: beside it, ``<name>.poster.jpg``."""
    return f"{posixpath.splitext(relpath)[0]}.poster.jpg"


def needs_poster(kind: str, width: int | None, height: int | None) -> bool:
    """Every video gets a poster (a still); an image only when larger than a poster."""
    from providers.media.synthesis import POSTER_MAX_SIDE

    return kind == "video" or (kind == "image" and max(width or 0, height or 0) > POSTER_MAX_SIDE)


def store_poster(storage: Storage, relpath: str, local_path: str | bytes, kind: str) -> bool:
    """Write the poster of stored media (a local copy at ``local_path``, or its bytes) beside it.

    A poster is a convenience for the gallery: when none can be made, log it and return
    False rather than fail a row whose media were already validated and stored."""
    from providers.media.probe import MediaProbeError
    from providers.media.synthesis import media_poster

    try:
        storage.write_bytes(poster_path(relpath), media_poster(local_path, kind), "image/jpeg")
    except (MediaProbeError, OSError) as exc:
        log.warning("no poster for %s: %s", relpath, exc)
        return False
    return True


class HashingSink:
    """A binary file being written, hashed (sha256) and counted on the way: no second pass
    over the file. Rewinding to the start (a retried download) starts the hash over."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.size = 0
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        self.size += len(data)
        return self.file.write(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if (offset, whence) != (0, os.SEEK_SET):
            raise ValueError("a hashing sink can only rewind to the start")
        self._digest = hashlib.sha256()
        self.size = 0
        return self.file.seek(0)

    def truncate(self, size: int | None = None) -> int:
        if size not in (None, self.size):
            raise ValueError("a hashing sink can only be truncated where it is")
        return self.file.truncate(size)

    def flush(self) -> None:
        self.file.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def media_items(modality: str, response: Any) -> Iterator[Any]:
    """The media values of a response, in order."""
    kind = modality_spec(modality).media_kind
    if kind == "video":
        yield from (response.videos or [response.video])
    elif kind == "image":
        yield from response.images
    else:
        yield response.audio


def in_memory_bytes(item: Any) -> bytes | None:
    """The bytes of a media value the provider answered with in memory (MediaContent,
    bytes, base64 or a data URL); None for a value naming media elsewhere (a URL, an
    object-store URI), which is streamed instead."""
    if isinstance(item, dict):
        content = item.get("content", b"")
        return bytes(content) if isinstance(content, (bytes, bytearray)) else decode_base64(str(content))
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if isinstance(item, str) and ("://" not in item.split(",", 1)[0] or item.startswith("data:")):
        return decode_base64(item)
    return None


def decode_base64(value: str) -> bytes:
    return _decode_base64(value, lambda: MediaStoreError(f"media value {value[:32]!r}... is neither a URL nor base64"))


def _url_headers(response: Any, item: Any) -> UrlHeaders | None:
    """The credentials a result URL of ``response`` is fetched with, if it needs any."""
    lookup = getattr(response, "url_headers", None)
    return lookup(item) if isinstance(item, str) and lookup is not None else None


def _short(url: str) -> str:
    """A URL without its query string (signed URLs carry credentials there)."""
    return url.split("?", 1)[0]
