"""
Example: a personalised campaign — a text per customer, in two countries, planned, paid for, sent
in daytime, and followed to the handset.

Reading top to bottom:

1. ``load_customers`` returns rows as a database query would (name, phone, order, …); phone
   numbers may be national (``0700000002`` is read as Côte d'Ivoire through ``default_country``).
2. ``build_messages`` turns each row into ``{"recipient": …, "message": …}``.
3. ``plan`` (:class:`SendSMSOperator` with ``dry_run=True``) validates every number, routes each to
   the sender of its country (connection extra ``sender_addresses``), counts the SMS and segments
   per country and encoding and per contract billed (the sender's country), names texts that are
   UCS-2 only because of a look-alike character, and sends nothing. Its XCom is the plan: in
   staging, run the DAG up to here.
4. ``send`` sends every row in one task instance: it checks each sender contract's balance covers
   its segments first (waiting in the triggerer if not), sends only between 08:00 and 20:00 in each
   recipient's own time zone (deferring until the window opens), replaces look-alike characters
   with their GSM-7 forms, and never texts anyone twice, even across retries.
5. ``wait_for_receipts`` (:class:`DeliveryReceiptSensor`) waits for Orange's delivery receipts,
   which reach Airflow through the provider's receiver on the API server (see
   ``example_orange_sms_delivery_receipts``), and ``report`` counts delivered and impossible SMS.

The connection ``orange_sms_default`` needs ``sender_addresses``, e.g.
``{"CIV": "2250000", "SEN": "2210000"}``.
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sensors.orange_sms import DeliveryReceiptSensor

# The task log, not print(): stdout reaches it on another channel and can land in "Post Execute".
log = logging.getLogger(__name__)

with DAG(
    dag_id="example_orange_sms_personalised_campaign",
    description="Rows -> dry-run plan -> balance check -> send in daytime -> delivery receipts.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:

    @task
    def load_customers() -> list[dict[str, Any]]:
        """Return the customers to text (sandbox numbers in Côte d'Ivoire and Senegal)."""
        return [
            {"name": "Awa", "phone": "+2250700000001", "order": "A-1001", "day": "demain"},
            {"name": "Koffi", "phone": "0700000002", "order": "A-1002", "day": "lundi"},
            {"name": "Fatou", "phone": "+221771234567", "order": "S-2001", "day": "mardi"},
            {"name": "Moussa", "phone": "+221771234568", "order": "S-2002", "day": "mardi"},
        ]

    @task
    def build_messages(customers: list[dict[str, Any]]) -> list[dict[str, str]]:
        """One SMS per customer; the curly apostrophe is replaced by ``'`` when sending."""
        return [
            {
                "recipient": c["phone"],
                "message": f"Bonjour {c['name']}, votre commande {c['order']} arrive {c['day']}. "
                "Merci d\u2019avoir choisi notre boutique.",  # a curly apostrophe, as editors type it
            }
            for c in customers
        ]

    rows = build_messages(load_customers())

    plan = SendSMSOperator(task_id="plan", messages=rows, default_country="CIV", dry_run=True)

    send = SendSMSOperator(
        task_id="send",
        messages=rows,
        default_country="CIV",
        check_balance=True,
        deferrable=True,
        balance_poke_interval=5,  # seconds; minutes in production
        send_window=("08:00", "20:00"),
        send_window_timezone="recipient",
        replace_lookalikes=True,
    )

    wait_for_receipts = DeliveryReceiptSensor(
        task_id="wait_for_receipts",
        resource_ids="{{ ti.xcom_pull(task_ids='send') }}",
        poke_interval=2,  # seconds; a minute or more in production
        timeout=60 * 60 * 24,
    )

    @task
    def report(statuses: dict[str, str]) -> dict[str, int]:
        """Count the final statuses and print the delivered/impossible summary."""
        counts = {"delivered": 0, "impossible": 0, "other": 0}
        for status in statuses.values():
            if status in ("DeliveredToTerminal", "DeliveredToNetwork"):
                counts["delivered"] += 1
            elif status == "DeliveryImpossible":
                counts["impossible"] += 1
            else:
                counts["other"] += 1
        log.info(f"Campaign delivered: {counts}")
        return counts

    plan >> send >> wait_for_receipts
    report(wait_for_receipts.output)
