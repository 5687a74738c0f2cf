"""Send seven SMS to two countries in both encodings.

Run by tests/integration/api_server/test_ui_pages.py.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

#: Five Ivorian and two Senegalese recipients; the Senegalese texts are UCS-2 (an emoji).
MESSAGES = [
    {"recipient": f"+22507000002{n:02d}", "message": "Votre colis arrive demain"} for n in range(1, 6)
] + [{"recipient": f"+2217700000{n:02d}", "message": "Votre colis arrive demain 📦"} for n in (1, 2)]

with DAG(
    dag_id="ui_delivery",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    SendSMSOperator(task_id="send", messages=MESSAGES)
