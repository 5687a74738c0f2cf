"""DAGs whose send task is hit by Airflow-side failures: after execute() returned, and kill -9."""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

NUMBERS = [f"+22507000030{n:02d}" for n in range(10)]
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def fail_on_first_try(context: Any, result: Any) -> None:
    """A failure after execute() returned (as when Airflow cannot record the task's success)."""
    if context["ti"].try_number == 1:
        raise RuntimeError("injected: the task failed after execute() returned")


with DAG("test_sms_failure_after_execute", schedule=None, start_date=START):
    SendSMSOperator(
        task_id="send",
        recipients=NUMBERS,
        message="Once",
        retries=1,
        retry_delay=datetime.timedelta(0),
        post_execute=fail_on_first_try,
    )

with DAG("test_sms_batch", schedule=None, start_date=START):
    SendSMSOperator(
        task_id="send", recipients=NUMBERS, message="Once", retries=1, retry_delay=datetime.timedelta(0)
    )
