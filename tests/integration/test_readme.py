"""
Every Python code block of the README runs, as written, against the sandbox.

The README's examples address the sandbox at ``http://127.0.0.1:8089`` (its documented command);
this test starts one on a free port and puts its URL there. Each block runs in a fresh process with
the README's ``AIRFLOW_CONN_ORANGE_SMS_DEFAULT`` for the sandbox:

* a block that defines a DAG (``DAG(`` or ``@dag``) is saved as a DAG file and run with
  ``dag.test()``, which must end in ``success``; its tasks may use only ``default_pool`` (a missing
  pool leaves a task "scheduled" in a real Airflow, silently, while ``dag.test()`` ignores pools);
* any other ``python`` block is run with ``python -c``.

Markers, an HTML comment on the line right before the fence (invisible on GitHub):

* ``<!-- readme-test: skip (why) -->`` before a ``python`` block that cannot run (a fragment);
* ``<!-- readme-test: run -->`` before a ``bash`` block: it is run once, before the Python blocks
  (a setup step the reader does once);
* ``<!-- readme-test: sandbox-connection -->`` before the ``bash`` block exporting the sandbox's
  ``AIRFLOW_CONN_ORANGE_SMS_DEFAULT``, which every block then uses;
* ``<!-- readme-test: walkthrough -->`` before a ``bash`` block of "Run it in a real Airflow": those
  blocks run together, in order, as one script in a fresh ``AIRFLOW_HOME`` with nothing of the
  tests' Airflow settings (see :func:`test_the_walkthrough_commands_run_in_a_fresh_airflow_home`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from tests.support.dags import EXAMPLE_DAGS
from tests.support.processes import PROCESS_DEADLINE
from tests.support.versions import skip_on_airflow_3_0

README = Path(__file__).resolve().parents[2] / "README.md"
README_SANDBOX_URL = "http://127.0.0.1:8089"
#: The walkthrough's Airflow home, replaced by a temporary one.
WALKTHROUGH_HOME = "export AIRFLOW_HOME=~/airflow"
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*([\w-]+)\s*(?:\((.*)\))?\s*-->\s*$")


@dataclass
class Block:
    """One fenced code block of the README."""

    language: str
    code: str
    line: int
    marker: str | None
    reason: str | None

    @property
    def is_dag(self) -> bool:
        return bool(re.search(r"\bDAG\(|@dag\b", self.code))

    @property
    def id(self) -> str:
        first = next((line for line in self.code.splitlines() if line.strip()), "")
        return f"README.md:{self.line} {first[:40]}"


def readme_blocks() -> list[Block]:
    """The README's fenced code blocks with their markers, in document order."""
    blocks: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match or not match.group(1):
            i += 1
            continue
        start = i
        marker = _MARKER.match(lines[start - 1]) if start > 0 else None
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        blocks.append(
            Block(
                language=match.group(1),
                code="\n".join(body) + "\n",
                line=start + 1,
                marker=marker.group(1) if marker else None,
                reason=marker.group(2) if marker else None,
            )
        )
        i += 1
    return blocks


PYTHON_BLOCKS = [b for b in readme_blocks() if b.language == "python"]


def test_readme_markers_are_known_and_skips_say_why():
    for block in readme_blocks():
        assert block.marker in (None, "skip", "run", "sandbox-connection", "walkthrough"), block.id
        if block.marker == "skip":
            assert block.language == "python", block.id
            assert block.reason, f"{block.id}: skip needs (a reason)"
        if block.marker in ("run", "sandbox-connection", "walkthrough"):
            assert block.language == "bash", block.id
    assert sum(b.marker == "sandbox-connection" for b in readme_blocks()) == 1
    assert PYTHON_BLOCKS, "the README has Python blocks"


def _sandbox_connection(url: str) -> str:
    [block] = [b for b in readme_blocks() if b.marker == "sandbox-connection"]
    match = re.search(r"export AIRFLOW_CONN_ORANGE_SMS_DEFAULT=('.*?')", block.code, re.S)
    assert match, f"{block.id}: no export AIRFLOW_CONN_ORANGE_SMS_DEFAULT='…'"
    value = shlex.split(match.group(1))[0]
    json.loads(value)  # valid JSON as written
    return value.replace(README_SANDBOX_URL, url)


@pytest.fixture(scope="module")
def readme_sandbox():
    # The README's sandbox as its command starts it (rate limit, balances, receipts), on a free port.
    with SandboxServer(config=SandboxConfig(dr_delay=None)) as server:
        yield server


@pytest.fixture(scope="module")
def readme_env(airflow_db, readme_sandbox, tmp_path_factory):
    """Environment of a reader who followed the README: sandbox connection, pools, DAGs folder."""
    dags = tmp_path_factory.mktemp("readme-dags")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW_CONN_")}
    env.update(
        AIRFLOW_CONN_ORANGE_SMS_DEFAULT=_sandbox_connection(readme_sandbox.url),
        ORANGE_SMS_CACHE_DIR=str(tmp_path_factory.mktemp("readme-cache")),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),  # `airflow`
        PYTHONPATH=os.pathsep.join(filter(None, [str(README.parent), env.get("PYTHONPATH")])),
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(
            [
                {
                    "name": name,
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(path), "refresh_interval": 0},
                }
                for name, path in (("readme_dags", dags), ("orange_sms_examples", EXAMPLE_DAGS))
            ]
        ),
    )
    for block in readme_blocks():
        if block.marker == "run":
            subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.code], env=env, check=True, cwd=README.parent
            )
    return {"env": env, "dags": dags}


_RUN_DAGS = """
import sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
assert bag.dags, "the block defines no DAG"
for dag in bag.dags.values():
    # dag.test() ignores pools, a real scheduler does not: a task whose pool is missing stays
    # "scheduled" with nothing in its log, so a DAG copied from the README must not need one.
    pools = {task.task_id: task.pool for task in dag.tasks if task.pool != "default_pool"}
    assert not pools, f"{dag.dag_id} uses pools a fresh Airflow lacks: {pools}"
    run = dag.test()
    assert run.state == "success", f"{dag.dag_id}: {run.state}"
"""


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.id for b in PYTHON_BLOCKS])
def test_readme_python_block_runs(block, readme_env, readme_sandbox):
    if block.marker == "skip":
        pytest.skip(f"marked in the README: {block.reason}")
    code = block.code.replace(README_SANDBOX_URL, readme_sandbox.url)
    env = readme_env["env"]
    if block.is_dag:
        folder = readme_env["dags"] / f"block_{block.line}"
        folder.mkdir()
        (folder / f"readme_block_{block.line}.py").write_text(code)
        command = [sys.executable, "-c", _RUN_DAGS, str(folder)]
    else:
        command = [sys.executable, "-c", code]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=README.parent)
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


@skip_on_airflow_3_0("the walkthrough is written for Airflow 3.3's CLI and settings")
def test_the_walkthrough_commands_run_in_a_fresh_airflow_home(tmp_path):
    """
    "Run it in a real Airflow", as a reader types it: settings file, ``db migrate``, the connection
    and its Test, the public URL Variable, the subscription example and the optional pool, in a
    fresh ``AIRFLOW_HOME`` with no ``AIRFLOW_*`` variable of the tests'. The steps that start
    long-running processes (the sandbox, ``airflow standalone``) are not run: the test's own
    sandbox stands for the first, and ``airflow dags test`` needs no scheduler.
    """
    blocks = [b for b in readme_blocks() if b.marker == "walkthrough"]
    script = "\n".join(b.code for b in blocks)
    assert script.count(WALKTHROUGH_HOME) == 1, "the walkthrough sets AIRFLOW_HOME once"
    home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ORANGE_SMS_"))}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),  # airflow, python
        ORANGE_SMS_CACHE_DIR=str(tmp_path / "cache"),  # not the user's token cache
    )
    with SandboxServer(config=SandboxConfig(dr_delay=None)) as sandbox:
        script = script.replace(WALKTHROUGH_HOME, f"export AIRFLOW_HOME={home}")
        script = script.replace(README_SANDBOX_URL, sandbox.url)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=env,
            cwd=README.parent,
            capture_output=True,
            text=True,
            timeout=PROCESS_DEADLINE,
        )
        subscriptions = list(sandbox.state.subscriptions.values())
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the walkthrough failed:\n{output[-6000:]}"
    assert "Connection success!" in output
    settings = (home / "orange-sms.env").read_text()
    match = re.search(r"DELIVERY_RECEIPTS_SECRET=(\S+)", settings)
    assert match, settings
    secret = match.group(1)
    assert len(secret) >= 32  # token_urlsafe(32): 43 characters
    [subscription] = subscriptions
    assert subscription.notify_url == f"http://127.0.0.1:8080/orange-sms/delivery-receipts/{secret}"
    assert (
        "Orange posts delivery receipts to http://127.0.0.1:8080/orange-sms/delivery-receipts/***" in output
    )
    assert secret not in output
