"""BalanceSensor (poke and deferrable) and BalanceTrigger, against the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow < 3.2
    from airflow.exceptions import TaskDeferred

from airflow_provider_orange_sms.exceptions import OrangeSMSAuthError
from airflow_provider_orange_sms.sensors.orange_sms import BalanceSensor
from airflow_provider_orange_sms.triggers.orange_sms import BalanceTrigger
from airflow_provider_orange_sms.version_compat import AirflowException
from tests.support.sandbox import connection_json

CLASSPATH = "airflow_provider_orange_sms.triggers.orange_sms.BalanceTrigger"


def contracts_calls(sandbox):
    return [r for r in sandbox.state.requests if r["path"].endswith("/contracts")]


async def first_event(trigger, timeout=30.0):
    """Run the trigger until its first event (the timeout only guards against a hang)."""
    agen = trigger.run()
    try:
        return await asyncio.wait_for(agen.__anext__(), timeout)
    finally:
        await agen.aclose()


# -- poke mode -----------------------------------------------------------------------------------


def test_poke_waits_while_credit_is_low_then_succeeds(orange_conn, sandbox):
    sandbox.state.balances["CIV"] = 3
    sensor = BalanceSensor(task_id="wait", minimum_units="{{ n }}", country="CIV")
    sensor.render_template_fields({"n": 8})
    assert sensor.minimum_units == "8"  # rendered as a string, converted when used

    low = sensor.poke(context={})
    assert not low
    assert low.xcom_value == 3

    sandbox.state.balances["CIV"] = 8
    enough = sensor.poke(context={})
    assert enough
    assert enough.xcom_value == 8
    assert len(contracts_calls(sandbox)) == 2


def test_poke_rides_out_an_outage_but_not_bad_credentials(orange_conn, sandbox, monkeypatch):
    """Orange failing (after the hook's 4 attempts) means 'not yet'; a refused secret fails the task."""
    sensor = BalanceSensor(task_id="wait", minimum_units=1, country="CIV")
    sandbox.state.add_fault(kind="status", status=503, path="/contracts", count=4)
    assert not sensor.poke(context={})
    assert sensor.poke(context={})
    assert [r["status"] for r in contracts_calls(sandbox)] == [503] * 4 + [200]

    conn = json.loads(connection_json(sandbox))
    conn["password"] = "wrong secret"
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", json.dumps(conn))
    with pytest.raises(OrangeSMSAuthError):
        BalanceSensor(task_id="wait", minimum_units=1, country="CIV").poke(context={})


def test_poke_without_country_sums_every_country(orange_conn, sandbox):
    total = sum(sandbox.state.balances.values())
    assert BalanceSensor(task_id="wait", minimum_units=total).poke(context={})
    assert not BalanceSensor(task_id="wait", minimum_units=total + 1).poke(context={})


def test_execute_in_poke_mode_returns_the_balance(orange_conn, sandbox):
    sensor = BalanceSensor(task_id="wait", minimum_units=10, country="SEN", poke_interval=0, timeout=60)
    assert sensor.execute(context={}) == sandbox.state.balances["SEN"]


@pytest.mark.parametrize("bad", ["eight", "8.5", "", "-1", True, None])
def test_bad_minimum_units_fail_clearly(orange_conn, sandbox, bad):
    sensor = BalanceSensor(task_id="wait", minimum_units=bad)
    with pytest.raises(ValueError, match="Invalid minimum_units"):
        sensor.poke(context={})
    assert contracts_calls(sandbox) == []


# -- deferrable ----------------------------------------------------------------------------------


def test_deferrable_sensor_defers_when_the_first_check_meets_an_outage(orange_conn, sandbox):
    sandbox.state.add_fault(kind="status", status=503, path="/contracts", count=4)
    sensor = BalanceSensor(task_id="wait", minimum_units=1, country="CIV", deferrable=True)
    with pytest.raises(TaskDeferred) as excinfo:
        sensor.execute(context={})
    assert excinfo.value.trigger.minimum_units == 1


def test_deferrable_sensor_defers_to_the_balance_trigger(orange_conn, sandbox):
    sandbox.state.balances["CIV"] = 2
    sensor = BalanceSensor(
        task_id="wait",
        minimum_units=" 8 ",
        country="CIV",
        deferrable=True,
        poke_interval=5,
        timeout=600,
        orange_sms_conn_id="orange_sms_default",
    )
    with pytest.raises(TaskDeferred) as excinfo:
        sensor.execute(context={})

    deferred = excinfo.value
    assert isinstance(deferred.trigger, BalanceTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=600)
    assert deferred.trigger.serialize() == (
        CLASSPATH,
        {
            "minimum_units": 8,
            "country": "CIV",
            "orange_sms_conn_id": "orange_sms_default",
            "poke_interval": 5.0,
        },
    )


def test_deferrable_sensor_does_not_defer_when_credit_is_enough(orange_conn, sandbox):
    sensor = BalanceSensor(task_id="wait", minimum_units=1, country="CIV", deferrable=True)
    assert sensor.execute(context={}) == sandbox.state.balances["CIV"]


def test_execute_complete_success_and_error():
    sensor = BalanceSensor(task_id="wait", minimum_units=8, country="CIV", deferrable=True)
    event = {"status": "success", "available_units": 12, "minimum_units": 8, "country": "CIV"}
    assert sensor.execute_complete(context={}, event=event) == 12

    with pytest.raises(AirflowException, match="Waiting for the Orange SMS balance failed: boom"):
        sensor.execute_complete(context={}, event={"status": "error", "message": "boom"})
    with pytest.raises(AirflowException, match="no event"):
        sensor.execute_complete(context={}, event=None)


# -- trigger -------------------------------------------------------------------------------------


def test_trigger_serializes_and_rebuilds():
    try:
        from airflow.sdk.module_loading import import_string
    except ImportError:  # Airflow 3.0
        from airflow.utils.module_loading import import_string

    trigger = BalanceTrigger(minimum_units=5, country="SEN", orange_sms_conn_id="orange", poke_interval=2)
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = import_string(classpath)(**kwargs)
    assert isinstance(rebuilt, BalanceTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_trigger_fires_once_the_balance_is_enough(orange_conn, sandbox):
    sandbox.state.balances["CIV"] = 1
    trigger = BalanceTrigger(minimum_units=8, country="CIV", poke_interval=0.01)

    async def scenario():
        task = asyncio.ensure_future(first_event(trigger))
        while len(contracts_calls(sandbox)) < 2:  # it polled at least twice while credit was low
            assert not task.done()
            await asyncio.sleep(0.01)
        sandbox.state.balances["CIV"] = 9
        return await task

    event = asyncio.run(scenario())
    assert event.payload == {"status": "success", "available_units": 9, "minimum_units": 8, "country": "CIV"}


def test_trigger_fires_at_once_when_credit_is_already_enough(orange_conn, sandbox):
    event = asyncio.run(first_event(BalanceTrigger(minimum_units=100, country=None, poke_interval=60)))
    assert event.payload["status"] == "success"
    assert event.payload["available_units"] == sum(sandbox.state.balances.values())
    assert len(contracts_calls(sandbox)) == 1


def test_trigger_keeps_polling_through_an_outage(orange_conn, sandbox):
    sandbox.state.add_fault(kind="status", status=503, path="/contracts", count=4)
    trigger = BalanceTrigger(minimum_units=5, country="CIV", poke_interval=0.01)
    event = asyncio.run(first_event(trigger))
    assert event.payload["status"] == "success"
    assert [r["status"] for r in contracts_calls(sandbox)] == [503] * 4 + [200]


def test_trigger_reports_an_error_event(sandbox, cache_dir, monkeypatch):
    conn = json.loads(connection_json(sandbox))
    conn["password"] = "wrong secret"
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", json.dumps(conn))
    event = asyncio.run(first_event(BalanceTrigger(minimum_units=1, poke_interval=0.01)))
    assert event.payload["status"] == "error"
    assert "OrangeSMSAuthError" in event.payload["message"]

    sensor = BalanceSensor(task_id="wait", minimum_units=1, deferrable=True)
    with pytest.raises(AirflowException, match="OrangeSMSAuthError"):
        sensor.execute_complete(context={}, event=event.payload)


# -- closing the hook ----------------------------------------------------------------------------


@pytest.fixture
def closed(monkeypatch):
    """The clients closed so far (each is closed for real too)."""
    from airflow_provider_orange_sms.client import OrangeSMSClient

    clients = []
    close = OrangeSMSClient.close

    def closing(client):
        clients.append(client)
        close(client)

    monkeypatch.setattr(OrangeSMSClient, "close", closing)
    return clients


def test_the_pokes_share_one_session_closed_when_the_try_ends(orange_conn, sandbox, closed):
    sandbox.state.balances["CIV"] = 2
    sensor = BalanceSensor(task_id="wait", minimum_units=1, country="CIV")
    assert sensor.poke(context={})
    assert sensor.poke(context={})
    assert closed == []  # pokes reuse the hook's client
    assert sensor.execute(context={}) == 2
    assert len(closed) == 1


def test_a_deferring_sensor_closes_its_hook_before_the_wait(orange_conn, sandbox, closed):
    sandbox.state.balances["CIV"] = 0
    sensor = BalanceSensor(task_id="wait", minimum_units=1, country="CIV", deferrable=True)
    with pytest.raises(TaskDeferred):
        sensor.execute(context={})
    assert len(closed) == 1


def test_the_resumed_sensor_closes_the_hook_it_opened(orange_conn, sandbox, closed):
    sensor = BalanceSensor(task_id="wait", minimum_units=1, deferrable=True)  # its scope reads the hook
    event = {"status": "success", "available_units": 5, "minimum_units": 1, "country": None}
    assert sensor.execute_complete(context={}, event=event) == 5
    assert len(closed) == 1
