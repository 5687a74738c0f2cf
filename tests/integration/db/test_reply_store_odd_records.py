"""
The receiver, storing in the Airflow metadata DB, beside stored records with odd ``at`` values:
unreadable, or dated in the future.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_orange_sms.opt_out import (
    OptOutRecord,
    operator_variable_key,
    variable_key,
)
from tests.integration.db.test_reply_store import _now_z, _post, unique_number
from tests.support.opt_out import decision_in_force, opt_out_records_cleared
from tests.support.receipts_server import SECRET, reply_body


@pytest.fixture
def lenient_client(airflow_db, monkeypatch):
    """The receiver app; a server exception is answered 500 (as uvicorn does) instead of raised."""
    from fastapi.testclient import TestClient

    from airflow_provider_orange_sms.receipts import app as receiver

    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", SECRET)
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "")
    with TestClient(receiver.create_app(), client=("80.12.13.2", 1234), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def sender():
    """A number no other test uses; its records are deleted afterwards (an odd one fails any export)."""
    number = unique_number()
    with opt_out_records_cleared([number]):
        yield number


@pytest.mark.parametrize("key", [variable_key, operator_variable_key])
@pytest.mark.parametrize("at", [None, 1767225600, "yesterday", ""])
def test_a_stored_record_with_an_unreadable_at_never_makes_a_stop_a_500(lenient_client, sender, key, at):
    from airflow.models.variable import Variable

    # from_json accepts it (``at`` is str()-ed), decided_at() cannot read it.
    Variable.set(
        key(sender), json.dumps({"number": sender, "opted_out": False, "at": at, "source": "operator"})
    )
    answer = _post(lenient_client, reply_body(sender, "STOP", date_time=_now_z()))
    assert answer.status_code == 200, answer.text  # 500: the STOP is rolled back, Orange retries forever


def test_a_future_start_stored_by_an_earlier_receiver_does_not_block_a_stop(lenient_client, sender):
    """Earlier versions stored a reply's dateTime unbounded: such a record does not outrank a STOP."""
    from airflow.models.variable import Variable

    old = OptOutRecord(
        number=sender, opted_out=True, at="2099-01-01T00:00:00+00:00", source="inbound", keyword="start"
    )
    Variable.set(variable_key(sender), json.dumps({**json.loads(old.to_json()), "opted_out": False}))
    answer = _post(lenient_client, reply_body(sender, "STOP", date_time=_now_z()))
    assert answer.status_code == 200
    assert answer.json().get("opt_out") == "opted_out", answer.json()  # "superseded": STOP dropped
    assert decision_in_force(sender).opted_out  # type: ignore[union-attr]


@pytest.mark.parametrize("key", [variable_key, operator_variable_key])
@pytest.mark.parametrize(
    "received_at",
    [
        1767225600,
        "yesterday",
        "9999-12-31T23:59:59-05:00",
        "2026-01-01T00:00:00",
        "2099-01-01T00:00:00+00:00",
    ],
    ids=["number", "words", "out of range in UTC", "naive", "far ahead"],
)
def test_a_stored_record_with_an_odd_received_at_never_keeps_a_stop_out(
    lenient_client, sender, key, received_at
):
    """Readable or not, a stored ``received_at`` neither makes a STOP a 500 nor drops it."""
    from airflow.models.variable import Variable

    removal = {"number": sender, "opted_out": False, "at": _now_z(), "source": "operator"}
    Variable.set(key(sender), json.dumps({**removal, "received_at": received_at}))
    answer = _post(lenient_client, reply_body(sender, "STOP", date_time=_now_z()))
    assert answer.status_code == 200, answer.text
    assert answer.json().get("opt_out") == "opted_out", answer.json()
