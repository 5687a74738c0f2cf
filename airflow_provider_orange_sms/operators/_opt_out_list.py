"""Operators that manage the opt-out list: import numbers, export the list, remove numbers.

A private module: import them from :mod:`airflow_provider_orange_sms.operators.orange_sms`. The list's
format is :mod:`airflow_provider_orange_sms.opt_out` (one Variable per number); these operators
write it through the Task SDK (the execution API), as any task does.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_orange_sms._compat import AirflowException, AirflowFailException
from airflow_provider_orange_sms._csv_cells import spreadsheet_safe, unquoted_number
from airflow_provider_orange_sms.addresses import normalize_recipient, short_repr
from airflow_provider_orange_sms.operators._strict_variables import (
    VariableReadError,
    read_variable,
    variable_keys,
)
from airflow_provider_orange_sms.opt_out import KEY_PREFIX, OptOutRecord, variable_key
from airflow_provider_orange_sms.recipient_lists import parse_recipients

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
        values += [
            (f"CSV line {reader.line_num}", unquoted_number(row[column])) for row in reader if row.get(column)
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


def _write(numbers: list[str], *, opted_out: bool, source: str, log: Any) -> None:
    """Write one record per number (now, ``source``); a failure says how many were written."""
    from airflow.sdk import Variable

    at = datetime.now(timezone.utc).isoformat()
    for done, number in enumerate(numbers):
        record = OptOutRecord(number=number, opted_out=opted_out, at=at, source=source)
        try:
            Variable.set(variable_key(number), record.to_json(), description="Orange SMS opt-out list")
        except Exception as exc:
            raise AirflowException(
                f"Could not write the opt-out record of {number} ({type(exc).__name__}: {exc}); "
                f"{done} of {len(numbers)} written before it (a retry writes them all again)"
            ) from exc
    log.info("Opt-out list: %d number(s) written (opted_out=%s, source %s)", len(numbers), opted_out, source)


class ImportOptOutListOperator(BaseOperator):
    """
    Put numbers on the opt-out list (``source`` ``import``); return them (E.164, with ``+``).

    Every number is validated and normalised first: one bad value fails the task (without retries)
    naming each bad value and where it is, before anything is written. A number already on the
    list gets a new record (now). One Variable write per number.

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
        try:
            numbers = _normalized_numbers(
                self.numbers, self.csv_path, self.csv_text, self.number_column, self.default_country
            )
        except (ValueError, OSError) as exc:
            raise AirflowFailException(f"{exc} (nothing was written)") from exc
        _write(numbers, opted_out=True, source="import", log=self.log)
        return numbers


class RemoveFromOptOutListOperator(BaseOperator):
    """
    Take numbers off the opt-out list (``source`` ``operator``); return them (E.164, with ``+``).

    Numbers are validated first, as by :class:`ImportOptOutListOperator`. By default each gets a
    record ``opted_out: false`` (now), so that a STOP older than this decision, still being
    processed, does not put it back; ``erase=True`` deletes the numbers' Variables instead (e.g. to
    erase a person's data).

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
        super().__init__(**kwargs)
        self.numbers = numbers
        self.default_country = default_country
        self.erase = erase

    def execute(self, context: Context) -> list[str]:
        """
        Validate every number, then record (or erase) each one's removal.

        :param context: The task context.
        """
        try:
            numbers = _normalized_numbers(self.numbers, None, None, "number", self.default_country)
        except ValueError as exc:
            raise AirflowFailException(f"{exc} (nothing was written)") from exc
        if not self.erase:
            _write(numbers, opted_out=False, source="operator", log=self.log)
            return numbers
        from airflow.sdk import Variable

        for number in numbers:
            Variable.delete(variable_key(number))
        self.log.info("Opt-out list: %d record(s) erased", len(numbers))
        return numbers


class ExportOptOutListOperator(BaseOperator):
    """
    Return the opt-out list (to XCom), and write it as CSV when ``csv_path`` is given.

    One entry per number on the list: ``{"number", "opted_out", "at", "source", "keyword",
    "message_id"}``, sorted by number; numbers that opted back in (``opted_out: false``) only with
    ``include_opted_in``. Lists the Variables by prefix, which a task can do from Airflow 3.3 on
    (``Variable.keys``): on Airflow 3.0 to 3.2 the task fails saying so (export the
    ``orange_sms_opt_out_*`` Variables with ``airflow variables export`` instead). One request per
    1,000 keys, then one read per number; a read that fails fails the task.

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
        entries: list[dict[str, Any]] = []
        for key in sorted(keys):
            try:
                raw = read_variable(key)
            except VariableReadError as exc:
                raise AirflowException(f"Could not export the opt-out list: {exc}") from exc
            if raw is None:  # removed since it was listed
                continue
            try:
                record = OptOutRecord.from_json(raw)
            except ValueError as exc:
                raise AirflowFailException(f"Variable {key} is not an opt-out record: {exc}") from None
            if record.opted_out or self.include_opted_in:
                entries.append({column: getattr(record, column) for column in EXPORT_COLUMNS})
        if self.csv_path:
            with open(self.csv_path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
                writer.writeheader()
                writer.writerows(spreadsheet_safe(entry) for entry in entries)
            self.log.info("Opt-out list: %d number(s) written to %s", len(entries), self.csv_path)
        return entries
