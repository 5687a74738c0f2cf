"""A small real Airflow deployment for tests and benchmarks: ``airflow api-server``, ``scheduler``,
``dag-processor`` and any number of ``triggerer`` processes, each a process of its own, on a sqlite
metadata database in a home of their own.

Deadline Alerts need them all: the scheduler notices a missed deadline and queues its callback, a
triggerer runs it; tasks reach the execution API on the API server (LocalExecutor); the DAG
processor serialises the DAG files. Every server binds 127.0.0.1 on a free port; the log servers
are off. Each process's output goes to ``<home>/<name>.log``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import free_port

#: Seconds a component may take to come up, or a condition to become true: a bound against a hang
#: on a loaded machine, never a measurement.
STARTUP_LIMIT = 600.0
#: The triggerer's warning when a trigger blocks its event loop.
BLOCKED_LOOP_WARNING = "Triggerer's async thread was blocked"

_DEADLINE_DAG = """
import time
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task

from airflow_provider_orange_sms.notifications.orange_sms import OrangeSMSNotifier

with DAG(
    dag_id={dag_id!r},
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds={deadline!r}),
        callback=AsyncCallback(
            OrangeSMSNotifier,
            kwargs={{"recipients": {recipients!r}, "message": "{{{{ dag_run.dag_run_id }}}} is late"}},
        ),
    ),
):

    @task
    def work():
        time.sleep({work!r})

    work()
"""


def deadline_dag(dag_id: str, recipients: Sequence[str], *, work: float, deadline: float = 10) -> str:
    """
    The source of a DAG whose runs miss a deadline: ``OrangeSMSNotifier`` (an ``AsyncCallback``)
    texts ``recipients`` "<run id> is late" once a run has been queued ``deadline`` seconds, while
    its one task sleeps ``work`` seconds.

    :param dag_id: The DAG's id (one per test sharing a deployment).
    :param recipients: The on-call numbers.
    :param work: Seconds the task sleeps (more than ``deadline`` for the deadline to be missed).
    :param deadline: Seconds from the run being queued to its deadline.
    """
    return _DEADLINE_DAG.format(dag_id=dag_id, recipients=list(recipients), work=work, deadline=deadline)


def wait_for(
    condition: Callable[[], Any], what: str, limit: float = STARTUP_LIMIT, every: float = 0.5
) -> Any:
    """
    Poll ``condition`` until it returns something true; return that. Fails after ``limit`` seconds.

    :param condition: What to check.
    :param what: What is awaited, for the error.
    :param limit: A bound against a hang, far above what a loaded machine needs.
    :param every: Seconds between checks (polling state that has no event to await).
    """
    end = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


@dataclass
class AirflowDeployment:
    """
    The processes of a deployment, started and stopped by name.

    :param home: Its ``AIRFLOW_HOME`` (the database, the logs, each process's output).
    :param dags: The DAGs folder (the ``dags-folder`` bundle).
    :param extra_env: More environment for every process (connections, ``[orange_sms]`` options…).
    :param database_url: The metadata database (e.g. PostgreSQL); a sqlite file in ``home`` by
        default, which :meth:`query` and the helpers built on it need.
    :param execution_port: The port of the API server that serves the tasks' execution API, when it
        is not :attr:`api_port` (an API server started with ``apps="execution"``).
    """

    home: Path
    dags: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    database_url: str | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    execution_port: int | None = None
    _token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The API server's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def database(self) -> Path:
        """The sqlite metadata database."""
        return self.home / "airflow.db"

    def env(self) -> dict[str, str]:
        """The environment of every process of the deployment."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AIRFLOW__") or k == "AIRFLOW__CORE__FERNET_KEY"
        }
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.database_url or f"sqlite:///{self.database}",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=(
                f"http://127.0.0.1:{self.execution_port or self.api_port}/execution/"
            ),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__API__BASE_URL=self.url,
            AIRFLOW__API__PORT=str(self.api_port),
            AIRFLOW__API_AUTH__JWT_ISSUER="airflow",
            AIRFLOW__API_AUTH__JWT_SECRET=self._jwt_secret,
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.home / "logs"),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(
                [
                    {
                        "name": "dags-folder",
                        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(self.dags), "refresh_interval": 0},
                    }
                ]
            ),
            # A killed triggerer's triggers go to another one after 10 s without a heartbeat.
            AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="1",
            AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD="10",
        )
        env.update(self.extra_env)
        return env

    def __post_init__(self) -> None:
        self._jwt_secret = secrets.token_urlsafe(64)
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags.mkdir(parents=True, exist_ok=True)

    # -- processes -------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the metadata database (``airflow db migrate``)."""
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=STARTUP_LIMIT,
        )

    def start(
        self,
        name: str,
        *command: str,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """
        Start ``airflow <command>`` as ``name`` (its own process group), output to ``<home>/<name>.log``.

        :param name: What the tests call it (``triggerer-1``…).
        :param command: The ``airflow`` subcommand and its arguments.
        :param prefix: A command the process runs under (``("nice", "-n", "10")``).
        :param env: More environment for this process only (e.g. its logging level).
        """
        with self.log_path(name).open("ab") as log:
            process = subprocess.Popen(
                [*prefix, sys.executable, "-m", "airflow", *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**self.env(), **(env or {})},
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def start_api_server(
        self,
        name: str = "api_server",
        *,
        port: int | None = None,
        apps: str | None = None,
        prefix: Sequence[str] = (),
        wait: bool = True,
    ) -> None:
        """
        Start an API server and wait until it answers.

        :param name: Its process name.
        :param port: Its port: :attr:`api_port` (the one the other processes use) by default.
        :param apps: Its ``--apps`` (``core``, ``execution``), all of them by default.
        :param prefix: A command it runs under, as for :meth:`start`.
        :param wait: Wait until it answers (else call :meth:`wait_for_api_server`).
        """
        port = self.api_port if port is None else port
        command = ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        if apps is not None:
            command += ["--apps", apps]
        self.start(name, *command, prefix=prefix)
        if wait:
            self.wait_for_api_server(name, port=port, apps=apps)

    def wait_for_api_server(
        self, name: str = "api_server", *, port: int | None = None, apps: str | None = None
    ) -> None:
        """
        Wait until the API server ``name`` answers; fail, with its output, if it exits.

        :param name: Its process name.
        :param port: Its port (:attr:`api_port` by default).
        :param apps: Its ``--apps``, as it was started.
        """
        port = self.api_port if port is None else port
        # The execution API alone has no /api/v2: its health route says when it is up.
        path = "/execution/health" if apps == "execution" else "/api/v2/version"
        wait_for(lambda: self._running(name) and self._answers(path, port), f"the API server {name}")

    def start_triggerer(self, name: str = "triggerer") -> None:
        """Start a triggerer (its log server off) and wait until it heart-beats."""
        self.start_triggerers(name)

    def start_triggerers(self, *names: str) -> None:
        """
        Start triggerers (their log servers off) together, and wait until each heart-beats.

        :param names: Their process names.
        """
        before = self.last_triggerer_job()
        for name in names:
            self.start(name, "triggerer", "--skip-serve-logs")
        wait_for(
            lambda: (
                all(self._running(n) for n in names)
                and self.alive_triggerers(newer_than=before) >= len(names)
            ),
            f"{', '.join(names)} to heart-beat",
        )

    def start_all(self, triggerers: int = 1) -> None:
        """
        Migrate, then start the API server, DAG processor, scheduler and ``triggerers`` triggerers,
        all at once (their start-ups overlap), and wait until the API server answers and the
        triggerers heart-beat.

        :param triggerers: How many triggerers (``triggerer-1``…).
        """
        self.migrate()
        self.start_api_server(wait=False)
        self.start("dag-processor", "dag-processor")
        self.start("scheduler", "scheduler", "--skip-serve-logs")
        self.start_triggerers(*(f"triggerer-{n}" for n in range(1, triggerers + 1)))
        self.wait_for_api_server()

    def _running(self, name: str) -> bool:
        """``True`` while process ``name`` runs; fails with the end of its output once it has exited."""
        code = self.processes[name].poll()
        if code is not None:
            raise AssertionError(f"{name} exited with {code}:\n{self.output(name)[-3000:]}")
        return True

    def kill(self, name: str) -> None:
        """``kill -9`` the process ``name`` and every process it started (its process group)."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self, name: str) -> None:
        """Stop ``name`` (SIGTERM to its group, SIGKILL if it lingers)."""
        self._terminate(name)
        self._reap(name)

    def stop_all(self) -> None:
        """Stop every process still running: all are signalled first, so their shutdowns overlap."""
        names = list(self.processes)
        for name in names:
            self._terminate(name)
        for name in names:
            self._reap(name)

    def _terminate(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)

    def _reap(self, name: str) -> None:
        process = self.processes.pop(name)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_path(self, name: str) -> Path:
        """Where process ``name`` writes its output."""
        return self.home / f"{name}.log"

    def output(self, name: str) -> str:
        """Everything process ``name`` (and earlier processes of that name) printed."""
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the database and the REST API -----------------------------------------------------------

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query of the metadata database (the sqlite one)."""
        if self.database_url is not None:
            raise ValueError(f"query() reads the sqlite database only, not {self.database_url.split(':')[0]}")
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=60)
        try:
            return connection.execute(sql, args).fetchall()
        finally:
            connection.close()

    def last_triggerer_job(self) -> int:
        """The id of the latest triggerer job (0 when none)."""
        rows = self.query("SELECT max(id) FROM job WHERE job_type = 'TriggererJob'")
        return int(rows[0][0] or 0)

    def alive_triggerers(self, newer_than: int = 0) -> int:
        """
        How many triggerers heart-beat within the health threshold.

        :param newer_than: Count only the jobs after this one.
        """
        rows = self.query(
            "SELECT count(*) FROM job WHERE job_type = 'TriggererJob' AND end_date IS NULL "
            "AND latest_heartbeat > datetime('now', '-10 seconds') AND id > ?",
            newer_than,
        )
        return int(rows[0][0])

    def _answers(self, path: str, port: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def headers(self) -> dict[str, str]:
        """Bearer auth for the REST API (simple auth manager, everyone admin)."""
        if self._token is None:
            response = requests.get(f"{self.url}/auth/token", timeout=30)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def wait_for_dag(self, dag_id: str) -> None:
        """Wait until the DAG processor has serialised ``dag_id`` (without import errors)."""

        def parsed() -> bool:
            response = requests.get(f"{self.url}/api/v2/dags/{dag_id}", headers=self.headers(), timeout=30)
            if response.status_code == 200:
                return True
            errors = requests.get(f"{self.url}/api/v2/importErrors", headers=self.headers(), timeout=30)
            if errors.ok and errors.json().get("import_errors"):
                raise AssertionError(f"import errors: {errors.json()['import_errors']}")
            return False

        wait_for(parsed, f"the DAG {dag_id} to be parsed")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Start a run of ``dag_id`` now; return its run id."""
        response = requests.post(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": conf or {}},
            headers=self.headers(),
            timeout=60,
        )
        assert response.status_code == 200, response.text
        run_id: str = response.json()["dag_run_id"]
        return run_id

    def variable(self, key: str) -> str | None:
        """A Variable's (decrypted) value through the REST API; ``None`` when it does not exist."""
        response = requests.get(f"{self.url}/api/v2/variables/{key}", headers=self.headers(), timeout=30)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        value: str = response.json()["value"]
        return value

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The state of a DAG run."""
        [(state,)] = self.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
        return str(state)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """The state of each task instance of a DAG run."""
        rows = self.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", dag_id, run_id
        )
        return {task_id: state for task_id, state in rows}

    def deadline_callbacks(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The deadlines of a DAG run and their callbacks: missed or not, state, output, times."""
        rows = self.query(
            "SELECT d.id, d.missed, d.deadline_time, d.last_updated_at, c.state, c.output "
            "FROM deadline d JOIN dag_run r ON d.dagrun_id = r.id JOIN callback c ON d.callback_id = c.id "
            "WHERE r.dag_id = ? AND r.run_id = ?",
            dag_id,
            run_id,
        )
        keys = ("id", "missed", "deadline_time", "evaluated_at", "state", "output")
        return [dict(zip(keys, row, strict=True)) for row in rows]
