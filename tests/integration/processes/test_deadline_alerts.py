"""Deadline Alerts that text on-call, on a real deployment: ``airflow scheduler``, ``dag-processor``,
``api-server`` and ``triggerer`` processes (LocalExecutor, sqlite), against the sandbox over HTTP.

- A DAG whose run has a 10 s deadline and whose task sleeps 40 s: the scheduler marks the deadline
  missed, a triggerer runs ``OrangeSMSNotifier`` (an ``AsyncCallback``): one SMS per on-call number,
  with two triggerers running (HA), and again with the only triggerer killed (``kill -9``, its whole
  process group) right after its first SMS left, then restarted.
- The on-call escalation example, with short waits: an ACK (a reply through the sandbox's
  ``/_sandbox/inbound`` and the provider's receiver on the API server) stops it before the second
  person; no ACK texts the second person once.

The sandbox holds every SMS :data:`HELD` seconds before answering, so a send that blocked the
triggerer's event loop would show as Airflow's "async thread was blocked" warning (threshold set
to :data:`BLOCKED_THRESHOLD`, above the scheduling noise of a loaded 2-core machine, below
``HELD``); the tests assert it never appears. Latencies are printed, never asserted.

The tests share one deployment (its start is most of a test's time): each deadline test triggers a
DAG of its own, and each test sets the triggerers it needs.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from airflow_provider_orange_sms.ledger.deadline_record import deadline_record_key
from airflow_provider_orange_sms.plugins.triggerer_warm_up_plugin import WARMED_MESSAGE
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from tests.support.airflow_deployment import BLOCKED_LOOP_WARNING, AirflowDeployment, deadline_dag, wait_for
from tests.support.dags import EXAMPLE_DAGS
from tests.support.sandbox import connection_json
from tests.support.versions import skip_on_airflow_3_0

pytestmark = [pytest.mark.processes, skip_on_airflow_3_0("Deadline Alerts arrived in Airflow 3.1")]

#: Seconds the sandbox holds each SMS before answering.
HELD = 2.0
#: The triggerer's blocked-loop warning threshold in these tests (default 0.2 s).
BLOCKED_THRESHOLD = 1.0
ON_CALL = ["+2250700000021", "+2250700000022"]
ROTA = ["+2250700000031", "+2250700000032", "+2250700000033"]
SECRET = "on-call-receiver-secret-for-tests"

#: The deadline tests' DAGs, one each (they share the deployment, and a run's task outlives its test).
HA_DAG = "on_call_deadline_ha"
KILLED_DAG = "on_call_deadline_killed"
#: The escalation example's settings for the test (the example's own are minutes).
ESCALATION_SETTINGS = {
    "ON_CALL": repr(ROTA),
    "DEADLINE": "timedelta(seconds=10)",
    "CHECK_EVERY": "timedelta(seconds=3)",
    "WORK": "timedelta(seconds=30)",
}
ESCALATION = "example_orange_sms_on_call_escalation"
#: The example once more, for the run where the first person never answers: its ACK wait must
#: run out, so it is short; where the ACK comes, a long wait costs nothing and load cannot use it up
#: (the first deadline callback after a triggerer starts took up to 30 s on a loaded machine).
ESCALATION_NO_ACK = f"{ESCALATION}_no_ack"
ACK_WAITS = {ESCALATION: "timedelta(seconds=600)", ESCALATION_NO_ACK: "timedelta(seconds=60)"}


def _escalation_source(dag_id: str) -> str:
    source = (EXAMPLE_DAGS / f"{ESCALATION}.py").read_text()
    settings = {**ESCALATION_SETTINGS, "ACK_WAIT": ACK_WAITS[dag_id]}
    for name, value in settings.items():
        source, found = re.subn(rf"^{name} = .*$", f"{name} = {value}", source, flags=re.MULTILINE)
        assert found == 1, f"the example no longer sets {name} on one line"
    source, found = re.subn(rf'dag_id="{ESCALATION}"', f'dag_id="{dag_id}"', source)
    assert found == 1, "the example no longer names its dag_id once"
    return source


class HeldSandbox(SandboxServer):
    """The sandbox, holding each SMS ``HELD`` seconds (or until released) before it answers."""

    def __init__(self) -> None:
        super().__init__(config=SandboxConfig(dr_delay=None))
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.release.set()
        original = self.state.record_message

        def held(**fields: Any) -> Any:
            message = original(**fields)
            self.arrived.set()
            self.release.wait(timeout=600)
            time.sleep(HELD)
            return message

        self.state.record_message = held  # type: ignore[method-assign]

    def received(self, since: int = 0, text: str = "") -> Counter[str]:
        """SMS per number from the ``since``-th on, whose text holds ``text``."""
        with self.state.lock:
            messages = list(self.state.messages[since:])
        return Counter(m.address.removeprefix("tel:") for m in messages if text in m.message)


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[HeldSandbox]:
    with HeldSandbox() as server:
        yield server


@pytest.fixture(scope="module")
def deployment(
    sandbox_server: HeldSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowDeployment]:
    home = tmp_path_factory.mktemp("deadline-deployment")
    deployment = AirflowDeployment(
        home=home,
        dags=home / "dags",
        extra_env={
            "AIRFLOW_CONN_ORANGE_SMS_DEFAULT": connection_json(sandbox_server),
            "ORANGE_SMS_CACHE_DIR": str(home / "cache"),
            "AIRFLOW__TRIGGERER__BLOCKED_MAIN_THREAD_WARNING_THRESHOLD": str(BLOCKED_THRESHOLD),
            "AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET": SECRET,
            "AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS": "127.0.0.1",
        },
    )
    for dag_id in (HA_DAG, KILLED_DAG):
        (deployment.dags / f"{dag_id}.py").write_text(deadline_dag(dag_id, ON_CALL, work=40))
    for dag_id in ACK_WAITS:
        (deployment.dags / f"{dag_id}.py").write_text(_escalation_source(dag_id))
    try:
        # Two triggerers, started together: the first test's (one is stopped for the others).
        deployment.start_all(triggerers=2)
        for dag_id in (HA_DAG, KILLED_DAG, *ACK_WAITS):
            deployment.wait_for_dag(dag_id)
        requests.put(
            f"{sandbox_server.url}/_sandbox/inbound-url",
            json={"url": f"{deployment.url}/orange-sms/inbound-messages/{SECRET}"},
            timeout=30,
        ).raise_for_status()
        yield deployment
    finally:
        deployment.stop_all()


def _triggerers(deployment: AirflowDeployment, count: int) -> list[str]:
    """Leave exactly ``count`` triggerers running; return their names."""
    names = sorted(n for n in deployment.processes if n.startswith("triggerer"))
    for name in names[count:]:
        deployment.stop(name)
    n = 0
    while len(names) < count:
        n += 1
        if f"triggerer-{n}" not in deployment.processes:
            deployment.start_triggerer(f"triggerer-{n}")
            names.append(f"triggerer-{n}")
    return names[:count]


def _finished_callback(deployment: AirflowDeployment, dag_id: str, run_id: str) -> dict[str, Any]:
    """
    The deadline's callback once it has ended and the run that sent it has marked its record done.

    Two triggerers may both run the callback (seen on sqlite): Airflow ends it with the first run
    that answers, and cancels the other, whose sending thread still finishes.
    """

    def finished() -> dict[str, Any] | None:
        callbacks = deployment.deadline_callbacks(dag_id, run_id)
        done = [c for c in callbacks if c["state"] in ("success", "failed")]
        return done[0] if done else None

    callback: dict[str, Any] = wait_for(finished, f"the deadline callback of {run_id} to finish")
    key = deadline_record_key(callback["id"])

    def done() -> bool:
        raw = deployment.variable(key)
        return bool(raw and json.loads(raw).get("done"))

    wait_for(done, f"the record of {run_id}'s deadline to be done")
    return callback


def _when(value: str) -> float:
    return datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc).timestamp()


def _print_latency(sandbox: HeldSandbox, since: int, callback: dict[str, Any]) -> None:
    with sandbox.state.lock:
        first = min(m.received_at for m in sandbox.state.messages[since:])
    print(
        f"deadline evaluated -> first SMS at Orange: {first - _when(callback['evaluated_at']):.1f} s; "
        f"deadline time -> first SMS: {first - _when(callback['deadline_time']):.1f} s"
    )


def _no_blocked_loop(deployment: AirflowDeployment) -> None:
    for name in ("triggerer", *(f"triggerer-{n}" for n in range(1, 6))):
        assert BLOCKED_LOOP_WARNING not in deployment.output(name), deployment.output(name)[-3000:]


def test_each_triggerer_warms_its_execution_api_as_it_starts_and_nothing_else_does(deployment):
    triggerers = _triggerers(deployment, 2)
    for name in triggerers:
        wait_for(lambda name=name: WARMED_MESSAGE in deployment.output(name), f"{name} to warm up")
        # Once each: the supervisor's one execution API, not one per request.
        assert deployment.output(name).count(WARMED_MESSAGE) == 1, deployment.output(name)[-3000:]
    for name in deployment.processes:
        if not name.startswith("triggerer"):
            assert WARMED_MESSAGE not in deployment.output(name), name


def test_two_triggerers_text_each_on_call_number_once(deployment, sandbox_server):
    _triggerers(deployment, 2)
    since = len(sandbox_server.state.messages)

    run_id = deployment.trigger(HA_DAG)
    callback = _finished_callback(deployment, HA_DAG, run_id)

    assert callback["state"] == "success", callback
    assert sandbox_server.received(since, run_id) == Counter(ON_CALL)
    assert callback["missed"]
    _print_latency(sandbox_server, since, callback)
    _no_blocked_loop(deployment)


def test_a_triggerer_killed_after_the_first_sms_left_and_restarted_texts_nobody_twice(
    deployment, sandbox_server
):
    [name] = _triggerers(deployment, 1)
    since = len(sandbox_server.state.messages)
    sandbox_server.arrived.clear()
    sandbox_server.release.clear()
    try:
        run_id = deployment.trigger(KILLED_DAG)
        assert sandbox_server.arrived.wait(timeout=600), "no SMS reached the sandbox"
        # The first SMS has left and is held unanswered: kill the triggerer (and its runner) now.
        deployment.kill(name)
    finally:
        sandbox_server.release.set()
    deployment.start_triggerer("triggerer-restarted")
    callback = _finished_callback(deployment, KILLED_DAG, run_id)

    assert callback["state"] == "success", callback
    assert sandbox_server.received(since, run_id) == Counter(ON_CALL)
    restarted = deployment.output("triggerer-restarted")
    assert f"Notification not sent again to tel:{ON_CALL[0]}" in restarted, restarted[-5000:]
    _no_blocked_loop(deployment)


def _reply(sandbox: HeldSandbox, sender: str, message: str) -> None:
    answer = requests.post(
        f"{sandbox.url}/_sandbox/inbound", json={"sender": sender, "message": message}, timeout=120
    )
    answer.raise_for_status()
    assert answer.json()["status"] in (200, 201, 202, 204), answer.json()


def _finished_run(deployment: AirflowDeployment, dag_id: str, run_id: str) -> str:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (s := deployment.run_state(dag_id, run_id)) in ("success", "failed") and s,
        f"the escalation run {run_id} to end",
    )


@pytest.mark.parametrize(
    ("acking", "reply", "tasks_after"),
    [
        pytest.param(
            0,
            "ack, on it",
            {"ack_1": "success", "text_2": "skipped", "text_3": "skipped"},
            id="the escalation stops at the first ACK",
        ),
        pytest.param(
            1,
            "ACK",
            {"ack_1": "failed", "text_2": "success", "ack_2": "success", "text_3": "skipped"},
            id="without an ACK the next person is texted once",
        ),
    ],
)
def test_the_escalation_texts_the_rota_until_someone_acks(
    deployment, sandbox_server, acking, reply, tasks_after
):
    _triggerers(deployment, 1)
    since = len(sandbox_server.state.messages)

    dag_id = ESCALATION if acking == 0 else ESCALATION_NO_ACK
    run_id = deployment.trigger(dag_id)
    wait_for(lambda: sandbox_server.received(since)[ROTA[acking]], f"the SMS of person {acking + 1}")
    _reply(sandbox_server, ROTA[acking], reply)
    state = _finished_run(deployment, dag_id, run_id)

    assert state == "success", deployment.task_states(dag_id, run_id)
    assert sandbox_server.received(since) == Counter(ROTA[: acking + 1])
    tasks = deployment.task_states(dag_id, run_id)
    assert {task: tasks[task] for task in tasks_after} == tasks_after
    _no_blocked_loop(deployment)
