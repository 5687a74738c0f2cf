"""
Example: text the on-call engineer when a task fails.

``send_orange_sms_notification`` (an alias of :class:`OrangeSMSNotifier`) is passed as the task's
``on_failure_callback``. When ``load_warehouse`` fails (it always does here, on purpose), the
notifier renders its templated message with the failed task's context and sends it to every
recipient. The same notifier works as a DAG-level callback or for ``on_retry_callback``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.notifications.orange_sms import send_orange_sms_notification

with DAG(
    dag_id="example_orange_sms_failure_alert",
    description="A failing task whose on_failure_callback sends an SMS.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:

    @task(
        retries=0,
        on_failure_callback=send_orange_sms_notification(
            recipients=["+2250700000001"],
            message="Airflow alert: {{ dag.dag_id }}.{{ ti.task_id }} failed (run {{ run_id }}).",
        ),
    )
    def load_warehouse() -> None:
        """Pretend to load data; fail to demonstrate the alert."""
        raise RuntimeError("The warehouse is unreachable (this example fails on purpose)")

    load_warehouse()
