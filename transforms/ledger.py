"""The job ledger: ``<output>/_ledger/<key>.json`` says, per request key, either that
a provider job is in flight (its handle, so a retry or re-run re-attaches instead of
paying again) or that the media is done (where it lies and what it measured)."""

from __future__ import annotations

from schemas import JobHandle, utc_now
from schemas.results import LedgerEntry, StoredMedia

from .storage import Storage

LEDGER_DIR = "_ledger"


class Ledger:
    """Read and write ledger entries under an output root."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @staticmethod
    def relpath(key: str) -> str:
        return f"{LEDGER_DIR}/{key}.json"

    def get(self, key: str) -> LedgerEntry | None:
        data = self.storage.read_json(self.relpath(key))
        if data is None:
            return None
        try:
            return LedgerEntry.model_validate(data)
        except ValueError:
            return None  # an unreadable entry is as good as none: generate again

    def record_submitted(self, key: str, job: JobHandle) -> None:
        entry = LedgerEntry(
            key=key, state="submitted", modality=job.modality, job=job, provider=job.provider,
            model=job.model, is_mock=job.is_mock, updated_at=utc_now(),
        )
        self.storage.write_json(self.relpath(key), entry.model_dump(mode="json"))

    def record_done(
        self, key: str, modality: str, media: list[StoredMedia], *, provider: str | None, model: str | None,
        is_mock: bool, raw_response_json: str | None,
    ) -> None:
        entry = LedgerEntry(
            key=key, state="done", modality=modality, provider=provider, model=model, is_mock=is_mock,  # type: ignore[arg-type]
            media=media, raw_response_json=raw_response_json, updated_at=utc_now(),
        )
        self.storage.write_json(self.relpath(key), entry.model_dump(mode="json"))

    def lookup(self, key: str) -> tuple[LedgerEntry | None, JobHandle | None]:
        """One read: (the done entry whose media all still exist, or the job in flight)."""
        entry = self.get(key)
        if entry is None:
            return None, None
        if entry.state == "submitted":
            return None, entry.job
        return (entry if self._media_exist(entry) else None), None

    def finished_media(self, key: str) -> LedgerEntry | None:
        """The done entry for ``key`` when every media object it names still exists."""
        return self.lookup(key)[0]

    def _media_exist(self, entry: LedgerEntry) -> bool:
        if not entry.media:
            return False
        prefix = self.storage.uri("")
        for media in entry.media:
            relative = media.uri[len(prefix):].lstrip("/") if media.uri.startswith(prefix) else None
            if relative is None or not self.storage.exists(relative):
                return False
        return True

    def in_flight(self, key: str) -> JobHandle | None:
        return self.lookup(key)[1]
