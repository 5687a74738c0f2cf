"""Errors raised by the Orange SMS provider.

Every error the provider raises while talking to Orange is an :class:`OrangeSMSError`, so DAG code
can catch one class. The subclasses say what kind of failure it was, which decides whether a retry
can help:

* :class:`OrangeSMSAuthError` - the client id/secret or token were rejected (401, token endpoint
  ``invalid_client``) or the API is not subscribed (403 code 50). Retrying will not help.
* :class:`OrangeSMSBadRequestError` - Orange refused the request itself (400, or 403 with a
  ``policyException``). Carries the ``SVC…``/``POL…`` id. Never retried.
* :class:`OrangeSMSNotFoundError` - 404.
* :class:`OrangeSMSRateLimitError` - 429 (or code 53 with another status) after the retries ran out.
* :class:`OrangeSMSServerError` - 5xx after the retries ran out.
* :class:`OrangeSMSConnectionError` - the network failed (refused, reset, timeout).
* :class:`OrangeSMSSendUncertainError` - a send whose outcome is unknown: the request may have
  reached Orange before the connection failed. It is not retried automatically, because a retry
  could deliver the SMS twice.

Bad input (an invalid phone number, an empty message) raises :class:`ValueError` before any
request is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "TRANSIENT_ERRORS",
    "OrangeSMSAuthError",
    "OrangeSMSBadRequestError",
    "OrangeSMSConnectionError",
    "OrangeSMSError",
    "OrangeSMSNotFoundError",
    "OrangeSMSRateLimitError",
    "OrangeSMSSendUncertainError",
    "OrangeSMSServerError",
]


class OrangeSMSError(Exception):
    """
    Base class of every error raised while talking to the Orange SMS API.

    ``str()`` reads like ``Orange SMS API 400 SVC0004: No valid addresses provided in message part
    address``.

    :param status_code: HTTP status of the response, or ``None`` when no response was received.
    :param code: Orange's error code: the gateway's numeric ``code`` (e.g. ``42``), the service
        ``messageId`` (e.g. ``"SVC0004"``) or the OAuth2 ``error`` (e.g. ``"invalid_client"``).
    :param message: Short, human readable message (placeholders already filled in).
    :param description: Longer explanation when Orange gives one.
    """

    #: Whether the provider already retried this failure as often as it would (or it is final, like
    #: a token failure another process met moments ago): a retry loop around the call that raised
    #: it must not try again. It does not change whether the error is transient.
    retries_exhausted: bool = False

    def __init__(
        self,
        status_code: int | None = None,
        code: int | str | None = None,
        message: str = "",
        description: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.description = description
        self.retries_exhausted = False
        super().__init__(str(self))

    def __str__(self) -> str:
        head = "Orange SMS API"
        if self.status_code is not None:
            head += f" {self.status_code}"
        if self.code not in (None, ""):
            head += f" {self.code}"
        text = f"{head}: {self.message}" if self.message else head
        if self.description and self.description != self.message:
            text += f" ({self.description})"
        return text

    def __reduce__(self) -> tuple:
        # Keep the structured fields when the error crosses a process boundary (pickling).
        return (self.__class__._rebuild, (self.__dict__.copy(),))

    @classmethod
    def _rebuild(cls, state: dict) -> OrangeSMSError:
        err = cls.__new__(cls)
        err.__dict__.update(state)
        Exception.__init__(err, str(err))
        return err


class OrangeSMSAuthError(OrangeSMSError):
    """Credentials or token rejected (401), or access denied to the API (403 code 50)."""


class OrangeSMSBadRequestError(OrangeSMSError):
    """
    Orange rejected the request itself (400, or 403 with a ``policyException``).

    :param message_id: ``SVC…`` or ``POL…`` identifier (also available as ``code``).
    :param variables: Values Orange filled into the ``%1``, ``%2`` … placeholders of its text.
    """

    def __init__(
        self,
        status_code: int | None = None,
        code: int | str | None = None,
        message: str = "",
        description: str | None = None,
        *,
        variables: Sequence[str] = (),
    ) -> None:
        self.variables = list(variables)
        super().__init__(status_code, code, message, description)

    @property
    def message_id(self) -> str | None:
        """The ``SVC…``/``POL…`` identifier of the error."""
        return None if self.code is None else str(self.code)


class OrangeSMSNotFoundError(OrangeSMSError):
    """The resource does not exist (404)."""


class OrangeSMSRateLimitError(OrangeSMSError):
    """
    Too many requests (429, or gateway code 53 with another status), still refused after waiting and retrying.

    :param retry_after: Seconds Orange asked to wait (``Retry-After``), when it said.
    """

    def __init__(
        self,
        status_code: int | None = None,
        code: int | str | None = None,
        message: str = "",
        description: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status_code, code, message, description)


class OrangeSMSServerError(OrangeSMSError):
    """Orange answered with a 5xx status, still failing after the retries."""


class OrangeSMSConnectionError(OrangeSMSError):
    """No usable answer: connection refused or reset, or a timeout."""


class OrangeSMSSendUncertainError(OrangeSMSError):
    """
    A send failed after the request was written: Orange may or may not have accepted it.

    Raised when the connection broke or timed out after the request was written, or Orange answered
    a send with a 5xx other than 503 (500, 502, 504…). It is deliberately not retried, since a
    retry could deliver the SMS twice, and it is not an :class:`OrangeSMSConnectionError`, so code
    that retries on those never resends it by accident. Check the delivery receipts or the usage
    statistics before sending again.
    """


#: Errors that may go away by themselves (rate limit, Orange failing or unreachable): worth trying
#: again later. Everything else (bad input, credentials, not found, an uncertain send) is not.
TRANSIENT_ERRORS: tuple[type[OrangeSMSError], ...] = (
    OrangeSMSRateLimitError,
    OrangeSMSServerError,
    OrangeSMSConnectionError,
)
