"""One SMS text per recipient (OTP-like): SendSMSOperator mapped over recipient/message pairs."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

with DAG("test_sms_personalised", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def build_messages() -> list[dict[str, str]]:
        codes = {"+2250700000001": "4821", "+2250700000002": "1377", "+2250700000003": "9054"}
        return [{"recipients": number, "message": f"Votre code: {code}"} for number, code in codes.items()]

    SendSMSOperator.partial(task_id="send").expand_kwargs(build_messages())
