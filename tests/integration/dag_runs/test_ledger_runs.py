"""Which re-runs the sent ledger covers: a kill while waiting for the limiter or the token, a clear
with a mapped upstream re-ordered, a run deleted and re-created with the same run_id, another task's
sweep of old ledgers, and uncertain recipients. The sandbox's count per recipient is the truth."""

from __future__ import annotations

import datetime
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import timedelta

import pendulum
import pytest

from airflow_provider_orange_sms.ledger.sent_ledger import InMemoryLedgerStore, SentLedger, ledger_key
from airflow_provider_orange_sms.operators.orange_sms import PARTIAL_RESULTS_KEY, SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowFailException
from tests.integration.dag_runs.test_ledger_faults import ADDRESSES, NUMBERS
from tests.support.airflow_runs import cleared_not_recreated, fail_task_of_a_killed_worker
from tests.support.dags import TEST_DAGS, fake_ti, load_dag, xcom
from tests.support.sandbox import received, send_requests
from tests.support.versions import NO_REAL_CLEAR_ON_3_0, skip_on_airflow_3_0, task_deferred

ROOT = TEST_DAGS.parent.parent
UTC = datetime.timezone.utc


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


class Killed(BaseException):
    """The worker dies here (like ``kill -9``: nothing in the task gets to handle it)."""


# -- "in flight" is written right before the request leaves ---------------------------------------


def test_a_try_killed_in_the_limiter_wait_leaves_the_next_recipient_unsent(fast_conn, sandbox, monkeypatch):
    from airflow_provider_orange_sms.limit.file_limiter import FileSendLimiter

    store, original, calls = InMemoryLedgerStore(), FileSendLimiter.wait, []

    def wait(self, booking, before_send=None):
        calls.append(1)
        if len(calls) == 4:  # waiting for the 4th recipient's slot
            raise Killed
        return original(self, booking, before_send)

    monkeypatch.setattr(FileSendLimiter, "wait", wait)
    op = SendSMSOperator(task_id="send", recipients=NUMBERS[:5], message="Once", ledger_store=store)
    with pytest.raises(Killed):
        op.execute(context={"ti": fake_ti(1)})
    assert received(sandbox) == Counter(ADDRESSES[:3])

    results = op.execute(context={"ti": fake_ti(2)})  # the retry
    assert received(sandbox) == Counter(ADDRESSES[:5])  # each exactly once: #4 was never in flight
    assert [r["status"] for r in results] == ["sent"] * 5


def test_a_try_killed_while_fetching_the_token_leaves_the_recipient_unsent(fast_conn, sandbox, monkeypatch):
    from airflow_provider_orange_sms.token.access_token import SharedToken

    store, original, calls = InMemoryLedgerStore(), SharedToken._request_token, []

    def request_token(self):
        calls.append(1)
        if len(calls) == 1:
            raise Killed
        return original(self)

    monkeypatch.setattr(SharedToken, "_request_token", request_token)
    op = SendSMSOperator(task_id="send", recipients=NUMBERS[:2], message="Once", ledger_store=store)
    with pytest.raises(Killed):
        op.execute(context={"ti": fake_ti(1)})
    assert send_requests(sandbox) == []

    results = op.execute(context={"ti": fake_ti(2)})
    assert received(sandbox) == Counter(ADDRESSES[:2])
    assert [r["status"] for r in results] == ["sent"] * 2


def test_the_client_calls_before_send_once_with_the_token_and_slot_in_hand(client, sandbox):
    seen = []

    def before_send():
        seen.append((client.token_requests, len(send_requests(sandbox))))

    sandbox.state.add_fault(kind="status", status=429, path="/requests", method="POST")  # one retry
    client.send_sms("+2250700000001", "Hi", before_send=before_send)
    assert seen == [(1, 0)]  # once, after the token, before the first request
    assert len(send_requests(sandbox)) == 2

    def refuse():
        raise RuntimeError("the ledger is down")

    with pytest.raises(RuntimeError, match="the ledger is down"):
        client.send_sms("+2250700000002", "Hi", before_send=refuse)
    assert len(send_requests(sandbox)) == 2  # nothing left


def _dag_test_killed_in_limiter_wait(when, signal_fd, wait_number):
    """``dag.test()`` of ``test_sms_batch`` in a child process whose send number ``wait_number`` gets
    a slot an hour away; it says, on ``signal_fd``, when the limiter sleeps for it."""
    script = textwrap.dedent(
        f"""
        import os, sys, time, types
        sys.path.insert(0, {str(ROOT)!r})
        import pendulum
        from airflow_provider_orange_sms.limit import file_limiter
        from airflow_provider_orange_sms.limit.limiter import Booking
        from airflow_provider_orange_sms.limit.file_limiter import FileSendLimiter
        from tests.support.dags import TEST_DAGS, load_dag

        original, calls = FileSendLimiter.wait, []

        def wait(self, booking, before_send=None):
            calls.append(1)
            if len(calls) == {wait_number}:  # a slot far away: killed while waiting for it
                booking = Booking(booking.slot + 3600, booking.deadline + 3600, booking.mode)
            return original(self, booking, before_send)

        def sleep(seconds):
            if seconds > 1000:
                os.write({signal_fd}, b"w")
            time.sleep(seconds)

        FileSendLimiter.wait = wait
        file_limiter.time = types.SimpleNamespace(time=time.time, monotonic=time.monotonic, sleep=sleep)
        when = pendulum.parse({when.isoformat()!r})
        load_dag(TEST_DAGS / "reliability_send.py", "test_sms_batch").test(logical_date=when, run_after=when)
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], pass_fds=(signal_fd,))


@skip_on_airflow_3_0(NO_REAL_CLEAR_ON_3_0)
def test_kill_9_in_the_limiter_wait_then_a_clear_sends_each_once(airflow_db, fast_conn, sandbox):
    when = pendulum.datetime(2026, 5, 2, 9, tz="UTC")
    read_end, write_end = os.pipe()
    child = _dag_test_killed_in_limiter_wait(when, write_end, wait_number=4)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], 300)
    assert ready
    assert os.read(read_end, 1) == b"w"
    os.close(read_end)
    os.kill(child.pid, signal.SIGKILL)  # the worker dies waiting for the 4th recipient's slot
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert received(sandbox) == Counter(ADDRESSES[:3])

    dag = load_dag(TEST_DAGS / "reliability_send.py", "test_sms_batch")
    run_id = f"manual__{when.isoformat()}"
    fail_task_of_a_killed_worker(dag.dag_id, run_id, "send")
    with cleared_not_recreated():
        run = dag.test(logical_date=when, run_after=when)

    assert run.run_id == run_id
    assert run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter(ADDRESSES)  # each exactly once
    assert [r["status"] for r in xcom(run, "send")] == ["sent"] * 10  # none uncertain


# -- uncertain recipients fail the task -------------------------------------------------------------


def test_uncertain_recipients_fail_the_task_after_the_rest_and_are_never_resent(fast_conn, sandbox):
    store = InMemoryLedgerStore()
    sandbox.state.add_fault(kind="drop_after", path="/requests", method="POST")  # the 1st answer is lost
    ti = fake_ti(1)
    op = SendSMSOperator(task_id="send", recipients=NUMBERS[:3], message="Once", ledger_store=store)
    with pytest.raises(AirflowFailException) as excinfo:  # no retry: it would change nothing
        op.execute(context={"ti": ti})
    assert received(sandbox) == Counter(ADDRESSES[:3])  # the rest of the batch was sent first
    assert "2 of 3 recipient(s) sent" in str(excinfo.value)
    assert re.search(rf"Uncertain .*: {re.escape(ADDRESSES[0])}$", str(excinfo.value))
    assert [r["status"] for r in ti.pushed[PARTIAL_RESULTS_KEY]] == ["uncertain", "sent", "sent"]

    with pytest.raises(AirflowFailException, match=re.escape(ADDRESSES[0])):  # a clear: still failing
        op.execute(context={"ti": fake_ti(2)})
    assert len(send_requests(sandbox)) == 3  # nothing sent again

    accepting = SendSMSOperator(
        task_id="send", recipients=NUMBERS[:3], message="Once", ledger_store=store, fail_on_uncertain=False
    )
    results = accepting.execute(context={"ti": fake_ti(3)})
    assert [r["status"] for r in results] == ["uncertain", "sent", "sent"]
    assert len(send_requests(sandbox)) == 3


# -- mapped sends: keyed on what they send, not on map_index ---------------------------------------


@skip_on_airflow_3_0(NO_REAL_CLEAR_ON_3_0)
def test_a_clear_of_mapped_sends_with_the_rows_reordered_resends_nothing(airflow_db, fast_conn, sandbox):
    dag = load_dag(TEST_DAGS / "mapped_reorder.py", "test_sms_mapped_reorder")
    when = pendulum.datetime(2026, 6, 1, 9, tz="UTC")
    first = dag.test(logical_date=when, run_after=when)
    assert first.state == "success"
    codes = {m.address: m.message for m in sandbox.state.messages}
    assert len(codes) == 3

    with cleared_not_recreated():
        second = dag.test(logical_date=when, run_after=when)  # build_messages returns them reversed

    assert second.run_id == first.run_id
    assert second.state == "success"
    assert received(sandbox) == Counter(list(codes))  # each recipient got its code exactly once
    assert {m.address: m.message for m in sandbox.state.messages} == codes


# -- a run deleted and re-created with the same run_id -----------------------------------------------


def test_a_run_deleted_and_recreated_with_the_same_run_id_sends_again(airflow_db, fast_conn, sandbox):
    from airflow.models import Variable

    dag = load_dag(TEST_DAGS / "reliability_send.py", "test_sms_batch")
    when = pendulum.datetime(2026, 6, 2, 9, tz="UTC")
    first = dag.test(logical_date=when, run_after=when)
    assert received(sandbox) == Counter(ADDRESSES)
    old_ids = {m.resource_id for m in sandbox.state.messages}

    # dag.test() deletes the run of that logical date and creates it again, same run_id.
    second = dag.test(logical_date=when, run_after=when)

    assert second.run_id == first.run_id
    assert second.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter({address: 2 for address in ADDRESSES})  # a new run: sent again
    results = xcom(second, "send")
    assert [r["status"] for r in results] == ["sent"] * 10
    assert not {r["resource_id"] for r in results} & old_ids  # the new run's ids, not the old run's
    key = ledger_key(dag.dag_id, "send", first.run_id, -1)
    assert Variable.get(f"{key}_0", deserialize_json=True)["entries"]  # the old entries: kept, ignored


def test_a_later_try_of_a_recreated_run_ignores_the_old_run_too():
    """The first try of the new incarnation marks where it begins; its later tries see the mark."""
    store = InMemoryLedgerStore()
    ran_after = datetime.datetime(2026, 6, 3, 9, tzinfo=UTC)

    def context(try_number, ti_id, run_after=ran_after, clear_number=0):
        ti = fake_ti(try_number)
        ti.id = ti_id
        dag_run = type("DagRun", (), {"run_after": run_after, "clear_number": clear_number})()
        return {"ti": ti, "dag_run": dag_run}

    old = SentLedger.from_context(context(2, "old-2"), store)
    old.load()
    old.append([("tel:+2250700000001", "id-1", "sent")])

    for mark, expected in (
        (context(3, "old-3"), 1),  # a retry of the same run
        (context(3, "old-3b", clear_number=1), 1),  # a clear of it
        (context(1, "new-1"), 0),  # re-created: try 1 again
        (context(2, "new-2"), 0),  # that run's retry: the mark of its try 1 separates them
        (context(5, "other", run_after=ran_after + timedelta(hours=1)), 0),  # re-created, run later
    ):
        assert len(SentLedger.from_context(mark, store).load()) == expected


# -- each ledger keeps its own retention ------------------------------------------------------------


def _age(store, key, seconds):
    """Make every chunk of ledger ``key`` look ``seconds`` older."""
    for name in [k for k in store.values if k.startswith(key)]:
        chunk = json.loads(store.values[name])
        chunk["updated_at"] -= seconds
        if isinstance(chunk.get("held_until"), (int, float)):
            chunk["held_until"] -= seconds
        store.values[name] = json.dumps(chunk)


def _ti(dag_id, run_id="manual__2026-01-01"):
    ti = fake_ti(1)
    ti.dag_id, ti.run_id = dag_id, run_id
    return ti


def test_another_tasks_sweep_keeps_a_ledger_by_its_own_retention(fast_conn, sandbox):
    store, day = InMemoryLedgerStore(), 86400.0
    kept_forever = SendSMSOperator(
        task_id="send", recipients=NUMBERS[:5], message="Once", ledger_store=store, ledger_retention=None
    )
    kept_forever.execute(context={"ti": _ti("forever")})
    month = SendSMSOperator(
        task_id="send",
        recipients=NUMBERS[5:7],
        message="Once",
        ledger_store=store,
        ledger_retention=timedelta(days=30),
    )
    month.execute(context={"ti": _ti("month")})
    for dag_id in ("forever", "month"):
        _age(store, ledger_key(dag_id, "send", "manual__2026-01-01", -1), 20 * day)

    hourly = SendSMSOperator(
        task_id="send",
        recipients=NUMBERS[9:],
        message="Once",
        ledger_store=store,
        ledger_retention=timedelta(hours=1),
    )
    hourly.execute(context={"ti": _ti("hourly")})  # succeeds, then sweeps

    kept_forever.execute(context={"ti": _ti("forever")})  # a clear, 20 days later
    month.execute(context={"ti": _ti("month")})
    assert received(sandbox) == Counter(ADDRESSES[:7] + ADDRESSES[9:])  # each exactly once

    _age(store, ledger_key("month", "send", "manual__2026-01-01", -1), 11 * day)
    hourly.execute(context={"ti": _ti("hourly", "another run")})
    assert not any(k.startswith(ledger_key("month", "send", "manual__2026-01-01", -1)) for k in store.values)
    assert any(k.startswith(ledger_key("forever", "send", "manual__2026-01-01", -1)) for k in store.values)


def test_a_ledger_of_an_older_release_is_kept_at_least_the_default_retention(fast_conn, sandbox):
    store, day = InMemoryLedgerStore(), 86400.0
    old_key = ledger_key("old", "send", "manual__2026-01-01", -1)
    chunk = {"version": 2, "updated_at": 0.0, "entries": [[ADDRESSES[0], "id", "sent"]]}
    sweeper = SendSMSOperator(
        task_id="send",
        recipients=NUMBERS[9:],
        message="Once",
        ledger_store=store,
        ledger_retention=timedelta(hours=1),
    )
    import time

    for age, kept in ((2 * day, True), (8 * day, False)):
        chunk["updated_at"] = time.time() - age
        store.values[f"{old_key}_0"] = json.dumps(chunk)
        sweeper.execute(context={"ti": _ti("sweeper", f"run {age}")})
        assert (f"{old_key}_0" in store.values) is kept


def test_a_batch_deferred_overnight_keeps_its_ledger_through_other_sweeps(fast_conn, sandbox):
    """Sent at 19:59, deferred at 20:00 until 08:00: a sweep at 07:59 by a task with a 1-hour
    retention must not delete its ledger, whatever the deferred task's own retention."""
    for retention in (timedelta(days=7), timedelta(hours=1)):
        store = InMemoryLedgerStore()
        sandbox.state.messages.clear()
        today = datetime.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        evening = iter([today.replace(hour=19, minute=59)] + [today.replace(hour=20)] * 50)
        op = SendSMSOperator(
            task_id="send",
            recipients=NUMBERS[:2],
            message="Bonsoir",
            send_window=("08:00", "20:00"),
            ledger_store=store,
            ledger_retention=retention,
        )
        op.clock = lambda evening=evening: next(evening)
        with pytest.raises(task_deferred()):
            op.execute({"ti": fake_ti(1)})
        assert received(sandbox) == Counter(ADDRESSES[:1])

        morning = today + timedelta(days=1, hours=8)
        deferred_key = ledger_key("campaign", "send", "manual__2026-01-01", -1)
        _age(
            store,
            deferred_key,
            (morning - timedelta(minutes=1)).timestamp() - datetime.datetime.now(UTC).timestamp(),
        )
        SendSMSOperator(
            task_id="send",
            recipients=NUMBERS[9:],
            message="Once",
            ledger_store=store,
            ledger_retention=timedelta(hours=1),
        ).execute(context={"ti": _ti("hourly")})  # succeeds at "07:59", then sweeps

        op.clock = lambda morning=morning: morning
        op.execute_after_wait({"ti": fake_ti(1)}, event=None)
        assert received(sandbox) == Counter(ADDRESSES[:2] + ADDRESSES[9:]), retention  # each once
