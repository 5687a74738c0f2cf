"""
The receipt flood (``flood.py``) on the deployment topology: PostgreSQL, Redis, two Celery worker
machines (one clock 1.5 s ahead), ``airflow api-server --apps core`` (UI, REST API, the receiver)
and ``--apps execution`` (the tasks' calls) with two workers each, on machines of their own
(network namespaces). ``scripts/benchmark-flood-deployment.sh`` builds that deployment
(``scripts/_deployment.sh``, as the deployment test does) and runs this on the sandbox's machine:
the flood comes from Orange's side, the one address the receiver accepts receipts from.

Same rounds and rows as ``flood.py``: a send task's pace and an alert's trigger-to-Orange time (the
median of ``--flood-alerts``), alone and beside ``--flood-connections`` receipt connections, then
receipts/s, 5xx and the API servers' CPU per receipt during the flood, with the date, the machine
and its load. The API servers' processes are found in the control machine's network namespace.

Settings from the script: ``ORANGE_SMS_FLOOD_API``, ``ORANGE_SMS_FLOOD_EXECUTION_API``,
``ORANGE_SMS_FLOOD_SANDBOX`` (URLs), ``ORANGE_SMS_FLOOD_SERVERS_NS`` (the control machine's
namespace), ``ORANGE_SMS_FLOOD_LOGS`` (the machines' logs); and the machines' own
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` and ``AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flood import add_arguments, machine, measure_rounds, result_rows
from flood_airflow import Airflow
from receipts import cpu_seconds

#: An API server's port in its command line: ``--port 8080``, or ``port:8080`` once it has set its
#: process title (``airflow api_server -- host:… port:…``).
API_SERVER_PORT = re.compile(rb"api[-_]server\b.*(?:--port\0|port:)(\d+)")
DAG_IDS = ("bench_flood_send", "bench_flood_alert")


class Deployment(Airflow):
    """The deployment that scripts/_deployment.sh built, seen from the sandbox's machine."""

    def __init__(self, env: dict[str, str]) -> None:
        self.url = env["ORANGE_SMS_FLOOD_API"].rstrip("/")
        address = urlsplit(self.url)
        self.host, self.port = str(address.hostname), int(address.port or 80)
        execution = urlsplit(env["ORANGE_SMS_FLOOD_EXECUTION_API"])
        self.execution_health = f"{execution.scheme}://{execution.netloc}/execution/health"
        self.servers = {self.port: "api_server_core", int(execution.port or 80): "api_server_execution"}
        self.receipt_path = (
            f"/orange-sms/delivery-receipts/{env['AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET']}"
        )
        self.logs = Path(env["ORANGE_SMS_FLOOD_LOGS"])
        self.namespace = env["ORANGE_SMS_FLOOD_SERVERS_NS"]
        self.engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])

    def api_logs(self) -> list[Path]:
        return sorted(self.logs.glob("control-api-server*.log"))

    def wait_ready(self, timeout: float = 600) -> None:
        super().wait_ready(timeout)
        # The deployment creates DAGs paused, as in production.
        for dag_id in DAG_IDS:
            requests.patch(
                f"{self.url}/api/v2/dags/{dag_id}",
                json={"is_paused": False},
                headers=self.headers(),
                timeout=60,
            ).raise_for_status()

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each API server of the control machine, its workers included."""
        servers = api_server_processes(self.namespace, self.servers)
        return {name: cpu_seconds(servers.get(name, [])) for name in sorted(self.servers.values())}


def api_server_processes(namespace: str, names: dict[int, str]) -> dict[str, list[int]]:
    """
    The processes of each API server in a network namespace: the ``airflow api-server`` process
    listening on a port of ``names`` and its descendants (uvicorn's workers), under that port's name.

    :param namespace: The network namespace (``ip netns``) the API servers run in.
    :param names: Each API server's port and the name its processes are listed under.
    """
    inode = os.stat(f"/run/netns/{namespace}").st_ino
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.stat(proc / "ns" / "net").st_ino != inode:
                continue
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            commands[int(proc.name)] = (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
    servers: dict[str, list[int]] = defaultdict(list)
    for pid in parents:
        ancestor = pid
        while ancestor in parents:
            found = API_SERVER_PORT.search(commands[ancestor])
            if found and int(found[1]) in names:
                servers[names[int(found[1])]].append(pid)
                break
            ancestor = parents[ancestor]
    return dict(servers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = machine()
    deployment = Deployment(dict(os.environ))
    try:
        result = measure_rounds(deployment, os.environ["ORANGE_SMS_FLOOD_SANDBOX"], "deployment", args)
    finally:
        deployment.stop()
    if args.json:
        print(json.dumps({"started": started, "ended": machine(), "flood_deployment": result}, indent=2))
        return
    rows = result_rows(result, args)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print(f"started {started}\nended   {machine()}")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
