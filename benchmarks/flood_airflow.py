"""
The Airflow the receipt-flood benchmark (``flood.py``) runs against: what it needs of one
(:class:`Airflow`: the REST API, the receiver's address, stored receipts, the API servers' access
logs and CPU) and a fresh one on this machine (:class:`Stack`: a scheduler with the LocalExecutor, a
dag-processor and one or two API servers). ``flood_deployment.py`` has the deployment's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from receipts import cpu_seconds, with_children
from run import free_port

from airflow_provider_orange_sms.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

HERE = Path(__file__).resolve().parent
#: Orange's rate, the sandbox's and the connection's.
LIMIT = 5
#: Airflow's access-log line (its fields in any order).
ACCESS_LINE = re.compile(r"request finished.*\bduration_us=(?P<us>\d+).*\bpath=(?P<path>\S+)")


class Airflow:
    """
    What the benchmark needs of a running Airflow: its REST API (trigger, wait), the receiver's
    address, the metadata database (stored receipts), the API servers' access logs and CPU.
    """

    #: Where the receiver listens, and its secret path.
    host: str
    port: int
    url: str
    receipt_path: str
    #: The execution API's health URL (``wait_ready``).
    execution_health: str
    engine: sa.Engine
    _token: str | None = None

    def api_logs(self) -> list[Path]:
        """The API servers' output (their access logs)."""
        raise NotImplementedError

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each API server (with its worker processes)."""
        raise NotImplementedError

    def check_alive(self) -> None:
        """Raise if a process the benchmark depends on has exited."""

    def stop(self) -> None:
        self.engine.dispose()

    def execution_api_latency(self, start: float, end: float) -> dict[str, Any]:
        """The execution API's requests between two Unix times (its access log): count, p50, p90 ms."""
        durations = []
        for log in self.api_logs():
            for line in log.read_text(errors="replace").splitlines():
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

    def headers(self) -> dict[str, str]:
        if self._token is None:
            self._token = requests.get(f"{self.url}/auth/token", timeout=60).json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def wait_ready(self, timeout: float = 600) -> None:
        """Until the execution API answers and both benchmark DAGs are parsed."""
        deadline = time.monotonic() + timeout
        checks = [
            self.execution_health,
            f"{self.url}/api/v2/dags/bench_flood_send",
            f"{self.url}/api/v2/dags/bench_flood_alert",
        ]
        while checks:
            self.check_alive()
            try:
                headers = self.headers() if "/api/v2/" in checks[0] else {}
                if requests.get(checks[0], headers=headers, timeout=10).ok:
                    checks.pop(0)
                    continue
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{checks[0]} did not answer within {timeout:.0f} s")
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


class Stack(Airflow):
    """A scheduler, a dag-processor and one or two API servers in a fresh Airflow home."""

    def __init__(self, root: Path, topology: str, sandbox_url: str, sends: int, max_stores: str = "") -> None:
        self.root = root
        self.topology = topology
        self.host = "127.0.0.1"
        self.port = free_port()
        self.execution_port = self.port if topology == "one" else free_port()
        self.execution_health = f"http://127.0.0.1:{self.execution_port}/execution/health"
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

    def api_logs(self) -> list[Path]:
        return [self.root / f"{name}.log" for name in self.processes if name.startswith("api_server")]

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                log = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited:\n{log}")

    def cpu(self) -> dict[str, float]:
        return {
            name: cpu_seconds(with_children(p.pid))
            for name, p in self.processes.items()
            if name.startswith("api_server")
        }

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        super().stop()
