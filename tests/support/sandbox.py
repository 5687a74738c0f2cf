"""The sandbox in tests: a connection to it, what it received, a top-up while a task waits."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from airflow_provider_orange_sms.client import RetryPolicy
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer

#: A sandbox sender that is a developer's own number, not one of Orange's 12 country numbers.
OWN_NUMBER = "2250700009999"

#: Fast backoff so retry tests take milliseconds, not seconds.
FAST_RETRY = RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.05)


def connection_json(sandbox: SandboxServer, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_…`` JSON value pointing at ``sandbox``."""
    extras = {"sender_address": "2250000", "retry_backoff": 0.01, "max_attempts": 4}
    extras.update(extra)
    return json.dumps(
        {
            "conn_type": "orange_sms",
            "host": sandbox.url,
            "login": sandbox.client_id,
            "password": sandbox.client_secret,
            "extra": extras,
        }
    )


def jitter_tolerant() -> SandboxConfig:
    """
    A sandbox whose rate-limit window is 0.9 s instead of 1 s, for tests over real HTTP whose sends
    come from several processes (machines with their own clocks), where the release instants of
    :func:`tests.support.rate.judge_rate_at_release` cannot be compared: 0.9 s tolerates 100 ms of
    arrival jitter.
    """
    return SandboxConfig(dr_delay=None, rate_window=0.9)


def send_requests(sandbox: SandboxServer) -> list[dict[str, Any]]:
    """The send requests (``POST …/requests``) the sandbox received, accepted or not."""
    return [r for r in sandbox.state.requests if r["method"] == "POST" and "/requests" in r["path"]]


def received(sandbox: SandboxServer) -> Counter[str]:
    """SMS the sandbox accepted, per recipient."""
    return Counter(m.address for m in sandbox.state.messages)


@contextlib.contextmanager
def top_up_after_balance_reads(
    sandbox: SandboxServer, reads: int, country: str, units: int
) -> Iterator[None]:
    """
    While the block runs, set ``country``'s balance to ``units`` once the sandbox has answered
    ``reads`` balance requests (e.g. the operator's check, then a trigger's first poll): a top-up
    that lands while a task waits for credit, awaited on the requests rather than on time.
    """
    stop = threading.Event()

    def top_up() -> None:
        while not stop.is_set():
            with sandbox.state.lock:
                seen = sum(r["path"].endswith("/contracts") for r in sandbox.state.requests)
            if seen >= reads:
                sandbox.state.balances[country] = units
                return
            stop.wait(0.05)

    helper = threading.Thread(target=top_up, daemon=True)
    helper.start()
    try:
        yield
    finally:
        stop.set()
        helper.join()
