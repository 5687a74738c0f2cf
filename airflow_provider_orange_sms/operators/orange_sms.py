"""Operators for the Orange SMS API: send SMS, read the account's balance, usage and orders, manage
delivery-receipt subscriptions, manage the opt-out list.

They stay thin: every HTTP detail lives in
:class:`~airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook`. This module is where they are
imported from (``__all__``); ``SendSMSOperator`` is implemented in the internal ``send_sms``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.operators.base import _OrangeSMSBaseOperator, closes_hook
from airflow_provider_orange_sms.operators.opt_out_list import (
    ExportOptOutListOperator,
    ImportOptOutListOperator,
    RemoveFromOptOutListOperator,
)
from airflow_provider_orange_sms.operators.send_sms import (
    DEFAULT_LEDGER_RETENTION,
    PARTIAL_RESULTS_KEY,
    PLAN_KEY,
    SendSMSOperator,
)
from airflow_provider_orange_sms.receipts import record_created, record_deleted, url_origin, url_secrets
from airflow_provider_orange_sms.recipients import contract_country
from airflow_provider_orange_sms.version_compat import mask_secret

if TYPE_CHECKING:
    from collections.abc import Sequence

    import jinja2
    from airflow.sdk import Context

__all__ = [
    "DEFAULT_LEDGER_RETENTION",
    "PARTIAL_RESULTS_KEY",
    "PLAN_KEY",
    "CreateDeliveryReceiptSubscriptionOperator",
    "DeleteDeliveryReceiptSubscriptionOperator",
    "ExportOptOutListOperator",
    "GetDeliveryReceiptSubscriptionOperator",
    "GetPurchaseOrdersOperator",
    "GetSMSBalanceOperator",
    "GetSMSStatisticsOperator",
    "ImportOptOutListOperator",
    "RemoveFromOptOutListOperator",
    "SendSMSOperator",
]


class _CountryFilterOperator(_OrangeSMSBaseOperator):
    """
    Base of the account operators that filter by country.

    :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("country",)

    def __init__(
        self,
        *,
        country: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.country = country


class _SubscriptionOperator(_OrangeSMSBaseOperator):
    """
    Base of the operators acting on one delivery-receipt subscription.

    :param subscription_id: Id returned when it was created. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("subscription_id",)

    def __init__(
        self,
        *,
        subscription_id: str,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.subscription_id = subscription_id


class GetSMSBalanceOperator(_CountryFilterOperator):
    """
    Return the account's SMS balance JSON (``partnerContracts``: ``availableUnits`` per country).

    :param country: ISO 3166 alpha-3 filter (``CIV``); defaults to the connection's ``country``.
        Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    @closes_hook
    def execute(self, context: Context) -> dict[str, Any]:
        """
        Read the balance.

        :param context: The task context.
        """
        contracts = self.hook.get_contracts(self.country or None)
        for contract in contracts.get("partnerContracts", {}).get("contracts", []):
            for service_contract in contract.get("serviceContracts", []):
                self.log.info(
                    "%s: %s SMS units available (expires %s)",
                    service_contract.get("country"),
                    service_contract.get("availableUnits"),
                    service_contract.get("expires"),
                )
        return contracts


class GetSMSStatisticsOperator(_CountryFilterOperator):
    """
    Return the account's usage statistics JSON (``partnerStatistics``).

    :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``. Templated.
    :param app_id: Application id filter. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("country", "app_id")

    def __init__(
        self,
        *,
        country: str | None = None,
        app_id: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(country=country, orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.app_id = app_id

    @closes_hook
    def execute(self, context: Context) -> dict[str, Any]:
        """
        Read the statistics.

        :param context: The task context.
        """
        return self.hook.get_statistics(self.country or None, self.app_id or None)


class GetPurchaseOrdersOperator(_CountryFilterOperator):
    """
    Return the account's purchase history JSON (``purchaseOrders``).

    :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    @closes_hook
    def execute(self, context: Context) -> dict[str, Any]:
        """
        Read the purchase orders.

        :param context: The task context.
        """
        return self.hook.get_purchase_orders(self.country or None)


class CreateDeliveryReceiptSubscriptionOperator(_OrangeSMSBaseOperator):
    """
    Subscribe a URL to delivery receipts and return the subscription id.

    Orange keeps one callback URL per account: this replaces any previous subscription.

    Orange's API cannot list subscriptions: the task records what it created (id, sender and its
    country, the notify URL with its secrets as ``***``, the task) in the Airflow Variable
    ``orange_sms_receipts_subscription.<conn id>``, which the "Orange SMS" page shows. If that write
    fails, the task still succeeds and returns the id, logging a WARNING that names the Variable:
    Orange already holds the subscription, and a retry would create another one.

    The URL's secrets (the receiver's secret after ``delivery-receipts/``, a password, query values)
    are registered with Airflow's secrets masker as soon as the URL is rendered, so the rendered
    template fields, the task log and errors show ``***`` in their place; the log names only the
    URL's host.

    :param notify_url: HTTPS URL (port 443, whitelisted by Orange) that receives the receipts.
        Templated.
    :param sender_address: Sender number; defaults to the connection's ``sender_address``. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("notify_url", "sender_address")

    def __init__(
        self,
        *,
        notify_url: str,
        sender_address: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.notify_url = notify_url
        self.sender_address = sender_address

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """
        Render the templated fields, then register the URL's secrets with the secrets masker.

        Airflow stores the rendered fields right after this, masked with what the masker knows.

        :param context: The task context.
        :param jinja_env: The Jinja environment.
        """
        super().render_template_fields(context, jinja_env)
        self._mask_url_secrets()

    def _mask_url_secrets(self) -> None:
        if isinstance(self.notify_url, str):
            for secret in url_secrets(self.notify_url):
                mask_secret(secret)

    @closes_hook
    def execute(self, context: Context) -> str:
        """
        Create the subscription.

        :param context: The task context.
        """
        self._mask_url_secrets()  # also when execute() is called without rendering
        sender = self.hook.client.default_sender(self.sender_address)
        subscription_id = self.hook.create_delivery_receipt_subscription(
            self.notify_url, sender_address=self.sender_address
        )
        self.log.info(
            "Delivery receipts for %s (path not shown): subscription %s",
            url_origin(self.notify_url),
            subscription_id,
        )
        record_created(
            self.orange_sms_conn_id,
            subscription_id,
            sender_address=sender,
            country=contract_country(sender),
            notify_url=self.notify_url,
            context=context,
            log=self.log,
        )
        return subscription_id


class GetDeliveryReceiptSubscriptionOperator(_SubscriptionOperator):
    """
    Return a delivery-receipt subscription's JSON (``deliveryReceiptSubscription``).

    :param subscription_id: Id returned when it was created. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    @closes_hook
    def execute(self, context: Context) -> dict[str, Any]:
        """
        Read the subscription.

        :param context: The task context.
        """
        return self.hook.get_delivery_receipt_subscription(self.subscription_id)


class DeleteDeliveryReceiptSubscriptionOperator(_SubscriptionOperator):
    """
    Delete a delivery-receipt subscription (Orange stops posting receipts).

    When the connection's record (see :class:`CreateDeliveryReceiptSubscriptionOperator`) names this
    subscription, it is marked deleted; a record of another subscription is left as it is. Failing
    to update it logs a WARNING and does not fail the task (Orange has deleted the subscription).

    :param subscription_id: Id returned when it was created. Templated.
    :param sender_address: Sender number; defaults to the connection's ``sender_address``. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("subscription_id", "sender_address")

    def __init__(
        self,
        *,
        subscription_id: str,
        sender_address: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(subscription_id=subscription_id, orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.sender_address = sender_address

    @closes_hook
    def execute(self, context: Context) -> None:
        """
        Delete the subscription.

        :param context: The task context.
        """
        self.hook.delete_delivery_receipt_subscription(
            self.subscription_id, sender_address=self.sender_address
        )
        self.log.info("Deleted delivery-receipt subscription %s", self.subscription_id)
        record_deleted(self.orange_sms_conn_id, self.subscription_id.strip(), context=context, log=self.log)
