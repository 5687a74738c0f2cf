"""
The deployment test: the DAG ``deployment_send`` on PostgreSQL + Redis + CeleryExecutor with two
worker machines, checked from what the sandbox received.

``scripts/test-deployment.sh`` builds that deployment (network namespaces, one per machine) and runs
this module inside it, on the control machine; without it (``ORANGE_SMS_DEPLOYMENT_API`` unset)
every test here is skipped.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest

API = os.environ.get("ORANGE_SMS_DEPLOYMENT_API", "")
SANDBOX = os.environ.get("ORANGE_SMS_DEPLOYMENT_SANDBOX", "")
WORKERS = set(filter(None, os.environ.get("ORANGE_SMS_DEPLOYMENT_WORKERS", "").split(",")))
#: Where the sandbox's state and request log are saved for a look after the run (the script's logs).
LOGS = os.environ.get("ORANGE_SMS_DEPLOYMENT_LOGS", "")
RECIPIENTS_PER_SENDER = int(os.environ.get("ORANGE_SMS_DEPLOYMENT_RECIPIENTS", "100"))
#: Orange's window, which the sandbox judges 429s at (``--rate-window`` in scripts/test-deployment.sh).
RATE_WINDOW = float(os.environ.get("ORANGE_SMS_DEPLOYMENT_RATE_WINDOW", "1.0"))
DAG_ID = "deployment_send"
SENDERS = 4
ASSET_NAME = "orange_sms_delivery_receipts"
#: Generous: a loaded 2-core machine runs the whole deployment; the DAG itself needs about 90 s.
DAG_PARSED_TIMEOUT = 300.0
DAG_RUN_TIMEOUT = 420.0

if not (API and SANDBOX):
    pytest.skip("needs the deployment that scripts/test-deployment.sh builds", allow_module_level=True)


def expected_recipients(sender: int) -> list[str]:
    """The numbers send task ``sender`` sends to (as ``tests/integration/dags/deployment_send.py``)."""
    return [f"tel:+22507{sender + 1}{n:07d}" for n in range(RECIPIENTS_PER_SENDER)]


def sender_of(address: str) -> int:
    """The send task an address belongs to (its digit after ``tel:+22507``)."""
    return int(address[len("tel:+22507")]) - 1


class RestClient:
    """The Airflow REST API with a bearer token (simple auth manager, every user an admin)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        with urllib.request.urlopen(f"{self.base}/auth/token", timeout=30) as response:
            self.token = json.load(response)["access_token"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def poll(self, path: str) -> Any:
        """GET, or None when the loaded API server did not answer in time (the caller asks again)."""
        try:
            return self.call("GET", path)
        except (TimeoutError, urllib.error.URLError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                raise
            return None


def sandbox_get(path: str) -> dict[str, Any]:
    """A control endpoint of the sandbox, also saved to ``LOGS`` as JSON when that is set."""
    with urllib.request.urlopen(f"{SANDBOX}/_sandbox/{path}", timeout=60) as response:
        body: dict[str, Any] = json.load(response)
    if LOGS:
        with open(os.path.join(LOGS, f"sandbox-{path}.json"), "w") as file:
            json.dump(body, file, indent=1)
    return body


@dataclass
class Outcome:
    """What one run of the DAG left behind: in Airflow, at the sandbox, as receipts."""

    run: dict[str, Any]
    task_instances: dict[str, dict[str, Any]]
    sandbox: dict[str, Any]
    #: Every send request the sandbox received, refused ones included, in arrival order.
    send_requests: list[dict[str, Any]]
    receipt_events: list[dict[str, Any]]


def wait_for_dag(api: RestClient) -> None:
    deadline = time.monotonic() + DAG_PARSED_TIMEOUT
    while True:
        try:
            if api.poll(f"/api/v2/dags/{DAG_ID}") is not None:
                return
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"the dag-processor did not parse {DAG_ID} within {DAG_PARSED_TIMEOUT:.0f} s")
        time.sleep(2)


def receipt_events(api: RestClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = api.call(
            "GET",
            f"/api/v2/assets/events?name_pattern={ASSET_NAME}&order_by=timestamp&limit=100&offset={len(events)}",
        )
        events.extend(page["asset_events"])
        if not page["asset_events"] or len(events) >= page["total_entries"]:
            return events


def per_thousand(count: int, sms: int) -> str:
    """``count`` per 1,000 SMS, as printed."""
    return f"{1000 * count / sms:.2f}" if sms else "-"


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages (what ``uptime`` shows)."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def summary(outcome: Outcome) -> str:
    """Per-task rates, 429s, token requests, receipts: printed whether the assertions pass or not."""
    messages = outcome.sandbox["messages"]
    lines = [
        f"DAG run {outcome.run['dag_run_id']}: {outcome.run['state']}",
        f"{'task':<18} {'state':<8} {'machine':<9} {'SMS':>4} {'SMS/s':>6}",
    ]
    by_sender: dict[int, list[float]] = collections.defaultdict(list)
    for message in messages:
        by_sender[sender_of(message["address"])].append(message["received_at"])
    for task_id, ti in sorted(outcome.task_instances.items()):
        times = sorted(by_sender.get(int(task_id.split("_")[1]), [])) if task_id.startswith("send_") else []
        rate = f"{(len(times) - 1) / (times[-1] - times[0]):6.2f}" if len(times) > 1 else "     -"
        sms = f"{len(times):>4}" if task_id.startswith("send_") else "   -"
        lines.append(f"{task_id:<18} {ti['state'] or '-':<8} {ti['hostname'] or '-':<9} {sms} {rate}")
    times = sorted(m["received_at"] for m in messages)
    if len(times) > 1:
        lines.append(
            f"all senders: {len(times)} SMS in {times[-1] - times[0]:.1f} s = "
            f"{(len(times) - 1) / (times[-1] - times[0]):.2f} SMS/s = "
            f"{(len(times) - 1) / (times[-1] - times[0]) / 5:.3f} x the sandbox's limit of 5/s"
        )
    sandbox = outcome.sandbox
    lines.append(
        f"429 answers: {sandbox['rate_limited']} = {per_thousand(sandbox['rate_limited'], len(messages))} "
        f"per 1,000 SMS at the sandbox's {RATE_WINDOW:g} s window (load average {load_average()})   "
        f"token requests: {sandbox['token_requests']}   "
        f"receipts stored: {len(outcome.receipt_events)} for {len(messages)} SMS accepted"
    )
    arrivals = sorted(request["time"] for request in outcome.send_requests)
    if len(arrivals) > 5:
        gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
        closest = min(b - a for a, b in zip(arrivals, arrivals[5:], strict=False))
        lines.append(
            f"send requests at the sandbox (429s included): consecutive ones {gaps[0] * 1000:.0f} ms apart "
            f"at the closest, median {gaps[len(gaps) // 2] * 1000:.0f} ms; closest 6 within "
            f"{closest:.3f} s (a 429 when under 1 s); the sandbox's own delay before counting one: "
            f"up to {sandbox.get('arrival_noise_max_ms', 0):.0f} ms"
        )
    posts = collections.Counter(str(callback["outcome"]) for callback in sandbox["callbacks"])
    lines.append("receipt posts by the sandbox: " + ", ".join(f"{n} x {o}" for o, n in sorted(posts.items())))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def outcome() -> Outcome:
    """Trigger the DAG once, wait for its end, and collect what every side saw."""
    api = RestClient(API)
    wait_for_dag(api)
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})
    run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
    deadline = time.monotonic() + DAG_RUN_TIMEOUT
    while run["state"] not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(3)
        run = api.poll(run_path) or run
    listed = api.call("GET", f"{run_path}/taskInstances")["task_instances"]
    task_instances = {ti["task_id"]: ti for ti in listed}
    sends = [r for r in sandbox_get("requests")["requests"] if r["path"].endswith("/requests")]
    result = Outcome(run, task_instances, sandbox_get("state"), sends, receipt_events(api))
    print("\n" + summary(result))
    return result


def test_dag_run_succeeded(outcome: Outcome) -> None:
    tis = outcome.task_instances
    not_done = {task_id: ti["state"] for task_id, ti in tis.items() if ti["state"] != "success"}
    assert outcome.run["state"] == "success", f"run {outcome.run['state']}; tasks not successful: {not_done}"
    retried = {task_id: ti["try_number"] for task_id, ti in tis.items() if ti["try_number"] > 1}
    assert not retried, f"tasks that needed an Airflow retry: {retried}"


def test_senders_ran_on_both_worker_machines(outcome: Outcome) -> None:
    machines = {outcome.task_instances[f"send_{n}"]["hostname"] for n in range(SENDERS)}
    assert machines == WORKERS


def test_every_recipient_received_exactly_once(outcome: Outcome) -> None:
    received = collections.Counter(message["address"] for message in outcome.sandbox["messages"])
    expected = {address for sender in range(SENDERS) for address in expected_recipients(sender)}
    assert not {a: n for a, n in received.items() if n > 1}, "recipients who got the SMS twice"
    assert not expected - set(received), "recipients who got nothing"
    assert not set(received) - expected, "SMS to numbers the DAG does not name"


#: 429s allowed per 1,000 SMS. The limiter aims at none and usually gets none; but when Orange counted
#: a request is known only from its answer, and a loaded machine can hold an answer back long
#: enough to misjudge one slot (1 in 800 was seen once at load 12). A 429 means Orange took nothing
#: and the send is retried: every recipient once is checked above.
MAX_429_PER_THOUSAND = 2.5


def test_429s_rare_and_retried(outcome: Outcome) -> None:
    sms = len(outcome.sandbox["messages"])
    assert 1000 * outcome.sandbox["rate_limited"] <= MAX_429_PER_THOUSAND * sms, summary(outcome)


def test_one_token_request(outcome: Outcome) -> None:
    assert outcome.sandbox["token_requests"] == 1


def test_receipts_stored_equal_sms_accepted(outcome: Outcome) -> None:
    accepted = collections.Counter(message["resource_id"] for message in outcome.sandbox["messages"])
    stored = collections.Counter(event["extra"]["resource_id"] for event in outcome.receipt_events)
    assert stored == accepted
