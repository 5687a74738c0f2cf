"""Notifier sending an SMS through the Orange SMS API, for ``on_failure_callback`` and friends."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseNotifier

from airflow_provider_orange_sms.exceptions import OrangeSMSError
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.opt_out import OptOutCheck, OptOutListUnreadableError
from airflow_provider_orange_sms.recipients import check_message, validate_recipients
from airflow_provider_orange_sms.version_compat import AirflowException

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

__all__ = ["OrangeSMSNotifier", "send_orange_sms_notification"]


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
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
    ) -> None:
        super().__init__()
        self.recipients = recipients
        self.message = message
        self.sender_address = sender_address
        self.sender_name = sender_name
        self.respect_opt_out = respect_opt_out
        self.orange_sms_conn_id = orange_sms_conn_id

    @cached_property
    def hook(self) -> OrangeSMSHook:
        """The hook for ``orange_sms_conn_id``."""
        return OrangeSMSHook(orange_sms_conn_id=self.orange_sms_conn_id)

    def notify(self, context: Context) -> None:
        """
        Send the (rendered) message to every recipient.

        :param context: The Airflow context the templates were rendered with.
        """
        failures: list[str] = []
        try:
            # The connection's country reads national numbers; its max_message_length bounds the text.
            client = self.hook.client
            addresses = validate_recipients(self.recipients, self.log, default_country=client.country)
            message = check_message(self.message, client.max_message_length)
            opt_out = OptOutCheck.for_task(respect=self.respect_opt_out, logger=self.log)
            for address in addresses:
                try:
                    record = opt_out.opted_out(address)
                except OptOutListUnreadableError as exc:
                    failures.append(f"{address}: not sent, {exc}")
                    continue
                if record is not None:
                    self.log.info("Notification not sent to %s: opted out since %s", address, record.at)
                    continue
                try:
                    resource_id = self.hook.send_sms(
                        address, message, sender_address=self.sender_address, sender_name=self.sender_name
                    )
                except OrangeSMSError as exc:
                    failures.append(f"{address}: {exc}")
                    continue
                self.log.info("Notification SMS sent to %s (resource id %s)", address, resource_id)
        finally:
            # DAG-level callbacks run in a long-lived process: do not leave the session open.
            self.hook.close()
        if failures:
            raise AirflowException(
                f"Orange SMS notification failed for {len(failures)} of {len(addresses)} recipient(s): "
                + "; ".join(failures)
            )


send_orange_sms_notification = OrangeSMSNotifier
