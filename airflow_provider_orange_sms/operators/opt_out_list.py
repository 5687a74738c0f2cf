"""Operators that manage the opt-out list: import numbers, export the list, remove numbers.

An internal module: import them from :mod:`airflow_provider_orange_sms.operators.orange_sms`. What
they do to the list (which Variable each writes, how an erase keeps a STOP that races with it) is
:mod:`airflow_provider_orange_sms.opt_out`'s, through the Task SDK (the execution API) as any task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_orange_sms import opt_out
from airflow_provider_orange_sms.version_compat import AirflowFailException

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

__all__ = ["ExportOptOutListOperator", "ImportOptOutListOperator", "RemoveFromOptOutListOperator"]


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
        # A retry errs towards opting out: it counts from now, not from the run's start.
        started = opt_out.decided_at(context, on_retry_from_run_start=False)
        try:
            numbers = opt_out.parse_numbers(
                self.numbers, self.csv_path, self.csv_text, self.number_column, self.default_country
            )
        except (ValueError, OSError) as exc:
            raise AirflowFailException(f"{exc} (nothing was written)") from exc
        opt_out.write_decisions(numbers, opted_out=True, source="import", at=started, log=self.log)
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
        started = opt_out.decided_at(context, on_retry_from_run_start=True)
        try:
            numbers = opt_out.parse_numbers(self.numbers, None, None, "number", self.default_country)
        except ValueError as exc:
            raise AirflowFailException(f"{exc} (nothing was written)") from exc
        if self.erase:
            opt_out.erase(numbers, since=started, context=context, log=self.log)
        else:
            opt_out.write_decisions(numbers, opted_out=False, source="operator", at=started, log=self.log)
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
        entries = opt_out.export_entries(self.include_opted_in)
        if self.csv_path:
            opt_out.write_csv(self.csv_path, entries)
            self.log.info("Opt-out list: %d number(s) written to %s", len(entries), self.csv_path)
        return entries
