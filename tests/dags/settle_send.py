"""DAGs whose send task is killed mid-batch, for settling its uncertain recipient: from Orange's
delivery receipt, or by the user's release (``SETTLE_TEST_RELEASE``, as if the DAG were edited)."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

#: Numbers no other test DAG texts: another run's uncertain send to one would be a rival.
SETTLED_NUMBERS = [f"+22507000031{n:02d}" for n in range(6)]
RELEASED_NUMBERS = [f"+22507000032{n:02d}" for n in range(6)]
AMBIGUOUS_NUMBERS = [f"+22507000033{n:02d}" for n in range(4)]
START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("test_sms_settled_by_receipt", schedule=None, start_date=START):
    SendSMSOperator(task_id="send", recipients=SETTLED_NUMBERS, message="Once")

with DAG("test_sms_released", schedule=None, start_date=START):
    SendSMSOperator(
        task_id="send",
        recipients=RELEASED_NUMBERS,
        message="Once",
        release_uncertain=os.environ.get("SETTLE_TEST_RELEASE"),
    )

with DAG("test_sms_ambiguous_receipts", schedule=None, start_date=START):
    SendSMSOperator(task_id="send", recipients=AMBIGUOUS_NUMBERS, message="Once")
