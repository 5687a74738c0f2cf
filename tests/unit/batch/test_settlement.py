"""The rule that settles an uncertain recipient from a delivery receipt, on ledgers written by
SentLedger into an in-memory store (what every ledger says is read as in Airflow Variables)."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_orange_sms.batch.settlement import (
    CLOCK_SKEW_ALLOWANCE,
    SeenReceipt,
    settle,
    settle_from_receipts,
)
from airflow_provider_orange_sms.ledger import FAILED, IN_FLIGHT, RELEASED, SENT, UNCERTAIN, scan_ledgers
from airflow_provider_orange_sms.ledger.sent_ledger import InMemoryLedgerStore, SentLedger, ledger_key

AWA = "tel:+2250700000001"
KOFI = "tel:+2250700000002"
SKEW = CLOCK_SKEW_ALLOWANCE.total_seconds()


def ledger(store, task_id="send", run_id="run_1"):
    opened = SentLedger(ledger_key("dag", task_id, run_id, -1), store)
    opened.load()
    return opened


def in_flight_at(opened, recipient):
    """The "in flight" time a later try reads back for ``recipient``."""
    return SentLedger(opened.key, opened.store).load()[recipient].in_flight_at


def killed_in_flight(store, recipient=AWA, **kwargs):
    """A ledger whose try was killed with ``recipient`` in flight; returns it and its time."""
    opened = ledger(store, **kwargs)
    opened.append([(recipient, None, IN_FLIGHT)])
    return opened, in_flight_at(opened, recipient)


def receipt(resource_id, at, recipient=AWA):
    return SeenReceipt(recipient, resource_id, at)


def test_the_in_flight_time_is_kept_and_carried_to_an_uncertain_outcome():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    assert at is not None
    opened.append([(AWA, None, UNCERTAIN), (KOFI, None, IN_FLIGHT)])
    entries = SentLedger(opened.key, store).load()
    assert entries[AWA].status == UNCERTAIN
    assert entries[AWA].in_flight_at == at
    opened.append([(KOFI, "id-k", SENT)])
    assert SentLedger(opened.key, store).load()[KOFI].in_flight_at is None


def test_a_receipt_that_can_only_be_this_sends_settles_it():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    settled, reasons = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), [receipt("id-1", at + 0.2)])
    assert settled == {AWA: "id-1"}
    assert reasons == {}


def test_no_receipt_settles_nothing():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    settled, reasons = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), [receipt("id-k", at, KOFI)])
    assert settled == {}
    assert "no delivery receipt" in reasons[AWA]


def test_two_receipts_of_different_sms_are_ambiguous():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    receipts = [receipt("id-1", at + 0.2), receipt("id-2", at + 0.3)]
    settled, reasons = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), receipts)
    assert settled == {}
    assert "ambiguous" in reasons[AWA]


def test_another_unresolved_send_to_the_same_number_makes_it_ambiguous():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    killed_in_flight(store, task_id="alert", run_id="other")  # another DAG's send to Awa, also killed
    settled, reasons = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), [receipt("id-1", at + 0.2)])
    assert settled == {}
    assert "1 other send" in reasons[AWA]


def test_another_unresolved_send_recorded_well_after_the_receipt_cannot_own_it():
    store = InMemoryLedgerStore()
    opened, _ = killed_in_flight(store)
    _, other_at = killed_in_flight(store, task_id="alert", run_id="other")
    early = other_at - SKEW - 1  # the receipt arrived before the other send could have left
    settled, _ = settle({AWA: early - 1}, opened.key, scan_ledgers(store, [AWA]), [receipt("id-1", early)])
    assert settled == {AWA: "id-1"}


def test_a_resource_id_another_ledger_records_is_that_sends_receipt():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    earlier = ledger(store, task_id="earlier", run_id="other")
    earlier.append([(AWA, None, IN_FLIGHT)])
    earlier.append([(AWA, "id-earlier", SENT)])  # a late receipt of that SMS must not settle this one
    scan = scan_ledgers(store, [AWA])
    assert "id-earlier" in scan.known_ids
    settled, reasons = settle({AWA: at}, opened.key, scan, [receipt("id-earlier", at + 5)])
    assert settled == {}
    assert "no delivery receipt" in reasons[AWA]


def test_a_send_whose_outcome_is_failed_is_no_rival():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    refused = ledger(store, task_id="refused", run_id="other")
    refused.append([(AWA, None, IN_FLIGHT)])
    refused.append([(AWA, None, FAILED)])
    settled, _ = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), [receipt("id-1", at + 0.2)])
    assert settled == {AWA: "id-1"}


@pytest.mark.parametrize(
    ("offset", "settles"),
    [(-SKEW + 0.5, True), (-SKEW - 0.5, False)],
    ids=["within-the-clock-skew-allowance", "before-the-send"],
)
def test_a_receipt_older_than_the_send_does_not_settle_it(offset, settles):
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    settled, _ = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), [receipt("id-1", at + offset)])
    assert (settled == {AWA: "id-1"}) is settles


def test_an_sms_whose_first_receipt_came_before_the_send_is_an_earlier_one():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    receipts = [receipt("id-old", at - SKEW - 60), receipt("id-old", at + 1)]  # waiting, then delivered
    settled, _ = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), receipts)
    assert settled == {}


def test_a_receipt_without_callback_data_makes_it_ambiguous():
    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    receipts = [receipt("id-1", at + 0.2), receipt("", at + 0.3)]
    settled, reasons = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), receipts)
    assert settled == {}
    assert "without callbackData" in reasons[AWA]


def test_a_send_released_earlier_in_the_same_ledger_is_a_rival():
    store = InMemoryLedgerStore()
    opened, _ = killed_in_flight(store)
    opened.append([(AWA, None, RELEASED)])
    opened.append([(AWA, None, IN_FLIGHT)])  # the resend, killed too
    at = in_flight_at(opened, AWA)
    settled, reasons = settle({AWA: at}, opened.key, scan_ledgers(store, [AWA]), [receipt("id-1", at + 0.2)])
    assert settled == {}
    assert "other send" in reasons[AWA]


def test_an_unknown_send_time_never_settles():
    store = InMemoryLedgerStore()
    opened, _ = killed_in_flight(store)
    settled, reasons = settle({AWA: None}, opened.key, scan_ledgers(store, [AWA]), [receipt("id-1", 1e12)])
    assert settled == {}
    assert "unknown" in reasons[AWA]


def test_settling_records_the_recipient_sent_with_the_receipts_resource_id(monkeypatch):
    from airflow_provider_orange_sms.batch import settlement

    store = InMemoryLedgerStore()
    opened, at = killed_in_flight(store)
    monkeypatch.setattr(settlement, "read_receipts", lambda context, since: [receipt("id-1", at + 0.2)])
    retry = ledger(store)
    assert settle_from_receipts({}, retry, {AWA: at}, logging.getLogger("test")) == {AWA: "id-1"}
    entry = SentLedger(opened.key, store).load()[AWA]
    assert (entry.status, entry.resource_id) == (SENT, "id-1")
    # The id is now a known send's: no other ledger can settle with it.
    assert "id-1" in scan_ledgers(store, [AWA]).known_ids


def test_nothing_is_settled_where_the_ledgers_cannot_be_listed(caplog):
    class Unlistable(InMemoryLedgerStore):
        def keys(self, prefix):
            return None

    store = Unlistable()
    _, at = killed_in_flight(store)
    with caplog.at_level(logging.INFO):
        assert settle_from_receipts({}, ledger(store), {AWA: at}, logging.getLogger("test")) == {}
    assert "Airflow 3.3+" in caplog.text
