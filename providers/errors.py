"""The error taxonomy. Every error knows whether retrying the same config can help
(``retryable``) and whether the fallback chain must stop (``stops_chain``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas import ExecutionMetadata

    from providers.core.redaction import Redactor


class MediagenError(Exception):
    """Base of every error the SDK raises.

    Carries the provider and model that raised it, the provider's request id, the
    raw provider response (when there was one) and, when a whole fallback chain
    failed, the ``execution_metadata`` of every attempt.
    """

    default_retryable = False
    stops_chain = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
        raw_response: Any = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        execution_metadata: ExecutionMetadata | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.request_id = request_id
        self.raw_response = raw_response
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.execution_metadata = execution_metadata

    @property
    def message(self) -> str:
        """The human-readable reason; kept identical to ``args[0]`` (so pickles and
        tracebacks never hold an older, unredacted text)."""
        return str(self.args[0]) if self.args else ""

    @message.setter
    def message(self, value: str) -> None:
        self.args = (value,)

    def redact(self, redactor: "Redactor") -> "MediagenError":
        """Remove ``redactor``'s keys from the message, ``raw_response`` and the attempts'
        error messages, in place; returns ``self``."""
        if not redactor:
            return self
        self.message = redactor.redact(self.message)
        self.raw_response = redactor.redact_value(self.raw_response)
        self.request_id = redactor.redact(self.request_id)
        if self.execution_metadata is not None:
            for attempt in self.execution_metadata.attempts:
                if attempt.error_message:
                    attempt.error_message = redactor.redact(attempt.error_message)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default pickling calls cls(*args), which subclasses with required
        # keyword arguments (status_code) cannot take; restore the fields directly instead.
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        return f"[{where}] {self.message}" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, retryable={self.retryable})"


class InvalidRequestError(MediagenError):
    """The request is invalid for this provider or model (HTTP 400/422). Stops the chain."""

    stops_chain = True


class ProviderConfigError(InvalidRequestError):
    """The config lacks a setting this provider needs (an endpoint, an api_version...).

    Unlike invalid input it is specific to this config, so the chain goes on.
    """

    stops_chain = False


class UnsupportedRequestError(MediagenError):
    """This config cannot serve the request (modality, duration, aspect ratio...).
    Recorded as a ``skipped`` attempt; the chain goes on without calling the provider."""


class ContentModerationError(MediagenError):
    """The provider refused the prompt or the output on content grounds. Stops the chain."""

    stops_chain = True


class ProviderHTTPError(MediagenError):
    """The provider answered with an HTTP error status. 408/409/429 and 5xx are retryable."""

    def __init__(self, message: str, *, status_code: int, **kwargs: Any) -> None:
        if kwargs.get("retryable") is None:
            kwargs["retryable"] = is_transient_status(status_code)
        super().__init__(message, **kwargs)
        self.status_code = status_code


class ProviderAuthError(ProviderHTTPError):
    """The provider rejected the API key (HTTP 401/403). Not retryable; the chain goes on."""

    def __init__(self, message: str, *, status_code: int = 401, **kwargs: Any) -> None:
        kwargs["retryable"] = False
        super().__init__(message, status_code=status_code, **kwargs)


class ProviderConnectionError(MediagenError):
    """The provider could not be reached or dropped the connection. Retryable."""

    default_retryable = True


class GenerationTimeoutError(MediagenError):
    """The attempt ran past its deadline (``config.timeout`` or ``max_poll_attempts``). Retryable."""

    default_retryable = True


class GenerationFailedError(MediagenError):
    """The provider accepted the job but reports that it failed."""


class PossiblyPaidError(MediagenError):
    """A submit may have been accepted (and paid) but its job id was never recorded: the
    answer was lost, or a crashed run's claim holds no job. Submitting again could pay
    twice, so the chain stops; rerun with ``--resubmit_uncertain`` to pay again on purpose."""

    stops_chain = True


class OutputAlreadyMadeError(MediagenError):
    """Another run or worker made this output while we waited for its claim: the caller
    reuses that output (``key`` names it) instead of paying for it again."""

    stops_chain = True

    def __init__(self, message: str, *, key: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.key = key


class LedgerUnavailableError(MediagenError):
    """The job ledger cannot be written, so nothing new is submitted (money never moves
    unrecorded). Jobs already submitted are still followed."""

    stops_chain = True


def _restore_error(cls: type[MediagenError], args: tuple[Any, ...], state: dict[str, Any]) -> MediagenError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


TRANSIENT_STATUS_CODES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def is_transient_status(status_code: int) -> bool:
    """Whether an HTTP status is worth retrying on the same provider."""
    return status_code in TRANSIENT_STATUS_CODES or 520 <= status_code <= 529
