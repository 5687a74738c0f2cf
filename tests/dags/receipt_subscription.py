"""Subscribe the receiver's URL, read from a Variable whose name does not make Airflow mask it."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import CreateDeliveryReceiptSubscriptionOperator

with DAG("test_sms_receipt_subscription", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    CreateDeliveryReceiptSubscriptionOperator(
        task_id="subscribe", notify_url="{{ var.value.orange_sms_test_notify_url }}"
    )
