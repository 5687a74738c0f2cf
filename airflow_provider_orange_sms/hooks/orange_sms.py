"""Airflow hook for the Orange SMS API: an Airflow connection turned into an :class:`OrangeSMSClient`."""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_orange_sms._compat import BaseHook
from airflow_provider_orange_sms.addresses import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    normalize_country,
    normalize_sender,
    normalize_sender_addresses,
)
from airflow_provider_orange_sms.client import (
    DEFAULT_BASE_URL,
    DEFAULT_RATE_LIMIT_PER_SECOND,
    DEFAULT_TOKEN_PATH,
    OrangeSMSClient,
    RetryPolicy,
)
from airflow_provider_orange_sms.redis_connection import DEFAULT_REDIS_CONN_ID
from airflow_provider_orange_sms.throttle import (
    MAX_RATE_PER_SECOND,
    MIN_RATE_PER_SECOND,
    SendLimiter,
    SendThrottle,
)
from airflow_provider_orange_sms.token_cache import (
    AccessToken,
    FileTokenCache,
    TokenCache,
    TokenFailure,
    default_cache_dir,
)

if TYPE_CHECKING:
    from collections.abc import Callable

TOKEN_CACHE_CHOICES = ("file", "variable", "redis", "none")
RATE_LIMIT_BACKEND_CHOICES = ("file", "redis")


def _mask_secret(value: str) -> None:
    """Register ``value`` with Airflow's secrets masker so it is redacted from task logs."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDKs
        return
    with contextlib.suppress(Exception):
        mask_secret(value)


def _extra_number(extra: dict[str, Any], key: str, default: float, *, minimum: float = 0) -> float:
    """
    Read a number from the connection extras; empty means ``default`` (an explicit 0 stays 0).

    :param extra: The connection's extras.
    :param key: Extra name, named in the error.
    :param default: Value when the extra is absent or empty.
    :param minimum: Smallest accepted value.
    :raises ValueError: Naming the extra and its value when it is not a finite number >= ``minimum``.
    """
    value = extra.get(key)
    if value is None or value == "":
        return float(default)
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not number >= minimum or not math.isfinite(number):  # NaN fails the first test
        raise ValueError(f"Invalid connection extra {key}={value!r}: expected a finite number >= {minimum:g}")
    return number


def _extra_text(extra: dict[str, Any], key: str, *, allow_int: bool = False) -> str | None:
    """
    Read a text extra; empty means ``None``.

    :param extra: The connection's extras.
    :param key: Extra name, named in the error.
    :param allow_int: Accept a whole number (a JSON number such as ``2250000``) as its digits.
    :raises ValueError: Naming the extra when it is of another type.
    """
    value = extra.get(key)
    if value is None or value == "":
        return None
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"Invalid connection extra {key}={value!r}: expected a string")
    return value.strip() or None


class VariableTokenCache:
    """
    Tokens kept in Airflow Variables, for deployments whose workers run on several machines.

    Every worker then reuses the token one of them fetched. Variables have no compare-and-set, so
    the lock around a fetch is per machine (a file lock): in the worst case each machine fetches
    once when the token expires. The token is stored under ``orange_sms_token_<hash>``; configure
    a Fernet key so Airflow encrypts Variable values at rest.

    :param lock_dir: Directory for the per-machine lock files.
    """

    def __init__(self, lock_dir: str | None = None) -> None:
        self._machine_locks = FileTokenCache(lock_dir)

    @staticmethod
    def variable_key(key: str) -> str:
        """
        Return the name of the Variable holding the token for cache ``key``.

        :param key: Cache key from :func:`~airflow_provider_orange_sms.token_cache.cache_key`.
        """
        return f"orange_sms_token_{key[:32]}"

    def get(self, key: str) -> AccessToken | None:
        """
        Return the token stored in the Variable, if any (an unreadable one counts as none).

        :param key: Cache key.
        """
        from airflow.sdk import Variable

        try:
            data = Variable.get(self.variable_key(key), default=None, deserialize_json=True)
        except Exception:
            return None
        return AccessToken.from_dict(data)

    def set(self, key: str, token: AccessToken) -> None:
        """
        Store ``token`` in the Variable.

        :param key: Cache key.
        :param token: The token to share.
        """
        from airflow.sdk import Variable

        Variable.set(
            self.variable_key(key),
            asdict(token),
            description="Orange SMS API access token cache (airflow-provider-orange-sms)",
            serialize_json=True,
        )

    def delete(self, key: str, token: AccessToken) -> None:
        """
        Delete the Variable if it still holds ``token`` (another worker may have refreshed it).

        :param key: Cache key.
        :param token: The token Orange refused.
        """
        from airflow.sdk import Variable

        if self.get(key) == token:
            with contextlib.suppress(Exception):
                Variable.delete(self.variable_key(key))

    def lock(self, key: str, timeout: float | None = None) -> contextlib.AbstractContextManager[object]:
        """
        Return a per-machine file lock, held while one process requests a token.

        :param key: Cache key from :func:`~airflow_provider_orange_sms.token_cache.cache_key`.
        :param timeout: Longest wait in seconds (``None``: no limit).
        """
        return self._machine_locks.lock(key, timeout)

    def get_failure(self, key: str) -> TokenFailure | None:
        """
        Return the failed token request remembered on this machine for ``key``, if any.

        :param key: Cache key.
        """
        return self._machine_locks.get_failure(key)

    def set_failure(self, key: str, failure: TokenFailure) -> None:
        """
        Remember a failed token request on this machine (not in a Variable: it is short-lived).

        :param key: Cache key.
        :param failure: What failed and until when to remember it.
        """
        self._machine_locks.set_failure(key, failure)

    def clear_failure(self, key: str) -> None:
        """
        Forget the failed token request for ``key`` on this machine.

        :param key: Cache key.
        """
        self._machine_locks.clear_failure(key)


class OrangeSMSHook(BaseHook):
    """
    Interact with the Orange SMS API (Africa and Middle East).

    The connection (type ``orange_sms``) holds the credentials: login = client id, password =
    client secret, or the extra ``authorization_header`` with the portal's ready-made ``Basic …``
    value. Host is the base URL (``https://api.orange.com`` when empty). Extras:
    ``sender_address``, ``sender_addresses`` (country -> sender number, JSON object), ``sender_name``,
    ``country``, ``token_path``, ``rate_limit_per_second``,
    ``token_cache`` (``file``, ``variable``, ``redis`` or ``none``), ``rate_limit_backend``
    (``file`` or ``redis``), ``redis_conn_id``, ``connect_timeout``, ``read_timeout``,
    ``max_attempts``, ``retry_backoff``, ``max_message_length``. Everything is validated when the
    client is built, with errors naming the field, so a bad connection fails before any request.

    The OAuth2 token is fetched once and shared by every hook, task and process on the machine
    until shortly before it expires; sends are spaced to the account's per-second limit across
    processes; transient failures are retried where that cannot duplicate an SMS.

    :param orange_sms_conn_id: The Airflow connection id.
    """

    conn_name_attr = "orange_sms_conn_id"
    default_conn_name = "orange_sms_default"
    conn_type = "orange_sms"
    hook_name = "Orange SMS"

    def __init__(self, orange_sms_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.orange_sms_conn_id = orange_sms_conn_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(orange_sms_conn_id={self.orange_sms_conn_id!r})"

    @staticmethod
    def _base_url(host: str | None, port: int | None) -> str:
        """
        The connection's host as a base URL; the port field goes into the network location (before
        any path) when the host has no port of its own.
        """
        raw = (host or "").strip() or DEFAULT_BASE_URL
        parts = urlsplit(raw if "://" in raw else "https://" + raw)
        if parts.query or parts.fragment:
            extra = "?" + parts.query if parts.query else "#" + parts.fragment
            raise ValueError(
                f"Invalid connection host {host!r}: a query string or fragment ({extra!r}) is not "
                "allowed in the base URL; put the API root only, e.g. 'https://api.orange.com'"
            )
        try:
            own_port = parts.port
        except ValueError:
            raise ValueError(f"Invalid connection host {host!r}: bad port") from None
        netloc = parts.netloc
        if port and own_port is None:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise ValueError(f"Invalid connection port {port!r}: expected 1 to 65535")
            netloc = f"{netloc}:{port}"
        try:
            return OrangeSMSClient.normalize_base_url(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
        except ValueError:
            raise ValueError(
                f"Invalid connection host {host!r}: expected e.g. 'https://api.orange.com'"
            ) from None

    @staticmethod
    def _token_cache(choice: str, redis: Any) -> TokenCache | None:
        if choice == "file":
            return FileTokenCache()
        if choice == "variable":
            return VariableTokenCache()
        if choice == "redis":
            from airflow_provider_orange_sms.redis_connection import deployment_fernet
            from airflow_provider_orange_sms.redis_token_cache import RedisTokenCache

            client, where = redis()
            return RedisTokenCache(client, deployment_fernet(), where=where)
        return None

    @staticmethod
    def _choice(extra: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
        """The extra ``key`` (one of ``choices``; empty means the first), or a ValueError naming it."""
        value = extra.get(key)
        if value is None or value == "":
            return choices[0]
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ValueError(
                f"Invalid connection extra {key}={value!r}: expected one of {', '.join(choices)}"
            )
        return value.strip().lower()

    @staticmethod
    def _make_limiter(backend: str, redis: Any) -> Callable[[float, str], SendLimiter] | None:
        """How the client builds its send limiter for ``rate_limit_backend`` (``None``: the file throttle)."""
        if backend != "redis":
            return None
        from airflow_provider_orange_sms.redis_throttle import RedisSendThrottle

        def make(rate: float, account: str) -> SendLimiter:
            client, where = redis()
            fallback = SendThrottle(rate, default_cache_dir(), account)
            return RedisSendThrottle(rate, client, account, fallback, where=where)

        return make

    @cached_property
    def client(self) -> OrangeSMSClient:
        """The wire client built from the connection (created on first use, then reused)."""
        conn = self.get_connection(self.orange_sms_conn_id)
        extra: dict[str, Any] = conn.extra_dejson or {}
        if not isinstance(extra, dict):
            raise ValueError(f"Invalid connection extra {extra!r}: expected a JSON object")
        authorization_header = _extra_text(extra, "authorization_header")
        for secret in (conn.password, authorization_header):
            if secret:
                _mask_secret(secret)
        rate = _extra_number(extra, "rate_limit_per_second", DEFAULT_RATE_LIMIT_PER_SECOND)
        if rate and not MIN_RATE_PER_SECOND <= rate <= MAX_RATE_PER_SECOND:
            raise ValueError(
                f"Invalid connection extra rate_limit_per_second={extra['rate_limit_per_second']!r}: "
                f"expected {MIN_RATE_PER_SECOND:g} to {MAX_RATE_PER_SECOND:g}, or 0 for no limit"
            )
        country = _extra_text(extra, "country")
        if country is not None:
            try:
                country = normalize_country(country)
            except ValueError as exc:
                raise ValueError(f"Invalid connection extra country={country!r}: {exc}") from None
        sender_address = _extra_text(extra, "sender_address", allow_int=True)
        sender_addresses = extra.get("sender_addresses") or None
        if sender_addresses is not None:
            try:
                sender_addresses = normalize_sender_addresses(sender_addresses)
            except ValueError as exc:
                raise ValueError(f"Invalid connection extra sender_addresses: {exc}") from None
        max_length = _extra_number(extra, "max_message_length", DEFAULT_MAX_MESSAGE_LENGTH, minimum=1)
        if not max_length.is_integer():
            raise ValueError(
                f"Invalid connection extra max_message_length={extra['max_message_length']!r}: "
                "expected a whole number of characters"
            )
        token_cache_choice = self._choice(extra, "token_cache", TOKEN_CACHE_CHOICES)
        rate_limit_backend = self._choice(extra, "rate_limit_backend", RATE_LIMIT_BACKEND_CHOICES)
        redis_conn_id = _extra_text(extra, "redis_conn_id") or DEFAULT_REDIS_CONN_ID
        redis_client: list[tuple[Any, str]] = []

        def redis() -> tuple[Any, str]:
            # One client (one connection pool) for the limiter and the token cache.
            if not redis_client:
                from airflow_provider_orange_sms.redis_connection import redis_client as connect

                redis_client.append((connect(redis_conn_id), f"connection {redis_conn_id!r}"))
            return redis_client[0]

        retry_defaults = RetryPolicy()
        retry = RetryPolicy(
            max_attempts=int(_extra_number(extra, "max_attempts", retry_defaults.max_attempts, minimum=1)),
            backoff_initial=_extra_number(extra, "retry_backoff", retry_defaults.backoff_initial),
        )
        return OrangeSMSClient(
            client_id=conn.login or None,
            client_secret=conn.password or None,
            authorization_header=authorization_header,
            base_url=self._base_url(conn.host, conn.port),
            token_path=_extra_text(extra, "token_path") or DEFAULT_TOKEN_PATH,
            sender_address=self._sender_address(sender_address),
            sender_name=_extra_text(extra, "sender_name"),
            sender_addresses=sender_addresses,
            country=country,
            rate_limit_per_second=rate,
            max_message_length=int(max_length),
            token_cache=self._token_cache(token_cache_choice, redis),
            make_limiter=self._make_limiter(rate_limit_backend, redis),
            connect_timeout=_extra_number(extra, "connect_timeout", 10, minimum=0.001),
            read_timeout=_extra_number(extra, "read_timeout", 30, minimum=0.001),
            retry=retry,
            on_secret=_mask_secret,
        )

    @staticmethod
    def _sender_address(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_sender(value)
        except ValueError as exc:
            raise ValueError(f"Invalid connection extra sender_address={value!r}: {exc}") from None

    def get_conn(self) -> OrangeSMSClient:
        """Return the :class:`OrangeSMSClient` for this connection."""
        return self.client

    def close(self) -> None:
        """Close the client's HTTP session and throttle file, if the client was created."""
        client = self.__dict__.pop("client", None)
        if client is not None:
            client.close()

    # -- API -------------------------------------------------------------------------------------

    def send_sms(
        self,
        recipient: str,
        message: str,
        *,
        sender_address: str | None = None,
        sender_name: str | None = None,
    ) -> str:
        """
        Send one SMS (throttled) and return Orange's resource id for it.

        :param recipient: Phone number in international form: ``+2250700000001``,
            ``2250700000001`` or ``tel:+2250700000001``, spaces and dashes allowed.
        :param message: The text, any Unicode; must not be empty.
        :param sender_address: Sender number; defaults to the connection's ``sender_address``.
        :param sender_name: Whitelisted sender name; defaults to the connection's.
        :raises ValueError: For an invalid number or empty message, before any request.
        :raises OrangeSMSError: When Orange refuses the SMS or cannot be reached.
        """
        return self.client.send_sms(
            recipient, message, sender_address=sender_address, sender_name=sender_name
        )

    def get_contracts(self, country: str | None = None) -> dict[str, Any]:
        """
        Return the SMS balance JSON (``partnerContracts``).

        :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``.
        """
        return self.client.get_contracts(country)

    def get_available_units(self, country: str | None = None) -> int:
        """
        Return the SMS units available, for one country or summed over all.

        :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``.
        """
        return self.client.get_available_units(country)

    def get_statistics(self, country: str | None = None, app_id: str | None = None) -> dict[str, Any]:
        """
        Return the usage statistics JSON (``partnerStatistics``).

        :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``.
        :param app_id: Application id filter.
        """
        return self.client.get_statistics(country, app_id)

    def get_purchase_orders(self, country: str | None = None) -> dict[str, Any]:
        """
        Return the purchase history JSON (``purchaseOrders``).

        :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``.
        """
        return self.client.get_purchase_orders(country)

    def create_delivery_receipt_subscription(
        self, notify_url: str, *, sender_address: str | None = None
    ) -> str:
        """
        Subscribe ``notify_url`` to delivery receipts; return the subscription id.

        :param notify_url: HTTPS URL Orange will POST receipts to (one per account: it replaces
            any previous one).
        :param sender_address: Sender number; defaults to the connection's.
        """
        return self.client.create_delivery_receipt_subscription(notify_url, sender_address=sender_address)

    def get_delivery_receipt_subscription(self, subscription_id: str) -> dict[str, Any]:
        """
        Return the delivery-receipt subscription JSON.

        :param subscription_id: Id returned when it was created.
        """
        return self.client.get_delivery_receipt_subscription(subscription_id)

    def delete_delivery_receipt_subscription(
        self, subscription_id: str, *, sender_address: str | None = None
    ) -> None:
        """
        Delete a delivery-receipt subscription.

        :param subscription_id: Id returned when it was created.
        :param sender_address: Sender number; defaults to the connection's.
        """
        self.client.delete_delivery_receipt_subscription(subscription_id, sender_address=sender_address)

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the connection: get a token, then read the balance (a cheap call that sends nothing).

        :return: ``(True, message)`` on success, ``(False, reason)`` otherwise; never the secret.
        """
        try:
            client = self.client
            client.get_token()
            units = client.get_available_units()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to the Orange SMS API at {client.base_url}: {units} SMS units available"
