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

    #: The asset every accepted delivery receipt becomes an event of. Airflow normalises its uri
    #: to ``orange-sms://delivery-receipts/``; look it up by name.
    DELIVERY_RECEIPTS: Asset
    #: The asset every accepted inbound SMS (a subscriber's reply) becomes an event of; extra keys
    #: :data:`~airflow_provider_orange_sms.receipts.inbound_payload.INBOUND_EXTRA_KEYS`.
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
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
