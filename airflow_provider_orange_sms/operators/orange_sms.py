"""Operators for the Orange SMS API: send SMS, read the account's balance, usage and orders, manage
delivery-receipt subscriptions.

They stay thin: every HTTP detail lives in
:class:`~airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook`.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_orange_sms._compat import AirflowException, AirflowFailException
from airflow_provider_orange_sms.addresses import check_message, validate_recipients
from airflow_provider_orange_sms.exceptions import (
    OrangeSMSAuthError,
    OrangeSMSBadRequestError,
    OrangeSMSError,
    OrangeSMSNotFoundError,
    OrangeSMSSendUncertainError,
)
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.operators._sent_ledger import (
    SENT,
    UNCERTAIN,
    LedgerStore,
    SentLedger,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

FAILED = "failed"
#: XCom key of SendSMSOperator's results when the task fails (``return_value`` is only set on success).
PARTIAL_RESULTS_KEY = "sms_results"


def _result(recipient: str, resource_id: str | None, status: str) -> dict[str, Any]:
    """One entry of SendSMSOperator's XCom result."""
    return {"recipient": recipient, "resource_id": resource_id, "status": status}


def _refused_for_good(error: OrangeSMSError) -> bool:
    """A 400 service error (invalid number, message too long…): the same request fails again."""
    return isinstance(error, OrangeSMSBadRequestError) and error.status_code == 400


class _Progress:
    """
    Logs sent/total, rate and ETA every 10% of the batch (at least every 10 SMS, so small batches
    log once at the end) or every 30 s, whichever comes first.
    """

    def __init__(self, total: int, logger: Any, interval: float = 30.0) -> None:
        self.total = total
        self.log = logger
        self.interval = interval
        self.done = 0
        self.started = self.last_logged = time.monotonic()
        self.step_size = max(10, -(-total // 10))  # ceil(total / 10)
        self.next_count = self.step_size

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.done >= self.next_count or now - self.last_logged >= self.interval or self.done == self.total:
            while self.next_count <= self.done:
                self.next_count += self.step_size
            self.last_logged = now
            elapsed = now - self.started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            self.log.info(
                "Progress: %d/%d SMS processed (%.0f%%), %.1f/s, ETA %.0f s",
                self.done,
                self.total,
                100.0 * self.done / self.total,
                rate,
                eta,
            )


class _OrangeSMSBaseOperator(BaseOperator):
    """
    Common base: the connection id and the hook.

    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    ui_color = "#ff7900"  # Orange's brand colour in the Airflow graph view

    def __init__(self, *, orange_sms_conn_id: str = OrangeSMSHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.orange_sms_conn_id = orange_sms_conn_id

    @cached_property
    def hook(self) -> OrangeSMSHook:
        """The hook for ``orange_sms_conn_id``."""
        return OrangeSMSHook(orange_sms_conn_id=self.orange_sms_conn_id)


class SendSMSOperator(_OrangeSMSBaseOperator):
    """
    Send one SMS text to one or many recipients, one request each, at the account's rate limit.

    Every recipient and the message are validated first: an invalid one fails the task (without
    retries) naming the value, and nothing is sent. Numbers that normalise to the same address are
    sent once. Returns (to XCom) a list of ``{"recipient": "tel:+…", "resource_id": "…",
    "status": "sent"}`` in input order; ``status`` is ``"uncertain"`` (and ``resource_id`` ``None``)
    for a recipient whose send in an earlier try had an unknown outcome.

    When the task fails, the results of the recipients it handled (``"status"`` ``"sent"``,
    ``"failed"`` or ``"uncertain"``) are pushed to XCom under the key ``sms_results``, so a downstream
    task with ``trigger_rule="all_done"`` can report them.

    When Orange refuses some recipients (e.g. 400 for an invalid number), the others are still sent,
    then the task fails with each failed recipient and Orange's error; when every failure is such a
    400 the task fails without retries (the same request would be refused again). An authentication
    error stops the batch at once and fails the task without retries.

    **Retry guard (sent ledger).** A retry of the same task instance does not text again the
    recipients an earlier try already reached. Right after each accepted send, the recipient and
    its resource id are appended to a ledger kept in Airflow Variables named
    ``orange_sms_sent_<hash>_<n>``, where ``<hash>`` is derived from
    ``dag_id/task_id/run_id/map_index`` and ``<n>`` numbers chunks of 100 recipients (each write
    rewrites at most one chunk of 100, so a large batch costs O(n)). Each try reads the ledger first
    and skips the recipients in it. A send that raised
    :class:`~airflow_provider_orange_sms.exceptions.OrangeSMSSendUncertainError` (the SMS may or
    may not have gone out) is recorded as ``uncertain``: it counts as a failure in that try, and
    later tries do not send to that recipient again (they log a warning and report it with
    ``status`` ``"uncertain"``); check the delivery receipts or statistics. The ledger is deleted
    when the task succeeds; after a final failure it stays, so clearing the task later also skips
    those recipients (delete the Variables to send to them again). Recipients refused for good are
    not recorded and are sent again on a retry. With an empty context (``op.execute(context={})``)
    there is no task instance to key on and the guard is off; if Variables cannot be read or written
    (no execution API) a warning is logged and the task goes on without the guard. Variable values
    hold phone numbers: configure a Fernet key so they are encrypted at rest.

    :param recipients: Phone numbers in international form (``+2250700000001``): a list, a string
        that looks like a list (as ``{{ ti.xcom_pull(...) }}`` renders one), a comma-separated
        string or one number. Templated.
    :param message: The SMS text. Templated.
    :param sender_address: Sender number; defaults to the connection's ``sender_address``. Templated.
    :param sender_name: Whitelisted sender name; defaults to the connection's. Templated.
    :param max_consecutive_failures: Stop the batch (and fail the task, so Airflow may retry it later)
        after this many sends in a row failed for reasons that are not about one recipient (5xx,
        timeouts, connection errors, outcome unknown, 403 policy errors such as no units left),
        instead of working through a long batch
        against an outage; ``0`` never stops. Each of those sends has used its own retries first.
    :param retry_guard: Set to ``False`` to turn the sent ledger off (every try sends to everyone).
    :param ledger_store: Storage of the sent ledger; Airflow Variables when ``None`` (tests
        inject an in-memory store).
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("recipients", "message", "sender_address", "sender_name")

    def __init__(
        self,
        *,
        recipients: str | Sequence[str],
        message: str,
        sender_address: str | None = None,
        sender_name: str | None = None,
        max_consecutive_failures: int = 5,
        retry_guard: bool = True,
        ledger_store: LedgerStore | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        if max_consecutive_failures < 0:
            raise ValueError(f"Invalid max_consecutive_failures {max_consecutive_failures!r}: must be >= 0")
        self.recipients = recipients
        self.message = message
        self.sender_address = sender_address
        self.sender_name = sender_name
        self.max_consecutive_failures = max_consecutive_failures
        self.retry_guard = retry_guard
        self.ledger_store = ledger_store

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """
        Send the SMS; return one ``{"recipient", "resource_id", "status"}`` per recipient.

        :param context: The task context (may be empty: the retry guard is then off).
        """
        try:
            addresses = validate_recipients(self.recipients, self.log)
            message = check_message(self.message)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc

        ledger = SentLedger.from_context(
            context if self.retry_guard else {}, self.ledger_store, logger=self.log
        )
        results = self._handled_by_earlier_tries(ledger, addresses)
        pending = [address for address in addresses if address not in results]
        self.log.info("Sending %d SMS (%d recipient(s) in total)", len(pending), len(addresses))
        failures, not_attempted = self._send_batch(pending, message, ledger, results)
        if failures or not_attempted:
            self._push_partial_results(context, [results[a] for a in addresses if a in results])
            self._fail(failures, not_attempted, len(addresses))
        ledger.clear()
        return [results[address] for address in addresses]

    def _handled_by_earlier_tries(
        self, ledger: SentLedger, addresses: list[str]
    ) -> dict[str, dict[str, Any]]:
        """Results of the recipients an earlier try of this task instance sent to (or may have)."""
        earlier = ledger.load()
        results: dict[str, dict[str, Any]] = {}
        for address in addresses:
            entry = earlier.get(address)
            if entry is None:
                continue
            results[address] = {
                "recipient": address,
                "resource_id": entry.resource_id,
                "status": entry.status,
            }
            if entry.status == UNCERTAIN:
                self.log.warning(
                    "Not sending to %s again: an earlier try's send to it had an unknown outcome "
                    "(check delivery receipts or statistics)",
                    address,
                )
        if results:
            self.log.info(
                "Retry guard: %d of %d recipient(s) were handled by an earlier try and are skipped",
                len(results),
                len(addresses),
            )
        elif not ledger.enabled:
            self.log.info("Retry guard off (no task instance in the context, or disabled)")
        return results

    def _send_batch(
        self, pending: list[str], message: str, ledger: SentLedger, results: dict[str, dict[str, Any]]
    ) -> tuple[list[tuple[str, OrangeSMSError]], int]:
        """
        Send to every pending recipient, recording each outcome in ``results`` and the ledger.

        Returns the failures and how many recipients were not attempted (after an outage-like run).
        """
        progress = _Progress(len(pending), self.log)
        failures: list[tuple[str, OrangeSMSError]] = []
        consecutive = 0  # failures in a row that are not about one recipient: an outage?
        for index, address in enumerate(pending):
            if self.max_consecutive_failures and consecutive >= self.max_consecutive_failures:
                self.log.error(
                    "Stopping the batch: %d sends in a row failed for reasons that are not about one "
                    "recipient (Orange unreachable or failing?); %d SMS not attempted",
                    consecutive,
                    len(pending) - index,
                )
                return failures, len(pending) - index
            try:
                resource_id = self.hook.send_sms(
                    address, message, sender_address=self.sender_address, sender_name=self.sender_name
                )
            except OrangeSMSAuthError as exc:
                # Wrong credentials or an API not subscribed: a retry would fail the same way.
                raise AirflowFailException(
                    f"Orange SMS authentication failed after {index} of {len(pending)} SMS; the batch "
                    f"was stopped (every further send would fail too): {exc}"
                ) from exc
            except OrangeSMSSendUncertainError as exc:
                self.log.warning("Outcome unknown for the SMS to %s (not retried): %s", address, exc)
                ledger.record(address, None, UNCERTAIN)
                failures.append((address, exc))
                results[address] = _result(address, None, UNCERTAIN)
                consecutive += 1
            except OrangeSMSError as exc:
                self.log.error("SMS to %s failed: %s", address, exc)
                failures.append((address, exc))
                results[address] = _result(address, None, FAILED)
                # A 400 or 404 is about this recipient; a 403 policy error (no units left, sender name
                # refused) or a server error hits every send of the account.
                about_this_recipient = _refused_for_good(exc) or isinstance(exc, OrangeSMSNotFoundError)
                consecutive = 0 if about_this_recipient else consecutive + 1
            else:
                ledger.record(address, resource_id, SENT)
                results[address] = _result(address, resource_id, SENT)
                consecutive = 0
            progress.step()
        return failures, 0

    def _push_partial_results(self, context: Context, partial: list[dict[str, Any]]) -> None:
        """Leave what this try did in XCom (key ``sms_results``) before the task fails."""
        ti = context.get("ti") if context else None
        if ti is None:
            return
        try:
            ti.xcom_push(key=PARTIAL_RESULTS_KEY, value=partial)
        except Exception as exc:  # the task's real failure must not be hidden by this one
            self.log.warning("Could not push the partial results to XCom: %s", exc)

    @staticmethod
    def _fail(failures: list[tuple[str, OrangeSMSError]], not_attempted: int, total: int) -> None:
        """Fail the task, listing each failed recipient; without Airflow retries when they cannot help."""
        lines = "\n".join(f"  {address}: {exc}" for address, exc in failures)
        if not_attempted:
            raise AirflowException(
                f"Batch stopped after failures in a row: {not_attempted} of {total} SMS not attempted, "
                f"{len(failures)} failed. A retry sends to the recipients not reached yet (not to the "
                f"uncertain ones):\n{lines}"
            )
        if all(_refused_for_good(exc) for _, exc in failures):
            raise AirflowFailException(
                f"{len(failures)} of {total} SMS failed (the other recipients were sent). "
                f"Orange refused these requests as invalid, so the task is not retried:\n{lines}"
            )
        raise AirflowException(
            f"{len(failures)} of {total} SMS failed (the other recipients were sent; "
            f"a retry only sends to the failed ones that are not uncertain):\n{lines}"
        )


class GetSMSBalanceOperator(_OrangeSMSBaseOperator):
    """
    Return the account's SMS balance JSON (``partnerContracts``: ``availableUnits`` per country).

    :param country: ISO 3166 alpha-3 filter (``CIV``); defaults to the connection's ``country``.
        Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("country",)

    def __init__(
        self,
        *,
        country: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.country = country

    def execute(self, context: Context) -> dict[str, Any]:
        """
        Read the balance.

        :param context: The task context.
        """
        contracts = self.hook.get_contracts(self.country or None)
        for contract in contracts.get("partnerContracts", {}).get("contracts", []):
            for service_contract in contract.get("serviceContracts", []):
                self.log.info(
                    "%s: %s SMS units available (expires %s)",
                    service_contract.get("country"),
                    service_contract.get("availableUnits"),
                    service_contract.get("expires"),
                )
        return contracts


class GetSMSStatisticsOperator(_OrangeSMSBaseOperator):
    """
    Return the account's usage statistics JSON (``partnerStatistics``).

    :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``. Templated.
    :param app_id: Application id filter. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("country", "app_id")

    def __init__(
        self,
        *,
        country: str | None = None,
        app_id: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.country = country
        self.app_id = app_id

    def execute(self, context: Context) -> dict[str, Any]:
        """
        Read the statistics.

        :param context: The task context.
        """
        return self.hook.get_statistics(self.country or None, self.app_id or None)


class GetPurchaseOrdersOperator(_OrangeSMSBaseOperator):
    """
    Return the account's purchase history JSON (``purchaseOrders``).

    :param country: ISO 3166 alpha-3 filter; defaults to the connection's ``country``. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("country",)

    def __init__(
        self,
        *,
        country: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.country = country

    def execute(self, context: Context) -> dict[str, Any]:
        """
        Read the purchase orders.

        :param context: The task context.
        """
        return self.hook.get_purchase_orders(self.country or None)


class CreateDeliveryReceiptSubscriptionOperator(_OrangeSMSBaseOperator):
    """
    Subscribe a URL to delivery receipts and return the subscription id.

    Orange keeps one callback URL per account: this replaces any previous subscription.

    :param notify_url: HTTPS URL (port 443, whitelisted by Orange) that receives the receipts.
        Templated.
    :param sender_address: Sender number; defaults to the connection's ``sender_address``. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("notify_url", "sender_address")

    def __init__(
        self,
        *,
        notify_url: str,
        sender_address: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.notify_url = notify_url
        self.sender_address = sender_address

    def execute(self, context: Context) -> str:
        """
        Create the subscription.

        :param context: The task context.
        """
        subscription_id = self.hook.create_delivery_receipt_subscription(
            self.notify_url, sender_address=self.sender_address
        )
        self.log.info("Delivery receipts for %s: subscription %s", self.notify_url, subscription_id)
        return subscription_id


class GetDeliveryReceiptSubscriptionOperator(_OrangeSMSBaseOperator):
    """
    Return a delivery-receipt subscription's JSON (``deliveryReceiptSubscription``).

    :param subscription_id: Id returned when it was created. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("subscription_id",)

    def __init__(
        self,
        *,
        subscription_id: str,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.subscription_id = subscription_id

    def execute(self, context: Context) -> dict[str, Any]:
        """
        Read the subscription.

        :param context: The task context.
        """
        return self.hook.get_delivery_receipt_subscription(self.subscription_id)


class DeleteDeliveryReceiptSubscriptionOperator(_OrangeSMSBaseOperator):
    """
    Delete a delivery-receipt subscription (Orange stops posting receipts).

    :param subscription_id: Id returned when it was created. Templated.
    :param sender_address: Sender number; defaults to the connection's ``sender_address``. Templated.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("subscription_id", "sender_address")

    def __init__(
        self,
        *,
        subscription_id: str,
        sender_address: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(orange_sms_conn_id=orange_sms_conn_id, **kwargs)
        self.subscription_id = subscription_id
        self.sender_address = sender_address

    def execute(self, context: Context) -> None:
        """
        Delete the subscription.

        :param context: The task context.
        """
        self.hook.delete_delivery_receipt_subscription(
            self.subscription_id, sender_address=self.sender_address
        )
        self.log.info("Deleted delivery-receipt subscription %s", self.subscription_id)
