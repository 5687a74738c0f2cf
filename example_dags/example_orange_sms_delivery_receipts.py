"""
Example: send a campaign, wait for Orange's delivery receipts, report what was delivered.

Reading top to bottom:

1. ``send`` (:class:`SendSMSOperator`) texts every recipient; its XCom is one result per recipient
   (``{"recipient": "tel:+…", "resource_id": "…", "status": "sent"}``).
2. ``wait_for_receipts`` (:class:`DeliveryReceiptSensor`) waits until each SMS that was sent has a
   final delivery receipt (``DeliveredToTerminal``, ``DeliveredToNetwork``, ``DeliveryImpossible``
   or ``DeliveryUncertain``). Receipts reach Airflow through the provider's receiver on the API
   server, which stores each one as an event of the ``DELIVERY_RECEIPTS`` asset; the sensor reads
   those events through the Task SDK. It runs in ``reschedule`` mode: no worker slot is held
   between checks. If some SMS never get a final receipt, it fails after ``timeout`` naming them.
3. ``report`` counts delivered and impossible SMS.

Prerequisites: ``[orange_sms] delivery_receipts_secret`` set on the API server, and Orange's
subscription pointing at ``https://<public host>/orange-sms/delivery-receipts/<secret>`` (see
``example_orange_sms_receipts_subscription``). ``./scripts/demo.sh`` runs this DAG against the
sandbox.
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sensors.orange_sms import DeliveryReceiptSensor

# The task log, not print(): stdout reaches it on another channel and can land in "Post Execute".
log = logging.getLogger(__name__)

with DAG(
    dag_id="example_orange_sms_delivery_receipts",
    description="Send, wait for the delivery receipts, report delivered/impossible counts.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:
    send = SendSMSOperator(
        task_id="send",
        recipients=[f"+22507000000{n:02d}" for n in range(1, 9)],
        message="Your parcel will be delivered tomorrow between 9:00 and 12:00.",
    )

    wait_for_receipts = DeliveryReceiptSensor(
        task_id="wait_for_receipts",
        # Renders the send's result list; only entries with status "sent" are waited for.
        resource_ids="{{ ti.xcom_pull(task_ids='send') }}",
        poke_interval=2,  # seconds; a minute or more in production
        timeout=60 * 60 * 24,  # Orange sends receipts within 24 hours
    )

    @task
    def report(statuses: dict[str, str]) -> dict[str, int]:
        """Count the final statuses and print the delivered/impossible summary."""
        counts = {"total": len(statuses), "delivered": 0, "impossible": 0, "other": 0}
        for status in statuses.values():
            if status in ("DeliveredToTerminal", "DeliveredToNetwork"):
                counts["delivered"] += 1
            elif status == "DeliveryImpossible":
                counts["impossible"] += 1
            else:
                counts["other"] += 1
        log.info(
            f"Delivery report: {counts['delivered']} delivered, {counts['impossible']} impossible, "
            f"{counts['other']} uncertain, of {counts['total']} SMS"
        )
        return counts

    send >> wait_for_receipts
    report(wait_for_receipts.output)
