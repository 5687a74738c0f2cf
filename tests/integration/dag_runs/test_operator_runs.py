"""SendSMSOperator in real DAG runs (dag.test): retries through real Variables, mapped personalised
sends, results left for an all-done task, and a clear after a final failure."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.ledger import sent_ledger
from airflow_provider_orange_sms.sandbox import SandboxConfig
from tests.support.airflow_runs import cleared_not_recreated
from tests.support.dags import TEST_DAGS, load_dag, xcom
from tests.support.sandbox import send_requests
from tests.support.versions import NO_REAL_CLEAR_ON_3_0, skip_on_airflow_3_0

ADDRESSES = ["tel:+2250700000001", "tel:+2250700000002", "tel:+2250700000003"]
REJECTED = "tel:+2250700000666"


@pytest.fixture
def sandbox_config():
    """No limiting tests here: let the sandbox accept sends as fast as they come."""
    return SandboxConfig(dr_delay=None, rate_limit=1000)


def test_retry_guard_through_real_variables_in_a_dag_run(airflow_db, fast_conn, sandbox):
    """Two real tries of one task instance (dag.test retries it): the ledger lives in Variables."""
    sandbox.state.add_fault(kind="status", status=503, path="/requests", method="POST", count=4)
    sandbox.state.add_fault(kind="drop_after", path="/requests", method="POST")

    dag = load_dag(TEST_DAGS / "retry_guard.py", "test_sms_retry_guard")
    run = dag.test()

    assert run.state == "success"  # the DAG accepts uncertain recipients (fail_on_uncertain=False)
    ti = run.get_task_instance("send")
    assert ti.try_number == 2
    # Try 1: #1 unavailable (503, 4 attempts), #2 uncertain (but processed), #3 sent. Try 2: only #1.
    assert [m.address for m in sandbox.state.messages] == [ADDRESSES[1], ADDRESSES[2], ADDRESSES[0]]
    assert len(send_requests(sandbox)) == 4 + 1 + 1 + 1

    from airflow.models import Variable
    from airflow.utils.session import create_session

    key = sent_ledger.ledger_key(run.dag_id, "send", run.run_id, -1)
    with create_session() as session:
        left = [v.key for v in session.query(Variable).filter(Variable.key.like(f"{key}_%"))]
    assert left == [f"{key}_0", f"{key}_1"]  # kept after the success; one chunk per try


def test_one_message_per_recipient_with_mapped_tasks(airflow_db, fast_conn, sandbox):
    """The Sending page's recipe for personalised texts: each mapped task instance sends its own SMS."""
    dag = load_dag(TEST_DAGS / "personalised_messages.py", "test_sms_personalised")
    run = dag.test()
    assert run.state == "success"
    received = {m.address: m.message for m in sandbox.state.messages}
    assert received == {
        "tel:+2250700000001": "Votre code: 4821",
        "tel:+2250700000002": "Votre code: 1377",
        "tel:+2250700000003": "Votre code: 9054",
    }


def test_a_failed_task_leaves_its_results_for_an_all_done_task(airflow_db, fast_conn, sandbox):
    sandbox.state.rejected_recipients[REJECTED] = "test"
    dag = load_dag(TEST_DAGS / "partial_failure.py", "test_sms_partial_failure")
    run = dag.test()

    assert run.get_task_instance("send").state == "failed"
    [message] = sandbox.state.messages
    hi = {"country": "CIV", "encoding": "GSM-7", "segments": 1}
    assert xcom(run, "report") == [
        {"recipient": ADDRESSES[0], "resource_id": message.resource_id, "status": "sent", **hi},
        {"recipient": REJECTED, "resource_id": None, "status": "failed", **hi},
    ]


@skip_on_airflow_3_0(NO_REAL_CLEAR_ON_3_0)
def test_clearing_a_failed_task_sends_only_to_recipients_not_reached(airflow_db, fast_conn, sandbox):
    """The ledger outlives a final failure in real Variables: a cleared task does not text anyone twice."""
    import pendulum
    from airflow.models import Variable
    from airflow.utils.session import create_session

    dag = load_dag(TEST_DAGS / "partial_failure.py", "test_sms_partial_failure")
    when = pendulum.datetime(2026, 3, 1, 9, tz="UTC")
    sandbox.state.rejected_recipients[REJECTED] = "test"
    first = dag.test(logical_date=when, run_after=when)
    assert first.get_task_instance("send").state == "failed"
    assert [m.address for m in sandbox.state.messages] == [ADDRESSES[0]]
    key = sent_ledger.ledger_key(dag.dag_id, "send", first.run_id, -1)
    assert Variable.get(f"{key}_0", deserialize_json=True)["entries"][0][0] == ADDRESSES[0]

    sandbox.state.rejected_recipients.clear()
    with cleared_not_recreated():
        second = dag.test(logical_date=when, run_after=when)  # the same run, cleared

    assert second.run_id == first.run_id
    assert second.get_task_instance("send").state == "success"
    assert [m.address for m in sandbox.state.messages] == [ADDRESSES[0], REJECTED]
    with create_session() as session:
        left = session.query(Variable).filter(Variable.key.like(f"{key}_%")).count()
    assert left == 2  # one chunk per try, kept after the success until they expire
