"""Send tasks that honour the opt-out list (run by tests/integration/dag_runs/test_opt_out_send.py)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import RemoveFromOptOutListOperator, SendSMSOperator

NUMBERS = ["+2250700004001", "+2250700004002", "+2250700004003"]
START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("test_opt_out_send", schedule=None, start_date=START):
    SendSMSOperator(task_id="send", recipients=NUMBERS, message="Promo: -20% this week")

with DAG("test_opt_out_remove", schedule=None, start_date=START):
    RemoveFromOptOutListOperator(task_id="remove", numbers=NUMBERS[1])

with DAG("test_opt_out_dry_run", schedule=None, start_date=START):
    SendSMSOperator(task_id="send", recipients=NUMBERS, message="Promo: -20% this week", dry_run=True)

with DAG("test_opt_out_ignored", schedule=None, start_date=START):
    SendSMSOperator(task_id="send", recipients=NUMBERS, message="Your code is 493021", respect_opt_out=False)

with DAG("test_opt_out_notifier", schedule=None, start_date=START):
    from airflow.providers.standard.operators.empty import EmptyOperator

    from airflow_provider_orange_sms.notifications.orange_sms import OrangeSMSNotifier

    EmptyOperator(
        task_id="done",
        on_success_callback=OrangeSMSNotifier(recipients=NUMBERS[:2], message="{{ ti.task_id }} done"),
    )
