"""The secret in a subscription's notify_url stays out of the task log, the rendered template fields
(stored in the metadata DB) and XCom: through a real dag.test() run, on a worker that does not have
the receiver's setting (so Airflow does not know the secret by itself)."""

from __future__ import annotations

import json
import secrets

from tests.support.airflow_runs import without_comms_debug
from tests.support.dags import TEST_DAGS, load_dag, xcom


def test_the_notify_url_secret_is_masked(airflow_db, fast_conn, sandbox, monkeypatch, capfd):
    secret = secrets.token_urlsafe(24)
    url = f"http://127.0.0.1:9/orange-sms/delivery-receipts/{secret}"
    monkeypatch.setenv("AIRFLOW_VAR_ORANGE_SMS_TEST_NOTIFY_URL", url)  # a name Airflow does not mask
    monkeypatch.delenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", raising=False)

    dag = load_dag(TEST_DAGS / "receipt_subscription.py", "test_sms_receipt_subscription")
    run = dag.test()

    assert run.state == "success"
    [subscription] = sandbox.state.subscriptions.values()
    assert subscription.notify_url == url  # Orange got the whole URL
    captured = capfd.readouterr()
    task_log = without_comms_debug(captured.out + captured.err)  # dag.test() logs to stdout

    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(RenderedTaskInstanceFields).filter_by(dag_id=run.dag_id, run_id=run.run_id).one()
        rendered = row.rendered_fields
    returned = json.dumps(xcom(run, "subscribe"))
    assert (secret in task_log, secret in json.dumps(rendered), secret in returned) == (False, False, False)
    assert "Delivery receipts for http://127.0.0.1:9 (path not shown): subscription" in task_log
    assert rendered["notify_url"] == "http://127.0.0.1:9/orange-sms/delivery-receipts/***"
