"""Two tasks sending through the hook: the token store (connection extra) decides token reuse."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook

with DAG("test_token_store", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def first() -> str:
        return OrangeSMSHook().send_sms("+2250700000001", "first task")

    @task
    def second(previous: str) -> str:
        return OrangeSMSHook().send_sms("+2250700000002", "second task")

    second(first())
