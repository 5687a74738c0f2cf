"""
:class:`DeliveryReceiptSensor`: wait until every SMS of a send has a final delivery receipt.

An internal module: import the sensor from :mod:`airflow_provider_orange_sms.sensors.orange_sms`. Kept
apart so the balance sensor and this one can change independently.
"""

from __future__ import annotations

import ast
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_orange_sms.receipts import (
    DELIVERY_IMPOSSIBLE,
    DELIVERY_RECEIPTS,
    FINAL_STATUSES,
    AssetEventReader,
    earliest_run_moment,
    to_datetime,
)
from airflow_provider_orange_sms.settings import MISSING_RESOURCE_IDS_KEY, RECEIPTS_KEY
from airflow_provider_orange_sms.version_compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

#: Resource ids named in a timeout message (all of them go to XCom ``missing_resource_ids``).
MAX_IDS_IN_MESSAGE = 100
#: Orange sends receipts within 24 hours of a send.
DEFAULT_TIMEOUT = timedelta(hours=24)


def _flatten(value: Any, targets: dict[str, str | None], skipped: list[Any], depth: int = 0) -> None:
    if depth > 5:
        raise ValueError(f"Invalid resource_ids: nested too deeply at {value!r}")
    if value is None:
        return
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return
        if text[0] in "[(":
            try:
                parsed = json.loads(text)
            except ValueError:
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    raise ValueError(
                        f"Invalid resource_ids {text[:200]!r}: looks like a list but cannot be parsed"
                    ) from None
            _flatten(parsed, targets, skipped, depth + 1)
            return
        for item in text.replace(";", ",").replace("\n", ",").split(","):
            if item.strip():
                targets.setdefault(item.strip(), None)
        return
    if isinstance(value, dict):
        if "resource_id" not in value and "status" not in value:
            raise ValueError(
                f"Invalid resource_ids entry {value!r}: expected a resource id or a SendSMSOperator "
                "result such as {'recipient': 'tel:+…', 'resource_id': '…', 'status': 'sent'}"
            )
        resource_id = value.get("resource_id")
        if value.get("status") == "sent" and isinstance(resource_id, str) and resource_id:
            recipient = value.get("recipient")
            targets[resource_id] = recipient if isinstance(recipient, str) else None
        else:
            skipped.append(value)
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _flatten(item, targets, skipped, depth + 1)
        return
    raise ValueError(
        f"Invalid resource_ids entry {value!r} ({type(value).__name__}): expected a resource id string "
        "or a SendSMSOperator result dict"
    )


def parse_resource_ids(value: Any) -> tuple[dict[str, str | None], list[Any]]:
    """
    Read the resource ids to wait for, and their recipients when known.

    Accepts one id, a comma-separated string, a list of ids, ``SendSMSOperator``'s result list
    (entries with ``status`` ``sent`` and a ``resource_id``; the others are returned as skipped), or
    a rendered string of any of these (``{{ ti.xcom_pull(...) }}``; parsed with ``json`` or
    ``ast.literal_eval``, never ``eval``), also as entries of a list (mapped sends).

    :param value: The (rendered) ``resource_ids``.
    :return: ``{resource_id: recipient or None}`` in input order, and the skipped result entries.
    """
    targets: dict[str, str | None] = {}
    skipped: list[Any] = []
    _flatten(value, targets, skipped)
    return targets, skipped


class DeliveryReceiptSensor(BaseSensorOperator):
    """
    Wait until every given SMS has a final delivery receipt; return ``{resource_id: status}``.

    Final statuses are ``DeliveredToTerminal``, ``DeliveredToNetwork``, ``DeliveryImpossible``,
    ``DeliveryUncertain`` and ``DeliveryNotificationNotSupported`` (no receipt will follow: delivery
    is unknown); ``MessageWaiting`` is not. Receipts are the events of
    :data:`~airflow_provider_orange_sms.receipts.DELIVERY_RECEIPTS`, stored by the receiver on the
    API server; the sensor adds the asset to its ``inlets`` and reads them through the Task SDK
    (``context["inlet_events"]``), never the metadata database. Each poke fetches only the events
    newer than the last one it saw (in ``reschedule`` mode each poke is a new process, so it reads
    from ``since``, in pages).

    Not deferrable: Airflow's triggers cannot read asset events (the triggerer offers no such call,
    checked on 3.3), so the default ``mode`` is ``reschedule``, which frees the worker slot between
    pokes just the same, only at ``poke_interval`` granularity.

    A receipt whose ``callbackData`` is empty (reported for some accounts) is matched by recipient,
    when ``resource_ids`` came from ``SendSMSOperator``'s results (which give each id's recipient),
    the recipient belongs to exactly one of the ids, and the receipt arrived after ``since``. The
    XCom ``receipts`` says how each id was matched.

    On timeout the task fails naming the ids that never got a final receipt (XCom
    ``missing_resource_ids`` lists them all).

    :param resource_ids: The ids to wait for: one id, a list, or ``SendSMSOperator``'s result list
        (only entries with ``status`` ``sent`` and a ``resource_id`` count); templated, may be the
        rendered string of such a list (``"{{ ti.xcom_pull(task_ids='send') }}"``) or a list of such
        strings (mapped sends).
    :param fail_on_impossible: Fail (without retries) when every id is final and some are
        ``DeliveryImpossible``; the ``receipts`` XCom still holds every status.
    :param since: Only receipts received from this time on count (datetime or ISO 8601 string;
        templated). Defaults to the DAG run's start (or its ``run_after``, if earlier). Set it to the
        send's time to narrow recipient matching.
    :param mode: ``reschedule`` (default) or ``poke``.
    :param poke_interval: Seconds between checks; 60 by default.
    :param timeout: Seconds (or timedelta) to wait in total; 24 hours by default (Orange sends
        receipts within 24 hours).
    :param deferrable: Only ``False`` is accepted (see above).
    """

    template_fields: Sequence[str] = ("resource_ids", "since")
    ui_color = "#ff7900"

    def __init__(
        self,
        *,
        resource_ids: Any,
        fail_on_impossible: bool = False,
        since: datetime | str | None = None,
        mode: str = "reschedule",
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float | None = DEFAULT_TIMEOUT,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        if deferrable:
            raise ValueError(
                "DeliveryReceiptSensor cannot be deferrable: Airflow's triggers have no supported way "
                "to read asset events. Use mode='reschedule' (the default) to free the worker slot."
            )
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.resource_ids = resource_ids
        self.fail_on_impossible = fail_on_impossible
        self.since = since
        if not any(getattr(inlet, "name", None) == DELIVERY_RECEIPTS.name for inlet in self.inlets):
            self.inlets.append(DELIVERY_RECEIPTS)
        self._reset_progress()

    def _reset_progress(self) -> None:
        self._events = AssetEventReader(DELIVERY_RECEIPTS)
        self._final: dict[str, dict[str, Any]] = {}
        self._latest: dict[str, str] = {}
        self._targets: dict[str, str | None] | None = None

    # -- inputs ----------------------------------------------------------------------------------

    def _resolve_targets(self) -> dict[str, str | None]:
        if self._targets is None:
            targets, skipped = parse_resource_ids(self.resource_ids)
            if skipped:
                self.log.warning(
                    "Not waiting for %d send result(s) without a sent SMS (status failed/uncertain or "
                    "no resource id): %s",
                    len(skipped),
                    ", ".join(f"{s.get('recipient')} ({s.get('status')})" for s in skipped[:20]),
                )
            self._targets = targets
        return self._targets

    def _since(self, context: Context) -> datetime:
        if self.since:
            return to_datetime(self.since)
        earliest = earliest_run_moment(context, ("start_date", "run_after", "queued_at", "logical_date"))
        if earliest is None:
            raise ValueError("Cannot tell when the send happened: pass since= to DeliveryReceiptSensor")
        return earliest

    # -- reading receipts ------------------------------------------------------------------------

    def _apply(self, event: Any, targets: dict[str, str | None], by_recipient: dict[str, str]) -> None:
        extra = event.extra or {}
        status = extra.get("status")
        resource_id = extra.get("resource_id") or ""
        recipient = extra.get("recipient")
        if resource_id:
            if resource_id not in targets:
                return
            matched_by = "resource_id"
        elif isinstance(recipient, str) and recipient in by_recipient:
            resource_id = by_recipient[recipient]
            matched_by = "recipient"
        else:
            return
        if not isinstance(status, str):
            return
        self._latest[resource_id] = status
        if status not in FINAL_STATUSES:
            return
        current = self._final.get(resource_id)
        if current and current["matched_by"] == "resource_id" and matched_by == "recipient":
            return  # a receipt that names the id beats one matched by number
        if matched_by == "recipient":
            self.log.warning(
                "Receipt without callbackData matched to resource id %s by its recipient %s",
                resource_id,
                recipient,
            )
        self._final[resource_id] = {
            "status": status,
            "recipient": recipient,
            "matched_by": matched_by,
            "received_at": extra.get("received_at"),
        }

    # -- the sensor ------------------------------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue:
        """
        Fetch the receipts that arrived since the last check; done when every id has a final one.

        :param context: The task context.
        """
        targets = self._resolve_targets()
        if not targets:
            self.log.info("No sent SMS to wait for")
            return PokeReturnValue(is_done=True, xcom_value={})
        counts: dict[str, int] = {}
        for recipient in targets.values():
            if recipient:
                counts[recipient] = counts.get(recipient, 0) + 1
        by_recipient = {r: i for i, r in targets.items() if r and counts[r] == 1}

        events = self._events.new_events(context, self._since(context))
        for event in events:
            self._apply(event, targets, by_recipient)
        pending = [i for i in targets if i not in self._final]
        self.log.info(
            "Delivery receipts: %d event(s) read; %d of %d SMS final, waiting for %d%s",
            len(events),
            len(targets) - len(pending),
            len(targets),
            len(pending),
            f" (e.g. {', '.join(pending[:5])})" if pending else "",
        )
        if pending:
            return PokeReturnValue(is_done=False)

        result = {i: self._final[i]["status"] for i in targets}
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=RECEIPTS_KEY, value={i: self._final[i] for i in targets})
        impossible = [i for i, status in result.items() if status == DELIVERY_IMPOSSIBLE]
        if impossible and self.fail_on_impossible:
            raise AirflowFailException(
                f"{len(impossible)} of {len(result)} SMS could not be delivered (DeliveryImpossible): "
                + ", ".join(f"{i} ({targets[i] or self._final[i]['recipient']})" for i in impossible)
            )
        return PokeReturnValue(is_done=True, xcom_value=result)

    def _missing_message(self, context: Context) -> str:
        targets = self._targets or {}
        missing = [i for i in targets if i not in self._final]
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=MISSING_RESOURCE_IDS_KEY, value=missing)
        shown = ", ".join(
            f"{i} ({'last status ' + self._latest[i] if i in self._latest else 'no receipt'})"
            for i in missing[:MAX_IDS_IN_MESSAGE]
        )
        more = f" and {len(missing) - MAX_IDS_IN_MESSAGE} more" if len(missing) > MAX_IDS_IN_MESSAGE else ""
        return (
            f"No final delivery receipt for {len(missing)} of {len(targets)} SMS: {shown}{more} "
            "(all in XCom 'missing_resource_ids')"
        )

    def execute(self, context: Context) -> Any:
        """
        Wait as :class:`BaseSensorOperator` does; a timeout names the ids still without a final receipt.

        :param context: The task context.
        """
        self._reset_progress()
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            raise AirflowSensorTimeout(f"{exc} {self._missing_message(context)}") from None
        except AirflowSkipException as exc:
            if self.soft_fail and self._targets and len(self._final) < len(self._targets):
                raise AirflowSkipException(f"{exc} {self._missing_message(context)}") from None
            raise
