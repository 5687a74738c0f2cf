"""A send that fails for one recipient, and an all_done task that reports what was sent anyway."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import PARTIAL_RESULTS_KEY, SendSMSOperator

with DAG("test_sms_partial_failure", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    send = SendSMSOperator(
        task_id="send", recipients=["+2250700000001", "+2250700000666"], message="Hi", retries=0
    )

    @task(trigger_rule="all_done")
    def report(ti: Any = None) -> list[dict[str, Any]]:
        return ti.xcom_pull(task_ids="send", key=PARTIAL_RESULTS_KEY)

    send >> report()
