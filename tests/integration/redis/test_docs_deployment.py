"""
The "Several machines" page's example, run as written against a real redis-server: its bash block
(the Redis connection, the Orange SMS connection with its two Redis extras) gives the environment,
and its DAG of three send tasks runs on two "machines" (processes with their own token cache
directory). Together they make one token request, and every SMS is sent once per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from tests.support.doc_blocks import DOCS_SANDBOX_URL, ROOT, all_blocks
from tests.support.redis_server import RedisServer, running_redis

PASSWORD = "docs-redis-password"
#: Where the page's Redis is; the test's own takes its place.
PAGE_REDIS = "redis-password@redis-host:6379"
_RUN_DAG = """
import sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
[dag] = bag.dags.values()
run = dag.test()
assert run.state == "success", run.state
"""


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path, password=PASSWORD)


def page_environment(code: str, base: dict[str, str]) -> dict[str, str]:
    """The variables the page's bash block exports, as bash reads them."""
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f"{code}\nenv -0"],
        env=base,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(entry.split("=", 1) for entry in result.stdout.split("\0") if "=" in entry)


def test_three_send_tasks_on_two_machines_share_one_token_through_redis(redis_server, airflow_db, tmp_path):
    connection, dag = [b for b in all_blocks() if b.marker == "redis"]
    assert (connection.language, dag.language) == ("bash", "python")
    assert dag.is_dag
    assert PAGE_REDIS in connection.code
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    with SandboxServer(config=SandboxConfig(dr_delay=None)) as sandbox:
        code = connection.code.replace(PAGE_REDIS, f"{PASSWORD}@127.0.0.1:{redis_server.port}")
        env = page_environment(code.replace(DOCS_SANDBOX_URL, sandbox.url), base)
        extra = json.loads(env["AIRFLOW_CONN_ORANGE_SMS_DEFAULT"])["extra"]
        assert (extra["rate_limit_backend"], extra["auth_cache"]) == ("redis", "redis")
        folder = tmp_path / "dags"
        folder.mkdir()
        (folder / "three_regions.py").write_text(dag.code)
        bundle = {"path": str(folder), "refresh_interval": 0}
        env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
            [
                {
                    "name": "docs_dags",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": bundle,
                }
            ]
        )
        outputs = []
        for machine in ("machine1", "machine2"):
            env["ORANGE_SMS_CACHE_DIR"] = str(tmp_path / machine)  # its own files: a machine of its own
            result = subprocess.run(
                [sys.executable, "-c", _RUN_DAG, str(folder)],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"{machine}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
            outputs.append(result.stdout + result.stderr)
        recipients = sorted(m.address for m in sandbox.state.messages)
        token_requests = sandbox.state.token_requests
    assert token_requests == 1
    numbers = [f"tel:+225070000000{n}" for n in range(1, 7)]
    assert recipients == sorted(numbers * 2)  # each run texts each number once
    assert all("spaced through Redis" in output for output in outputs)
