"""SMSReplySensor through Airflow (``dag.test``): the sandbox texts the numbers, and their replies are
stored as the receiver stores them (``store_inbound_message``: an ``INBOUND_MESSAGES`` event each)."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.receipts.inbound_payload import InboundMessage
from airflow_provider_orange_sms.receipts.inbound_store import store_inbound_message
from tests.airflow_runs import xcom_value
from tests.conftest import TEST_DAGS, load_dag, xcom

NUMBERS = ["+2250700004201", "+2250700004202"]  # as in tests/dags/replies.py


def reply_when_texted(sandbox, answers: dict[str, list[str]]) -> None:
    """Make each texted number reply, in order, the texts in ``answers`` (as Orange would post them)."""
    original = sandbox.state.record_message

    def texted_then_reply(**fields):
        message = original(**fields)
        number = message.address.removeprefix("tel:")
        for text in answers.get(number, []):
            store_inbound_message(InboundMessage(sender=number, destination="+2250000", message=text))
        return message

    sandbox.state.record_message = texted_then_reply


def test_the_sensor_returns_the_matching_replies(airflow_db, fast_conn, sandbox):
    reply_when_texted(sandbox, {NUMBERS[0]: ["Yes!"], NUMBERS[1]: ["what is this?", "oui merci"]})

    run = load_dag(TEST_DAGS / "replies.py", "test_sms_replies").test()

    assert run.get_task_instance("wait_for_replies").state == "success"
    answers = xcom(run, "wait_for_replies")
    assert {n: a["message"] for n, a in answers.items()} == {NUMBERS[0]: "Yes!", NUMBERS[1]: "oui merci"}
    replies = xcom_value(run, "wait_for_replies", "replies")
    assert [r["message"] for r in replies if r["sender"] == NUMBERS[1]] == ["what is this?", "oui merci"]


def test_the_sensor_times_out_naming_who_did_not_answer(airflow_db, fast_conn, sandbox, monkeypatch):
    reply_when_texted(sandbox, {NUMBERS[0]: ["YES"], NUMBERS[1]: ["no"]})
    monkeypatch.setenv("REPLIES_TEST_TIMEOUT", "3")

    run = load_dag(TEST_DAGS / "replies.py", "test_sms_replies").test()

    assert run.get_task_instance("wait_for_replies").state == "failed"
    assert xcom_value(run, "wait_for_replies", "missing_numbers") == [NUMBERS[1]]


@pytest.mark.parametrize("bad", [{"numbers": "+22507000042xx"}, {"numbers": NUMBERS, "pattern": "(yes"}])
def test_bad_input_fails_naming_it(bad):
    from types import SimpleNamespace

    from airflow_provider_orange_sms._compat import AirflowFailException
    from airflow_provider_orange_sms.sensors.orange_sms import SMSReplySensor

    sensor = SMSReplySensor(task_id="wait", **bad)
    with pytest.raises(AirflowFailException, match=r"22507000042xx|missing \)"):
        sensor.poke({"dag_run": SimpleNamespace(start_date=None, run_after=None, logical_date=None)})
