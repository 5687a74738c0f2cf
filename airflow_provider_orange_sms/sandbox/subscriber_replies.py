"""
The sandbox's subscribers replying: ``POST /_sandbox/inbound`` posts a reply to the
registered URL, in the OneAPI shape of Orange's "SMS response" service.

Orange takes the reply URL through a request form, not an API call; the sandbox takes it from
``SandboxConfig(inbound_url=…)`` (``--inbound-url``) or ``PUT /_sandbox/inbound-url``
``{"url": …}``. Like Orange, it tries again when the receiver answers 5xx or cannot be reached.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any

#: The number subscribers text unless a request names another (Côte d'Ivoire's sender number).
DEFAULT_DESTINATION = "2250000"
#: Tries per reply when the receiver answers 5xx or is unreachable.
ATTEMPTS = 4
#: Seconds before the second try; doubled for each further one.
FIRST_BACKOFF = 0.25


class ReplyRequestError(ValueError):
    """A ``POST /_sandbox/inbound`` body that cannot be turned into a reply (answered 400)."""


def reply_notification(request: dict[str, Any], default_destination: str) -> dict[str, Any]:
    """
    The OneAPI body Orange would post for the reply described by ``request``.

    :param request: ``{"sender": "+2250700000001", "message": "STOP"}`` and optionally
        ``destination`` (default: the account's number), ``message_id`` (default: a new one;
        ``null``: none, as some accounts receive), ``date_time`` (default: now, UTC; ``null``:
        none) and ``callback_data`` (default: none).
    :param default_destination: The account's sender number, digits only.
    """
    sender, message = request.get("sender"), request.get("message")
    if not isinstance(sender, str) or not sender.strip():
        raise ReplyRequestError(f"'sender' must be the subscriber's number, got {sender!r}")
    if not isinstance(message, str):
        raise ReplyRequestError(f"'message' must be the SMS text, got {message!r}")
    digits = sender.strip().removeprefix("tel:").removeprefix("+")
    sms: dict[str, Any] = {
        "senderAddress": f"tel:+{digits}",
        "destinationAddress": str(request.get("destination") or f"tel:+{default_destination}"),
        "message": message,
    }
    message_id = request.get("message_id", str(uuid.uuid4()))
    if message_id is not None:
        sms["messageId"] = str(message_id)
    date_time = request.get("date_time", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if date_time is not None:
        sms["dateTime"] = str(date_time)
    notification: dict[str, Any] = {"inboundSMSMessage": sms}
    if request.get("callback_data") is not None:
        notification["callbackData"] = str(request["callback_data"])
    return {"inboundSMSMessageNotification": notification}


def post_reply(url: str, body: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """
    POST ``body`` to ``url``, again after a 5xx or a connection failure (:data:`ATTEMPTS` tries).

    Returns ``{"status": <last HTTP status or error name>, "attempts": n, "response": <JSON or
    text>}``.

    :param url: The registered reply URL.
    :param body: The OneAPI notification.
    :param timeout: Seconds each try may take.
    """
    outcome: int | str = "not sent"
    answer: Any = None
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1:
            time.sleep(FIRST_BACKOFF * 2 ** (attempt - 2))
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                outcome, answer = response.status, _read(response)
        except urllib.error.HTTPError as exc:
            outcome, answer = exc.code, _read(exc)
        except Exception as exc:
            outcome, answer = type(exc).__name__, None
        if isinstance(outcome, int) and outcome < 500:
            break
    return {"status": outcome, "attempts": attempt, "response": answer}


def _read(response: Any) -> Any:
    text = response.read().decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text[:500]
