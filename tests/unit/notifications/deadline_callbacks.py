"""Running OrangeSMSNotifier the way the triggerer runs a Deadline Alert's ``AsyncCallback``."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from datetime import datetime, timezone
from typing import Any

from airflow_provider_orange_sms.ledger.ledger_stores import InMemoryLedgerStore

#: What ``AsyncCallback(OrangeSMSNotifier, …)`` stores as the callback's path.
NOTIFIER_PATH = "airflow_provider_orange_sms.notifications.orange_sms.OrangeSMSNotifier"


class SharedStore(InMemoryLedgerStore):
    """An in-memory record store that several threads (triggerers) may use at once."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self.lock:
            return super().get(key)

    def set(self, key: str, value: Any, description: str) -> None:
        with self.lock:
            super().set(key, value, description)


def deadline_context(dag_id: str) -> dict[str, Any]:
    """The context the scheduler gives a missed deadline's callback (``Deadline.handle_miss``)."""
    return {
        "dag_run": {"dag_id": dag_id, "dag_run_id": f"scheduled__{dag_id}", "state": "running"},
        "deadline": {"id": str(uuid.uuid4()), "deadline_time": datetime.now(timezone.utc).isoformat()},
    }


def run_callback_trigger(
    kwargs: dict[str, Any], context: dict[str, Any], beside: Coroutine[Any, Any, None] | None = None
) -> list[dict[str, Any]]:
    """
    Run Airflow's ``CallbackTrigger`` for the notifier on an event loop; return its events' payloads.

    :param kwargs: The ``AsyncCallback``'s kwargs.
    :param context: The context the scheduler adds.
    :param beside: A coroutine to run on the same loop meanwhile.
    """
    from airflow.triggers.callback import CallbackTrigger

    trigger = CallbackTrigger(callback_path=NOTIFIER_PATH, callback_kwargs={**kwargs, "context": context})

    async def run() -> list[dict[str, Any]]:
        async def collect() -> list[dict[str, Any]]:
            return [event.payload async for event in trigger.run()]

        if beside is None:
            return await collect()
        events, _ = await asyncio.gather(collect(), beside)
        return events

    return asyncio.run(run())
