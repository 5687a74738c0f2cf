"""
Delivery-receipt receiver at volume: receipts/s with 0 and many stored receipts, on one
``airflow api-server`` (``--workers 1``) backed by the metadata database that
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` names (``scripts/benchmark-receipts.sh`` runs it on SQLite
and on a throwaway PostgreSQL).

For each history size the stored receipts are seeded with bulk SQL (asset events of the last day
and their ``orange_sms_dedup`` rows, never through HTTP), then:

* sequential: receipts posted one after the other on one keep-alive connection;
* concurrent: 1,000 connections opened at once (raw sockets, one POST each), 30 % of them repeats
  of others.

plus, first, a baseline: receipts refused by validation (422), the same HTTP path and app without
the database, which shows what the machine allows at all.

Each row: receipts/s, p50/p99 latency, 5xx answers, requests that got no answer within 120 s, and
whether every distinct receipt answered 200 was stored exactly once; then the ratio of each size's
rate to the empty database's. ``--json`` prints the rows as JSON.
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


class Server:
    """``airflow api-server --workers 1`` with the receiver, in its own AIRFLOW_HOME."""

    def __init__(self, home: Path) -> None:
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
            }
        )
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--port", str(self.port), "--workers", "1"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.path = f"/orange-sms/delivery-receipts/{self.secret}"
        self.url = f"http://127.0.0.1:{self.port}{self.path}"
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
            connection.execute(sa.text("SELECT coalesce(max(id), 0) FROM asset_event")).scalar()
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def sequential(server: Server, prefix: str, count: int) -> dict[str, Any]:
    session = requests.Session()
    latencies, codes = [], []
    started = time.perf_counter()
    for n in range(count):
        t0 = time.perf_counter()
        response = session.post(
            server.url,
            data=body(f"{prefix}{n}", f"tel:+22508{n:08d}"),
            headers={"Content-Type": "application/json"},
            timeout=REQUEST_TIMEOUT,
        )
        latencies.append(time.perf_counter() - t0)
        codes.append(response.status_code)
    elapsed = time.perf_counter() - started
    return {"sent": count, "elapsed": elapsed, "latencies": latencies, "codes": codes, "distinct": count}


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


def concurrent(server: Server, prefix: str, count: int) -> dict[str, Any]:
    distinct = int(count * 0.7)
    unique = [body(f"{prefix}{n}", f"tel:+22509{n:08d}") for n in range(distinct)]
    rng = random.Random(15)
    payloads = unique + [rng.choice(unique) for _ in range(count - distinct)]
    rng.shuffle(payloads)

    async def run() -> list[tuple[int, float]]:
        return await asyncio.gather(*(_one(server.port, server.path, p) for p in payloads))

    started = time.perf_counter()
    results = asyncio.run(run())
    elapsed = time.perf_counter() - started
    return {
        "sent": count,
        "elapsed": elapsed,
        "latencies": [latency for code, latency in results if code],
        "codes": [code for code, _ in results],
        # A receipt none of whose copies got a 200 was refused (503: the sender retries later).
        "distinct": len({p for p, (code, _) in zip(payloads, results, strict=True) if code == 200}),
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,200000", help="history sizes, ascending (comma-separated)")
    parser.add_argument("--sequential", type=int, default=200, help="receipts posted one at a time")
    parser.add_argument("--concurrent", type=int, default=1000, help="receipts posted at once (0: skip)")
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
    server = Server(home)
    rows = []
    try:
        warm = requests.post(  # creates the asset row and the dedup table
            server.url,
            data=body("warm-up", "tel:+2250700000000"),
            headers={"Content-Type": "application/json"},
        )
        warm.raise_for_status()
        baseline = refused(server, args.sequential)
        if set(baseline["codes"]) != {422}:
            raise RuntimeError(f"expected 422 for the baseline, got {set(baseline['codes'])}")
        rows.append(summarise(backend, 0, "refused (422, no database)", baseline, (0, 0)))
        seeded = 0
        for size in sizes:
            seed(engine, seeded, size)
            seeded = size
            for mode in ("sequential", "concurrent"):
                count = args.sequential if mode == "sequential" else args.concurrent
                if not count:
                    continue
                prefix = f"b{uuid.uuid4().hex[:8]}-"
                mark(engine, prefix)
                run = (
                    sequential(server, prefix, count)
                    if mode == "sequential"
                    else concurrent(server, prefix, count)
                )
                rows.append(summarise(backend, size, mode, run, stored(engine, prefix)))
                if not args.json:
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        log = server.log_path.read_text(errors="replace")
        inactive_warnings = log.count("Emitting event for inactive AssetModel")
    finally:
        server.stop()
    base = {r["mode"]: r["receipts_per_s"] for r in rows if r["stored_before"] == sizes[0]}
    base.pop("refused (422, no database)", None)
    for row in rows:
        row["ratio_to_empty"] = (
            round(row["receipts_per_s"] / base[row["mode"]], 2) if base.get(row["mode"]) else None
        )
    if args.json:
        print(json.dumps({"rows": rows, "inactive_asset_warnings": inactive_warnings}, indent=2))
        return
    print(f"\n{backend}, one api-server (--workers 1)")
    print(f"'Emitting event for inactive AssetModel' lines in its log: {inactive_warnings}")
    print(
        "| stored before | mode | receipts | receipts/s | vs empty | p50 ms | p99 ms | 5xx | no answer "
        "| stored once |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['stored_before']:,} | {r['mode']} | {r['receipts']} | {r['receipts_per_s']} | "
            f"{r['ratio_to_empty']} | {r['p50_ms']} | {r['p99_ms']} | {r['http_5xx']} | {r['no_answer']} | "
            f"{'yes' if r['stored_once'] else 'NO'} ({r['events_stored']}/{r['distinct_expected']}) |"
        )


if __name__ == "__main__":
    main()
