"""SendSMSOperator: one SMS per recipient, exactly once, at the account's rate limit.

The HTTP details live in :class:`~airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook`; the
send loop and the sent ledger in :mod:`._send_batch` and :mod:`._sent_ledger`. A private module:
import the operator from :mod:`airflow_provider_orange_sms.operators.orange_sms`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms._compat import AirflowException, AirflowFailException, conf
from airflow_provider_orange_sms.addresses import check_message, country_of, validate_recipients
from airflow_provider_orange_sms.exceptions import OrangeSMSError
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.messages import validate_messages
from airflow_provider_orange_sms.operators._base import _OrangeSMSBaseOperator
from airflow_provider_orange_sms.operators._send_batch import (
    STOP_WINDOW,
    BatchReport,
    refused_for_good,
    result_entry,
    send_batch,
)
from airflow_provider_orange_sms.operators._sent_ledger import (
    FAILED,
    SENT,
    UNCERTAIN,
    LedgerEntry,
    LedgerStore,
    LedgerUnavailableError,
    SentLedger,
)
from airflow_provider_orange_sms.segments import gsm7_lookalikes, message_cost, to_gsm7
from airflow_provider_orange_sms.send_window import SendWindow

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow.sdk import Context

#: XCom key of SendSMSOperator's results when the task fails (``return_value`` is only set on success).
PARTIAL_RESULTS_KEY = "sms_results"
#: XCom key of SendSMSOperator's plan (recipients, SMS and segments per country), pushed before sending.
PLAN_KEY = "sms_plan"
#: How long SendSMSOperator keeps a sent ledger after its last write, by default.
DEFAULT_LEDGER_RETENTION = timedelta(days=7)


class SendSMSOperator(_OrangeSMSBaseOperator):
    """
    Send one SMS text to one or many recipients, one request each, at the account's rate limit.

    Every recipient and the message are validated first: an invalid one fails the task (without
    retries) naming the value, and nothing is sent. A number without ``+``/``00`` is read as a
    national number of ``default_country`` (or the connection's ``country``). Numbers that
    normalise to the same address are sent once. Returns (to XCom) a list of
    ``{"recipient": "tel:+…", "resource_id": "…", "status": "sent"}`` in input order; ``status`` is
    ``"uncertain"`` (``resource_id`` ``None``) for a recipient an earlier try may have sent to
    without Orange's acceptance reaching the task.

    **Exactly once (the sent ledger).** Before each request the recipient is recorded as "in
    flight" in a ledger kept in Airflow Variables (``orange_sms_sent_<hash>_<n>``, keyed on
    ``dag_id/task_id/run_id/map_index``); after it, its outcome. No request leaves while the record
    of the previous one is not durable: a write is tried a few times, then the batch stops and the
    try fails (retryable). Every try reads the ledger first, and a recipient recorded ``sent``, in
    flight or ``uncertain`` is never sent to again by a later try or a clear of the task: it is
    reported (``sent`` with its resource id, or ``uncertain``). A ledger that cannot be read fails
    the try before any send. The ledger outlives the task's success (Airflow may still fail to
    record it and run the task again) and expires ``ledger_retention`` after its last write.
    Recipients Orange certainly did not take (a 4xx, a request that never left) are sent again by
    a retry. The ledger needs a task instance: with an empty context
    (``op.execute(context={})``) or ``retry_guard=False`` it is off. Variable values hold phone
    numbers: configure a Fernet key so they are encrypted at rest.

    **When sends fail.** A refusal about one recipient (e.g. 400 ``SVC0004``) does not stop the
    batch; the task fails at the end naming each failure, without retries when every failure is
    such a refusal. A refusal of the message or the sender (``SVC0280`` message too long, an
    invalid sender, 404), of the credentials, or an account-wide policy refusal (403 ``POL…``: no
    units left, sender name not allowed) stops the batch at once. Failures that look like an
    outage stop it after ``max_consecutive_failures`` in a row. The failure message counts exactly
    how many recipients were sent, by this try and by earlier ones, and the results of the
    recipients handled are pushed to XCom under the key ``sms_results`` for a downstream task
    with ``trigger_rule="all_done"``.

    **A text per recipient.** Instead of ``recipients`` and ``message``, pass ``messages``: rows of
    ``{"recipient": "+225…", "message": "Hello Awa, …"}`` (other keys are ignored, so rows from a
    database query work as they are), e.g. an upstream task's XCom. One task instance then sends
    them all, with the same ledger, throttle and failure report.

    **Senders.** Each SMS goes out from ``sender_address`` when given, else from the connection's
    ``sender_addresses`` entry for the recipient's country (a recipient of a country without one
    fails the task before any send, naming both), else from the connection's ``sender_address``.

    **The plan, before the first send.** The operator logs, and pushes to XCom under ``sms_plan``,
    the recipients, SMS and segments (GSM-7 or UCS-2, counted as the network does, see
    :func:`~airflow_provider_orange_sms.segments.sms_segments`) per country and sender, and names the
    messages that are UCS-2 only because of a look-alike character.

    **Dry run.** With ``dry_run=True`` every number is validated and normalised, senders are routed
    and every message checked, then the plan is logged and returned: nothing is sent, no token is
    requested, and the ledger is not touched.

    :param recipients: Phone numbers: a list, a string that looks like a list (as
        ``{{ ti.xcom_pull(...) }}`` renders one), a comma-separated string or one number. Templated.
    :param message: The SMS text, the same for every recipient. Templated.
    :param messages: Instead of ``recipients`` and ``message``: one ``{"recipient", "message"}`` row
        per SMS, as a list or the text a template renders for one. Templated.
    :param dry_run: Validate, route and plan, but send nothing; the plan is the XCom result.
    :param check_balance: Before sending, compare each country's units with the segments still to
        send (one unit per segment assumed: Orange does not document how long SMS are billed); when
        short, fail (or, ``deferrable``, wait in the triggerer until topped up).
    :param send_window: Quiet hours: ``("08:00", "20:00")``, the local times between which SMS may
        be sent. Outside it the task defers (no worker slot held) until it opens; recipients whose
        window opens later are sent when it does; a batch the window's end interrupts resumes at
        the next opening. ``None`` (the default, e.g. for urgent alerts) sends at any time.
    :param send_window_timezone: IANA zone of ``send_window`` (default ``UTC``), or ``"recipient"``
        for each recipient's own zone (from ``phonenumbers``).
    :param deferrable: Wait for the balance (``check_balance``) in the triggerer; defaults to
        Airflow's ``[operators] default_deferrable``. The send window always defers.
    :param balance_poke_interval: Seconds between balance checks while waiting for credit.
    :param replace_lookalikes: Send the GSM-7 form of messages that are UCS-2 only because of
        look-alike characters (curly quotes, a no-break space, an en dash…): fewer segments.
    :param sender_address: Sender number; defaults to the connection's ``sender_address``. Templated.
    :param sender_name: Whitelisted sender name; defaults to the connection's. Templated.
    :param default_country: Country (ISO 3166 alpha-3, e.g. ``CIV``) of numbers written without a
        country code; defaults to the connection's ``country``. Templated.
    :param max_consecutive_failures: Stop the batch (and fail the task, so Airflow may retry it later)
        after this many sends in a row failed in ways that look like an outage (5xx, timeouts,
        connection errors, outcome unknown), instead of working through a long batch against an
        outage; ``0`` never stops. Each of those sends has used its own retries first.
    :param retry_guard: Set to ``False`` to turn the sent ledger off (every try sends to everyone).
    :param ledger_retention: How long a ledger is kept after its last write (at least one hour;
        ``None`` keeps ledgers until deleted by hand). Successful tries delete a few expired ledgers
        of other task instances each (Airflow 3.3+, which can list Variables from a task). Keep it
        longer than any retry or clear you may do: a clear after it resends.
    :param ledger_store: Storage of the sent ledger; Airflow Variables when ``None`` (tests
        inject an in-memory store).
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = (
        "recipients",
        "message",
        "messages",
        "sender_address",
        "sender_name",
        "default_country",
    )

    def __init__(
        self,
        *,
        recipients: str | Sequence[str] | None = None,
        message: str | None = None,
        messages: str | Sequence[Mapping[str, Any]] | None = None,
        sender_address: str | None = None,
        sender_name: str | None = None,
        default_country: str | None = None,
        max_consecutive_failures: int = 5,
        dry_run: bool = False,
        replace_lookalikes: bool = False,
        check_balance: bool = False,
        send_window: Sequence[str] | None = None,
        send_window_timezone: str = "UTC",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        balance_poke_interval: float = 300.0,
        retry_guard: bool = True,
        ledger_retention: timedelta | None = DEFAULT_LEDGER_RETENTION,
        ledger_store: LedgerStore | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        if messages is None and (recipients is None or message is None):
            raise ValueError("SendSMSOperator needs recipients and message, or messages")
        if messages is not None and (recipients is not None or message is not None):
            raise ValueError(
                "SendSMSOperator takes either recipients and message, or messages (one text per "
                "recipient), not both"
            )
        if max_consecutive_failures < 0:
            raise ValueError(f"Invalid max_consecutive_failures {max_consecutive_failures!r}: must be >= 0")
        if ledger_retention is not None and ledger_retention < timedelta(hours=1):
            raise ValueError(f"Invalid ledger_retention {ledger_retention!r}: must be at least one hour")
        self.recipients = recipients
        self.message = message
        self.messages = messages
        # Not ``self.dry_run``: BaseOperator.dry_run() is a method.
        self.is_dry_run = dry_run
        self.replace_lookalikes = replace_lookalikes
        self.check_balance = check_balance
        self.window = None if send_window is None else SendWindow.parse(send_window, send_window_timezone)
        self.deferrable = deferrable
        self.balance_poke_interval = balance_poke_interval
        #: Current time (replaceable in tests).
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.sender_address = sender_address
        self.sender_name = sender_name
        self.default_country = default_country
        self.max_consecutive_failures = max_consecutive_failures
        self.retry_guard = retry_guard
        self.ledger_retention = ledger_retention
        self.ledger_store = ledger_store

    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        """
        Send the SMS; return one ``{"recipient", "resource_id", "status"}`` per recipient.

        :param context: The task context (may be empty: the sent ledger is then off).
        """
        texts, senders = self._validated_input()
        addresses = list(texts)
        plan, costs = self._plan(texts, senders)
        self._log_plan(plan)
        if self.is_dry_run:
            self.log.info("Dry run: %d SMS would be sent; nothing was sent", plan["recipients"])
            return plan
        self._push(context, PLAN_KEY, plan)
        ledger = SentLedger.from_context(
            context if self.retry_guard else {}, self.ledger_store, logger=self.log
        )
        try:
            earlier = ledger.load()
        except LedgerUnavailableError as exc:
            raise AirflowException(
                f"Not sending any SMS: {exc}. Without the sent ledger, recipients an earlier try reached "
                "could be texted twice, so this try fails before any send (Airflow may retry it)."
            ) from exc
        results = self._handled_by_earlier_tries(ledger, earlier, addresses)
        pending = [address for address in addresses if address not in results]
        if self.check_balance:
            self._check_balance(costs, pending)
        window = self.window
        waiting: list[str] = []
        if window is not None:
            now = self.clock()
            waiting = [address for address in pending if not window.is_open(address, now)]
            pending = [address for address in pending if window.is_open(address, now)]
        self.log.info(
            "Sending %d SMS (%d recipient(s) in total%s)",
            len(pending),
            len(addresses),
            f", {len(waiting)} outside the send window" if waiting else "",
        )
        report = send_batch(
            self._sender(texts),
            pending,
            ledger,
            results,
            max_consecutive_failures=self.max_consecutive_failures,
            logger=self.log,
            may_send=None if window is None else lambda address: window.is_open(address, self.clock()),
        )
        handled = [results[address] for address in addresses if address in results]
        stopped = report.stop is not None and report.stop.kind != STOP_WINDOW
        if report.failures or stopped:
            report.not_attempted += len(waiting)
            self._push(context, PARTIAL_RESULTS_KEY, handled)
            self._fail(report, handled, len(addresses))
        left = [address for address in addresses if address not in results]
        if window is not None and left:
            self._wait_for_window(window, left, len(handled))
        if ledger.enabled and self.ledger_retention is not None:
            ledger.expire(self.ledger_retention)
        return handled

    def _wait_for_window(self, window: SendWindow, left: list[str], done: int) -> None:
        """Defer until the send window opens for the first of the recipients still to text."""
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        now = self.clock()
        opening = min(window.next_opening(address, now) for address in left)
        self.log.info(
            "%d SMS sent or handled; %d wait for the send window, which opens next at %s: deferring",
            done,
            len(left),
            opening.isoformat(),
        )
        self.defer(trigger=DateTimeTrigger(moment=opening), method_name="execute_after_wait")

    def _check_balance(self, costs: dict[str, tuple[str, int]], pending: list[str]) -> None:
        """Fail, or defer until topped up, when a country's units are fewer than its pending segments."""
        needed: dict[str, int] = {}
        for address in pending:
            country, segments = costs[address]
            needed[country] = needed.get(country, 0) + segments
        for country, units_needed in sorted(needed.items()):
            available = self.hook.get_available_units(country)
            self.log.info(
                "Balance for %s: %d units, %d needed (one unit per segment assumed)",
                country,
                available,
                units_needed,
            )
            if available >= units_needed:
                continue
            if not self.deferrable:
                raise AirflowException(
                    f"Not enough SMS units for {country}: {available} available, {units_needed} needed "
                    f"for {len(pending)} SMS (one unit per segment assumed); nothing was sent"
                )
            from airflow_provider_orange_sms.triggers.orange_sms import BalanceTrigger

            self.log.info("Waiting for %s's balance to reach %d units: deferring", country, units_needed)
            self.defer(
                trigger=BalanceTrigger(
                    minimum_units=units_needed,
                    country=country,
                    orange_sms_conn_id=self.orange_sms_conn_id,
                    poke_interval=self.balance_poke_interval,
                ),
                method_name="execute_after_wait",
            )

    def execute_after_wait(
        self, context: Context, event: Any = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """
        Resume after a deferral (the send window opened, or the balance was topped up): run again.

        Recipients already handled are skipped through the sent ledger.

        :param context: The task context.
        :param event: The trigger's event.
        """
        if isinstance(event, dict) and event.get("status") == "error":
            raise AirflowException(f"Waiting to send failed: {event.get('message')}")
        return self.execute(context)

    def _validated_input(self) -> tuple[dict[str, str], dict[str, str]]:
        """
        The text and the sender of each normalised recipient, in order; or a task failure (no
        retries) naming every bad value.
        """
        try:
            client = self.hook.client  # a bad connection extra is bad input too: no retries
            country = self.default_country or client.country
            if self.messages is not None:
                texts = validate_messages(
                    self.messages, self.log, default_country=country, max_length=client.max_message_length
                )
            else:
                message = check_message(self.message, client.max_message_length)
                recipients = validate_recipients(self.recipients, self.log, default_country=country)
                texts = dict.fromkeys(recipients, message)
            senders: dict[str, str] = {}
            unrouted = []
            for address in texts:
                try:
                    senders[address] = client.sender_for(address, self.sender_address)
                except ValueError as exc:
                    unrouted.append(str(exc))
            if unrouted:
                raise ValueError(
                    f"{len(unrouted)} recipient(s) without a sender: " + "; ".join(unrouted[:20])
                )
        except ValueError as exc:
            raise AirflowFailException(f"{exc} (nothing was sent)") from exc
        if self.replace_lookalikes:
            texts = {a: to_gsm7(t) if gsm7_lookalikes(t) else t for a, t in texts.items()}
        return texts, senders

    def _sender(self, texts: dict[str, str]) -> Callable[[str], str]:
        def send(address: str) -> str:
            return self.hook.send_sms(
                address, texts[address], sender_address=self.sender_address, sender_name=self.sender_name
            )

        return send

    def _plan(
        self, texts: dict[str, str], senders: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, tuple[str, int]]]:
        """
        What the batch will send: per country the recipients, senders, SMS and segments by encoding,
        and the messages that are UCS-2 only because of a look-alike character; in a dry run also
        each message. Also returns each recipient's country and segments (for the balance check).
        """
        rows: list[dict[str, Any]] = []
        costs: dict[str, tuple[str, int]] = {}
        by_country: dict[str, dict[str, Any]] = {}
        lookalikes: list[dict[str, Any]] = []
        for address, text in texts.items():
            country = country_of(address) or "unknown"
            cost = message_cost(text)
            sender = senders[address]
            costs[address] = (country, cost.segments)
            if self.is_dry_run:  # a real send's plan stays a summary: 10,000 rows need not sit in XCom
                rows.append(
                    {
                        "recipient": address,
                        "country": country,
                        "sender": sender,
                        "encoding": cost.encoding,
                        "segments": cost.segments,
                        "message": text,
                    }
                )
            summary = by_country.setdefault(
                country, {"recipients": 0, "senders": [], "segments": 0, "encodings": {}}
            )
            summary["recipients"] += 1
            summary["segments"] += cost.segments
            summary["encodings"][cost.encoding] = summary["encodings"].get(cost.encoding, 0) + 1
            if sender not in summary["senders"]:
                summary["senders"].append(sender)
            found = gsm7_lookalikes(text)
            if found:
                lookalikes.append({"recipient": address, "characters": found})
        plan: dict[str, Any] = {
            "dry_run": self.is_dry_run,
            "recipients": len(costs),
            "segments": sum(segments for _, segments in costs.values()),
            "by_country": by_country,
            "lookalike_messages": lookalikes,
        }
        if self.is_dry_run:
            plan["messages"] = rows
        return plan, costs

    def _log_plan(self, plan: dict[str, Any]) -> None:
        for country, summary in sorted(plan["by_country"].items()):
            self.log.info(
                "Plan for %s: %d SMS, %d segment(s) (%s), sender %s",
                country,
                summary["recipients"],
                summary["segments"],
                ", ".join(f"{n} {encoding}" for encoding, n in sorted(summary["encodings"].items())),
                ", ".join(summary["senders"]),
            )
        if plan["lookalike_messages"]:
            first = plan["lookalike_messages"][0]
            self.log.warning(
                "%d message(s) are UCS-2 (more segments) only because of look-alike characters, e.g. "
                "%s in the message to %s; replace_lookalikes=True sends their GSM-7 forms",
                len(plan["lookalike_messages"]),
                " ".join(repr(c) for c in first["characters"]),
                first["recipient"],
            )

    def _handled_by_earlier_tries(
        self, ledger: SentLedger, earlier: dict[str, LedgerEntry], addresses: list[str]
    ) -> dict[str, dict[str, Any]]:
        """Results of the recipients an earlier try of this task instance sent to (or may have)."""
        if not ledger.enabled:
            self.log.warning(
                "Sent ledger off (%s): a retry of this task may text its recipients again",
                "retry_guard=False" if not self.retry_guard else "no task instance in the context",
            )
            return {}
        results: dict[str, dict[str, Any]] = {}
        for address in addresses:
            entry = earlier.get(address)
            if entry is None or not entry.may_have_been_sent:
                continue
            if entry.status == SENT:
                results[address] = result_entry(address, entry.resource_id, SENT)
                continue
            results[address] = result_entry(address, None, UNCERTAIN)
            self.log.warning(
                "Not sending to %s again: an earlier try's send to it has no recorded outcome (%s); "
                "check its delivery receipt or Orange's statistics",
                address,
                entry.status,
            )
        if results:
            self.log.info(
                "Sent ledger: %d of %d recipient(s) were handled by an earlier try and are skipped",
                len(results),
                len(addresses),
            )
        return results

    def _push(self, context: Context, key: str, value: Any) -> None:
        """Push ``value`` to XCom under ``key``; a failure is logged, never raised."""
        ti = context.get("ti") if context else None
        if ti is None:
            return
        try:
            ti.xcom_push(key=key, value=value)
        except Exception as exc:  # the task's own outcome must not be hidden by this one
            self.log.warning("Could not push %s to XCom: %s", key, exc)

    @staticmethod
    def _fail(report: BatchReport, handled: list[dict[str, Any]], total: int) -> None:
        """Fail the task with exact counts, without Airflow retries when they cannot help."""
        sent = sum(1 for entry in handled if entry["status"] == SENT)
        uncertain = sum(1 for entry in handled if entry["status"] == UNCERTAIN)
        failed = sum(1 for entry in handled if entry["status"] == FAILED)
        summary = (
            f"{sent} of {total} recipient(s) sent ({report.sent_now} by this try, "
            f"{sent - report.sent_now} by earlier tries), {uncertain} uncertain, {failed} failed, "
            f"{report.not_attempted} not attempted"
        )
        lines = "".join(f"\n  {address}: {exc}" for address, exc in report.failures)
        stop = report.stop
        if stop is not None:
            message = f"Batch stopped: {stop.reason}. {summary}."
            if not stop.retryable:
                raise AirflowFailException(f"{message} Not retried: a retry would fail the same way.{lines}")
            raise AirflowException(
                f"{message} A retry sends only to recipients not reached yet, never to uncertain ones.{lines}"
            )
        if all(isinstance(exc, OrangeSMSError) and refused_for_good(exc) for _, exc in report.failures):
            raise AirflowFailException(
                f"{summary}. Orange refused the failed requests as invalid: the task is not retried:{lines}"
            )
        raise AirflowException(
            f"{summary}. A retry sends only to the failed recipients, never to uncertain ones:{lines}"
        )
