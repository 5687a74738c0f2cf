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
(``--flood-sends`` SMS, ``bench_flood_send``) then the alert (``bench_flood_alert``,
``--flood-alerts`` times, one after the other: the median) run alone, then again with the flood on.
Pace is measured on the sandbox's arrival times; the alert from the REST call that triggers its DAG
run to its SMS reaching the sandbox. Printed per round: the ratios (flooded / alone), the execution
API's p50/p90 as the task saw them (the API servers' access logs), receipts/s and 5xx during the
flood, the API servers' CPU per receipt (``/proc``, the whole flood window: the task's own
execution-API calls included), the load average, and whether every receipt answered 200 was stored
exactly once and every one answered 503 not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from receipts import cpu_seconds, with_children
from run import free_port, sandbox_process, state

from airflow_provider_orange_sms.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

HERE = Path(__file__).resolve().parent
SEND_ADDRESS = "tel:+2250710"
ALERT_ADDRESS = "tel:+2250799000001"
LIMIT = 5
#: Airflow's access-log line (its fields in any order).
ACCESS_LINE = re.compile(r"request finished.*\bduration_us=(?P<us>\d+).*\bpath=(?P<path>\S+)")


def _receipt(resource_id: str) -> bytes:
    return json.dumps(
        {
            "deliveryInfoNotification": {
                "callbackData": resource_id,
                "deliveryInfo": {"address": "tel:+2250720000001", "deliveryStatus": "DeliveredToTerminal"},
            }
        }
    ).encode()


async def _connection(port: int, path: str, prefix: str, stop: Any, results: dict[str, list[str]]) -> None:
    """One sender's connection: receipts back to back; each id recorded under the answer's status."""
    n = 0
    reader = writer = None
    while not stop.is_set():
        resource_id = f"{prefix}{n}"
        n += 1
        payload = _receipt(resource_id)
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
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


def _flood(port: int, path: str, prefix: str, connections: int, stop: Any, out: Any) -> None:
    """The flood's process: ``connections`` connections until ``stop``; puts its results on ``out``."""
    from collections import defaultdict

    results: dict[str, list[str]] = defaultdict(list)

    async def main() -> None:
        await asyncio.gather(
            *(_connection(port, path, f"{prefix}{c}-", stop, results) for c in range(connections))
        )

    started = time.monotonic()
    asyncio.run(main())
    out.put({"seconds": time.monotonic() - started, "results": dict(results)})


class Stack:
    """A scheduler, a dag-processor and one or two API servers in a fresh Airflow home."""

    def __init__(self, root: Path, topology: str, sandbox_url: str, sends: int, max_stores: str = "") -> None:
        self.root = root
        self.topology = topology
        self.port = free_port()
        self.execution_port = self.port if topology == "one" else free_port()
        self.secret = secrets.token_urlsafe(24)
        home = root / "airflow"
        home.mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        database = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        if database:
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = database
        self.env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(HERE / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.execution_port}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{self.port}",
            AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET=self.secret,
            AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES=max_stores,
            ORANGE_SMS_CACHE_DIR=str(root / "cache"),
            ORANGE_SMS_BENCH_FLOOD_SENDS=str(sends),
            ORANGE_SMS_BENCH_RECIPIENTS="10",  # the other benchmark DAGs in the folder: parsed, not run
            AIRFLOW_CONN_ORANGE_SMS_DEFAULT=json.dumps(
                {
                    "conn_type": "orange_sms",
                    "host": sandbox_url,
                    "login": DEFAULT_CLIENT_ID,
                    "password": DEFAULT_CLIENT_SECRET,
                    "extra": {"sender_address": "2250000", "rate_limit_per_second": LIMIT},
                }
            ),
        )
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=self.env, check=True, capture_output=True
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        server = ["api-server", "--host", "127.0.0.1", "--workers", "1"]
        if topology == "one":
            self._start("api_server", *server, "--port", str(self.port))
        else:
            # split-nice: the receiver's server yields the CPU to the tasks' and the scheduler's.
            nice = ("nice", "-n", "10") if topology == "split-nice" else ()
            self._start("api_server_core", *server, "--port", str(self.port), "--apps", "core", prefix=nice)
            self._start(
                "api_server_execution", *server, "--port", str(self.execution_port), "--apps", "execution"
            )
        # --skip-serve-logs: its log server would listen on every interface (the API server reads
        # the task logs from this machine's files).
        self._start("scheduler", "scheduler", "--skip-serve-logs")
        self._start("dag-processor", "dag-processor")
        self.url = f"http://127.0.0.1:{self.port}"
        self.receipt_path = f"/orange-sms/delivery-receipts/{self.secret}"
        self.engine = sa.create_engine(self._db_url())
        self._token: str | None = None

    def _db_url(self) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "airflow", "config", "get-value", "database", "sql_alchemy_conn"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def _start(self, name: str, *command: str, prefix: tuple[str, ...] = ()) -> None:
        log = (self.root / f"{name}.log").open("wb")
        # API servers at Airflow's default level: one access-log line per request, as deployed (and
        # the execution API's durations, read by execution_api_latency()).
        env = (
            self.env
            if name.startswith("api_server")
            else {**self.env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        )
        self.processes[name] = subprocess.Popen(
            [*prefix, sys.executable, "-m", "airflow", *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def execution_api_latency(self, start: float, end: float) -> dict[str, Any]:
        """The execution API's requests between two Unix times (its access log): count, p50, p90 ms."""
        durations = []
        for name in self.processes:
            if not name.startswith("api_server"):
                continue
            for line in (self.root / f"{name}.log").read_text(errors="replace").splitlines():
                found = ACCESS_LINE.search(line)
                if not found or not found["path"].startswith("/execution/"):
                    continue
                moment = datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
                if start <= moment <= end:
                    durations.append(int(found["us"]) / 1000)
        durations.sort()
        if not durations:
            return {"requests": 0, "p50_ms": float("nan"), "p90_ms": float("nan")}
        return {
            "requests": len(durations),
            "p50_ms": durations[len(durations) // 2],
            "p90_ms": durations[int(len(durations) * 0.9)],
        }

    def api_servers(self) -> list[int]:
        return [p.pid for name, p in self.processes.items() if name.startswith("api_server")]

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each API server (with its worker processes)."""
        return {
            name: cpu_seconds(with_children(p.pid))
            for name, p in self.processes.items()
            if name.startswith("api_server")
        }

    def headers(self) -> dict[str, str]:
        if self._token is None:
            self._token = requests.get(f"{self.url}/auth/token", timeout=60).json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        checks = [
            f"http://127.0.0.1:{self.execution_port}/execution/health",
            f"{self.url}/api/v2/dags/bench_flood_send",
            f"{self.url}/api/v2/dags/bench_flood_alert",
        ]
        while checks:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    log = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited:\n{log}")
            try:
                headers = self.headers() if "/api/v2/" in checks[0] else {}
                if requests.get(checks[0], headers=headers, timeout=10).ok:
                    checks.pop(0)
                    continue
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{checks[0]} did not answer: see {self.root}")
            time.sleep(1)

    def trigger(self, dag_id: str) -> tuple[float, str]:
        """Trigger a run of ``dag_id``; (Unix time just before the call, run id)."""
        started = time.time()
        response = requests.post(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None},
            headers=self.headers(),
            timeout=120,
        )
        response.raise_for_status()
        return started, response.json()["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        quoted = urllib.parse.quote(run_id, safe="")
        while time.monotonic() < deadline:
            try:
                response = requests.get(
                    f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{quoted}", headers=self.headers(), timeout=60
                )
                run_state = response.json().get("state") if response.ok else None
            except requests.RequestException:
                run_state = None
            if run_state in ("success", "failed"):
                return str(run_state)
            time.sleep(1)
        raise RuntimeError(f"{dag_id} {run_id} did not finish within {timeout:.0f} s")

    def stored(self, prefix: str) -> list[str]:
        """The resource id of every stored receipt event whose id starts with ``prefix`` (repeats kept)."""
        with self.engine.connect() as connection:
            extras = connection.execute(
                sa.text(
                    "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = :name"
                ),
                {"name": "orange_sms_delivery_receipts"},
            ).scalars()
            ids = [(json.loads(x) if isinstance(x, str) else x).get("resource_id", "") for x in extras]
        return [i for i in ids if str(i).startswith(prefix)]

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        self.engine.dispose()


def send_pace(stack: Stack, sandbox_url: str) -> dict[str, Any]:
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


def alert_time(stack: Stack, sandbox_url: str, times: int = 1) -> dict[str, Any]:
    """
    Trigger the alert ``times`` times, one after the other; the median of the seconds from the
    trigger call to its SMS reaching the sandbox (the scheduler's loop alone moves one by ~1 s).
    """
    seconds, outcomes = [], []
    for _ in range(times):
        started, run_id = stack.trigger("bench_flood_alert")
        outcomes.append(stack.wait_run("bench_flood_alert", run_id))
        arrived = [
            m["received_at"]
            for m in state(sandbox_url)["messages"]
            if m["address"] == ALERT_ADDRESS and m["received_at"] >= started
        ]
        seconds.append(min(arrived) - started if arrived else float("nan"))
    return {"state": ",".join(sorted(set(outcomes))), "seconds": statistics.median(seconds), "each": seconds}


def flooded(stack: Stack, connections: int, prefix: str, work: Any) -> tuple[Any, dict[str, Any]]:
    """Run ``work()`` beside a flood of receipts; (its result, the flood's figures)."""
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    cpu_before = stack.cpu()
    load = os.getloadavg()[0]
    proc = ctx.Process(
        target=_flood, args=(stack.port, stack.receipt_path, prefix, connections, stop, out), daemon=True
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
        "load_1min": round(load, 2),
    }
    return result, figures


def measure(topology: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every round's alone and flooded figures on one topology."""
    with (
        sandbox_process(rate_limit=LIMIT, balance=1_000_000) as sandbox_url,
        tempfile.TemporaryDirectory(prefix="orange-sms-flood-") as root,
    ):
        stack = Stack(Path(root), topology, sandbox_url, args.flood_sends, args.flood_max_stores)
        try:
            stack.wait_ready()
            alert_time(stack, sandbox_url)  # warm-up: the first run pays one-time costs
            rounds = []
            for n in range(args.flood_rounds):
                load = round(os.getloadavg()[0], 2)
                alone_pace = send_pace(stack, sandbox_url)
                alone_alert = alert_time(stack, sandbox_url, args.flood_alerts)
                prefix = f"flood-{topology}-{n}-{secrets.token_hex(3)}-"

                def work() -> tuple[dict[str, Any], dict[str, Any]]:
                    return send_pace(stack, sandbox_url), alert_time(stack, sandbox_url, args.flood_alerts)

                (pace, alert), flood = flooded(stack, args.flood_connections, prefix, work)
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
        finally:
            stack.stop()


def flood_rows(args: argparse.Namespace, figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The benchmark table's rows (run.py): each topology's rounds."""
    names = {
        "one": "one api-server (as airflow standalone)",
        "split": "api-server --apps core + --apps execution",
        "split-nice": "api-server --apps core (nice 10) + --apps execution",
    }
    rows = []
    for topology in args.flood_topologies.split(","):
        result = figures[f"flood_{topology}"] = measure(topology, args)
        for r in result["rounds"]:
            alone, flooded_, flood = r["alone"], r["flooded"], r["flood"]
            cpu = ", ".join(
                f"{name.removeprefix('api_server_') if '_' in name[10:] else 'api_server'} {ms:.1f}"
                for name, ms in flood["cpu_ms_per_receipt"].items()
            )
            label = f"receipt flood, {names[topology]}, round {r['round']}"
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
            rows.append(
                (
                    f"  alert, trigger to Orange (median of {args.flood_alerts}), flood / alone",
                    f"{alone['alert']['seconds']:.2f}s alone, {flooded_['alert']['seconds']:.2f}s beside",
                    f"{r['alert_ratio']:.2f}",
                    "<= 1.5",
                )
            )
            rows.append(
                (
                    "  the flood",
                    f"{flood['receipts_per_s']:.0f} receipts/s stored, {flood['http_5xx']} x 5xx, "
                    f"{flood['no_answer']} no answer; API-server CPU ms/receipt: {cpu}",
                    "stored once" if flood["stored_once"] else "NOT stored once",
                    "0 x 500, each 200 stored once",
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    rows = flood_rows(args, figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for row in rows:
        print(" | ".join(row))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flood's options (also run.py's)."""
    parser.add_argument("--flood-sends", type=int, default=60, help="SMS of the flooded send task")
    parser.add_argument("--flood-connections", type=int, default=48, help="concurrent receipt connections")
    parser.add_argument("--flood-rounds", type=int, default=2, help="alone/flooded rounds per topology")
    parser.add_argument("--flood-alerts", type=int, default=3, help="alerts per phase (their median)")
    parser.add_argument(
        "--flood-max-stores",
        default="",
        help="[orange_sms] delivery_receipts_max_concurrent_stores of the API servers (default: its default)",
    )
    parser.add_argument(
        "--flood-topologies", default="one,split", help="comma-separated: one (api-server) and/or split"
    )


if __name__ == "__main__":
    main()
