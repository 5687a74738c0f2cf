"""Never after STOP: STOPs land at random moments of a remove, an erase and an import of 300 numbers.

Subscribers reply STOP through the sandbox (as Orange posts replies) to the real receiver on the API
server, while an opt-out list operator runs through Airflow (``dag.test``) on the same metadata
database. Each STOP lands right before one of the operator's Variable reads, writes or deletes,
chosen at random (for an erase, one of them right between reading and deleting the number's own
record, the worst moment). A campaign follows; the sandbox's count per recipient is the judge.

``ORANGE_SMS_RACE_ROUNDS`` sets the rounds per operator (2 by default; 20 to check a change).
"""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from airflow_provider_orange_sms.opt_out import OptOutRecord, operator_variable_key, variable_key
from airflow_provider_orange_sms.receipts.asset_events import to_datetime
from tests.support.dags import TEST_DAGS, load_dag
from tests.support.opt_out import opt_out_records_cleared
from tests.support.sandbox import received
from tests.support.versions import INACTIVE_INLETS_ON_3_0, skip_on_airflow_3_0

ROUNDS = int(os.environ.get("ORANGE_SMS_RACE_ROUNDS", "2"))
NUMBERS_PER_RUN = 300
STOPPERS = 5
CONTROLS = 5


def numbers(count: int) -> list[str]:
    """``count`` numbers no other test uses."""
    base = random.randrange(10**7, 9 * 10**7 - count)
    return [f"+22507{base + i:08d}" for i in range(count)]


def old_stop(number: str) -> None:
    """A STOP the receiver stored a day ago (written in the metadata database, as the receiver does)."""
    from airflow.models.variable import Variable

    at = datetime.now(timezone.utc) - timedelta(days=1)
    record = OptOutRecord(number=number, opted_out=True, at=at.isoformat(), source="inbound", keyword="stop")
    Variable.set(variable_key(number), record.to_json())


def operator_decision_second(number: str) -> datetime:
    """When the operator's decision on ``number`` was made (its record's ``at``)."""
    from airflow.models.variable import Variable

    return OptOutRecord.from_json(Variable.get(operator_variable_key(number))).decided_at()


class Replies:
    """Subscribers' replies sent through the sandbox, each right before a chosen operator step."""

    def __init__(self, sandbox_url: str) -> None:
        self.control = f"{sandbox_url}/_sandbox"
        self.step = 0
        self.at_step: dict[int, list[tuple[str, str]]] = {}
        self.before_delete_of: dict[str, tuple[str, str]] = {}
        self.answers: list[dict[str, Any]] = []

    def reply(self, number: str, message: str) -> None:
        sent = requests.post(
            f"{self.control}/inbound", json={"sender": number, "message": message}, timeout=120
        )
        sent.raise_for_status()
        answer = sent.json()
        sms = answer["notification"]["inboundSMSMessageNotification"]["inboundSMSMessage"]
        self.answers.append(
            {"number": number, "message": message, "sent_at": sms["dateTime"], **answer["response"]}
        )

    def before_step(self, key: str | None = None) -> None:
        if key is not None and key in self.before_delete_of:
            self.reply(*self.before_delete_of.pop(key))
        for number, message in self.at_step.pop(self.step, []):
            self.reply(number, message)
        self.step += 1


@pytest.fixture
def replies(receipts_server, sandbox, monkeypatch):
    """Replies injected into the operator's Variable steps (reads, writes, deletes)."""
    from airflow.sdk.definitions.variable import Variable

    from airflow_provider_orange_sms.opt_out import task_variables

    registered = requests.put(
        f"{sandbox.url}/_sandbox/inbound-url", json={"url": receipts_server.reply_url}, timeout=30
    )
    assert registered.status_code == 204
    injector = Replies(sandbox.url)
    original_set, original_delete = Variable.set, Variable.delete
    original_read = task_variables.read_variable

    def set_(cls, key, *args, **kwargs):
        injector.before_step()
        return original_set(key, *args, **kwargs)

    def delete(cls, key):
        injector.before_step(key)
        return original_delete(key)

    def read(key):
        injector.before_step()
        return original_read(key)

    monkeypatch.setattr(Variable, "set", classmethod(set_))
    monkeypatch.setattr(Variable, "delete", classmethod(delete))
    monkeypatch.setattr(task_variables, "read_variable", read)
    return injector


def run(dag_id: str) -> Any:
    dag_run = load_dag(TEST_DAGS / "opt_out_race.py", dag_id).test()
    return dag_run


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize(
    ("operation", "steps_per_number"),
    [
        ("remove", 2),
        pytest.param("erase", 4, marks=skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)),
        ("import", 2),
    ],
)
def test_no_sms_after_a_stop_that_races_an_opt_out_list_operator(
    operation, steps_per_number, round_, replies, fast_conn, sandbox, monkeypatch
):
    chosen = numbers(NUMBERS_PER_RUN)
    rng = random.Random()
    stoppers = rng.sample(chosen, STOPPERS)
    others = [n for n in chosen if n not in stoppers]
    controls = rng.sample(others, CONTROLS)
    starters = rng.sample([n for n in others if n not in controls], 3) if operation == "import" else []
    steps = NUMBERS_PER_RUN * steps_per_number
    for number in stoppers:
        replies.at_step.setdefault(rng.randrange(steps), []).append((number, "STOP"))
    for number in starters:
        replies.at_step.setdefault(rng.randrange(steps), []).append((number, "START"))
    if operation == "erase":  # the worst moment: after its record was read, before it is deleted
        replies.at_step = {s: [r for r in rs if r[0] != stoppers[0]] for s, rs in replies.at_step.items()}
        replies.before_delete_of[variable_key(stoppers[0])] = (stoppers[0], "STOP")
    campaign = stoppers + controls + starters
    monkeypatch.setenv("OPT_OUT_RACE_NUMBERS", ",".join(chosen))
    monkeypatch.setenv("OPT_OUT_RACE_CAMPAIGN", ",".join(campaign))

    with opt_out_records_cleared(chosen):
        if operation != "import":
            for number in chosen:
                old_stop(number)
        operated = run(f"test_opt_out_race_{operation}")
        assert operated.state == "success"
        answered = {(a["number"], a["message"]): a for a in replies.answers}
        assert len(answered) == STOPPERS + len(starters), replies.answers  # every reply landed mid-task
        assert all(a["status"] == "stored" for a in replies.answers), replies.answers

        # The later decision wins, to the second (Orange dates replies to the second); a tie opts out.
        imported_at = operator_decision_second(chosen[0]) if starters else None
        texted_again = {
            a["number"]: int(to_datetime(a["sent_at"]) > imported_at)
            for a in replies.answers
            if a["message"] == "START" and imported_at is not None
        }
        campaign_run = run("test_opt_out_race_campaign")

    assert campaign_run.state == "success"
    texted = received(sandbox)
    assert {n: texted[f"tel:{n}"] for n in stoppers} == dict.fromkeys(stoppers, 0)
    expected_controls = 0 if operation == "import" else 1  # imported: opted out; removed: texted once
    assert {n: texted[f"tel:{n}"] for n in controls} == dict.fromkeys(controls, expected_controls)
    assert {n: texted[f"tel:{n}"] for n in starters} == texted_again  # a START after the import
