"""The gallery: a static ``<output>/gallery/index.html`` over an output root's results table.

The page is plain HTML/CSS/JS (``transforms/gallery_assets/``, no network resources). Its
data are JS files it loads with ``<script>`` tags, so it works opened from disk
(``file://``, where ``fetch`` is refused) as well as over HTTP:

- ``gallery/data/index.js``: totals, and the *groups*: rows sharing run, status and
  provider, in display order (newest run first), each with its row count;
- ``gallery/data/<group>-<n>.js``: page ``n`` of a group, ``PAGE_ROWS`` rows each.

A filter selects groups, so any view's page is a slice of at most a few page files:
100,000 rows open as fast as 300, and the page only builds elements for the rows shown.
The table is streamed (row groups, needed columns only) and pages are written as they
fill, so memory stays bounded by the number of groups times ``PAGE_ROWS``.

Media links are relative to ``gallery/`` (``../media/...``) for every store: on local disk
they open directly; on gs:// or s3:// they resolve when the gallery is opened through the
bucket's HTTPS address (a public bucket, or an authenticated session/proxy); the page says
so and shows each object's URI. Videos, and images larger than a thumbnail, show the poster
kept beside them (``media_store.poster_path``); missing ones (older outputs) are made here.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Iterator
from urllib.parse import quote

from schemas.results import media_relpath

from .media_store import needs_poster, poster_path, store_poster
from .storage import Storage

log = logging.getLogger(__name__)

GALLERY_DIR = "gallery"
DATA_DIR = f"{GALLERY_DIR}/data"
INDEX_DATA = f"{DATA_DIR}/index.js"
ASSETS = ("index.html", "gallery.js", "gallery.css")
PAGE_ROWS = 200
PROMPT_CHARS = 4000
"""Longer prompts are cut in the gallery (the table keeps them whole)."""
ERROR_CHARS = 2000
STATUS_ORDER = {"completed": 0, "failed": 1, "invalid": 2}
OBJECT_STORE_NOTE = (
    "Media live in object storage: they show here when this page is opened through the bucket's HTTPS "
    "address (a public bucket, or a browser session or proxy allowed to read it). A signed URL of this "
    "page alone does not sign the media it links; sign each object's URI, shown in its details."
)
COLUMNS = (
    "row_id", "run_id", "status", "provider", "model", "config_name", "modality", "prompt", "reused", "is_mock",
    "placeholder", "media_uris", "content_type", "media", "error_type", "error_message", "total_attempts", "attempts",
    "finished_at", "cost_usd", "cost_source",
)
"""What the page shows; never ``request_json``/``raw_response_json`` (large, and not for display)."""
BATCH_ROWS = 1024


class GalleryError(Exception):
    """The gallery cannot be built (no results table under the output root)."""


@dataclass
class GalleryReport:
    """What :func:`build_gallery` wrote."""

    index_uri: str
    rows: int
    pages: int
    groups: int
    posters_made: int


def write_gallery(output_root: str, storage_options: dict[str, Any] | None = None, *,
                  page_rows: int = PAGE_ROWS, make_posters: bool = True) -> GalleryReport:
    """Write ``<output_root>/gallery/`` from ``<output_root>/results/*.parquet``; see the module doc."""
    return build_gallery(Storage(output_root, storage_options), page_rows=page_rows, make_posters=make_posters)


def gallery_after_run(output_root: str, storage_options: dict[str, Any] | None = None) -> str | None:
    """The gallery at the end of a run: its index URI, or None (logged) when it could not be written.

    A run's media and table are already safe by then, so a gallery failure never fails the run."""
    try:
        return write_gallery(output_root, storage_options).index_uri
    except Exception as exc:  # noqa: BLE001 - any failure here is reported and left to `mediagen-gallery`
        log.warning("the gallery was not written (%s: %s); run `mediagen-gallery %s` to retry",
                    type(exc).__name__, exc, output_root)
        return None


def build_gallery(storage: Storage, *, page_rows: int = PAGE_ROWS, make_posters: bool = True) -> GalleryReport:
    """Stream the results table into the gallery's page files, then its index and page assets."""
    if page_rows < 1:
        raise ValueError(f"page_rows must be at least 1, got {page_rows!r}")
    tables = sorted(path for path in storage.list("results") if path.endswith(".parquet"))
    if not tables:
        raise GalleryError(f"no results table under {storage.uri('results')} (run mediagen-generate first)")
    links = MediaLinks(storage, make_posters)
    pages = PageWriter(storage, page_rows)
    has_cost = False
    for record, names in _records(storage, tables):
        has_cost = has_cost or "cost_usd" in names
        pages.add(gallery_row(record, links))
    groups = pages.finish()
    object_store = storage.protocol not in ("file", "local")
    index = {
        "version": 1,
        "root": storage.uri(""),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "page_rows": page_rows,
        "total": sum(g["count"] for g in groups),
        "has_cost": has_cost,
        "object_store": object_store,
        "note": OBJECT_STORE_NOTE if object_store else "",
        "groups": groups,
    }
    storage.write_bytes(INDEX_DATA, _script("index", index))
    for name in ASSETS:
        storage.write_bytes(f"{GALLERY_DIR}/{name}", resources.files(__package__).joinpath("gallery_assets", name).read_bytes())
    pages.remove_stale()
    return GalleryReport(index_uri=storage.uri(f"{GALLERY_DIR}/index.html"), rows=index["total"],
                         pages=pages.written_pages, groups=len(groups), posters_made=links.posters_made)


def _records(storage: Storage, tables: list[str]) -> Iterator[tuple[dict[str, Any], frozenset[str]]]:
    """Every row of the tables (display columns only), a row group batch at a time."""
    import pyarrow.parquet as pq

    for table in tables:
        with storage.fs.open(storage.path(table), "rb") as handle:
            parquet = pq.ParquetFile(handle)
            names = frozenset(parquet.schema_arrow.names)
            columns = [c for c in COLUMNS if c in names]
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                for record in batch.to_pylist():
                    yield record, names


def gallery_row(record: dict[str, Any], links: "MediaLinks") -> dict[str, Any]:
    """One table row as the page shows it (plain JSON values; the page escapes them all)."""
    row = {
        "id": record.get("row_id"),
        "run": record.get("run_id") or "",
        "status": record.get("status") or "",
        "provider": record.get("provider") or "",
        "model": record.get("model") or "",
        "config": record.get("config_name") or "",
        "modality": record.get("modality") or "",
        "prompt": _cut(record.get("prompt"), PROMPT_CHARS),
        "reused": bool(record.get("reused")),
        "mock": bool(record.get("is_mock")),
        "placeholder": bool(record.get("placeholder")),
        "error_type": record.get("error_type") or "",
        "error": _cut(record.get("error_message"), ERROR_CHARS),
        "finished": _iso(record.get("finished_at")),
        "media": [links.media(**media) for media in _media_of(record)],
        "attempts": [_attempt(a) for a in record.get("attempts") or []],
    }
    if "cost_usd" in record:  # None there: paid at an unknown price
        row["cost"] = record["cost_usd"]
        row["cost_source"] = record.get("cost_source") or ""
    return row


def _media_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    if record.get("media"):
        return [{"uri": m["uri"], "content_type": m.get("content_type") or "", "width": m.get("width"),
                 "height": m.get("height")} for m in record["media"]]
    content_type = record.get("content_type") or ""
    return [{"uri": uri, "content_type": content_type, "width": record.get("width"), "height": record.get("height")}
            for uri in record.get("media_uris") or []]


def _attempt(attempt: dict[str, Any]) -> dict[str, Any]:
    return {
        "n": attempt.get("attempt_number"),
        "try": attempt.get("try_number"),
        "provider": attempt.get("provider") or "",
        "model": attempt.get("model") or "",
        "status": attempt.get("status") or "",
        "error_type": attempt.get("error_type") or "",
        "error": _cut(attempt.get("error_message"), ERROR_CHARS),
        "seconds": attempt.get("elapsed_seconds"),
        "started": _iso(attempt.get("started_at")),
        "mock": bool(attempt.get("is_mock")),
        **({"cost": attempt["cost_usd"]} if "cost_usd" in attempt else {}),
    }


def _cut(text: str | None, limit: int) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[:limit] + "…"


def _iso(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)


class MediaLinks:
    """Links from ``gallery/`` to media under the output root, and their posters."""

    def __init__(self, storage: Storage, make_posters: bool) -> None:
        self.storage = storage
        self.make_posters = make_posters
        self.posters_made = 0
        self._posters: dict[str, set[str]] = {}  # folder -> poster paths known to exist there
        self._no_poster: set[str] = set()  # media a poster could not be made for

    def media(self, uri: str, content_type: str, width: int | None = None, height: int | None = None) -> dict[str, Any]:
        relpath = self.relpath(uri)
        item: dict[str, Any] = {"type": content_type, "href": _href(relpath) if relpath else None, "uri": uri}
        kind = content_type.split("/", 1)[0]
        if relpath and needs_poster(kind, width, height):
            poster = self.poster(relpath, kind)
            item["poster"] = _href(poster) if poster else None
        return item

    def relpath(self, uri: str) -> str | None:
        """``uri`` relative to the output root (:func:`schemas.results.media_relpath`), None
        when it lies elsewhere."""
        try:
            return media_relpath(uri, self.storage.uri(""))
        except ValueError:
            return None

    def poster(self, media: str, kind: str) -> str | None:
        """The poster path of the ``kind`` media at ``media`` (relative), made now if it is missing."""
        target = poster_path(media)
        folder = posixpath.dirname(target)
        if folder not in self._posters:  # one listing per folder, not one request per video
            self._posters[folder] = {p for p in self.storage.list(folder) if p.endswith(".poster.jpg")}
        known = self._posters[folder]
        if target in known:
            return target
        if not self.make_posters or media in self._no_poster:
            return None
        if self._make_poster(media, kind):
            known.add(target)
            self.posters_made += 1
            return target
        self._no_poster.add(media)
        return None

    def _make_poster(self, media: str, kind: str) -> bool:
        if self.storage.protocol in ("file", "local"):
            path = self.storage.path(media)
            return self.storage.fs.exists(path) and store_poster(self.storage, media, path, kind)
        with tempfile.NamedTemporaryFile(prefix="mediagen-poster-", suffix=posixpath.splitext(media)[1]) as local:
            try:
                self.storage.fs.get_file(self.storage.path(media), local.name)
            except FileNotFoundError:
                return False
            return store_poster(self.storage, media, local.name, kind)


def _href(relpath: str) -> str:
    return "../" + quote(relpath)


class PageWriter:
    """Rows into per-group page files of ``page_rows`` rows, written as each fills."""

    def __init__(self, storage: Storage, page_rows: int) -> None:
        self.storage = storage
        self.page_rows = page_rows
        self.groups: dict[tuple[str, str, str], _Group] = {}
        self.written: set[str] = set()

    @property
    def written_pages(self) -> int:
        return len(self.written)

    def add(self, row: dict[str, Any]) -> None:
        key = (row["run"], row["status"], row["provider"])
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(f"g{len(self.groups) + 1:04d}", *key)
        group.buffer.append(row)
        group.count += 1
        group.latest = max(group.latest, row["finished"])
        if len(group.buffer) == self.page_rows:
            self._flush(group)

    def finish(self) -> list[dict[str, Any]]:
        """Write the partial last pages; the groups in display order (newest run first)."""
        for group in self.groups.values():
            if group.buffer:
                self._flush(group)
        latest: dict[str, str] = {}
        for group in self.groups.values():
            latest[group.run] = max(latest.get(group.run, ""), group.latest)
        ordered = sorted(self.groups.values(), key=lambda g: (STATUS_ORDER.get(g.status, 9), g.status, g.provider))
        ordered.sort(key=lambda g: (latest[g.run], g.run), reverse=True)  # stable: the order above kept within a run
        return [{"id": g.id, "run": g.run, "status": g.status, "provider": g.provider, "count": g.count,
                 "pages": math.ceil(g.count / self.page_rows)} for g in ordered]

    def _flush(self, group: "_Group") -> None:
        group.pages += 1
        name = f"{group.id}-{group.pages:05d}"
        relpath = f"{DATA_DIR}/{name}.js"
        self.storage.write_bytes(relpath, _script("page", group.buffer, name))
        self.written.add(relpath)
        group.buffer = []

    def remove_stale(self) -> None:
        """Remove page files of an earlier build that this one did not write."""
        for relpath in list(self.storage.list(DATA_DIR)):
            if relpath.endswith(".js") and relpath != INDEX_DATA and relpath not in self.written:
                self.storage.delete(relpath)


@dataclass
class _Group:
    id: str
    run: str
    status: str
    provider: str
    count: int = 0
    pages: int = 0
    latest: str = ""  # the latest finished_at of its rows (ISO 8601 in UTC: sorts as text)
    buffer: list[dict[str, Any]] = field(default_factory=list)


def _script(call: str, payload: Any, name: str | None = None) -> bytes:
    """``mediagenGallery.<call>([name,] payload);`` with the payload as ASCII-only JSON (a
    valid JS literal whatever the text holds; the page inserts values as text, never HTML)."""
    data = json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=str)
    head = f"{json.dumps(name)}," if name is not None else ""
    return f"mediagenGallery.{call}({head}{data});\n".encode("ascii")
