"""
Delivery-receipt receiver at volume: receipts/s with 0 and many stored receipts, on one
``airflow api-server`` (``--workers 1`` unless told) backed by the metadata database that
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` names (``scripts/benchmark-receipts.sh`` runs it on SQLite
and on a throwaway PostgreSQL).

For each history size the stored receipts are seeded with bulk SQL (asset events of the last day
and their ``orange_sms_dedup`` rows, never through HTTP), then:

* sequential: receipts posted one after the other on one keep-alive connection;
* concurrent: 1,000 connections opened at once (raw sockets, one POST each), 30 % of them repeats
  of others.

plus two yardsticks on the same server: right before each row, the same number of requests to a
trivial FastAPI endpoint mounted by a plugin of the benchmark's own (it reads the body and answers
200), and, once, receipts refused by validation (422: the receiver's HTTP path without the
database). On a machine shared with other jobs the absolute rates say how much CPU was left over;
the ratio of a row's rate to the trivial endpoint's, measured seconds apart, says what the receiver
costs, and "vs empty, each per trivial endpoint" compares sizes with the load drift taken out.

Each row: receipts/s, p50/p99 latency, 5xx answers, requests that got no answer within 120 s,
whether every distinct receipt answered 200 was stored exactly once, the 1-minute load average
when it started, and the CPU time the API server process and the database server spent per request
(``/proc``: the least load-dependent figure here); then the ratio of each size's rate to the empty
database's. ``--json`` prints the rows as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

ASSET_NAME = "orange_sms_delivery_receipts"
REQUEST_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def body(resource_id: str, recipient: str, status: str = "DeliveredToTerminal") -> bytes:
    return json.dumps(
        {
            "deliveryInfoNotification": {
                "callbackData": resource_id,
                "deliveryInfo": {"address": recipient, "deliveryStatus": status},
            }
        }
    ).encode()


YARDSTICK_PLUGIN = """
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from airflow.plugins_manager import AirflowPlugin

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/noop")
async def noop(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"status": "ok"})


class BenchmarkYardstickPlugin(AirflowPlugin):
    name = "benchmark_yardstick"
    fastapi_apps = [{"app": app, "url_prefix": "/benchmark-yardstick", "name": "yardstick"}]
"""


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of the processes ``pids`` and of their exited children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
    return total


def with_children(pid: int) -> list[int]:
    """``pid`` and its child processes (API server workers, PostgreSQL backends)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return [pid, *children]


def postgres_pids(engine: sa.Engine) -> list[int]:
    """The PostgreSQL postmaster and its children (backends, checkpointer…), or [] on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        data_dir = connection.execute(sa.text("SHOW data_directory")).scalar_one()
    return with_children(int((Path(data_dir) / "postmaster.pid").read_text().split()[0]))


class Server:
    """``airflow api-server --workers N`` with the receiver, in its own AIRFLOW_HOME."""

    def __init__(self, home: Path, workers: int = 1) -> None:
        (home / "plugins").mkdir(exist_ok=True)
        (home / "plugins" / "benchmark_yardstick.py").write_text(YARDSTICK_PLUGIN)
        self.port = free_port()
        self.secret = secrets.token_urlsafe(24)
        self.log_path = home / "api-server.log"
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET": self.secret,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow",
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            }
        )
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.path = f"/orange-sms/delivery-receipts/{self.secret}"
        self.url = f"http://127.0.0.1:{self.port}{self.path}"
        self.yardstick_path = "/benchmark-yardstick/noop"
        deadline = time.monotonic() + 300
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"api-server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/api/v2/version", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("api-server did not start")
            time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def seed(engine: sa.Engine, start: int, stop: int) -> None:
    """Store receipts ``start`` … ``stop - 1`` of the last day: asset events and dedup rows."""
    if stop <= start:
        return
    with engine.begin() as connection:
        asset_id = connection.execute(
            sa.text("SELECT id FROM asset WHERE name = :name"), {"name": ASSET_NAME}
        ).scalar_one()
        params = {"asset_id": asset_id, "start": start, "stop": stop - 1}
        if engine.dialect.name == "postgresql":
            connection.execute(
                sa.text(
                    "INSERT INTO asset_event (asset_id, extra, timestamp) "
                    "SELECT :asset_id, json_build_object('resource_id', 'seed-' || g, "
                    "'recipient', 'tel:+22507' || lpad((g % 100000000)::text, 8, '0'), "
                    "'status', 'DeliveredToTerminal', 'received_at', "
                    "to_char(now() - (g % 86400) * interval '1 second', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')), now() - (g % 86400) * interval '1 second' "
                    "FROM generate_series(:start, :stop) AS g"
                ),
                params,
            )
            connection.execute(
                sa.text(
                    "INSERT INTO orange_sms_dedup (kind, key_digest, seen_at) "
                    "SELECT 'receipt', md5('seed-' || g) || md5('seed+' || g), "
                    "extract(epoch from now())::bigint - (g % 86400) "
                    "FROM generate_series(:start, :stop) AS g"
                ),
                params,
            )
            connection.execute(sa.text("ANALYZE asset_event"))
            connection.execute(sa.text("ANALYZE orange_sms_dedup"))
        else:
            series = "WITH RECURSIVE g(n) AS (SELECT :start UNION ALL SELECT n + 1 FROM g WHERE n < :stop) "
            connection.execute(
                sa.text(
                    series + "INSERT INTO asset_event (asset_id, extra, timestamp) "
                    "SELECT :asset_id, json_object('resource_id', 'seed-' || n, "
                    "'recipient', printf('tel:+22507%08d', n % 100000000), 'status', 'DeliveredToTerminal', "
                    "'received_at', "
                    "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-' || (n % 86400) || ' seconds')), "
                    "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (n % 86400) || ' seconds') FROM g"
                ),
                params,
            )
            connection.execute(
                sa.text(
                    series + "INSERT INTO orange_sms_dedup (kind, key_digest, seen_at) "
                    "SELECT 'receipt', printf('seed%060d', n), "
                    "CAST(strftime('%s', 'now') AS INTEGER) - (n % 86400) "
                    "FROM g"
                ),
                params,
            )


def stored(engine: sa.Engine, prefix: str) -> tuple[int, int]:
    """(events, distinct receipts) whose resource id starts with ``prefix``."""
    with engine.connect() as connection:
        extras = connection.execute(
            sa.text(
                "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                "WHERE a.name = :name AND e.id > :since"
            ),
            {"name": ASSET_NAME, "since": _since.get(prefix, 0)},
        ).scalars()
        keys = []
        for extra in extras:
            extra = json.loads(extra) if isinstance(extra, str) else extra
            if str(extra.get("resource_id", "")).startswith(prefix):
                keys.append((extra["resource_id"], extra["recipient"], extra["status"]))
    return len(keys), len(set(keys))


_since: dict[str, int] = {}


def mark(engine: sa.Engine, prefix: str) -> None:
    with engine.connect() as connection:
        _since[prefix] = int(
            connection.execute(sa.text("SELECT coalesce(max(id), 0) FROM asset_event")).scalar_one()
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def sequential(server: Server, prefix: str, count: int, path: str | None = None) -> dict[str, Any]:
    session = requests.Session()
    latencies, codes = [], []
    url = f"http://127.0.0.1:{server.port}{path or server.path}"
    started = time.perf_counter()
    for n in range(count):
        t0 = time.perf_counter()
        response = session.post(
            url,
            data=body(f"{prefix}{n}", f"tel:+22508{n:08d}"),
            headers={"Content-Type": "application/json"},
            timeout=REQUEST_TIMEOUT,
        )
        latencies.append(time.perf_counter() - t0)
        codes.append(response.status_code)
    elapsed = time.perf_counter() - started
    distinct = count if path is None else 0
    return {"sent": count, "elapsed": elapsed, "latencies": latencies, "codes": codes, "distinct": distinct}


async def _one(port: int, path: str, payload: bytes) -> tuple[int, float]:
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), REQUEST_TIMEOUT)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT - (time.perf_counter() - t0))
        await asyncio.wait_for(reader.read(), 30)
        writer.close()
        return int(status_line.split()[1]), time.perf_counter() - t0
    except (asyncio.TimeoutError, OSError, IndexError, ValueError):
        return 0, time.perf_counter() - t0  # 0: no answer


def concurrent(server: Server, prefix: str, count: int, path: str | None = None) -> dict[str, Any]:
    distinct = int(count * 0.7)
    unique = [body(f"{prefix}{n}", f"tel:+22509{n:08d}") for n in range(distinct)]
    rng = random.Random(15)
    payloads = unique + [rng.choice(unique) for _ in range(count - distinct)]
    rng.shuffle(payloads)

    async def run() -> list[tuple[int, float]]:
        return await asyncio.gather(*(_one(server.port, path or server.path, p) for p in payloads))

    started = time.perf_counter()
    results = asyncio.run(run())
    elapsed = time.perf_counter() - started
    return {
        "sent": count,
        "elapsed": elapsed,
        "latencies": [latency for code, latency in results if code],
        "codes": [code for code, _ in results],
        # A receipt none of whose copies got a 200 was refused (503: the sender retries later).
        "distinct": 0
        if path
        else len({p for p, (code, _) in zip(payloads, results, strict=True) if code == 200}),
    }


def refused(server: Server, count: int) -> dict[str, Any]:
    """Baseline: receipts refused by validation (422), the same HTTP path without the database."""
    session = requests.Session()
    latencies, codes = [], []
    started = time.perf_counter()
    for n in range(count):
        t0 = time.perf_counter()
        response = session.post(
            server.url,
            data=body(f"refused-{n}", "tel:+225abc"),
            headers={"Content-Type": "application/json"},
            timeout=REQUEST_TIMEOUT,
        )
        latencies.append(time.perf_counter() - t0)
        codes.append(response.status_code)
    elapsed = time.perf_counter() - started
    return {"sent": count, "elapsed": elapsed, "latencies": latencies, "codes": codes, "distinct": 0}


def summarise(backend: str, history: int, mode: str, run: dict[str, Any], events: tuple[int, int]) -> dict:
    codes = run["codes"]
    latencies = run["latencies"] or [float("nan")]
    return {
        "backend": backend,
        "stored_before": history,
        "mode": mode,
        "receipts": run["sent"],
        "receipts_per_s": round(run["sent"] / run["elapsed"], 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "http_5xx": sum(1 for c in codes if c >= 500),
        "no_answer": sum(1 for c in codes if c == 0),
        "events_stored": events[0],
        "distinct_expected": run["distinct"],
        "stored_once": events[0] == events[1] == run["distinct"],
        "load_1min": run["load"],
        "server_cpu_ms": round(1000 * run["server_cpu"] / run["sent"], 2),
        "db_cpu_ms": round(1000 * run["db_cpu"] / run["sent"], 2) if run["db_cpu"] is not None else None,
    }


YARDSTICK = "trivial endpoint (yardstick)"
REFUSED = "refused (422, no database)"


def measured(
    server: Server, engine: sa.Engine, db_pids: list[int], runner: Any, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """``runner(server, *args)`` with the load average and the CPU time it cost the servers."""
    load = round(os.getloadavg()[0], 1)
    pids = postgres_pids(engine) if db_pids else []
    server_pids = with_children(server.process.pid)
    server_cpu, db_cpu = cpu_seconds(server_pids), cpu_seconds(pids)
    run: dict[str, Any] = runner(server, *args, **kwargs)
    run["load"] = load
    run["server_cpu"] = cpu_seconds(server_pids) - server_cpu
    # Backends that exited meanwhile are counted in the postmaster's cutime only once reaped.
    run["db_cpu"] = cpu_seconds(pids) - db_cpu if pids else None
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,200000", help="history sizes, ascending (comma-separated)")
    parser.add_argument("--sequential", type=int, default=200, help="receipts posted one at a time")
    parser.add_argument("--concurrent", type=int, default=1000, help="receipts posted at once (0: skip)")
    parser.add_argument("--workers", type=int, default=1, help="api-server worker processes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    home = Path(tempfile.mkdtemp(prefix="orange-sms-bench-receipts-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn")
    engine = sa.create_engine(url)
    backend = engine.dialect.name
    db_pids = postgres_pids(engine)
    server = Server(home, args.workers)
    rows = []

    def report(row: dict[str, Any]) -> None:
        rows.append(row)
        if not args.json:
            print(json.dumps(row), file=sys.stderr, flush=True)

    try:
        warm = requests.post(  # creates the asset row and the dedup table
            server.url,
            data=body("warm-up", "tel:+2250700000000"),
            headers={"Content-Type": "application/json"},
        )
        warm.raise_for_status()
        concurrent(server, "warm-up-", 50)  # the first requests of each thread pay one-time costs
        baseline = measured(server, engine, db_pids, refused, args.sequential)
        if set(baseline["codes"]) != {422}:
            raise RuntimeError(f"expected 422 for the baseline, got {set(baseline['codes'])}")
        report(summarise(backend, 0, REFUSED, baseline, (0, 0)))
        seeded = 0
        for size in sizes:
            seed(engine, seeded, size)
            seeded = size
            for mode in ("sequential", "concurrent"):
                count = args.sequential if mode == "sequential" else args.concurrent
                if not count:
                    continue
                runner = sequential if mode == "sequential" else concurrent
                # The yardstick right before each row: the load drifts over a run of many minutes.
                run = measured(server, engine, db_pids, runner, "yardstick-", count, server.yardstick_path)
                report(summarise(backend, size, f"{YARDSTICK}, {mode}", run, (0, 0)))
                prefix = f"b{uuid.uuid4().hex[:8]}-"
                mark(engine, prefix)
                run = measured(server, engine, db_pids, runner, prefix, count)
                report(summarise(backend, size, mode, run, stored(engine, prefix)))
        log = server.log_path.read_text(errors="replace")
        inactive_warnings = log.count("Emitting event for inactive AssetModel")
    finally:
        server.stop()

    def rate(size: int, mode: str) -> float | None:
        found = [r["receipts_per_s"] for r in rows if r["stored_before"] == size and r["mode"] == mode]
        return found[0] if found else None

    for row in rows:
        mode, size = row["mode"], row["stored_before"]
        receipts_mode = mode in ("sequential", "concurrent")
        stick_mode = mode if receipts_mode else "sequential" if mode == REFUSED else None
        stick = rate(size, f"{YARDSTICK}, {stick_mode}") if stick_mode else None
        row["ratio_to_yardstick"] = round(row["receipts_per_s"] / stick, 2) if stick else None
        empty = rate(sizes[0], mode) if receipts_mode else None
        row["ratio_to_empty"] = round(row["receipts_per_s"] / empty, 2) if empty else None
        empty_stick = rate(sizes[0], f"{YARDSTICK}, {mode}") if receipts_mode else None
        row["ratio_to_empty_per_yardstick"] = (
            round((row["receipts_per_s"] / stick) / (empty / empty_stick), 2)
            if empty and stick and empty_stick
            else None
        )
    if args.json:
        print(json.dumps({"rows": rows, "inactive_asset_warnings": inactive_warnings}, indent=2))
        return
    print(f"\n{backend}, one api-server (--workers {args.workers})")
    print(f"'Emitting event for inactive AssetModel' lines in its log: {inactive_warnings}")
    print(
        "| stored before | mode | requests | per s | vs empty | vs trivial endpoint | vs empty, each per "
        "trivial endpoint | p50 ms | p99 ms | 5xx "
        "| no answer | stored once | load | API server CPU ms/req | DB CPU ms/req |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        once = (
            ""
            if not r["distinct_expected"]
            else (f"{'yes' if r['stored_once'] else 'NO'} ({r['events_stored']}/{r['distinct_expected']})")
        )
        print(
            f"| {r['stored_before']:,} | {r['mode']} | {r['receipts']} | {r['receipts_per_s']} | "
            f"{r['ratio_to_empty'] or ''} | {r['ratio_to_yardstick'] or ''} | "
            f"{r['ratio_to_empty_per_yardstick'] or ''} | "
            f"{r['p50_ms']} | {r['p99_ms']} | "
            f"{r['http_5xx']} | {r['no_answer']} | {once} | {r['load_1min']} | {r['server_cpu_ms']} | "
            f"{'' if r['db_cpu_ms'] is None else r['db_cpu_ms']} |"
        )


if __name__ == "__main__":
    main()
