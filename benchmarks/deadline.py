"""
Deadline Alerts that text on-call (``OrangeSMSNotifier`` as an ``AsyncCallback``).

* deadline to Orange: a real deployment (``tests/support/airflow_deployment.py``: ``airflow
  api-server``, ``scheduler``, ``dag-processor``, one ``triggerer``, LocalExecutor on sqlite) runs
  ``--deadline-runs`` DAG runs, a few seconds apart, each with a 10 s deadline and a task that sleeps
  25 s; for each missed deadline, the time from the scheduler marking it missed (the deadline row's
  ``last_updated_at``) to the SMS reaching the sandbox, and from the deadline time itself: median
  and max (target: within 5 s of the evaluation); and the first missed deadline after the triggerer
  started apart from the others (without the provider's warm-up,
  ``AIRFLOW__ORANGE_SMS__TRIGGERER_WARM_UP=False`` in the benchmark's environment, that first
  callback waits for the triggerer's supervisor to build its execution API: see docs/airflow-facts.md);
* the triggerer loop's longest block while the notifier sends: the triggerer's own watchdog (it
  sleeps 0.1 s and logs "async thread was blocked for N seconds" past
  ``[triggerer] blocked_main_thread_warning_threshold``, set to 0.12 s here, 20 ms of lateness), read
  from its log during the sends (Airflow warns at 0.2 s by default), beside the same figure while
  the triggerer idled before the first deadline (the machine's own noise);
* how the notifier keeps the loop free, measured in one process on an event loop with a 10 ms
  watchdog while 10 SMS go out at the account's 5/s: the worker thread it uses
  (``asyncio.to_thread``), an async HTTP client (``httpx.AsyncClient``, the token and the sends
  only: the shared limit's file lock, Redis and the Variables would still need a thread), and the
  same sends made on the loop (what a blocking notifier would do).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.airflow_deployment import AirflowDeployment, deadline_dag, wait_for  # noqa: E402

ON_CALL = "+2250700000041"
#: The triggerer's blocked-loop threshold during the latency runs (its watchdog sleeps 0.1 s).
WATCHDOG_THRESHOLD = 0.12
BLOCKED = re.compile(r"^(\S+) .*async thread was blocked for ([0-9.]+) seconds")


def _connection(url: str, client_id: str, secret: str) -> str:
    return json.dumps(
        {
            "conn_type": "orange_sms",
            "host": url,
            "login": client_id,
            "password": secret,
            "extra": {"sender_address": "2250000"},
        }
    )


def _utc(value: str) -> float:
    return datetime.fromisoformat(str(value).replace("Z", "")).replace(tzinfo=timezone.utc).timestamp()


def _succeeded(deployment: AirflowDeployment, run_id: str) -> dict[str, Any] | None:
    callbacks = deployment.deadline_callbacks("bench_deadline", run_id)
    return next((c for c in callbacks if c["state"] == "success"), None)


def _arrival(sandbox: Any, run_id: str) -> float | None:
    with sandbox.state.lock:
        return next((m.received_at for m in sandbox.state.messages if run_id in m.message), None)


def deadline_latency(runs: int, apart: float = 5.0) -> dict[str, Any]:
    """Missed deadlines on a real deployment: latency to the sandbox, and the triggerer loop's blocks."""
    from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(config=SandboxConfig(dr_delay=None)) as sandbox, tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        deployment = AirflowDeployment(
            home=home,
            dags=home / "dags",
            extra_env={
                "AIRFLOW_CONN_ORANGE_SMS_DEFAULT": _connection(
                    sandbox.url, sandbox.client_id, sandbox.client_secret
                ),
                "ORANGE_SMS_CACHE_DIR": str(home / "cache"),
                "AIRFLOW__TRIGGERER__BLOCKED_MAIN_THREAD_WARNING_THRESHOLD": str(WATCHDOG_THRESHOLD),
                # The provider's options as set for the benchmark (triggerer_warm_up=False: the
                # first callback without the warm-up).
                **{k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__ORANGE_SMS__")},
            },
        )
        (deployment.dags / "bench_deadline.py").write_text(deadline_dag("bench_deadline", [ON_CALL], work=25))
        try:
            deployment.start_all(triggerers=1)
            deployment.wait_for_dag("bench_deadline")
            run_ids = []
            for _ in range(runs):
                run_ids.append(deployment.trigger("bench_deadline"))
                time.sleep(apart)
            callbacks = {
                r: wait_for(partial(_succeeded, deployment, r), f"the callback of {r}") for r in run_ids
            }
            arrivals = {r: wait_for(partial(_arrival, sandbox, r), f"the SMS of {r}") for r in run_ids}
            log = deployment.output("triggerer-1")
        finally:
            deployment.stop_all()
    after_evaluation = [arrivals[r] - _utc(callbacks[r]["evaluated_at"]) for r in run_ids]
    after_deadline = [arrivals[r] - _utc(callbacks[r]["deadline_time"]) for r in run_ids]
    window = (min(_utc(c["evaluated_at"]) for c in callbacks.values()), max(arrivals.values()) + 1)
    sending: list[float] = []
    idle: list[float] = []
    for line in log.splitlines():
        if match := BLOCKED.match(line):
            at, block = _utc(match[1]), float(match[2]) - 0.1
            if window[0] <= at <= window[1]:
                sending.append(block)
            elif at < window[0]:
                idle.append(block)
    return {
        "runs": runs,
        "sms": sum(1 for m in sandbox.state.messages if ON_CALL in m.address),
        "after_evaluation_median_s": statistics.median(after_evaluation),
        "after_evaluation_max_s": max(after_evaluation),
        "after_deadline_median_s": statistics.median(after_deadline),
        "after_deadline_max_s": max(after_deadline),
        # The first missed deadline after the triggerer started, and the others: unless warmed as the
        # triggerer starts, its supervisor builds its execution API on its runner's first SDK call.
        "first_after_evaluation_s": after_evaluation[0],
        "later_after_evaluation_median_s": statistics.median(after_evaluation[1:] or after_evaluation),
        "later_after_evaluation_max_s": max(after_evaluation[1:] or after_evaluation),
        "loop_longest_block_s": max(sending, default=0.0),
        "loop_blocks_over_20ms": len(sending),
        # The same machine's noise: the triggerer idle, from its start to the first missed deadline.
        "idle_loop_longest_block_s": max(idle, default=0.0),
        "idle_loop_blocks_over_20ms": len(idle),
    }


async def _watched(work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Run ``work`` beside a 10 ms watchdog; return (wall seconds, the loop's longest block)."""
    done = asyncio.Event()
    longest = 0.0

    async def watchdog() -> None:
        nonlocal longest
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            longest = max(longest, time.perf_counter() - before - 0.01)

    watching = asyncio.create_task(watchdog())
    await asyncio.sleep(0.05)  # the watchdog is asleep when the work starts
    start = time.perf_counter()
    try:
        await work()
    finally:
        wall = time.perf_counter() - start
        done.set()
        await watching
    return wall, longest


def loop_blocks(sends: int) -> dict[str, Any]:
    """The same SMS sent three ways on one event loop (see the module's docstring)."""
    import httpx

    from airflow_provider_orange_sms.notifications.orange_sms import OrangeSMSNotifier
    from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer

    numbers = [f"+22507000001{n:02d}" for n in range(sends)]
    figures: dict[str, Any] = {"sends": sends}
    with SandboxServer(config=SandboxConfig(dr_delay=None)) as sandbox, tempfile.TemporaryDirectory() as tmp:
        os.environ["AIRFLOW_CONN_ORANGE_SMS_DEFAULT"] = _connection(
            sandbox.url, sandbox.client_id, sandbox.client_secret
        )
        os.environ["ORANGE_SMS_CACHE_DIR"] = tmp

        async def in_a_thread() -> None:
            await OrangeSMSNotifier(recipients=numbers, message="late", respect_opt_out=False)

        async def on_the_loop() -> None:
            notifier = OrangeSMSNotifier(recipients=numbers, message="late", respect_opt_out=False)
            notifier.notify({})

        async def async_client() -> None:
            accept = {"Accept": "application/json"}
            async with httpx.AsyncClient(base_url=sandbox.url, timeout=30, headers=accept) as client:
                token = await client.post(
                    "/oauth/v3/token",
                    data={"grant_type": "client_credentials"},
                    auth=(sandbox.client_id, sandbox.client_secret),
                )
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                for n, number in enumerate(numbers):
                    if n:
                        await asyncio.sleep(0.2)  # the account's 5/s, within this process only
                    body = {
                        "address": f"tel:{number}",
                        "senderAddress": "tel:+2250000",
                        "outboundSMSTextMessage": {"message": "late"},
                    }
                    sent = await client.post(
                        "/smsmessaging/v1/outbound/tel%3A%2B2250000/requests",
                        json={"outboundSMSMessageRequest": body},
                        headers=headers,
                    )
                    sent.raise_for_status()

        # Warm up (imports, the token, connections): the figures are those of a triggerer that has
        # sent before.
        for work in (in_a_thread, async_client):
            asyncio.run(work())
            time.sleep(1.2)  # out of the sandbox's one-second rate window
        for name, work in (("thread", in_a_thread), ("async_client", async_client), ("on_loop", on_the_loop)):
            before = len(sandbox.state.messages)
            wall, longest = asyncio.run(_watched(work))
            time.sleep(1.2)
            figures[name] = {
                "wall_s": wall,
                "longest_block_s": longest,
                "sent": len(sandbox.state.messages) - before,
            }
    return figures


def deadline_rows(args: Any, figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table rows of this module (``benchmarks/run.py``)."""
    rows: list[tuple[str, str, str, str]] = []
    blocks = figures["loop_blocks"] = loop_blocks(10)
    latency = figures["deadline_latency"] = deadline_latency(args.deadline_runs)
    rows.append(
        (
            f"deadline -> Orange, {latency['runs']} missed deadlines",
            f"after the scheduler marked it missed: median {latency['after_evaluation_median_s']:.1f}s, "
            f"max {latency['after_evaluation_max_s']:.1f}s; after the deadline time: median "
            f"{latency['after_deadline_median_s']:.1f}s, max {latency['after_deadline_max_s']:.1f}s; "
            f"{latency['sms']} SMS",
            f"{latency['after_evaluation_max_s']:.1f}s",
            "<= 5s, 1 SMS each",
        )
    )
    rows.append(
        (
            "  the first one after the triggerer started, then the others",
            f"first: {latency['first_after_evaluation_s']:.1f}s; the others: median "
            f"{latency['later_after_evaluation_median_s']:.1f}s, max "
            f"{latency['later_after_evaluation_max_s']:.1f}s",
            f"{latency['first_after_evaluation_s']:.1f}s",
            "<= 5s",
        )
    )
    rows.append(
        (
            "  triggerer loop's longest block while sending",
            f"{latency['loop_longest_block_s'] * 1000:.0f} ms "
            f"({latency['loop_blocks_over_20ms']} watchdog wake-ups over 20 ms late); idle before the "
            f"first deadline: {latency['idle_loop_longest_block_s'] * 1000:.0f} ms "
            f"({latency['idle_loop_blocks_over_20ms']})",
            f"{latency['loop_longest_block_s']:.3f}s",
            "< 0.2s (Airflow's warning)",
        )
    )
    for name, label in (
        ("thread", "worker thread (what the notifier does)"),
        ("async_client", "httpx.AsyncClient (token and sends only)"),
        ("on_loop", "sends made on the loop"),
    ):
        figure = blocks[name]
        rows.append(
            (
                f"  10 SMS at 5/s from an event loop, {label}",
                f"{figure['sent']} sent in {figure['wall_s']:.2f}s, "
                f"longest loop block {figure['longest_block_s'] * 1000:.0f} ms",
                f"{figure['longest_block_s']:.3f}s",
                "(informative)",
            )
        )
    return rows
