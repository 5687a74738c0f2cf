"""
Store a reply (an SMS a subscriber sent to the account's number) as an asset event, and apply
its opt-out keyword.

Built on :mod:`.store`'s transaction (bounded waits, retries, 503 when the database cannot store)
and :mod:`.dedup`'s table with its own kind, ``"inbound"``: a repeat of a stored message (same
``messageId``; without one, same sender, text and ``dateTime``) is acknowledged without a second
event. Without ``messageId`` and ``dateTime``, only repeats within
:data:`~.store.WINDOW_WITHOUT_ID` count as one message (a subscriber may send "YES" twice).

A reply that is an opt-out or opt-in keyword (:func:`~airflow_provider_orange_sms.opt_out.keyword_action`,
keywords from ``[orange_sms] opt_out_keywords`` / ``opt_in_keywords``) also records the sender's decision on
the opt-out list (:mod:`~airflow_provider_orange_sms.opt_out.variable_rows`), in the same transaction as the
event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from airflow_provider_orange_sms import opt_out
from airflow_provider_orange_sms.opt_out import WRITTEN, record_decision
from airflow_provider_orange_sms.receipts import INBOUND_ASSET_NAME, INBOUND_ASSET_URI, dedup
from airflow_provider_orange_sms.receipts.store import (
    INBOUND_KIND,
    WINDOW_WITHOUT_ID,
    StoreUnavailableError,
    add_event,
    dedup_retention,
    run_in_transaction,
)
from airflow_provider_orange_sms.settings import OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, SECTION

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from airflow_provider_orange_sms.receipts.reply_payload import SMSReply

#: ``opt_out`` of :class:`ReplyOutcome`: what the reply did to the opt-out list.
OPTED_OUT = "opted_out"
#: ``opt_out`` of :class:`ReplyOutcome`: the reply took its sender off the opt-out list.
OPTED_IN = "opted_in"
#: A keyword older than the stored decision: the list is unchanged.
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class ReplyOutcome:
    """
    What storing a reply did.

    :param stored: Whether an event was created (False for a repeat).
    :param opt_out: :data:`OPTED_OUT`, :data:`OPTED_IN`, :data:`SUPERSEDED`, or None when the
        message is no keyword (or a repeat).
    """

    stored: bool
    opt_out: str | None = None


def keywords() -> tuple[frozenset[str], frozenset[str]]:
    """
    The opt-out and opt-in keywords: ``[orange_sms] opt_out_keywords`` / ``opt_in_keywords``.

    Raises :class:`StoreUnavailableError` naming the value when one is set but holds no keyword
    (replies are then answered 503 until it is fixed: none is lost).
    """
    from airflow.configuration import conf

    return _parse_keywords(
        conf.get(SECTION, OPT_OUT_KEYWORDS, fallback=None),
        conf.get(SECTION, OPT_IN_KEYWORDS, fallback=None),
    )


def _parse_keywords(out_value: str | None, in_value: str | None) -> tuple[frozenset[str], frozenset[str]]:
    try:
        return opt_out.keyword_lists(out_value, in_value)
    except ValueError as exc:
        raise StoreUnavailableError(str(exc)) from None


def store_reply(message: SMSReply, *, now: datetime | None = None) -> ReplyOutcome:
    """
    Store ``message`` as one event of the inbound-messages asset unless it repeats a stored one,
    and record its opt-out or opt-in keyword.

    Raises :class:`StoreUnavailableError` when the database failed; nothing was stored then.

    :param message: The validated message.
    :param now: The time of receipt (defaults to now, UTC).
    """
    received = now or datetime.now(timezone.utc)
    retention = dedup_retention()
    opt_out_words, opt_in_words = keywords()
    action = opt_out.keyword_action(message.message, opt_out_words, opt_in_words)
    window = retention if message.message_id or message.sent_at else WINDOW_WITHOUT_ID

    def work(session: Session, callbacks: list[Callable[[], None]]) -> ReplyOutcome:
        # The dedup insert first: on SQLite it takes the write lock that serialises the opt-out update.
        if not dedup.claim(session, INBOUND_KIND, message.identity(), now=received, window=window):
            return ReplyOutcome(stored=False)
        extra = message.to_extra(received.isoformat())
        add_event(session, INBOUND_ASSET_NAME, INBOUND_ASSET_URI, extra, callbacks)
        if action is None:
            return ReplyOutcome(stored=True)
        record = opt_out.OptOutRecord.from_reply(
            action,
            message.sender,
            message.message,
            message_id=message.message_id,
            sent_at=message.sent_at,
            received_at=received,
        )
        if record_decision(session, record) != WRITTEN:
            return ReplyOutcome(stored=True, opt_out=SUPERSEDED)
        return ReplyOutcome(stored=True, opt_out=OPTED_OUT if record.opted_out else OPTED_IN)

    return run_in_transaction(work, "reply", retention)
