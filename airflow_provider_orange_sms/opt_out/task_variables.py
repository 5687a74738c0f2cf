"""
The opt-out list as the list operators read and write it: through the Task SDK's Variables (the
execution API), as any task does. :mod:`.variable_rows` is the receiver's side, on the API server.

The operators (:mod:`airflow_provider_orange_sms.operators.orange_sms`) write only the operators'
Variable of each number, never the receiver's: a task cannot compare and set, so a STOP the receiver
stores while one of them runs stays stored, and the later decision wins. Erasing must delete the
receiver's Variable too: it keeps a reply decided after the erase began, and afterwards reads the
replies received meanwhile (their events) to record again any keyword a deletion raced with.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.csv_cells import spreadsheet_safe, unquoted_number
from airflow_provider_orange_sms.opt_out.records import (
    KEY_PREFIX,
    OptOutRecord,
    keyword_action,
    keyword_lists,
    latest_decision,
    number_of_key,
    operator_variable_key,
    variable_key,
)
from airflow_provider_orange_sms.recipients import normalize_recipient, parse_recipients, short_repr
from airflow_provider_orange_sms.settings import OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, SECTION
from airflow_provider_orange_sms.strict_variables import VariableReadError, read_variable, variable_keys
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException, conf

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Bad values named in an error (all of them are counted).
_NAMED = 20
#: Columns of an exported CSV.
EXPORT_COLUMNS = ("number", "opted_out", "at", "source", "keyword", "message_id")
#: The description of the operators' Variables, shown in the UI's Variables list.
OPERATOR_DESCRIPTION = "Orange SMS opt-out list entry (written by the opt-out list operators)"
#: How far back the replies are read after an erase: the API server's clock may lag the task's.
ERASE_REPLY_LOOKBACK = timedelta(minutes=10)


def parse_numbers(
    numbers: Any, csv_path: str | None, csv_text: str | None, column: str, default_country: str | None
) -> list[str]:
    """
    E.164 numbers (with ``+``) from a list and/or CSV, deduplicated; every bad one named first.

    :param numbers: A list, a list-looking string or a comma-separated one; ``None`` for none.
    :param csv_path: A CSV file (UTF-8, with a header); ``None`` for none.
    :param csv_text: The same CSV as text; ``None`` for none.
    :param column: The CSV column with the numbers.
    :param default_country: Country of numbers written without a country code; ``None`` refuses them.
    :raises ValueError: Naming every bad number and where it is, or a CSV without ``column``.
    """
    values: list[tuple[str, object]] = []
    if numbers is not None:
        values += [(f"numbers[{i}]", value) for i, value in enumerate(parse_recipients(numbers))]
    if csv_path is not None or csv_text is not None:
        text = Path(csv_path).read_text(encoding="utf-8-sig") if csv_path else str(csv_text)
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise ValueError(
                f"CSV without a {column!r} column (number_column); its columns: {reader.fieldnames!r}"
            )
        # An export with include_opted_in lists numbers that opted back in: they are not imported.
        opted_in = "opted_out" in reader.fieldnames
        values += [
            (f"CSV line {reader.line_num}", unquoted_number(row[column]))
            for row in reader
            if row.get(column)
            and not (opted_in and str(row.get("opted_out", "")).strip().lower() in ("false", "0", "no"))
        ]
    bad: list[str] = []
    found: dict[str, None] = {}
    for where, value in values:
        try:
            found[normalize_recipient(value, default_country).removeprefix("tel:")] = None
        except ValueError as exc:
            bad.append(f"{where} {short_repr(value)}: {exc}")
    if bad:
        more = f" and {len(bad) - _NAMED} more" if len(bad) > _NAMED else ""
        raise ValueError(f"{len(bad)} invalid number(s): " + "; ".join(bad[:_NAMED]) + more)
    return list(found)


def decided_at(context: Context, *, on_retry_from_run_start: bool) -> datetime:
    """
    When this task's decision counts from: now, to the whole second (as Orange dates replies: a
    tie goes to the opt-out). With ``on_retry_from_run_start``, a later try counts from the DAG
    run's start instead, so that it never dates its decision after a STOP sent since the first try.

    :param context: The task context.
    :param on_retry_from_run_start: Whether a retry counts from the run's start.
    """
    from airflow_provider_orange_sms.receipts import earliest_run_moment

    now = datetime.now(timezone.utc)
    ti = context.get("ti")
    if on_retry_from_run_start and getattr(ti, "try_number", 1) > 1:
        now = min(now, earliest_run_moment(context, ("start_date",)) or now)
    return now.replace(microsecond=0)


def _read_record(key: str) -> OptOutRecord | None:
    """The record under ``key``; ``None`` when absent or not a record (a task error when unreadable)."""
    try:
        raw = read_variable(key)
    except VariableReadError as exc:
        raise AirflowException(f"Could not read the opt-out list: {exc}") from exc
    try:
        return None if raw is None else OptOutRecord.from_json(raw)
    except ValueError:
        return None


def write_decisions(numbers: list[str], *, opted_out: bool, source: str, at: datetime, log: Any) -> None:
    """
    Record the decision (``at``, ``source``) in each number's operators' Variable, unless that
    Variable holds a later operators' decision; a failure says how many were written.

    :param numbers: E.164 numbers (:func:`parse_numbers`).
    :param opted_out: The decision.
    :param source: Who decided (``import``, ``operator``).
    :param at: When the decision counts from (:func:`decided_at`).
    :param log: The task's logger.
    """
    from airflow.sdk import Variable

    written = kept = 0
    for done, number in enumerate(numbers):
        record = OptOutRecord(number=number, opted_out=opted_out, at=at.isoformat(), source=source)
        key = operator_variable_key(number)
        try:
            stored = _read_record(key)
            # A STOP an erase kept there (it raced with a deletion) counts from when it reached Airflow.
            if not record.supersedes(stored) or (
                stored is not None and stored.opted_out and stored.counts_from() > at
            ):
                kept += 1
                continue
            Variable.set(key, record.to_json(), description=OPERATOR_DESCRIPTION)
        except Exception as exc:
            raise AirflowException(
                f"Could not write the opt-out record of {number} ({type(exc).__name__}: {exc}); "
                f"{done} of {len(numbers)} written before it (a retry writes them all again)"
            ) from exc
        written += 1
    log.info(
        "Opt-out list: %d number(s) written (opted_out=%s, source %s)%s",
        written,
        opted_out,
        source,
        f", {kept} kept a later decision" if kept else "",
    )


def erase(numbers: list[str], *, since: datetime, context: Context, log: Any) -> None:
    """
    Delete each number's records, but a reply decided after ``since``; then record again the
    keyword replies received meanwhile whose record a deletion may have removed.

    Until the end, each number's operators' Variable holds an opt-out dated ``since`` (a later
    START still outranks it): a STOP whose record a deletion removed is not lost while the task
    runs, nor when it dies, before the replies are read again.

    :param numbers: E.164 numbers (:func:`parse_numbers`).
    :param since: When the erase counts from (:func:`decided_at`).
    :param context: The task context (its inlet events are the replies read again).
    :param log: The task's logger.
    """
    from airflow.sdk import Variable

    from airflow_provider_orange_sms.receipts import INBOUND_MESSAGES, AssetEventReader

    # The replies stored before any deletion, so that those stored since are told apart by the
    # events' ids, whatever the API server's clock says against this task's.
    from_ = since - ERASE_REPLY_LOOKBACK
    stored_before = {event.id for event in AssetEventReader(INBOUND_MESSAGES).new_events(context, from_)}
    kept: list[str] = []
    for number in numbers:
        marker = OptOutRecord(number=number, opted_out=True, at=since.isoformat(), source="erase")
        Variable.set(operator_variable_key(number), marker.to_json(), description=OPERATOR_DESCRIPTION)
        reply = _read_record(variable_key(number))
        if reply is not None and reply.counts_from() >= since:
            kept.append(number)
            continue
        Variable.delete(variable_key(number))
    # Read afresh, not on from the first read: a reply committed after it may carry an earlier
    # timestamp than the newest event that read saw.
    replies = AssetEventReader(INBOUND_MESSAGES).new_events(context, from_)
    raced = _keyword_replies_since(set(numbers), since, replies, stored_before)
    for number in numbers:
        record = raced.get(number)
        if record is None:
            Variable.delete(operator_variable_key(number))
            continue
        # Its reply was stored while this task ran: keep the decision (in the operators' Variable,
        # so the receiver's compare-and-set still rules its own).
        Variable.set(operator_variable_key(number), record.to_json(), description=OPERATOR_DESCRIPTION)
        log.info(
            "Opt-out list: %s replied %r while it was erased; that decision stays", number, record.keyword
        )
    log.info(
        "Opt-out list: %d number(s) erased%s",
        len(numbers) - len(kept),
        f"; kept the replies of {', '.join(kept)}, decided after the erase began" if kept else "",
    )


def _keyword_replies_since(
    numbers: set[str], since: datetime, replies: list[Any], stored_before: set[Any]
) -> dict[str, OptOutRecord]:
    """
    The latest keyword reply of each of ``numbers`` among ``replies`` decided from ``since`` on, as a
    record; and any STOP whose event is not in ``stored_before`` (the ids the erase read before its
    first deletion), though the API server's clock, which may lag the task's, dated it before ``since``.
    """
    from airflow_provider_orange_sms.receipts import to_datetime

    out_words, in_words = keyword_lists(
        conf.get(SECTION, OPT_OUT_KEYWORDS, fallback=None), conf.get(SECTION, OPT_IN_KEYWORDS, fallback=None)
    )
    found: dict[str, OptOutRecord] = {}
    for event in replies:
        extra = event.extra or {}
        number = extra.get("sender")
        action = keyword_action(str(extra.get("message", "")), out_words, in_words)
        if number not in numbers or action is None:
            continue
        record = OptOutRecord.from_reply(
            action,
            number,
            str(extra["message"]),
            message_id=extra.get("message_id"),
            sent_at=to_datetime(extra["sent_at"]) if extra.get("sent_at") else None,
            received_at=to_datetime(extra.get("received_at") or event.timestamp),
        )
        if record.counts_from() < since and not (record.opted_out and event.id not in stored_before):
            continue
        if record.supersedes(found.get(number)):  # between replies, their dateTime orders them
            found[number] = record
    return found


def export_entries(include_opted_in: bool) -> list[dict[str, Any]]:
    """
    Every number's latest decision, sorted by number: ``{column: value}`` for :data:`EXPORT_COLUMNS`;
    numbers that opted back in only with ``include_opted_in``. Fails the task on Airflow before 3.3
    (no ``Variable.keys``), on a record it cannot read, and on a Variable that is not a record.

    :param include_opted_in: Also list numbers whose latest decision was to opt back in.
    """
    keys = variable_keys(KEY_PREFIX)
    if keys is None:
        raise AirflowFailException(
            "Exporting the opt-out list needs Airflow 3.3 or later (Variable.keys, to list Variables "
            f"from a task); on this Airflow use `airflow variables export` and keep the "
            f"{KEY_PREFIX}* keys"
        )
    by_number: dict[str, list[str]] = {}
    for key in keys:
        number = number_of_key(key)
        if number is not None:
            by_number.setdefault(number, []).append(key)
    entries: list[dict[str, Any]] = []
    for number in sorted(by_number):
        records = []
        for key in by_number[number]:
            try:
                raw = read_variable(key)
            except VariableReadError as exc:
                raise AirflowException(f"Could not export the opt-out list: {exc}") from exc
            if raw is None:  # removed since it was listed (or not readable: said, not guessed)
                if key in (variable_keys(key) or []):
                    raise AirflowFailException(
                        f"Variable {key} exists but the API server could not read it (is it encrypted "
                        "with another Fernet key?)"
                    )
                continue
            try:
                records.append(OptOutRecord.from_json(raw))
            except ValueError as exc:
                raise AirflowFailException(f"Variable {key} is not an opt-out record: {exc}") from None
        record = latest_decision(*records)
        if record is not None and (record.opted_out or include_opted_in):
            entries.append({column: getattr(record, column) for column in EXPORT_COLUMNS})
    return entries


def write_csv(path: str, entries: list[dict[str, Any]]) -> None:
    """
    Write :func:`export_entries`'s list as CSV (``EXPORT_COLUMNS``), every cell safe to open in a
    spreadsheet.

    :param path: The file.
    :param entries: The list.
    """
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(spreadsheet_safe(entry) for entry in entries)
