"""What a :class:`~.sms_batch.SMSBatch` did: why it stopped, its report, its progress lines.

A failed send is classified here: a refusal about one recipient does not stop the batch; a refusal
of the message, the sender or the credentials stops it at once (every further send would be refused
the same way); failures that look like an outage stop it after ``max_consecutive_failures`` in a
row. Which stops an Airflow retry can get past decides whether the task is retried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.exceptions import (
    OrangeSMSAuthError,
    OrangeSMSBadRequestError,
    OrangeSMSError,
    OrangeSMSNotFoundError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

#: Why a batch stopped before its end: the credentials were refused (no Airflow retry).
STOP_AUTH = "auth"
#: Orange refused the message or the sender itself (400, a 400 ``POL…`` too, or 404): no Airflow retry.
STOP_REQUEST = "request"
#: A policy refusal for the whole account (403 ``POL…``, e.g. no units left): retryable.
STOP_POLICY = "policy"
#: Failures in a row that look like an outage: retryable.
STOP_OUTAGE = "outage"
#: The sent ledger could not be written: retryable.
STOP_LEDGER = "ledger"
#: The input was refused before any request (e.g. no sender address): no Airflow retry.
STOP_INPUT = "input"
#: The send window closed for the next recipient: not a failure, the task waits for it to open.
STOP_WINDOW = "window"
#: A recipient's opt-out record could not be read: retryable (never taken for "not opted out").
STOP_OPT_OUT_UNREADABLE = "opt_out_unreadable"
#: A recipient's opt-out Variable holds something that is not a record: no Airflow retry.
STOP_OPT_OUT_INVALID = "opt_out_invalid"
#: Stops after which an Airflow retry would fail the same way.
FINAL_STOPS = frozenset({STOP_AUTH, STOP_REQUEST, STOP_INPUT, STOP_OPT_OUT_INVALID})

# Service errors about the message itself (SVC0280: too long), and those naming the part of the
# request they refuse in their variables ("senderAddress", "outboundSMSTextMessage.message", "address").
_MESSAGE_ERRORS = {"SVC0280"}
_PART_ERRORS = {"SVC0001", "SVC0002", "SVC0003"}


def result_entry(recipient: str, resource_id: str | None, status: str) -> dict[str, Any]:
    """
    Return one entry of SendSMSOperator's result list.

    :param recipient: Normalised address (``tel:+…``).
    :param resource_id: Orange's id of the SMS when it was sent, else ``None``.
    :param status: ``sent``, ``failed``, ``uncertain`` or ``opted_out``.
    """
    return {"recipient": recipient, "resource_id": resource_id, "status": status}


def failure_kind(error: OrangeSMSError) -> str:
    """
    Say what a failed send was about: ``"recipient"`` or one of the ``STOP_*`` kinds.

    :param error: The error the send raised.
    """
    if isinstance(error, OrangeSMSAuthError):
        return STOP_AUTH
    if isinstance(error, OrangeSMSBadRequestError):
        code = str(error.code or "").upper()
        if error.status_code == 403:
            return STOP_POLICY
        if code.startswith("POL"):
            # A policy refusal concerns the account or the sender, never one recipient: Orange's
            # page answers an unlisted sender name with "400 requestError" (POL0001).
            return STOP_REQUEST
        parts = " ".join(str(v) for v in error.variables).lower()
        if code in _MESSAGE_ERRORS or (code in _PART_ERRORS and ("sender" in parts or "message" in parts)):
            return STOP_REQUEST
        return "recipient"  # SVC0004, an invalid address, or a 400 that names nothing else
    if isinstance(error, OrangeSMSNotFoundError):
        return STOP_REQUEST  # the send URL holds only the sender: Orange does not know it
    return STOP_OUTAGE  # 429/5xx after retries, network failures, outcome unknown


def refused_for_good(error: OrangeSMSError) -> bool:
    """
    Whether Orange refused this send as invalid (a 400): the same request would be refused again.

    :param error: The error the send raised.
    """
    return isinstance(error, OrangeSMSBadRequestError) and error.status_code == 400


@dataclass
class BatchStop:
    """
    Why a batch stopped before its end.

    :param kind: One of the ``STOP_*`` constants.
    :param reason: What happened, for the task's failure message.
    """

    kind: str
    reason: str

    @property
    def retryable(self) -> bool:
        """Whether an Airflow retry may get further."""
        return self.kind not in FINAL_STOPS


class NotSent(Exception):
    """
    The batch stops before a recipient's request could leave (it counts as not attempted).

    :param stop: Why.
    """

    def __init__(self, stop: BatchStop) -> None:
        super().__init__(stop.reason)
        self.stop = stop


class OptedOutWhileWaiting(Exception):
    """A recipient opted out while its send waited for its token, its slot or a retry: not sent."""


@dataclass
class BatchReport:
    """
    What one try's batch did.

    :param sent_now: Recipients this try sent to.
    :param failures: ``(recipient, error)`` for each failed send.
    :param not_attempted: Recipients left unsent after an early stop.
    :param stop: Why the batch stopped early, if it did.
    :param opted_out: Recipients not sent because they are on the opt-out list.
    """

    sent_now: int = 0
    opted_out: int = 0
    failures: list[tuple[str, Exception]] = field(default_factory=list)
    not_attempted: int = 0
    stop: BatchStop | None = None


class Progress:
    """
    Logs sent/total, rate and ETA every 10% of the batch but at most every 10 SMS (a 50-SMS batch
    logs every 20%; under 10, once at the end), and at least every 30 s.

    The rate is measured between the first and the latest SMS (sends per interval between them),
    so it never reads above the pace the limiter allows, and reads below it when the sends are
    slower than their spacing.

    :param total: SMS in the batch.
    :param logger: Where the lines go.
    :param interval: Seconds between lines at most.
    :param clock: Monotonic clock (replaceable in tests).
    """

    def __init__(
        self, total: int, logger: Any, interval: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.log = logger
        self.interval = interval
        self.clock = clock
        self.done = 0
        self.first: float | None = None
        self.last_logged = clock()
        self.step_size = max(10, -(-total // 10))  # ceil(total / 10)
        self.next_count = self.step_size

    def step(self) -> None:
        """Count one more SMS handled and log when a line is due."""
        self.done += 1
        now = self.clock()
        if self.first is None:
            self.first = now
        if self.done < self.next_count and now - self.last_logged < self.interval and self.done != self.total:
            return
        while self.next_count <= self.done:
            self.next_count += self.step_size
        self.last_logged = now
        span = now - self.first
        if self.done < 2 or span <= 0:
            self.log.info(
                "Progress: %d/%d SMS processed (%.0f%%)",
                self.done,
                self.total,
                100.0 * self.done / self.total,
            )
            return
        rate = (self.done - 1) / span
        self.log.info(
            "Progress: %d/%d SMS processed (%.0f%%), %.1f/s, ETA %.0f s",
            self.done,
            self.total,
            100.0 * self.done / self.total,
            rate,
            (self.total - self.done) / rate,
        )


def stop_reason(kind: str, error: OrangeSMSError) -> str:
    """
    Say why a batch stops after ``error`` of stop kind ``kind``, for the task's failure message.

    :param kind: :data:`STOP_AUTH`, :data:`STOP_POLICY` or :data:`STOP_REQUEST`.
    :param error: The error the send raised.
    """
    if kind == STOP_AUTH:
        return f"Orange refused the credentials ({error}); every further send would fail too"
    if kind == STOP_POLICY:
        return f"Orange refused the send by policy for the whole account ({error})"
    return f"Orange refused the message or the sender itself ({error}); every recipient would get the same"
