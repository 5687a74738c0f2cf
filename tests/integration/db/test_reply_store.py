"""
Replies stored in the Airflow metadata DB: each message once, the opt-out list the
keywords write (through the receiver app in-process too), and the guard on the Airflow internals
``opt_out/variable_rows.py`` uses.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_orange_sms.opt_out import (
    OptOutRecord,
    variable_key,
)
from airflow_provider_orange_sms.opt_out.records import (
    MAX_REPLY_CLOCK_SKEW as MAX_CLOCK_SKEW,
)
from airflow_provider_orange_sms.receipts import INBOUND_ASSET_NAME, INBOUND_MESSAGES
from airflow_provider_orange_sms.receipts.reply_payload import (
    SMSReply,
)
from airflow_provider_orange_sms.receipts.reply_store import (
    OPTED_IN,
    OPTED_OUT,
    SUPERSEDED,
    store_reply,
)
from tests.support.receipts_server import SECRET, reply_body


def unique_number() -> str:
    return "+22507" + str(uuid.uuid4().int)[:8]


def test_airflow_internals_the_opt_out_writer_relies_on_are_still_there(airflow_db):
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    for column in ("id", "key", "val", "description", "is_encrypted"):
        assert column in Variable.__table__.columns, f"Variable lost {column!r}"
    assert Variable.__table__.columns["key"].unique, "variable.key is no longer unique"
    assert callable(Variable.set_val)
    assert callable(Variable.get_val)
    # What the receiver writes is what Airflow's own Variable.get reads back (Fernet included).
    from airflow_provider_orange_sms.opt_out.variable_rows import WRITTEN, record_decision

    record = OptOutRecord(unique_number(), True, "2026-02-10T14:30:00+00:00", "inbound", "stop", "m")
    with create_session() as session:
        assert record_decision(session, record) == WRITTEN
    assert OptOutRecord.from_json(Variable.get(variable_key(record.number))) == record


def _events(sender: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra, AssetModel.uri)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == INBOUND_ASSET_NAME)
        ).all()
    assert {uri for _, uri in rows} <= {INBOUND_MESSAGES.uri}
    mine = (extra for extra, _ in rows if extra.get("sender") == sender)
    return sorted(mine, key=lambda e: e["received_at"])


def _stored_record(number: str) -> OptOutRecord | None:
    from airflow.models.variable import Variable

    value = Variable.get(variable_key(number), default_var=None)
    return None if value is None else OptOutRecord.from_json(value)


def test_a_message_is_stored_once_per_message_id(airflow_db):
    sender = unique_number()
    now = datetime.now(timezone.utc)
    message = SMSReply(sender, "+2250000", "Hello", "id-" + sender, now)
    assert store_reply(message, now=now).stored is True
    assert store_reply(message, now=now + timedelta(minutes=5)).stored is False
    again = SMSReply(sender, "+2250000", "Hello", "id2-" + sender, now)  # same text, new id
    assert store_reply(again, now=now + timedelta(minutes=6)).stored is True
    assert [e["message_id"] for e in _events(sender)] == ["id-" + sender, "id2-" + sender]


def test_without_message_id_sender_text_and_time_identify_a_message(airflow_db):
    sender = unique_number()
    now = datetime.now(timezone.utc)
    first = SMSReply(sender, "+2250000", "YES", "", now)
    assert store_reply(first, now=now).stored is True
    assert store_reply(first, now=now + timedelta(hours=1)).stored is False
    later_yes = SMSReply(sender, "+2250000", "YES", "", now + timedelta(minutes=2))
    assert store_reply(later_yes, now=now + timedelta(hours=1)).stored is True
    assert len(_events(sender)) == 2


def test_stop_then_start_update_the_opt_out_list(airflow_db):
    sender = unique_number()
    at = datetime(2026, 2, 10, 14, 30, tzinfo=timezone.utc)
    stop = SMSReply(sender, "+2250000", " Stop! ", "s-" + sender, at)
    assert store_reply(stop).opt_out == OPTED_OUT
    record = _stored_record(sender)
    assert record is not None
    assert (record.opted_out, record.source, record.keyword, record.message_id) == (
        True,
        "inbound",
        "stop",
        "s-" + sender,
    )
    assert record.decided_at() == at
    start = SMSReply(sender, "+2250000", "START", "a-" + sender, at + timedelta(minutes=1))
    assert store_reply(start).opt_out == OPTED_IN
    assert _stored_record(sender).opted_out is False  # type: ignore[union-attr]
    # A STOP sent before that START but delivered after it does not undo it.
    late_stop = SMSReply(sender, "+2250000", "ARRÊT", "l-" + sender, at + timedelta(seconds=30))
    assert store_reply(late_stop).opt_out == SUPERSEDED
    assert _stored_record(sender).opted_out is False  # type: ignore[union-attr]
    assert len(_events(sender)) == 3  # every reply is still an event


def test_a_reply_that_is_no_keyword_leaves_the_list_alone(airflow_db):
    sender = unique_number()
    outcome = store_reply(SMSReply(sender, "+2250000", "stop sending me ads", "n-" + sender))
    assert (outcome.stored, outcome.opt_out) == (True, None)
    assert _stored_record(sender) is None


def test_configured_keywords_replace_the_defaults(airflow_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__OPT_OUT_KEYWORDS", "NON MERCI, halt")
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__OPT_IN_KEYWORDS", "oui")
    sender = unique_number()
    assert store_reply(SMSReply(sender, "+2250000", "STOP", "k1-" + sender)).opt_out is None
    assert store_reply(SMSReply(sender, "+2250000", "non merci", "k2-" + sender)).opt_out == (OPTED_OUT)


@pytest.fixture
def live_client(airflow_db, monkeypatch):
    """The receiver app in-process, storing in the tests' metadata database."""
    from fastapi.testclient import TestClient

    from airflow_provider_orange_sms.receipts import app as receiver

    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", SECRET)
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "")
    with TestClient(receiver.create_app(), client=("80.12.13.2", 1234)) as test_client:
        yield test_client


def _post(client, body: dict):
    return client.post(
        f"/inbound-messages/{SECRET}", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def _now_z() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def test_a_start_dated_in_the_future_does_not_outrank_a_stop_sent_now(live_client):
    sender = unique_number()
    start = _post(live_client, reply_body(sender, "START", date_time="2099-01-01T00:00:00Z"))
    assert start.json() == {"status": "stored", "opt_out": "opted_in"}
    stop = _post(live_client, reply_body(sender, "STOP", date_time=_now_z()))
    assert stop.json() == {"status": "stored", "opt_out": "opted_out"}
    assert _stored_record(sender).opted_out is True  # type: ignore[union-attr]
    # The event still says what Orange sent.
    assert [e["sent_at"][:4] for e in _events(sender)] == ["2099", _now_z()[:4]]


def test_a_stop_dated_9999_does_not_block_every_later_start(live_client):
    sender = unique_number()
    stop = _post(live_client, reply_body(sender, "STOP", date_time="9999-12-31T23:59:59Z"))
    assert stop.json() == {"status": "stored", "opt_out": "opted_out"}
    record = _stored_record(sender)
    assert record is not None
    assert record.decided_at() <= datetime.now(timezone.utc) + MAX_CLOCK_SKEW
    start = _post(live_client, reply_body(sender, "START", date_time=_now_z()))
    assert start.json() == {"status": "stored", "opt_out": "opted_in"}
    assert _stored_record(sender).opted_out is False  # type: ignore[union-attr]


def test_an_old_date_time_is_kept_as_the_decision_time(airflow_db):
    # Orange may hold replies back: an old dateTime is the reply's own time, not a clock error.
    sender = unique_number()
    received = datetime(2026, 2, 10, 14, 30, 0, 250000, tzinfo=timezone.utc)  # a whole second is its end
    sent = received - timedelta(days=2)
    late = SMSReply(sender, "+2250000", "STOP", "o-" + sender, sent)
    assert store_reply(late, now=received).opt_out == OPTED_OUT
    assert _stored_record(sender).decided_at() == sent  # type: ignore[union-attr]
    # Ahead of the receipt within the skew: believed (clocks differ a little).
    ahead = SMSReply(sender, "+2250000", "START", "a-" + sender, received + MAX_CLOCK_SKEW)
    assert store_reply(ahead, now=received).opt_out == OPTED_IN
    assert _stored_record(sender).decided_at() == received + MAX_CLOCK_SKEW  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "date_time", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2014-04-15T07:40:13+24:00"]
)
def test_a_date_time_out_of_range_in_utc_is_a_422_not_a_500(live_client, date_time):
    sender = unique_number()
    answer = _post(live_client, reply_body(sender, "STOP", date_time=date_time))
    assert answer.status_code == 422
    assert repr(date_time) in answer.json()["detail"]
    assert _stored_record(sender) is None


@pytest.mark.parametrize("text", ["STOP", "hello"])
def test_a_sender_in_non_ascii_digits_is_a_422(live_client, text):
    sender = "tel:+2٢٥٠٧" + "٠" * 7 + "١"  # noqa: RUF001
    answer = _post(live_client, reply_body(sender, text))
    assert answer.status_code == 422  # was 500 with STOP, and an event under an unmatchable number
    assert repr(sender) in answer.json()["detail"]


@pytest.mark.parametrize(
    ("date_time", "expected"),
    [
        ("2026-02-10T14:30:00+0000", datetime(2026, 2, 10, 14, 30, tzinfo=timezone.utc)),
        ("2026-02-10T14:30:00.25Z", datetime(2026, 2, 10, 14, 30, 0, 250000, tzinfo=timezone.utc)),
    ],
)
def test_a_stop_with_a_date_time_python_3_10_cannot_read_opts_out(live_client, date_time, expected):
    sender = unique_number()
    answer = _post(live_client, reply_body(sender, "STOP", date_time=date_time))
    assert answer.json() == {"status": "stored", "opt_out": "opted_out"}
    assert _stored_record(sender).decided_at() == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "توقـف",  # tatweel (U+0640) stretching توقف
        "تـوقـــف",
        "\u200fتوقف",  # right-to-left mark
        "توقف\u061c",  # Arabic letter mark
        "\ufeffSTOP",  # BOM
        "ST\u200bOP",  # zero-width space
        "S\u200dTOP\u200c",  # zero-width joiner / non-joiner
        "\u200eStop",  # left-to-right mark
    ],
)
def test_a_keyword_with_invisible_characters_opts_out(live_client, text):
    sender = unique_number()
    answer = _post(live_client, reply_body(sender, text))
    assert answer.json() == {"status": "stored", "opt_out": "opted_out"}
    assert _stored_record(sender).opted_out is True  # type: ignore[union-attr]
