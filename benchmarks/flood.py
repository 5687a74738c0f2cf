"""
Receipts never starve sends: a send task's pace and an on-call alert's trigger-to-Orange time, each
alone and beside a flood of delivery receipts, measured side by side in one run on an Airflow of its
own (scheduler with the LocalExecutor, dag-processor, API server(s); SQLite unless
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` names another database), against the sandbox at Orange's 5/s.

Topologies (``--flood-topologies``):

* ``one``: one ``airflow api-server`` serves everything (UI, REST API, the receiver, the execution
  API every task calls), as ``airflow standalone`` runs it;
* ``split``: ``airflow api-server --apps core`` (UI, REST API, the receiver) and
  ``airflow api-server --apps execution`` (tasks) as two processes, the scheduler's
  ``[core] execution_api_server_url`` pointing at the second: the recommended topology.

The flood: ``--flood-connections`` keep-alive connections (48) posting receipts back to back from
their own process, each receipt new (a 503 is not retried: its receipt must be stored nowhere; the
connection pauses a second, as a sender asked to retry later would). Per round, the send task
(``--flood-sends`` SMS, ``bench_flood_send``) runs alone, then beside the flood; then the alert
(``bench_flood_alert``) runs ``--flood-alerts`` times alone and as many beside a flood of its own,
in alternation, so that whatever else loads the machine weighs on both sides alike (the median of
each side). Pace is measured on the sandbox's arrival times; the alert from the REST call that
triggers its DAG run to its SMS reaching the sandbox. Printed per round: the ratios (flooded /
alone), the execution API's p50/p90 as the task saw them (the API servers' access logs), receipts/s
and 5xx during the send task's flood, the API servers' CPU per receipt (``/proc``, that flood's
whole window: the task's own execution-API calls included) and the sender's own, the load average,
and whether every receipt answered 200 was stored exactly once and every one answered 503 not at
all. ``flood_deployment.py`` runs the same rounds on the deployment topology.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flood_airflow import LIMIT, Airflow, Stack
from run import sandbox_process, state

SEND_ADDRESS = "tel:+2250710"
ALERT_ADDRESS = "tel:+2250799000001"


def _receipt(resource_id: str) -> bytes:
    return json.dumps(
        {
            "deliveryInfoNotification": {
                "callbackData": resource_id,
                "deliveryInfo": {"address": "tel:+2250720000001", "deliveryStatus": "DeliveredToTerminal"},
            }
        }
    ).encode()


async def _connection(
    host: str, port: int, path: str, prefix: str, stop: Any, results: dict[str, list[str]]
) -> None:
    """One sender's connection: receipts back to back; each id recorded under the answer's status."""
    n = 0
    reader = writer = None
    while not stop.is_set():
        resource_id = f"{prefix}{n}"
        n += 1
        payload = _receipt(resource_id)
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            status = int((await asyncio.wait_for(reader.readline(), 120)).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, IndexError, ValueError):
            results["error"].append(resource_id)
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.5)
            continue
        results[str(status)].append(resource_id)
        if status >= 500:
            await asyncio.sleep(1.0)


def _flood(
    host: str, port: int, path: str, prefix: str, connections: int, niceness: int, stop: Any, out: Any
) -> None:
    """
    The flood's process: ``connections`` connections until ``stop``; puts its results and its own
    CPU seconds on ``out``.
    """
    from collections import defaultdict

    os.nice(niceness)
    results: dict[str, list[str]] = defaultdict(list)

    async def main() -> None:
        await asyncio.gather(
            *(_connection(host, port, path, f"{prefix}{c}-", stop, results) for c in range(connections))
        )

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    started, cpu_before = time.monotonic(), cpu()  # the process's imports left out
    asyncio.run(main())
    out.put({"seconds": time.monotonic() - started, "results": dict(results), "cpu_s": cpu() - cpu_before})


def send_pace(stack: Airflow, sandbox_url: str) -> dict[str, Any]:
    """Run the send task once; its pace on the sandbox's arrival times."""
    started, run_id = stack.trigger("bench_flood_send")
    outcome = stack.wait_run("bench_flood_send", run_id)
    latency = stack.execution_api_latency(started, time.time())
    arrivals = sorted(
        m["received_at"]
        for m in state(sandbox_url)["messages"]
        if m["address"].startswith(SEND_ADDRESS) and m["received_at"] >= started
    )
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    return {
        "state": outcome,
        "sent": len(arrivals),
        "rate": rate,
        "pace": rate / LIMIT,
        "execution_api": latency,
    }


def alert_time(stack: Airflow, sandbox_url: str, times: int = 1) -> dict[str, Any]:
    """
    Trigger the alert ``times`` times, one after the other; the median of the seconds from the
    trigger call to its SMS reaching the sandbox (the scheduler's loop alone moves one by ~1 s), and
    of the trigger call's own (the REST API's answer).
    """
    seconds, calls, outcomes = [], [], []
    for _ in range(times):
        started, run_id = stack.trigger("bench_flood_alert")
        calls.append(time.time() - started)
        outcomes.append(stack.wait_run("bench_flood_alert", run_id))
        arrived = [
            m["received_at"]
            for m in state(sandbox_url)["messages"]
            if m["address"] == ALERT_ADDRESS and m["received_at"] >= started
        ]
        seconds.append(min(arrived) - started if arrived else float("nan"))
    return alert_summary(seconds, calls, outcomes)


def alert_summary(seconds: list[float], calls: list[float], outcomes: list[str]) -> dict[str, Any]:
    """Alerts' figures: their runs' states, the median, range and each of their times."""
    return {
        "state": ",".join(sorted(set(outcomes))),
        "seconds": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "each": seconds,
        "trigger_call_s": statistics.median(calls),
        "calls": calls,
    }


def paired_alerts(
    stack: Airflow, sandbox_url: str, prefix: str, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """
    ``--flood-alerts`` pairs of alerts, each pair one alone then one beside a flood of its own:
    whatever else loads the machine meanwhile weighs on both sides alike. (alone, beside, whether
    every receipt of those floods answered 200 was stored once and no 5xx one was stored.)
    """
    alone: list[dict[str, Any]] = []
    beside: list[dict[str, Any]] = []
    stored_once = True
    for i in range(args.flood_alerts):
        alone.append(alert_time(stack, sandbox_url))
        alert, flood = flooded(
            stack,
            args.flood_connections,
            f"{prefix}a{i}-",
            lambda: alert_time(stack, sandbox_url),
            args.flood_nice,
        )
        beside.append(alert)
        stored_once = stored_once and flood["stored_once"]

    def merged(alerts: list[dict[str, Any]]) -> dict[str, Any]:
        return alert_summary(
            [s for a in alerts for s in a["each"]],
            [c for a in alerts for c in a["calls"]],
            [o for a in alerts for o in a["state"].split(",")],
        )

    return merged(alone), merged(beside), stored_once


def flooded(
    stack: Airflow, connections: int, prefix: str, work: Any, niceness: int = 0
) -> tuple[Any, dict[str, Any]]:
    """Run ``work()`` beside a flood of receipts; (its result, the flood's figures)."""
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    cpu_before = stack.cpu()
    load = os.getloadavg()[0]
    proc = ctx.Process(
        target=_flood,
        args=(stack.host, stack.port, stack.receipt_path, prefix, connections, niceness, stop, out),
        daemon=True,
    )
    proc.start()
    time.sleep(3)  # the flood under way (connections open, the receiver busy) before the task starts
    try:
        result = work()
    finally:
        stop.set()
    report = out.get(timeout=300)
    proc.join(60)
    cpu_after = stack.cpu()
    results = report["results"]
    answered = sum(len(ids) for status, ids in results.items() if status != "error")
    ok = set(results.get("200", []))
    refused = {i for status, ids in results.items() if status.startswith("5") for i in ids}
    stored = stack.stored(prefix)
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    figures = {
        "seconds": report["seconds"],
        "answered_200": len(ok),
        "http_5xx": len(refused),
        "no_answer": len(results.get("error", [])),
        "statuses": {status: len(ids) for status, ids in results.items()},
        "receipts_per_s": len(ok) / report["seconds"],
        "stored_once": len(stored) == len(set(stored)) and ok <= set(stored) and not (refused & set(stored)),
        "stored_events": len(stored),
        "cpu_ms_per_receipt": {name: 1000 * s / max(answered, 1) for name, s in cpu.items()},
        "sender_cpu_ms_per_receipt": 1000 * report["cpu_s"] / max(answered, 1),
        "load_1min": round(load, 2),
    }
    return result, figures


def measure(topology: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every round's alone and flooded figures on one topology of a fresh Airflow on this machine."""
    with (
        sandbox_process(rate_limit=LIMIT, balance=1_000_000) as sandbox_url,
        tempfile.TemporaryDirectory(prefix="orange-sms-flood-") as root,
    ):
        stack = Stack(Path(root), topology, sandbox_url, args.flood_sends, args.flood_max_stores)
        try:
            return measure_rounds(stack, sandbox_url, topology, args)
        finally:
            stack.stop()


def measure_rounds(
    stack: Airflow, sandbox_url: str, topology: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Every round's alone and flooded figures on a running Airflow (``topology`` names it)."""
    stack.wait_ready()
    alert_time(stack, sandbox_url)  # warm-up: the first run pays one-time costs
    rounds = []
    for n in range(args.flood_rounds):
        load = round(os.getloadavg()[0], 2)
        alone_pace = send_pace(stack, sandbox_url)
        prefix = f"flood-{topology}-{n}-{secrets.token_hex(3)}-"
        pace, flood = flooded(
            stack, args.flood_connections, prefix, lambda: send_pace(stack, sandbox_url), args.flood_nice
        )
        alone_alert, alert, alerts_stored_once = paired_alerts(stack, sandbox_url, prefix, args)
        flood["stored_once"] = flood["stored_once"] and alerts_stored_once
        row = {
            "topology": topology,
            "round": n + 1,
            "load_1min_alone": load,
            "alone": {"send": alone_pace, "alert": alone_alert},
            "flooded": {"send": pace, "alert": alert},
            "flood": flood,
            "pace_ratio": pace["pace"] / alone_pace["pace"] if alone_pace["pace"] else float("nan"),
            "alert_ratio": alert["seconds"] / alone_alert["seconds"],
        }
        print(json.dumps(row), file=sys.stderr, flush=True)
        rounds.append(row)
    return {"topology": topology, "rounds": rounds}


#: The topologies' names in the table.
TOPOLOGY_NAMES = {
    "one": "one api-server (as airflow standalone)",
    "split": "api-server --apps core + --apps execution",
    "split-nice": "api-server --apps core (nice 10) + --apps execution",
    "deployment": "the deployment (PostgreSQL, Celery workers, api-server --apps core + --apps execution)",
}


def flood_rows(args: argparse.Namespace, figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The benchmark table's rows (run.py): each topology's rounds."""
    rows = []
    for topology in args.flood_topologies.split(","):
        result = figures[f"flood_{topology}"] = measure(topology, args)
        rows += result_rows(result, args)
    return rows


def result_rows(result: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    """The table's rows of one topology's rounds (``measure_rounds``)."""
    rows = []
    for r in result["rounds"]:
        alone, flooded_, flood = r["alone"], r["flooded"], r["flood"]
        cpu = ", ".join(
            f"{name.removeprefix('api_server_') if '_' in name[10:] else 'api_server'} {ms:.1f}"
            for name, ms in flood["cpu_ms_per_receipt"].items()
        )
        label = f"receipt flood, {TOPOLOGY_NAMES[result['topology']]}, round {r['round']}"
        sender_nice = f", nice {args.flood_nice}" if args.flood_nice else ""
        rows.append(
            (
                f"{label}: {args.flood_sends}-SMS task pace, flood / alone",
                f"{alone['send']['pace']:.3f} x 5/s alone, {flooded_['send']['pace']:.3f} x 5/s beside "
                f"{args.flood_connections} receipt connections (load {r['load_1min_alone']}, "
                f"{flood['load_1min']})",
                f"{r['pace_ratio']:.2f}",
                ">= 0.8",
            )
        )
        before, during = alone["send"]["execution_api"], flooded_["send"]["execution_api"]
        rows.append(
            (
                "  the task's execution-API requests, p50 / p90",
                f"{before['p50_ms']:.1f} / {before['p90_ms']:.1f} ms alone ({before['requests']}), "
                f"{during['p50_ms']:.1f} / {during['p90_ms']:.1f} ms beside ({during['requests']})",
                "",
                "(informative)",
            )
        )
        a, b = alone["alert"], flooded_["alert"]
        rows.append(
            (
                f"  alert, trigger to Orange (median of {args.flood_alerts}), flood / alone",
                f"{a['seconds']:.2f}s alone ({a['min']:.2f}-{a['max']:.2f}), "
                f"{b['seconds']:.2f}s beside ({b['min']:.2f}-{b['max']:.2f}); of which the trigger "
                f"call {a['trigger_call_s']:.2f}s, {b['trigger_call_s']:.2f}s",
                f"{r['alert_ratio']:.2f}",
                "<= 1.5",
            )
        )
        rows.append(
            (
                "  the flood",
                f"{flood['receipts_per_s']:.0f} receipts/s stored, {flood['http_5xx']} x 5xx, "
                f"{flood['no_answer']} no answer; API-server CPU ms/receipt: {cpu} (the sender's "
                f"{flood['sender_cpu_ms_per_receipt']:.1f}{sender_nice})",
                "stored once" if flood["stored_once"] else "NOT stored once",
                "0 x 500, each 200 stored once",
            )
        )
    return rows


def machine() -> str:
    """The date, this machine (CPU model and count, kernel, Python, Airflow) and its load averages."""
    from importlib.metadata import version

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} x {model}, Linux "
        f"{platform.release()}, Python {platform.python_version()}, Airflow {version('apache-airflow')}; "
        f"load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, Any] = {"started": machine()}
    rows = flood_rows(args, figures)
    figures["ended"] = machine()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"started {figures['started']}\nended   {figures['ended']}")
    for row in rows:
        print(" | ".join(row))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flood's options (also run.py's)."""
    parser.add_argument("--flood-sends", type=int, default=60, help="SMS of the flooded send task")
    parser.add_argument("--flood-connections", type=int, default=48, help="concurrent receipt connections")
    parser.add_argument("--flood-rounds", type=int, default=2, help="alone/flooded rounds per topology")
    parser.add_argument(
        "--flood-alerts",
        type=int,
        default=5,
        help="alerts alone and beside a flood, in alternation (the median of each side)",
    )
    parser.add_argument(
        "--flood-nice",
        type=int,
        default=0,
        help="niceness of the flood's sending process (Orange's side: on the deployment, 19 keeps it "
        "from taking the CPU the simulated machines share)",
    )
    parser.add_argument(
        "--flood-max-stores",
        default="",
        help="[orange_sms] delivery_receipts_max_concurrent_stores of the API servers (default: its default)",
    )
    parser.add_argument(
        "--flood-topologies",
        default="one,split",
        help="comma-separated: one (api-server), split and/or split-nice (for the deployment's: "
        "scripts/benchmark-flood-deployment.sh)",
    )


if __name__ == "__main__":
    main()
