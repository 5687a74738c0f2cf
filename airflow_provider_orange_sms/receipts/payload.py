"""
Parse and validate the body of an Orange delivery receipt (DR). Pure: no Airflow, no I/O.

Orange posts::

    {"deliveryInfoNotification": {
        "callbackData": "<resource id of the send>",
        "deliveryInfo": {"address": "tel:+2250700000001", "deliveryStatus": "DeliveredToTerminal"}}}

``callbackData`` is reported empty (or missing) for some accounts: such a receipt is accepted with an
empty ``resource_id`` and matched by recipient downstream. Unknown keys are ignored (Orange may add
some); everything the provider relies on is checked.

The variants of GSMA OneAPI and of real senders are accepted too: ``address`` with or without
``tel:`` and ``+`` (stored as ``tel:+<digits>``), ``deliveryInfo`` as a list (each element is a
receipt), the status ``DeliveryNotificationNotSupported``, and ``callbackData`` as a number or any
text without control characters.

:func:`orange_date_time` reads the ISO 8601 times of Orange's callbacks (a reply's ``dateTime``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_orange_sms.recipients import E164_DIGITS

DELIVERED_TO_TERMINAL = "DeliveredToTerminal"
DELIVERED_TO_NETWORK = "DeliveredToNetwork"
DELIVERY_IMPOSSIBLE = "DeliveryImpossible"
DELIVERY_UNCERTAIN = "DeliveryUncertain"
MESSAGE_WAITING = "MessageWaiting"
#: GSMA OneAPI's answer when the network cannot report delivery: no other receipt will come.
DELIVERY_NOTIFICATION_NOT_SUPPORTED = "DeliveryNotificationNotSupported"

#: Statuses after which no other receipt is expected for an SMS.
FINAL_STATUSES = frozenset(
    {
        DELIVERED_TO_TERMINAL,
        DELIVERED_TO_NETWORK,
        DELIVERY_IMPOSSIBLE,
        DELIVERY_UNCERTAIN,
        DELIVERY_NOTIFICATION_NOT_SUPPORTED,
    }
)
#: Every status Orange (or GSMA OneAPI) documents; a receipt with any other status is refused.
STATUSES = frozenset(FINAL_STATUSES | {MESSAGE_WAITING})
#: The keys of every receipt event's ``extra``.
EXTRA_KEYS = ("resource_id", "recipient", "status", "received_at")

#: Longest resource id accepted (Orange's are 36-character UUIDs).
MAX_RESOURCE_ID_LENGTH = 128
# Any text but control characters: some senders' callbackData hold spaces or '/'.
_RESOURCE_ID_RE = re.compile(r"^[^\x00-\x1f\x7f]*$")
# [0-9], not \d: \d also matches Arabic-Indic and other digits no recipient is written with.
_ADDRESS_RE = re.compile(rf"^(?i:tel:)?\+?({E164_DIGITS})$")
# A calendar date, then a time or nothing: pendulum alone would also read a bare time as today's,
# and week or ordinal dates no sender writes.
_DATE_TIME_START_RE = re.compile(r"^[0-9]{4}-?[0-9]{2}-?[0-9]{2}(?:[T ][0-9]|$)")
# Longest part of a bad value quoted in an error message.
_SHOWN_CHARACTERS = 80


class ReceiptError(ValueError):
    """
    A request body that is not an acceptable delivery receipt.

    :param status_code: The HTTP status to answer: 400 (not JSON) or 422 (JSON of the wrong shape).
    :param message: What is wrong, naming the bad value (receipts hold no secret).
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class Receipt:
    """
    One validated delivery receipt.

    :param resource_id: The send's resource id (Orange's ``callbackData``); ``""`` when Orange sent
        none.
    :param recipient: The recipient as ``tel:+<digits>``.
    :param status: One of :data:`STATUSES`.
    """

    resource_id: str
    recipient: str
    status: str

    @property
    def is_final(self) -> bool:
        """Whether no further receipt is expected after this one."""
        return self.status in FINAL_STATUSES

    def to_extra(self, received_at: str) -> dict[str, str]:
        """
        The asset event's ``extra`` for this receipt.

        :param received_at: When the receiver accepted it (ISO 8601, UTC).
        """
        return {
            "resource_id": self.resource_id,
            "recipient": self.recipient,
            "status": self.status,
            "received_at": received_at,
        }


def json_object(value: Any, where: str) -> dict[str, Any]:
    """
    ``value`` if it is a JSON object, else :class:`ReceiptError` 422 naming ``where``.

    :param value: A parsed JSON value.
    :param where: Its place in the body, for the message.
    """
    if not isinstance(value, dict):
        raise ReceiptError(422, f"Invalid {where}: expected a JSON object, got {shown(value)}")
    return value


def shown(value: Any) -> str:
    """
    A short description of a JSON value for an error message, whatever its size or depth.

    :param value: A parsed JSON value.
    """
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if isinstance(value, str) and len(value) > _SHOWN_CHARACTERS:
        return repr(value[:_SHOWN_CHARACTERS]) + "..."
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**_SHOWN_CHARACTERS:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def load_json(body: bytes, what: str) -> Any:
    """
    The JSON document in ``body``, or :class:`ReceiptError` 400 saying why it is not JSON.

    :param body: The raw request body (UTF-8 JSON).
    :param what: What the body should be, for the message ("delivery receipt").
    """
    try:
        return json.loads(body)
    except RecursionError:
        # A few kilobytes of "[[[[…" exhaust the parser's recursion limit.
        raise ReceiptError(400, f"Invalid {what}: the body's JSON is nested too deeply to be one") from None
    except ValueError as exc:
        # JSONDecodeError and UnicodeDecodeError, but also Python's limit on integer digits
        # (a 5,000-digit number): all are bad input, none is the receiver's failure.
        reason = str(exc)[:200]
        raise ReceiptError(400, f"Invalid {what}: the body is not JSON ({reason})") from None


def orange_date_time(value: object, where: str) -> datetime | None:
    """
    Read a time Orange sent (ISO 8601) as an aware UTC datetime, the same on every Python version.

    Accepts ``Z``, ``+00:00``, ``+0000`` or no offset (UTC, as OneAPI times are), fractional
    seconds and a space for ``T`` (``2014-04-15T07:40:13.1+0000``), a date alone (its midnight, UTC);
    ``None`` or ``""`` gives ``None``.

    :param value: The JSON value.
    :param where: Its place in the body, for the message.
    :raises ReceiptError: 422 naming the value when it is no date and time, or one outside the
        years 1 to 9999 once in UTC.
    """
    if value is None or value == "":
        return None
    text = value.strip() if isinstance(value, str) else ""
    moment = None
    if len(text) <= 64 and _DATE_TIME_START_RE.match(text):
        import pendulum  # imported here: the pure parsers stay cheap to import

        try:
            parsed = pendulum.parse(text, strict=True)
            if isinstance(parsed, datetime):
                offset = parsed.utcoffset() or timedelta(0)
                moment = datetime(
                    parsed.year,
                    parsed.month,
                    parsed.day,
                    parsed.hour,
                    parsed.minute,
                    parsed.second,
                    parsed.microsecond,
                    tzinfo=timezone(offset),
                ).astimezone(timezone.utc)
        except (ValueError, OverflowError):  # ParserError is a ValueError; 9999-12-31T23:59-12:00
            moment = None
    if moment is None:
        raise ReceiptError(
            422,
            f"Invalid {where} {shown(value)}: expected an ISO 8601 date and time such as "
            "2026-02-10T14:30:00Z (years 1 to 9999 in UTC)",
        )
    return moment


def _resource_id(callback_data: object) -> str:
    """``callbackData`` as the send's resource id (``""`` when absent), or 422 naming it."""
    if callback_data is None:
        return ""
    text: str | None = None
    if isinstance(callback_data, str):
        text = callback_data.strip()
    elif isinstance(callback_data, int) and not isinstance(callback_data, bool):
        if abs(callback_data) < 10**MAX_RESOURCE_ID_LENGTH:
            text = str(callback_data)
    elif isinstance(callback_data, float) and math.isfinite(callback_data):
        text = str(int(callback_data)) if callback_data.is_integer() else repr(callback_data)
    if text is None or len(text) > MAX_RESOURCE_ID_LENGTH or not _RESOURCE_ID_RE.fullmatch(text):
        raise ReceiptError(
            422,
            f"Invalid callbackData {shown(callback_data)}: expected the send's resource id (text "
            f"without control characters, or a number; at most {MAX_RESOURCE_ID_LENGTH} characters) "
            "or an empty string",
        )
    return text


def _receipt(info: object, where: str, resource_id: str) -> Receipt:
    info = json_object(info, f"deliveryInfoNotification.{where}")
    address = info.get("address")
    match = _ADDRESS_RE.fullmatch(address.strip()) if isinstance(address, str) else None
    if match is None:
        raise ReceiptError(
            422,
            f"Invalid {where}.address {shown(address)}: expected an international number such as "
            "tel:+2250700000001 (8 to 15 digits 0-9, 'tel:' and '+' optional)",
        )
    status = info.get("deliveryStatus")
    if not isinstance(status, str) or status not in STATUSES:
        raise ReceiptError(
            422, f"Invalid {where}.deliveryStatus {shown(status)}: expected one of {sorted(STATUSES)}"
        )
    return Receipt(resource_id=resource_id, recipient=f"tel:+{match.group(1)}", status=status)


def parse_receipts(body: bytes) -> list[Receipt]:
    """
    Parse a receipt body into its receipts (one per ``deliveryInfo`` element; Orange sends one),
    or raise :class:`ReceiptError` saying what is wrong: a bad element refuses the whole body.

    :param body: The raw request body (UTF-8 JSON).
    """
    document = load_json(body, "delivery receipt")
    body_object = json_object(document, "body")
    notification = json_object(body_object.get("deliveryInfoNotification"), "deliveryInfoNotification")
    resource_id = _resource_id(notification.get("callbackData"))
    info = notification.get("deliveryInfo")
    if not isinstance(info, list):
        return [_receipt(info, "deliveryInfo", resource_id)]
    if not info:
        raise ReceiptError(
            422, "Invalid deliveryInfoNotification.deliveryInfo: an empty list holds no receipt"
        )
    return [_receipt(item, f"deliveryInfo[{index}]", resource_id) for index, item in enumerate(info)]


def parse_receipt(body: bytes) -> Receipt:
    """
    Parse a body holding one receipt, or raise :class:`ReceiptError` saying what is wrong
    (:func:`parse_receipts` reads a ``deliveryInfo`` list of several).

    :param body: The raw request body (UTF-8 JSON).
    """
    receipts = parse_receipts(body)
    if len(receipts) > 1:
        raise ReceiptError(
            422,
            f"Invalid deliveryInfoNotification.deliveryInfo: {len(receipts)} receipts where one was expected",
        )
    return receipts[0]
