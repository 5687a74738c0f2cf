"""Settling an uncertain recipient from Orange's delivery receipts.

A try killed after recording a recipient "in flight" never learned whether Orange took the SMS, nor
its resource id. A delivery receipt names the resource id (``callbackData``) and the recipient but
not the send, so it settles the recipient as ``sent`` only when it **can only belong to that send**:

1. it is for the same recipient and names a resource id;
2. its first receipt arrived after the "in flight" record was written, less
   :data:`CLOCK_SKEW_ALLOWANCE` (the worker's and the API server's clocks differ), and none of its
   receipts arrived before that (a late receipt of an earlier SMS);
3. no sent ledger records that resource id (it is not another send's);
4. it is the only such resource id, and no receipt without ``callbackData`` arrived for the
   recipient in that time (two candidate receipts: ambiguous);
5. no other send to the recipient whose outcome is unknown (in any task or DAG, or released earlier
   in this one) could own it: every other one was recorded "in flight" more than
   :data:`CLOCK_SKEW_ALLOWANCE` after the receipt arrived.

Otherwise the recipient stays uncertain: nothing is ever resent because a receipt is missing (receipts
can be late or lost). What the rule cannot see: an SMS to the same number sent outside any sent ledger
(``OrangeSMSNotifier``, ``OrangeSMSOperator``, ``retry_guard=False``, another application on the
Orange account) whose receipt arrives in that time would be taken for this send's.

Needs Airflow 3.3+ (rule 5 lists every ledger: Variables can be listed from a task only from 3.3) and
the delivery-receipts asset among the task's inlets (SendSMSOperator's ``settle_by_receipts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.ledger import SENT, scan_ledgers

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow_provider_orange_sms.ledger import LedgerScan, SentLedger

#: How far apart the clocks of the worker that wrote "in flight" and of the API server that stored
#: the receipt may be. A receipt that arrived earlier than this before the "in flight" record does
#: not settle it.
CLOCK_SKEW_ALLOWANCE = timedelta(seconds=10)
#: How far before the "in flight" record receipts are read: a resource id with a receipt in that time
#: is an earlier SMS's.
LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class SeenReceipt:
    """
    One stored delivery receipt.

    :param recipient: Normalised address (``tel:+…``).
    :param resource_id: Orange's ``callbackData`` (``""`` when it sent none).
    :param received_at: When the receiver stored it (Unix time, the API server's clock).
    """

    recipient: str
    resource_id: str
    received_at: float


def settle(
    targets: Mapping[str, float | None], own_ledger: str, scan: LedgerScan, receipts: Iterable[SeenReceipt]
) -> tuple[dict[str, str], dict[str, str]]:
    """
    Apply the rule (see the module): which uncertain recipients a receipt settles, and why the others not.

    :param targets: The uncertain recipients, with the time their "in flight" entry was written.
    :param own_ledger: The key prefix of the ledger the targets are in.
    :param scan: What every ledger says (unresolved sends, resource ids recorded as sent).
    :param receipts: The receipts stored since before the earliest target (see :data:`LOOKBACK`).
    :return: The resource id of each settled recipient, and the reason each other one is not.
    """
    skew = CLOCK_SKEW_ALLOWANCE.total_seconds()
    by_recipient: dict[str, list[SeenReceipt]] = {}
    for receipt in receipts:
        by_recipient.setdefault(receipt.recipient, []).append(receipt)
    settled: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for recipient, in_flight_at in targets.items():
        seen = by_recipient.get(recipient, [])
        if in_flight_at is None:
            reasons[recipient] = "the time of its send is unknown (recorded by an older release)"
            continue
        start = in_flight_at - skew
        first: dict[str, float] = {}
        for receipt in seen:
            at = first.get(receipt.resource_id)
            first[receipt.resource_id] = receipt.received_at if at is None else min(at, receipt.received_at)
        if any(not receipt.resource_id and receipt.received_at >= start for receipt in seen):
            reasons[recipient] = "a receipt without callbackData arrived for it since: it cannot be matched"
            continue
        candidates = {i: at for i, at in first.items() if i and at >= start and i not in scan.known_ids}
        if not candidates:
            reasons[recipient] = "no delivery receipt of an SMS unknown to the ledgers arrived for it since"
            continue
        if len(candidates) > 1:
            reasons[recipient] = (
                f"{len(candidates)} receipts of different SMS arrived for it since: ambiguous"
            )
            continue
        [(resource_id, received_at)] = candidates.items()
        sends = scan.unresolved.get(recipient, [])
        if not any(send.ledger == own_ledger and send.latest for send in sends):
            reasons[recipient] = "the ledgers read now no longer record its send as unresolved"
            continue
        rivals = [
            send
            for send in sends
            if not (send.ledger == own_ledger and send.latest)
            and (send.in_flight_at is None or received_at >= send.in_flight_at - skew)
        ]
        if rivals:
            reasons[recipient] = (
                f"{len(rivals)} other send(s) to it without a recorded outcome could own the receipt"
            )
            continue
        settled[recipient] = resource_id
    return settled, reasons


def read_receipts(context: Any, since: datetime) -> list[SeenReceipt]:
    """
    The delivery receipts stored since ``since``, through the task's inlet events.

    :param context: The task context (the delivery-receipts asset must be among the task's inlets).
    :param since: Where the read starts.
    """
    from airflow_provider_orange_sms.receipts import DELIVERY_RECEIPTS, AssetEventReader, to_datetime

    seen = []
    for event in AssetEventReader(DELIVERY_RECEIPTS).new_events(context, since):
        extra = getattr(event, "extra", None) or {}
        recipient = extra.get("recipient")
        if not isinstance(recipient, str):
            continue
        resource_id = extra.get("resource_id")
        try:
            at = to_datetime(extra.get("received_at") or event.timestamp)
        except ValueError:
            at = to_datetime(event.timestamp)
        seen.append(
            SeenReceipt(recipient, resource_id if isinstance(resource_id, str) else "", at.timestamp())
        )
    return seen


def settle_from_receipts(
    context: Any, ledger: SentLedger, targets: Mapping[str, float | None], logger: Any
) -> dict[str, str]:
    """
    Settle the uncertain ``targets`` that a receipt can only belong to, recording them ``sent`` with
    its resource id in ``ledger``; return those. Never raises: a failure leaves them uncertain.

    :param context: The task context.
    :param ledger: The task instance's sent ledger (loaded).
    :param targets: The uncertain recipients and the time of their "in flight" entry.
    :param logger: Where each outcome is logged.
    """
    if not targets or ledger.key is None:
        return {}
    try:
        scan = scan_ledgers(ledger.store, list(targets))
        if scan is None:
            logger.info(
                "Not settling %d uncertain recipient(s) from delivery receipts: this Airflow cannot list "
                "the other sent ledgers from a task (Airflow 3.3+ can)",
                len(targets),
            )
            return {}
        times = [at for at in targets.values() if at is not None]
        since = datetime.fromtimestamp(min(times), timezone.utc) - CLOCK_SKEW_ALLOWANCE - LOOKBACK
        receipts = read_receipts(context, since) if times else []
        settled, reasons = settle(targets, ledger.key, scan, receipts)
        if settled:
            ledger.append([(recipient, resource_id, SENT) for recipient, resource_id in settled.items()])
    except Exception as exc:  # settling is a bonus: never the reason a try fails
        logger.warning(
            "Could not settle uncertain recipients from delivery receipts (%s: %s): they stay uncertain",
            type(exc).__name__,
            exc,
        )
        return {}
    for recipient, resource_id in settled.items():
        logger.info(
            "Settled %s as sent: delivery receipt of %s can only belong to the send an earlier try "
            "left in flight",
            recipient,
            resource_id,
        )
    for recipient, reason in reasons.items():
        logger.info("%s stays uncertain: %s", recipient, reason)
    return settled
