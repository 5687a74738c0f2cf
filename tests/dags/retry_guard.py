"""One SendSMSOperator with a retry: the sent ledger (Airflow Variables) must stop a second SMS."""

from __future__ import annotations

import datetime

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

with DAG("test_sms_retry_guard", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+2250700000002", "+2250700000003"],
        message="Guarded",
        retries=1,
        retry_delay=datetime.timedelta(0),
        fail_on_uncertain=False,
    )
