"""OrangeSMSNotifier against the sandbox over HTTP."""

from __future__ import annotations

from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_orange_sms.notifications.orange_sms import (
    OrangeSMSNotifier,
    send_orange_sms_notification,
)
from airflow_provider_orange_sms.version_compat import AirflowException


@pytest.fixture
def dag():
    return DAG("nightly_load", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))


def test_notifier_sends_the_rendered_message(orange_conn, sandbox, dag):
    notifier = send_orange_sms_notification(
        recipients=["+2250700000001", "+225 07 00 00 00 02"], message="{{ dag.dag_id }} failed"
    )
    assert isinstance(notifier, OrangeSMSNotifier)

    notifier({"dag": dag, "ti": SimpleNamespace(task_id="load")})

    assert [(m.address, m.message) for m in sandbox.state.messages] == [
        ("tel:+2250700000001", "nightly_load failed"),
        ("tel:+2250700000002", "nightly_load failed"),
    ]


def test_notifier_templated_recipients_use_the_operator_parsing(orange_conn, sandbox, dag):
    notifier = OrangeSMSNotifier(
        recipients="{{ params.on_call }}",
        message="{{ ti.task_id }} failed",
        sender_name="Airflow",
    )
    notifier(
        {
            "dag": dag,
            "ti": SimpleNamespace(task_id="load"),
            "params": {"on_call": ["+2250700000003", "002250700000003", "+2250700000004"]},
        }
    )
    assert [(m.address, m.message, m.sender_name) for m in sandbox.state.messages] == [
        ("tel:+2250700000003", "load failed", "Airflow"),
        ("tel:+2250700000004", "load failed", "Airflow"),
    ]


def test_notifier_invalid_recipient_sends_nothing(orange_conn, sandbox, dag):
    notifier = OrangeSMSNotifier(recipients="+2250700000001, not-a-number", message="x")
    with pytest.raises(ValueError, match="'not-a-number'"):
        notifier.notify({"dag": dag})  # 3.0's __call__ swallows errors
    assert sandbox.state.messages == []


def test_notifier_tries_everyone_then_reports_failures(orange_conn, sandbox, dag):
    sandbox.state.rejected_recipients["tel:+2250700000666"] = "test"
    notifier = OrangeSMSNotifier(recipients=["+2250700000666", "+2250700000001"], message="down")
    with pytest.raises(AirflowException, match=r"1 of 2 recipient\(s\): tel:\+2250700000666: .*SVC0004"):
        notifier.notify({"dag": dag})  # 3.0's __call__ swallows errors
    assert [m.address for m in sandbox.state.messages] == ["tel:+2250700000001"]
