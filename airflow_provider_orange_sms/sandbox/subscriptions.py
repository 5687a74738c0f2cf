"""
The sandbox's delivery-receipt subscription endpoints: subscribe, read one back, unsubscribe.

Orange keeps one callback URL per account: a new subscription replaces the previous one.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_orange_sms.sandbox.answers import (
    Answer,
    StopProcessing,
    gateway_error,
    invalid_input,
    service_error,
)
from airflow_provider_orange_sms.sandbox.state import Subscription

if TYPE_CHECKING:
    from airflow_provider_orange_sms.sandbox.state import SandboxState


def _body(base_url: str, subscription: Subscription) -> dict[str, Any]:
    resource_url = f"{base_url}/smsmessaging/v1/outbound/subscriptions/{subscription.subscription_id}"
    return {
        "deliveryReceiptSubscription": {
            "callbackReference": {"notifyURL": subscription.notify_url},
            "resourceURL": resource_url,
        }
    }


def subscribe(
    state: SandboxState, base_url: str, client_id: str, sender: str, body: dict[str, Any]
) -> Answer:
    """``POST /smsmessaging/v1/outbound/tel%3A%2B{sender}/subscriptions``: a new callback URL."""
    try:
        notify_url = body["deliveryReceiptSubscription"]["callbackReference"]["notifyURL"]
    except (KeyError, TypeError):
        return invalid_input("deliveryReceiptSubscription.callbackReference.notifyURL")
    parts = urlsplit(notify_url) if isinstance(notify_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return invalid_input("notifyURL")
    if state.config.https_callbacks_only and (parts.scheme != "https" or parts.port not in (None, 443)):
        return service_error(
            "POL0001",
            "A policy error occurred. Error code is %1",
            ["notifyURL must be https on port 443"],
        )
    if state.sender_country(sender) is None:
        return invalid_input("senderAddress")
    subscription = Subscription(str(uuid.uuid4()), client_id, notify_url, sender)
    with state.lock:
        # One callback URL per account: the new subscription replaces the old one.
        for old_id in [k for k, s in state.subscriptions.items() if s.client_id == client_id]:
            del state.subscriptions[old_id]
        state.subscriptions[subscription.subscription_id] = subscription
    return Answer(201, _body(base_url, subscription))


def _find(state: SandboxState, client_id: str, subscription_id: str) -> Subscription:
    with state.lock:
        subscription = state.subscriptions.get(subscription_id)
    if subscription is None or subscription.client_id != client_id:
        raise StopProcessing(
            gateway_error(404, 60, "Resource not found", f"No subscription {subscription_id}")
        )
    return subscription


def get(state: SandboxState, base_url: str, client_id: str, subscription_id: str) -> Answer:
    """``GET /smsmessaging/v1/outbound/subscriptions/{id}``: the subscription of this account."""
    return Answer(200, _body(base_url, _find(state, client_id, subscription_id)))


def unsubscribe(state: SandboxState, client_id: str, sender: str, subscription_id: str) -> Answer:
    """``DELETE /smsmessaging/v1/outbound/tel%3A%2B{sender}/subscriptions/{id}``."""
    subscription = _find(state, client_id, subscription_id)
    if subscription.sender_address != sender:
        return invalid_input("senderAddress")
    with state.lock:
        state.subscriptions.pop(subscription_id, None)
    return Answer(204)
