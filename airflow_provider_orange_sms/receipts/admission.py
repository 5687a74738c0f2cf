"""
Admission: how many callbacks the receiver stores at once, so that a flood of receipts never takes
the API server from the tasks it serves.

The receiver shares its API server process with whatever else that process serves: with the default
``airflow api-server`` (``--apps all``), the execution API every task's ledger write and opt-out read
goes through. Both store in worker threads. Unbounded, a flood of receipts (what Orange sends after
the receiver was unreachable for a while) would take every thread of the server's shared pool (40)
and every database connection of its pool, and the tasks' calls would queue behind the receipts.

So each API server process stores at most ``[orange_sms] delivery_receipts_max_concurrent_stores``
callbacks at once, their worker threads counted apart from the 40 the server's other endpoints
share. A callback waits for its turn without a thread (on the event loop), in order of arrival, at
most :data:`ADMISSION_WAIT`; then it is answered ``503`` with ``Retry-After`` and nothing is
stored: Orange sends it again later.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from airflow_provider_orange_sms.settings import (
    DEFAULT_DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES,
    DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES,
    SECTION,
)

if TYPE_CHECKING:
    from collections.abc import Callable

P = TypeVar("P")
R = TypeVar("R")

#: Longest wait for a turn to store; then 503 + ``Retry-After``. Well under a sender's own timeout.
ADMISSION_WAIT = timedelta(seconds=5)


class AdmissionSettingError(ValueError):
    """``[orange_sms] delivery_receipts_max_concurrent_stores`` is not a usable number."""


class ReceiverBusyError(RuntimeError):
    """No turn to store came within :data:`ADMISSION_WAIT`: nothing was stored (answer 503)."""


@functools.lru_cache(maxsize=8)
def parse_max_concurrent_stores(raw: str) -> int:
    """
    Parse ``[orange_sms] delivery_receipts_max_concurrent_stores``.

    Returns the number of callbacks one API server process stores at once (the default when empty).

    :param raw: The option's value as configured.
    :raises AdmissionSettingError: Naming the value, when it is not a whole number of at least 1.
    """
    if not raw.strip():
        return DEFAULT_DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value >= 1 and value.is_integer()) or math.isinf(value):
        raise AdmissionSettingError(
            f"invalid [{SECTION}] {DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES} {raw!r}: expected a whole "
            f"number of at least 1 (default {DEFAULT_DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES})"
        )
    return int(value)


def max_concurrent_stores() -> int:
    """
    ``[orange_sms] delivery_receipts_max_concurrent_stores`` from Airflow's configuration.

    :raises AdmissionSettingError: Naming the value, when it is not a whole number of at least 1.
    """
    from airflow.configuration import conf

    return parse_max_concurrent_stores(
        conf.get(SECTION, DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES, fallback="") or ""
    )


@dataclass(frozen=True)
class Gate:
    """
    One event loop's turns to store: waiting callbacks queue here, in order of arrival.

    :param size: How many callbacks store at once.
    :param turns: Taken for a whole store; acquired with a bounded wait.
    :param threads: Counts the stores' worker threads apart from the shared 40 (as many as turns:
        never waited for).
    """

    size: int
    turns: anyio.Semaphore
    threads: anyio.CapacityLimiter


_gate: RunVar[Gate] = RunVar("orange_sms_receiver_gate")


def current_gate(size: int) -> Gate:
    """
    The running event loop's gate of ``size`` turns (a new one when the setting changed).

    :param size: The configured number of stores at once.
    """
    try:
        gate = _gate.get()
    except LookupError:
        gate = None
    if gate is None or gate.size != size:
        gate = Gate(size, anyio.Semaphore(size, fast_acquire=True), anyio.CapacityLimiter(size))
        _gate.set(gate)
    return gate


async def store_admitted(store: Callable[[P], R], parsed: P, *, wait: timedelta | None = None) -> R:
    """
    Run ``store(parsed)`` in a worker thread once a turn is free.

    Returns what ``store`` returned.

    :param store: The blocking store function.
    :param parsed: Its argument.
    :param wait: The longest wait for a turn (default :data:`ADMISSION_WAIT`).
    :raises ReceiverBusyError: No turn came within ``wait``; ``store`` was not called.
    :raises AdmissionSettingError: The setting is invalid; ``store`` was not called.
    """
    gate = current_gate(max_concurrent_stores())
    seconds = (ADMISSION_WAIT if wait is None else wait).total_seconds()
    with anyio.move_on_after(seconds) as waited:
        await gate.turns.acquire()
    if waited.cancelled_caught:
        raise ReceiverBusyError(f"{gate.size} stores already running and no turn within {seconds:g} s")
    try:
        # Once started, the store runs to its end even if the client goes away: it is committed or not.
        return await anyio.to_thread.run_sync(store, parsed, limiter=gate.threads)
    finally:
        gate.turns.release()
