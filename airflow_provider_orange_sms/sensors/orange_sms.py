"""Sensors for the Orange SMS API: wait for SMS credit, for delivery receipts, for replies."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_orange_sms.exceptions import TRANSIENT_ERRORS
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.sensors.delivery_receipts import DeliveryReceiptSensor
from airflow_provider_orange_sms.sensors.replies import SMSReplySensor
from airflow_provider_orange_sms.triggers.orange_sms import BalanceTrigger
from airflow_provider_orange_sms.version_compat import AirflowException, conf

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

__all__ = ["BalanceSensor", "DeliveryReceiptSensor", "SMSReplySensor"]


def _to_units(value: object) -> int:
    """Convert a (rendered) ``minimum_units`` to a non-negative int, or raise a clear error."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid minimum_units {value!r}: expected a whole number of SMS units")
    if isinstance(value, int):
        units = value
    elif isinstance(value, float) and value.is_integer():
        units = int(value)
    elif isinstance(value, str):
        try:
            units = int(value.strip())
        except ValueError:
            raise ValueError(
                f"Invalid minimum_units {value!r}: expected a whole number of SMS units, such as '8'"
            ) from None
    else:
        raise ValueError(f"Invalid minimum_units {value!r}: expected a whole number of SMS units")
    if units < 0:
        raise ValueError(f"Invalid minimum_units {value!r}: must not be negative")
    return units


class BalanceSensor(BaseSensorOperator):
    """
    Wait until the account has at least ``minimum_units`` SMS units (for one country, or in total).

    Logs the balance at each check and pushes it to XCom when done. A check that fails for a reason
    that may go away (Orange failing or unreachable, after the hook's own retries) is logged and
    counts as "not yet"; other errors (credentials, bad country) fail the task. With ``deferrable=True`` the
    balance is checked once; if it is too low the wait is handed to
    :class:`~airflow_provider_orange_sms.triggers.orange_sms.BalanceTrigger` in the triggerer (no
    worker slot held), which checks every ``poke_interval`` seconds until ``timeout``.

    :param minimum_units: Units needed, e.g. the number of recipients of the next send. Templated: a
        rendered string such as ``"8"`` is converted to an int.
    :param country: ISO 3166 alpha-3 code (``CIV``); ``None`` uses the connection's ``country``, or
        sums every country when it has none. Templated.
    :param deferrable: Wait in the triggerer instead of a worker; defaults to Airflow's
        ``[operators] default_deferrable``.
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    template_fields: Sequence[str] = ("minimum_units", "country")
    ui_color = "#ff7900"

    def __init__(
        self,
        *,
        minimum_units: int | str,
        country: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.minimum_units = minimum_units
        self.country = country
        self.deferrable = deferrable
        self.orange_sms_conn_id = orange_sms_conn_id

    @cached_property
    def hook(self) -> OrangeSMSHook:
        """The hook for ``orange_sms_conn_id``."""
        return OrangeSMSHook(orange_sms_conn_id=self.orange_sms_conn_id)

    def close_hook(self) -> None:
        """Close the hook's HTTP session and limiter state file, if the hook was used."""
        hook = self.__dict__.get("hook")
        if hook is not None:
            hook.close()

    @property
    def _scope(self) -> str:
        return self.country or self.hook.client.country or "all countries"

    def _check(self, minimum: int) -> tuple[bool, int]:
        """Read the balance once and log it; return whether it covers ``minimum`` and the balance."""
        units = self.hook.get_available_units(self.country or None)
        enough = units >= minimum
        self.log.info(
            "Orange SMS balance (%s): %d units available, %d needed: %s",
            self._scope,
            units,
            minimum,
            "enough" if enough else "waiting",
        )
        return enough, units

    def poke(self, context: Context) -> PokeReturnValue:
        """
        Read the balance once; done (with the balance as XCom) when it is at least ``minimum_units``.

        :param context: The task context.
        """
        try:
            enough, units = self._check(_to_units(self.minimum_units))
        except TRANSIENT_ERRORS as exc:
            self.log.warning(
                "Cannot read the Orange SMS balance (%s); checking again in %s s", exc, self.poke_interval
            )
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=enough, xcom_value=units)

    def execute(self, context: Context) -> Any:
        """
        Wait for the balance, in this worker or (``deferrable=True``) in the triggerer.

        :param context: The task context.
        """
        try:
            return self._wait(context)
        finally:
            # The pokes of one try reuse the hook's session; the try ends with it closed.
            self.close_hook()

    def _wait(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        minimum = _to_units(self.minimum_units)
        try:
            enough, units = self._check(minimum)
        except TRANSIENT_ERRORS as exc:
            self.log.warning("Cannot read the Orange SMS balance (%s); the trigger will keep trying", exc)
            enough, units = False, 0
        if enough:
            return units
        self.defer(
            trigger=BalanceTrigger(
                minimum_units=minimum,
                country=self.country or None,
                orange_sms_conn_id=self.orange_sms_conn_id,
                poke_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> int:
        """
        Finish after the trigger fired: return the balance, or fail on an error event.

        :param context: The task context.
        :param event: The trigger's event payload.
        """
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "no event received")
            raise AirflowException(f"Waiting for the Orange SMS balance failed: {message}")
        units = int(event["available_units"])
        try:
            self.log.info(
                "Orange SMS balance (%s): %d units available, %s needed: enough",
                self._scope,
                units,
                event.get("minimum_units"),
            )
        finally:
            self.close_hook()
        return units
