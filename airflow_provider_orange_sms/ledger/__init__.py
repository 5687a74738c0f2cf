"""The sent ledger: the durable record of every SMS a send task may have sent, which makes a send
exactly-once across retries: its entries, where its chunks live (Airflow Variables), which
ledger and which entries belong to a task instance and its DAG run, and what all ledgers together
say about a recipient (for settling an uncertain one from a delivery receipt). Also the deadline
record, which does the same for the SMS of a missed deadline (a Deadline Alert's callback has no
task instance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.ledger.deadline_record import (
        DeadlineRecord,
        DeadlineRecordSupersededError,
    )
    from airflow_provider_orange_sms.ledger.ledger_identity import Incarnation, RunMark, ledger_key
    from airflow_provider_orange_sms.ledger.ledger_scan import LedgerScan, UnresolvedSend, scan_ledgers
    from airflow_provider_orange_sms.ledger.sent_ledger import (
        DEFAULT_LEDGER_RETENTION,
        FAILED,
        IN_FLIGHT,
        RELEASED,
        SENT,
        UNCERTAIN,
        LedgerStore,
        LedgerUnavailableError,
        SentLedger,
    )

__all__ = [
    "DEFAULT_LEDGER_RETENTION",
    "FAILED",
    "IN_FLIGHT",
    "RELEASED",
    "SENT",
    "UNCERTAIN",
    "DeadlineRecord",
    "DeadlineRecordSupersededError",
    "Incarnation",
    "LedgerScan",
    "LedgerStore",
    "LedgerUnavailableError",
    "RunMark",
    "SentLedger",
    "UnresolvedSend",
    "ledger_key",
    "scan_ledgers",
]

#: The module defining each name.
_HOMES = {
    "DEFAULT_LEDGER_RETENTION": "sent_ledger",
    "DeadlineRecord": "deadline_record",
    "DeadlineRecordSupersededError": "deadline_record",
    "FAILED": "sent_ledger",
    "IN_FLIGHT": "sent_ledger",
    "Incarnation": "ledger_identity",
    "LedgerScan": "ledger_scan",
    "LedgerStore": "sent_ledger",
    "LedgerUnavailableError": "sent_ledger",
    "RELEASED": "sent_ledger",
    "RunMark": "ledger_identity",
    "SENT": "sent_ledger",
    "SentLedger": "sent_ledger",
    "UNCERTAIN": "sent_ledger",
    "UnresolvedSend": "ledger_scan",
    "ledger_key": "ledger_identity",
    "scan_ledgers": "ledger_scan",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
