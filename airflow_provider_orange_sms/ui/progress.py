"""
What a send task that has not reported yet sent so far, from its sent ledger (pure: the chunks come
from :mod:`.airflow_data`).

SendSMSOperator pushes its results when it ends; until then (a long batch, a task deferred until its
send window opens, a try that died) its sent ledger is the record: each recipient "in flight" right
before its request leaves, then ``sent`` / ``failed`` / ``uncertain``. The chunks are read as the
operator reads them (:meth:`~airflow_provider_orange_sms.ledger.sent_ledger.SentLedger.load`):
the latest entry per recipient wins, and entries of another incarnation of the run (deleted and
re-created with the same ``run_id``) do not count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_orange_sms.ledger import Incarnation, RunMark

#: A ledger status shown only while a task sends: the request left (or is about to), no answer yet.
IN_FLIGHT = "in_flight"


def ledger_results(
    chunks: list[Any], run_after: datetime | None, clear_number: int | None
) -> list[dict[str, Any]]:
    """
    One ``{"recipient", "resource_id", "status"}`` per recipient the ledger names, in the order
    first recorded; empty when the ledger belongs to another incarnation of the run.

    :param chunks: The ledger's chunks, in order.
    :param run_after: The run's ``run_after``.
    :param clear_number: The run's ``clear_number``.
    """
    entries: dict[str, tuple[Any, str]] = {}
    incarnation = Incarnation()
    for chunk in chunks:
        if not isinstance(chunk, dict):
            break
        mark = RunMark.from_json(chunk.get("run"))
        if mark is not None and not incarnation.continued_by(mark):
            entries, incarnation = {}, Incarnation()
        for item in chunk.get("entries") or []:
            if isinstance(item, (list, tuple)) and len(item) == 3:
                recipient, resource_id, status = item
                entries[str(recipient)] = (resource_id if isinstance(resource_id, str) else None, str(status))
        if mark is not None:
            incarnation.add(mark)
    if not _same_run(incarnation, run_after, clear_number):
        return []
    return [
        {"recipient": recipient, "resource_id": resource_id, "status": status}
        for recipient, (resource_id, status) in entries.items()
    ]


def _same_run(incarnation: Incarnation, run_after: datetime | None, clear_number: int | None) -> bool:
    """Whether the ledger's last incarnation can be this run (unknown marks do not rule it out)."""
    if incarnation.run_after is not None and run_after is not None:
        try:
            marked = datetime.fromisoformat(incarnation.run_after)
        except ValueError:
            return True
        if marked.tzinfo is not None and run_after.tzinfo is not None and marked != run_after:
            return False
    return not (
        incarnation.clear_number is not None
        and clear_number is not None
        and incarnation.clear_number > clear_number
    )
