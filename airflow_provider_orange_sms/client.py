"""The Orange SMS API's endpoints: :class:`OrangeSMSClient`.

This module and the wire/ modules it builds on are the only ones that know Orange's URLs, bodies
and error formats: ``wire.client_base`` (the client's parts wired together, its settings),
``wire.errors`` (reading Orange's answers), ``token.access_token`` (credentials and the shared access token),
``wire.transport`` (the HTTP session and the retry rules), ``wire.senders`` (which sender number an SMS
goes out from). None imports Airflow: the hook builds an :class:`OrangeSMSClient`
from a connection, and the sandbox tests and benchmarks use it directly.

A read counts as done only on a 2xx whose JSON object holds the endpoint's answer
(``partnerContracts``, ``partnerStatistics``, ``purchaseOrders``, ``deliveryReceiptSubscription``,
of the shape ``wire.read_shapes`` checks). A 2xx whose JSON is one of Orange's error objects raises the
error the same body with its usual status would (``{"code": 42, …}``: an
:class:`~airflow_provider_orange_sms.exceptions.OrangeSMSAuthError`), not retried; any other body
raises :class:`~airflow_provider_orange_sms.exceptions.OrangeSMSError` naming the endpoint and what
is wrong. A send (or a DR subscription) counts as done only on a 201 whose ``resourceURL`` or ``Location``
yields an id. A 2xx carrying Orange's ``requestError`` raises the bad request it carries; any other
2xx (an HTML page from a proxy, 200/202/204 without an id, an empty 201) raises
:class:`~airflow_provider_orange_sms.exceptions.OrangeSMSSendUncertainError` for a send (Orange may
have acted) and is never retried.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow_provider_orange_sms.exceptions import (
    OrangeSMSAuthError,
    OrangeSMSError,
    OrangeSMSSendUncertainError,
)
from airflow_provider_orange_sms.recipients import check_message, normalize_country, normalize_recipient
from airflow_provider_orange_sms.token import FileTokenCache
from airflow_provider_orange_sms.wire import (
    ClientBase,
    RetryPolicy,
    WrongShape,
    check_purchase_orders,
    check_statistics,
    check_subscription,
    contract_units,
    created_id,
    describe_response,
    error_object_in,
    json_object,
    request_error_in,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import requests

    from airflow_provider_orange_sms.config import OrangeSMSConfig
    from airflow_provider_orange_sms.limit import SendLimiter
    from airflow_provider_orange_sms.token import TokenCache

log = logging.getLogger(__name__)

__all__ = ["OrangeSMSClient", "RetryPolicy"]

SEND_PATH = "/smsmessaging/v1/outbound/tel%3A%2B{sender}/requests"
SUBSCRIPTIONS_PATH = "/smsmessaging/v1/outbound/tel%3A%2B{sender}/subscriptions"
SUBSCRIPTION_PATH = "/smsmessaging/v1/outbound/subscriptions/{subscription_id}"
CONTRACTS_PATH = "/sms/admin/v1/contracts"
STATISTICS_PATH = "/sms/admin/v1/statistics"
PURCHASE_ORDERS_PATH = "/sms/admin/v1/purchaseorders"
#: ``country`` value asking for every country, even when the connection has a ``country``.
ALL_COUNTRIES = "*"


class OrangeSMSClient(ClientBase):
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
    :param token_cache: Where tokens are shared; ``None`` keeps them in this client only.
    :param state_dir: Directory of the shared limiter state (default: the cache directory).
    :param make_limiter: Builds the send limiter from the rate and what identifies the account
        (base URL + client id), e.g. a
        :class:`~airflow_provider_orange_sms.limit.redis_limiter.RedisSendLimiter` shared by every
        machine; by default the per-machine
        :class:`~airflow_provider_orange_sms.limit.file_limiter.FileSendLimiter` in ``state_dir``.
    :param connect_timeout: Seconds to wait for a connection.
    :param read_timeout: Seconds to wait for a response once the request is sent.
    :param retry: Retry policy (see :mod:`airflow_provider_orange_sms.wire.transport` for the rules).
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

    @classmethod
    def with_file_cache(cls, cache_dir: str | None = None, **kwargs: Any) -> OrangeSMSClient:
        """
        Build a client whose token is shared through :class:`FileTokenCache` (the usual setup).

        :param cache_dir: Directory for the token files and limiter state.
        :param kwargs: Passed to :class:`OrangeSMSClient`.
        """
        return cls(token_cache=FileTokenCache(cache_dir), state_dir=cache_dir, **kwargs)

    @classmethod
    def from_config(
        cls,
        config: OrangeSMSConfig,
        *,
        token_cache: TokenCache | None = None,
        state_dir: str | None = None,
        on_secret: Callable[[str], None] | None = None,
        make_limiter: Callable[[float, str], SendLimiter] | None = None,
    ) -> OrangeSMSClient:
        """
        Build a client from a connection's validated settings (what the hook does).

        :param config: The settings, from
            :func:`~airflow_provider_orange_sms.config.connection_config.config_from_connection`.
        :param token_cache: Where tokens are shared; ``None`` keeps them in this client only.
        :param state_dir: Directory of the shared limiter state (default: the cache directory).
        :param on_secret: Called with every secret value the client derives.
        :param make_limiter: Builds the send limiter (``rate_limit_backend``); ``None``: the file limiter.
        """
        return cls(
            client_id=config.client_id,
            client_secret=config.client_secret,
            authorization_header=config.authorization_header,
            base_url=config.base_url,
            token_path=config.token_path,
            sender_address=config.sender_address,
            sender_name=config.sender_name,
            sender_addresses=config.sender_addresses,
            country=config.country,
            rate_limit_per_second=config.rate_limit_per_second,
            max_message_length=config.max_message_length,
            token_cache=token_cache,
            state_dir=state_dir,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            retry=RetryPolicy(max_attempts=config.max_attempts, backoff_initial=config.retry_backoff),
            on_secret=on_secret,
            make_limiter=make_limiter,
        )

    def _describe(self, response: requests.Response) -> str:
        return describe_response(response, self._secrets(response))

    def _secrets(self, response: requests.Response) -> tuple[str, ...]:
        """The values no error may show: the token the request carried, the current one, the credentials."""
        sent = str(response.request.headers.get("Authorization", "")) if response.request is not None else ""
        current = self._tokens.current.access_token if self._tokens.current is not None else ""
        return (sent.removeprefix("Bearer "), current, self._authorization.split(" ", 1)[-1])

    def _read(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        answer: str,
        check: Callable[[dict[str, Any]], object],
    ) -> dict[str, Any]:
        """
        GET ``path`` and return its JSON object once ``check`` accepts it.

        :param path: The endpoint's path.
        :param params: Query parameters.
        :param answer: The key of the endpoint's answer (``partnerContracts``); a body without it
            may be one of Orange's errors, which is raised.
        :param check: Raises :class:`WrongShape` when the body is not the endpoint's answer.
        :raises OrangeSMSError: When the 2xx carries an Orange error (its class, as with its usual
            status) or anything but the endpoint's answer (naming the endpoint and what is wrong).
        """
        response = self._request("GET", path, params=params)
        endpoint = f"GET {path}"
        body = json_object(response, endpoint, self._describe)
        error = error_object_in(response, endpoint) if answer not in body else None
        if error is not None:
            if isinstance(error, OrangeSMSAuthError) and error.code in (41, 42):
                # Like a 401 41/42: that token is no good, so the next call fetches another.
                self.invalidate_token(self._secrets(response)[0] or None)
            raise error
        try:
            check(body)
        except WrongShape as exc:
            what = exc.describe(self._secrets(response))
            raise OrangeSMSError(
                response.status_code,
                None,
                f"{endpoint} answered JSON that is not its {answer} answer: {what} "
                f"({self._describe(response)})",
            ) from None
        return body

    def _country_params(self, country: str | None) -> dict[str, str]:
        if country == ALL_COUNTRIES:
            return {}
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
        before_send: Callable[[], None] | None = None,
        before_retry: Callable[[], None] | None = None,
    ) -> str:
        """
        Send one SMS and return Orange's resource id for it (delivery receipts refer to it).

        Waits for a free slot of the limiter first. Validates everything before any request.

        Only a 201 with a resource id (in the body's ``resourceURL`` or the ``Location`` header)
        counts as sent. Any other 2xx (an HTML page from a proxy, a 200/202/204 without an id, an
        empty 201) raises :class:`OrangeSMSSendUncertainError`: something answered, maybe after
        Orange took the SMS. A 2xx carrying Orange's ``requestError`` raises the matching
        :class:`~airflow_provider_orange_sms.exceptions.OrangeSMSBadRequestError`.

        :param recipient: Phone number: international (``+2250700000001``, ``tel:+…``) or national
            in the client's ``country`` (``0700000001``).
        :param message: The text, any Unicode, at most :attr:`max_message_length` characters.
        :param sender_address: Sender number; defaults to the client's.
        :param sender_name: Whitelisted sender name; defaults to the client's.
        :param before_send: Called once right before the request first leaves (after the token
            fetch and the limiter's wait), e.g. to record that the SMS may be sent; if it raises,
            nothing is sent and its exception propagates.
        :param before_retry: Called right before each retry of the request leaves (after a 429 or
            a 503, when Orange accepted nothing), e.g. to read the opt-out list again; if it
            raises, nothing more is sent and its exception propagates.
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
            before_send=before_send,
            before_retry=before_retry,
        )
        resource_id = created_id(response, "outboundSMSMessageRequest", "/requests/")
        if response.status_code == 201 and resource_id:
            return resource_id
        error = request_error_in(response)
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

        :param country: ISO 3166 alpha-3 filter; defaults to the client's country, if any; ``"*"``: all.
        :raises OrangeSMSError: On an error, or a 2xx that is not a balance (no
            ``partnerContracts.contracts[].serviceContracts[]``, an ``availableUnits`` that is not a
            whole number): it names the endpoint and where the answer is wrong.
        """
        return self._read(
            CONTRACTS_PATH, self._country_params(country), answer="partnerContracts", check=contract_units
        )

    def get_available_units(self, country: str | None = None) -> int:
        """
        Return the SMS units left: the sum of ``availableUnits`` for one country or all.

        :param country: ISO 3166 alpha-3 filter; defaults to the client's country, if any; ``"*"``: all.
        :raises OrangeSMSError: As :meth:`get_contracts`.
        """
        wanted = self._country_params(country).get("country")
        units = contract_units(self.get_contracts(country))  # checked by get_contracts: cannot raise
        return sum(count for code, count in units if not wanted or code == wanted)

    def get_statistics(self, country: str | None = None, app_id: str | None = None) -> dict[str, Any]:
        """
        Return usage statistics (``partnerStatistics``) as Orange sends them.

        :param country: ISO 3166 alpha-3 filter; defaults to the client's country, if any; ``"*"``: all.
        :param app_id: Application id filter.
        """
        params = self._country_params(country)
        if app_id:
            params["appid"] = app_id
        return self._read(STATISTICS_PATH, params, answer="partnerStatistics", check=check_statistics)

    def get_purchase_orders(self, country: str | None = None) -> dict[str, Any]:
        """
        Return the purchase history (``purchaseOrders``) as Orange sends it.

        :param country: ISO 3166 alpha-3 filter; defaults to the client's country, if any; ``"*"``: all.
        """
        return self._read(
            PURCHASE_ORDERS_PATH,
            self._country_params(country),
            answer="purchaseOrders",
            check=check_purchase_orders,
        )

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
        sender = self._senders.default_sender(sender_address)
        body = {"deliveryReceiptSubscription": {"callbackReference": {"notifyURL": notify_url}}}
        response = self._request("POST", SUBSCRIPTIONS_PATH.format(sender=sender), json=body)
        subscription_id = created_id(response, "deliveryReceiptSubscription", "/subscriptions/")
        if response.status_code == 201 and subscription_id:
            return subscription_id
        error = request_error_in(response)
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
        return self._read(path, answer="deliveryReceiptSubscription", check=check_subscription)

    def delete_delivery_receipt_subscription(
        self, subscription_id: str, *, sender_address: str | None = None
    ) -> None:
        """
        Delete a delivery-receipt subscription.

        :param subscription_id: Id returned when it was created.
        :param sender_address: Sender number in the path; defaults to the client's.
        """
        sender = self._senders.default_sender(sender_address)
        path = SUBSCRIPTIONS_PATH.format(sender=sender) + "/" + self._check_id(subscription_id)
        self._request("DELETE", path)

    @staticmethod
    def _check_id(subscription_id: str) -> str:
        if not isinstance(subscription_id, str) or not subscription_id.strip():
            raise ValueError(f"Invalid subscription id {subscription_id!r}")
        return quote(subscription_id.strip(), safe="")
