"""Never after STOP across an operator task's retries, and while an erase is in progress."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_orange_sms.opt_out import (
    OptOutRecord,
    operator_variable_key,
    variable_key,
)
from tests.support.dags import TEST_DAGS, load_dag
from tests.support.opt_out import decision_in_force, opt_out_records_cleared
from tests.support.sandbox import received
from tests.support.versions import INACTIVE_INLETS_ON_3_0, skip_on_airflow_3_0

A, B = "+2250700008101", "+2250700008102"


@pytest.fixture(autouse=True)
def clean_list(airflow_db):
    with opt_out_records_cleared([A, B]):
        yield


def stop_now(
    number: str,
    text: str = "STOP",
    *,
    sent_ago: timedelta = timedelta(0),
    clock_lag: timedelta = timedelta(0),
) -> None:
    """The receiver stores the subscriber's reply now (as in the API server, whose clock may lag the
    worker's by ``clock_lag``), sent ``sent_ago`` before (Orange may hold a reply back)."""
    from airflow_provider_orange_sms.receipts.reply_payload import SMSReply
    from airflow_provider_orange_sms.receipts.reply_store import store_reply

    now = datetime.now(timezone.utc) - clock_lag
    message = SMSReply(sender=number, destination="+2250000", message=text, sent_at=now - sent_ago)
    store_reply(message, now=now)


def old_stop(number: str) -> None:
    from airflow.models.variable import Variable

    at = datetime.now(timezone.utc) - timedelta(days=1)
    record = OptOutRecord(number=number, opted_out=True, at=at.isoformat(), source="inbound", keyword="stop")
    Variable.set(variable_key(number), record.to_json())


def run(dag_id: str):
    return load_dag(TEST_DAGS / "opt_out_retries.py", dag_id).test()


def test_a_stop_sent_between_two_tries_of_a_remove_stays_in_force(monkeypatch, fast_conn, sandbox):
    """Try 1 writes A's removal, A replies STOP, try 1 fails on B; try 2 dates its removal as try 1 did."""
    from airflow.sdk.definitions.variable import Variable

    original_set = Variable.set
    tries = {"n": 0}

    def set_(cls, key, *args, **kwargs):
        if key == operator_variable_key(B):
            tries["n"] += 1
            if tries["n"] == 1:
                stop_now(A)  # A said STOP after the task (its first try) started and after its removal
                time.sleep(1.2)  # the retry starts in a later second
                raise RuntimeError("injected: the execution API is unreachable")
        return original_set(key, *args, **kwargs)

    monkeypatch.setattr(Variable, "set", classmethod(set_))

    dag_run = run("test_opt_out_retries_remove_retry")
    ti = dag_run.get_task_instance("remove")
    assert (ti.state, ti.try_number) == ("success", 2)

    holds = decision_in_force(A)
    campaign = run("test_opt_out_retries_campaign")
    assert campaign.state == "success"
    # A's last decision was STOP (sent after the removal began and after A's removal was written):
    assert received(sandbox)[f"tel:{A}"] == 0, holds  # texted after STOP


@skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)
def test_a_stop_sent_between_two_tries_of_an_erase_is_kept(monkeypatch, fast_conn, sandbox):
    """Try 1 erases A, A replies STOP, try 1 fails; try 2 erases from the same moment and keeps the STOP."""
    from airflow.sdk.definitions.variable import Variable

    old_stop(A)
    old_stop(B)
    original_delete = Variable.delete
    tries = {"n": 0}

    def delete(cls, key):
        if key == operator_variable_key(B):
            tries["n"] += 1
            if tries["n"] == 1:
                stop_now(A)  # A said STOP while the erase ran (after its first try started)
                time.sleep(1.2)
                raise RuntimeError("injected: the execution API is unreachable")
        return original_delete(key)

    monkeypatch.setattr(Variable, "delete", classmethod(delete))

    dag_run = run("test_opt_out_retries_erase_retry")
    ti = dag_run.get_task_instance("erase")
    assert (ti.state, ti.try_number) == ("success", 2)

    holds = decision_in_force(A)
    campaign = run("test_opt_out_retries_campaign")
    assert campaign.state == "success"
    assert received(sandbox)[f"tel:{A}"] == 0, holds  # texted after STOP


@skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)
@pytest.mark.parametrize(
    ("sent_ago", "clock_lag"),
    [
        (timedelta(0), timedelta(0)),
        (timedelta(minutes=1), timedelta(0)),
        (timedelta(0), timedelta(seconds=30)),
    ],
    ids=[
        "sent while the erase ran",
        "sent before it began, delivered while it ran",
        "received by an API server whose clock lags the worker's",
    ],
)
def test_during_an_erase_a_raced_stop_is_never_absent(monkeypatch, sent_ago, clock_lag):
    """A STOP that lands between the erase's read and delete of A's record is recorded again at the
    end, once the replies are read; meanwhile A's operators' record holds an opt-out. The erase did
    not know of it, so it holds even if the subscriber sent it before the erase began."""
    from airflow.sdk.definitions.variable import Variable

    old_stop(A)
    old_stop(B)
    original_delete = Variable.delete
    seen_meanwhile: list[OptOutRecord | None] = []

    def delete(cls, key):
        if key == variable_key(A):
            stop_now(
                A, sent_ago=sent_ago, clock_lag=clock_lag
            )  # right between the erase's read of A's record and its delete
        result = original_delete(key)
        if key == variable_key(B):  # later in the same erase: what a send check sees now
            seen_meanwhile.append(decision_in_force(A))
        return result

    monkeypatch.setattr(Variable, "delete", classmethod(delete))

    dag_run = run("test_opt_out_retries_erase")
    assert dag_run.state == "success"
    final = decision_in_force(A)
    assert final is not None
    assert final.opted_out  # recorded again at the end...
    [meanwhile] = seen_meanwhile
    assert meanwhile is not None
    assert meanwhile.opted_out  # ...and never absent while the erase went on


@skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)
def test_an_erase_still_erases_a_stop_it_read_though_received_shortly_before(monkeypatch):
    """Looking back for STOPs an API server's lagging clock dated before the erase does not bring back
    the STOP the erase read and deleted (a number no other test replies from)."""
    number = "+22507" + str(uuid.uuid4().int)[:8]
    monkeypatch.setenv("OPT_OUT_RACE_NUMBERS", number)
    with opt_out_records_cleared([number]):
        stop_now(number, clock_lag=timedelta(minutes=2))
        assert decision_in_force(number).opted_out  # type: ignore[union-attr]

        erase = load_dag(TEST_DAGS / "opt_out_race.py", "test_opt_out_race_erase").test()
        assert erase.state == "success"
        assert decision_in_force(number) is None


@skip_on_airflow_3_0("telling an unreadable record from a missing one needs Variable.keys (3.3)")
@pytest.mark.parametrize("records_elsewhere", [False, True], ids=["database only", "and environment"])
def test_a_record_the_api_server_cannot_decrypt_written_mid_batch_is_never_read_as_absent(
    fast_conn, sandbox, monkeypatch, records_elsewhere
):
    """Each recipient's keys are listed right before its send: a record written mid-batch counts too,
    also when records may live outside the metadata database (both keys are then read as well)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from cryptography.fernet import Fernet

    numbers = ["+2250700004001", "+2250700004002", "+2250700004003"]  # tests/dags/opt_out_send.py
    if records_elsewhere:  # another number's record in the task's environment
        elsewhere = OptOutRecord("+2250700004999", True, "2026-01-01T00:00:00+00:00", "import")
        monkeypatch.setenv(f"AIRFLOW_VAR_{variable_key(elsewhere.number).upper()}", elsewhere.to_json())
    with opt_out_records_cleared(numbers):
        original = sandbox.state.record_message

        def stop_with_another_key_after_the_first_send(**fields):
            message = original(**fields)
            if message.address == f"tel:{numbers[0]}":
                stop = OptOutRecord(
                    number=numbers[2],
                    opted_out=True,
                    at=datetime.now(timezone.utc).isoformat(),
                    source="inbound",
                )
                with create_session() as session:  # the receiver on an API server with another Fernet key
                    row = Variable(key=variable_key(numbers[2]), val="placeholder")
                    row._val = Fernet(Fernet.generate_key()).encrypt(stop.to_json().encode()).decode()
                    row.is_encrypted = True
                    session.add(row)
            return message

        sandbox.state.record_message = stop_with_another_key_after_the_first_send
        dag_run = load_dag(TEST_DAGS / "opt_out_send.py", "test_opt_out_send").test()
        texted = received(sandbox)
    assert texted[f"tel:{numbers[2]}"] == 0, dag_run.get_task_instance("send").state


def test_a_removal_never_overwrites_a_stop_an_erase_kept_that_reached_airflow_after_it_began(monkeypatch):
    """An erase records a raced STOP in the operators' Variable (sent long ago, received just now);
    a removal that began before that STOP reached Airflow decided without it: the STOP stays."""
    from airflow.models.variable import Variable

    from airflow_provider_orange_sms.opt_out import task_variables

    original_read = task_variables.read_variable
    raced: list[OptOutRecord] = []

    def read_variable(key):
        if key == operator_variable_key(A) and not raced:
            time.sleep(1.2)  # the STOP reaches Airflow in a later second than the removal began
            now = datetime.now(timezone.utc)
            raced.append(
                OptOutRecord.from_reply(
                    "opt_out", A, "STOP", message_id="m", sent_at=now - timedelta(hours=1), received_at=now
                )
            )
            Variable.set(operator_variable_key(A), raced[0].to_json())  # as the erase writes it
        return original_read(key)

    monkeypatch.setattr(task_variables, "read_variable", read_variable)

    assert run("test_opt_out_retries_remove").state == "success"
    assert raced
    final = decision_in_force(A)
    assert final is not None
    assert final.opted_out, final
    assert decision_in_force(B).opted_out is False  # type: ignore[union-attr]
