"""One batch of :class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator`: its plan,
its sent ledger, its send window, the send loop and its report.

One SMS at a time, each bracketed by the sent ledger: the recipient is recorded "in flight" right
before its request leaves (after the token fetch, at the end of the limiter's wait: a try killed
while waiting leaves the recipient unsent, and the next try sends it). Its outcome is written on its
own at the start of the next wait when the next slot leaves time for that write (so a try killed
while waiting has it recorded), otherwise in the same write as the next recipient's "in flight"
(then the write costs no slot), and at the latest at the end of the batch. No request leaves while
the record of the previous one is not durable, and the batch does not return before every outcome
is; a try killed between an answer and the write of its outcome leaves the recipient "in flight"
(reported uncertain, never sent twice). A failure decides whether the batch goes on (see
:mod:`.batch_report`). Before each send the recipient's opt-out record is read (when the list
is honoured), and again right before its request leaves (after the token fetch and the limiter's
wait): an opted-out recipient is reported ``opted_out`` and skipped; a record that cannot be read
stops the batch before that recipient's send.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_orange_sms.batch.batch_report import (
    STOP_INPUT,
    STOP_LEDGER,
    STOP_OPT_OUT_INVALID,
    STOP_OPT_OUT_UNREADABLE,
    STOP_OUTAGE,
    STOP_WINDOW,
    BatchReport,
    BatchStop,
    NotSent,
    OptedOutWhileWaiting,
    Progress,
    failure_kind,
    refused_for_good,
    result_entry,
    stop_reason,
)
from airflow_provider_orange_sms.batch.send_plan import build_plan, log_plan
from airflow_provider_orange_sms.exceptions import OrangeSMSError, OrangeSMSSendUncertainError
from airflow_provider_orange_sms.ledger import (
    FAILED,
    IN_FLIGHT,
    RELEASED,
    SENT,
    UNCERTAIN,
    LedgerUnavailableError,
    SentLedger,
)
from airflow_provider_orange_sms.limit import SendRecord
from airflow_provider_orange_sms.opt_out import (
    OPTED_OUT,
    OptOutCheck,
    OptOutListUnreadableError,
)
from airflow_provider_orange_sms.recipients import country_of
from airflow_provider_orange_sms.segments import message_cost
from airflow_provider_orange_sms.settings import PARTIAL_RESULTS_KEY
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from airflow_provider_orange_sms.batch.send_window import SendWindow

    # (recipient, its "in flight" record, the check before each retry) -> Orange's resource id
    _SendOne = Callable[[str, Callable[[], None], Callable[[], None]], str]

#: XCom key of SendSMSOperator's results when the task fails (``return_value`` is only set on success).
#: Uncertain recipients named in a task failure (all of them are in XCom ``sms_results``).
_NAMED_UNCERTAIN = 20


class SMSBatch:
    """
    The SMS one try of a SendSMSOperator task sends, and what became of each.

    The steps, in order: :meth:`plan`, :meth:`skip_handled_by_earlier_tries`,
    :meth:`hold_back_outside_window`, :meth:`send`; then :attr:`failed`, :attr:`left` and
    :attr:`uncertain` say how the try ends, :meth:`fail` ends it with exact counts, and
    :meth:`expire_old_ledgers` tidies up after a success.

    :param texts: The text of each normalised recipient, in input order.
    :param senders: The sender number of each recipient.
    :param ledger: The task instance's sent ledger (not loaded yet; off without a task instance).
    :param opt_out: Reads each recipient's opt-out record right before its send.
    :param window: The send window, or ``None`` to send at any time.
    :param clock: The current time (the operator's, replaceable in tests).
    :param logger: Where the plan, progress and failures are logged.
    :param max_consecutive_failures: Stop after this many outage-like failures in a row (0: never).
    :param settle: Settles uncertain recipients from delivery receipts (given the ledger and each
        one's "in flight" time; returns the resource id of each settled one), or ``None``.
    :param release: Uncertain recipients the user released for resending (``release_uncertain``).
    """

    def __init__(
        self,
        texts: dict[str, str],
        senders: dict[str, str],
        ledger: SentLedger,
        *,
        opt_out: OptOutCheck,
        window: SendWindow | None,
        clock: Callable[[], datetime],
        logger: Any,
        max_consecutive_failures: int,
        settle: Callable[[SentLedger, dict[str, float | None]], dict[str, str]] | None = None,
        release: frozenset[str] = frozenset(),
    ) -> None:
        self.texts = texts
        self.senders = senders
        self.ledger = ledger
        self.opt_out = opt_out
        self.window = window
        self.clock = clock
        self.log = logger
        self.max_consecutive_failures = max_consecutive_failures
        self.settle = settle
        self.release = release
        self.addresses = list(texts)
        #: Recipients this try is to send to now (after :meth:`skip_handled_by_earlier_tries` and
        #: :meth:`hold_back_outside_window`).
        self.pending = list(self.addresses)
        #: Recipients whose send window is closed at the start of this try.
        self.waiting: list[str] = []
        #: Each recipient's contract country and segments (from :meth:`plan`).
        self.costs: dict[str, tuple[str | None, int]] = {}
        self.report = BatchReport()
        self._plan: dict[str, Any] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._consecutive = 0
        # Outcomes not written yet: they go with the next ledger write, or at the end of the batch.
        self._unwritten: list[tuple[str, str | None, str]] = []
        self._shapes: dict[str, dict[str, Any]] = {}

    @property
    def results(self) -> list[dict[str, Any]]:
        """
        One ``{"recipient", "resource_id", "status", "country", "encoding", "segments"}`` per
        recipient handled, in input order.
        """
        return [self._results[address] for address in self.addresses if address in self._results]

    def _entry(self, address: str, resource_id: str | None, status: str) -> dict[str, Any]:
        """The result of ``address``, with its country and its message's encoding and segments."""
        shape = self._shapes.get(address)
        if shape is None:
            cost = message_cost(self.texts[address])
            shape = self._shapes[address] = {
                "country": country_of(address) or "unknown",
                "encoding": cost.encoding,
                "segments": cost.segments,
            }
        return {**result_entry(address, resource_id, status), **shape}

    def plan(self) -> dict[str, Any]:
        """
        Log and return the plan (recipients, SMS and segments per country and per contract, and the
        sent ledger's key: ``ledger``, ``None`` when it is off).
        """
        self._plan, self.costs = build_plan(self.texts, self.senders, dry_run=False)
        self._plan["ledger"] = self.ledger.key  # where the delivery view reads progress while it sends
        log_plan(self._plan, self.log)
        return self._plan

    def plan_with_opted_out(self) -> dict[str, Any]:
        """The plan again, ``opted_out`` counting the recipients not sent because of the list."""
        self._plan["opted_out"] = sum(1 for entry in self.results if entry["status"] == OPTED_OUT)
        return self._plan

    def skip_handled_by_earlier_tries(self) -> None:
        """
        Read the sent ledger; report the recipients an earlier try sent to (or may have), and leave
        them out of :attr:`pending`. An uncertain one is first settled from its delivery receipt
        when one can only belong to it (then ``sent``), else sent again when the user released it.

        :raises AirflowException: When the ledger cannot be read, or a release cannot be recorded
            (before any send).
        """
        try:
            earlier = self.ledger.load()
        except LedgerUnavailableError as exc:
            raise AirflowException(
                f"Not sending any SMS: {exc}. Without the sent ledger, recipients an earlier try reached "
                "could be texted twice, so this try fails before any send (Airflow may retry it)."
            ) from exc
        unresolved = {
            address: entry.in_flight_at
            for address, entry in earlier.items()
            if address in self.texts and entry.may_have_been_sent and entry.status != SENT
        }
        settled = self.settle(self.ledger, unresolved) if unresolved and self.settle is not None else {}
        released = self._release([address for address in unresolved if address not in settled])
        for address in self.addresses:
            entry = earlier.get(address)
            if entry is None or not entry.may_have_been_sent or address in released:
                continue
            if entry.status == SENT or address in settled:
                self._results[address] = self._entry(address, settled.get(address, entry.resource_id), SENT)
                continue
            self._results[address] = self._entry(address, None, UNCERTAIN)
            self.log.warning(
                "Not sending to %s again: an earlier try's send to it has no recorded outcome (%s); "
                "check its delivery receipt or Orange's statistics",
                address,
                entry.status,
            )
        if self._results:
            self.log.info(
                "Sent ledger: %d of %d recipient(s) were handled by an earlier try and are skipped",
                len(self._results),
                len(self.addresses),
            )
        self.pending = [address for address in self.addresses if address not in self._results]

    def _release(self, uncertain: list[str]) -> set[str]:
        """Record the release of the uncertain recipients the user released; return them."""
        released = [address for address in uncertain if address in self.release]
        for address in sorted(self.release - set(released)):
            self.log.info(
                "release_uncertain: %s is not uncertain in this task's ledger; nothing to release", address
            )
        if not released:
            return set()
        try:
            self.ledger.append([(address, None, RELEASED) for address in released])
        except LedgerUnavailableError as exc:
            raise AirflowException(f"Not sending any SMS: cannot record the release ({exc})") from exc
        for address in released:
            self.log.warning(
                "Sending to %s again: released by release_uncertain (an earlier try's send to it has no "
                "known outcome; if Orange did take it, the recipient gets this SMS twice)",
                address,
            )
        return set(released)

    def hold_back_outside_window(self) -> None:
        """Move the recipients whose send window is closed now from :attr:`pending` to :attr:`waiting`."""
        window = self.window
        if window is None:
            return
        now = self.clock()
        self.waiting = [address for address in self.pending if not window.is_open(address, now)]
        self.pending = [address for address in self.pending if window.is_open(address, now)]
        if self.waiting:  # said at the start: a run triggered at night waits hours
            self.log.info(
                "%d recipient(s) outside the send window %s: deferring until it opens at %s (%s), "
                "next at %s UTC",
                len(self.waiting),
                f"{window.start:%H:%M}-{window.end:%H:%M}",
                f"{window.start:%H:%M}",
                "each recipient's local time" if window.per_recipient else f"{window.timezone} time",
                f"{min(window.next_opening(a, now) for a in self.waiting):%Y-%m-%d %H:%M}",
            )

    def send(self, send_one: Callable[[str, Callable[[], None], Callable[[], None]], str]) -> BatchReport:
        """
        Send to each pending recipient in order, each bracketed by the ledger, until the end or a stop.

        :param send_one: Sends one SMS to a recipient and returns Orange's resource id; calls its
            second argument right before the request leaves (after the token fetch and the limiter
            wait), which records the recipient "in flight" (if that raises, nothing is sent); it
            is a :class:`~airflow_provider_orange_sms.limit.file_limiter.SendRecord`, so the limiter can also
            write the previous outcome on its own when the wait leaves time for it. Its third
            argument runs right before each retry of the request (the opt-out record read again).
        """
        try:
            self._send_each(send_one)
        except BaseException:
            with contextlib.suppress(LedgerUnavailableError):
                self._write_outcomes()
            raise
        try:
            self._write_outcomes()
        except LedgerUnavailableError as exc:
            count = len(self._unwritten)
            lost = f"{exc}; the outcome of {count} SMS is not recorded, so later tries report them uncertain"
            earlier = self.report.stop
            if earlier is None or earlier.kind == STOP_WINDOW:
                self.report.stop = BatchStop(
                    STOP_LEDGER, lost if earlier is None else f"{earlier.reason}, then {lost}"
                )
            else:
                # Keep the stop the user must act on, and let its kind decide the retry: after a final
                # one (credentials, the message) every retry would fail the same way; after a
                # retryable one a retry goes on. The lost outcomes change neither: any later try skips
                # those recipients and reports them uncertain, never sends them twice.
                self.report.stop = BatchStop(earlier.kind, f"{earlier.reason}; then {lost}")
            self.log.error("Stopping the batch: %s", self.report.stop.reason)
        return self.report

    def _write_outcomes(self) -> bool:
        """Write the outcomes not written yet; return whether there were any."""
        if not self._unwritten:
            return False
        self.ledger.append(self._unwritten)
        self._unwritten = []
        return True

    def _send_each(self, send_one: _SendOne) -> None:
        """The loop of :meth:`send`; leaves the outcomes not written yet in ``_unwritten``."""
        self.log.info(
            "Sending %d SMS (%d recipient(s) in total%s)",
            len(self.pending),
            len(self.addresses),
            f", {len(self.waiting)} outside the send window" if self.waiting else "",
        )
        progress = Progress(len(self.pending), self.log) if self.pending else None
        for index, address in enumerate(self.pending):
            left = len(self.pending) - index
            if index and self.window is not None and not self.window.is_open(address, self.clock()):
                self.report.stop = BatchStop(STOP_WINDOW, "the send window closed")
                self.report.not_attempted = left
                self.log.info("The send window closed; %d SMS wait for it to open", left)
                break
            try:
                opted_out = self._opted_out(address)
                stop = None if opted_out else self._send_one(send_one, address)
            except NotSent as not_sent:
                self._stop(not_sent.stop, left)
                break
            if progress is not None:
                progress.step()
            if stop is not None:
                self._stop(stop, left - 1)
                break

    def _opted_out(self, address: str) -> bool:
        """Whether ``address`` is on the opt-out list (then it is reported ``opted_out``)."""
        if not self.opt_out.enabled:
            return False
        try:
            record = self.opt_out.opted_out(address)
        except OptOutListUnreadableError as exc:
            kind = STOP_OPT_OUT_UNREADABLE if exc.retryable else STOP_OPT_OUT_INVALID
            raise NotSent(BatchStop(kind, f"{exc}; the SMS to {address} was not sent")) from exc
        if record is None:
            return False
        self.log.info(
            "Not sending to %s: on the opt-out list since %s (%s)", address, record.at, record.source
        )
        self._results[address] = self._entry(address, None, OPTED_OUT)
        self.report.opted_out += 1
        return True

    def _send_one(self, send_one: _SendOne, address: str) -> BatchStop | None:
        """Send to ``address`` between its two ledger entries; return why the batch stops, if it does."""
        in_flight = False

        def read_again() -> None:
            # A STOP stored while this send waited (token, slot, a retry after a 429/503) holds.
            try:
                if not self._opted_out(address):
                    return
                stop: Exception = OptedOutWhileWaiting(address)
            except NotSent as not_sent:
                stop = not_sent
            if in_flight:  # an attempt left and Orange accepted nothing
                self._unwritten.append((address, None, FAILED))
            raise stop

        def record_in_flight() -> None:
            nonlocal in_flight
            read_again()
            self.ledger.append([*self._unwritten, (address, None, IN_FLIGHT)])
            self._unwritten = []
            in_flight = True

        resource_id: str | None = None
        stop: BatchStop | None = None
        try:
            resource_id = send_one(address, SendRecord(record_in_flight, self._write_outcomes), read_again)
            status = SENT
        except LedgerUnavailableError as exc:  # "in flight" could not be recorded: nothing left
            # That write carried the outcomes before it: not retried (it would record this recipient
            # "in flight" too), so later tries report those uncertain.
            self._unwritten = []
            raise NotSent(BatchStop(STOP_LEDGER, f"{exc}; the SMS to {address} was not sent")) from exc
        except OptedOutWhileWaiting:  # reported opted_out by _opted_out; nothing was accepted
            return None
        except (OrangeSMSError, ValueError) as exc:
            status, stop = self._failed(address, exc)
        else:
            self._consecutive = 0
            self.report.sent_now += 1
        limit = self.max_consecutive_failures
        if stop is None and limit and self._consecutive >= limit:
            stop = BatchStop(
                STOP_OUTAGE,
                f"{self._consecutive} sends in a row failed for reasons that are not about one recipient "
                "(Orange unreachable or failing?)",
            )
        self._results[address] = self._entry(address, resource_id, status)
        if in_flight:  # no request left otherwise: nothing to correct in the ledger
            self._unwritten.append((address, resource_id, status))
        return stop

    def _failed(self, address: str, exc: OrangeSMSError | ValueError) -> tuple[str, BatchStop | None]:
        """Log and count a failed send; return its ledger status and why the batch stops, if it does."""
        self.report.failures.append((address, exc))
        if isinstance(exc, OrangeSMSSendUncertainError):
            self.log.warning("Outcome unknown for the SMS to %s (not retried): %s", address, exc)
            self._consecutive += 1
            return UNCERTAIN, None
        if not isinstance(exc, OrangeSMSError):  # a ValueError: refused by the client before any request
            return FAILED, BatchStop(STOP_INPUT, str(exc))
        self.log.error("SMS to %s failed: %s", address, exc)
        kind = failure_kind(exc)
        if kind == "recipient":
            self._consecutive = 0
        elif kind != STOP_OUTAGE:
            return FAILED, BatchStop(kind, stop_reason(kind, exc))
        else:
            self._consecutive += 1
        return FAILED, None

    def _stop(self, stop: BatchStop, not_attempted: int) -> None:
        self.report.stop = stop
        self.report.not_attempted = not_attempted
        self.log.error("Stopping the batch: %s; %d SMS not attempted", stop.reason, not_attempted)

    @property
    def failed(self) -> bool:
        """Whether the batch stopped early, or a send failed other than with an unknown outcome."""
        stop = self.report.stop
        return (stop is not None and stop.kind != STOP_WINDOW) or any(
            not isinstance(exc, OrangeSMSSendUncertainError) for _, exc in self.report.failures
        )

    @property
    def left(self) -> list[str]:
        """The recipients that wait for the send window to open (none without a window)."""
        if self.window is None:
            return []
        return [address for address in self.addresses if address not in self._results]

    @property
    def uncertain(self) -> list[str]:
        """The recipients whose send may have gone out without Orange's answer, this try or earlier."""
        return [entry["recipient"] for entry in self.results if entry["status"] == UNCERTAIN]

    def expire_old_ledgers(self) -> None:
        """Delete a few other task instances' ledgers whose retention ran out (after a success)."""
        if self.ledger.enabled:
            self.ledger.expire()

    def fail(self) -> NoReturn:
        """Fail the task with exact counts, without Airflow retries when they cannot help."""
        report = self.report
        handled = self.results
        total = len(self.addresses)
        sent = sum(1 for entry in handled if entry["status"] == SENT)
        uncertain = self.uncertain
        failed = sum(1 for entry in handled if entry["status"] == FAILED)
        # Recipients outside the window were not attempted either (after a window wait, none are).
        not_attempted = report.not_attempted + len(self.waiting)
        summary = (
            f"{sent} of {total} recipient(s) sent ({report.sent_now} by this try, "
            f"{sent - report.sent_now} by earlier tries), {len(uncertain)} uncertain, {failed} failed, "
            f"{not_attempted} not attempted"
            + (f", {report.opted_out} opted out (not sent)" if report.opted_out else "")
        )
        lines = "".join(f"\n  {address}: {exc}" for address, exc in report.failures)
        if uncertain:
            named = ", ".join(uncertain[:_NAMED_UNCERTAIN])
            more = len(uncertain) - _NAMED_UNCERTAIN
            lines += (
                f"\n  Uncertain (the request left, Orange's answer never arrived, no delivery receipt can "
                f"only be its: never sent again automatically; check each one with Orange or the "
                f"recipient, then release_uncertain sends it again): {named}"
                + (f" and {more} more (all in XCom {PARTIAL_RESULTS_KEY})" if more > 0 else "")
            )
        stop = report.stop
        if stop is not None and stop.kind != STOP_WINDOW:
            message = f"Batch stopped: {stop.reason}. {summary}."
            if not stop.retryable:
                raise AirflowFailException(f"{message} Not retried: a retry would fail the same way.{lines}")
            raise AirflowException(
                f"{message} A retry sends only to recipients not reached yet, never to uncertain ones.{lines}"
            )
        if all(
            isinstance(exc, OrangeSMSSendUncertainError)
            or (isinstance(exc, OrangeSMSError) and refused_for_good(exc))
            for _, exc in report.failures
        ):
            reasons = []
            if failed:
                reasons.append("Orange refused the failed requests as invalid")
            if uncertain:
                reasons.append(
                    "Uncertain recipients are never sent again (fail_on_uncertain=False accepts them)"
                )
            raise AirflowFailException(f"{summary}. {'; '.join(reasons)}: the task is not retried:{lines}")
        raise AirflowException(
            f"{summary}. A retry sends only to the failed recipients, never to uncertain ones:{lines}"
        )
