"""The send loop of :class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator`.

One SMS at a time, each bracketed by the sent ledger: the recipient is recorded "in flight" right
before its request leaves (after the token fetch, at the end of the throttle wait: a try killed
while waiting leaves the recipient unsent, and the next try sends it), and its outcome in the same
ledger write as the next recipient's "in flight" (one write per SMS, timed by the throttle so it
costs no slot), or at the end of the batch; when the next slot is far enough (a long throttle
wait), the outcome is written on its own first, at the start of the wait. No request leaves while
the record of the previous one is not durable, and the batch does not return before every outcome
is; a try killed between an answer and the write of its outcome leaves the recipient "in flight"
(reported uncertain, never sent twice). A failure
decides whether the batch goes on: a refusal about one recipient does not stop it; a refusal of
the message, the sender or the credentials stops it at once (every further send would be refused
the same way); failures that look like an outage stop it after ``max_consecutive_failures`` in a
row. Before each send the recipient's opt-out record is read (when the list is honoured): an opted-out
recipient is reported ``opted_out`` and skipped; a record that cannot be read stops the batch
before that recipient's send.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.exceptions import (
    OrangeSMSAuthError,
    OrangeSMSBadRequestError,
    OrangeSMSError,
    OrangeSMSNotFoundError,
    OrangeSMSSendUncertainError,
)
from airflow_provider_orange_sms.operators._opt_out_check import (
    OPTED_OUT,
    OptOutCheck,
    OptOutListUnreadableError,
)
from airflow_provider_orange_sms.operators._sent_ledger import (
    FAILED,
    IN_FLIGHT,
    SENT,
    UNCERTAIN,
    LedgerUnavailableError,
    SentLedger,
)
from airflow_provider_orange_sms.throttle import SendRecord

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
    so it never reads above the pace the throttle allows, and reads below it when the sends are
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


def send_batch(
    send: Callable[[str, Callable[[], None]], str],
    pending: list[str],
    ledger: SentLedger,
    results: dict[str, dict[str, Any]],
    *,
    max_consecutive_failures: int,
    logger: Any,
    may_send: Callable[[str], bool] | None = None,
    opt_out: OptOutCheck | None = None,
) -> BatchReport:
    """
    Send to each pending recipient in order, each bracketed by the ledger; fill ``results``.

    :param send: Sends one SMS to a recipient and returns Orange's resource id; calls its second
        argument right before the request leaves (after the token fetch and the throttle wait),
        which records the recipient "in flight" (if that raises, nothing is sent).
    :param pending: Normalised recipients not handled by an earlier try.
    :param ledger: The task instance's ledger, already loaded.
    :param results: Filled with one :func:`result_entry` per recipient attempted.
    :param max_consecutive_failures: Stop after this many outage-like failures in a row (0: never).
    :param logger: Where progress and failures are logged.
    :param may_send: Asked before each recipient after the first; ``False`` stops the batch with
        :data:`STOP_WINDOW` (e.g. quiet hours began).
    :param opt_out: Reads each recipient's opt-out record right before its send (before its token
        fetch and throttle wait, so a skipped recipient costs no throttle slot).
    """
    report = BatchReport()
    # Outcomes not written yet: they go with the next "in flight" write, or at the end.
    unwritten: list[tuple[str, str | None, str]] = []
    try:
        _send_each(
            send,
            pending,
            ledger,
            results,
            report,
            unwritten,
            max_consecutive_failures,
            logger,
            may_send,
            opt_out,
        )
    except BaseException:
        with contextlib.suppress(LedgerUnavailableError):
            if unwritten:
                ledger.append(unwritten)
        raise
    if unwritten:
        try:
            ledger.append(unwritten)
        except LedgerUnavailableError as exc:
            report.stop = BatchStop(
                STOP_LEDGER,
                f"{exc}; the outcome of {len(unwritten)} SMS is not recorded, so later tries report them "
                "uncertain",
            )
            logger.error("Stopping the batch: %s", report.stop.reason)
    return report


def _send_each(
    send: Callable[[str, Callable[[], None]], str],
    pending: list[str],
    ledger: SentLedger,
    results: dict[str, dict[str, Any]],
    report: BatchReport,
    unwritten: list[tuple[str, str | None, str]],
    max_consecutive_failures: int,
    logger: Any,
    may_send: Callable[[str], bool] | None,
    opt_out: OptOutCheck | None,
) -> None:
    """The loop of :func:`send_batch`; leaves the outcomes not yet written in ``unwritten``."""
    progress = Progress(len(pending), logger) if pending else None
    consecutive = 0
    for index, address in enumerate(pending):
        if index and may_send is not None and not may_send(address):
            report.stop = BatchStop(STOP_WINDOW, "the send window closed")
            report.not_attempted = len(pending) - index
            logger.info("The send window closed; %d SMS wait for it to open", report.not_attempted)
            break
        if opt_out is not None and opt_out.enabled:
            try:
                record = opt_out.opted_out(address)
            except OptOutListUnreadableError as exc:
                kind = STOP_OPT_OUT_UNREADABLE if exc.retryable else STOP_OPT_OUT_INVALID
                report.stop = BatchStop(kind, f"{exc}; the SMS to {address} was not sent")
                report.not_attempted = len(pending) - index
                logger.error(
                    "Stopping the batch: %s; %d SMS not attempted", report.stop.reason, report.not_attempted
                )
                break
            if record is not None:
                logger.info(
                    "Not sending to %s: on the opt-out list since %s (%s)", address, record.at, record.source
                )
                results[address] = result_entry(address, None, OPTED_OUT)
                report.opted_out += 1
                if progress is not None:
                    progress.step()
                continue
        in_flight = False

        def record_in_flight(address: str = address) -> None:
            nonlocal in_flight
            ledger.append([*unwritten, (address, None, IN_FLIGHT)])
            unwritten.clear()
            in_flight = True

        def record_outcomes() -> bool:
            if not unwritten:
                return False
            ledger.append(unwritten)
            unwritten.clear()
            return True

        resource_id: str | None = None
        stop: BatchStop | None = None
        try:
            resource_id = send(address, SendRecord(record_in_flight, record_outcomes))
            status = SENT
        except LedgerUnavailableError as exc:  # "in flight" could not be recorded: nothing left
            # Its write carried the outcome before it: not retried (it would record this one "in
            # flight" too), so later tries report that one uncertain.
            unwritten.clear()
            report.stop = BatchStop(STOP_LEDGER, f"{exc}; the SMS to {address} was not sent")
            report.not_attempted = len(pending) - index
            logger.error(
                "Stopping the batch: %s; %d SMS not attempted", report.stop.reason, report.not_attempted
            )
            break
        except OrangeSMSSendUncertainError as exc:
            logger.warning("Outcome unknown for the SMS to %s (not retried): %s", address, exc)
            status = UNCERTAIN
            report.failures.append((address, exc))
            consecutive += 1
        except OrangeSMSError as exc:
            logger.error("SMS to %s failed: %s", address, exc)
            status = FAILED
            report.failures.append((address, exc))
            kind = failure_kind(exc)
            if kind == "recipient":
                consecutive = 0
            elif kind != STOP_OUTAGE:
                stop = BatchStop(kind, _stop_reason(kind, exc))
            else:
                consecutive += 1
        except ValueError as exc:  # refused by the client before any request
            status = FAILED
            report.failures.append((address, exc))
            stop = BatchStop(STOP_INPUT, str(exc))
        else:
            consecutive = 0
            report.sent_now += 1
        if stop is None and max_consecutive_failures and consecutive >= max_consecutive_failures:
            stop = BatchStop(
                STOP_OUTAGE,
                f"{consecutive} sends in a row failed for reasons that are not about one recipient "
                "(Orange unreachable or failing?)",
            )
        results[address] = result_entry(address, resource_id, status)
        if progress is not None:
            progress.step()
        if in_flight:  # no request left otherwise: nothing to correct in the ledger
            unwritten.append((address, resource_id, status))
        if stop is not None:
            report.not_attempted = len(pending) - index - 1
            report.stop = stop
            logger.error("Stopping the batch: %s; %d SMS not attempted", stop.reason, report.not_attempted)
            break


def _stop_reason(kind: str, error: OrangeSMSError) -> str:
    if kind == STOP_AUTH:
        return f"Orange refused the credentials ({error}); every further send would fail too"
    if kind == STOP_POLICY:
        return f"Orange refused the send by policy for the whole account ({error})"
    return f"Orange refused the message or the sender itself ({error}); every recipient would get the same"
