"""Reads Variables through the Task SDK's supervisor protocol, as the sent ledger does, from a real task."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.strict_variables import read_variable

with DAG("test_strict_variables", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    # One XCom for the whole dict: a dict return type would push each key on its own, and Airflow
    # 3.0.6's execution API refuses an XCom whose value is None (422), failing the task.
    @task(multiple_outputs=False)
    def read() -> dict[str, str | None]:
        return {
            "present": read_variable("orange_sms_guard_present"),
            "missing": read_variable("orange_sms_guard_missing"),
        }

    read()
