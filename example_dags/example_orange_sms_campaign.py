"""
Example: an SMS campaign with the Orange SMS provider, triggered by hand.

Reading top to bottom:

1. ``load_recipients`` returns the phone numbers to text (here a fixed list of sandbox numbers; in
   real life a query on your CRM or a file).
2. ``check_balance`` (:class:`GetSMSBalanceOperator`) logs the SMS units left per country and
   pushes the balance JSON to XCom.
3. ``wait_for_credit`` (:class:`BalanceSensor`) waits until the Côte d'Ivoire balance covers the
   campaign: ``minimum_units`` is templated with the number of recipients. It is deferrable: when
   credit is low the wait runs in the triggerer, polling every 5 seconds, without holding a worker.
4. ``send_campaign`` (:class:`SendSMSOperator`) sends the message to every recipient pulled from
   XCom, one request each at the account's rate limit. A retry never texts again a recipient that
   an earlier try reached (sent ledger in Airflow Variables).
5. ``summarize`` counts what was sent and returns the counts.

The connection ``orange_sms_default`` (type ``orange_sms``) holds the credentials and the sender
number (extra ``sender_address``, e.g. ``2250000`` for Côte d'Ivoire). Try it against the local
sandbox::

    python -m airflow_provider_orange_sms.sandbox --port 8089 &
    export AIRFLOW_CONN_ORANGE_SMS_DEFAULT='{"conn_type": "orange_sms", "host": "http://127.0.0.1:8089",
        "login": "sandbox-client-id", "password": "sandbox-client-secret",
        "extra": {"sender_address": "2250000"}}'
    airflow dags test example_orange_sms_campaign
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import GetSMSBalanceOperator, SendSMSOperator
from airflow_provider_orange_sms.sensors.orange_sms import BalanceSensor

# The task log, not print(): stdout reaches it on another channel and can land in "Post Execute".
log = logging.getLogger(__name__)

with DAG(
    dag_id="example_orange_sms_campaign",
    description="Load recipients, make sure the SMS credit covers them, send, summarize.",
    # Manual only: an example that texts people must never also run on a schedule (the UI's Trigger
    # with "unpause on trigger" would otherwise start the scheduled run too, sending it twice).
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:

    @task
    def load_recipients() -> list[str]:
        """Return the campaign's recipients (sandbox numbers in Côte d'Ivoire)."""
        return [f"+22507000000{n:02d}" for n in range(1, 9)]

    recipients = load_recipients()

    check_balance = GetSMSBalanceOperator(task_id="check_balance", country="CIV")

    wait_for_credit = BalanceSensor(
        task_id="wait_for_credit",
        country="CIV",
        # One SMS unit per recipient; rendered as a string such as "8", converted to int.
        minimum_units="{{ ti.xcom_pull(task_ids='load_recipients') | length }}",
        poke_interval=5,
        timeout=60 * 60,
        deferrable=True,
    )

    send_campaign = SendSMSOperator(
        task_id="send_campaign",
        # Renders as "['+2250700000001', ...]": the operator parses list-looking strings safely.
        recipients="{{ ti.xcom_pull(task_ids='load_recipients') }}",
        message="Hello from Airflow! Our weekly news is out ({{ ds }}). Reply STOP to opt out.",
    )

    @task
    def summarize(results: list[dict[str, Any]]) -> dict[str, int]:
        """Count the SMS by status (``sent`` / ``uncertain``) and log the totals."""
        counts = {"total": len(results), "sent": 0, "uncertain": 0}
        for result in results:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
        log.info(f"Campaign finished: {counts['sent']} of {counts['total']} SMS sent ({counts})")
        return counts

    recipients >> check_balance >> wait_for_credit >> send_campaign
    summarize(send_campaign.output)
