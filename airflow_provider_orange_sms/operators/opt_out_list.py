"""Operators that manage the opt-out list: import numbers, export the list, remove numbers.

An internal module: import them from :mod:`airflow_provider_orange_sms.operators.orange_sms`. The list's
format is :mod:`airflow_provider_orange_sms.opt_out`; these operators write it through the Task SDK
(the execution API), as any task does. They write only the operators' Variable of each number,
never the receiver's: a task cannot compare and set, so a STOP the receiver stores while one of them
runs stays stored, and the later decision wins. Erasing must delete the receiver's Variable too: it
keeps a reply decided after the erase began, and afterwards reads the replies received meanwhile
(their events) to record again any keyword a deletion raced with.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_orange_sms import opt_out
from airflow_provider_orange_sms.csv_cells import spreadsheet_safe, unquoted_number
from airflow_provider_orange_sms.opt_out import (
    KEY_PREFIX,
    OptOutRecord,
    latest_decision,
    number_of_key,
    operator_variable_key,
    variable_key,
)
from airflow_provider_orange_sms.recipients import normalize_recipient, parse_recipients, short_repr
from airflow_provider_orange_sms.settings import OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, SECTION
from airflow_provider_orange_sms.strict_variables import (
    VariableReadError,
    read_variable,
    variable_keys,
)
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException, conf

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

__all__ = ["ExportOptOutListOperator", "ImportOptOutListOperator", "RemoveFromOptOutListOperator"]

#: Bad values named in an error (all of them are counted).
_NAMED = 20
#: Columns of an exported CSV.
EXPORT_COLUMNS = ("number", "opted_out", "at", "source", "keyword", "message_id")


def _normalized_numbers(
    numbers: Any, csv_path: str | None, csv_text: str | None, column: str, default_country: str | None
) -> list[str]:
    """E.164 numbers (with ``+``) from a list and/or CSV, deduplicated; every bad one named first."""
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


#: The description of the operators' Variables, shown in the UI's Variables list.
OPERATOR_DESCRIPTION = "Orange SMS opt-out list entry (written by the opt-out list operators)"
#: How far back the replies are read after an erase: the API server's clock may lag the task's.
ERASE_REPLY_LOOKBACK = timedelta(minutes=10)


def _decided_at(context: Context, *, on_retry_from_run_start: bool) -> datetime:
    """
    When this task's decision counts from: now, to the whole second (as Orange dates replies: a
    tie goes to the opt-out). With ``on_retry_from_run_start``, a later try counts from the DAG
    run's start instead, so that it never dates its decision after a STOP sent since the first try.
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


def _write(numbers: list[str], *, opted_out: bool, source: str, at: datetime, log: Any) -> None:
    """
    Record the decision (``at``, ``source``) in each number's operators' Variable, unless that
    Variable holds a later operators' decision; a failure says how many were written.
    """
    from airflow.sdk import Variable

    written = kept = 0
    for done, number in enumerate(numbers):
        record = OptOutRecord(number=number, opted_out=opted_out, at=at.isoformat(), source=source)
        key = operator_variable_key(number)
        try:
            if not record.supersedes(_read_record(key)):
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


def _erase(numbers: list[str], *, since: datetime, context: Context, log: Any) -> None:
    """
    Delete each number's records, but a reply decided after ``since``; then record again the
    keyword replies received meanwhile whose record a deletion may have removed.

    Until the end, each number's operators' Variable holds an opt-out dated ``since`` (a later
    START still outranks it): a STOP whose record a deletion removed is not lost while the task
    runs, nor when it dies, before the replies are read again.
    """
    from airflow.sdk import Variable

    kept: list[str] = []
    for number in numbers:
        marker = OptOutRecord(number=number, opted_out=True, at=since.isoformat(), source="erase")
        Variable.set(operator_variable_key(number), marker.to_json(), description=OPERATOR_DESCRIPTION)
        reply = _read_record(variable_key(number))
        if reply is not None and reply.decided_at() >= since:
            kept.append(number)
            continue
        Variable.delete(variable_key(number))
    raced = _keyword_replies_since(set(numbers), since, context)
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


def _keyword_replies_since(numbers: set[str], since: datetime, context: Context) -> dict[str, OptOutRecord]:
    """The latest keyword reply of each of ``numbers`` decided from ``since`` on, as a record."""
    from airflow_provider_orange_sms.receipts import INBOUND_MESSAGES, AssetEventReader, to_datetime

    out_words, in_words = opt_out.keyword_lists(
        conf.get(SECTION, OPT_OUT_KEYWORDS, fallback=None), conf.get(SECTION, OPT_IN_KEYWORDS, fallback=None)
    )
    found: dict[str, OptOutRecord] = {}
    for event in AssetEventReader(INBOUND_MESSAGES).new_events(context, since - ERASE_REPLY_LOOKBACK):
        extra = event.extra or {}
        number = extra.get("sender")
        action = opt_out.keyword_action(str(extra.get("message", "")), out_words, in_words)
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
        if record.decided_at() < since:
            continue
        found[number] = latest_decision(found.get(number), record) or record
    return found


class ImportOptOutListOperator(BaseOperator):
    """
    Put numbers on the opt-out list (``source`` ``import``); return them (E.164, with ``+``).

    Every number is validated and normalised first: one bad value fails the task (without retries)
    naming each bad value and where it is, before anything is written. Each number's decision is
    recorded as of when the task started: a START the number sends after that stays in force. One
    Variable read and one write per number.

    :param numbers: Phone numbers: a list, a list-looking string or a comma-separated one. Templated.
    :param csv_path: A CSV file (UTF-8, with a header) whose ``number_column`` holds the numbers.
        Templated.
    :param csv_text: The same CSV as text (e.g. an upstream task's XCom). Templated.
    :param number_column: The CSV column with the numbers.
    :param default_country: Country (ISO 3166, e.g. ``CIV``) of numbers written without a country
        code; ``None`` refuses them. Templated.
    """

    template_fields: Sequence[str] = ("numbers", "csv_path", "csv_text", "default_country")

    def __init__(
        self,
        *,
        numbers: str | Sequence[str] | None = None,
        csv_path: str | None = None,
        csv_text: str | None = None,
        number_column: str = "number",
        default_country: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if numbers is None and csv_path is None and csv_text is None:
            raise ValueError("ImportOptOutListOperator needs numbers, csv_path or csv_text")
        self.numbers = numbers
        self.csv_path = csv_path
        self.csv_text = csv_text
        self.number_column = number_column
        self.default_country = default_country

    def execute(self, context: Context) -> list[str]:
        """
        Validate every number, then write each one's record.

        :param context: The task context.
        """
        started = _decided_at(context, on_retry_from_run_start=False)  # a retry errs towards opting out
        try:
            numbers = _normalized_numbers(
                self.numbers, self.csv_path, self.csv_text, self.number_column, self.default_country
            )
        except (ValueError, OSError) as exc:
            raise AirflowFailException(f"{exc} (nothing was written)") from exc
        _write(numbers, opted_out=True, source="import", at=started, log=self.log)
        return numbers


class RemoveFromOptOutListOperator(BaseOperator):
    """
    Take numbers off the opt-out list (``source`` ``operator``); return them (E.164, with ``+``).

    Numbers are validated first, as by :class:`ImportOptOutListOperator`. By default each gets a
    record ``opted_out: false`` (when the task started), so that a STOP older than this decision,
    still being processed, does not put it back, while a STOP the number sends once the task has
    started stays in force. ``erase=True`` deletes the numbers' records instead (e.g. to erase a
    person's data), but for a keyword reply decided after the task started, which stays; it reads
    the replies received while it ran (the task has
    :data:`~airflow_provider_orange_sms.receipts.INBOUND_MESSAGES` as an inlet) to keep any STOP
    that raced with a deletion.

    :param numbers: Phone numbers: a list, a list-looking string or a comma-separated one. Templated.
    :param default_country: Country of numbers written without a country code. Templated.
    :param erase: Delete the records instead of recording the removal.
    """

    template_fields: Sequence[str] = ("numbers", "default_country")

    def __init__(
        self,
        *,
        numbers: str | Sequence[str],
        default_country: str | None = None,
        erase: bool = False,
        **kwargs: Any,
    ) -> None:
        if erase:
            from airflow_provider_orange_sms.receipts import INBOUND_MESSAGES

            kwargs["inlets"] = [*(kwargs.get("inlets") or []), INBOUND_MESSAGES]
        super().__init__(**kwargs)
        self.numbers = numbers
        self.default_country = default_country
        self.erase = erase

    def execute(self, context: Context) -> list[str]:
        """
        Validate every number, then record (or erase) each one's removal.

        :param context: The task context.
        """
        started = _decided_at(context, on_retry_from_run_start=True)
        try:
            numbers = _normalized_numbers(self.numbers, None, None, "number", self.default_country)
        except ValueError as exc:
            raise AirflowFailException(f"{exc} (nothing was written)") from exc
        if self.erase:
            _erase(numbers, since=started, context=context, log=self.log)
        else:
            _write(numbers, opted_out=False, source="operator", at=started, log=self.log)
        return numbers


class ExportOptOutListOperator(BaseOperator):
    """
    Return the opt-out list (to XCom), and write it as CSV when ``csv_path`` is given.

    One entry per number on the list: ``{"number", "opted_out", "at", "source", "keyword",
    "message_id"}``, sorted by number; numbers that opted back in (``opted_out: false``) only with
    ``include_opted_in``. Lists the Variables by prefix, which a task can do from Airflow 3.3 on
    (``Variable.keys``): on Airflow 3.0 to 3.2 the task fails saying so (export the
    ``orange_sms_opt_out_*`` Variables with ``airflow variables export`` instead). One request per
    1,000 keys, then one read per record (a number has up to two: its replies' and the operators';
    the later decision is exported); a read that fails fails the task.

    :param csv_path: Also write the list to this CSV file (columns as above). Templated.
    :param include_opted_in: Also list numbers whose latest decision was to opt back in.
    """

    template_fields: Sequence[str] = ("csv_path",)

    def __init__(self, *, csv_path: str | None = None, include_opted_in: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.csv_path = csv_path
        self.include_opted_in = include_opted_in

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """
        Read every record of the list.

        :param context: The task context.
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
            if record is not None and (record.opted_out or self.include_opted_in):
                entries.append({column: getattr(record, column) for column in EXPORT_COLUMNS})
        if self.csv_path:
            with open(self.csv_path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
                writer.writeheader()
                writer.writerows(spreadsheet_safe(entry) for entry in entries)
            self.log.info("Opt-out list: %d number(s) written to %s", len(entries), self.csv_path)
        return entries
