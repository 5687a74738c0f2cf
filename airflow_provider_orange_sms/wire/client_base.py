"""The machinery under :class:`~airflow_provider_orange_sms.client.OrangeSMSClient`'s endpoints.

Credentials and the shared access token (``token.access_token``), the HTTP session and retry rules
(``transport``), the send limiter, sender routing (``senders``) and the settings as given,
wired together once; :mod:`airflow_provider_orange_sms.client` adds Orange's endpoints on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.config import (
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_LENGTH,
    DEFAULT_RATE_LIMIT_PER_SECOND,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_TOKEN_FAILURE_TTL,
    DEFAULT_TOKEN_PATH,
    normalize_base_url,
)
from airflow_provider_orange_sms.limit import FileSendLimiter, SendLimiter
from airflow_provider_orange_sms.recipients import (
    normalize_country,
    normalize_sender,
    normalize_sender_addresses,
)
from airflow_provider_orange_sms.token import (
    MemoryTokenCache,
    SharedToken,
    TokenCache,
    basic_authorization,
    client_id_of,
    default_cache_dir,
)
from airflow_provider_orange_sms.wire.senders import SenderRouting
from airflow_provider_orange_sms.wire.transport import RetryPolicy, Transport

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import requests

    from airflow_provider_orange_sms.token import AccessToken


class ClientBase:
    """
    An Orange SMS API client without its endpoints: the parameters are
    :class:`~airflow_provider_orange_sms.client.OrangeSMSClient`'s.
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
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        retry: RetryPolicy | None = None,
        on_secret: Callable[[str], None] | None = None,
        max_message_length: int | None = DEFAULT_MAX_MESSAGE_LENGTH,
        token_lock_timeout: float | None = None,
        token_failure_ttl: float = DEFAULT_TOKEN_FAILURE_TTL,
        make_limiter: Callable[[float, str], SendLimiter] | None = None,
    ) -> None:
        self.base_url = self.normalize_base_url(base_url)
        self.token_url = self.base_url + "/" + (token_path or DEFAULT_TOKEN_PATH).lstrip("/")
        self._authorization = basic_authorization(client_id, client_secret, authorization_header)
        credentials = self._authorization.split(" ", 1)[-1]
        if on_secret is not None and credentials:
            on_secret(credentials)
        self.client_id = client_id_of(self._authorization)
        default_country = normalize_country(country) if country else None
        default_sender = normalize_sender(sender_address) if sender_address else None
        self.sender_name = sender_name or None
        self._senders = SenderRouting(
            sender_address=default_sender,
            sender_addresses=normalize_sender_addresses(sender_addresses) if sender_addresses else {},
            country=default_country,
        )
        if max_message_length is not None and (
            isinstance(max_message_length, bool)
            or not isinstance(max_message_length, int)
            or max_message_length < 1
        ):
            raise ValueError(
                f"Invalid max_message_length {max_message_length!r}: expected a whole number >= 1 or None"
            )
        #: Longest text :meth:`~airflow_provider_orange_sms.client.OrangeSMSClient.send_sms` accepts
        #: (characters), ``None`` for no limit.
        self.max_message_length = max_message_length
        self._transport = Transport(connect_timeout, read_timeout, retry)
        self._token_cache: TokenCache = token_cache if token_cache is not None else MemoryTokenCache()
        self._tokens = SharedToken(
            token_url=self.token_url,
            authorization=self._authorization,
            client_id=self.client_id,
            cache=self._token_cache,
            transport=self._transport,
            lock_timeout=(
                float(token_lock_timeout)
                if token_lock_timeout is not None
                else sum(self._transport.timeout) + 5.0
            ),
            failure_ttl=float(token_failure_ttl),
            on_secret=on_secret,
        )
        self._cache_key = self._tokens.cache_key
        self.limiter: SendLimiter | None = None
        if rate_limit_per_second:
            account = f"{self.base_url}\0{self.client_id}"
            if make_limiter is not None:
                self.limiter = make_limiter(float(rate_limit_per_second), account)
            else:
                self.limiter = FileSendLimiter(
                    float(rate_limit_per_second), state_dir or default_cache_dir(), account=account
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, client_id={self.client_id!r})"

    #: Return ``base_url`` without a trailing slash, with ``https://`` added when it has no scheme.
    normalize_base_url = staticmethod(normalize_base_url)

    # -- settings, as given (normalised) ---------------------------------------------------------

    @property
    def country(self) -> str | None:
        """Default country (ISO 3166 alpha-3), if any."""
        return self._senders.country

    @property
    def sender_address(self) -> str | None:
        """Default sender number (bare digits), if any."""
        return self._senders.sender_address

    @property
    def sender_addresses(self) -> dict[str, str]:
        """Sender number per recipient country (alpha-3), when senders are routed by country."""
        return self._senders.sender_addresses

    @property
    def timeout(self) -> tuple[float, float]:
        """Connect and read timeouts, in seconds."""
        return self._transport.timeout

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
        return self._transport.retry

    @property
    def session(self) -> requests.Session:
        """The HTTP session."""
        return self._transport.session

    @property
    def sleep(self) -> Callable[[float], None]:
        """How the client waits between attempts (replaceable, e.g. to record the waits in tests)."""
        return self._transport.sleep

    @sleep.setter
    def sleep(self, sleep: Callable[[float], None]) -> None:
        self._transport.sleep = sleep

    @property
    def token_lock_timeout(self) -> float:
        """Longest wait for another process's token request (seconds)."""
        return self._tokens.lock_timeout

    @property
    def token_failure_ttl(self) -> float:
        """Seconds a failed token request is remembered for other processes."""
        return self._tokens.failure_ttl

    @property
    def token_requests(self) -> int:
        """Token requests this client sent."""
        return self._tokens.requests

    @property
    def _token(self) -> AccessToken | None:
        return self._tokens.current

    # -- token -----------------------------------------------------------------------------------

    def get_token(self, *, ignore_recent_failure: bool = False) -> str:
        """
        Return a valid access token, fetching one only if no process on the machine has one.

        :param ignore_recent_failure: Ask the token endpoint even when a token request failed moments
            ago (remembered ``token_failure_ttl`` seconds, so sends fail fast instead of each asking);
            for a connection test, which a person runs again expecting a fresh answer.
        :raises OrangeSMSAuthError: When Orange rejects the client id/secret.
        """
        return self._tokens.get_token(ignore_recent_failure=ignore_recent_failure)

    def invalidate_token(self, access_token: str | None = None) -> None:
        """
        Forget the current token (after Orange said it is invalid or expired).

        :param access_token: The token that was refused; a newer one fetched meanwhile is kept.
        """
        self._tokens.invalidate_token(access_token)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        is_send: bool = False,
        before_send: Callable[[], None] | None = None,
        before_retry: Callable[[], None] | None = None,
    ) -> requests.Response:
        """Call ``path`` with the bearer token, the retry rules and (for sends) the limiter."""
        return self._transport.request(
            method,
            self.base_url + path,
            tokens=self,
            limiter=self.limiter if is_send else None,
            params=params,
            json=json,
            is_send=is_send,
            before_send=before_send,
            before_retry=before_retry,
        )

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
        return self._senders.sender_for(recipient, sender_address)

    def default_sender(self, sender_address: str | None = None) -> str:
        """
        Return the sender number of a call without a recipient (a receipt subscription), bare digits.

        ``sender_address`` wins; then the client's ``sender_address``; then Orange's sender of the
        client's ``country``.

        :param sender_address: An explicit sender.
        :raises ValueError: When none applies.
        """
        return self._senders.default_sender(sender_address)

    def close(self) -> None:
        """Close the HTTP session and the limiter's state file."""
        self._transport.close()
        if self.limiter is not None:
            self.limiter.close()
