"""The claim protocol between the orchestrator and a job ledger ("never pay twice").

The SDK runs without a ledger: every attempt may submit. The pipeline plugs in a
ledger (``transforms.ledger.Ledger``) that the orchestrator consults around every
paid call, through plain ``Call`` steps so the sync, async and window drivers all
honour it:

Every call names the ``holder`` (the chain's request id), so two chains in one process
never both pay for one key.

1. ``claim(key, holder, idempotent)`` before a submit: the ledger answers with a
   :class:`Claim` that says whether to submit (and with which idempotency key), to
   follow a job that was already paid for, or to wait for another worker's live
   claim; or it raises :class:`~providers.errors.PossiblyPaidError` /
   :class:`~providers.errors.LedgerUnavailableError`.
2. ``record_job(key, holder, job)`` the moment the provider accepted the job.
3. ``release(key, holder, outcome)`` when the job can never produce the output (the
   provider said it failed or is gone, or we cancelled it): a later try may claim
   the key again. ``outcome="uncertain"`` marks a submit whose answer was lost.
4. ``abandon(key, holder)`` when we stop following a job that may still finish (deadline
   passed, no cancel call): the claim keeps the job, so a rerun re-attaches.

``key`` is :func:`providers.core.keys.output_key` of the request under one config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from schemas import JobHandle

ClaimAction = Literal["submit", "follow", "wait"]
ReleaseOutcome = Literal["failed", "gone", "cancelled", "uncertain", "rejected"]


@dataclass(frozen=True)
class Claim:
    """The ledger's answer to "may I pay for ``key`` now?"."""

    action: ClaimAction
    job: JobHandle | None = None
    """The job to follow (``action == "follow"``)."""
    idempotency_key: str | None = None
    """Sent with the submit where the provider dedupes on it (``action == "submit"``)."""
    wait_seconds: float = 0.0
    """How long to wait before asking again (``action == "wait"``)."""


SUBMIT = Claim("submit")
"""What a run without a ledger always does."""


class JobLedger(Protocol):
    """What the orchestrator needs of a ledger. Every method may block on storage I/O."""

    def claim(self, key: str, holder: str, idempotent: bool) -> Claim: ...

    def record_job(self, key: str, holder: str, job: JobHandle) -> None: ...

    def release(self, key: str, holder: str, outcome: ReleaseOutcome) -> None: ...

    def abandon(self, key: str, holder: str) -> None: ...


@dataclass(frozen=True)
class ClaimedKey:
    """One chain's handle on one output key of a ledger: the attempt's every ledger call
    goes through it, so the key and the holder travel as one value."""

    ledger: JobLedger
    key: str
    holder: str

    def claim(self, idempotent: bool) -> Claim:
        return self.ledger.claim(self.key, self.holder, idempotent)

    def record_job(self, job: JobHandle) -> None:
        self.ledger.record_job(self.key, self.holder, job)

    def release(self, outcome: ReleaseOutcome) -> None:
        self.ledger.release(self.key, self.holder, outcome)

    def abandon(self) -> None:
        self.ledger.abandon(self.key, self.holder)

