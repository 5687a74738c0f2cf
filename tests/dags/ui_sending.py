"""Send four SMS (run by tests/test_ui_pages.py, whose sandbox holds the third one to look mid-batch)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

RECIPIENTS = [f"+22507000004{n:02d}" for n in range(1, 5)]

with DAG(
    dag_id="ui_sending",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    SendSMSOperator(task_id="send", recipients=RECIPIENTS, message="Votre colis est en route")
