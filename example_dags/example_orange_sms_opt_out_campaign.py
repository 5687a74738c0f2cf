"""
Example: a marketing campaign that skips the numbers on the opt-out list.

Nothing to configure for it: ``SendSMSOperator`` honours the opt-out list by default. Each
recipient's entry is read right before its send, so a subscriber who replies STOP while the batch
runs is not texted afterwards. The list is filled by the receiver (STOP / START replies) and by
``ImportOptOutListOperator`` (e.g. a CSV exported from a previous SMS provider).

Reading top to bottom:

1. ``import_previous_opt_outs`` puts the numbers of an older list on the opt-out list.
2. ``preview`` is a dry run: its XCom plan counts the opted-out recipients (``opted_out``), lists
   them (``opted_out_recipients``) and leaves them out of the SMS and segment totals.
3. ``send`` texts the others; the opted-out ones appear in its results with status ``opted_out``
   (no resource id) and do not fail the task.

Run it by hand (``schedule=None``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import ImportOptOutListOperator, SendSMSOperator

CUSTOMERS = ["+2250700000001", "+2250700000002", "+2250700000003"]
MESSAGE = "ACME Shop: -20% on everything this weekend. Reply STOP to opt out."

with DAG(
    dag_id="example_orange_sms_opt_out_campaign",
    description="A campaign that never texts opted-out numbers.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:
    (
        ImportOptOutListOperator(
            task_id="import_previous_opt_outs",
            csv_text="number,unsubscribed_on\n+2250700000003,2025-11-02\n",
        )
        >> SendSMSOperator(task_id="preview", recipients=CUSTOMERS, message=MESSAGE, dry_run=True)
        >> SendSMSOperator(task_id="send", recipients=CUSTOMERS, message=MESSAGE)
    )
