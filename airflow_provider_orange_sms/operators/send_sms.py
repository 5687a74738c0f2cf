"""SendSMSOperator: one SMS per recipient, exactly once, at the account's rate limit.

The HTTP details live in :class:`~airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook`; a batch (its
plan, sent ledger, send window, send loop and report) in :class:`~airflow_provider_orange_sms.batch.SMSBatch`,
the input checks in :mod:`~airflow_provider_orange_sms.batch.send_input`. An internal module: import the
operator from :mod:`airflow_provider_orange_sms.operators.orange_sms`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_orange_sms.batch import (
    SendWindow,
    SMSBatch,
    build_plan,
    log_plan,
    settle_from_receipts,
    validated_input,
    validated_release,
)
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.ledger import (
    DEFAULT_LEDGER_RETENTION,
    LedgerStore,
    LedgerUnavailableError,
    SentLedger,
)
from airflow_provider_orange_sms.operators.base import _OrangeSMSBaseOperator, closes_hook
from airflow_provider_orange_sms.opt_out import OptOutCheck, OptOutListUnreadableError
from airflow_provider_orange_sms.segments import TRANSLITERATE
from airflow_provider_orange_sms.settings import PARTIAL_RESULTS_KEY, PLAN_KEY
from airflow_provider_orange_sms.strict_variables import variables_listable
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException, conf

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow.sdk import Context

#: XCom key of SendSMSOperator's plan (recipients, SMS and segments per country), pushed before sending.
__all__ = ["DEFAULT_LEDGER_RETENTION", "PARTIAL_RESULTS_KEY", "PLAN_KEY", "SendSMSOperator"]


class SendSMSOperator(_OrangeSMSBaseOperator):
    """
    Send one SMS text to one or many recipients (or a text per recipient, ``messages``), one request
    each, at the account's rate limit. The guide: :doc:`/sending`.

    Every recipient and message is validated first: an invalid one fails the task (without
    retries) naming the value, and nothing is sent. A number without ``+``/``00`` is read as a
    national number of ``default_country`` (or the connection's ``country``); numbers that
    normalise to the same address are sent once. Returns (to XCom) one entry per recipient, in input
    order: ``{"recipient": "tel:+…", "resource_id": "…", "status": "sent", "country": "CIV",
    "encoding": "GSM-7", "segments": 1}``, ``status`` being ``sent``, ``failed``, ``uncertain`` or
    ``opted_out``. Before the first send it logs, and pushes to XCom under ``sms_plan``, the plan:
    SMS and segments per recipient country and per contract billed (with ``dry_run=True``, the plan
    is all it does).

    **Exactly once.** A sent ledger in Airflow Variables records each recipient right before its
    request leaves: a retry, a clear or a killed worker never sends to a recipient again, and a
    recipient whose outcome is unknown is reported ``uncertain`` (failing the task unless
    ``fail_on_uncertain=False``), never resent. A later try settles an uncertain recipient as
    ``sent`` when a delivery receipt can only belong to its send (``settle_by_receipts``); the user
    releases one for resending with ``release_uncertain``. What is covered, what is not, and how to
    resolve an ``uncertain`` recipient: :doc:`/exactly-once`.

    **Failures.** A refusal about one recipient (400 ``SVC0004``) does not stop the batch: the task
    fails at the end naming each failure, and pushes the results of the recipients handled under
    ``sms_results`` for a downstream task with ``trigger_rule="all_done"``. A refusal of the
    message, the sender or the credentials, or an account-wide refusal (no units left), stops the
    batch at once; so do ``max_consecutive_failures`` outage-like failures in a row.

    **The opt-out list** is honoured by default (``respect_opt_out``): each recipient's record is
    read right before its send, and an opted-out recipient is reported ``opted_out``, not sent
    (:doc:`/two-way`).

    **Senders.** Each SMS goes out from ``sender_address`` when given, else from the connection's
    ``sender_addresses`` entry for the recipient's country (a recipient of a country without one
    fails the task before any send), else from the connection's ``sender_address``.

    :param recipients: Phone numbers: a list, a string that looks like a list (as
        ``{{ ti.xcom_pull(...) }}`` renders one), a comma-separated string or one number. Templated.
    :param message: The SMS text, the same for every recipient. Templated.
    :param messages: Instead of ``recipients`` and ``message``: one ``{"recipient", "message"}`` row
        per SMS, as a list or the text a template renders for one. Templated.
    :param dry_run: Validate, route and plan, but send nothing; the plan is the XCom result.
    :param check_balance: Before sending, compare each contract's units with the segments still to
        send from it (one unit per segment assumed: Orange does not document how long SMS are
        billed). A send draws on the contract of its sender's country (``2250000``: ``CIV``),
        whoever the recipient is. When short, fail (or, ``deferrable``, wait in the triggerer until
        that contract is topped up).
    :param send_window: Quiet hours: ``("08:00", "20:00")``, the local times between which SMS may
        be sent. Outside it the task defers (no worker slot held) until it opens; recipients whose
        window opens later are sent when it does; a batch the window's end interrupts resumes at
        the next opening. ``None`` (the default, e.g. for urgent alerts) sends at any time.
    :param send_window_timezone: IANA zone of ``send_window`` (default ``UTC``), or ``"recipient"``
        for each recipient's own zones (from ``phonenumbers``; the window must be open in all of a
        number's zones at once: a recipient for whom it never is fails the task before any send).
    :param deferrable: Wait for the balance (``check_balance``) in the triggerer; defaults to
        Airflow's ``[operators] default_deferrable``. The send window always defers.
    :param balance_poke_interval: Seconds between balance checks while waiting for credit.
    :param replace_lookalikes: ``True``: send the GSM-7 form of messages that are UCS-2 only because
        of look-alike characters (typographic quotes and apostrophes, dashes, ``…``, no-break and
        other odd spaces, invisible characters): fewer segments. Letters are never changed
        (``sûr``, ``reçu`` stay as written) unless ``"transliterate"`` is passed, which also strips
        accents GSM-7 lacks (``sûr`` → ``sur``, ``reçu`` → ``recu``). The replacement happens
        before validation: the length limit applies to the text as sent.
    :param sender_address: Sender number; defaults to the connection's ``sender_address``. Templated.
    :param sender_name: Whitelisted sender name; defaults to the connection's. Templated.
    :param default_country: Country (ISO 3166 alpha-3, e.g. ``CIV``) of numbers written without a
        country code; defaults to the connection's ``country``. Templated.
    :param max_consecutive_failures: Stop the batch (and fail the task, so Airflow may retry it later)
        after this many sends in a row failed in ways that look like an outage (5xx, timeouts,
        connection errors, outcome unknown), instead of working through a long batch against an
        outage; ``0`` never stops. Each of those sends has used its own retries first.
    :param retry_guard: Set to ``False`` to turn the sent ledger off (every try sends to everyone).
    :param fail_on_uncertain: Fail the task when a recipient is ``uncertain`` (the request left but
        Orange's answer never arrived, in this try or an earlier one), naming it, after the rest of
        the batch is sent; never resent, and not retried once only uncertain recipients are left.
        ``False`` accepts them: the task succeeds, with a warning for each.
    :param settle_by_receipts: Settle uncertain recipients from the delivery receipts the receiver
        stored (Airflow 3.3+, which lets a task list every sent ledger): adds the delivery-receipts
        asset to the task's ``inlets``. ``False`` leaves them uncertain until released.
    :param release_uncertain: Numbers (as ``recipients`` takes them; templated) whose uncertain send
        this try makes again, once you have checked, with Orange's statistics or the recipient, that
        the earlier one did not arrive; then clear the task. **Risk**: if Orange did take the
        earlier SMS (its receipt can come up to 24 h later, or never), the recipient gets it twice;
        and a number left in the list is released again, unchecked, by any later try or run that
        leaves it uncertain: remove it once the run succeeded. A number that is not a recipient of
        the task fails it before any send; one that is not uncertain is ignored.
    :param ledger_retention: How long this task's ledger is kept after its last write (at least
        one hour; ``None`` keeps it until deleted by hand). It is stored with the ledger: the
        successful tries of every task delete a few expired ledgers each, each by its own retention
        (Airflow 3.3+, which can list Variables from a task), and a ledger whose task is deferred
        (send window, balance) is kept through the wait. Keep it longer than any retry or clear you
        may do: a clear after it resends.
    :param ledger_store: Storage of the sent ledger; Airflow Variables when ``None`` (tests
        inject an in-memory store).
    :param respect_opt_out: Skip recipients on the opt-out list (the default). ``False`` sends to
        them too: only for transactional messages the recipient asked for and must receive (a
        one-time code, a receipt of their own purchase), never for marketing. See :doc:`/two-way`.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = (
        "recipients",
        "message",
        "messages",
        "sender_address",
        "sender_name",
        "default_country",
        "release_uncertain",
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
        replace_lookalikes: bool | str = False,
        check_balance: bool = False,
        send_window: Sequence[str] | None = None,
        send_window_timezone: str = "UTC",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        balance_poke_interval: float = 300.0,
        retry_guard: bool = True,
        fail_on_uncertain: bool = True,
        settle_by_receipts: bool = True,
        release_uncertain: str | Sequence[str] | None = None,
        ledger_retention: timedelta | None = DEFAULT_LEDGER_RETENTION,
        ledger_store: LedgerStore | None = None,
        respect_opt_out: bool = True,
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
        if not isinstance(replace_lookalikes, bool) and replace_lookalikes != TRANSLITERATE:
            raise ValueError(
                f"Invalid replace_lookalikes {replace_lookalikes!r}: expected True, False or "
                f"{TRANSLITERATE!r}"
            )
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
        self.fail_on_uncertain = fail_on_uncertain
        # Only where it can settle: earlier releases cannot list the other ledgers from a task.
        self.settle_by_receipts = settle_by_receipts and retry_guard and variables_listable()
        self.release_uncertain = release_uncertain
        if self.settle_by_receipts:
            from airflow_provider_orange_sms.receipts import DELIVERY_RECEIPTS

            if not any(getattr(inlet, "name", None) == DELIVERY_RECEIPTS.name for inlet in self.inlets):
                self.inlets.append(DELIVERY_RECEIPTS)
        self.ledger_retention = ledger_retention
        self.ledger_store = ledger_store
        self.respect_opt_out = respect_opt_out
        self._batch: SMSBatch | None = None

    @closes_hook
    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        """
        Send the SMS; return one ``{"recipient", "resource_id", "status"}`` per recipient.

        :param context: The task context (may be empty: the sent ledger is then off).
        """
        texts, senders, release = self._validated_input()
        opt_out = OptOutCheck.for_task(respect=self.respect_opt_out, logger=self.log)
        if self.is_dry_run:
            return self._dry_run(texts, senders, opt_out)
        batch = self._batch = SMSBatch(
            texts,
            senders,
            self._sent_ledger(context, texts),
            opt_out=opt_out,
            window=self.window,
            clock=self.clock,
            logger=self.log,
            max_consecutive_failures=self.max_consecutive_failures,
            settle=partial(settle_from_receipts, context, logger=self.log)
            if self.settle_by_receipts
            else None,
            release=release,
        )
        self._push(context, PLAN_KEY, batch.plan())
        batch.skip_handled_by_earlier_tries()
        if self.check_balance:
            self._check_balance(batch.costs, batch.pending)
        batch.hold_back_outside_window()
        batch.send(self._sender(texts))
        if opt_out.enabled:
            self._push(context, PLAN_KEY, batch.plan_with_opted_out())
        if batch.failed:
            self._push(context, PARTIAL_RESULTS_KEY, batch.results)
            batch.fail()
        if batch.left:
            self._wait_for_window(batch.left, len(batch.results))
        if batch.uncertain and self.fail_on_uncertain:
            self._push(context, PARTIAL_RESULTS_KEY, batch.results)
            batch.fail()
        batch.expire_old_ledgers()
        return batch.results

    def defer(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: timedelta | int | float | None = None,
    ) -> NoReturn:
        """
        Defer (see ``BaseOperator.defer``), first holding the sent ledger so that no sweep deletes it.

        A wait for the send window holds it until the window opens (its retention runs from then);
        any other wait (the balance) until the task writes to it again.

        :param trigger: The trigger to wait on.
        :param method_name: The method to resume with.
        :param kwargs: Keyword arguments for ``method_name``.
        :param timeout: How long to wait at most.
        """
        if self._batch is not None:
            moment = getattr(trigger, "moment", None)
            try:
                self._batch.ledger.hold(moment.timestamp() if isinstance(moment, datetime) else None)
            except LedgerUnavailableError as exc:
                raise AirflowException(
                    f"Not deferring: {exc}. Without the hold, the sent ledger could expire during the "
                    "wait and the recipients already texted be texted again (Airflow may retry this)."
                ) from exc
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def _wait_for_window(self, left: list[str], done: int) -> None:
        """Defer until the send window opens for the first of the recipients still to text."""
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        window = self.window
        assert window is not None  # only recipients held back by a window are left
        now = self.clock()
        opening = min(window.next_opening(address, now) for address in left)
        self.log.info(
            "%d SMS sent or handled; %d wait for the send window, which opens next at %s: deferring",
            done,
            len(left),
            opening.isoformat(),
        )
        self.defer(trigger=DateTimeTrigger(moment=opening), method_name="execute_after_wait")

    def _check_balance(self, costs: dict[str, tuple[str | None, int]], pending: list[str]) -> None:
        """
        Fail, or defer until topped up, when a contract's units are fewer than its pending segments.

        A send draws on the contract of its sender's country, whoever the recipient is: the
        segments are summed per sender country (``costs``), not per recipient country.
        """
        needed: dict[str, int] = {}
        sms: dict[str, int] = {}
        for address in pending:
            country, segments = costs[address]
            if country is None:
                raise AirflowFailException(
                    f"check_balance cannot tell which contract the SMS to {address} draws on: the "
                    f"country of its sender {self.hook.client.sender_for(address, self.sender_address)} "
                    "is unknown; nothing was sent"
                )
            needed[country] = needed.get(country, 0) + segments
            sms[country] = sms.get(country, 0) + 1
        for country, units_needed in sorted(needed.items()):
            available = self.hook.get_available_units(country)
            self.log.info(
                "Balance of the %s contract (the senders' country): %d units, %d needed for %d SMS "
                "(one unit per segment assumed)",
                country,
                available,
                units_needed,
                sms[country],
            )
            if available >= units_needed:
                continue
            if not self.deferrable:
                raise AirflowException(
                    f"Not enough SMS units on the {country} contract (the country of the sender): "
                    f"{available} available, {units_needed} needed for its {sms[country]} SMS (one unit "
                    "per segment assumed); nothing was sent"
                )
            from airflow_provider_orange_sms.triggers.orange_sms import BalanceTrigger

            self.log.info(
                "Waiting for the %s contract's balance to reach %d units: deferring", country, units_needed
            )
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

    def _dry_run(
        self, texts: dict[str, str], senders: dict[str, str], opt_out: OptOutCheck
    ) -> dict[str, Any]:
        """Plan with the opt-out list read once per recipient; send nothing."""
        opted_out = None
        if opt_out.enabled:
            try:
                opted_out = opt_out.opted_out_among(texts)
            except OptOutListUnreadableError as exc:
                error = AirflowException if exc.retryable else AirflowFailException
                raise error(f"Dry run: {exc}") from exc
        plan, _ = build_plan(texts, senders, dry_run=True, opted_out=opted_out)
        log_plan(plan, self.log)
        self.log.info("Dry run: %d SMS would be sent; nothing was sent", plan["recipients"])
        return plan

    def _validated_input(self) -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
        """
        The text and the sender of each normalised recipient, in order, and the recipients released
        for resending; or a task failure (no retries) naming every bad value.
        """
        try:
            texts, senders = validated_input(
                self.hook.client,  # a bad connection extra is bad input too: no retries
                recipients=self.recipients,
                message=self.message,
                messages=self.messages,
                sender_address=self.sender_address,
                default_country=self.default_country,
                replace_lookalikes=self.replace_lookalikes,
                window=self.window,
                now=self.clock,
                logger=self.log,
            )
            release = validated_release(self.hook.client, self.release_uncertain, self.default_country, texts)
        except ValueError as exc:
            raise AirflowFailException(f"{exc} (nothing was sent)") from exc
        return texts, senders, release

    def _sender(self, texts: dict[str, str]) -> Callable[[str, Callable[[], None], Callable[[], None]], str]:
        def send(address: str, before_send: Callable[[], None], before_retry: Callable[[], None]) -> str:
            return self.hook.send_sms(
                address,
                texts[address],
                sender_address=self.sender_address,
                sender_name=self.sender_name,
                before_send=before_send,
                before_retry=before_retry,
            )

        return send

    def _sent_ledger(self, context: Context, texts: dict[str, str]) -> SentLedger:
        """The sent ledger of this task instance; says so when it is off."""
        ledger = SentLedger.from_context(
            context if self.retry_guard else {},
            self.ledger_store,
            logger=self.log,
            texts=texts,
            retention=self.ledger_retention,
        )
        if not ledger.enabled:
            self.log.warning(
                "Sent ledger off (%s): a retry of this task may text its recipients again",
                "retry_guard=False" if not self.retry_guard else "no task instance in the context",
            )
        return ledger

    def _push(self, context: Context, key: str, value: Any) -> None:
        """Push ``value`` to XCom under ``key``; a failure is logged, never raised."""
        ti = context.get("ti") if context else None
        if ti is None:
            return
        try:
            ti.xcom_push(key=key, value=value)
        except Exception as exc:  # the task's own outcome must not be hidden by this one
            self.log.warning("Could not push %s to XCom: %s", key, exc)
