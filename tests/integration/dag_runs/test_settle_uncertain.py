"""A send task killed mid-batch, right after a recipient's "in flight" record, then run again through
Airflow: Orange's delivery receipt (sandbox -> real receiver -> asset event) settles the recipient as
sent; without a receipt it stays uncertain until the user releases it. The sandbox's count per
recipient is the truth: exactly one SMS each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pendulum
import pytest

from airflow_provider_orange_sms.operators.orange_sms import PARTIAL_RESULTS_KEY
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.strict_variables import variables_listable
from tests.support.airflow_runs import cleared_not_recreated, fail_task_of_a_killed_worker, xcom_value
from tests.support.dags import TEST_DAGS, load_dag
from tests.support.sandbox import received

ROOT = TEST_DAGS.parent.parent
DAG_FILE = TEST_DAGS / "settle_send.py"
SETTLED = [f"tel:+22507000031{n:02d}" for n in range(6)]  # as in tests/dags/settle_send.py
RELEASED = [f"tel:+22507000032{n:02d}" for n in range(6)]
AMBIGUOUS = [f"tel:+22507000033{n:02d}" for n in range(4)]

pytestmark = pytest.mark.skipif(
    not variables_listable(), reason="settling needs Airflow 3.3+ (a task lists every sent ledger)"
)


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=0.05, rate_limit=1000)


def killed_after_in_flight(dag_id, when, victim):
    """
    Run ``dag_id`` for ``when`` in a child Airflow process that kills itself (SIGKILL) right after
    the sent ledger recorded ``victim`` in flight, before its request leaves. Returns the exit code.
    """
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import pendulum
        from airflow_provider_orange_sms.ledger import IN_FLIGHT, SentLedger
        from tests.support.dags import TEST_DAGS, load_dag

        append = SentLedger.append

        def append_then_die(self, entries):
            entries = list(entries)
            append(self, entries)
            if ({victim!r}, None, IN_FLIGHT) in entries:
                os.kill(os.getpid(), signal.SIGKILL)

        SentLedger.append = append_then_die
        when = pendulum.parse({when.isoformat()!r})
        load_dag(TEST_DAGS / "settle_send.py", {dag_id!r}).test(logical_date=when, run_after=when)
        """
    )
    return subprocess.run([sys.executable, "-c", script], env=dict(os.environ), timeout=300).returncode


def killed_when_orange_took_it(dag_id, when, sandbox, victim):
    """
    Run ``dag_id`` for ``when`` in a child Airflow process killed (SIGKILL) as soon as Orange accepted
    the SMS to ``victim``: after its "in flight" record, before the task hears Orange's answer.
    """
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import pendulum
        from tests.support.dags import TEST_DAGS, load_dag
        when = pendulum.parse({when.isoformat()!r})
        load_dag(TEST_DAGS / "settle_send.py", {dag_id!r}).test(logical_date=when, run_after=when)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
    original = sandbox.state.record_message

    def record_then_kill(**fields):
        message = original(**fields)
        if message.address == victim:
            os.kill(child.pid, signal.SIGKILL)  # Orange took it; the worker never hears back
        return message

    sandbox.state.record_message = record_then_kill
    try:
        return child.wait(timeout=300)
    finally:
        sandbox.state.record_message = original


def wait_for_stored_receipt(receipts_server, resource_id, timeout=60.0):
    """Poll the REST API until the receiver stored a receipt of ``resource_id`` (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not receipts_server.events(resource_id):
        assert time.monotonic() < deadline, f"no receipt of {resource_id} stored in {timeout} s"
        time.sleep(0.2)


def retried(dag, when):
    """Fail the killed try as the scheduler would, then run the same DAG run again (a clear)."""
    fail_task_of_a_killed_worker(dag.dag_id, f"manual__{when.isoformat()}", "send")
    with cleared_not_recreated():
        return dag.test(logical_date=when, run_after=when)


def test_a_receipt_that_can_only_be_the_killed_sends_settles_it(
    airflow_db, fast_conn, sandbox, client, receipts_server
):
    client.create_delivery_receipt_subscription(receipts_server.receipt_url)
    when = pendulum.datetime(2026, 6, 1, 9, tz="UTC")
    victim = SETTLED[3]

    assert killed_when_orange_took_it("test_sms_settled_by_receipt", when, sandbox, victim) == -signal.SIGKILL
    assert received(sandbox) == Counter(SETTLED[:4])
    [taken] = [m.resource_id for m in sandbox.state.messages if m.address == victim]
    wait_for_stored_receipt(receipts_server, taken)

    run = retried(load_dag(DAG_FILE, "test_sms_settled_by_receipt"), when)

    assert run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter(SETTLED)  # each exactly once: the victim was not resent
    results = xcom_value(run, "send", "return_value")
    assert [r["status"] for r in results] == ["sent"] * len(SETTLED)
    assert {r["recipient"]: r["resource_id"] for r in results} == {
        m.address: m.resource_id for m in sandbox.state.messages
    }


def test_receipts_that_two_killed_sends_could_own_settle_neither(
    airflow_db, fast_conn, sandbox, client, receipts_server
):
    """Two runs of the DAG, each killed once Orange took its SMS to the same number: each retry sees
    two receipts of SMS unknown to the ledgers, and another send without an outcome: ambiguous."""
    client.create_delivery_receipt_subscription(receipts_server.receipt_url)
    first, second = (pendulum.datetime(2026, 6, 4, hour, tz="UTC") for hour in (9, 10))
    victim = AMBIGUOUS[1]
    for when in (first, second):
        exit_code = killed_when_orange_took_it("test_sms_ambiguous_receipts", when, sandbox, victim)
        assert exit_code == -signal.SIGKILL
    taken = [m.resource_id for m in sandbox.state.messages if m.address == victim]
    assert len(taken) == 2  # one SMS per run
    for resource_id in taken:
        wait_for_stored_receipt(receipts_server, resource_id)

    run = retried(load_dag(DAG_FILE, "test_sms_ambiguous_receipts"), first)

    assert run.get_task_instance("send").state == "failed"
    statuses = {r["recipient"]: r["status"] for r in xcom_value(run, "send", PARTIAL_RESULTS_KEY)}
    assert statuses == {address: "uncertain" if address == victim else "sent" for address in AMBIGUOUS}
    assert received(sandbox)[victim] == 2  # nothing resent


def test_without_a_receipt_it_stays_uncertain_until_released(
    airflow_db, fast_conn, sandbox, client, receipts_server, monkeypatch, capfd
):
    client.create_delivery_receipt_subscription(receipts_server.receipt_url)
    when = pendulum.datetime(2026, 6, 2, 9, tz="UTC")
    victim = RELEASED[3]
    monkeypatch.delenv("SETTLE_TEST_RELEASE", raising=False)

    assert killed_after_in_flight("test_sms_released", when, victim) == -signal.SIGKILL
    assert received(sandbox) == Counter(RELEASED[:3])  # the victim's request never left

    # The other recipients' receipts arrive; none can be the victim's: it stays uncertain.
    run = retried(load_dag(DAG_FILE, "test_sms_released"), when)
    assert run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter(a for a in RELEASED if a != victim)
    statuses = {r["recipient"]: r["status"] for r in xcom_value(run, "send", PARTIAL_RESULTS_KEY)}
    assert statuses[victim] == "uncertain"
    assert [statuses[a] for a in RELEASED if a != victim] == ["sent"] * 5
    output = "".join(capfd.readouterr())
    assert "Uncertain (the request left" in output
    assert victim in output.split("Uncertain (the request left", 1)[1]

    # The user checked with Orange: never sent. Released, the next try sends it, once.
    monkeypatch.setenv("SETTLE_TEST_RELEASE", victim.removeprefix("tel:"))
    with cleared_not_recreated():
        run = load_dag(DAG_FILE, "test_sms_released").test(logical_date=when, run_after=when)
    assert run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter(RELEASED)  # each exactly once
    results = xcom_value(run, "send", "return_value")
    assert [r["status"] for r in results] == ["sent"] * len(RELEASED)


def test_a_released_number_that_is_not_a_recipient_fails_before_any_send(
    airflow_db, fast_conn, sandbox, monkeypatch, capfd
):
    monkeypatch.setenv("SETTLE_TEST_RELEASE", "+2250700009999")
    run = load_dag(DAG_FILE, "test_sms_released").test(logical_date=pendulum.datetime(2026, 6, 3, tz="UTC"))
    assert run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter()
    assert "tel:+2250700009999 is not among this task's recipients" in "".join(capfd.readouterr())
