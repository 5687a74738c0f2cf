"""The README's mapped one-time codes, with an upstream that returns its rows reversed when re-run."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

CODES = {"+2250700000101": "4821", "+2250700000102": "1377", "+2250700000103": "9054"}

with DAG("test_sms_mapped_reorder", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def build_messages(ti: Any = None) -> list[dict[str, str]]:
        rows = [{"recipients": number, "message": f"Votre code: {code}"} for number, code in CODES.items()]
        return rows if ti.try_number == 1 else rows[::-1]  # e.g. a query without ORDER BY

    SendSMSOperator.partial(task_id="send").expand_kwargs(build_messages())
