"""Wire level of the emulator: a keep-alive HTTP/1.1 ThreadingHTTPServer.

The handler only reads requests and writes replies; every decision is made by
:meth:`ProviderEmulator._serve` in :mod:`tests.emulator.core`.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from requests.structures import CaseInsensitiveDict

from .messages import EmuResponse

CHUNK_SIZE = 64 * 1024
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass
class WireRequest:
    """A request exactly as read from the socket."""

    method: str
    target: str
    headers: Message
    body: bytes
    client: tuple[str, int]


@dataclass
class Reply:
    """What to send back: a response (optionally cut after ``truncate_to`` body
    bytes), or nothing at all with ``reset=True``."""

    response: EmuResponse | None = None
    truncate_to: int | None = None
    reset: bool = False
    head_only: bool = False


class BadFraming(Exception):
    """The request body could not be read (bad Content-Length / chunking)."""


class EmulatorHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its emulator and its open connections."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, serve: Callable[[WireRequest, Callable[[Reply], None]], None]) -> None:
        self.serve = serve
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), EmulatorRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        """Close idle keep-alive connections (used by ``stop()``)."""
        with self._conn_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away; report anything else."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Reads one request at a time from a persistent connection."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are dropped after this
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default per-request stderr logging."""

    def _handle_any(self) -> None:
        try:
            body = self._read_body()
        except BadFraming as exc:
            self._send(Reply(EmuResponse.error(400, {"error": str(exc)})))
            self.close_connection = True
            return
        wire = WireRequest(self.command, self.path, self.headers, body, self.client_address)
        self.server.serve(wire, self._send)

    # -- reading ---------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError as exc:
            raise BadFraming("invalid Content-Length") from exc
        if length < 0:
            raise BadFraming("invalid Content-Length")
        body = self.rfile.read(length)
        if len(body) != length:
            raise BadFraming("request body shorter than Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise BadFraming("invalid chunked body") from exc
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(65537)

    # -- writing ---------------------------------------------------------------

    def _send(self, reply: Reply) -> None:
        try:
            if reply.reset or reply.response is None:
                self._reset_connection()
            elif reply.response.is_streaming:
                self._send_stream(reply)
            else:
                self._send_fixed(reply)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def _send_head(self, response: EmuResponse, framing: dict[str, str]) -> None:
        """Status line and headers; ``framing`` (length/chunked) always wins."""
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(response.headers)
        if response.content_type and "Content-Type" not in headers:
            headers["Content-Type"] = response.content_type
        for key in ("Content-Length", "Transfer-Encoding"):
            headers.pop(key, None)
        headers.update(framing)
        self.send_response(response.status)
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.end_headers()

    def _send_fixed(self, reply: Reply) -> None:
        response = reply.response
        assert response is not None
        body = bytes(response.body)  # type: ignore[arg-type]
        self._send_head(response, {"Content-Length": str(len(body))})
        if reply.head_only or self.command == "HEAD":
            return
        cut = reply.truncate_to
        if cut is not None and 0 <= cut < len(body):
            self._write_chunks(body[:cut])
            self._close_gracefully()
            return
        self._write_chunks(body)

    def _send_stream(self, reply: Reply) -> None:
        response = reply.response
        assert response is not None
        self._send_head(response, {"Transfer-Encoding": "chunked"})
        if reply.head_only or self.command == "HEAD":
            return
        budget = reply.truncate_to
        for index, chunk in enumerate(response.body):  # type: ignore[union-attr]
            if index and response.chunk_delay:
                time.sleep(response.chunk_delay)
            if budget is not None and len(chunk) >= budget:
                self.wfile.write(b"%x\r\n%s" % (len(chunk), chunk[:budget]))
                self._close_gracefully()
                return
            if budget is not None:
                budget -= len(chunk)
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunks(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_SIZE):
            self.wfile.write(view[start : start + CHUNK_SIZE])

    def _close_gracefully(self) -> None:
        """Send FIN after a partial body so the client sees a short read."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _reset_connection(self) -> None:
        """Abort the connection with a TCP RST and no response at all."""
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.connection.close()
        except OSError:
            pass


for _method in METHODS:
    setattr(EmulatorRequestHandler, f"do_{_method}", EmulatorRequestHandler._handle_any)
