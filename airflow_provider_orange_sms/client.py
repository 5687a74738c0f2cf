"""The Orange SMS API over HTTP: token, throttle, retries, endpoints and error parsing.

This is the only module that knows Orange's URLs, bodies and error formats. It does not import
Airflow: the hook builds an :class:`OrangeSMSClient` from a connection, and the sandbox tests and
benchmarks use it directly.

Retry rules (each request):

* connection refused / connect timeout - the request never left: retried for every call;
* 429 - waits ``Retry-After`` (or backs off) and retries; a 429 means nothing was accepted;
* 5xx - retried with exponential backoff, except 502/504 on a send (a gateway lost the answer of a
  backend that may have accepted the SMS);
* reset, read timeout, broken response - retried for reads and deletes; for a send the outcome is
  unknown, so :class:`~airflow_provider_orange_sms.exceptions.OrangeSMSSendUncertainError` is
  raised instead of risking a duplicate SMS;
* 401 with code 41/42 - the token is dropped, a new one fetched and the call retried once;
* the token request - one attempt per hold of the machine-wide token lock (backoff sleeps happen
  outside it), a bounded wait for that lock, and a failure (endpoint down, credentials refused)
  remembered machine-wide for ``token_failure_ttl`` seconds: other processes then fail at once with
  a retryable error (or the auth error) instead of retrying on their own;
* 400, 403, 404 and the token endpoint's 401 - never retried;
* a send (or a DR subscription) counts as done only on a 201 whose ``resourceURL`` or ``Location``
  yields an id. A 2xx carrying Orange's ``requestError`` raises the bad request it carries; any
  other 2xx (an HTML page from a proxy, 200/202/204 without an id, an empty 201) raises
  :class:`~airflow_provider_orange_sms.exceptions.OrangeSMSSendUncertainError` for a send (Orange
  may have acted) and is never retried.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from urllib3.exceptions import NewConnectionError

from airflow_provider_orange_sms.addresses import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    SENDER_ADDRESSES,
    check_message,
    country_of,
    normalize_country,
    normalize_recipient,
    normalize_sender,
    normalize_sender_addresses,
)
from airflow_provider_orange_sms.exceptions import (
    TRANSIENT_ERRORS,
    OrangeSMSAuthError,
    OrangeSMSBadRequestError,
    OrangeSMSConnectionError,
    OrangeSMSError,
    OrangeSMSNotFoundError,
    OrangeSMSRateLimitError,
    OrangeSMSSendUncertainError,
    OrangeSMSServerError,
)
from airflow_provider_orange_sms.throttle import SendLimiter, SendThrottle
from airflow_provider_orange_sms.token_cache import (
    AccessToken,
    FileTokenCache,
    MemoryTokenCache,
    TokenCache,
    TokenFailure,
    TokenLockTimeout,
    cache_key,
    default_cache_dir,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.orange.com"
DEFAULT_TOKEN_PATH = "/oauth/v3/token"
DEFAULT_RATE_LIMIT_PER_SECOND = 5.0
# Long enough that a burst of tasks started together sees the first one's failure, short enough
# that a fixed endpoint or corrected secret is picked up by the next task retry.
DEFAULT_TOKEN_FAILURE_TTL = 30.0
SEND_PATH = "/smsmessaging/v1/outbound/tel%3A%2B{sender}/requests"
SUBSCRIPTIONS_PATH = "/smsmessaging/v1/outbound/tel%3A%2B{sender}/subscriptions"
SUBSCRIPTION_PATH = "/smsmessaging/v1/outbound/subscriptions/{subscription_id}"
CONTRACTS_PATH = "/sms/admin/v1/contracts"
STATISTICS_PATH = "/sms/admin/v1/statistics"
PURCHASE_ORDERS_PATH = "/sms/admin/v1/purchaseorders"
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

    max_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    max_retry_after: float = 120.0


def _fill_placeholders(text: str, variables: list[str]) -> str:
    # Replace %10 before %1 so the shorter placeholder does not eat the longer one.
    for index in range(len(variables), 0, -1):
        text = text.replace(f"%{index}", variables[index - 1])
    return text


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_from_response(response: requests.Response) -> OrangeSMSError:
    """
    Turn an error response from Orange into the matching :class:`OrangeSMSError` subclass.

    Understands the three formats Orange uses: gateway errors (``code``/``message``/
    ``description``), service and policy exceptions (``requestError``) and OAuth2 errors
    (``error``/``error_description``).

    :param response: A response with a status of 400 or more, or a 2xx whose body carries
        Orange's ``requestError`` (then an :class:`OrangeSMSBadRequestError`).
    """
    status = response.status_code
    code: int | str | None = None
    message = response.reason or ""
    description: str | None = None
    variables: list[str] = []
    is_service_error = False
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        if isinstance(body.get("requestError"), Mapping):
            request_error = body["requestError"]
            exc = request_error.get("serviceException") or request_error.get("policyException") or {}
            is_service_error = True
            raw_vars = exc.get("variables") or []
            variables = [str(raw_vars)] if isinstance(raw_vars, str) else [str(v) for v in raw_vars]
            code = exc.get("messageId")
            message = _fill_placeholders(str(exc.get("text", "")), variables)
        elif "error" in body:
            code = str(body["error"])
            message = str(body.get("error_description") or body["error"])
        elif "code" in body:
            code = body["code"]
            if isinstance(code, str) and code.strip().isdigit():
                code = int(code)  # some gateways send "42"
            message = str(body.get("message") or message)
            description = body.get("description")
    elif response.text:
        description = response.text[:200]

    if (status in (400, 403) or status < 400) and is_service_error:
        return OrangeSMSBadRequestError(status, code, message, description, variables=variables)
    if status in (401, 403):
        return OrangeSMSAuthError(status, code, message, description)
    if status == 404:
        return OrangeSMSNotFoundError(status, code, message, description)
    if status == 429:
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        return OrangeSMSRateLimitError(status, code, message, description, retry_after=retry_after)
    if status >= 500:
        return OrangeSMSServerError(status, code, message, description)
    if status == 400:
        return OrangeSMSBadRequestError(status, code, message, description, variables=variables)
    return OrangeSMSError(status, code, message, description)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request failed before any byte reached the server (safe to resend)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError)


def _is_retryable(exc: BaseException) -> bool:
    if getattr(exc, "retries_exhausted", False):
        return False
    return isinstance(exc, TRANSIENT_ERRORS)


def _created_id(response: requests.Response, envelope: str, marker: str) -> str:
    """
    The id of a created resource: the path segment after ``marker`` in the body's ``resourceURL``
    (inside ``envelope``), or in the ``Location`` header when the body has none. ``""`` if neither.
    """
    url = ""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        url = str(response.json()[envelope]["resourceURL"] or "")
    ids = [_id_in(candidate, marker) for candidate in (url, response.headers.get("Location", ""))]
    return next((found for found in ids if found), "")


def _id_in(url: str, marker: str) -> str:
    path = urlsplit(url).path if "://" in url else url
    if marker not in path:
        return ""
    return path.rsplit(marker, 1)[1].strip("/").split("/")[0].strip()


def describe_response(response: requests.Response, secrets: tuple[str, ...] = ()) -> str:
    """
    Return a short description of what came back: status, content type and the body's start.

    :param response: The HTTP response.
    :param secrets: Values blanked out of the snippet (the access token, should a proxy echo it).
    """
    content_type = response.headers.get("Content-Type") or "no content type"
    snippet = " ".join(response.text[:200].split())
    for secret in secrets:
        if secret:
            snippet = snippet.replace(secret, "***")
    body = f"body {snippet[:120]!r}" if snippet else "an empty body"
    return f"HTTP {response.status_code} {response.reason or ''}".rstrip() + f", {content_type}, {body}"


def _request_error_in(response: requests.Response) -> OrangeSMSError | None:
    """The error of a 2xx answer whose JSON body is Orange's ``requestError`` (else ``None``)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, Mapping) and isinstance(body.get("requestError"), Mapping):
        return error_from_response(response)
    return None


class OrangeSMSClient:
    """
    A client of the Orange SMS API (send, balance, statistics, purchase orders, DR subscriptions).

    Give either ``client_id`` and ``client_secret`` or ``authorization_header`` (the ``Basic …``
    value the Orange developer portal shows).

    :param client_id: OAuth2 client id of the Orange application.
    :param client_secret: OAuth2 client secret.
    :param authorization_header: Ready-made ``Basic …`` header, instead of id and secret.
    :param base_url: API root, ``https://api.orange.com`` by default; any ``http(s)://host:port``.
    :param token_path: Path of the token endpoint (``/oauth/v3/token``; ``/oauth/v2/token`` works).
    :param sender_address: Default sender number (``2250000``, ``+2250000`` or ``tel:+2250000``).
        When absent, the sender of ``country`` in Orange's list is used.
    :param sender_name: Default sender name (must be whitelisted by Orange).
    :param sender_addresses: Sender number per recipient country (ISO 3166 alpha-3), e.g.
        ``{"CIV": "2250000", "SEN": "2210000"}``: each SMS goes out from the sender of its
        recipient's country, and a recipient of another country is refused before any request.
    :param country: Default ISO 3166 alpha-3 country (alpha-2 accepted) for balance, statistics and
        orders, and the country of recipients written without a country code (``0700000001``).
    :param rate_limit_per_second: Sends per second across every process on this machine; ``None``
        or ``0`` lifts the limit.
    :param make_limiter: Builds the send limiter from the rate and what identifies the account
        (base URL + client id), e.g. a
        :class:`~airflow_provider_orange_sms.redis_throttle.RedisSendThrottle` shared by every
        machine; by default the per-machine :class:`SendThrottle` in ``state_dir``.
    :param token_cache: Where tokens are shared; ``None`` keeps them in this client only.
    :param state_dir: Directory of the shared throttle state (default: the cache directory).
    :param connect_timeout: Seconds to wait for a connection.
    :param read_timeout: Seconds to wait for a response once the request is sent.
    :param retry: Retry policy.
    :param max_message_length: Longest SMS text accepted, in characters; ``None`` for no limit.
        Orange does not document its maximum; the default (1,530: ten concatenated GSM-7 segments)
        catches runaway texts before they cost units.
    :param token_lock_timeout: Longest wait, in seconds, for another process's token request;
        ``None`` waits one request's worst case (``connect_timeout + read_timeout`` plus 5 s), as
        the lock is held for one HTTP attempt at a time. Then a retryable error is raised.
    :param token_failure_ttl: Seconds a failed token request (endpoint down, credentials refused) is
        remembered machine-wide, so other processes fail fast instead of each retrying; ``0``
        disables it.
    :param on_secret: Called with every secret value the client derives (the ``Basic`` credentials,
        each access token) so a log masker can redact it; the hook registers Airflow's.
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        authorization_header: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        token_path: str = DEFAULT_TOKEN_PATH,
        sender_address: str | None = None,
        sender_name: str | None = None,
        sender_addresses: Mapping[str, str] | None = None,
        country: str | None = None,
        rate_limit_per_second: float | None = DEFAULT_RATE_LIMIT_PER_SECOND,
        token_cache: TokenCache | None = None,
        state_dir: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        on_secret: Callable[[str], None] | None = None,
        max_message_length: int | None = DEFAULT_MAX_MESSAGE_LENGTH,
        token_lock_timeout: float | None = None,
        token_failure_ttl: float = DEFAULT_TOKEN_FAILURE_TTL,
        make_limiter: Callable[[float, str], SendLimiter] | None = None,
    ) -> None:
        self._on_secret = on_secret
        self.base_url = self.normalize_base_url(base_url)
        self.token_url = self.base_url + "/" + (token_path or DEFAULT_TOKEN_PATH).lstrip("/")
        self._authorization = self._basic_authorization(client_id, client_secret, authorization_header)
        self._report_secret(self._authorization.split(" ", 1)[-1])
        self.client_id = self._client_id_of(self._authorization)
        self.country = normalize_country(country) if country else None
        self.sender_address = normalize_sender(sender_address) if sender_address else None
        self.sender_name = sender_name or None
        #: Sender number per recipient country (alpha-3), when senders are routed by country.
        self.sender_addresses = normalize_sender_addresses(sender_addresses) if sender_addresses else {}
        if max_message_length is not None and (
            isinstance(max_message_length, bool)
            or not isinstance(max_message_length, int)
            or max_message_length < 1
        ):
            raise ValueError(
                f"Invalid max_message_length {max_message_length!r}: expected a whole number >= 1 or None"
            )
        #: Longest text :meth:`send_sms` accepts (characters), ``None`` for no limit.
        self.max_message_length = max_message_length
        self.timeout = (float(connect_timeout), float(read_timeout))
        for name, seconds in zip(("connect_timeout", "read_timeout"), self.timeout, strict=True):
            if not 0 < seconds < float("inf"):  # inf overflowed in the socket layer; NaN fails too
                raise ValueError(f"Invalid {name} {seconds!r}: expected a finite number of seconds > 0")
        #: Longest wait for another process's token request (seconds).
        self.token_lock_timeout = (
            float(token_lock_timeout) if token_lock_timeout is not None else sum(self.timeout) + 5.0
        )
        #: Seconds a failed token request is remembered for other processes.
        self.token_failure_ttl = float(token_failure_ttl)
        self.retry = retry or RetryPolicy()
        self._token_cache: TokenCache = token_cache if token_cache is not None else MemoryTokenCache()
        self._cache_key = cache_key(self.token_url, self.client_id, self._authorization)
        self._token: AccessToken | None = None
        self._token_lock = threading.Lock()
        self.throttle: SendLimiter | None = None
        if rate_limit_per_second:
            account = f"{self.base_url}\0{self.client_id}"
            if make_limiter is not None:
                self.throttle = make_limiter(float(rate_limit_per_second), account)
            else:
                self.throttle = SendThrottle(
                    float(rate_limit_per_second), state_dir or default_cache_dir(), account=account
                )
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.mount("http://", HTTPAdapter(pool_maxsize=16))
        self.session.mount("https://", HTTPAdapter(pool_maxsize=16))
        self.token_requests = 0
        #: How the client waits between attempts (replaceable, e.g. to record the waits in tests).
        self.sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"OrangeSMSClient(base_url={self.base_url!r}, client_id={self.client_id!r})"

    def _report_secret(self, value: str) -> None:
        if self._on_secret is not None and value:
            self._on_secret(value)

    @classmethod
    def with_file_cache(cls, cache_dir: str | None = None, **kwargs: Any) -> OrangeSMSClient:
        """
        Build a client whose token is shared through :class:`FileTokenCache` (the usual setup).

        :param cache_dir: Directory for the token files and throttle state.
        :param kwargs: Passed to :class:`OrangeSMSClient`.
        """
        return cls(token_cache=FileTokenCache(cache_dir), state_dir=cache_dir, **kwargs)

    # -- credentials -----------------------------------------------------------------------------

    @staticmethod
    def normalize_base_url(base_url: str) -> str:
        """
        Return ``base_url`` without a trailing slash, with ``https://`` added when it has no scheme.

        :param base_url: ``https://api.orange.com``, ``api.orange.com``, ``http://127.0.0.1:8089``…
        :raises ValueError: When it is not an http(s) URL or has a query string or fragment, naming it.
        """
        base = (base_url or DEFAULT_BASE_URL).strip().rstrip("/")
        if "://" not in base:
            base = "https://" + base
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Invalid base URL {base_url!r}: expected e.g. 'https://api.orange.com'")
        if parts.query or parts.fragment:
            # Paths are appended to the base: a query would end up before them (the token POST went to /).
            raise ValueError(f"Invalid base URL {base_url!r}: a query string or fragment is not allowed")
        return base

    @staticmethod
    def _basic_authorization(
        client_id: str | None, client_secret: str | None, authorization_header: str | None
    ) -> str:
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

    @staticmethod
    def _client_id_of(authorization: str) -> str:
        try:
            decoded = base64.b64decode(authorization.split(" ", 1)[1], validate=True).decode()
        except (IndexError, ValueError, binascii.Error):
            raise ValueError(
                "Invalid authorization_header: expected 'Basic <base64 of client_id:client_secret>'"
            ) from None
        if ":" not in decoded:
            raise ValueError(
                "Invalid authorization_header: expected 'Basic <base64 of client_id:client_secret>'"
            )
        return decoded.split(":", 1)[0]

    # -- token -----------------------------------------------------------------------------------

    def get_token(self) -> str:
        """
        Return a valid access token, fetching one only if no process on the machine has one.

        :raises OrangeSMSAuthError: When Orange rejects the client id/secret.
        """
        token = self._token
        if token is not None and token.is_fresh():
            return token.access_token
        with self._token_lock:
            token = self._token_cache.get(self._cache_key)
            if token is None or not token.is_fresh():
                token = self._fetch_shared_token()
            self._report_secret(token.access_token)
            self._token = token
        return token.access_token

    def _fetch_shared_token(self) -> AccessToken:
        """
        Request a token, one HTTP attempt per hold of the cache's lock, retrying between holds.

        Before each attempt, under the lock: a token another process stored meanwhile is used, and a
        failure another process met in the last :attr:`token_failure_ttl` seconds is raised again
        without a request. Backoff sleeps happen outside the lock.
        """
        fetch_id = uuid.uuid4().hex
        cache = self._token_cache

        def attempt() -> AccessToken:
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(cache.lock(self._cache_key, timeout=self.token_lock_timeout))
                except TokenLockTimeout:
                    # The holder is stuck in a request (a stalled endpoint): requesting in parallel
                    # would only add load on an endpoint capped at ~50 requests a minute, so fail
                    # with a retryable error, unless it stored a token or a failure meanwhile.
                    token = cache.get(self._cache_key)
                    if token is not None and token.is_fresh():
                        return token
                    self._raise_remembered_failure(fetch_id)
                    error = OrangeSMSConnectionError(
                        None,
                        None,
                        f"waited {self.token_lock_timeout:g} s for another process's token request to "
                        f"{self.token_url}; try again later",
                    )
                    error.retries_exhausted = True  # type: ignore[attr-defined]
                    raise error from None
                except Exception as exc:
                    # A cache that cannot be used (read-only home, a Variable store outside a task)
                    # must not stop the SMS: fall back to this client's own token.
                    log.warning(
                        "Orange SMS token cache unavailable (%s); using a token for this process", exc
                    )
                    return self._request_token()
                token = cache.get(self._cache_key)
                if token is not None and token.is_fresh():
                    return token
                self._raise_remembered_failure(fetch_id)
                try:
                    token = self._request_token()
                except OrangeSMSError as exc:
                    self._remember_failure(fetch_id, exc)
                    raise
                try:
                    cache.set(self._cache_key, token)
                    clear = getattr(cache, "clear_failure", None)
                    if clear is not None:
                        clear(self._cache_key)
                except Exception as exc:
                    log.warning("Could not store the Orange SMS token in the cache (%s); continuing", exc)
                return token

        log.info("Requesting an Orange SMS API access token from %s", self.token_url)
        return self._retrying(attempt)

    def _raise_remembered_failure(self, fetch_id: str) -> None:
        """Raise the failure another fetch met recently, if any (not this fetch's own)."""
        get_failure = getattr(self._token_cache, "get_failure", None)
        failure = get_failure(self._cache_key) if get_failure is not None else None
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
        error.retries_exhausted = True  # type: ignore[attr-defined]
        raise error

    def _remember_failure(self, fetch_id: str, exc: OrangeSMSError) -> None:
        set_failure = getattr(self._token_cache, "set_failure", None)
        if set_failure is None or not self.token_failure_ttl:
            return
        failure = TokenFailure(
            until=time.time() + self.token_failure_ttl,
            message=str(exc),
            auth=isinstance(exc, OrangeSMSAuthError),
            owner=fetch_id,
        )
        try:
            set_failure(self._cache_key, failure)
        except Exception as error:
            log.warning("Could not remember the failed Orange SMS token request (%s)", error)

    def invalidate_token(self, access_token: str | None = None) -> None:
        """
        Forget the current token (after Orange said it is invalid or expired).

        :param access_token: The token that was refused; a newer one fetched meanwhile is kept.
        """
        with self._token_lock:
            token = self._token
            if token is not None and (access_token is None or token.access_token == access_token):
                self._token = None
                try:
                    self._token_cache.delete(self._cache_key, token)
                except Exception as exc:
                    log.warning("Could not drop the Orange SMS token from the cache (%s)", exc)

    def _request_token(self) -> AccessToken:
        """One request to the token endpoint (the caller retries)."""
        self.token_requests += 1
        response = self._http(
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
                float(body.get("expires_in", 3600)),
                body.get("token_type", "Bearer"),
            )
        except (ValueError, KeyError, TypeError):
            raise OrangeSMSError(
                response.status_code, None, "token endpoint answered without an access_token"
            ) from None

    # -- HTTP ------------------------------------------------------------------------------------

    def _http(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            what = f"{method} {urlsplit(url).path}"
            if _never_sent(exc) or idempotent:
                raise OrangeSMSConnectionError(
                    None, None, f"{what} failed: {type(exc).__name__}: {exc}"
                ) from exc
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

    def _retrying(self, fn: Any) -> Any:
        retryer = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=self._log_retry,
            sleep=lambda seconds: self.sleep(seconds),
            reraise=True,
        )
        try:
            return retryer(fn)
        except OrangeSMSError as exc:
            # Already retried here (e.g. the token fetch inside a call): an outer retry loop must not
            # multiply the attempts.
            exc.retries_exhausted = True  # type: ignore[attr-defined]
            raise

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        is_send: bool = False,
        before_request: Callable[[], None] | None = None,
    ) -> requests.Response:
        """
        Call ``path`` with the bearer token, the retry rules and (for sends) the throttle.

        ``before_request`` is called once, before the first attempt leaves: for a send, after its
        throttle slot is booked and before waiting for it, so its work overlaps the wait.
        """
        url = self.base_url + path
        # Whether an earlier attempt may have been carried out by Orange although it failed for us.
        maybe_applied = False
        pending_hook = before_request

        def attempt() -> requests.Response:
            nonlocal maybe_applied, pending_hook
            for refreshed in (False, True):
                # Token first: a slot reserved before a slow token fetch would be used late, bunching
                # this send with the next process's and pushing the account over its limit.
                token = self.get_token()
                booking = self.throttle.book() if is_send and self.throttle is not None else None
                if pending_hook is not None:
                    hook, pending_hook = pending_hook, None
                    hook()
                if booking is not None and self.throttle is not None:
                    self.throttle.wait(booking)
                try:
                    response = self._http(
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
                if response.status_code < 400:
                    return response
                if method == "DELETE" and response.status_code == 404 and maybe_applied:
                    # An earlier attempt's answer was lost after Orange had already deleted it.
                    log.info("%s was already deleted by an earlier attempt", path)
                    return response
                outcome_unknown = (
                    response.status_code >= 500 and response.status_code not in _SEND_RETRY_STATUSES
                )
                maybe_applied |= outcome_unknown
                error = error_from_response(response)
                if response.status_code == 401 and error.code in _STALE_TOKEN_CODES and not refreshed:
                    log.info("Orange SMS API token refused (%s); fetching a new one", error.code)
                    self.invalidate_token(token)
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

        return self._retrying(attempt)

    # -- sender ----------------------------------------------------------------------------------

    def sender_for(self, recipient: str, sender_address: str | None = None) -> str:
        """
        Return the sender number a send to ``recipient`` uses (bare digits).

        ``sender_address`` wins; then the sender of the recipient's country in
        ``sender_addresses`` (a recipient of a country without one is refused); then the client's
        ``sender_address``; then Orange's sender of the client's ``country``.

        :param recipient: A normalised recipient (``tel:+…``).
        :param sender_address: An explicit sender for this send.
        :raises ValueError: When no sender applies, naming the recipient and its country.
        """
        if not sender_address and self.sender_addresses:
            country = country_of(recipient)
            sender = self.sender_addresses.get(country or "")
            if sender is None:
                raise ValueError(
                    f"No sender for {recipient} (country {country or 'unknown'}): sender_addresses has "
                    f"senders for {', '.join(sorted(self.sender_addresses))} only"
                )
            return sender
        return self._sender(sender_address)

    def _sender(self, sender_address: str | None) -> str:
        if sender_address:
            return normalize_sender(sender_address)
        if self.sender_address:
            return self.sender_address
        if self.country and self.country in SENDER_ADDRESSES:
            return SENDER_ADDRESSES[self.country]
        raise ValueError(
            "No sender address: pass sender_address or set the connection's sender_address extra "
            "(e.g. '2250000' for Côte d'Ivoire) or its country"
        )

    def _describe(self, response: requests.Response) -> str:
        token = self._token.access_token if self._token is not None else ""
        return describe_response(response, (token, self._authorization.split(" ", 1)[-1]))

    def _country_params(self, country: str | None) -> dict[str, str]:
        chosen = country or self.country
        return {"country": normalize_country(chosen)} if chosen else {}

    # -- endpoints -------------------------------------------------------------------------------

    def send_sms(
        self,
        recipient: str,
        message: str,
        *,
        sender_address: str | None = None,
        sender_name: str | None = None,
        before_request: Callable[[], None] | None = None,
    ) -> str:
        """
        Send one SMS and return Orange's resource id for it (delivery receipts refer to it).

        Waits for a free slot of the throttle first. Validates everything before any request.

        Only a 201 with a resource id (in the body's ``resourceURL`` or the ``Location`` header)
        counts as sent. Any other 2xx (an HTML page from a proxy, a 200/202/204 without an id, an
        empty 201) raises :class:`OrangeSMSSendUncertainError`: something answered, maybe after
        Orange took the SMS. A 2xx carrying Orange's ``requestError`` raises the matching
        :class:`OrangeSMSBadRequestError`.

        :param recipient: Phone number: international (``+2250700000001``, ``tel:+…``) or national
            in the client's ``country`` (``0700000001``).
        :param message: The text, any Unicode, at most :attr:`max_message_length` characters.
        :param sender_address: Sender number; defaults to the client's.
        :param sender_name: Whitelisted sender name; defaults to the client's.
        :param before_request: Called once before the request leaves, after the throttle slot is
            booked and before waiting for it (e.g. a ledger's "in flight" write, which then costs no
            slot); if it raises, nothing is sent.
        :raises ValueError: On an invalid number, empty or too long message, or missing sender.
        :raises OrangeSMSSendUncertainError: When the answer does not say the SMS was created.
        :raises OrangeSMSError: When Orange refuses the SMS or cannot be reached.
        """
        address = normalize_recipient(recipient, self.country)
        text = check_message(message, self.max_message_length)
        sender = self.sender_for(address, sender_address)
        request: dict[str, Any] = {
            "address": address,
            "senderAddress": f"tel:+{sender}",
            "outboundSMSTextMessage": {"message": text},
        }
        name = sender_name or self.sender_name
        if name:
            request["senderName"] = name
        response = self._request(
            "POST",
            SEND_PATH.format(sender=sender),
            json={"outboundSMSMessageRequest": request},
            is_send=True,
            before_request=before_request,
        )
        resource_id = _created_id(response, "outboundSMSMessageRequest", "/requests/")
        if response.status_code == 201 and resource_id:
            return resource_id
        error = _request_error_in(response)
        if error is not None:
            raise error
        raise OrangeSMSSendUncertainError(
            response.status_code,
            None,
            f"the send to {address} got an answer that does not confirm it ({self._describe(response)}): "
            "Orange may have sent the SMS, so it is not retried automatically (that could send it twice)",
        )

    def get_contracts(self, country: str | None = None) -> dict[str, Any]:
        """
        Return the SMS balance (``partnerContracts``) as Orange sends it.

        :param country: ISO 3166 alpha-3 filter; defaults to the client's country, if any.
        """
        return self._request("GET", CONTRACTS_PATH, params=self._country_params(country)).json()

    def get_available_units(self, country: str | None = None) -> int:
        """
        Return the SMS units left: the sum of ``availableUnits`` for one country or all.

        :param country: ISO 3166 alpha-3 filter; defaults to the client's country, if any.
        """
        wanted = self._country_params(country).get("country")
        total = 0
        contracts = self.get_contracts(country).get("partnerContracts", {}).get("contracts", [])
        for contract in contracts:
            for service_contract in contract.get("serviceContracts", []):
                if wanted and str(service_contract.get("country", "")).upper() != wanted:
                    continue
                total += int(service_contract.get("availableUnits", 0))
        return total

    def get_statistics(self, country: str | None = None, app_id: str | None = None) -> dict[str, Any]:
        """
        Return usage statistics (``partnerStatistics``) as Orange sends them.

        :param country: ISO 3166 alpha-3 filter; defaults to the client's country, if any.
        :param app_id: Application id filter.
        """
        params = self._country_params(country)
        if app_id:
            params["appid"] = app_id
        return self._request("GET", STATISTICS_PATH, params=params).json()

    def get_purchase_orders(self, country: str | None = None) -> dict[str, Any]:
        """
        Return the purchase history (``purchaseOrders``) as Orange sends it.

        :param country: ISO 3166 alpha-3 filter; defaults to the client's country, if any.
        """
        return self._request("GET", PURCHASE_ORDERS_PATH, params=self._country_params(country)).json()

    def create_delivery_receipt_subscription(
        self, notify_url: str, *, sender_address: str | None = None
    ) -> str:
        """
        Subscribe ``notify_url`` to delivery receipts and return the subscription id.

        Orange keeps one URL per account: a new subscription replaces the previous one.

        :param notify_url: The HTTPS URL Orange will POST receipts to.
        :param sender_address: Sender number in the path; defaults to the client's.
        """
        parts = urlsplit(notify_url if isinstance(notify_url, str) else "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"Invalid notify_url {notify_url!r}: expected an absolute URL such as "
                "'https://example.com/orange-sms/receipts'"
            )
        if parts.scheme != "https":
            # The sandbox calls plain http; Orange itself only posts to https on port 443.
            # Only the host: the receiver's path holds its secret.
            log.warning(
                "notify_url on %s is not https: Orange only delivers receipts to https URLs", parts.netloc
            )
        sender = self._sender(sender_address)
        body = {"deliveryReceiptSubscription": {"callbackReference": {"notifyURL": notify_url}}}
        response = self._request("POST", SUBSCRIPTIONS_PATH.format(sender=sender), json=body)
        subscription_id = _created_id(response, "deliveryReceiptSubscription", "/subscriptions/")
        if response.status_code == 201 and subscription_id:
            return subscription_id
        error = _request_error_in(response)
        if error is not None:
            raise error
        # Not retried either: Orange may have created it (a new one would replace it, harmlessly).
        raise OrangeSMSError(
            response.status_code,
            None,
            f"the subscription request got an answer without a subscription id ({self._describe(response)})",
        )

    def get_delivery_receipt_subscription(self, subscription_id: str) -> dict[str, Any]:
        """
        Return a delivery-receipt subscription (``deliveryReceiptSubscription``).

        :param subscription_id: Id returned when it was created.
        """
        path = SUBSCRIPTION_PATH.format(subscription_id=self._check_id(subscription_id))
        return self._request("GET", path).json()

    def delete_delivery_receipt_subscription(
        self, subscription_id: str, *, sender_address: str | None = None
    ) -> None:
        """
        Delete a delivery-receipt subscription.

        :param subscription_id: Id returned when it was created.
        :param sender_address: Sender number in the path; defaults to the client's.
        """
        sender = self._sender(sender_address)
        path = SUBSCRIPTIONS_PATH.format(sender=sender) + "/" + self._check_id(subscription_id)
        self._request("DELETE", path)

    @staticmethod
    def _check_id(subscription_id: str) -> str:
        if not isinstance(subscription_id, str) or not subscription_id.strip():
            raise ValueError(f"Invalid subscription id {subscription_id!r}")
        return quote(subscription_id.strip(), safe="")

    def close(self) -> None:
        """Close the HTTP session and the throttle's state file."""
        self.session.close()
        if self.throttle is not None:
            self.throttle.close()
