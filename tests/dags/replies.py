"""Send, then wait for the recipients' replies (run by tests/integration/dag_runs/test_replies.py)."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sensors.orange_sms import SMSReplySensor

NUMBERS = ["+2250700004201", "+2250700004202"]

with DAG("test_sms_replies", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    send = SendSMSOperator(task_id="send", recipients=NUMBERS, message="Reply YES to confirm")
    send >> SMSReplySensor(
        task_id="wait_for_replies",
        numbers="{{ ti.xcom_pull(task_ids='send') }}",
        pattern=r"^\s*(yes|oui)\b",
        mode="poke",
        poke_interval=0.2,
        timeout=float(os.environ.get("REPLIES_TEST_TIMEOUT", "300")),
    )
