"""
Parse and validate the body of an Orange delivery receipt (DR). Pure: no Airflow, no I/O.

Orange posts::

    {"deliveryInfoNotification": {
        "callbackData": "<resource id of the send>",
        "deliveryInfo": {"address": "tel:+2250700000001", "deliveryStatus": "DeliveredToTerminal"}}}

``callbackData`` is reported empty (or missing) for some accounts: such a receipt is accepted with an
empty ``resource_id`` and matched by recipient downstream. Unknown keys are ignored (Orange may add
some); everything the provider relies on is checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

DELIVERED_TO_TERMINAL = "DeliveredToTerminal"
DELIVERED_TO_NETWORK = "DeliveredToNetwork"
DELIVERY_IMPOSSIBLE = "DeliveryImpossible"
DELIVERY_UNCERTAIN = "DeliveryUncertain"
MESSAGE_WAITING = "MessageWaiting"

#: Statuses after which no other receipt is expected for an SMS.
FINAL_STATUSES = frozenset(
    {DELIVERED_TO_TERMINAL, DELIVERED_TO_NETWORK, DELIVERY_IMPOSSIBLE, DELIVERY_UNCERTAIN}
)
#: Every status Orange documents; a receipt with any other status is refused.
STATUSES = frozenset(FINAL_STATUSES | {MESSAGE_WAITING})
#: The keys of every receipt event's ``extra``.
EXTRA_KEYS = ("resource_id", "recipient", "status", "received_at")

#: Longest resource id accepted (Orange's are 36-character UUIDs).
MAX_RESOURCE_ID_LENGTH = 128
_RESOURCE_ID_RE = re.compile(r"^[A-Za-z0-9._:~-]*$")
_ADDRESS_RE = re.compile(r"^(?:tel:)?\+(\d{8,15})$")
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


def parse_receipt(body: bytes) -> Receipt:
    """
    Parse a receipt body, or raise :class:`ReceiptError` saying what is wrong.

    :param body: The raw request body (UTF-8 JSON).
    """
    document = load_json(body, "delivery receipt")
    body_object = json_object(document, "body")
    notification = json_object(body_object.get("deliveryInfoNotification"), "deliveryInfoNotification")
    info = json_object(notification.get("deliveryInfo"), "deliveryInfoNotification.deliveryInfo")

    address = info.get("address")
    match = _ADDRESS_RE.match(address) if isinstance(address, str) else None
    if match is None:
        raise ReceiptError(
            422, f"Invalid deliveryInfo.address {shown(address)}: expected 'tel:+' and 8 to 15 digits"
        )
    status = info.get("deliveryStatus")
    if not isinstance(status, str) or status not in STATUSES:
        raise ReceiptError(
            422, f"Invalid deliveryInfo.deliveryStatus {shown(status)}: expected one of {sorted(STATUSES)}"
        )
    callback_data = notification.get("callbackData")
    if callback_data is None:
        callback_data = ""
    if (
        not isinstance(callback_data, str)
        or len(callback_data) > MAX_RESOURCE_ID_LENGTH
        or not _RESOURCE_ID_RE.match(callback_data.strip())
    ):
        raise ReceiptError(
            422,
            f"Invalid callbackData {shown(callback_data)}: expected the send's resource id (letters, "
            f"digits, '-', at most {MAX_RESOURCE_ID_LENGTH} characters) or an empty string",
        )
    return Receipt(resource_id=callback_data.strip(), recipient=f"tel:+{match.group(1)}", status=status)
