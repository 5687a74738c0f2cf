"""The subscription record's key, and the create operator run outside a task (no Variables): the id
is returned all the same. The records in real task runs: tests/integration/dag_runs."""

from __future__ import annotations

from airflow_provider_orange_sms.operators.orange_sms import CreateDeliveryReceiptSubscriptionOperator
from airflow_provider_orange_sms.receipts.subscription_record import VARIABLE_PREFIX, variable_key


def test_outside_a_task_the_record_fails_and_the_id_is_returned(fast_conn, sandbox, capfd):
    """``execute`` called directly (no task runner, so no Variables): the subscription still counts."""
    op = CreateDeliveryReceiptSubscriptionOperator(
        task_id="subscribe", notify_url="https://a.example.invalid/receipts"
    )
    subscription_id = op.execute(context={})
    assert list(sandbox.state.subscriptions) == [subscription_id]
    output = "".join(capfd.readouterr())  # the operator's log goes to stdout (structlog)
    assert f"NOT recorded in the Airflow Variable {variable_key(fast_conn)}" in output


def test_a_connection_id_too_long_for_a_variable_key_gets_a_digest():
    assert variable_key("orange_sms_default") == "orange_sms_receipts_subscription.orange_sms_default"
    long_key = variable_key("c" * 250)
    assert len(long_key) <= 250
    assert long_key.startswith(VARIABLE_PREFIX + "sha256-")
    assert long_key != variable_key("c" * 249 + "d")
