"""
The receiver, storing in the Airflow metadata DB, beside a stored removal by the list operators:
a STOP that reaches Airflow after the removal is stored stays in force, whatever the clocks of the
API server and the worker say, and whether or not the number already had a STOP stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_orange_sms.opt_out import (
    OptOutRecord,
    operator_variable_key,
)
from airflow_provider_orange_sms.receipts.reply_payload import SMSReply
from airflow_provider_orange_sms.receipts.reply_store import OPTED_OUT, store_reply
from tests.integration.db.test_reply_store import unique_number
from tests.support.opt_out import decision_in_force, opt_out_records_cleared


@pytest.fixture
def sender(airflow_db):
    number = unique_number()
    with opt_out_records_cleared([number]):
        yield number


def _store_removal(number: str, at: datetime) -> None:
    from airflow.models.variable import Variable

    removal = OptOutRecord(number=number, opted_out=False, at=at.isoformat(), source="operator")
    Variable.set(operator_variable_key(number), removal.to_json())


def test_a_stop_received_after_a_removal_dated_by_a_clock_ahead_stays_in_force(sender):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # The worker's clock runs two minutes ahead of the API server's (within the tolerated skew).
    _store_removal(sender, now + timedelta(minutes=2))
    stop = SMSReply(sender, "+2250000", "STOP", "s-" + sender, now - timedelta(seconds=1))
    assert store_reply(stop, now=now).opt_out == OPTED_OUT
    state = decision_in_force(sender)
    assert state is not None
    assert state.opted_out


def test_a_repeated_stop_delivered_after_a_removal_stays_in_force(sender):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first = SMSReply(sender, "+2250000", "STOP", "s1-" + sender, now - timedelta(minutes=30))
    assert store_reply(first, now=now - timedelta(minutes=30)).opt_out == OPTED_OUT
    _store_removal(sender, now - timedelta(minutes=20))
    assert decision_in_force(sender).opted_out is False  # type: ignore[union-attr]
    # An earlier STOP of the same number that Orange held back, delivered after the removal.
    held_back = SMSReply(sender, "+2250000", "Arrêt", "s0-" + sender, now - timedelta(minutes=40))
    assert store_reply(held_back, now=now).opt_out == OPTED_OUT
    state = decision_in_force(sender)
    assert state is not None
    assert state.opted_out
    assert state.decided_at() == now - timedelta(minutes=30)  # the later dateTime still orders replies
