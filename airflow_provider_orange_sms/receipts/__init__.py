"""
Delivery receipts (DR): the asset they land on and Orange's delivery statuses.

Orange POSTs one receipt per SMS to the account's callback URL. The receiver
(:mod:`airflow_provider_orange_sms.receipts.app`, mounted on the API server by
:mod:`airflow_provider_orange_sms.plugins.receipts_plugin`) turns each accepted receipt into one asset event
on :data:`DELIVERY_RECEIPTS`, whose ``extra`` is::

    {"resource_id": "…", "recipient": "tel:+…", "status": "DeliveredToTerminal", "received_at": "…"}

DAGs read them with ``schedule=[DELIVERY_RECEIPTS]`` or with
:class:`~airflow_provider_orange_sms.sensors.orange_sms.DeliveryReceiptSensor`.

Subscribers' replies (Orange's "SMS response" service) land likewise, one event each, on
:data:`INBOUND_MESSAGES` (``POST /orange-sms/inbound-messages/{secret}``).

Importing this package is cheap: ``DELIVERY_RECEIPTS`` and ``INBOUND_MESSAGES`` (and with them
``airflow.sdk``) are built on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms import lazy_attributes
from airflow_provider_orange_sms.receipts.payload import (
    DELIVERED_TO_NETWORK,
    DELIVERED_TO_TERMINAL,
    DELIVERY_IMPOSSIBLE,
    DELIVERY_NOTIFICATION_NOT_SUPPORTED,
    DELIVERY_UNCERTAIN,
    EXTRA_KEYS,
    FINAL_STATUSES,
    MESSAGE_WAITING,
    STATUSES,
)

if TYPE_CHECKING:
    from airflow.sdk import Asset

    from airflow_provider_orange_sms.receipts.access_log import (
        MaskSecretPathMiddleware as MaskSecretPathMiddleware,
    )
    from airflow_provider_orange_sms.receipts.app import create_app as create_app
    from airflow_provider_orange_sms.receipts.asset_events import AssetEventReader as AssetEventReader
    from airflow_provider_orange_sms.receipts.asset_events import earliest_run_moment as earliest_run_moment
    from airflow_provider_orange_sms.receipts.asset_events import to_datetime as to_datetime
    from airflow_provider_orange_sms.receipts.subscription_record import LEGACY_VARIABLE as LEGACY_VARIABLE
    from airflow_provider_orange_sms.receipts.subscription_record import VARIABLE_PREFIX as VARIABLE_PREFIX
    from airflow_provider_orange_sms.receipts.subscription_record import (
        SubscriptionRecord as SubscriptionRecord,
    )
    from airflow_provider_orange_sms.receipts.subscription_record import record_created as record_created
    from airflow_provider_orange_sms.receipts.subscription_record import record_deleted as record_deleted
    from airflow_provider_orange_sms.receipts.subscription_record import variable_key as variable_key
    from airflow_provider_orange_sms.receipts.urls import shown_url as shown_url
    from airflow_provider_orange_sms.receipts.urls import url_origin as url_origin
    from airflow_provider_orange_sms.receipts.urls import url_secrets as url_secrets

    #: The asset every accepted delivery receipt becomes an event of. Airflow normalises its uri
    #: to ``orange-sms://delivery-receipts/``; look it up by name.
    DELIVERY_RECEIPTS: Asset
    #: The asset every accepted reply (an SMS a subscriber sent) becomes an event of; extra keys
    #: :data:`~airflow_provider_orange_sms.receipts.reply_payload.REPLY_EXTRA_KEYS`.
    INBOUND_MESSAGES: Asset

ASSET_NAME = "orange_sms_delivery_receipts"
ASSET_URI = "orange-sms://delivery-receipts"
INBOUND_ASSET_NAME = "orange_sms_inbound_messages"
INBOUND_ASSET_URI = "orange-sms://inbound-messages"
_LAZY_ASSETS = {
    "DELIVERY_RECEIPTS": (ASSET_NAME, ASSET_URI),
    "INBOUND_MESSAGES": (INBOUND_ASSET_NAME, INBOUND_ASSET_URI),
}
#: How long a stored receipt is remembered to recognise its repeats, unless configured
#: (``[orange_sms] delivery_receipts_dedup_hours``). Orange sends receipts within 24 h of a send.
DEFAULT_DEDUP_HOURS = 72.0
#: Not public (``__all__`` is): what the provider's other packages use of the receiver, and the
#: module defining each; imported on first use.
_HOMES = {
    "AssetEventReader": "asset_events",
    "LEGACY_VARIABLE": "subscription_record",
    "MaskSecretPathMiddleware": "access_log",
    "SubscriptionRecord": "subscription_record",
    "VARIABLE_PREFIX": "subscription_record",
    "create_app": "app",
    "earliest_run_moment": "asset_events",
    "record_created": "subscription_record",
    "record_deleted": "subscription_record",
    "shown_url": "urls",
    "to_datetime": "asset_events",
    "url_origin": "urls",
    "url_secrets": "urls",
    "variable_key": "subscription_record",
}
_from_homes = lazy_attributes(__name__, _HOMES)


def __getattr__(name: str) -> Any:
    """
    Build :data:`DELIVERY_RECEIPTS` and :data:`INBOUND_MESSAGES` on first use.

    ``airflow.sdk`` takes seconds to import; the receiver's pure parts (payload parsing) and
    ``get_provider_info`` must not pay for it.

    :param name: The attribute looked up.
    """
    if name in _LAZY_ASSETS:
        from airflow.sdk import Asset

        asset_name, asset_uri = _LAZY_ASSETS[name]
        asset = Asset(name=asset_name, uri=asset_uri)
        globals()[name] = asset
        return asset
    return _from_homes(name)


__all__ = [
    "ASSET_NAME",
    "ASSET_URI",
    "DEFAULT_DEDUP_HOURS",
    "DELIVERED_TO_NETWORK",
    "DELIVERED_TO_TERMINAL",
    "DELIVERY_IMPOSSIBLE",
    "DELIVERY_NOTIFICATION_NOT_SUPPORTED",
    "DELIVERY_RECEIPTS",
    "DELIVERY_UNCERTAIN",
    "EXTRA_KEYS",
    "FINAL_STATUSES",
    "INBOUND_ASSET_NAME",
    "INBOUND_ASSET_URI",
    "INBOUND_MESSAGES",
    "MESSAGE_WAITING",
    "STATUSES",
]
