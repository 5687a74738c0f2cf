"""
Example: react to SMS that could not be delivered, as soon as Orange says so.

This DAG is scheduled on the ``DELIVERY_RECEIPTS`` asset: each receipt the provider's receiver stores
on the API server is an asset event, and Airflow starts a run for the events that arrived since the
last one (several receipts may be batched into one run).

Reading top to bottom:

1. ``undelivered`` reads the run's triggering asset events and keeps the ``DeliveryImpossible``
   ones (event ``extra``: ``resource_id``, ``recipient``, ``status``, ``received_at``).
2. ``follow_up`` hands each undelivered recipient to another channel. Here it only prints what it
   would do; replace it with an e-mail, a push notification, or a row in a retry queue. Beware:
   ``DeliveryImpossible`` can also mean the phone was off for more than 24 hours, and Orange does not
   refund the SMS.
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.receipts import DELIVERY_IMPOSSIBLE, DELIVERY_RECEIPTS

# The task log, not print(): stdout reaches it on another channel and can land in "Post Execute".
log = logging.getLogger(__name__)

with DAG(
    dag_id="example_orange_sms_undelivered_followup",
    description="On every batch of delivery receipts, follow up the DeliveryImpossible ones.",
    schedule=[DELIVERY_RECEIPTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:

    @task
    def undelivered(**context: Any) -> list[dict[str, str]]:
        """The DeliveryImpossible receipts among the events that triggered this run."""
        events = context["triggering_asset_events"][DELIVERY_RECEIPTS]
        failed = [dict(e.extra) for e in events if (e.extra or {}).get("status") == DELIVERY_IMPOSSIBLE]
        log.info(f"{len(failed)} undelivered SMS among {len(events)} receipt(s)")
        return failed

    @task
    def follow_up(receipts: list[dict[str, str]]) -> int:
        """Queue each undelivered recipient for another channel (here: print it)."""
        for receipt in receipts:
            log.info(
                f"Would notify {receipt['recipient']} by e-mail: SMS {receipt['resource_id']} "
                f"was not delivered ({receipt['received_at']})"
            )
        return len(receipts)

    follow_up(undelivered())
