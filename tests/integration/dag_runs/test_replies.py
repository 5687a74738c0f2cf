"""SMSReplySensor through Airflow (``dag.test``): the sandbox texts the numbers, and their replies are
stored as the receiver stores them (``store_reply``: an ``INBOUND_MESSAGES`` event each)."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.receipts.reply_payload import SMSReply
from airflow_provider_orange_sms.receipts.reply_store import store_reply
from tests.support.airflow_runs import xcom_value
from tests.support.dags import TEST_DAGS, load_dag, xcom
from tests.support.versions import INACTIVE_INLETS_ON_3_0, skip_on_airflow_3_0

NUMBERS = ["+2250700004201", "+2250700004202"]  # as in tests/dags/replies.py


def reply_when_texted(sandbox, answers: dict[str, list[str]]) -> None:
    """Make each texted number reply, in order, the texts in ``answers`` (as Orange would post them)."""
    original = sandbox.state.record_message

    def texted_then_reply(**fields):
        message = original(**fields)
        number = message.address.removeprefix("tel:")
        for text in answers.get(number, []):
            store_reply(SMSReply(sender=number, destination="+2250000", message=text))
        return message

    sandbox.state.record_message = texted_then_reply


@skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)
def test_the_sensor_returns_the_matching_replies(airflow_db, fast_conn, sandbox):
    reply_when_texted(sandbox, {NUMBERS[0]: ["Yes!"], NUMBERS[1]: ["what is this?", "oui merci"]})

    run = load_dag(TEST_DAGS / "replies.py", "test_sms_replies").test()

    assert run.get_task_instance("wait_for_replies").state == "success"
    answers = xcom(run, "wait_for_replies")
    assert {n: a["message"] for n, a in answers.items()} == {NUMBERS[0]: "Yes!", NUMBERS[1]: "oui merci"}
    replies = xcom_value(run, "wait_for_replies", "replies")
    assert [r["message"] for r in replies if r["sender"] == NUMBERS[1]] == ["what is this?", "oui merci"]


@skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)
def test_the_sensor_times_out_naming_who_did_not_answer(airflow_db, fast_conn, sandbox, monkeypatch):
    reply_when_texted(sandbox, {NUMBERS[0]: ["YES"], NUMBERS[1]: ["no"]})
    monkeypatch.setenv("REPLIES_TEST_TIMEOUT", "3")

    run = load_dag(TEST_DAGS / "replies.py", "test_sms_replies").test()

    assert run.get_task_instance("wait_for_replies").state == "failed"
    assert xcom_value(run, "wait_for_replies", "missing_numbers") == [NUMBERS[1]]


@pytest.mark.parametrize("bad", [{"numbers": "+22507000042xx"}, {"numbers": NUMBERS, "pattern": "(yes"}])
def test_bad_input_fails_naming_it(bad):
    from types import SimpleNamespace

    from airflow_provider_orange_sms.sensors.orange_sms import SMSReplySensor
    from airflow_provider_orange_sms.version_compat import AirflowFailException

    sensor = SMSReplySensor(task_id="wait", **bad)
    with pytest.raises(AirflowFailException, match=r"22507000042xx|missing \)"):
        sensor.poke({"dag_run": SimpleNamespace(start_date=None, run_after=None, logical_date=None)})


class Events:
    """Stands in for ``context["inlet_events"]``: INBOUND_MESSAGES events with ``after``/``limit``."""

    def __init__(self, start):
        self.start, self.events = start, []

    def add(self, seconds, sender, message):
        from datetime import timedelta
        from types import SimpleNamespace

        extra = {"sender": sender, "message": message, "received_at": "x", "destination": "+2250000"}
        stamp = self.start + timedelta(seconds=seconds)
        self.events.append(SimpleNamespace(id=len(self.events) + 1, timestamp=stamp, extra=extra))

    def __getitem__(self, asset):
        from datetime import datetime

        assert asset.name == "orange_sms_inbound_messages"
        events, chosen = self.events, {}

        class Accessor:
            def ascending(self, _=True):
                return self

            def after(self, moment):
                chosen["after"] = datetime.fromisoformat(moment)
                return self

            def limit(self, n):
                chosen["limit"] = n
                return self

            def __iter__(self):
                picked = [e for e in events if e.timestamp >= chosen["after"]]
                return iter(picked[: chosen["limit"]])

        return Accessor()


def test_replies_before_since_do_not_count_and_require_all_false_takes_the_first():
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from airflow_provider_orange_sms.sensors.orange_sms import SMSReplySensor

    start = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    events = Events(start)
    events.add(-60, NUMBERS[0], "yes")  # an answer to an earlier campaign
    context = {"inlet_events": events, "dag_run": SimpleNamespace(start_date=start, run_after=start)}
    sensor = SMSReplySensor(task_id="wait", numbers=NUMBERS, pattern="yes", require_all=False)

    assert not sensor.poke(context).is_done
    events.add(5, NUMBERS[1], "no")
    assert not sensor.poke(context).is_done
    events.add(9, NUMBERS[1], "YES")
    done = sensor.poke(context)
    assert done.is_done
    assert {n: a["message"] for n, a in done.xcom_value.items()} == {NUMBERS[1]: "YES"}
