"""Every sent ledger at once: which sends to given recipients are unresolved, and which of Orange's
resource ids some ledger records.

Settling an uncertain recipient from a delivery receipt (see
:mod:`~airflow_provider_orange_sms.batch.settlement`) must know every other send that could own the
receipt, in any task or DAG: this reads all ledgers the store lists (Airflow 3.3+, which can list
Variables from a task). Entries of every incarnation count: an ignored incarnation's sends were
real sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.ledger.ledger_identity import KEY_PREFIX
from airflow_provider_orange_sms.ledger.sent_ledger import (
    FAILED,
    IN_FLIGHT,
    RELEASED,
    SENT,
    UNCERTAIN,
    LedgerStore,
    LedgerUnavailableError,
    in_flight_times,
)

if TYPE_CHECKING:
    from collections.abc import Collection

_CHUNK_KEY = re.compile(rf"^({KEY_PREFIX}[0-9a-f]{{32}})_(\d+)$")


@dataclass(frozen=True)
class UnresolvedSend:
    """
    A send whose outcome no ledger records: it may have reached Orange, and a receipt may follow.

    :param ledger: The key prefix of the ledger that records it.
    :param recipient: Normalised address (``tel:+…``).
    :param in_flight_at: When its "in flight" entry was written (Unix time, the writer's clock);
        ``None`` when unknown (then it could own any receipt).
    :param latest: Whether it is the ledger's latest entry for the recipient (an earlier one was
        released for resending by the user).
    """

    ledger: str
    recipient: str
    in_flight_at: float | None
    latest: bool


@dataclass
class LedgerScan:
    """
    What all ledgers say about some recipients.

    :param unresolved: The unresolved sends to each of the recipients asked about.
    :param known_ids: Every resource id a ledger records as sent (to anyone).
    """

    unresolved: dict[str, list[UnresolvedSend]] = field(default_factory=dict)
    known_ids: set[str] = field(default_factory=set)


def scan_ledgers(store: LedgerStore, recipients: Collection[str]) -> LedgerScan | None:
    """
    Read every ledger the store lists; ``None`` when it cannot list them (before Airflow 3.3).

    :param store: Where the ledgers live.
    :param recipients: The recipients whose unresolved sends are wanted.
    :raises LedgerUnavailableError: When a listed chunk cannot be read or is not a ledger chunk.
    """
    try:
        keys = store.keys(KEY_PREFIX)
    except Exception as exc:
        raise LedgerUnavailableError(f"cannot list the sent ledgers ({type(exc).__name__}: {exc})") from exc
    if keys is None:
        return None
    chunks: dict[str, list[int]] = {}
    for key in keys:
        match = _CHUNK_KEY.match(key)
        if match:
            chunks.setdefault(match.group(1), []).append(int(match.group(2)))
    scan = LedgerScan()
    wanted = set(recipients)
    for prefix in sorted(chunks):
        open_sends: dict[str, list[UnresolvedSend]] = {}
        for index in sorted(chunks[prefix]):
            _read_chunk(store, f"{prefix}_{index}", prefix, wanted, open_sends, scan.known_ids)
        for recipient, sends in open_sends.items():
            if sends:
                last = sends[-1]
                sends[-1] = UnresolvedSend(prefix, recipient, last.in_flight_at, latest=True)
                scan.unresolved.setdefault(recipient, []).extend(sends)
    return scan


def _read_chunk(
    store: LedgerStore,
    key: str,
    prefix: str,
    wanted: set[str],
    open_sends: dict[str, list[UnresolvedSend]],
    known_ids: set[str],
) -> None:
    """Take in one chunk's entries: resource ids sent, and the sends to ``wanted`` left open."""
    try:
        chunk: Any = store.get(key)
    except Exception as exc:
        raise LedgerUnavailableError(
            f"cannot read the sent ledger {key} ({type(exc).__name__}: {exc})"
        ) from exc
    if chunk is None:  # deleted by a sweep since the listing
        return
    try:
        times = in_flight_times(chunk)
        for recipient, resource_id, status in chunk["entries"]:
            if status == SENT and isinstance(resource_id, str) and resource_id:
                known_ids.add(resource_id)
            if recipient not in wanted:
                continue
            sends = open_sends.setdefault(recipient, [])
            if status == IN_FLIGHT:
                sends.append(UnresolvedSend(prefix, recipient, times.get(recipient), latest=False))
            elif status in (SENT, FAILED) and sends:
                sends.pop()  # that send's outcome is known: no receipt of it is unexplained
            elif status == RELEASED and sends:
                # Released by the user: its outcome stays unknown, and its time no longer tells it
                # apart from the resend (both may share a chunk's time).
                sends[-1] = UnresolvedSend(prefix, recipient, None, latest=False)
            elif status == UNCERTAIN and not sends:
                sends.append(UnresolvedSend(prefix, recipient, None, latest=False))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LedgerUnavailableError(f"the sent ledger {key} is not a ledger chunk: {chunk!r:.80}") from exc
