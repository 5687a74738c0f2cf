"""SendSMSOperator honours the opt-out list: tasks run through Airflow (``dag.test``) against the sandbox.

The opt-out records are written in the metadata database the way the receiver (in the API server)
writes them; the sandbox's count per recipient says who was texted.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_orange_sms.operators.orange_sms import PARTIAL_RESULTS_KEY, PLAN_KEY
from airflow_provider_orange_sms.opt_out import KEY_PREFIX, OptOutRecord, operator_variable_key, variable_key
from tests.support.airflow_runs import xcom_value
from tests.support.dags import TEST_DAGS, load_dag, xcom
from tests.support.opt_out import opt_out_records_cleared

NUMBERS = ["+2250700004001", "+2250700004002", "+2250700004003"]  # as in tests/dags/opt_out_send.py
ADDRESSES = [f"tel:{n}" for n in NUMBERS]


def write_record(number: str, *, opted_out: bool, minutes_ago: int = 0, source: str = "inbound") -> None:
    """Write ``number``'s record in the metadata database, as the receiver does for STOP/START."""
    from airflow.models.variable import Variable

    at = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    record = OptOutRecord(
        number=number,
        opted_out=opted_out,
        at=at.isoformat(),
        source=source,
        keyword="stop" if opted_out else "start",
    )
    Variable.set(variable_key(number), record.to_json())


@pytest.fixture(autouse=True)
def clean_list(airflow_db):
    """No record of the test numbers before or after a test (the metadata DB lives for the session)."""
    with opt_out_records_cleared(NUMBERS):
        yield


@pytest.fixture
def opt_out_reads(monkeypatch):
    """Count the execution API's reads of opt-out Variables, per key (the API server's side)."""
    from airflow.models.variable import Variable

    reads: Counter = Counter()
    original = Variable.get

    def counting(key, *args, **kwargs):
        if key.startswith(KEY_PREFIX):
            reads[key] += 1
        return original(key, *args, **kwargs)

    monkeypatch.setattr(Variable, "get", staticmethod(counting))
    return reads


def expected_reads(*with_records: str, sent: tuple[str, ...] = ()) -> Counter:
    """
    The opt-out Variable reads of a send to NUMBERS where only ``with_records`` have a record; the
    ``sent`` ones are read twice (before their turn and right before their request leaves).
    """
    from airflow.sdk import Variable

    if hasattr(Variable, "keys"):  # Airflow 3.3: listed first, only existing records read
        return Counter(variable_key(n) for n in [*with_records, *(n for n in sent if n in with_records)])
    return Counter(key(n) for n in [*NUMBERS, *sent] for key in (variable_key, operator_variable_key))


def stop_after_read(monkeypatch, index: int, *, read: int) -> Counter:
    """Store a STOP for recipient ``index`` right after the ``read``-th read of its opt-out record
    (the race under test: the STOP lands between a read and the request); returns the reads."""
    from airflow_provider_orange_sms.opt_out.check import OptOutCheck

    original = OptOutCheck.opted_out
    reads: Counter = Counter()

    def stop_arrives_after_that_read(self, address):
        record = original(self, address)
        reads[address] += 1
        if address == ADDRESSES[index] and reads[address] == read:
            write_record(NUMBERS[index], opted_out=True)
        return record

    monkeypatch.setattr(OptOutCheck, "opted_out", stop_arrives_after_that_read)
    return reads


def received(sandbox) -> Counter:
    """SMS the sandbox accepted, per recipient."""
    return Counter(m.address for m in sandbox.state.messages)


def run(dag_id: str):
    return load_dag(TEST_DAGS / "opt_out_send.py", dag_id).test()


def statuses(results) -> dict[str, str]:
    return {entry["recipient"]: entry["status"] for entry in results}


def test_a_stop_then_a_send_texts_only_the_others_and_reports_it_opted_out(fast_conn, sandbox, opt_out_reads):
    write_record(NUMBERS[0], opted_out=True)

    dag_run = run("test_opt_out_send")

    assert dag_run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter(ADDRESSES[1:])
    results = xcom(dag_run, "send")
    assert statuses(results) == {ADDRESSES[0]: "opted_out", ADDRESSES[1]: "sent", ADDRESSES[2]: "sent"}
    assert results[0]["resource_id"] is None
    assert xcom_value(dag_run, "send", PLAN_KEY)["opted_out"] == 1
    # The cost rule: before each recipient's turn and again right before its request leaves, one
    # listing of its keys, then a read of each record it has: only the opted-out one is read, once
    # (both keys of each where Variables cannot be listed).
    assert opt_out_reads == expected_reads(NUMBERS[0], sent=tuple(NUMBERS[1:]))


def test_a_start_after_the_stop_texts_the_number_again(fast_conn, sandbox):
    write_record(NUMBERS[0], opted_out=True, minutes_ago=10)
    first = run("test_opt_out_send")
    assert statuses(xcom(first, "send"))[ADDRESSES[0]] == "opted_out"

    write_record(NUMBERS[0], opted_out=False)  # START
    second = run("test_opt_out_send")

    assert second.get_task_instance("send").state == "success"
    assert set(statuses(xcom(second, "send")).values()) == {"sent"}
    assert received(sandbox) == Counter({ADDRESSES[0]: 1, ADDRESSES[1]: 2, ADDRESSES[2]: 2})


def test_an_opt_out_arriving_mid_batch_applies_to_later_recipients(fast_conn, sandbox):
    original = sandbox.state.record_message

    def stop_arrives_after_the_first_send(**fields):
        message = original(**fields)
        if message.address == ADDRESSES[0]:
            write_record(NUMBERS[2], opted_out=True)  # replied STOP while the batch runs
        return message

    sandbox.state.record_message = stop_arrives_after_the_first_send

    dag_run = run("test_opt_out_send")

    assert dag_run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter(ADDRESSES[:2])
    assert statuses(xcom(dag_run, "send"))[ADDRESSES[2]] == "opted_out"


def test_a_stop_stored_after_the_check_before_the_send_leaves_is_honoured(fast_conn, sandbox, monkeypatch):
    """
    The STOP lands between the read before a recipient's turn and its request: while the send waits
    for its token and its slot (seconds behind a campaign sharing the limit). It is read again there.
    """
    stop_after_read(monkeypatch, 1, read=1)

    dag_run = run("test_opt_out_send")

    assert dag_run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter([ADDRESSES[0], ADDRESSES[2]])
    assert statuses(xcom(dag_run, "send"))[ADDRESSES[1]] == "opted_out"
    assert xcom_value(dag_run, "send", PLAN_KEY)["opted_out"] == 1


def test_a_stop_stored_while_a_send_waits_to_be_retried_is_honoured(fast_conn, sandbox, monkeypatch):
    """
    Orange answers the first attempt 503 (nothing accepted, retried after a backoff; a 429's
    Retry-After can be minutes): the STOP lands meanwhile, and the retry reads the record again.
    """
    sandbox.state.add_fault(kind="status", status=503, path="/requests", method="POST", count=1)
    reads = stop_after_read(monkeypatch, 0, read=2)  # the read right before the first attempt

    dag_run = run("test_opt_out_send")

    assert dag_run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter(ADDRESSES[1:])
    assert statuses(xcom(dag_run, "send"))[ADDRESSES[0]] == "opted_out"
    assert reads[ADDRESSES[0]] == 3


def test_a_failing_read_fails_the_task_before_sending_to_that_recipient(
    fast_conn, sandbox, opt_out_reads, monkeypatch
):
    from airflow.models.variable import Variable

    write_record(NUMBERS[1], opted_out=False, minutes_ago=5)  # a record to read: its START
    counting = Variable.get

    def unavailable_for_the_second(key, *args, **kwargs):
        if key == variable_key(NUMBERS[1]):
            raise RuntimeError("injected: the metadata database is unreachable")
        return counting(key, *args, **kwargs)

    monkeypatch.setattr(Variable, "get", staticmethod(unavailable_for_the_second))

    dag_run = run("test_opt_out_send")

    assert dag_run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter(ADDRESSES[:1])  # never "not opted out": nothing after it
    assert statuses(xcom_value(dag_run, "send", PARTIAL_RESULTS_KEY)) == {ADDRESSES[0]: "sent"}


def test_a_variable_that_is_not_a_record_fails_the_task_before_that_send(fast_conn, sandbox):
    from airflow.models.variable import Variable

    Variable.set(variable_key(NUMBERS[1]), "yes please")

    dag_run = run("test_opt_out_send")

    assert dag_run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter(ADDRESSES[:1])


def test_the_dry_run_reads_the_list_once_and_shows_the_opted_out(fast_conn, sandbox, opt_out_reads):
    write_record(NUMBERS[1], opted_out=True, source="import")

    dag_run = run("test_opt_out_dry_run")

    plan = xcom(dag_run, "send")
    assert plan["opted_out"] == 1
    assert [(e["recipient"], e["source"]) for e in plan["opted_out_recipients"]] == [(ADDRESSES[1], "import")]
    assert plan["recipients"] == 2
    assert [m["recipient"] for m in plan["messages"]] == [ADDRESSES[0], ADDRESSES[2]]
    assert received(sandbox) == Counter()
    assert opt_out_reads == expected_reads(NUMBERS[1])


def test_respect_opt_out_false_texts_everyone_without_reading_the_list(fast_conn, sandbox, opt_out_reads):
    write_record(NUMBERS[0], opted_out=True)

    dag_run = run("test_opt_out_ignored")

    assert dag_run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter(ADDRESSES)
    assert opt_out_reads == Counter()


def test_the_notifier_skips_an_opted_out_recipient(fast_conn, sandbox):
    write_record(NUMBERS[0], opted_out=True)

    dag_run = run("test_opt_out_notifier")

    assert dag_run.get_task_instance("done").state == "success"
    assert received(sandbox) == Counter(ADDRESSES[1:2])


def test_the_notifier_honours_a_stop_stored_after_its_read_before_its_send(fast_conn, sandbox, monkeypatch):
    """A deadline's reads are made while its claim settles: the STOP may land before the send leaves."""
    stop_after_read(monkeypatch, 0, read=1)

    dag_run = run("test_opt_out_notifier")

    assert dag_run.get_task_instance("done").state == "success"
    assert received(sandbox) == Counter(ADDRESSES[1:2])


def test_stop_and_start_replies_stored_by_the_receiver_are_honoured(fast_conn, sandbox):
    """The receiver's own path (store_reply) writes the record the send task reads."""
    from airflow_provider_orange_sms.receipts.reply_payload import SMSReply
    from airflow_provider_orange_sms.receipts.reply_store import store_reply

    def reply(number: str, text: str, minutes_ago: int) -> None:
        sent_at = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
        store_reply(SMSReply(sender=number, destination="+2250000", message=text, sent_at=sent_at))

    reply(NUMBERS[1], "Stop!", minutes_ago=5)
    first = run("test_opt_out_send")
    assert statuses(xcom(first, "send"))[ADDRESSES[1]] == "opted_out"
    assert received(sandbox) == Counter([ADDRESSES[0], ADDRESSES[2]])

    reply(NUMBERS[1], "START", minutes_ago=1)
    second = run("test_opt_out_send")
    assert set(statuses(xcom(second, "send")).values()) == {"sent"}
    assert received(sandbox) == Counter({ADDRESSES[0]: 2, ADDRESSES[1]: 1, ADDRESSES[2]: 2})


def test_a_stop_orange_held_back_until_after_a_removal_is_honoured(fast_conn, sandbox):
    """The subscriber texted STOP before an operator took the number off the list; Orange delivered it
    after. The removal was made without knowing of it, so it does not undo it."""
    from airflow.models.variable import Variable

    from airflow_provider_orange_sms.receipts.reply_payload import SMSReply
    from airflow_provider_orange_sms.receipts.reply_store import OPTED_OUT, store_reply

    write_record(NUMBERS[1], opted_out=True, minutes_ago=60)
    assert run("test_opt_out_remove").state == "success"
    removal = OptOutRecord.from_json(Variable.get(operator_variable_key(NUMBERS[1])))
    assert not removal.opted_out

    held_back = SMSReply(
        sender=NUMBERS[1],
        destination="+2250000",
        message="STOP",
        sent_at=removal.decided_at() - timedelta(seconds=30),
    )
    assert store_reply(held_back).opt_out == OPTED_OUT

    send = run("test_opt_out_send")
    assert statuses(xcom(send, "send"))[ADDRESSES[1]] == "opted_out"
    assert received(sandbox) == Counter([ADDRESSES[0], ADDRESSES[2]])


def test_a_stop_kept_only_in_an_environment_variable_is_honoured(fast_conn, sandbox, monkeypatch):
    """Airflow 3.3 lists Variables from the metadata database only; Variable.get looks in the
    environment first: such a record is read, not missed by the listing."""
    record = OptOutRecord(NUMBERS[2], True, datetime.now(timezone.utc).isoformat(), "import")
    monkeypatch.setenv(f"AIRFLOW_VAR_{variable_key(NUMBERS[2]).upper()}", record.to_json())

    send = run("test_opt_out_send")

    assert statuses(xcom(send, "send"))[ADDRESSES[2]] == "opted_out"
    assert received(sandbox) == Counter(ADDRESSES[:2])


def test_a_dry_run_that_cannot_read_the_list_fails_instead_of_planning_everyone(
    fast_conn, sandbox, monkeypatch
):
    from airflow.models.variable import Variable

    for number in NUMBERS:
        write_record(number, opted_out=False, minutes_ago=5)  # records to read: their STARTs
    original = Variable.get

    def unavailable(key, *args, **kwargs):
        if key.startswith(KEY_PREFIX):
            raise RuntimeError("injected: the metadata database is unreachable")
        return original(key, *args, **kwargs)

    monkeypatch.setattr(Variable, "get", staticmethod(unavailable))

    dag_run = run("test_opt_out_dry_run")

    assert dag_run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter()


def test_a_listing_that_fails_fails_the_task_before_sending_to_that_recipient(
    fast_conn, sandbox, monkeypatch
):
    from airflow.sdk.definitions.variable import Variable

    if not hasattr(Variable, "keys"):
        pytest.skip("listing Variables from a task needs Airflow 3.3 (Variable.keys)")
    original = Variable.keys

    def unavailable_for_the_second(cls, prefix=None):
        if prefix == variable_key(NUMBERS[1]):
            raise RuntimeError("injected: the execution API is unreachable")
        return original(prefix)

    monkeypatch.setattr(Variable, "keys", classmethod(unavailable_for_the_second))

    dag_run = run("test_opt_out_send")

    assert dag_run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter(ADDRESSES[:1])  # never "not opted out": nothing after it


def test_a_record_the_api_server_cannot_decrypt_is_never_read_as_not_opted_out(fast_conn, sandbox):
    """A record encrypted with another Fernet key reads as "missing": the listed key says otherwise."""
    from airflow.models.variable import Variable
    from airflow.sdk import Variable as TaskVariable
    from airflow.utils.session import create_session
    from cryptography.fernet import Fernet

    if not hasattr(TaskVariable, "keys"):
        pytest.skip("telling an unreadable record from a missing one needs Airflow 3.3 (Variable.keys)")
    stop = OptOutRecord(
        number=NUMBERS[1], opted_out=True, at=datetime.now(timezone.utc).isoformat(), source="inbound"
    )
    with create_session() as session:
        row = Variable(key=variable_key(NUMBERS[1]), val="placeholder")
        row._val = Fernet(Fernet.generate_key()).encrypt(stop.to_json().encode()).decode()  # another key
        row.is_encrypted = True
        session.add(row)

    dag_run = run("test_opt_out_send")

    assert dag_run.get_task_instance("send").state == "failed"
    assert received(sandbox) == Counter(ADDRESSES[:1])  # stopped before the unreadable one
    assert statuses(xcom_value(dag_run, "send", PARTIAL_RESULTS_KEY)) == {ADDRESSES[0]: "sent"}
