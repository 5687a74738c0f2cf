"""Triggers for the Orange SMS API: wait for the SMS balance without holding a worker slot."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_orange_sms.exceptions import TRANSIENT_ERRORS
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["BalanceTrigger"]


class BalanceTrigger(BaseTrigger):
    """
    Poll the SMS balance until at least ``minimum_units`` are available, then fire one event.

    Runs in the triggerer; the blocking hook call runs in a thread (``asyncio.to_thread``). The event
    is ``{"status": "success", "available_units": n, "minimum_units": m, "country": c}``, or
    ``{"status": "error", "message": "…"}`` when the balance cannot be read for a reason that will
    not go away by itself (credentials, bad country). Orange failing or unreachable (after the
    hook's own retries) is logged and checked again at the next interval. Reading the balance has
    no side effects, so the trigger may safely run twice.

    :param minimum_units: Units needed.
    :param country: ISO 3166 alpha-3 code, or ``None`` for the connection's country (or all).
    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    :param poke_interval: Seconds between two balance reads.
    """

    def __init__(
        self,
        minimum_units: int,
        country: str | None = None,
        orange_sms_conn_id: str = OrangeSMSHook.default_conn_name,
        poke_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.minimum_units = int(minimum_units)
        self.country = country
        self.orange_sms_conn_id = orange_sms_conn_id
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "minimum_units": self.minimum_units,
                "country": self.country,
                "orange_sms_conn_id": self.orange_sms_conn_id,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll every ``poke_interval`` seconds; yield one event when enough units are available."""
        hook = OrangeSMSHook(orange_sms_conn_id=self.orange_sms_conn_id)
        scope = self.country or "all countries"
        try:
            while True:
                try:
                    units = await asyncio.to_thread(hook.get_available_units, self.country)
                except TRANSIENT_ERRORS as exc:
                    self.log.warning(
                        "Cannot read the Orange SMS balance (%s): %s; next check in %.0f s",
                        scope,
                        exc,
                        self.poke_interval,
                    )
                    await asyncio.sleep(self.poke_interval)
                    continue
                except Exception as exc:
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "message": f"Cannot read the Orange SMS balance ({scope}): "
                            f"{type(exc).__name__}: {exc}",
                        }
                    )
                    return
                if units >= self.minimum_units:
                    self.log.info(
                        "Orange SMS balance (%s): %d units, enough (>= %d)", scope, units, self.minimum_units
                    )
                    yield TriggerEvent(
                        {
                            "status": "success",
                            "available_units": units,
                            "minimum_units": self.minimum_units,
                            "country": self.country,
                        }
                    )
                    return
                self.log.info(
                    "Orange SMS balance (%s): %d units, waiting for %d; next check in %.0f s",
                    scope,
                    units,
                    self.minimum_units,
                    self.poke_interval,
                )
                await asyncio.sleep(self.poke_interval)
        finally:
            hook.close()
