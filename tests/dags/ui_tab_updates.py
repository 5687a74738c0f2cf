"""The DAGs of tests/integration/browser/test_delivery_tab_updates.py: a send of two SMS (run once for
real against the sandbox, for what its task pushes), and a DAG with no send task."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

with DAG(
    dag_id="ui_tab_updates",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    SendSMSOperator(
        task_id="send", recipients=["+2250700000601", "+2250700000602"], message="Votre colis arrive"
    )

with DAG(
    dag_id="ui_tab_no_send",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    EmptyOperator(task_id="prepare")
