"""One HTTP session, its timeouts, and the retry rules of every API call.

Retry rules (each request):

* connection refused / connect timeout - the request never left: retried for every call;
* a host name that does not resolve - not retried: the next try would not resolve it either;
* 429, or gateway code 53 whatever the status (Orange's older SDK sends it with 403) - waits
  ``Retry-After`` (or backs off) and retries; it means nothing was accepted;
* 5xx - retried with exponential backoff, except on a send, where only 503 is (any other 5xx may
  come after Orange carried the request out: a gateway lost the answer of a backend that may have
  accepted the SMS);
* reset, read timeout, broken response - retried for reads and deletes; for a send the outcome is
  unknown, so :class:`~airflow_provider_orange_sms.exceptions.OrangeSMSSendUncertainError` is
  raised instead of risking a duplicate SMS;
* 401 with code 41/42 - the token is dropped, a new one fetched and the call retried once;
* 400, 403 (but code 53), 404 - never retried;
* an error already retried by an inner loop (``retries_exhausted``, e.g. the token fetch inside a
  call) is not retried again by the outer one.

The token request's own rules are in :mod:`airflow_provider_orange_sms.token.access_token`; what a 2xx must
carry to count as done is the endpoints' (:mod:`airflow_provider_orange_sms.client`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from urllib3.exceptions import NewConnectionError

from airflow_provider_orange_sms.config import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF_MAX,
)
from airflow_provider_orange_sms.exceptions import (
    TRANSIENT_ERRORS,
    OrangeSMSConnectionError,
    OrangeSMSError,
    OrangeSMSRateLimitError,
    OrangeSMSSendUncertainError,
)
from airflow_provider_orange_sms.wire.errors import (
    describe_network_failure,
    error_from_response,
    is_name_resolution_failure,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_orange_sms.limit import SendLimiter

log = logging.getLogger(__name__)

__all__ = ["BearerTokens", "RetryPolicy", "Transport"]

_T = TypeVar("_T")
# Gateway codes on a 401 that mean "this token is no longer good": fetch another and retry once.
_STALE_TOKEN_CODES = {41, 42}
# Statuses with which Orange says it did not take the request (rate limited, service unavailable):
# a send may be retried on them. Any other 5xx may come after the request was carried out.
_SEND_RETRY_STATUSES = {429, 503}


@dataclass(frozen=True)
class RetryPolicy:
    """
    How failed requests are retried.

    :param max_attempts: Tries per call, the first included.
    :param backoff_initial: First backoff in seconds; it doubles on each retry (with jitter).
    :param backoff_max: Longest backoff in seconds.
    :param max_retry_after: Longest ``Retry-After`` honoured; a longer one fails the call.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_initial: float = DEFAULT_RETRY_BACKOFF
    backoff_max: float = DEFAULT_RETRY_BACKOFF_MAX
    max_retry_after: float = 120.0


class BearerTokens(Protocol):
    """Where :meth:`Transport.request` gets its bearer token, and reports a refused one."""

    def get_token(self) -> str:
        """Return a valid access token."""

    def invalidate_token(self, access_token: str | None = None) -> None:
        """
        Forget ``access_token``: Orange refused it.

        :param access_token: The refused token.
        """


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request failed before any byte reached the server (safe to resend)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, OrangeSMSError) and exc.retries_exhausted:
        return False
    return isinstance(exc, TRANSIENT_ERRORS)


class Transport:
    """
    The HTTP session of one client, its timeouts and its retry loop.

    :param connect_timeout: Seconds to wait for a connection.
    :param read_timeout: Seconds to wait for a response once the request is sent.
    :param retry: Retry policy (default: :class:`RetryPolicy`'s).
    :raises ValueError: When a timeout is not a finite number of seconds > 0, naming it.
    """

    def __init__(self, connect_timeout: float, read_timeout: float, retry: RetryPolicy | None = None) -> None:
        self.timeout = (float(connect_timeout), float(read_timeout))
        for name, seconds in zip(("connect_timeout", "read_timeout"), self.timeout, strict=True):
            if not 0 < seconds < float("inf"):  # inf overflowed in the socket layer; NaN fails too
                raise ValueError(f"Invalid {name} {seconds!r}: expected a finite number of seconds > 0")
        self.retry = retry or RetryPolicy()
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.mount("http://", HTTPAdapter(pool_maxsize=16))
        self.session.mount("https://", HTTPAdapter(pool_maxsize=16))
        #: How the transport waits between attempts (replaceable, e.g. to record the waits in tests).
        self.sleep: Callable[[float], None] = time.sleep

    def send_once(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> requests.Response:
        """
        Send one HTTP request, without retrying; a network failure becomes an :class:`OrangeSMSError`.

        :param method: HTTP method.
        :param url: Full URL.
        :param idempotent: Whether sending it twice is harmless; when not, a failure after the
            request may have left raises :class:`OrangeSMSSendUncertainError`.
        :param kwargs: Passed to :meth:`requests.Session.request`.
        """
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            what = f"{method} {urlsplit(url).path}"
            if _never_sent(exc) or idempotent:
                error = OrangeSMSConnectionError(None, None, f"{what}: {describe_network_failure(exc, url)}")
                # A wrong host name (a typo in the connection) is final: no retry loop resolves it.
                error.retries_exhausted = is_name_resolution_failure(exc)
                raise error from exc
            raise OrangeSMSSendUncertainError(
                None,
                None,
                f"{what} failed after the request was sent ({type(exc).__name__}); Orange may have "
                "accepted it, so it is not retried automatically (that could send the SMS twice)",
            ) from exc

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, OrangeSMSRateLimitError) and exc.retry_after is not None:
            if exc.retry_after > self.retry.max_retry_after:
                raise exc
            return exc.retry_after
        backoff = wait_exponential_jitter(
            initial=self.retry.backoff_initial,
            max=self.retry.backoff_max,
            jitter=self.retry.backoff_initial / 2,
        )
        return float(backoff(state))

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        log.warning("Orange SMS API call failed (%s); retry %d in %.2fs", exc, state.attempt_number, sleep)

    def retrying(self, fn: Callable[[], _T]) -> _T:
        """
        Call ``fn`` until it succeeds, under the retry policy; transient errors only are retried.

        :param fn: One attempt.
        :raises OrangeSMSError: The last attempt's error, marked ``retries_exhausted``.
        """
        try:
            try:
                # The first attempt runs bare: almost every call succeeds at once, and tenacity's
                # bookkeeping per call was a tenth of the client's own cost per send.
                return fn()
            except Exception as exc:
                if self.retry.max_attempts <= 1 or not _is_retryable(exc):
                    raise
                first: list[BaseException] = [exc]

            def replay_then_call() -> _T:
                # Tenacity's attempt 1 is the failed one above: its waits and stop count stay the same.
                if first:
                    raise first.pop()
                return fn()

            retryer = Retrying(
                stop=stop_after_attempt(self.retry.max_attempts),
                wait=self._wait,
                retry=retry_if_exception(_is_retryable),
                before_sleep=self._log_retry,
                sleep=lambda seconds: self.sleep(seconds),
                reraise=True,
            )
            return retryer(replay_then_call)
        except OrangeSMSError as exc:
            # Already retried here (e.g. the token fetch inside a call): an outer retry loop must not
            # multiply the attempts.
            exc.retries_exhausted = True
            raise

    def request(
        self,
        method: str,
        url: str,
        *,
        tokens: BearerTokens,
        limiter: SendLimiter | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        is_send: bool = False,
        before_send: Callable[[], None] | None = None,
        before_retry: Callable[[], None] | None = None,
    ) -> requests.Response:
        """
        Call ``url`` with a bearer token, under the retry rules of the module doc.

        :param method: HTTP method.
        :param url: Full URL.
        :param tokens: Gives the bearer token; told when Orange refuses it.
        :param limiter: Waited on before each attempt of a send.
        :param params: Query parameters.
        :param json: JSON body.
        :param is_send: Whether the call sends an SMS (then never sent twice on an unknown outcome).
        :param before_send: Called once, right before the first attempt leaves: after the token
            fetch and at the end of the limiter's wait (timed by the limiter so it costs no slot);
            if it raises, nothing is sent.
        :param before_retry: Called right before each later attempt leaves (after a 429, a 503, a
            refused connection or a refused token: seconds to minutes later), at the end of its
            limiter's wait like ``before_send``; if it raises, nothing more is sent.
        :return: The first answer under 400 (the endpoint decides whether it counts as done).
        """
        # Whether an earlier attempt may have been carried out by Orange although it failed for us.
        maybe_applied = False
        pending_hook = before_send
        left = False  # whether an attempt has left: the next one is a retry

        def attempt() -> requests.Response:
            nonlocal maybe_applied, pending_hook, left
            for refreshed in (False, True):
                # Token first: a slot reserved before a slow token fetch would be used late, bunching
                # this send with the next process's and pushing the account over its limit.
                token = tokens.get_token()
                hook, pending_hook = pending_hook, None
                if hook is None and left:
                    hook = before_retry
                send_limiter = limiter if is_send else None
                if send_limiter is not None:
                    send_limiter.wait(send_limiter.book(), before_send=hook)
                elif hook is not None:
                    hook()
                released = time.monotonic()
                left = True
                try:
                    response = self.send_once(
                        method,
                        url,
                        idempotent=not is_send,
                        params=params,
                        json=json,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except OrangeSMSConnectionError as exc:
                    cause = exc.__cause__
                    maybe_applied |= isinstance(cause, requests.RequestException) and not _never_sent(cause)
                    raise
                if send_limiter is not None:  # Orange counted it by now: a late answer holds the next ones
                    send_limiter.answered(time.monotonic() - released)
                if response.status_code < 400:
                    return response
                if method == "DELETE" and response.status_code == 404 and maybe_applied:
                    # An earlier attempt's answer was lost after Orange had already deleted it.
                    log.info("%s was already deleted by an earlier attempt", urlsplit(url).path)
                    return response
                outcome_unknown = (
                    response.status_code >= 500 and response.status_code not in _SEND_RETRY_STATUSES
                )
                maybe_applied |= outcome_unknown
                error = error_from_response(response)
                if response.status_code == 401 and error.code in _STALE_TOKEN_CODES and not refreshed:
                    log.info("Orange SMS API token refused (%s); fetching a new one", error.code)
                    tokens.invalidate_token(token)
                    continue
                if is_send and outcome_unknown:
                    raise OrangeSMSSendUncertainError(
                        error.status_code,
                        error.code,
                        f"{error.message}: a gateway error on a send leaves its outcome unknown, so it "
                        "is not retried automatically (that could send the SMS twice)",
                        error.description,
                    )
                raise error
            raise AssertionError("unreachable")

        return self.retrying(attempt)

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()
