"""Airflow hook for the Orange SMS API: an Airflow connection turned into an :class:`OrangeSMSClient`."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.config import OrangeSMSConfig, config_from_connection
from airflow_provider_orange_sms.limit import FileSendLimiter, SendLimiter
from airflow_provider_orange_sms.settings import DEFAULT_CONN_ID
from airflow_provider_orange_sms.token import (
    FileTokenCache,
    TokenCache,
    VariableTokenCache,
    default_cache_dir,
)
from airflow_provider_orange_sms.version_compat import BaseHook, mask_secret

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["OrangeSMSHook", "VariableTokenCache"]

#: Tries per API call of a connection Test (a task's calls use ``max_attempts``).
TEST_CONNECTION_ATTEMPTS = 2


def _mask_secret(value: str) -> None:
    """Register ``value`` with Airflow's secrets masker so it is redacted from task logs."""
    with contextlib.suppress(Exception):
        mask_secret(value)


class OrangeSMSHook(BaseHook):
    """
    Interact with the Orange SMS API (Africa and Middle East).

    The connection (type ``orange_sms``) holds the credentials: login = client id, password =
    client secret, or the extra ``authorization_header`` with the portal's ready-made ``Basic …``
    value. Host is the base URL (``https://api.orange.com`` when empty). The extras are the fields
    of :class:`~airflow_provider_orange_sms.config.connection_config.OrangeSMSConfig` (sender, country,
    token path, rate limit, auth cache, timeouts, retries, message length; the README's Connection section
    lists them). The whole connection is validated when first used (:attr:`config`), with errors
    naming the field, so a bad connection fails before any request.

    The OAuth2 token is fetched once and shared by every hook, task and process on the machine
    until shortly before it expires; sends are spaced to the account's per-second limit across
    processes; transient failures are retried where that cannot duplicate an SMS.

    :param orange_sms_conn_id: The Airflow connection id.
    """

    conn_name_attr = "orange_sms_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "orange_sms"
    hook_name = "Orange SMS"

    def __init__(self, orange_sms_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.orange_sms_conn_id = orange_sms_conn_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(orange_sms_conn_id={self.orange_sms_conn_id!r})"

    @cached_property
    def config(self) -> OrangeSMSConfig:
        """The connection's settings, every field validated (read on first use, then reused)."""
        return config_from_connection(self.get_connection(self.orange_sms_conn_id), on_secret=_mask_secret)

    def _token_cache(self, choice: str) -> TokenCache | None:
        if choice == "file":
            return FileTokenCache()
        if choice == "variable":
            return VariableTokenCache()
        if choice == "redis":
            from airflow_provider_orange_sms.config import deployment_fernet
            from airflow_provider_orange_sms.token import RedisTokenCache

            return RedisTokenCache(self._redis, deployment_fernet(), where=self._redis_name)
        if choice == "none":
            return None
        raise ValueError(f"Invalid auth_cache {choice!r}")  # config_from_connection checked it

    def _make_limiter(self, backend: str) -> Callable[[float, str], SendLimiter] | None:
        """How the client builds its send limiter for ``rate_limit_backend`` (``None``: the file limiter)."""
        if backend != "redis":
            return None
        from airflow_provider_orange_sms.limit import RedisSendLimiter

        def make(rate: float, account: str) -> SendLimiter:
            fallback = FileSendLimiter(rate, default_cache_dir(), account)
            return RedisSendLimiter(rate, self._redis, account, fallback, where=self._redis_name)

        return make

    @cached_property
    def _redis(self) -> Any:
        """The Redis client of ``redis_conn_id`` (one connection pool for the limiter and the cache)."""
        from airflow_provider_orange_sms.config import redis_client

        return redis_client(self.config.redis_conn_id)

    @property
    def _redis_name(self) -> str:
        return f"connection {self.config.redis_conn_id!r}"

    @cached_property
    def client(self) -> OrangeSMSClient:
        """The wire client built from the connection (created on first use, then reused)."""
        config = self.config
        return OrangeSMSClient.from_config(
            config,
            token_cache=self._token_cache(config.auth_cache),
            on_secret=_mask_secret,
            make_limiter=self._make_limiter(config.rate_limit_backend),
        )

    def get_conn(self) -> OrangeSMSClient:
        """Return the :class:`OrangeSMSClient` for this connection."""
        return self.client

    def close(self) -> None:
        """
        Close the client's HTTP session and the limiter's state file, if the client was created.

        The hook stays usable: its next call reads the connection again and opens a new client. The
        operators, sensors and notifier close their hook when their task method ends.
        """
        self.__dict__.pop("config", None)
        self.__dict__.pop("_redis", None)
        client = self.__dict__.pop("client", None)
        if client is not None:
            client.close()

    def __enter__(self) -> OrangeSMSHook:
        """Use the hook in a ``with`` block, which closes it (:meth:`close`) at its end."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the hook (:meth:`close`)."""
        self.close()

    # -- API -------------------------------------------------------------------------------------

    def send_sms(
        self,
        recipient: str,
        message: str,
        *,
        sender_address: str | None = None,
        sender_name: str | None = None,
        before_send: Callable[[], None] | None = None,
        before_retry: Callable[[], None] | None = None,
    ) -> str:
        """
        Send one SMS (within the send limit) and return Orange's resource id for it.

        :param recipient: Phone number in international form: ``+2250700000001``,
            ``2250700000001`` or ``tel:+2250700000001``, spaces and dashes allowed.
        :param message: The text, any Unicode; must not be empty.
        :param sender_address: Sender number; defaults to the connection's ``sender_address``.
        :param sender_name: Whitelisted sender name; defaults to the connection's.
        :param before_send: Called once right before the request leaves (after the token fetch and
            the limiter's wait); if it raises, nothing is sent.
        :param before_retry: Called right before each retry of the request leaves (after a 429 or
            a 503, when Orange accepted nothing); if it raises, nothing more is sent.
        :raises ValueError: For an invalid number or empty message, before any request.
        :raises OrangeSMSError: When Orange refuses the SMS or cannot be reached.
        """
        return self.client.send_sms(
            recipient,
            message,
            sender_address=sender_address,
            sender_name=sender_name,
            before_send=before_send,
            before_retry=before_retry,
        )

    def get_contracts(self, country: str | None = None) -> dict[str, Any]:
        """
        Return the SMS balance JSON (``partnerContracts``).

        :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``; ``"*"``: all.
        """
        return self.client.get_contracts(country)

    def get_available_units(self, country: str | None = None) -> int:
        """
        Return the SMS units available, for one country or summed over all.

        :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``; ``"*"``: all.
        """
        return self.client.get_available_units(country)

    def get_statistics(self, country: str | None = None, app_id: str | None = None) -> dict[str, Any]:
        """
        Return the usage statistics JSON (``partnerStatistics``).

        :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``; ``"*"``: all.
        :param app_id: Application id filter.
        """
        return self.client.get_statistics(country, app_id)

    def get_purchase_orders(self, country: str | None = None) -> dict[str, Any]:
        """
        Return the purchase history JSON (``purchaseOrders``).

        :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``; ``"*"``: all.
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
            config = self.config
            # The UI's Test waits for this: two tries, short waits, not a task's patience.
            quick = replace(
                config,
                max_attempts=min(config.max_attempts, TEST_CONNECTION_ATTEMPTS),
                retry_backoff=min(config.retry_backoff, 0.5),
                connect_timeout=min(config.connect_timeout, 5.0),
            )
            client = OrangeSMSClient.from_config(
                quick, token_cache=self._token_cache(config.auth_cache), on_secret=_mask_secret
            )
            try:
                # Each press of Test asks again; sends keep failing fast on a remembered failure.
                client.get_token(ignore_recent_failure=True)
                units = client.get_available_units()
            finally:
                client.close()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to the Orange SMS API at {client.base_url}: {units} SMS units available"
