"""Send six SMS, wait for their delivery receipts, report.

Run by tests/unit/sensors/test_delivery_receipt_sensor.py.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sensors.orange_sms import DeliveryReceiptSensor

RECIPIENTS = [f"+22507000001{n:02d}" for n in range(1, 7)]

with DAG(
    dag_id="delivery_receipts_loop",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    send = SendSMSOperator(task_id="send", recipients=RECIPIENTS, message="Votre colis arrive demain")
    wait = DeliveryReceiptSensor(
        task_id="wait_for_receipts",
        resource_ids="{{ ti.xcom_pull(task_ids='send') }}",
        mode=os.environ.get("RECEIPTS_TEST_MODE", "reschedule"),
        poke_interval=1,
        timeout=float(os.environ.get("RECEIPTS_TEST_TIMEOUT", "300")),
    )

    @task
    def report(statuses: dict[str, str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in statuses.values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    send >> wait
    report_counts: Any = report(wait.output)
