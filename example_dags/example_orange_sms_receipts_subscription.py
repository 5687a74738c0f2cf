"""
Example: point Orange's delivery receipts at this Airflow, then show the current subscription.

Orange keeps one receipt URL per account (the last subscription wins) and posts to HTTPS on port
443 only. The provider's receiver answers at ``/orange-sms/delivery-receipts/<secret>`` on the API
server; expose that path through your reverse proxy (see docs/delivery-receipts.md) and run this DAG once.

Reading top to bottom:

1. ``subscribe`` is :class:`CreateDeliveryReceiptSubscriptionOperator`. Its ``notify_url`` renders
   ``<public base URL>/orange-sms/delivery-receipts/<secret>`` through the DAG's ``receiver_url``
   macro, from the Airflow Variable ``orange_sms_receipts_public_url`` (e.g.
   ``https://airflow.example.com``; set it with
   ``airflow variables set orange_sms_receipts_public_url https://airflow.example.com``) and the
   ``[orange_sms] delivery_receipts_secret`` setting. Either missing fails the task saying what to
   set. The secret is registered with Airflow's log masker as the URL renders, so the rendered
   field, the log and the record show ``***``. The operator registers the URL with Orange, returns
   the subscription id (XCom) and records it for the connection in the Variable
   ``orange_sms_receipts_subscription.orange_sms_default``: the provider's "Orange SMS" page shows
   that record (Orange's API cannot list subscriptions).
2. ``show_subscription`` reads the subscription back from Orange and prints it, secret masked.
   Keep the id: deleting the subscription needs it
   (:class:`DeleteDeliveryReceiptSubscriptionOperator`, which marks the record deleted).
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import DAG, Variable, task

from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.operators.orange_sms import CreateDeliveryReceiptSubscriptionOperator

# The task log, not print(): stdout reaches it on another channel and can land in "Post Execute".
log = logging.getLogger(__name__)


def _secret() -> str:
    """The receiver's secret from Airflow's configuration, registered with the log masker."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow < 3.2
        from airflow.configuration import conf
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # Airflow < 3.1
        from airflow.sdk.execution_time.secrets_masker import mask_secret

    secret = conf.get("orange_sms", "delivery_receipts_secret", fallback="") or ""
    if not secret:
        raise ValueError(
            "Set [orange_sms] delivery_receipts_secret (AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET) "
            "on the API server and here: the secret path segment of the receiver's URL"
        )
    mask_secret(secret)
    return secret


#: The Airflow Variable holding the public base URL Orange posts receipts to.
PUBLIC_URL_VARIABLE = "orange_sms_receipts_public_url"


def _public_base_url() -> str:
    """The receiver's public base URL from the Variable, or an error saying what to set."""
    base = str(Variable.get(PUBLIC_URL_VARIABLE, default="") or "").strip().rstrip("/")
    if not base.startswith(("https://", "http://")):
        found = f"it holds {base!r}" if base else "it is not set"
        raise ValueError(
            f"Set the Airflow Variable {PUBLIC_URL_VARIABLE} ({found}) to the public base URL at "
            "which Orange reaches this Airflow's API server, e.g. https://airflow.example.com (your "
            "reverse proxy; http://127.0.0.1:8080 with the sandbox): `airflow variables set "
            f"{PUBLIC_URL_VARIABLE} https://airflow.example.com` or Admin -> Variables"
        )
    return base


def _receiver_url() -> str:
    """The receiver's public URL (secret included, and masked in logs); a template macro."""
    return f"{_public_base_url()}/orange-sms/delivery-receipts/{_secret()}"


with DAG(
    dag_id="example_orange_sms_receipts_subscription",
    description="Register the receiver's public URL with Orange and show the subscription.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
    user_defined_macros={"receiver_url": _receiver_url},
) as dag:
    subscribe = CreateDeliveryReceiptSubscriptionOperator(
        task_id="subscribe", notify_url="{{ receiver_url() }}"
    )

    @task
    def show_subscription(subscription_id: str) -> str:
        """Print the subscription Orange holds (the secret masked) and return its URL, masked."""
        subscription = OrangeSMSHook().get_delivery_receipt_subscription(subscription_id)
        body = subscription.get("deliveryReceiptSubscription", subscription)
        url = str(body.get("callbackReference", {}).get("notifyURL", ""))
        shown = url.replace(_secret(), "***")
        log.info(f"Orange posts delivery receipts to {shown} (subscription {subscription_id})")
        return shown

    show_subscription(subscribe.output)
