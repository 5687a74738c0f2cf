"""Notifier sending an SMS through the Orange SMS API, for ``on_failure_callback`` and friends.

Cheap to import: the triggerer imports it on its event loop when a deadline's callback starts, so
the hook, the wire client (requests) and the records are imported by the worker thread that sends.
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_orange_sms.settings import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
    from airflow_provider_orange_sms.ledger import DeadlineRecord
    from airflow_provider_orange_sms.opt_out import OptOutCheck

__all__ = ["OrangeSMSNotifier", "send_orange_sms_notification"]

#: Seconds between two looks at the record while another triggerer sends a deadline's SMS.
OWNER_POLL = 1.0


class OrangeSMSNotifier(BaseNotifier):
    """
    Send an SMS when a DAG or task event happens, e.g. a failure.

    .. code-block:: python

        BashOperator(
            task_id="load",
            bash_command="exit 1",
            on_failure_callback=send_orange_sms_notification(
                recipients=["+2250700000001"],
                message="{{ dag.dag_id }}.{{ ti.task_id }} failed ({{ run_id }})",
            ),
        )

    On Airflow 3.1+, it also texts on-call staff when a DAG run misses a deadline, from the
    triggerer (``async_notify``), or on an executor with ``SyncCallback``:

    .. code-block:: python

        DAG(
            ...,
            deadline=DeadlineAlert(
                reference=DeadlineReference.DAGRUN_QUEUED_AT,
                interval=timedelta(hours=2),
                callback=AsyncCallback(
                    OrangeSMSNotifier,
                    kwargs={"recipients": ["+2250700000001"], "message": "{{ dag_run.dag_id }} is late"},
                ),
            ),
        )

    In the triggerer, the sends run in a worker thread (the event loop never waits on them) and a
    record kept per deadline makes them exactly-once: a triggerer killed and restarted, or a second
    triggerer, never texts anyone twice for one missed deadline. The deadline's context has
    ``dag_run`` (a dict: ``dag_run.dag_id``, ``dag_run.run_id``…) and ``deadline`` (``id``,
    ``deadline_time``), not ``dag`` or ``ti``.

    Recipients are parsed and validated as by
    :class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator` (a list, a
    list-looking string or a comma-separated string). Every recipient is tried; if any
    send fails the notifier raises listing them.

    Like ``SendSMSOperator``, it honours the opt-out list by default: a recipient who replied STOP
    to the sender number is not texted (its record is read right before its send; a record that
    cannot be read counts as a failed send, never as "not opted out"). Alerts to your own on-call
    staff are service messages they agreed to: pass ``respect_opt_out=False`` when a STOP sent by
    mistake must not silence them.

    :param recipients: Phone numbers: international (``+225…``), or national in the connection's
        ``country``. Templated.
    :param message: The SMS text. Templated (the context has ``dag``, ``ti``, ``run_id``…).
    :param sender_address: Sender number; defaults to the connection's ``sender_address``. Templated.
    :param sender_name: Whitelisted sender name; defaults to the connection's. Templated.
    :param respect_opt_out: Skip recipients on the opt-out list (the default).
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    :param context: The context Airflow hands a Deadline Alert's callback (it passes it itself).
    """

    template_fields: Sequence[str] = ("recipients", "message", "sender_address", "sender_name")

    def __init__(
        self,
        *,
        recipients: str | Sequence[str],
        message: str,
        sender_address: str | None = None,
        sender_name: str | None = None,
        respect_opt_out: bool = True,
        orange_sms_conn_id: str = DEFAULT_CONN_ID,
        context: Context | None = None,
    ) -> None:
        super().__init__()
        # Airflow 3.1+ awaits the notifier with the context it was built with (3.0's takes none).
        self.context = context or {}
        self.recipients = recipients
        self.message = message
        self.sender_address = sender_address
        self.sender_name = sender_name
        self.respect_opt_out = respect_opt_out
        self.orange_sms_conn_id = orange_sms_conn_id

    @cached_property
    def hook(self) -> OrangeSMSHook:
        """The hook for ``orange_sms_conn_id``."""
        from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook

        return OrangeSMSHook(orange_sms_conn_id=self.orange_sms_conn_id)

    def notify(self, context: Context) -> None:
        """
        Send the (rendered) message to every recipient (task and DAG callbacks, ``SyncCallback``).

        :param context: The Airflow context the templates were rendered with.
        """
        self._send(context, None)

    async def async_notify(self, context: Context) -> None:
        """
        Send the (rendered) message from the triggerer (a Deadline Alert's ``AsyncCallback``).

        The sends run in a worker thread (the token fetch, the shared send limit's file lock or Redis
        calls, the HTTP request and the opt-out reads all block), so the triggerer's event loop never
        waits on them. For a missed deadline, the deadline's record makes the SMS exactly-once: a
        triggerer restarted after a crash, or a second triggerer, texts nobody twice (see
        :class:`~airflow_provider_orange_sms.ledger.deadline_record.DeadlineRecord`).

        :param context: What Airflow passes a deadline callback (``dag_run``, ``deadline``).
        """
        record = await asyncio.to_thread(self._deadline_record, context)
        if record is not None:
            # Two requests to the triggerer's supervisor at once: the connection, and the record.
            try:
                await asyncio.gather(asyncio.to_thread(self._client), asyncio.to_thread(record.load))
            except BaseException:
                self.hook.close()
                raise
        await asyncio.to_thread(self._send, context, record)
        while record is not None and record.lost:
            # Another triggerer sends it: wait for its outcome, so this callback ends with it too.
            await asyncio.sleep(OWNER_POLL)
            entries = await asyncio.to_thread(record.owner_outcome)
            if entries is not None:
                self._report_owner_outcome(entries)
                return
            if not record.lost:  # the owner went silent (its triggerer died): send what is left
                await asyncio.to_thread(self._send, context, record)

    @staticmethod
    def _deadline_record(context: Context) -> DeadlineRecord | None:
        from airflow_provider_orange_sms.ledger import DeadlineRecord

        return DeadlineRecord.for_context(context)

    def _report_owner_outcome(self, entries: dict[str, dict[str, Any]]) -> None:
        from airflow_provider_orange_sms.ledger import FAILED, UNCERTAIN
        from airflow_provider_orange_sms.version_compat import AirflowException

        failed = [f"{a}: {e['status']}" for a, e in entries.items() if e.get("status") in (FAILED, UNCERTAIN)]
        if failed:
            raise AirflowException(
                "Orange SMS notification, sent by another run of this deadline's callback, failed for "
                + "; ".join(failed)
            )
        self.log.info("Notification sent by another run of this deadline's callback")

    def _sweep(self, record: DeadlineRecord) -> None:
        try:
            record.sweep()
        except Exception as exc:
            self.log.warning("Old deadline records not swept: %s: %s", type(exc).__name__, exc)

    def _client(self) -> None:
        self.hook.client  # noqa: B018 - builds the client: reads the connection

    def _send(self, context: Context, record: DeadlineRecord | None) -> None:
        from airflow_provider_orange_sms.ledger import DeadlineRecordSupersededError
        from airflow_provider_orange_sms.opt_out import OptOutCheck, OptOutListUnreadableError
        from airflow_provider_orange_sms.recipients import check_message, validate_recipients
        from airflow_provider_orange_sms.version_compat import AirflowException

        failures: list[str] = []
        addresses: list[str] = []
        try:
            # The connection's country reads national numbers; its max_message_length bounds the text.
            client = self.hook.client
            addresses = validate_recipients(self.recipients, self.log, default_country=client.country)
            message = check_message(self.message, client.max_message_length)
            opt_out = OptOutCheck.for_task(respect=self.respect_opt_out, logger=self.log)
            decisions: dict[str, Any] = {}

            def read_opt_outs() -> None:
                for address in addresses:
                    try:
                        decisions[address] = opt_out.opted_out(address)
                    except OptOutListUnreadableError as exc:
                        decisions[address] = exc

            # A deadline's opt-out reads are made while its claim settles.
            if record is not None and not record.claim(addresses, meanwhile=read_opt_outs):
                return
            for address in addresses:
                if record is not None and (earlier := record.earlier(address)):
                    self.log.warning(
                        "Notification not sent again to %s: an earlier run of this deadline's callback "
                        "left it %s",
                        address,
                        earlier,
                    )
                    continue
                if address not in decisions:
                    try:
                        decisions[address] = opt_out.opted_out(address)
                    except OptOutListUnreadableError as exc:
                        decisions[address] = exc
                opted_out = decisions[address]
                if isinstance(opted_out, OptOutListUnreadableError):
                    failures.append(f"{address}: not sent, {opted_out}")
                    continue
                if opted_out is not None:
                    self.log.info("Notification not sent to %s: opted out since %s", address, opted_out.at)
                    continue
                failure = self._send_one(address, message, record, opt_out)
                if failure is not None:
                    failures.append(failure)
            if record is not None:
                record.finish()
                self._sweep(record)
        except DeadlineRecordSupersededError as exc:
            self.log.warning("Notification stopped: %s", exc)
        finally:
            # DAG-level callbacks run in a long-lived process: do not leave the session open.
            self.hook.close()
        if failures:
            raise AirflowException(
                f"Orange SMS notification failed for {len(failures)} of {len(addresses)} recipient(s): "
                + "; ".join(failures)
            )

    def _send_one(
        self, address: str, message: str, record: DeadlineRecord | None, opt_out: OptOutCheck
    ) -> str | None:
        """Send to one recipient, recording the outcome; return what went wrong, if anything."""
        from airflow_provider_orange_sms.exceptions import OrangeSMSError, OrangeSMSSendUncertainError
        from airflow_provider_orange_sms.ledger import FAILED, SENT, UNCERTAIN, DeadlineRecordSupersededError
        from airflow_provider_orange_sms.opt_out import OptOutListUnreadableError

        in_flight = None if record is None else record.before_send(address)

        def read_again() -> None:
            # The first read may be long past (a deadline's claim settling, the limiter, a retry's
            # wait after a 429 or a 503): a STOP stored meanwhile holds.
            found = opt_out.opted_out(address)
            if found is not None:
                raise _OptedOutMeanwhile(found.at)

        def before_send() -> None:
            read_again()
            if in_flight is not None:
                in_flight()

        try:
            resource_id = self.hook.send_sms(
                address,
                message,
                sender_address=self.sender_address,
                sender_name=self.sender_name,
                before_send=before_send,
                before_retry=read_again,
            )
        except DeadlineRecordSupersededError:
            raise
        except (_OptedOutMeanwhile, OptOutListUnreadableError) as exc:
            if record is not None and record.was_in_flight(address):  # a retry's read: nothing accepted
                self._record_outcome(record, address, FAILED)
            if isinstance(exc, OptOutListUnreadableError):
                return f"{address}: not sent, {exc}"
            self.log.info("Notification not sent to %s: opted out since %s", address, exc)
            return None
        except OrangeSMSError as exc:
            if record is not None and record.was_in_flight(address):
                status = UNCERTAIN if isinstance(exc, OrangeSMSSendUncertainError) else FAILED
                self._record_outcome(record, address, status)
            return f"{address}: {exc}"
        except Exception as exc:
            if record is None:
                raise
            # Writing the record failed before the request left: nothing was sent.
            return (
                f"{address}: not sent, the deadline record could not be written ({type(exc).__name__}: {exc})"
            )
        if record is not None:
            self._record_outcome(record, address, SENT, resource_id)
        self.log.info("Notification SMS sent to %s (resource id %s)", address, resource_id)
        return None

    def _record_outcome(
        self, record: DeadlineRecord, address: str, status: str, resource_id: str | None = None
    ) -> None:
        try:
            record.outcome(address, status, resource_id)
        except Exception as exc:
            # Its "in flight" entry stays, which is enough to never text it twice.
            self.log.warning(
                "Outcome of the send to %s not recorded (%s: %s)", address, type(exc).__name__, exc
            )


class _OptedOutMeanwhile(Exception):
    """The recipient opted out after the notifier's first read of the list: not sent."""


send_orange_sms_notification = OrangeSMSNotifier
