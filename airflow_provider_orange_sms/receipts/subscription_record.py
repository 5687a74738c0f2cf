"""
The record of each connection's delivery-receipt subscription: one Airflow Variable per connection.

Orange's API cannot list an account's subscriptions (it creates one, reads or deletes one by its
id), so the id Orange returns is the only handle on it. ``CreateDeliveryReceiptSubscriptionOperator``
records it in the Variable :func:`variable_key` names, with the sender, its country and the notify
URL with its secrets as ``***``; ``DeleteDeliveryReceiptSubscriptionOperator`` marks it deleted
(when it names the same id); the "Orange SMS" page reads it. This module is the one definition of
those Variables' names and of the record's shape.

A record holds no secret: it is shown in Admin -> Variables and on the page.

Writing or clearing a record never fails the task: Orange has already done what the task asked,
and a retry would subscribe again (a new id) or get a 404. A failure logs a WARNING naming the
Variable and the command that records the value by hand.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.receipts.urls import shown_url
from airflow_provider_orange_sms.strict_variables import read_variable

if TYPE_CHECKING:
    import logging

    from airflow.sdk import Context

#: Prefix of the per-connection Variables; the connection id follows.
VARIABLE_PREFIX = "orange_sms_receipts_subscription."
#: The Variable the example DAG of earlier releases wrote (one id, for no connection in
#: particular). Still read by the page, and cleared by a delete of the id it names.
LEGACY_VARIABLE = "orange_sms_receipts_subscription_id"
#: Longest Variable key Airflow stores.
MAX_KEY_LENGTH = 250


def variable_key(conn_id: str) -> str:
    """
    The Variable recording the subscription of connection ``conn_id``.

    :param conn_id: An ``orange_sms`` connection id (a key longer than Airflow stores ends in a
        digest of it instead).
    """
    key = VARIABLE_PREFIX + conn_id
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{VARIABLE_PREFIX}sha256-{hashlib.sha256(conn_id.encode()).hexdigest()}"


@dataclass(frozen=True)
class SubscriptionRecord:
    """
    What a connection's Variable holds.

    :param conn_id: The connection (the Orange account) the subscription belongs to.
    :param subscription_id: The live subscription's id; ``None`` once it was deleted.
    :param sender_address: The sender number it was created for (bare digits).
    :param country: That sender's country (ISO 3166 alpha-3), if known.
    :param notify_url: Where Orange posts the receipts, secrets as ``***``.
    :param recorded_at: When the record was written (ISO 8601, UTC).
    :param recorded_by: The task that wrote it: ``{"dag_id", "task_id", "run_id", "map_index"}``.
    :param deleted_subscription_id: The id a delete task removed (with ``subscription_id`` ``None``).
    """

    conn_id: str
    subscription_id: str | None
    sender_address: str | None = None
    country: str | None = None
    notify_url: str | None = None
    recorded_at: str | None = None
    recorded_by: dict[str, Any] | None = None
    deleted_subscription_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as the Variable's JSON value."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: str) -> SubscriptionRecord | None:
        """
        Parse a Variable's value; ``None`` when it is not a record.

        :param raw: The Variable's value.
        """
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("conn_id"), str):
            return None

        def text(name: str) -> str | None:
            found = value.get(name)
            return None if found is None or found == "" else str(found)

        by = value.get("recorded_by")
        return cls(
            conn_id=value["conn_id"],
            subscription_id=text("subscription_id"),
            sender_address=text("sender_address"),
            country=text("country"),
            notify_url=text("notify_url"),
            recorded_at=text("recorded_at"),
            recorded_by=by if isinstance(by, dict) else None,
            deleted_subscription_id=text("deleted_subscription_id"),
        )


def _recorded_by(context: Context | dict[str, Any]) -> dict[str, Any] | None:
    ti = context.get("ti") if context else None
    if ti is None:
        return None
    return {name: getattr(ti, name, None) for name in ("dag_id", "task_id", "run_id", "map_index")}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_created(
    conn_id: str,
    subscription_id: str,
    *,
    sender_address: str | None,
    country: str | None,
    notify_url: str,
    context: Context | dict[str, Any],
    log: logging.Logger | Any,
) -> SubscriptionRecord:
    """
    Record a subscription Orange just created; on failure, log a WARNING and return normally.

    :param conn_id: Its connection.
    :param subscription_id: The id Orange returned.
    :param sender_address: The sender it was created for.
    :param country: That sender's country.
    :param notify_url: The notify URL as sent (its secrets are not recorded).
    :param context: The task context (who recorded it).
    :param log: The task's logger.
    :return: The record (written or not).
    """
    record = SubscriptionRecord(
        conn_id=conn_id,
        subscription_id=subscription_id,
        sender_address=sender_address,
        country=country,
        notify_url=shown_url(notify_url),
        recorded_at=_now(),
        recorded_by=_recorded_by(context),
    )
    key = variable_key(conn_id)
    try:
        _write(key, record)
    except Exception as exc:
        log.warning(
            "Subscription %s was created at Orange but NOT recorded in the Airflow Variable %s "
            "(%s: %s), so the Orange SMS page does not show it. The id is this task's return value "
            "(XCom). To record it by hand: airflow variables set %s %s",
            subscription_id,
            key,
            type(exc).__name__,
            exc,
            shlex.quote(key),
            shlex.quote(json.dumps(record.to_json())),
        )
    else:
        log.info("Recorded subscription %s in the Airflow Variable %s", subscription_id, key)
    return record


def record_deleted(
    conn_id: str, subscription_id: str, *, context: Context | dict[str, Any], log: logging.Logger | Any
) -> None:
    """
    Mark the connection's record deleted when it names ``subscription_id`` (and remove the legacy
    Variable when it names it); on failure, log a WARNING and return normally.

    The record is kept, without a subscription id, rather than removed: the page then says the
    subscription was deleted instead of falling back to older sources that may still name it.
    Airflow Variables have no compare-and-set: a subscription recorded by another task between
    this read and this write would be marked deleted too.

    :param conn_id: Its connection.
    :param subscription_id: The id Orange just deleted.
    :param context: The task context (who deleted it).
    :param log: The task's logger.
    """
    key = variable_key(conn_id)
    try:
        raw = read_variable(key)
        record = None if raw is None else SubscriptionRecord.from_json(raw)
        if record is not None and record.subscription_id == subscription_id:
            deleted = SubscriptionRecord(
                conn_id=conn_id,
                subscription_id=None,
                sender_address=record.sender_address,
                country=record.country,
                recorded_at=_now(),
                recorded_by=_recorded_by(context),
                deleted_subscription_id=subscription_id,
            )
            _write(key, deleted)
            log.info("Marked subscription %s deleted in the Airflow Variable %s", subscription_id, key)
        elif record is not None:
            log.info(
                "The Airflow Variable %s records subscription %s, not %s: left as it is",
                key,
                record.subscription_id or f"{record.deleted_subscription_id} (deleted)",
                subscription_id,
            )
        legacy = read_variable(LEGACY_VARIABLE)
        if legacy is not None and legacy.strip() == subscription_id:
            from airflow.sdk import Variable

            Variable.delete(LEGACY_VARIABLE)
            log.info("Deleted the Airflow Variable %s, which named %s", LEGACY_VARIABLE, subscription_id)
    except Exception as exc:
        log.warning(
            "Subscription %s was deleted at Orange but the Airflow Variable %s (or %s) could not be "
            "updated (%s: %s): the Orange SMS page may still show it. Delete the Variable by hand "
            "if it names %s: airflow variables delete %s",
            subscription_id,
            key,
            LEGACY_VARIABLE,
            type(exc).__name__,
            exc,
            subscription_id,
            shlex.quote(key),
        )


def _write(key: str, record: SubscriptionRecord) -> None:
    from airflow.sdk import Variable

    description = (
        f"Delivery-receipt subscription of the connection {record.conn_id!r}, recorded by the "
        "Orange SMS provider's subscription operators; shown on the Orange SMS page."
    )
    Variable.set(key, record.to_json(), description=description, serialize_json=True)
