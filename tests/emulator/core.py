"""The provider emulator: one local HTTP server speaking many providers' wire protocols.

Every provider lives under its own path prefix (``/fal/...``, ``/openai/...``);
routes modules in :mod:`tests.emulator.routes` register that provider's
endpoints on a :class:`ProviderEmulator`. The core supplies routing, body
parsing, auth checks, a time-driven job store, hosted result media, fault
injection and request recording. See ``tests/emulator/README.md``.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from requests.structures import CaseInsensitiveDict

from .faults import Fault, FaultQueue
from .hosting import HostedMedia, MediaHost, MediaMakers, extension_for
from .jobs import JobStore
from .messages import EmuRequest, EmuResponse, RecordedRequest
from .parsing import first_values, parse_body, parse_query
from .routing import Handler, Match, Route, Router
from .server import EmulatorHTTPServer, Reply, WireRequest

if TYPE_CHECKING:  # pragma: no cover
    from providers.media.synthesis import AudioClip

MEDIA_PROVIDER = "media"
MEDIA_ROUTE = "media"
DEFAULT_ROUTES_PACKAGE = f"{__package__}.routes"
_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}
_EXPIRED_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message></Error>"
)


class ConcurrencyTracker:
    """Counts in-flight requests per key and remembers the peak.

    :meth:`reset_peaks` starts a new generation: requests that began before it
    no longer count, so a straggler from an earlier test cannot inflate a peak.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._current: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()

    @contextmanager
    def track(self, key: str) -> Iterator[None]:
        """Count one in-flight request for ``key`` while the block runs."""
        with self._lock:
            generation = self._generation
            self._current[key] += 1
            self._peak[key] = max(self._peak[key], self._current[key])
        try:
            yield
        finally:
            with self._lock:
                if generation == self._generation:
                    self._current[key] -= 1

    def peak(self, key: str) -> int:
        """Highest simultaneous count for ``key`` since the last reset."""
        with self._lock:
            return self._peak[key]

    def current(self, key: str) -> int:
        """Requests for ``key`` in flight right now (begun since the last reset)."""
        with self._lock:
            return self._current[key]

    def reset_peaks(self) -> None:
        """Forget peaks and in-flight requests begun before now."""
        with self._lock:
            self._generation += 1
            self._current.clear()
            self._peak.clear()


def split_provider(path: str) -> tuple[str, str]:
    """``'/fal/a/b'`` -> ``('fal', '/a/b')``; ``'/fal'`` -> ``('fal', '/')``."""
    _, _, rest = path.partition("/")
    provider, slash, tail = rest.partition("/")
    return provider, "/" + tail if slash else "/"


class ProviderEmulator:
    """A local multi-provider HTTP emulator (see the module docstring).

    ``job_duration`` is the default number of seconds a job takes from submit to
    completion. Routes modules found in ``routes_package`` are registered at
    construction (``routes_package=None`` disables discovery).
    """

    def __init__(
        self,
        job_duration: float = 0.3,
        *,
        routes_package: str | None = DEFAULT_ROUTES_PACKAGE,
        media_module: str = "providers.media.synthesis",
    ) -> None:
        self._default_job_duration = job_duration
        self.job_duration = job_duration
        self.keys: dict[str, str] = {}
        self.jobs = JobStore(lambda: self.job_duration)
        self.handler_errors: list[str] = []
        self.loaded_routes_modules: list[str] = []
        self._router = Router()
        self._faults = FaultQueue()
        self._media = MediaHost()
        self._makers = MediaMakers(media_module)
        self._concurrency = ConcurrencyTracker()
        self._recorded: list[RecordedRequest] = []
        self._record_lock = threading.Lock()
        self._provider_state: dict[str, dict[str, Any]] = {}
        self._reset_callbacks: list[Callable[[], None]] = []
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.add_route("GET", MEDIA_PROVIDER, _MEDIA_PATTERN, self._serve_media, name=MEDIA_ROUTE)
        if routes_package:
            self._load_routes_modules(routes_package)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> ProviderEmulator:
        """Start serving on 127.0.0.1 (free port) in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = EmulatorHTTPServer(self._serve)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="provider-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_all_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ProviderEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port (raises if not started)."""
        if self._server is None:
            raise RuntimeError("ProviderEmulator is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``'http://127.0.0.1:PORT'``."""
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, provider: str) -> str:
        """Base URL of one provider, e.g. ``'http://127.0.0.1:PORT/fal'``."""
        return f"{self.base_url}/{provider}"

    def reset(self) -> None:
        """Forget recorded requests, faults, jobs, hosted media, key overrides and
        per-provider state; restore ``job_duration``; run ``on_reset`` callbacks.
        Routes stay registered."""
        self._faults.clear()
        with self._record_lock:
            self._recorded.clear()
        self.jobs.clear()
        self.jobs.advance_per_poll(None)
        self.jobs.clock = time.monotonic
        self._media.clear()
        self.keys.clear()
        self.job_duration = self._default_job_duration
        self._concurrency.reset_peaks()
        self._provider_state.clear()
        self.handler_errors.clear()
        for callback in list(self._reset_callbacks):
            callback()

    def on_reset(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on every :meth:`reset` (for module-level state)."""
        self._reset_callbacks.append(callback)

    def state(self, provider: str) -> dict[str, Any]:
        """A scratch dict for a provider's own state (uploaded files, voices, ...),
        emptied by :meth:`reset`."""
        return self._provider_state.setdefault(provider, {})

    # -- routing -------------------------------------------------------------------

    def route(
        self,
        method: str | Iterable[str],
        provider: str,
        pattern: str,
        *,
        name: str | None = None,
        raw_body: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Decorator registering ``handler(req) -> EmuResponse`` for ``method``
        (one or several) and a regex ``pattern`` fully matched against the path
        after ``/<provider>``. ``name`` (default ``'<provider>.<function name>'``)
        is used for fault injection and recording. ``raw_body=True`` hands
        unparsable bodies to the handler instead of answering 400."""

        def decorator(handler: Handler) -> Handler:
            self.add_route(method, provider, pattern, handler, name=name, raw_body=raw_body)
            return handler

        return decorator

    def add_route(
        self,
        method: str | Iterable[str],
        provider: str,
        pattern: str,
        handler: Handler,
        *,
        name: str | None = None,
        raw_body: bool = False,
    ) -> Route:
        """Non-decorator form of :meth:`route`."""
        name = name or f"{provider}.{getattr(handler, '__name__', 'handler')}"
        return self._router.add(method, provider, pattern, handler, name, raw_body)

    def route_names(self) -> set[str]:
        """Names of all registered routes."""
        return self._router.names()

    def _load_routes_modules(self, package_name: str) -> None:
        package = importlib.import_module(package_name)
        infos = sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name)
        for info in infos:
            module = importlib.import_module(f"{package_name}.{info.name}")
            register = getattr(module, "register", None)
            if callable(register):
                register(self)
                self.loaded_routes_modules.append(module.__name__)

    # -- auth ------------------------------------------------------------------------

    def key_for(self, provider: str) -> str:
        """Expected API key: ``emu.keys[provider]`` or ``'test-<provider>-key'``."""
        return self.keys.get(provider) or f"test-{provider}-key"

    @staticmethod
    def key_matches(req: EmuRequest, header: str, expected_value: str) -> bool:
        """True when header ``header`` equals ``expected_value`` (auth scheme
        compared case-insensitively, surrounding whitespace ignored)."""
        actual = req.headers.get(header)
        if actual is None:
            return False
        want_scheme, _, want_token = expected_value.strip().rpartition(" ")
        got_scheme, _, got_token = actual.strip().rpartition(" ")
        return got_token == want_token and got_scheme.lower() == want_scheme.lower()

    def check_bearer(
        self,
        req: EmuRequest,
        provider: str,
        scheme: str | None = "Bearer",
        header: str = "Authorization",
    ) -> EmuResponse | None:
        """None when ``header`` is ``'<scheme> <key>'`` (just ``'<key>'`` when
        ``scheme`` is None/''), else a generic JSON 401 response."""
        key = self.key_for(provider)
        expected = f"{scheme} {key}" if scheme else key
        if self.key_matches(req, header, expected):
            return None
        body = {
            "error": {
                "type": "authentication_error",
                "code": "invalid_api_key",
                "message": f"Missing or invalid API key in {header} header",
            }
        }
        return EmuResponse.error(401, body)

    # -- hosted media --------------------------------------------------------------

    def host_media(self, data: bytes, content_type: str, *, provider: str | None = None) -> str:
        """Serve ``data`` at a new absolute URL (route name ``'media'``)."""
        item = self._media.add(data, content_type, provider)
        owner = provider or "shared"
        return f"{self.url_for(MEDIA_PROVIDER)}/{owner}/{item.id}{extension_for(content_type)}"

    def hosted(self, url: str) -> HostedMedia:
        """The :class:`HostedMedia` behind a URL from :meth:`host_media`."""
        item = self._media.get_by_url(url)
        if item is None:
            raise KeyError(f"no hosted media at {url}")
        return item

    def media_bytes(self, url: str) -> bytes:
        """The bytes served at a URL from :meth:`host_media` (for assertions)."""
        return self.hosted(url).data

    def _serve_media(self, req: EmuRequest) -> EmuResponse:
        item = self._media.get(req.params["media_id"] or "")
        if item is None:
            return _expired_response(Fault.expired(404))
        return EmuResponse.bytes_(item.data, item.content_type)

    # -- media makers (providers.media.synthesis, cached) ------------------------------------------

    def video_bytes(
        self,
        prompt: str = "emulated video",
        *,
        width: int = 320,
        height: int = 240,
        duration: float = 1.0,
        fps: int = 24,
        seed: int = 0,
    ) -> bytes:
        """An MP4 from ``providers.media.synthesis.make_video`` (cached by arguments)."""
        return self._makers.video(prompt, width, height, duration, fps, seed)

    def image_bytes(
        self,
        prompt: str = "emulated image",
        *,
        width: int = 256,
        height: int = 256,
        image_format: str = "png",
        seed: int = 0,
    ) -> bytes:
        """An image from ``providers.media.synthesis.make_image`` (cached by arguments)."""
        return self._makers.image(prompt, width, height, image_format, seed)

    def audio_clip(
        self,
        text: str = "emulated audio",
        *,
        audio_format: str = "mp3",
        sample_rate: int | None = None,
        bitrate_kbps: int | None = None,
        duration: float | None = None,
        seed: int = 0,
    ) -> AudioClip:
        """An ``AudioClip`` from ``providers.media.synthesis.make_audio`` (cached by arguments)."""
        return self._makers.audio(text, audio_format, sample_rate, bitrate_kbps, duration, seed)

    def host_video(self, prompt: str = "emulated video", *, provider: str | None = None,
                   **kwargs: Any) -> str:
        """:meth:`video_bytes` hosted as ``video/mp4``; returns the URL."""
        return self.host_media(self.video_bytes(prompt, **kwargs), "video/mp4", provider=provider)

    def host_image(self, prompt: str = "emulated image", *, provider: str | None = None,
                   **kwargs: Any) -> str:
        """:meth:`image_bytes` hosted with the matching image type; returns the URL."""
        content_type = _IMAGE_TYPES.get(kwargs.get("image_format", "png"), "image/png")
        data = self.image_bytes(prompt, **kwargs)
        return self.host_media(data, content_type, provider=provider)

    def host_audio(self, text: str = "emulated audio", *, provider: str | None = None,
                   **kwargs: Any) -> str:
        """:meth:`audio_clip` hosted with the clip's content type; returns the URL."""
        clip = self.audio_clip(text, **kwargs)
        return self.host_media(clip.data, clip.content_type, provider=provider)

    # -- faults ------------------------------------------------------------------------

    def inject(self, route_name: str, fault: Fault, times: int | None = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests of route ``route_name``
        (``times=None``: every request until :meth:`reset`). Faults queued for
        the same route are consumed in FIFO order, one per request."""
        known = self.route_names()
        if route_name not in known:
            raise KeyError(f"unknown route name {route_name!r}; known: {sorted(known)}")
        self._faults.push(route_name, fault, times)

    def pending_faults(self, route_name: str) -> list[tuple[Fault, int | None]]:
        """Faults still queued for a route, with remaining uses (None = forever)."""
        return self._faults.pending(route_name)

    def clear_faults(self, route_name: str | None = None) -> None:
        """Drop queued faults for one route, or all."""
        self._faults.clear(route_name)

    # -- recording ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """All recorded requests since the last reset, in arrival order (a copy)."""
        with self._record_lock:
            return list(self._recorded)

    def requests_for(
        self, route_name: str | None = None, *, provider: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests of one route name (and/or one provider)."""
        return [
            r
            for r in self.requests
            if (route_name is None or r.route_name == route_name)
            and (provider is None or r.provider == provider)
        ]

    def count(self, route_name: str) -> int:
        """Number of recorded requests of ``route_name``."""
        return len(self.requests_for(route_name))

    def last(self, route_name: str) -> RecordedRequest:
        """The most recent request of ``route_name`` (AssertionError if none)."""
        found = self.requests_for(route_name)
        if not found:
            seen = sorted({str(r.route_name) for r in self.requests})
            raise AssertionError(f"no request recorded for {route_name!r}; seen: {seen}")
        return found[-1]

    def peak_concurrency(self, provider: str) -> int:
        """Highest number of simultaneous in-flight HTTP requests to ``provider``."""
        return self._concurrency.peak(provider)

    def in_flight(self, provider: str) -> int:
        """HTTP requests to ``provider`` being handled right now."""
        return self._concurrency.current(provider)

    # -- request handling (called from server threads) -----------------------------------

    def _serve(self, wire: WireRequest, send: Callable[[Reply], None]) -> None:
        received_at = time.monotonic()
        target = urlsplit(wire.target)
        raw_path = target.path or "/"
        full_path = unquote(raw_path)
        provider, path = split_provider(full_path)
        with self._concurrency.track(provider):
            match = self._router.match(wire.method, provider, path)
            req, parse_error = self._build_request(
                wire, match, provider, path, full_path, raw_path, target.query
            )
            record = RecordedRequest.of(req, received_at)
            with self._record_lock:
                self._recorded.append(record)
            reply = self._decide(req, match, parse_error, record)
            if wire.method == "HEAD":
                reply.head_only = True
            record.status = reply.response.status if reply.response and not reply.reset else None
            send(reply)

    def _build_request(
        self,
        wire: WireRequest,
        match: Match,
        provider: str,
        path: str,
        full_path: str,
        raw_path: str,
        query_string: str,
    ) -> tuple[EmuRequest, str | None]:
        """The handler's view of a request, plus the body parse error if any."""
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for key in wire.headers.keys():
            headers[key] = ", ".join(wire.headers.get_all(key) or [])
        parsed = parse_body(headers.get("Content-Type"), wire.body)
        query_multi = parse_query(query_string)
        req = EmuRequest(
            method=wire.method,
            path=path,
            full_path=full_path,
            raw_path=raw_path,
            route_name=match.route.name if match.route else None,
            provider=provider,
            params=dict(match.params),
            query=first_values(query_multi),
            query_multi=query_multi,
            headers=headers,
            body=wire.body,
            json=parsed.json,
            form=first_values(parsed.form_multi),
            form_multi=parsed.form_multi,
            files=parsed.files,
            is_multipart=parsed.is_multipart,
            client=(str(wire.client[0]), int(wire.client[1])),
            emu=self,
        )
        return req, parsed.error

    def _decide(
        self,
        req: EmuRequest,
        match: Match,
        parse_error: str | None,
        record: RecordedRequest,
    ) -> Reply:
        route = match.route
        if route is None:
            return Reply(_no_route_response(req, match.allowed))
        truncate_to: int | None = None
        fault = self._faults.take(route.name)
        after: Fault | None = None
        if fault is not None:
            record.fault = fault.kind
            if not fault.is_generic:
                req.faults.append(fault)
            elif fault.kind == "truncate":
                truncate_to = fault.nbytes
            elif fault.kind == "delay":
                self._stopping.wait(fault.seconds or 0.0)
            elif fault.kind in ("answer_late", "lose_answer"):
                after = fault
            else:
                return _generic_fault_reply(fault)
        if parse_error and not route.raw_body:
            return Reply(EmuResponse.error(400, {"error": parse_error}), truncate_to)
        response = self._call_handler(route, req)
        if after is not None and after.kind == "lose_answer":
            return Reply(reset=True)
        if after is not None:
            self._stopping.wait(after.seconds or 0.0)
        return Reply(response, truncate_to)

    def _call_handler(self, route: Route, req: EmuRequest) -> EmuResponse:
        try:
            result = route.handler(req)
        except Exception:  # noqa: BLE001 - reported through handler_errors
            text = f"{route.name}: {req.method} {req.full_path}\n{traceback.format_exc()}"
            self.handler_errors.append(text)
            return EmuResponse.error(500, {"error": "emulator handler error", "route": route.name})
        if isinstance(result, EmuResponse):
            return result
        if isinstance(result, (dict, list)):
            return EmuResponse.json_(result)
        self.handler_errors.append(f"{route.name}: handler returned {type(result).__name__}")
        return EmuResponse.error(500, {"error": "emulator handler returned no response"})


_MEDIA_PATTERN = r"/(?P<owner>[^/]+)/(?P<media_id>[0-9a-f]{32})(?P<ext>\.[A-Za-z0-9]+)?"


def _no_route_response(req: EmuRequest, allowed: frozenset[str]) -> EmuResponse:
    if allowed:
        body = {"error": "method not allowed", "method": req.method, "allowed": sorted(allowed)}
        return EmuResponse.error(405, body, headers={"Allow": ", ".join(sorted(allowed))})
    return EmuResponse.error(404, {"error": "not found", "method": req.method, "path": req.full_path})


def _generic_fault_reply(fault: Fault) -> Reply:
    if fault.kind == "connection_reset":
        return Reply(reset=True)
    if fault.kind == "expired":
        return Reply(_expired_response(fault))
    return Reply(EmuResponse.error(fault.status or 500, fault.body, headers=fault.headers))


def _expired_response(fault: Fault) -> EmuResponse:
    status = fault.status or 403
    if fault.body is not None:
        return EmuResponse.error(status, fault.body)
    if status == 404:
        xml = _EXPIRED_XML.format(code="NoSuchKey", message="The specified key does not exist.")
    else:
        xml = _EXPIRED_XML.format(code="AccessDenied", message="Request has expired")
    return EmuResponse.bytes_(xml.encode(), "application/xml", status=status)
