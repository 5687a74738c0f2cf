"""DeliveryReceiptSensor's whole loop in dag.test(): sandbox -> real receiver -> asset events -> sensor."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.sandbox import SandboxConfig
from tests.support.airflow_runs import xcom_value
from tests.support.dags import TEST_DAGS, load_dag, xcom
from tests.support.versions import INACTIVE_INLETS_ON_3_0, skip_on_airflow_3_0


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=0.05, dr_statuses=("MessageWaiting", "DeliveredToTerminal"))


@skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)
def test_the_sensor_completes_from_the_sandboxs_callbacks(
    airflow_db, orange_conn, sandbox, client, receipts_server
):
    client.create_delivery_receipt_subscription(receipts_server.receipt_url)
    sandbox.state.delivery_statuses["tel:+2250700000103"] = "DeliveryImpossible"

    run = load_dag(TEST_DAGS / "delivery_receipts_loop.py", "delivery_receipts_loop").test()

    assert run.state == "success"
    sent = {m.resource_id: m.address for m in sandbox.state.messages}
    statuses = xcom(run, "wait_for_receipts")
    assert set(statuses) == set(sent)
    assert {sent[i]: s for i, s in statuses.items()} == {
        f"tel:+22507000001{n:02d}": "DeliveryImpossible" if n == 3 else "DeliveredToTerminal"
        for n in range(1, 7)
    }
    assert xcom(run, "report") == {"DeliveredToTerminal": 5, "DeliveryImpossible": 1}


@skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)
def test_the_sensor_times_out_naming_the_missing_ids(
    airflow_db, orange_conn, sandbox, client, receipts_server, monkeypatch
):
    client.create_delivery_receipt_subscription(receipts_server.receipt_url)
    sandbox.state.delivery_statuses["tel:+2250700000105"] = "none"  # Orange never reports this one
    monkeypatch.setenv("RECEIPTS_TEST_TIMEOUT", "8")
    monkeypatch.setenv("RECEIPTS_TEST_MODE", "poke")

    run = load_dag(TEST_DAGS / "delivery_receipts_loop.py", "delivery_receipts_loop").test()

    assert run.state == "failed"
    [silent] = [m.resource_id for m in sandbox.state.messages if m.address == "tel:+2250700000105"]
    assert xcom_value(run, "wait_for_receipts", "missing_resource_ids") == [silent]
