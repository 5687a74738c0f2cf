"""
:class:`SMSReplySensor`: wait until given numbers reply (an event of ``INBOUND_MESSAGES`` each).

An internal module: import the sensor from :mod:`airflow_provider_orange_sms.sensors.orange_sms`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_orange_sms.receipts import (
    AssetEventReader,
    earliest_run_moment,
    to_datetime,
)
from airflow_provider_orange_sms.recipients import load_literal, normalize_recipient, parse_recipients
from airflow_provider_orange_sms.settings import REPLIES_KEY
from airflow_provider_orange_sms.version_compat import AirflowFailException, AirflowSensorTimeout

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

__all__ = ["SMSReplySensor"]

#: Numbers named in a timeout message (all of them go to XCom ``missing_numbers``).
MAX_NUMBERS_IN_MESSAGE = 100


def parse_numbers(value: Any, default_country: str | None) -> list[str]:
    """
    The numbers to wait for, E.164 with ``+``: numbers as ``SendSMSOperator`` takes them, or its
    result list (entries with ``status`` ``sent`` only).

    :param value: The (rendered) ``numbers``.
    :param default_country: Country of numbers written without a country code.
    :raises ValueError: Naming every bad number.
    """
    if isinstance(value, str) and value.strip()[:1] in ("[", "("):
        try:
            value = load_literal(value.strip())
        except ValueError as exc:
            raise ValueError(f"Invalid numbers {value[:200]!r}: not a list ({exc})") from None
    if isinstance(value, (list, tuple)) and any(isinstance(v, dict) for v in value):
        value = [v["recipient"] for v in value if isinstance(v, dict) and v.get("status") == "sent"]
    found: dict[str, None] = {}
    bad: list[str] = []
    for number in parse_recipients(value):
        try:
            found[normalize_recipient(number, default_country).removeprefix("tel:")] = None
        except ValueError as exc:
            bad.append(str(exc))
    if bad:
        raise ValueError(f"{len(bad)} invalid number(s) to wait for: " + "; ".join(bad[:20]))
    return list(found)


class SMSReplySensor(BaseSensorOperator):
    """
    Wait until each given number replies; return ``{number: reply}`` (E.164 with ``+``).

    Replies are the events of :data:`~airflow_provider_orange_sms.receipts.INBOUND_MESSAGES`, stored
    by the receiver on the API server (``POST /orange-sms/inbound-messages/{secret}``); the sensor
    adds the asset to its ``inlets`` and reads them through the Task SDK, as
    ``DeliveryReceiptSensor`` reads receipts. Only replies received from ``since`` on count, and,
    with ``pattern``, only those whose text matches it (``re.search``, case-insensitive): a number's
    first such reply is its answer, ``{"message", "received_at", "message_id", "destination"}``.
    The XCom ``replies`` holds every reply read from the numbers, matching or not.

    Not deferrable (triggers cannot read asset events): ``reschedule`` mode by default frees the
    worker slot between pokes. On timeout the task fails naming the numbers without a matching reply
    (XCom ``missing_numbers`` lists them all); ``soft_fail=True`` skips instead.

    :param numbers: The numbers to wait for: a list, a comma-separated string, or
        ``SendSMSOperator``'s results (the recipients with status ``sent``), also as the rendered
        string of one. Templated.
    :param pattern: A regular expression the reply must match (e.g. ``r"^\\s*(yes|oui)\\b"``);
        ``None`` accepts any reply. Templated.
    :param since: Only replies received from this time on count (datetime or ISO 8601; templated).
        Defaults to the DAG run's start.
    :param require_all: Wait for every number (default) or, ``False``, for the first reply.
    :param default_country: Country of numbers written without a country code. Templated.
    :param mode: ``reschedule`` (default) or ``poke``.
    :param poke_interval: Seconds between checks; 60 by default.
    :param timeout: How long to wait in total; 24 hours by default.
    """

    template_fields: Sequence[str] = ("numbers", "pattern", "since", "default_country")
    ui_color = "#ff7900"

    def __init__(
        self,
        *,
        numbers: Any,
        pattern: str | None = None,
        since: datetime | str | None = None,
        require_all: bool = True,
        default_country: str | None = None,
        mode: str = "reschedule",
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float | None = timedelta(hours=24),
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.numbers = numbers
        self.pattern = pattern
        self.since = since
        self.require_all = require_all
        self.default_country = default_country
        from airflow_provider_orange_sms.receipts import INBOUND_MESSAGES

        if not any(getattr(inlet, "name", None) == INBOUND_MESSAGES.name for inlet in self.inlets):
            self.inlets.append(INBOUND_MESSAGES)
        self._reset()

    def _reset(self) -> None:
        from airflow_provider_orange_sms.receipts import INBOUND_MESSAGES

        self._events = AssetEventReader(INBOUND_MESSAGES)
        self._answers: dict[str, dict[str, Any]] = {}
        self._replies: list[dict[str, Any]] = []
        self._targets: list[str] | None = None
        self._matcher: re.Pattern[str] | None = None

    def _since(self, context: Context) -> datetime:
        if self.since:
            return to_datetime(self.since)
        earliest = earliest_run_moment(context, ("start_date", "run_after", "logical_date"))
        if earliest is None:
            raise ValueError("Cannot tell when to read replies from: pass since= to SMSReplySensor")
        return earliest

    def poke(self, context: Context) -> PokeReturnValue:
        """
        Read the replies that arrived since the last check; done when the numbers have answered.

        :param context: The task context.
        """
        if self._targets is None:
            try:
                self._targets = parse_numbers(self.numbers, self.default_country)
                self._matcher = re.compile(self.pattern, re.IGNORECASE) if self.pattern else None
            except (ValueError, re.error) as exc:
                raise AirflowFailException(f"SMSReplySensor: {exc}") from exc
        targets = set(self._targets)
        if not targets:
            self.log.info("No number to wait for")
            return PokeReturnValue(is_done=True, xcom_value={})
        for event in self._events.new_events(context, self._since(context)):
            extra = event.extra or {}
            sender = extra.get("sender")
            if sender not in targets:
                continue
            reply = {
                "sender": sender,
                "message": str(extra.get("message", "")),
                "received_at": extra.get("received_at"),
                "message_id": extra.get("message_id") or None,
                "destination": extra.get("destination"),
            }
            self._replies.append(reply)
            if sender in self._answers or (self._matcher and not self._matcher.search(reply["message"])):
                continue
            self._answers[sender] = {k: v for k, v in reply.items() if k != "sender"}
        waiting = [n for n in self._targets if n not in self._answers]
        self.log.info(
            "Replies: %d of %d number(s) answered%s",
            len(self._answers),
            len(self._targets),
            f"; waiting for {', '.join(waiting[:5])}{'…' if len(waiting) > 5 else ''}" if waiting else "",
        )
        done = not waiting if self.require_all else bool(self._answers)
        if not done:
            return PokeReturnValue(is_done=False)
        self._push(context, REPLIES_KEY, self._replies)
        return PokeReturnValue(is_done=True, xcom_value={n: self._answers[n] for n in self._answers})

    @staticmethod
    def _push(context: Context, key: str, value: Any) -> None:
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=key, value=value)

    def execute(self, context: Context) -> Any:
        """
        Wait as :class:`BaseSensorOperator` does; a timeout names the numbers that did not answer.

        :param context: The task context.
        """
        self._reset()
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            missing = [n for n in self._targets or [] if n not in self._answers]
            self._push(context, "missing_numbers", missing)
            self._push(context, REPLIES_KEY, self._replies)
            shown = ", ".join(missing[:MAX_NUMBERS_IN_MESSAGE])
            more = len(missing) - MAX_NUMBERS_IN_MESSAGE
            raise AirflowSensorTimeout(
                f"{exc} No matching reply from {len(missing)} of {len(self._targets or [])} number(s): "
                f"{shown}{f' and {more} more' if more > 0 else ''} (all in XCom 'missing_numbers')"
            ) from None
