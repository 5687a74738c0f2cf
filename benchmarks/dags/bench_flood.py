"""
DAGs of the receipt-flood benchmark (``flood.py``), run by a scheduler through the execution API:
``bench_flood_send`` texts ``ORANGE_SMS_BENCH_FLOOD_SENDS`` numbers (one SendSMSOperator task),
``bench_flood_alert`` texts one number (an on-call alert: its trigger-to-Orange time is measured).
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

COUNT = int(os.environ.get("ORANGE_SMS_BENCH_FLOOD_SENDS", "60"))
#: The send task's numbers start with this; the alert's is ALERT_NUMBER.
SEND_PREFIX = "+2250710"
ALERT_NUMBER = "+2250799000001"

with DAG(dag_id="bench_flood_send", schedule=None, tags=["benchmark"]):
    SendSMSOperator(
        task_id="send",
        recipients=[f"{SEND_PREFIX}{n:06d}" for n in range(COUNT)],
        message="benchmark",
    )

with DAG(dag_id="bench_flood_alert", schedule=None, tags=["benchmark"]):
    SendSMSOperator(task_id="alert", recipients=[ALERT_NUMBER], message="on-call alert")
