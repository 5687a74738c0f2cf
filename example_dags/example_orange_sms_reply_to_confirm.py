"""
Example: "Reply YES to confirm": text the customers, then wait for their answers.

Reading top to bottom:

1. ``ask`` texts each customer. Its results (``{"recipient", "resource_id", "status"}``) say who was
   texted; an opted-out customer is not (status ``opted_out``) and is not waited for.
2. ``wait_for_yes`` (``SMSReplySensor``) waits until every texted customer replies YES (or OUI),
   reading the replies the provider's receiver stores as ``INBOUND_MESSAGES`` events. It runs in
   ``reschedule`` mode: no worker slot is held between checks. Replies received before this run
   started do not count. After ``timeout`` it fails naming who did not answer (XCom
   ``missing_numbers``); every reply read, YES or not, is in XCom ``replies``.
3. ``confirmed`` receives ``{number: reply}``.

Run it by hand (``schedule=None``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sensors.orange_sms import SMSReplySensor

# The task log, not print(): stdout reaches it on another channel and can land in "Post Execute".
log = logging.getLogger(__name__)

CUSTOMERS = ["+2250700000001", "+2250700000002"]

with DAG(
    dag_id="example_orange_sms_reply_to_confirm",
    description="Ask customers to reply YES, then wait for their answers.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:
    ask = SendSMSOperator(
        task_id="ask",
        recipients=CUSTOMERS,
        message="ACME: your delivery is planned tomorrow 9-12h. Reply YES to confirm.",
    )
    wait_for_yes = SMSReplySensor(
        task_id="wait_for_yes",
        numbers=ask.output,
        pattern=r"^\s*(yes|oui)\b",
        poke_interval=60,
        timeout=timedelta(hours=6),
    )

    @task
    def confirmed(answers: dict[str, dict[str, str]]) -> list[str]:
        """The customers who confirmed (here: print them)."""
        for number, reply in answers.items():
            log.info(f"{number} confirmed at {reply['received_at']}: {reply['message']!r}")
        return sorted(answers)

    confirmed(wait_for_yes.output)
