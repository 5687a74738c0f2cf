"""Credentials and the OAuth2 access token, fetched once per set of credentials and shared.

Token rules:

* a token is reused, by this client and through the
  :class:`~airflow_provider_orange_sms.token.token_cache.TokenCache` by every process sharing the
  cache, until shortly before it expires;
* the token request - one attempt per hold of the cache's lock (backoff sleeps happen outside it), a
  bounded wait for that lock, and a failure (endpoint down, credentials refused) remembered in the
  cache for ``failure_ttl`` seconds: other processes then fail at once with a retryable error (or
  the auth error) instead of retrying on their own;
* a 400 or 401 from the token endpoint means the credentials were rejected: never retried;
* a cache that cannot be used (read-only home, a Variable store outside a task) does not stop the
  SMS: the client then uses a token of its own.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING

from airflow_provider_orange_sms.exceptions import (
    OrangeSMSAuthError,
    OrangeSMSConnectionError,
    OrangeSMSError,
)
from airflow_provider_orange_sms.token.token_cache import (
    AccessToken,
    TokenCache,
    TokenFailure,
    TokenLockTimeout,
    cache_key,
)
from airflow_provider_orange_sms.wire import error_from_response

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_orange_sms.wire import Transport

log = logging.getLogger(__name__)

__all__ = ["SharedToken", "basic_authorization", "client_id_of", "token_lifetime"]


def basic_authorization(
    client_id: str | None, client_secret: str | None, authorization_header: str | None
) -> str:
    """
    Return the ``Basic …`` value sent to the token endpoint.

    :param client_id: OAuth2 client id.
    :param client_secret: OAuth2 client secret.
    :param authorization_header: Ready-made ``Basic …`` value (``Basic`` may be left out); wins.
    :raises ValueError: When neither the header nor both id and secret are given.
    """
    if authorization_header:
        header = authorization_header.strip()
        if not header.lower().startswith("basic "):
            header = "Basic " + header
        return header
    if not client_id or not client_secret:
        raise ValueError(
            "Orange SMS credentials missing: set the client id and client secret "
            "(connection login and password) or the authorization_header extra"
        )
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def client_id_of(authorization: str) -> str:
    """
    Return the client id inside a ``Basic`` value.

    :param authorization: ``Basic <base64 of client_id:client_secret>``.
    :raises ValueError: When it is not such a value (the value itself is not named: it is a secret).
    """
    try:
        decoded = base64.b64decode(authorization.split(" ", 1)[1], validate=True).decode()
    except (IndexError, ValueError, binascii.Error):
        raise ValueError(
            "Invalid authorization_header: expected 'Basic <base64 of client_id:client_secret>'"
        ) from None
    if ":" not in decoded:
        raise ValueError("Invalid authorization_header: expected 'Basic <base64 of client_id:client_secret>'")
    return decoded.split(":", 1)[0]


#: Lifetime assumed when the token endpoint gives none (OAuth2 makes ``expires_in`` optional).
DEFAULT_TOKEN_LIFETIME = 3600.0
#: Longest lifetime believed: a token is asked for again at least daily (Orange's live an hour).
MAX_TOKEN_LIFETIME = 86400.0


def token_lifetime(expires_in: object, token_url: str) -> float:
    """
    The seconds a new token lives, from the token endpoint's ``expires_in``.

    Missing (or ``null``): :data:`DEFAULT_TOKEN_LIFETIME`. A number or numeric string (Orange sends
    ``"3600"``) above :data:`MAX_TOKEN_LIFETIME`, ``inf`` included, is capped with a warning: a
    token believed forever would be kept past its real expiry by every process sharing it.

    :param expires_in: The value as the endpoint answered it.
    :param token_url: The endpoint, named in the error.
    :raises OrangeSMSError: When it is not a number of seconds of at least 1 (text, a boolean,
        ``NaN``, 0, a negative number): such a token would be fetched again before every call.
    """
    if expires_in is None:
        return DEFAULT_TOKEN_LIFETIME
    seconds = float("nan")
    if isinstance(expires_in, (int, float, str)) and not isinstance(expires_in, bool):
        try:
            seconds = float(expires_in)
        except OverflowError:  # an integer too long for a float: a lifetime beyond any cap
            seconds = float("inf")
        except ValueError:
            pass
    if not seconds >= 1:  # NaN too
        raise OrangeSMSError(
            None,
            None,
            f"the token endpoint {token_url} answered expires_in={repr(expires_in)[:40]}: "
            "not a token lifetime (expected a number of seconds of at least 1)",
        )
    if seconds > MAX_TOKEN_LIFETIME:
        log.warning(
            "The token endpoint %s answered expires_in=%s: using the token for %g s at most",
            token_url,
            repr(expires_in)[:40],
            MAX_TOKEN_LIFETIME,
        )
        return MAX_TOKEN_LIFETIME
    return seconds


class SharedToken:
    """
    The access token of one set of credentials, shared through a token cache.

    :param token_url: Full URL of the token endpoint.
    :param authorization: The ``Basic …`` value sent to it.
    :param client_id: The client id (part of the cache key).
    :param cache: Where the token, the lock and remembered failures are shared.
    :param transport: Sends the token request and retries it.
    :param lock_timeout: Longest wait, in seconds, for another process's token request.
    :param failure_ttl: Seconds a failed token request is remembered; ``0`` disables it.
    :param on_secret: Called with each access token, so a log masker can redact it.
    """

    def __init__(
        self,
        *,
        token_url: str,
        authorization: str,
        client_id: str,
        cache: TokenCache,
        transport: Transport,
        lock_timeout: float,
        failure_ttl: float,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        self.token_url = token_url
        self.cache = cache
        self.cache_key = cache_key(token_url, client_id, authorization)
        self.lock_timeout = lock_timeout
        self.failure_ttl = failure_ttl
        #: The token this client holds (``None`` before the first one and after a refusal).
        self.current: AccessToken | None = None
        #: Token requests this client sent.
        self.requests = 0
        self._authorization = authorization
        self._transport = transport
        self._on_secret = on_secret
        self._lock = threading.Lock()

    def get_token(self, *, ignore_recent_failure: bool = False) -> str:
        """
        Return a valid access token, fetching one only if no process sharing the cache has one.

        :param ignore_recent_failure: Ask the token endpoint even when a token request failed in the
            last ``failure_ttl`` seconds (the connection test: each press wants a fresh answer).
        :raises OrangeSMSAuthError: When Orange rejects the client id/secret.
        """
        token = self.current
        if token is not None and token.is_fresh():
            return token.access_token
        with self._lock:
            token = self.cache.get(self.cache_key)
            if token is None or not token.is_fresh():
                token = self._fetch_shared_token(ignore_recent_failure)
            if self._on_secret is not None and token.access_token:
                self._on_secret(token.access_token)
            self.current = token
        return token.access_token

    def invalidate_token(self, access_token: str | None = None) -> None:
        """
        Forget the current token (after Orange said it is invalid or expired).

        :param access_token: The token that was refused; a newer one fetched meanwhile is kept.
        """
        with self._lock:
            token = self.current
            if token is not None and (access_token is None or token.access_token == access_token):
                self.current = None
                try:
                    self.cache.delete(self.cache_key, token)
                except Exception as exc:
                    log.warning("Could not drop the Orange SMS token from the cache (%s)", exc)

    def _fetch_shared_token(self, ignore_recent_failure: bool = False) -> AccessToken:
        """
        Request a token, one HTTP attempt per hold of the cache's lock, retrying between holds.

        Before each attempt, under the lock: a token another process stored meanwhile is used, and a
        failure another process met in the last :attr:`failure_ttl` seconds is raised again without
        a request (unless ``ignore_recent_failure``). Backoff sleeps happen outside the lock.
        """
        fetch_id = uuid.uuid4().hex
        cache = self.cache

        def attempt() -> AccessToken:
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(cache.lock(self.cache_key, timeout=self.lock_timeout))
                except TokenLockTimeout:
                    # The holder is stuck in a request (a stalled endpoint): requesting in parallel
                    # would only add load on an endpoint capped at ~50 requests a minute, so fail
                    # with a retryable error, unless it stored a token or a failure meanwhile.
                    token = cache.get(self.cache_key)
                    if token is not None and token.is_fresh():
                        return token
                    self._raise_remembered_failure(fetch_id)
                    error = OrangeSMSConnectionError(
                        None,
                        None,
                        f"waited {self.lock_timeout:g} s for another process's token request to "
                        f"{self.token_url}; try again later",
                    )
                    error.retries_exhausted = True
                    raise error from None
                except Exception as exc:
                    # A cache that cannot be used (read-only home, a Variable store outside a task)
                    # must not stop the SMS: fall back to this client's own token.
                    log.warning(
                        "Orange SMS token cache unavailable (%s); using a token for this process", exc
                    )
                    return self._request_token()
                token = cache.get(self.cache_key)
                if token is not None and token.is_fresh():
                    return token
                if not ignore_recent_failure:
                    self._raise_remembered_failure(fetch_id)
                try:
                    token = self._request_token()
                except OrangeSMSError as exc:
                    self._remember_failure(fetch_id, exc)
                    raise
                try:
                    cache.set(self.cache_key, token)
                    cache.clear_failure(self.cache_key)
                except Exception as exc:
                    log.warning("Could not store the Orange SMS token in the cache (%s); continuing", exc)
                return token

        log.info("Requesting an Orange SMS API access token from %s", self.token_url)
        token: AccessToken = self._transport.retrying(attempt)
        return token

    def _raise_remembered_failure(self, fetch_id: str) -> None:
        """Raise the failure another fetch met recently, if any (not this fetch's own)."""
        failure = self.cache.get_failure(self.cache_key)
        if failure is None or not failure.is_active() or failure.owner == fetch_id:
            return
        left = failure.until - time.time()
        message = f"a token request failed moments ago, not trying again for {left:.0f} s: {failure.message}"
        error: OrangeSMSError = (
            OrangeSMSAuthError(None, None, message)
            if failure.auth
            else OrangeSMSConnectionError(None, None, message)
        )
        # Final: the outer retry loops must not wait and ask again.
        error.retries_exhausted = True
        raise error

    def _remember_failure(self, fetch_id: str, exc: OrangeSMSError) -> None:
        if not self.failure_ttl:
            return
        failure = TokenFailure(
            until=time.time() + self.failure_ttl,
            message=str(exc),
            auth=isinstance(exc, OrangeSMSAuthError),
            owner=fetch_id,
        )
        try:
            self.cache.set_failure(self.cache_key, failure)
        except Exception as error:
            log.warning("Could not remember the failed Orange SMS token request (%s)", error)

    def _request_token(self) -> AccessToken:
        """One request to the token endpoint (the caller retries)."""
        self.requests += 1
        response = self._transport.send_once(
            "POST",
            self.token_url,
            idempotent=True,
            headers={"Authorization": self._authorization},
            data={"grant_type": "client_credentials"},
        )
        if response.status_code >= 400:
            error = error_from_response(response)
            if response.status_code in (400, 401):
                raise OrangeSMSAuthError(
                    response.status_code,
                    error.code,
                    "the client id/secret (or authorization header) were rejected by the token "
                    f"endpoint {self.token_url}",
                    error.message,
                )
            raise error
        try:
            body = response.json()
            return AccessToken.from_lifetime(
                str(body["access_token"]),
                token_lifetime(body.get("expires_in"), self.token_url),
                body.get("token_type", "Bearer"),
            )
        except (ValueError, KeyError, TypeError):
            raise OrangeSMSError(
                response.status_code, None, "token endpoint answered without an access_token"
            ) from None
