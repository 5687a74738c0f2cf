"""
Replies in-process, without a database: parsing Orange's OneAPI body, the keyword
settings, and the receiver route's guards (the storing, the opt-out list and the guard on the
Airflow internals ``opt_out/variable_rows.py`` uses are in tests/integration/db/test_reply_store.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_orange_sms.receipts import INBOUND_ASSET_NAME, INBOUND_MESSAGES
from airflow_provider_orange_sms.receipts import store as store_module
from airflow_provider_orange_sms.receipts.payload import ReceiptError
from airflow_provider_orange_sms.receipts.reply_payload import (
    REPLY_EXTRA_KEYS,
    SMSReply,
    parse_reply,
)
from airflow_provider_orange_sms.receipts.reply_store import (
    _parse_keywords,
)
from airflow_provider_orange_sms.receipts.store import StoreUnavailableError
from tests.support.receipts_server import SECRET, reply_body


def test_parse_orange_s_oneapi_body():
    raw = json.dumps(reply_body("tel:+2250700000001", "STOP", message_id="m-1", callback_data="cb")).encode()
    parsed = parse_reply(raw)
    assert parsed == SMSReply(
        sender="+2250700000001",
        destination="+2250000",
        message="STOP",
        message_id="m-1",
        sent_at=datetime(2026, 2, 10, 14, 30, tzinfo=timezone.utc),
        callback_data="cb",
    )
    extra = parsed.to_extra("2026-02-10T14:30:01+00:00")
    assert tuple(extra) == REPLY_EXTRA_KEYS
    assert extra["sender"] == "+2250700000001"
    assert extra["received_at"] == "2026-02-10T14:30:01+00:00"


@pytest.mark.parametrize("destination", ["tel:+2250000", "2250000", "+2250000", "tel:2250000"])
def test_the_destination_with_and_without_tel_plus(destination):
    raw = json.dumps(reply_body("tel:+2250700000001", "hi", destination=destination)).encode()
    assert parse_reply(raw).destination == "+2250000"


@pytest.mark.parametrize(
    "sender",
    ["tel:+2250700000001", "tel:2250700000001", "+2250700000001", "tel:002250700000001", "002250700000001"],
)
def test_the_sender_in_every_international_form_is_the_number_on_the_list(sender):
    """A STOP from ``00225…`` is the STOP of ``+225…``: refused, it would never reach the list."""
    raw = json.dumps(reply_body(sender, "STOP")).encode()
    assert parse_reply(raw).sender == "+2250700000001"


def test_message_id_date_time_and_callback_data_may_be_absent():
    document = reply_body("+2250700000001", "YES", message_id=None)
    sms = document["inboundSMSMessageNotification"]["inboundSMSMessage"]
    del sms["dateTime"]
    parsed = parse_reply(json.dumps(document).encode())
    assert (parsed.message_id, parsed.sent_at, parsed.callback_data) == ("", None, "")
    assert parsed.identity() == ("text", "+2250700000001", "YES", "")


def _with(**changes: object) -> bytes:
    document = reply_body("tel:+2250700000001", "STOP", message_id="m-1")
    sms = document["inboundSMSMessageNotification"]["inboundSMSMessage"]
    for key, value in changes.items():
        if value is ...:
            del sms[key]
        else:
            sms[key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("raw", "status", "names"),
    [
        (b"{", 400, "not JSON"),
        (b"[" * 30_000 + b"]" * 30_000, 400, "nested too deeply"),
        (b"[]", 422, "list"),
        (json.dumps({"inboundSMSMessageNotification": {}}).encode(), 422, "inboundSMSMessage"),
        (_with(senderAddress="0700000001"), 422, "senderAddress '0700000001'"),
        (_with(senderAddress=...), 422, "senderAddress None"),
        (_with(destinationAddress="tel:+22a"), 422, "destinationAddress 'tel:+22a'"),
        (_with(message=...), 422, "message None"),
        (_with(message=5), 422, "message 5"),
        (_with(messageId=["x"]), 422, "messageId a list of 1 items"),
        (_with(messageId="a\nb"), 422, "messageId 'a\\nb'"),
        (_with(dateTime="yesterday"), 422, "dateTime 'yesterday'"),
        (_with(dateTime="07:40:13"), 422, "dateTime '07:40:13'"),  # a time alone is no moment
        (_with(dateTime="2014-W16"), 422, "dateTime '2014-W16'"),
        (_with(dateTime="2014-04-15T07:40:13+24:00"), 422, "dateTime '2014-04-15T07:40:13+24:00'"),
        # In range as written, out of datetime's range once in UTC (was an OverflowError: a 500).
        (_with(dateTime="0001-01-01T00:00:00+14:00"), 422, "dateTime '0001-01-01T00:00:00+14:00'"),
        (_with(dateTime="9999-12-31T23:59:59-12:00"), 422, "dateTime '9999-12-31T23:59:59-12:00'"),
        # \d matches these digits; no number on the opt-out list or sent to is written with them.
        (_with(senderAddress="tel:+2٢٥٠٧٠٠٠٠٠٠٠١"), 422, "senderAddress 'tel:+2٢٥٠٧٠٠٠٠٠٠٠١'"),  # noqa: RUF001
        (_with(senderAddress="+225०७००००००००१"), 422, "senderAddress '+225०७००००००००१'"),  # noqa: RUF001
        (_with(destinationAddress="tel:+٢٢٥٠٠٠٠"), 422, "destinationAddress 'tel:+٢٢٥٠٠٠٠'"),
    ],
)
def test_bad_bodies_name_what_is_wrong(raw, status, names):
    with pytest.raises(ReceiptError) as caught:
        parse_reply(raw)
    assert caught.value.status_code == status
    assert names in caught.value.message


@pytest.mark.parametrize(
    ("date_time", "expected"),
    [
        ("2014-04-15T07:40:13Z", datetime(2014, 4, 15, 7, 40, 13, tzinfo=timezone.utc)),
        ("2014-04-15T07:40:13+00:00", datetime(2014, 4, 15, 7, 40, 13, tzinfo=timezone.utc)),
        # The next two fail datetime.fromisoformat on Python 3.10: passing on 3.11 too shows the
        # shared parser reads them.
        ("2014-04-15T07:40:13+0000", datetime(2014, 4, 15, 7, 40, 13, tzinfo=timezone.utc)),
        ("2014-04-15T07:40:13.1Z", datetime(2014, 4, 15, 7, 40, 13, 100000, tzinfo=timezone.utc)),
        ("2014-04-15T07:40:13.123456789Z", datetime(2014, 4, 15, 7, 40, 13, 123456, tzinfo=timezone.utc)),
        ("2014-04-15T09:40:13+02:00", datetime(2014, 4, 15, 7, 40, 13, tzinfo=timezone.utc)),
        ("2014-04-15T09:40:13+0200", datetime(2014, 4, 15, 7, 40, 13, tzinfo=timezone.utc)),
        ("2014-04-15T07:40:13", datetime(2014, 4, 15, 7, 40, 13, tzinfo=timezone.utc)),  # OneAPI: UTC
        ("2014-04-15 07:40:13Z", datetime(2014, 4, 15, 7, 40, 13, tzinfo=timezone.utc)),
        (" 2014-04-15T07:40:13Z ", datetime(2014, 4, 15, 7, 40, 13, tzinfo=timezone.utc)),
        ("2014-04-15", datetime(2014, 4, 15, tzinfo=timezone.utc)),
    ],
)
def test_orange_s_date_time_variants_are_read_as_utc(date_time, expected):
    parsed = parse_reply(_with(dateTime=date_time))
    assert parsed.sent_at == expected
    assert parsed.sent_at.utcoffset() == timedelta(0)  # type: ignore[union-attr]
    assert type(parsed.sent_at) is datetime  # the standard class: extra and identity stay stable


def test_the_replies_asset_is_pinned_and_built_lazily():
    assert INBOUND_MESSAGES.name == "orange_sms_inbound_messages"
    assert INBOUND_MESSAGES.uri == "orange-sms://inbound-messages/"
    uri = store_module.normalised_uri(INBOUND_ASSET_NAME, "orange-sms://inbound-messages")
    assert uri == INBOUND_MESSAGES.uri


def test_unusable_keyword_settings_answer_503_naming_the_value():
    with pytest.raises(StoreUnavailableError, match="' , '"):
        _parse_keywords(" , ", None)
    with pytest.raises(StoreUnavailableError, match="share \\['stop'\\]"):
        _parse_keywords("stop", "Stop")


@pytest.fixture
def app_client(monkeypatch):
    from fastapi.testclient import TestClient

    from airflow_provider_orange_sms.receipts import app as receiver
    from airflow_provider_orange_sms.receipts import reply_store

    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", SECRET)
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "80.12.13.0/24")

    def down(message, **kwargs):
        raise StoreUnavailableError("the metadata database did not store the reply")

    monkeypatch.setattr(reply_store, "store_reply", down)
    with TestClient(receiver.create_app(), client=("80.12.13.2", 1234)) as test_client:
        yield test_client


def test_the_reply_route_shares_the_receipt_route_s_guards(app_client, monkeypatch):
    json_type = {"Content-Type": "application/json"}
    raw = json.dumps(reply_body("+2250700000001", "STOP")).encode()
    unavailable = app_client.post(f"/inbound-messages/{SECRET}", content=raw, headers=json_type)
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "30")
    assert "reply could not be stored" in unavailable.json()["detail"]
    assert (
        app_client.post(f"/inbound-messages/{SECRET[:-1]}", content=raw, headers=json_type).status_code == 404
    )
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "80.12.66.97")
    assert app_client.post(f"/inbound-messages/{SECRET}", content=raw, headers=json_type).status_code == 403
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", "")
    assert app_client.post(f"/inbound-messages/{SECRET}", content=raw, headers=json_type).status_code == 404


def test_the_reply_path_s_secret_is_masked_whatever_was_sent():
    from airflow_provider_orange_sms.receipts.access_log import mask_path

    assert mask_path(f"/orange-sms/inbound-messages/{SECRET}", SECRET) == "/orange-sms/inbound-messages/***"
    assert mask_path("/orange-sms/Inbound-Messages/abc", SECRET) == "/orange-sms/Inbound-Messages/***"
