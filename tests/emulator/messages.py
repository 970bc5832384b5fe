"""Request/response value types shared by the emulator core and routes modules."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NamedTuple

from requests.structures import CaseInsensitiveDict

from .faults import Fault

if TYPE_CHECKING:  # pragma: no cover
    from .core import ProviderEmulator

JSONish = dict[str, Any] | list[Any]


class UploadedFile(NamedTuple):
    """One file part of a multipart/form-data request."""

    name: str
    filename: str
    content_type: str
    data: bytes


class RecordedFile(NamedTuple):
    """A file as kept in :class:`RecordedRequest.files`."""

    filename: str
    content_type: str
    size: int
    data: bytes


@dataclass
class EmuRequest:
    """What a route handler receives.

    ``path`` is relative to the provider prefix (``/fal/a/b`` -> ``/a/b``);
    ``full_path`` includes the prefix; both are percent-decoded and exclude the
    query string (``raw_path`` is the undecoded full path). ``json`` is parsed
    only for JSON content types; ``form``/``form_multi`` hold urlencoded or
    multipart text fields and ``files`` the multipart file parts. ``faults``
    are the provider-specific faults taken for this request (see :meth:`take`).
    """

    method: str
    path: str
    full_path: str
    raw_path: str
    route_name: str | None
    provider: str
    params: dict[str, str | None]
    query: dict[str, str]
    query_multi: dict[str, list[str]]
    headers: CaseInsensitiveDict[str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    form_multi: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)
    is_multipart: bool = False
    faults: list[Fault] = field(default_factory=list)
    client: tuple[str, int] = ("", 0)
    emu: ProviderEmulator | None = None

    def take(self, kind: str) -> Fault | None:
        """Remove and return the first pending fault of ``kind`` (e.g. ``'moderation'``)."""
        for index, fault in enumerate(self.faults):
            if fault.kind == kind:
                return self.faults.pop(index)
        return None

    def file(self, name: str) -> UploadedFile | None:
        """First uploaded file for form field ``name``, or None."""
        parts = self.files.get(name)
        return parts[0] if parts else None

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-cased and without parameters."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


@dataclass
class EmuResponse:
    """What a route handler returns. Build it with the classmethod factories.

    ``body`` is bytes, or an iterable of byte chunks for a streamed
    (``Transfer-Encoding: chunked``) response made by :meth:`stream_`/:meth:`sse_`.
    """

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunk_delay: float = 0.0

    @property
    def is_streaming(self) -> bool:
        """True for chunked responses (body is an iterable of chunks)."""
        return not isinstance(self.body, (bytes, bytearray, memoryview))

    @classmethod
    def json_(
        cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> EmuResponse:
        """A JSON response (``application/json``)."""
        return cls(status, json.dumps(obj).encode(), "application/json", dict(headers or {}))

    @classmethod
    def bytes_(
        cls,
        data: bytes,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> EmuResponse:
        """A binary response with the given content type."""
        return cls(status, bytes(data), content_type, dict(headers or {}))

    @classmethod
    def text_(
        cls,
        text: str,
        status: int = 200,
        content_type: str = "text/plain; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> EmuResponse:
        """A text response (UTF-8)."""
        return cls(status, text.encode(), content_type, dict(headers or {}))

    @classmethod
    def error(
        cls, status: int, obj_or_text: Any = None, headers: Mapping[str, str] | None = None
    ) -> EmuResponse:
        """An error response: dict/list -> JSON, str -> text, bytes -> octets,
        None -> ``{"error": "<reason phrase>"}``."""
        if obj_or_text is None:
            obj_or_text = {"error": _reason(status)}
        if isinstance(obj_or_text, (bytes, bytearray)):
            return cls.bytes_(obj_or_text, status=status, headers=headers)
        if isinstance(obj_or_text, str):
            return cls.text_(obj_or_text, status=status, headers=headers)
        return cls.json_(obj_or_text, status=status, headers=headers)

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> EmuResponse:
        """A response without a body."""
        return cls(status, b"", None, dict(headers or {}))

    @classmethod
    def stream_(
        cls,
        chunks: Iterable[bytes],
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        chunk_delay: float = 0.0,
    ) -> EmuResponse:
        """A chunked response sending each item of ``chunks`` as it is produced,
        sleeping ``chunk_delay`` seconds between chunks."""
        return cls(status, chunks, content_type, dict(headers or {}), chunk_delay)

    @classmethod
    def sse_(
        cls,
        events: Iterable[Any],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        event_delay: float = 0.0,
    ) -> EmuResponse:
        """A ``text/event-stream`` response. Each event is a dict/list (sent as
        ``data: <json>``), a str (sent as ``data: <str>``) or an
        ``(event_name, payload)`` tuple."""
        return cls.stream_(
            _sse_frames(events), "text/event-stream", status, headers, event_delay
        )


def _sse_frames(events: Iterable[Any]) -> Iterator[bytes]:
    for event in events:
        name = None
        if isinstance(event, tuple):
            name, event = event
        data = event if isinstance(event, str) else json.dumps(event)
        lines = [f"event: {name}"] if name else []
        lines += [f"data: {line}" for line in data.split("\n")]
        yield ("\n".join(lines) + "\n\n").encode()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


@dataclass
class RecordedRequest:
    """A request as seen by the emulator, kept for test assertions.

    ``received_at`` is ``time.monotonic()`` (use differences, e.g. to check
    back-off gaps). ``status`` is the status sent back (None for a connection
    reset or while in flight) and ``fault`` the kind of fault taken, if any.
    """

    method: str
    path: str
    full_path: str
    route_name: str | None
    provider: str
    headers: CaseInsensitiveDict[str]
    query: dict[str, str]
    query_multi: dict[str, list[str]]
    json: Any
    form: dict[str, str]
    form_multi: dict[str, list[str]]
    files: dict[str, list[RecordedFile]]
    body: bytes
    received_at: float
    params: dict[str, str | None] = field(default_factory=dict)
    client: tuple[str, int] = ("", 0)
    status: int | None = None
    fault: str | None = None

    @classmethod
    def of(cls, req: EmuRequest, received_at: float) -> RecordedRequest:
        """Snapshot an :class:`EmuRequest`."""
        files = {
            name: [RecordedFile(f.filename, f.content_type, len(f.data), f.data) for f in parts]
            for name, parts in req.files.items()
        }
        return cls(
            method=req.method,
            path=req.path,
            full_path=req.full_path,
            route_name=req.route_name,
            provider=req.provider,
            headers=CaseInsensitiveDict(req.headers),
            query=dict(req.query),
            query_multi={k: list(v) for k, v in req.query_multi.items()},
            json=req.json,
            form=dict(req.form),
            form_multi={k: list(v) for k, v in req.form_multi.items()},
            files=files,
            body=req.body,
            received_at=received_at,
            params=dict(req.params),
            client=req.client,
        )
