"""Subscription records: two accounts subscribe, then the first deletes its subscription.

The notify URLs come from Variables whose names do not make Airflow mask them (set by the test)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import (
    CreateDeliveryReceiptSubscriptionOperator,
    DeleteDeliveryReceiptSubscriptionOperator,
)

with DAG("test_sms_subscription_records", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    first = CreateDeliveryReceiptSubscriptionOperator(
        task_id="subscribe_first", notify_url="{{ var.value.orange_sms_test_notify_url }}"
    )
    second = CreateDeliveryReceiptSubscriptionOperator(
        task_id="subscribe_second",
        notify_url="{{ var.value.orange_sms_test_notify_url_second }}",
        orange_sms_conn_id="orange_sms_second",
    )

with DAG("test_sms_subscription_delete", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    DeleteDeliveryReceiptSubscriptionOperator(
        task_id="unsubscribe", subscription_id="{{ var.value.orange_sms_test_subscription_id }}"
    )
