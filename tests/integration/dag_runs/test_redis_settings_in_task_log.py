"""The Redis back ends configured on a connection, seen in a real task's log: Airflow masks the value
of every extra whose name holds "token", so the token store's setting must not be such a name, or
every "redis" in the task log reads ``***``.

The masking is done where a worker writes the task log: by the task supervisor, for the values the
task process reports while it reads the connection. ``dag.test()`` runs tasks in its own process and
``airflow dags test`` logs through the core masker, which never hears of them; so the DAG runs here
as on a worker: LocalExecutor, a task subprocess under its supervisor, an ``airflow api-server`` for
the execution API, and the task log read from its file.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.dags import TEST_DAGS
from tests.support.processes import free_port, run_or_dump_stacks, stop_process
from tests.support.redis_server import RedisServer, redis_client, running_redis
from tests.support.sandbox import connection_json

_RUN_DAG = """
import sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag

dag = DagBag(dag_folder=sys.argv[1]).dags[sys.argv[2]]
run = dag.test(use_executor=True)
print("DAG RUN STATE:", run.state)
"""


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)


@pytest.fixture(scope="module")
def worker_env(airflow_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """What a LocalExecutor worker needs besides the connections, with ``airflow api-server`` up."""
    home = tmp_path_factory.mktemp("worker")
    port = free_port()
    env = dict(os.environ)
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    env.update(
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_ISSUER="airflow",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        # dag.test(use_executor=True) tells the worker to load the DAG from the "dags-folder" bundle.
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(TEST_DAGS), "refresh_interval": 0},
                }
            ]
        ),
    )
    log_path = home / "api-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 180  # a startup limit, not a measured expectation
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"airflow api-server did not start:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/v2/version", timeout=2).status_code in (
                    200,
                    401,
                ):
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)  # polling a port that is about to open: there is no event to await
        yield env
    finally:
        stop_process(process)


def _run_on_a_worker(env: dict[str, str], dag_id: str, **more_env: str) -> str:
    """Run ``dag_id`` through LocalExecutor; return its task logs, as the worker wrote them."""
    logs = Path(env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]) / f"dag_id={dag_id}"
    before = set(logs.rglob("*.log"))
    runs_before = _dag_run_states(dag_id)
    result = run_or_dump_stacks(
        [sys.executable, "-c", _RUN_DAG, str(TEST_DAGS / "variable_token_cache.py"), dag_id],
        env={**env, **more_env},
        finished=lambda: _ended(_dag_run_states(dag_id), runs_before),
    )
    output = result.stdout + result.stderr
    new_runs = {
        run_id: state for run_id, state in _dag_run_states(dag_id).items() if run_id not in runs_before
    }
    assert list(new_runs.values()) == ["success"], (new_runs, output[-6000:])
    if result.returncode == 0:
        assert "DAG RUN STATE: success" in result.stdout, output[-6000:]
    written = sorted(set(logs.rglob("*.log")) - before)
    assert len(written) == 2, written  # one log per task
    return "\n".join(path.read_text() for path in written)


def _dag_run_states(dag_id: str) -> dict[str, str]:
    """Every run of ``dag_id`` in the metadata database, by run id, with its state."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(DagRun.run_id, DagRun.state).where(DagRun.dag_id == dag_id))
        return {run_id: str(state) for run_id, state in rows}


def _ended(states: dict[str, str], before: dict[str, str]) -> bool:
    """Whether a run of the DAG not in ``before`` has ended."""
    return any(run_id not in before and state in ("success", "failed") for run_id, state in states.items())


@pytest.mark.parametrize("setting", ["auth_cache", "token_cache"])
def test_the_redis_settings_in_a_task_log(worker_env, sandbox, cache_dir, redis_server, setting):
    task_log = _run_on_a_worker(
        worker_env,
        "test_token_store",
        AIRFLOW_CONN_ORANGE_SMS_DEFAULT=connection_json(
            sandbox, rate_limit_backend="redis", **{setting: "redis"}
        ),
        AIRFLOW_CONN_REDIS_DEFAULT=redis_server.url,
        ORANGE_SMS_CACHE_DIR=str(cache_dir),
    )

    assert [m.message for m in sandbox.state.messages] == ["first task", "second task"]
    assert redis_client(redis_server).keys("orange_sms:token:*")  # the token went through Redis
    assert not list(cache_dir.glob("token-*.json"))
    deprecation = "The connection extra 'token_cache' is deprecated: name it 'auth_cache' instead"
    if setting == "auth_cache":
        assert "Orange SMS sends are spaced through Redis (connection 'redis_default')" in task_log
        assert "airflow_provider_orange_sms.limit.redis_limiter" in task_log
        assert "***_default" not in task_log
        assert deprecation not in task_log
    else:
        # Still works, and says why to rename it: the very log it writes in hides every "redis".
        assert deprecation in task_log
        assert "Orange SMS sends are spaced through Redis (connection '***_default')" in task_log
