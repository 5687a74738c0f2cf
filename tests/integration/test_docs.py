"""
Every code block a reader may copy from the README, CONTRIBUTING.md and the docs pages runs, as
written, against the sandbox (markers and their meaning: :mod:`tests.support.doc_blocks`).

The pages address the sandbox at ``http://127.0.0.1:8089`` (its documented command); each test
starts one on a free port and puts its URL there, with the sandbox page's
``AIRFLOW_CONN_ORANGE_SMS_DEFAULT`` for it:

* a ``python`` block that defines a DAG (``DAG(`` or ``@dag``) is saved as a DAG file and run with
  ``dag.test()``, which must end in ``success``; its tasks may use only ``default_pool`` (a missing
  pool leaves a task "scheduled" in a real Airflow, silently, while ``dag.test()`` ignores pools).
  It runs in a fresh working directory after the page's earlier plain ``python`` blocks (a page
  may prepare a file, e.g. a CSV, for its DAG); the DAG blocks run one after the other in one
  Python process (:func:`dag_block_runs`);
* any other ``python`` block is run with ``python -c``;
* a ``bash`` block is run with ``bash -euo pipefail`` from the repository's root, against a fresh
  sandbox (a block may inject faults into it);
* a ``json`` block is parsed;
* the ``walkthrough`` blocks run together, in order, as one script in a fresh ``AIRFLOW_HOME`` with
  nothing of the tests' Airflow settings
  (:func:`test_the_walkthrough_commands_run_in_a_fresh_airflow_home`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from tests.support.dags import EXAMPLE_DAGS
from tests.support.doc_blocks import (
    DOCS_SANDBOX_URL,
    INCLUDE_HOMES,
    MARKERS,
    ROOT,
    RUN_LANGUAGES,
    SHOWN_LANGUAGES,
    Block,
    all_blocks,
    blocks,
    doc_files,
    includes,
    unlabelled_fences,
)
from tests.support.processes import PROCESS_DEADLINE
from tests.support.versions import skip_on_airflow_3_0

#: The walkthrough's Airflow home, replaced by a temporary one.
WALKTHROUGH_HOME = "export AIRFLOW_HOME=~/airflow"
BLOCKS = all_blocks()
#: The blocks run here (the ``redis`` ones run in tests/integration/redis/test_docs_deployment.py).
RUN_HERE = [b for b in BLOCKS if b.marker in (None, "substitute") and b.language in ("python", "bash")]
JSON_BLOCKS = [b for b in BLOCKS if b.language == "json"]


def test_markers_are_known_and_say_why():
    for block in BLOCKS:
        assert block.marker in (None, *MARKERS), block.id
        if block.marker in ("skip", "substitute"):
            assert block.argument, f"{block.id}: {block.marker} needs (an argument)"
        if block.marker == "substitute":
            assert "|" in (block.argument or ""), f"{block.id}: substitute (OLD -> NEW | why)"
            block.substituted()
        if block.marker in ("sandbox-connection", "walkthrough"):
            assert block.language == "bash", block.id
        if block.marker == "walkthrough":
            assert block.path.name == "walkthrough.md", block.id
    assert sum(b.marker == "sandbox-connection" for b in BLOCKS) == 1


def test_every_block_is_run_or_says_why_not():
    for path in doc_files():
        assert unlabelled_fences(path) == [], f"{path.name}: fences without a language (text for output)"
    for block in BLOCKS:
        runnable = block.language in RUN_LANGUAGES or block.language in SHOWN_LANGUAGES
        assert runnable or block.marker == "skip", f"{block.id}: {block.language} is never run: skip (why)"
    assert [b for b in RUN_HERE if b.is_dag], "the pages have DAGs"


def test_included_files_are_example_dags_the_suite_runs():
    for path in doc_files():
        for name in includes(path):
            assert name.startswith(INCLUDE_HOMES), f"{path.name} includes {name}, which no test runs"
            assert (ROOT / name).is_file(), f"{path.name} includes {name}, which does not exist"
            assert (EXAMPLE_DAGS / Path(name).name).is_file()


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=[b.id for b in JSON_BLOCKS])
def test_json_block_parses(block: Block):
    json.loads(block.code)


def sandbox_connection(url: str) -> str:
    """The sandbox page's connection, for the sandbox at ``url``."""
    [block] = [b for b in BLOCKS if b.marker == "sandbox-connection"]
    match = re.search(r"export AIRFLOW_CONN_ORANGE_SMS_DEFAULT=('.*?')", block.code, re.S)
    assert match, f"{block.id}: no export AIRFLOW_CONN_ORANGE_SMS_DEFAULT='…'"
    value = shlex.split(match.group(1))[0]
    json.loads(value)  # valid JSON as written
    return value.replace(DOCS_SANDBOX_URL, url)


@pytest.fixture(scope="module")
def docs_sandbox():
    # The sandbox as its documented command starts it (rate limit, balances, receipts), on a free port.
    with SandboxServer(config=SandboxConfig(dr_delay=None)) as server:
        yield server


@pytest.fixture(scope="module")
def docs_env(airflow_db, tmp_path_factory):
    """Environment of a reader who followed the pages: DAGs folder, token cache, no other connection."""
    dags = tmp_path_factory.mktemp("docs-dags")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW_CONN_")}
    env.update(
        ORANGE_SMS_CACHE_DIR=str(tmp_path_factory.mktemp("docs-cache")),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),  # `airflow`
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(
            [
                {
                    "name": name,
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(path), "refresh_interval": 0},
                }
                for name, path in (("docs_dags", dags), ("orange_sms_examples", EXAMPLE_DAGS))
            ]
        ),
    )
    return {"env": env, "dags": dags}


_RUN_DAGS = """
import json
import os
import sys
import traceback

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag

failures = {}
for block_id, folder, cwd in json.loads(sys.argv[1]):
    os.chdir(cwd)
    try:
        bag = DagBag(dag_folder=folder)
        assert not bag.import_errors, bag.import_errors
        assert bag.dags, "the block defines no DAG"
        for dag in bag.dags.values():
            # dag.test() ignores pools, a real scheduler does not: a task whose pool is missing stays
            # "scheduled" with nothing in its log, so a DAG copied from the pages must not need one.
            pools = {task.task_id: task.pool for task in dag.tasks if task.pool != "default_pool"}
            assert not pools, f"{dag.dag_id} uses pools a fresh Airflow lacks: {pools}"
            run = dag.test()
            assert run.state == "success", f"{dag.dag_id}: {run.state}"
    except BaseException:
        failures[block_id] = traceback.format_exc()
with open(sys.argv[2], "w") as report:
    json.dump(failures, report)
"""


def run(command: list[str], env: dict[str, str], cwd: Path, block: Block) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=cwd)
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


@pytest.fixture(scope="module")
def dag_block_runs(request, docs_env, docs_sandbox, tmp_path_factory) -> dict[str, str]:
    """
    Run the DAG blocks of the tests selected in one Python process (each one's Airflow import and
    metadata-DB setup took longer than its ``dag.test()``): each in its own folder and working
    directory, after its page's earlier plain ``python`` blocks. Returns the process's output and,
    by block id, the failures.
    """
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_block_runs" and item.callspec.params["block"].is_dag
    ]
    env = dict(docs_env["env"])
    env["AIRFLOW_CONN_ORANGE_SMS_DEFAULT"] = sandbox_connection(docs_sandbox.url)
    jobs = []
    for block in selected:
        cwd = tmp_path_factory.mktemp("docs-dag-cwd")
        for earlier in blocks(block.path):
            plain = earlier.language == "python" and earlier.marker != "skip" and not earlier.is_dag
            if plain and earlier.line < block.line:
                prepared = earlier.substituted().replace(DOCS_SANDBOX_URL, docs_sandbox.url)
                run([sys.executable, "-c", prepared], env, cwd, earlier)
        folder = docs_env["dags"] / f"{block.path.stem}_{block.line}"
        folder.mkdir()
        code = block.substituted().replace(DOCS_SANDBOX_URL, docs_sandbox.url)
        (folder / f"docs_{block.path.stem.replace('-', '_')}_{block.line}.py").write_text(code)
        jobs.append([block.id, str(folder), str(cwd)])
    report = tmp_path_factory.mktemp("docs-dag-runs") / "failures.json"
    result = subprocess.run(
        [sys.executable, "-c", _RUN_DAGS, json.dumps(jobs), str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    output = f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    assert result.returncode == 0, f"the DAG blocks' process failed:\n{output}"
    return {"output": output, **json.loads(report.read_text())}


@pytest.mark.parametrize("block", RUN_HERE, ids=[b.id for b in RUN_HERE])
def test_block_runs(block: Block, docs_env, docs_sandbox, tmp_path, request):
    env = dict(docs_env["env"])
    if block.is_dag:
        runs = request.getfixturevalue("dag_block_runs")
        assert block.id not in runs, f"{block.id} failed:\n{runs[block.id]}\n{runs['output']}"
        return
    if block.language == "bash":
        # A fresh sandbox: a block may inject faults or change balances.
        with SandboxServer(config=SandboxConfig(dr_delay=None)) as sandbox:
            env["AIRFLOW_CONN_ORANGE_SMS_DEFAULT"] = sandbox_connection(sandbox.url)
            code = block.substituted().replace(DOCS_SANDBOX_URL, sandbox.url)
            run(["bash", "-euo", "pipefail", "-c", code], env, ROOT, block)
        return
    env["AIRFLOW_CONN_ORANGE_SMS_DEFAULT"] = sandbox_connection(docs_sandbox.url)
    code = block.substituted().replace(DOCS_SANDBOX_URL, docs_sandbox.url)
    run([sys.executable, "-c", code], env, tmp_path, block)


@skip_on_airflow_3_0("the walkthrough is written for Airflow 3.3's CLI and settings")
def test_the_walkthrough_commands_run_in_a_fresh_airflow_home(tmp_path):
    """
    "Run it in a real Airflow", as a reader types it: settings file, ``db migrate``, the connection
    and its Test, the public URL Variable, the subscription example and the optional pool, in a
    fresh ``AIRFLOW_HOME`` with no ``AIRFLOW_*`` variable of the tests'. The steps that start
    long-running processes (the sandbox, ``airflow standalone``) are not run: the test's own
    sandbox stands for the first, and ``airflow dags test`` needs no scheduler.
    """
    walkthrough = [b for b in BLOCKS if b.marker == "walkthrough"]
    script = "\n".join(b.code for b in walkthrough)
    assert script.count(WALKTHROUGH_HOME) == 1, "the walkthrough sets AIRFLOW_HOME once"
    home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ORANGE_SMS_"))}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),  # airflow, python
        ORANGE_SMS_CACHE_DIR=str(tmp_path / "cache"),  # not the user's token cache
    )
    with SandboxServer(config=SandboxConfig(dr_delay=None)) as sandbox:
        script = script.replace(WALKTHROUGH_HOME, f"export AIRFLOW_HOME={home}")
        script = script.replace(DOCS_SANDBOX_URL, sandbox.url)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=env,
            cwd=ROOT,
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
