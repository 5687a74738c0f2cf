"""The subscription operators record what they created where the "Orange SMS" page reads it: one
Variable per connection, without secrets; a delete marks it deleted only when it names the same id;
a record that cannot be written does not lose the id. Real task runs (dag.test) against the sandbox."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.receipts import subscription_record
from airflow_provider_orange_sms.receipts.subscription_record import (
    LEGACY_VARIABLE,
    VARIABLE_PREFIX,
    SubscriptionRecord,
    variable_key,
)
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.ui import account
from airflow_provider_orange_sms.ui import airflow_data as data
from tests.support.airflow_runs import without_comms_debug
from tests.support.dags import TEST_DAGS, load_dag, xcom
from tests.support.sandbox import connection_json

SECOND = "orange_sms_second"
SECOND_CLIENT = ("second-client-id", "second-client-secret-0123456789")


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Two Orange accounts (client ids) on one sandbox."""
    first = SandboxConfig().clients
    return SandboxConfig(dr_delay=None, clients={**first, SECOND_CLIENT[0]: SECOND_CLIENT[1]})


@pytest.fixture
def no_records(airflow_db: str) -> Iterator[None]:
    """No subscription record and no legacy Variable before or after the test (the DB is shared)."""
    from airflow.models import Variable
    from airflow.utils.session import create_session

    def clear() -> None:
        with create_session() as session:
            rows = session.query(Variable).filter(Variable.key.startswith(VARIABLE_PREFIX)).all()
            for row in rows:
                session.delete(row)
        Variable.delete(LEGACY_VARIABLE)

    clear()
    yield
    clear()


def stored(key: str) -> str | None:
    """A Variable's raw value in the metadata DB."""
    from airflow.models import Variable

    value = Variable.get(key, default_var=None)
    return None if value is None else str(value)


def test_each_connection_records_its_subscription_without_its_secrets(
    no_records, fast_conn, sandbox, monkeypatch, capfd
):
    secret, password, token = (secrets.token_urlsafe(16) for _ in range(3))
    first_url = f"https://a.example.invalid/orange-sms/delivery-receipts/{secret}"
    second_url = f"https://ops:{password}@b.example.invalid/receipts?token={token}"
    monkeypatch.setenv("AIRFLOW_VAR_ORANGE_SMS_TEST_NOTIFY_URL", first_url)
    monkeypatch.setenv("AIRFLOW_VAR_ORANGE_SMS_TEST_NOTIFY_URL_SECOND", second_url)
    second_conn = json.loads(connection_json(sandbox, sender_address="2210000"))
    second_conn.update(login=SECOND_CLIENT[0], password=SECOND_CLIENT[1])
    monkeypatch.setenv(f"AIRFLOW_CONN_{SECOND.upper()}", json.dumps(second_conn))

    run = load_dag(TEST_DAGS / "receipt_subscription_record.py", "test_sms_subscription_records").test()

    assert run.state == "success"
    first_id, second_id = xcom(run, "subscribe_first"), xcom(run, "subscribe_second")
    at_orange = {s.subscription_id: (s.client_id, s.notify_url) for s in sandbox.state.subscriptions.values()}
    assert at_orange == {
        first_id: (sandbox.client_id, first_url),
        second_id: (SECOND_CLIENT[0], second_url),
    }
    raw = {conn: stored(variable_key(conn)) for conn in (fast_conn, SECOND)}
    records = {conn: json.loads(value or "null") for conn, value in raw.items()}
    recorded_at = {conn: record.pop("recorded_at") for conn, record in records.items()}
    assert all(recorded_at.values())
    for conn, record in records.items():
        task = "subscribe_first" if conn == fast_conn else "subscribe_second"
        assert record.pop("recorded_by") == {
            "dag_id": run.dag_id,
            "task_id": task,
            "run_id": run.run_id,
            "map_index": -1,
        }
    assert records == {
        fast_conn: {
            "conn_id": fast_conn,
            "subscription_id": first_id,
            "sender_address": "2250000",
            "country": "CIV",
            "notify_url": "https://a.example.invalid/orange-sms/delivery-receipts/***",
            "deleted_subscription_id": None,
        },
        SECOND: {
            "conn_id": SECOND,
            "subscription_id": second_id,
            "sender_address": "2210000",
            "country": "SEN",
            "notify_url": "https://ops:***@b.example.invalid/receipts?token=***",
            "deleted_subscription_id": None,
        },
    }
    output = without_comms_debug("".join(capfd.readouterr()))
    shown = {conn: data.connection_subscription(conn) for conn in (fast_conn, SECOND)}
    views = {conn: account.record_view(found.record) for conn, found in shown.items()}
    everything = json.dumps(raw) + output + json.dumps(views)
    assert [s for s in (secret, password, token) if s in everything] == []
    assert f"Recorded subscription {second_id} in the Airflow Variable {VARIABLE_PREFIX}{SECOND}" in output
    # The page's data: each connection its own subscription, from its own Variable.
    assert {c: (s.subscription_id, s.source) for c, s in shown.items()} == {
        fast_conn: (first_id, f"Variable {VARIABLE_PREFIX}{fast_conn}"),
        SECOND: (second_id, f"Variable {VARIABLE_PREFIX}{SECOND}"),
    }
    assert views[SECOND] == {
        "sender_address": "2210000",
        "country": "SEN",
        "recorded_notify_url": "https://ops:***@b.example.invalid/receipts?token=***",
        "recorded_at": recorded_at[SECOND],
        "recorded_by": f"{run.dag_id}.subscribe_second of {run.run_id}",
    }


def _subscribe_outside_airflow(sandbox) -> str:
    client = OrangeSMSClient(
        base_url=sandbox.url, client_id=sandbox.client_id, client_secret=sandbox.client_secret
    )
    try:
        return client.create_delivery_receipt_subscription(
            "https://a.example.invalid/receipts", sender_address="2250000"
        )
    finally:
        client.close()


def test_a_delete_marks_the_record_deleted_only_when_it_names_the_same_id(
    no_records, fast_conn, sandbox, monkeypatch
):
    from airflow.models import Variable

    dag = load_dag(TEST_DAGS / "receipt_subscription_record.py", "test_sms_subscription_delete")
    key = variable_key(fast_conn)
    # A record of another subscription, and the legacy Variable naming the one deleted.
    other = SubscriptionRecord(conn_id=fast_conn, subscription_id="another-id", sender_address="2250000")
    Variable.set(key, other.to_json(), serialize_json=True)
    deleted_id = _subscribe_outside_airflow(sandbox)
    Variable.set(LEGACY_VARIABLE, deleted_id)
    monkeypatch.setenv("AIRFLOW_VAR_ORANGE_SMS_TEST_SUBSCRIPTION_ID", deleted_id)

    assert dag.test().state == "success"

    assert sandbox.state.subscriptions == {}
    assert SubscriptionRecord.from_json(stored(key) or "") == other
    assert stored(LEGACY_VARIABLE) is None

    # The record names the subscription deleted: it is kept, marked deleted, its sender with it.
    recorded_id = _subscribe_outside_airflow(sandbox)
    mine = SubscriptionRecord(
        conn_id=fast_conn, subscription_id=recorded_id, sender_address="2250000", country="CIV"
    )
    Variable.set(key, mine.to_json(), serialize_json=True)
    monkeypatch.setenv("AIRFLOW_VAR_ORANGE_SMS_TEST_SUBSCRIPTION_ID", recorded_id)

    run = dag.test()

    assert run.state == "success"
    assert sandbox.state.subscriptions == {}
    after = SubscriptionRecord.from_json(stored(key) or "")
    assert after is not None
    assert (after.subscription_id, after.deleted_subscription_id, after.sender_address, after.country) == (
        None,
        recorded_id,
        "2250000",
        "CIV",
    )
    assert after.recorded_by == {
        "dag_id": run.dag_id,
        "task_id": "unsubscribe",
        "run_id": run.run_id,
        "map_index": -1,
    }
    # The page says so, rather than showing an older source (the legacy Variable, a task's XCom).
    Variable.set(LEGACY_VARIABLE, "a-legacy-id")
    found = data.connection_subscription(fast_conn)
    assert (found.subscription_id, found.source) == (
        None,
        f"subscription {recorded_id} was deleted (Variable {key})",
    )


def test_a_record_that_cannot_be_written_loses_no_subscription_id(
    no_records, fast_conn, sandbox, monkeypatch, capfd
):
    """Orange created it: the task succeeds, returns the id and says which Variable to set, and how."""
    secret = secrets.token_urlsafe(16)
    monkeypatch.setenv(
        "AIRFLOW_VAR_ORANGE_SMS_TEST_NOTIFY_URL",
        f"https://a.example.invalid/orange-sms/delivery-receipts/{secret}",
    )

    def locked(key: str, record: SubscriptionRecord) -> None:
        raise RuntimeError("injected: database is locked")

    monkeypatch.setattr(subscription_record, "_write", locked)
    run = load_dag(TEST_DAGS / "receipt_subscription.py", "test_sms_receipt_subscription").test()

    assert run.state == "success"
    [subscription_id] = sandbox.state.subscriptions
    assert xcom(run, "subscribe") == subscription_id
    output = without_comms_debug("".join(capfd.readouterr()))
    key = variable_key(fast_conn)
    assert (
        f"Subscription {subscription_id} was created at Orange but NOT recorded in the Airflow "
        f"Variable {key} (RuntimeError: injected: database is locked)"
    ) in output
    assert f"airflow variables set {key} " in output
    assert secret not in output
    assert stored(key) is None
    # With no record anywhere yet, the page still finds it: the latest create task's result.
    found = data.connection_subscription(fast_conn)
    assert found.subscription_id == subscription_id
    assert found.source.startswith(f"task {run.dag_id}.subscribe of {run.run_id}")
