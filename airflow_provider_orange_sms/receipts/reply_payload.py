"""
Parse and validate a reply (an SMS a subscriber sent to the account's number). Pure: no Airflow, no I/O.

Orange's "SMS response" service posts, in the OneAPI shape::

    {"inboundSMSMessageNotification": {
        "inboundSMSMessage": {"senderAddress": "tel:+2250700000001", "destinationAddress": "tel:+2250000",
                              "message": "STOP", "messageId": "…", "dateTime": "2026-02-10T14:30:00Z"},
        "callbackData": "…"}}

Addresses come with or without ``tel:`` and ``+`` (a sender also with ``00``); ``messageId``,
``dateTime`` and ``callbackData`` may be absent. Unknown keys are ignored; everything the provider
relies on is checked, and a bad value is answered with
:class:`~airflow_provider_orange_sms.receipts.payload.ReceiptError` naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_orange_sms.receipts.payload import (
    ReceiptError,
    json_object,
    load_json,
    orange_date_time,
    shown,
)
from airflow_provider_orange_sms.recipients import E164_DIGITS

if TYPE_CHECKING:
    from datetime import datetime

#: The keys of every reply event's ``extra``.
REPLY_EXTRA_KEYS = (
    "sender",
    "destination",
    "message",
    "message_id",
    "sent_at",
    "callback_data",
    "received_at",
)
#: Longest accepted ``messageId`` / ``callbackData``.
MAX_ID_LENGTH = 128
#: Longest accepted text: a concatenated SMS of 255 parts of 153 characters.
MAX_MESSAGE_LENGTH = 255 * 153
# [0-9], not \d: \d also matches Arabic-Indic and other digits, which no number on the list is.
# ``00`` is the international prefix as ``+`` is (no country code starts with 0): a STOP refused
# for its form would never reach the list.
_SENDER_RE = re.compile(rf"^(?i:tel:)?(?:\+|00)?({E164_DIGITS})$")
# Destinations include short codes (e.g. 4 digits), with or without the country code.
_DESTINATION_RE = re.compile(r"^(?i:tel:)?\+?([0-9]{3,15})$")
_ID_RE = re.compile(r"^[^\x00-\x1f\x7f]*$")
_WHERE = "inboundSMSMessageNotification.inboundSMSMessage"


@dataclass(frozen=True)
class SMSReply:
    """
    One validated reply.

    :param sender: Who sent it: E.164 with ``+`` (``+2250700000001``).
    :param destination: The number it was sent to, ``+`` and digits, whichever form Orange used.
    :param message: Its text, as received.
    :param message_id: Orange's ``messageId``; ``""`` when absent.
    :param sent_at: Orange's ``dateTime`` (ISO 8601, UTC); ``None`` when absent.
    :param callback_data: Orange's ``callbackData``; ``""`` when absent.
    """

    sender: str
    destination: str
    message: str
    message_id: str = ""
    sent_at: datetime | None = None
    callback_data: str = ""

    def identity(self) -> tuple[str, ...]:
        """
        What makes two posts the same message: the ``messageId``, else sender, text and
        ``dateTime`` (``dateTime`` empty when absent: then only close repeats match).
        """
        if self.message_id:
            return ("id", self.message_id)
        return ("text", self.sender, self.message, self.sent_at.isoformat() if self.sent_at else "")

    def to_extra(self, received_at: str) -> dict[str, str]:
        """
        The asset event's ``extra`` for this message (keys :data:`REPLY_EXTRA_KEYS`).

        :param received_at: When the receiver accepted it (ISO 8601, UTC).
        """
        return {
            "sender": self.sender,
            "destination": self.destination,
            "message": self.message,
            "message_id": self.message_id,
            "sent_at": self.sent_at.isoformat() if self.sent_at else "",
            "callback_data": self.callback_data,
            "received_at": received_at,
        }


def _optional_id(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not _ID_RE.match(value.strip()):
        raise ReceiptError(
            422,
            f"Invalid {name} {shown(value)}: expected text without control characters, at most "
            f"{MAX_ID_LENGTH} characters, or no {name}",
        )
    return value.strip()


def parse_reply(body: bytes) -> SMSReply:
    """
    Parse a reply body, or raise :class:`ReceiptError` (400 not JSON, 422 wrong shape)
    saying what is wrong.

    :param body: The raw request body (UTF-8 JSON).
    """
    document = load_json(body, "reply")
    notification = json_object(
        json_object(document, "body").get("inboundSMSMessageNotification"), "inboundSMSMessageNotification"
    )
    sms = json_object(notification.get("inboundSMSMessage"), _WHERE)

    sender = sms.get("senderAddress")
    sender_match = _SENDER_RE.fullmatch(sender.strip()) if isinstance(sender, str) else None
    if sender_match is None:
        raise ReceiptError(
            422,
            f"Invalid {_WHERE}.senderAddress {shown(sender)}: expected an international number such "
            "as tel:+2250700000001 (7 to 15 digits)",
        )
    destination = sms.get("destinationAddress")
    destination_match = (
        _DESTINATION_RE.fullmatch(destination.strip()) if isinstance(destination, str) else None
    )
    if destination_match is None:
        raise ReceiptError(
            422,
            f"Invalid {_WHERE}.destinationAddress {shown(destination)}: expected a number such as "
            "tel:+2250000 or 2250000",
        )
    text = sms.get("message")
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_LENGTH:
        raise ReceiptError(
            422,
            f"Invalid {_WHERE}.message {shown(text)}: expected text of at most {MAX_MESSAGE_LENGTH} "
            "characters",
        )
    return SMSReply(
        sender="+" + sender_match.group(1),
        destination="+" + destination_match.group(1),
        message=text,
        message_id=_optional_id(sms.get("messageId"), f"{_WHERE}.messageId"),
        sent_at=orange_date_time(sms.get("dateTime"), f"{_WHERE}.dateTime"),
        callback_data=_optional_id(notification.get("callbackData"), "callbackData"),
    )
