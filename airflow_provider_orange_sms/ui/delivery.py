"""
The delivery view's numbers: what each send task of a run planned and sent, and what the receipts
say since. Pure: the records come from :mod:`.airflow_data`.

Per send task, per recipient country, and per country and encoding with the segments of each
outcome: planned (the plan's recipients, with the encodings and segments of their messages), sent /
failed / uncertain / opted out (the task's result list; while it sends, its sent ledger, with those
in flight and those released for resending), then for the sent ones delivered / delivered to the
network only / impossible / delivery uncertain / still waiting (the newest receipt of each SMS:
matched on its resource id, or on the recipient when Orange sent no ``callbackData``). Phone numbers
leave this module masked (:func:`mask_number`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.csv_cells import spreadsheet_safe
from airflow_provider_orange_sms.ledger import RELEASED
from airflow_provider_orange_sms.receipts import (
    DELIVERED_TO_NETWORK,
    DELIVERED_TO_TERMINAL,
    DELIVERY_IMPOSSIBLE,
    DELIVERY_NOTIFICATION_NOT_SUPPORTED,
    DELIVERY_UNCERTAIN,
)
from airflow_provider_orange_sms.recipients import country_of
from airflow_provider_orange_sms.ui.progress import IN_FLIGHT, ledger_results

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from airflow_provider_orange_sms.ui.airflow_data import SendTask

#: The states of a DAG run that ends (no send task can start after them).
RUN_FINISHED = ("success", "failed")
#: Send outcomes, as in SendSMSOperator's results.
SEND_STATUSES = ("sent", "failed", "uncertain", "opted_out")
#: What only a sent ledger says of a recipient, while its task has not reported: its request left
#: (or is about to), or an uncertain recipient was released (``release_uncertain``) to be sent again.
LEDGER_STATUSES = (IN_FLIGHT, RELEASED)
#: Delivery outcomes of a sent SMS, from its newest receipt.
DELIVERED = "delivered"
NETWORK = "network"
IMPOSSIBLE = "impossible"
RECEIPT_UNCERTAIN = "receipt_uncertain"
WAITING = "waiting"
DELIVERY_OUTCOMES = (DELIVERED, NETWORK, IMPOSSIBLE, RECEIPT_UNCERTAIN, WAITING)
_OUTCOME_OF = {
    DELIVERED_TO_TERMINAL: DELIVERED,
    DELIVERED_TO_NETWORK: NETWORK,
    DELIVERY_IMPOSSIBLE: IMPOSSIBLE,
    DELIVERY_UNCERTAIN: RECEIPT_UNCERTAIN,
    DELIVERY_NOTIFICATION_NOT_SUPPORTED: RECEIPT_UNCERTAIN,  # final: no receipt will say more
}
#: Digits shown at each end of a masked number (after the ``+``).
_SHOWN_HEAD = 5
_SHOWN_TAIL = 2


def mask_number(address: str) -> str:
    """
    A phone number with its middle digits hidden: ``tel:+2250700000101`` → ``+22507•••••01``.

    :param address: A ``tel:+…`` address (or any text: only its digits are kept).
    """
    digits = "".join(ch for ch in address if ch.isdigit())
    if len(digits) <= _SHOWN_HEAD + _SHOWN_TAIL:
        return "+" + digits[:2] + "•" * max(len(digits) - 2, 0)
    hidden = len(digits) - _SHOWN_HEAD - _SHOWN_TAIL
    return f"+{digits[:_SHOWN_HEAD]}{'•' * hidden}{digits[-_SHOWN_TAIL:]}"


@dataclass(frozen=True)
class LatestReceipt:
    """
    The newest receipt of one SMS.

    :param status: Orange's delivery status.
    :param received_at: When the receiver accepted it (ISO 8601).
    """

    status: str
    received_at: str


def latest_receipts(
    events: Iterable[dict[str, Any]],
) -> tuple[dict[str, LatestReceipt], dict[str, LatestReceipt]]:
    """
    The newest receipt per resource id, and per recipient for receipts without one.

    A final status is not replaced by a later ``MessageWaiting`` (receipts may arrive out of order).

    :param events: Receipt events, oldest first (``{"extra": {...}}``).
    """
    by_id: dict[str, LatestReceipt] = {}
    by_recipient: dict[str, LatestReceipt] = {}
    for event in events:
        extra = event.get("extra") or {}
        status = extra.get("status")
        if not isinstance(status, str):
            continue
        receipt = LatestReceipt(status, str(extra.get("received_at") or event.get("timestamp") or ""))
        resource_id = extra.get("resource_id")
        recipient = extra.get("recipient")
        target, key = (
            (by_id, resource_id)
            if resource_id
            else (by_recipient, recipient if isinstance(recipient, str) else "")
        )
        if not key:
            continue
        previous = target.get(key)
        if previous is not None and previous.status in _OUTCOME_OF and status not in _OUTCOME_OF:
            continue
        target[key] = receipt
    return by_id, by_recipient


def _counts() -> dict[str, int]:
    return dict.fromkeys(("planned", "segments", *SEND_STATUSES, *LEDGER_STATUSES, *DELIVERY_OUTCOMES), 0)


def _group_counts() -> dict[str, int]:
    return dict.fromkeys(("planned", *SEND_STATUSES, *LEDGER_STATUSES, *DELIVERY_OUTCOMES), 0)


def _only_encoding(summary: dict[str, Any]) -> str | None:
    encodings = [e for e, n in (summary.get("encodings") or {}).items() if n]
    return encodings[0] if len(encodings) == 1 else None


def _shape(entry: dict[str, Any], address: str, plan_countries: dict[str, Any]) -> tuple[str, str, int]:
    """
    A result's country, encoding and segments: from the entry (the operator's results carry them), else
    from the plan when the recipient's country was sent in one encoding (a ledger entry, an older
    result), else ``"unknown"`` and 0 segments.
    """
    country = str(entry.get("country") or country_of(address) or "unknown")
    encoding = entry.get("encoding")
    segments = entry.get("segments")
    if isinstance(encoding, str) and isinstance(segments, int):
        return country, encoding, segments
    summary = plan_countries.get(country) or {}
    only = _only_encoding(summary)
    recipients = int(summary.get("recipients") or 0)
    total = int(summary.get("segments") or 0)
    if only is None or not recipients or total % recipients:
        return country, "unknown", 0
    return country, only, total // recipients


def _group(groups: dict[tuple[str, str], dict[str, Any]], country: str, encoding: str) -> dict[str, Any]:
    return groups.setdefault(
        (country, encoding),
        {"country": country, "encoding": encoding, "sms": _group_counts(), "segments": _group_counts()},
    )


def task_summary(
    task: SendTask,
    by_id: dict[str, LatestReceipt],
    by_recipient: dict[str, LatestReceipt],
    sending: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """
    The delivery view of one send task: totals, per-country rows, per country and encoding rows
    (SMS and segments of each outcome) and one row per recipient.

    :param task: The send task's record.
    :param by_id: Newest receipt per resource id (:func:`latest_receipts`).
    :param by_recipient: Newest receipt per recipient, of receipts without a resource id.
    :param sending: While the task has no results: what its sent ledger holds so far
        (:func:`~airflow_provider_orange_sms.ui.progress.ledger_results`).
    """
    plan = task.plan or {}
    plan_countries: dict[str, Any] = plan.get("by_country") or {}
    totals = _counts()
    countries: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for country, summary in sorted(plan_countries.items()):
        row = countries.setdefault(country, {**_counts(), "encodings": {}})
        row["planned"] = int(summary.get("recipients", 0))
        row["segments"] = int(summary.get("segments", 0))
        row["encodings"] = dict(summary.get("encodings") or {})
        by_encoding = summary.get("segments_by_encoding") or {}
        for encoding, n in row["encodings"].items():
            group = _group(groups, country, encoding)
            group["sms"]["planned"] = int(n)
            segments = by_encoding.get(encoding)
            if segments is None and _only_encoding(summary) == encoding:
                segments = row["segments"]
            group["segments"]["planned"] = int(segments or 0)
    entries = task.results if task.results is not None else (sending or [])
    recipients: list[dict[str, Any]] = []
    for entry in entries:
        address = str(entry.get("recipient") or "")
        status = str(entry.get("status") or "")
        country, encoding, segments = _shape(entry, address, plan_countries)
        row = countries.setdefault(country, {**_counts(), "encodings": {}})
        group = _group(groups, country, encoding)
        if status in (*SEND_STATUSES, *LEDGER_STATUSES):
            row[status] += 1
            group["sms"][status] += 1
            group["segments"][status] += segments
        outcome = None
        receipt = None
        if status == "sent":
            resource_id = entry.get("resource_id")
            receipt = by_id.get(resource_id) if resource_id else None
            receipt = receipt or by_recipient.get(address)
            outcome = _OUTCOME_OF.get(receipt.status, WAITING) if receipt else WAITING
            row[outcome] += 1
            group["sms"][outcome] += 1
            group["segments"][outcome] += segments
        recipients.append(
            {
                "recipient": mask_number(address),
                "country": country,
                "encoding": encoding,
                "segments": segments,
                "status": status,
                "resource_id": entry.get("resource_id"),
                "delivery": outcome,
                "receipt_status": receipt.status if receipt else None,
                "received_at": receipt.received_at if receipt else None,
            }
        )
    for row in countries.values():
        for key in totals:
            totals[key] += row[key]
    totals["planned"] = int(plan.get("recipients", totals["planned"]))
    totals["segments"] = int(plan.get("segments", totals["segments"]))
    encodings: dict[str, int] = {}
    for row in countries.values():
        for encoding, n in row["encodings"].items():
            encodings[encoding] = encodings.get(encoding, 0) + int(n)
    segments_by_status = _group_counts()
    for group in groups.values():
        for key, n in group["segments"].items():
            segments_by_status[key] += n
    return {
        "task_id": task.task_id,
        "map_index": task.map_index,
        "state": task.state,
        "reported": task.results is not None,
        "progress": None if task.results is not None else {"handled": len(entries), "from": "sent ledger"},
        "waiting": task.waiting,
        "totals": totals,
        "segments": segments_by_status,
        "encodings": encodings,
        "by_country": countries,
        "by_country_encoding": [groups[key] for key in sorted(groups)],
        "undelivered": [
            r
            for r in recipients
            if r["delivery"] != DELIVERED and r["status"] not in ("opted_out", IN_FLIGHT)
        ],
        "recipients": recipients,
    }


def run_view(
    dag_id: str,
    run_id: str,
    run_state: str | None,
    tasks: list[SendTask],
    events: Iterable[dict[str, Any]],
    *,
    run_after: datetime | None = None,
    clear_number: int | None = None,
) -> dict[str, Any]:
    """
    The delivery view of a run (or of one task instance when ``tasks`` holds one).

    ``live`` tells the page to keep polling: a task still sending, SMS still waiting for a receipt, or
    a run not finished whose send has not started (no send task has pushed its plan yet).

    :param dag_id: The DAG.
    :param run_id: The run.
    :param run_state: The run's state.
    :param tasks: Its send tasks.
    :param events: Receipt events since the run began, oldest first.
    :param run_after: The run's ``run_after`` (which incarnation's sent ledger counts).
    :param clear_number: The run's ``clear_number``.
    """
    by_id, by_recipient = latest_receipts(events)
    summaries = [
        task_summary(
            task,
            by_id,
            by_recipient,
            None
            if task.results is not None or not task.ledger_chunks
            else ledger_results(task.ledger_chunks, run_after, clear_number),
        )
        for task in tasks
    ]
    finished = {"success", "failed", "skipped", "upstream_failed", "removed"}
    run_finished = run_state in RUN_FINISHED
    live = any(
        (task.state not in finished) or summary["totals"][WAITING]
        for task, summary in zip(tasks, summaries, strict=True)
    ) or (not tasks and not run_finished)
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_state": run_state,
        "run_finished": run_finished,
        "live": live,
        "tasks": summaries,
    }


CSV_COLUMNS = (
    "task_id",
    "map_index",
    "recipient",
    "country",
    "encoding",
    "segments",
    "status",
    "resource_id",
    "delivery",
    "receipt_status",
    "received_at",
)


def to_csv(view: dict[str, Any]) -> str:
    """
    One CSV line per recipient of the view (numbers masked as on the page, behind a ``'`` as every
    cell starting like a formula: :func:`~airflow_provider_orange_sms.csv_cells.spreadsheet_safe`).

    :param view: From :func:`run_view`.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for task in view["tasks"]:
        for row in task["recipients"]:
            writer.writerow(
                spreadsheet_safe({**row, "task_id": task["task_id"], "map_index": task["map_index"]})
            )
    return out.getvalue()


def day_of(moment: datetime | None) -> str | None:
    """
    ``YYYY-MM-DD`` of ``moment`` (UTC), or ``None``.

    :param moment: A time.
    """
    return None if moment is None else moment.strftime("%Y-%m-%d")
