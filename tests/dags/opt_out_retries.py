"""Opt-out list operators retried by Airflow, and a campaign.

Run by tests/integration/dag_runs/test_opt_out_retries.py.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import RemoveFromOptOutListOperator, SendSMSOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
NUMBERS = ["+2250700008101", "+2250700008102"]

with DAG("test_opt_out_retries_remove_retry", schedule=None, start_date=START):
    RemoveFromOptOutListOperator(
        task_id="remove", numbers=NUMBERS, retries=1, retry_delay=timedelta(seconds=0)
    )

with DAG("test_opt_out_retries_erase_retry", schedule=None, start_date=START):
    RemoveFromOptOutListOperator(
        task_id="erase", numbers=NUMBERS, erase=True, retries=1, retry_delay=timedelta(seconds=0)
    )

with DAG("test_opt_out_retries_remove", schedule=None, start_date=START):
    RemoveFromOptOutListOperator(task_id="remove", numbers=NUMBERS)

with DAG("test_opt_out_retries_erase", schedule=None, start_date=START):
    RemoveFromOptOutListOperator(task_id="erase", numbers=NUMBERS, erase=True)

with DAG("test_opt_out_retries_campaign", schedule=None, start_date=START):
    SendSMSOperator(task_id="send", recipients=NUMBERS, message="Promo: -20% this week")
