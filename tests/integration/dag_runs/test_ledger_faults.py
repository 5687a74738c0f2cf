"""Airflow's side failing around a send: the sent ledger's store, a failure after execute() returned,
the XCom push of the return value, a kill -9 mid-batch. Orange's side is the sandbox, over HTTP.

After every scenario the sandbox's count per recipient is the truth: at most one SMS each, and every
recipient is reported ``sent``, ``failed`` or ``uncertain`` as it really was.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import timedelta

import pendulum
import pytest

from airflow_provider_orange_sms.ledger import sent_ledger
from airflow_provider_orange_sms.ledger.sent_ledger import InMemoryLedgerStore, SentLedger, ledger_key
from airflow_provider_orange_sms.operators.orange_sms import PARTIAL_RESULTS_KEY, SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException
from tests.support.airflow_runs import cleared_not_recreated, fail_task_of_a_killed_worker, xcom_value
from tests.support.dags import TEST_DAGS, fake_ti, load_dag
from tests.support.ledger import FaultyStore
from tests.support.sandbox import received, send_requests
from tests.support.versions import NO_REAL_CLEAR_ON_3_0, skip_on_airflow_3_0

NUMBERS = [f"+22507000030{n:02d}" for n in range(10)]  # as in tests/dags/reliability_send.py
ADDRESSES = [f"tel:{n}" for n in NUMBERS]
ROOT = TEST_DAGS.parent.parent


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


def dag_test_in_a_child_process(when, **env):
    """Start ``dag.test()`` of ``test_sms_batch`` for the run at ``when`` in a separate Airflow process."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import pendulum
        from tests.support.dags import TEST_DAGS, load_dag
        when = pendulum.parse({when.isoformat()!r})
        load_dag(TEST_DAGS / "reliability_send.py", "test_sms_batch").test(logical_date=when, run_after=when)
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], env={**os.environ, **env})


def operator(store, recipients=NUMBERS[:5], **kwargs):
    return SendSMSOperator(
        task_id="send", recipients=recipients, message="Once", ledger_store=store, **kwargs
    )


# -- the ledger's store failing -------------------------------------------------------------------


def test_unreadable_ledger_at_the_start_of_a_retry_fails_before_any_send(fast_conn, sandbox):
    store = FaultyStore()
    sandbox.state.add_fault(kind="status", status=503, path="/requests", method="POST", count=4)
    with pytest.raises(AirflowException):  # the 1st recipient got 503 four times: retryable
        operator(store).execute(context={"ti": fake_ti(1)})
    assert received(sandbox) == Counter(ADDRESSES[1:5])

    store.fail_reads = {store.reads + 1}  # the retry's first read fails
    requests_before = len(send_requests(sandbox))
    with pytest.raises(AirflowException, match="Not sending any SMS: cannot read the sent ledger") as excinfo:
        operator(store).execute(context={"ti": fake_ti(2)})
    assert not isinstance(excinfo.value, AirflowFailException)  # Airflow may retry it
    assert len(send_requests(sandbox)) == requests_before  # nothing left the worker

    results = operator(store).execute(context={"ti": fake_ti(3)})
    assert received(sandbox) == Counter(ADDRESSES[:5])  # each exactly once
    assert [r["status"] for r in results] == ["sent"] * 5


def test_a_ledger_chunk_unreadable_mid_read_fails_before_any_send(fast_conn, sandbox, monkeypatch):
    monkeypatch.setattr(sent_ledger, "CHUNK_SIZE", 2)
    store = FaultyStore()
    sandbox.state.rejected_recipients[ADDRESSES[4]] = "test"
    with pytest.raises(AirflowFailException):
        operator(store).execute(context={"ti": fake_ti(1)})
    assert len(store.values) >= 3
    sandbox.state.rejected_recipients.clear()

    store.fail_reads = {store.reads + 2}  # chunk 0 reads fine, chunk 1 does not
    with pytest.raises(AirflowException, match="cannot read the sent ledger .*_1"):
        operator(store).execute(context={"ti": fake_ti(2)})
    assert received(sandbox) == Counter(ADDRESSES[:4])


def test_a_ledger_write_failing_after_an_accepted_send_stops_the_batch(fast_conn, sandbox):
    store = FaultyStore(fail_writes_from=2)  # the "in flight" of #1 is written, nothing after
    with pytest.raises(AirflowException) as excinfo:
        operator(store).execute(context={"ti": fake_ti(1)})
    text = str(excinfo.value)
    assert not isinstance(excinfo.value, AirflowFailException)
    assert "cannot write the sent ledger" in text
    assert (
        "1 of 5 recipient(s) sent (1 by this try, 0 by earlier tries), 0 uncertain, 0 failed, 4 not attempted"
        in text
    )
    assert received(sandbox) == Counter(ADDRESSES[:1])  # the next SMS never left
    assert store.write_calls == 1 + 4  # the failed write was tried 4 times

    store.fail_writes_from = None  # the database is back
    ti = fake_ti(2)
    with pytest.raises(AirflowFailException, match=rf"1 uncertain.*\n.*Uncertain.*{re.escape(ADDRESSES[0])}"):
        operator(store).execute(context={"ti": ti})  # the rest is sent, then the task fails
    assert received(sandbox) == Counter(ADDRESSES[:5])  # #1 was not texted again
    # Its "sent" never became durable: only "in flight" was, so it is reported uncertain.
    results = ti.pushed[PARTIAL_RESULTS_KEY]
    assert results[0] == {
        "recipient": ADDRESSES[0],
        "resource_id": None,
        "status": "uncertain",
        **{"country": "CIV", "encoding": "GSM-7", "segments": 1},
    }
    assert [r["status"] for r in results[1:]] == ["sent"] * 4


def test_a_briefly_failing_ledger_write_is_tried_again(fast_conn, sandbox):
    store = FaultyStore(fail_writes={3})
    results = operator(store).execute(context={"ti": fake_ti(1)})
    assert [r["status"] for r in results] == ["sent"] * 5
    assert received(sandbox) == Counter(ADDRESSES[:5])


def test_no_send_when_the_first_ledger_write_fails(fast_conn, sandbox):
    store = FaultyStore(fail_writes_from=1)
    with pytest.raises(
        AirflowException, match=rf"the SMS to {re.escape(ADDRESSES[0])} was not sent. 0 of 5 recipient"
    ):
        operator(store).execute(context={"ti": fake_ti(1)})
    assert len(send_requests(sandbox)) == 0


# -- Orange refusing the whole batch, mid-batch auth errors ---------------------------------------


def test_a_refusal_of_the_message_stops_the_batch_at_once(fast_conn, sandbox):
    """SVC0280 (message too long) would be the same for every recipient: one request, not ten."""
    sandbox.state.config.max_message_length = 20
    op = SendSMSOperator(
        task_id="send", recipients=NUMBERS, message="x" * 21, ledger_store=InMemoryLedgerStore()
    )
    with pytest.raises(AirflowFailException) as excinfo:
        op.execute(context={"ti": fake_ti(1)})
    assert len(send_requests(sandbox)) == 1
    assert "SVC0280" in str(excinfo.value)
    assert "0 of 10 recipient(s) sent (0 by this try, 0 by earlier tries)" in str(excinfo.value)
    assert "0 uncertain, 1 failed, 9 not attempted" in str(excinfo.value)


def test_a_sender_name_refused_by_policy_stops_the_batch_at_once(fast_conn, sandbox):
    op = SendSMSOperator(
        task_id="send",
        recipients=NUMBERS,
        message="Hi",
        sender_name="NotListed",
        ledger_store=InMemoryLedgerStore(),
    )
    with pytest.raises(AirflowException, match="POL0001.* 9 not attempted"):
        op.execute(context={"ti": fake_ti(1)})
    assert len(send_requests(sandbox)) == 1


def test_an_auth_error_mid_batch_pushes_the_results_so_far(fast_conn, sandbox):
    original = sandbox.state.record_message

    def record_then_revoke(**fields):
        message = original(**fields)
        if len(sandbox.state.messages) == 2:  # the account's credentials are revoked after two SMS
            sandbox.state.config.clients.clear()
            sandbox.state.revoke_tokens()
        return message

    sandbox.state.record_message = record_then_revoke
    ti = fake_ti(1)
    with pytest.raises(AirflowFailException, match="refused the credentials.* 2 of 5 recipient"):
        operator(InMemoryLedgerStore()).execute(context={"ti": ti})
    assert [r["status"] for r in ti.pushed[PARTIAL_RESULTS_KEY]] == ["sent", "sent", "failed"]
    assert received(sandbox) == Counter(ADDRESSES[:2])


# -- old ledgers go away --------------------------------------------------------------------------


def test_expired_ledgers_are_swept_by_a_later_success_and_recent_ones_kept(fast_conn, sandbox):
    store = InMemoryLedgerStore()
    day = 86400.0
    for run_id, age in (("old", 8 * day), ("recent", 2 * day)):
        ledger = SentLedger(ledger_key("d", "t", run_id, -1), store)
        ledger.load()
        ledger.append([("tel:+2250700000001", "id", "sent")])
        chunk = json.loads(store.values[f"{ledger.key}_0"])
        chunk["updated_at"] -= age
        store.values[f"{ledger.key}_0"] = json.dumps(chunk)

    operator(store, recipients=NUMBERS[:1]).execute(context={"ti": fake_ti(1)})

    old, recent, own = (
        ledger_key("d", "t", "old", -1),
        ledger_key("d", "t", "recent", -1),
        ledger_key("campaign", "send", "manual__2026-01-01", -1),
    )
    assert not any(key.startswith(old) for key in store.values)
    assert any(key.startswith(recent) for key in store.values)
    assert any(key.startswith(own) for key in store.values)


def test_a_too_short_ledger_retention_is_refused():
    with pytest.raises(ValueError, match="ledger_retention"):
        SendSMSOperator(task_id="s", recipients=NUMBERS, message="Hi", ledger_retention=timedelta(minutes=5))


# -- through Airflow: real Variables, real task runs ------------------------------------------------


def test_a_failure_after_execute_returned_never_resends(airflow_db, fast_conn, sandbox):
    dag = load_dag(TEST_DAGS / "reliability_send.py", "test_sms_failure_after_execute")
    run = dag.test()
    ti = run.get_task_instance("send")
    assert ti.state == "success"
    assert ti.try_number == 2  # try 1 sent everything, then failed after execute() returned
    assert received(sandbox) == Counter(ADDRESSES)  # each exactly once


def test_a_failed_xcom_push_of_the_return_value_never_resends(airflow_db, fast_conn, sandbox, monkeypatch):
    from airflow.sdk.execution_time import task_runner

    original = task_runner._push_xcom_if_needed
    calls = []

    def push_fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected: database is locked")
        return original(*args, **kwargs)

    monkeypatch.setattr(task_runner, "_push_xcom_if_needed", push_fails_once)
    dag = load_dag(TEST_DAGS / "reliability_send.py", "test_sms_batch")
    run = dag.test()
    ti = run.get_task_instance("send")
    assert ti.state == "success"
    assert ti.try_number == 2
    assert received(sandbox) == Counter(ADDRESSES)


@skip_on_airflow_3_0(NO_REAL_CLEAR_ON_3_0)
def test_kill_9_between_an_accepted_send_and_its_record_then_a_clear(airflow_db, fast_conn, sandbox):
    """The task process dies while Orange's 201 for the 4th SMS is on its way; the run is cleared."""
    when = pendulum.datetime(2026, 5, 1, 9, tz="UTC")
    child = dag_test_in_a_child_process(when)
    original = sandbox.state.record_message

    def record_then_kill(**fields):
        message = original(**fields)
        if len(sandbox.state.messages) == 4:
            os.kill(child.pid, signal.SIGKILL)  # Orange accepted it; the worker never hears back
        return message

    sandbox.state.record_message = record_then_kill
    assert child.wait(timeout=300) == -signal.SIGKILL
    sandbox.state.record_message = original
    assert received(sandbox) == Counter(ADDRESSES[:4])

    dag = load_dag(TEST_DAGS / "reliability_send.py", "test_sms_batch")
    fail_task_of_a_killed_worker(dag.dag_id, f"manual__{when.isoformat()}", "send")
    with cleared_not_recreated():
        run = dag.test(logical_date=when, run_after=when)  # the same run, cleared

    # The rest is sent, then the task fails on the uncertain one (fail_on_uncertain), not retried.
    assert run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter(ADDRESSES)  # each exactly once
    results = xcom_value(run, "send", PARTIAL_RESULTS_KEY)
    statuses = {r["recipient"]: r["status"] for r in results}
    assert [statuses[a] for a in ADDRESSES[:3]] == ["sent"] * 3
    assert statuses[ADDRESSES[3]] == "uncertain"  # in flight when the worker died
    assert [statuses[a] for a in ADDRESSES[4:]] == ["sent"] * 6


def test_a_ledger_that_exists_but_does_not_decrypt_fails_before_any_send(airflow_db, fast_conn, sandbox):
    """A worker with another Fernet key wrote the ledger: the API server reads it as 'not found'."""
    from airflow.sdk import Variable

    if not hasattr(Variable, "keys"):
        pytest.skip(
            "Airflow < 3.3 cannot list Variables from a task: an undecryptable ledger reads as absent"
        )
    from cryptography.fernet import Fernet

    when = pendulum.datetime(2026, 5, 3, 9, tz="UTC")
    sandbox.state.rejected_recipients[ADDRESSES[9]] = "test"  # so that the task fails and can be cleared
    other_key = Fernet.generate_key().decode()
    assert dag_test_in_a_child_process(when, AIRFLOW__CORE__FERNET_KEY=other_key).wait(timeout=300) == 0
    assert received(sandbox) == Counter(ADDRESSES[:9])
    sandbox.state.rejected_recipients.clear()

    dag = load_dag(TEST_DAGS / "reliability_send.py", "test_sms_batch")
    run = dag.test(logical_date=when, run_after=when)

    assert run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter(ADDRESSES[:9])  # nothing sent: not even the refused one
