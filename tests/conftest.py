"""Shared fixtures: a real sandbox server over HTTP, an isolated cache and Airflow home."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

# Airflow reads these when first imported: keep it away from the user's own AIRFLOW_HOME. Child
# processes the tests spawn inherit the variable and reuse the same temporary home.
if "ORANGE_SMS_TESTS_AIRFLOW_HOME" not in os.environ:
    os.environ["ORANGE_SMS_TESTS_AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="orange-sms-tests-airflow-")
    atexit.register(shutil.rmtree, os.environ["ORANGE_SMS_TESTS_AIRFLOW_HOME"], ignore_errors=True)
os.environ["AIRFLOW_HOME"] = os.environ["ORANGE_SMS_TESTS_AIRFLOW_HOME"]
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# One Fernet key for this process and the Airflow processes it spawns, as in a real deployment
# (each would otherwise make up its own and not decrypt the others' Variables).
if "AIRFLOW__CORE__FERNET_KEY" not in os.environ:
    from cryptography.fernet import Fernet

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = _ROOT / "example_dags"
TEST_DAGS = _ROOT / "tests" / "dags"
# dag.test() syncs the DAG bundle that holds the DAG file: declare the example and test DAG folders.
os.environ.setdefault(
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
    json.dumps(
        [
            {
                "name": name,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(path), "refresh_interval": 0},
            }
            for name, path in (("orange_sms_examples", EXAMPLE_DAGS), ("orange_sms_test_dags", TEST_DAGS))
        ]
    ),
)

from airflow_provider_orange_sms.client import OrangeSMSClient, RetryPolicy  # noqa: E402
from airflow_provider_orange_sms.ledger.ledger_stores import InMemoryLedgerStore  # noqa: E402
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer  # noqa: E402

#: A sandbox sender that is a developer's own number, not one of Orange's 12 country numbers.
OWN_NUMBER = "2250700009999"

#: Fast backoff so retry tests take milliseconds, not seconds.
FAST_RETRY = RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private token/throttle cache directory, also exported as ORANGE_SMS_CACHE_DIR."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("ORANGE_SMS_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Freeze the throttle's wall clock so slot arithmetic does not depend on machine load."""
    from airflow_provider_orange_sms.limit import throttle as throttle_module

    clock = [1_000_000.0]
    monkeypatch.setattr(throttle_module.time, "time", lambda: clock[0])
    return clock


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Sandbox settings; override in a test module to change them."""
    return SandboxConfig(dr_delay=None)


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[SandboxServer]:
    """A fresh Orange SMS sandbox listening on a free loopback port."""
    with SandboxServer(config=sandbox_config) as server:
        yield server


@pytest.fixture
def make_client(sandbox: SandboxServer, cache_dir: Path) -> Iterator[Callable[..., OrangeSMSClient]]:
    """Build clients talking to the sandbox with the shared file cache (close them afterwards)."""
    clients: list[OrangeSMSClient] = []

    def factory(**overrides: Any) -> OrangeSMSClient:
        kwargs: dict[str, Any] = {
            "base_url": sandbox.url,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "sender_address": "2250000",
            "retry": FAST_RETRY,
        }
        kwargs.update(overrides)
        client = OrangeSMSClient.with_file_cache(str(cache_dir), **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., OrangeSMSClient]) -> OrangeSMSClient:
    """A client of the sandbox."""
    return make_client()


#: Seconds a test's child process may take, Python and Airflow imports included: a bound against a
#: hang, far above what a loaded machine needs (minutes were seen with both cores busy), never a
#: measurement.
PROCESS_DEADLINE = 600.0

#: Test-only request header: the throttle slot a send was released in (see judge_rate_at_release).
SLOT_HEADER = "X-Test-Throttle-Slot"


def tag_sends_with_their_slot(client: OrangeSMSClient) -> None:
    """
    Make ``client`` send, on each request, the instant its throttle let it go (``SLOT_HEADER``):
    ``last_release``, on the limiter's shared clock (the machine's wall clock, or Redis's).

    That is the send's booked slot, or, for a sender woken late that kept its turn, when it woke.
    Works in any process: spawned test processes call it on their own clients.
    """
    throttle = client.throttle
    assert throttle is not None
    wait = throttle.wait

    def wait_and_tag(booking: Any, before_send: Any = None) -> float:
        waited = wait(booking, before_send)
        client.session.headers[SLOT_HEADER] = repr(throttle.last_release)
        return waited

    throttle.wait = wait_and_tag  # type: ignore[method-assign]


def judge_rate_at_release(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """
    Make the sandbox count each send in its rate window at the instant the client's throttle released
    it (``SLOT_HEADER``, see :func:`tag_sends_with_their_slot`) rather than at its arrival.

    Arrival times carry the scheduling jitter of a loaded machine (a client thread or the server's
    running late): 10 ms is enough to squeeze six arrivals into Orange's one-second window although
    the throttle spaced the sends 202 ms apart. Judged at the release instants, the sandbox's 429s
    count exactly the sends the throttle let through too close together, which must be none.

    Returns the slots of every send request the sandbox receives (from every process), in order.
    """
    from airflow_provider_orange_sms.sandbox.server import SandboxHandler

    released: list[float] = []
    send = SandboxHandler._send

    def send_judged_at_its_slot(handler: SandboxHandler, client_id: str, sender: str) -> Any:
        slot = handler.headers.get(SLOT_HEADER)
        assert slot is not None, "a send without its throttle slot: it bypassed the throttle"
        handler.reached_gateway = float(slot)  # the instant the window judges it at
        with sandbox.state.lock:
            released.append(float(slot))
        return send(handler, client_id, sender)

    monkeypatch.setattr(SandboxHandler, "_send", send_judged_at_its_slot)
    return released


def assert_windows_spaced(released: list[float], rate: int, interval: float) -> None:
    """
    Assert that any ``rate + 1`` consecutive releases span ``rate`` intervals, less LATE_WAKE_UP.

    That, not the gap between two sends, is what keeps ``rate + 1`` arrivals out of Orange's one
    second despite network jitter: a sender woken late keeps its turn and may send right beside a
    sender booked after it (:func:`~airflow_provider_orange_sms.limit.throttle.keep_turn`), and it pushes
    the slots not yet booked back by its lateness beyond LATE_WAKE_UP.

    :param released: The instants the limiter let sends go, in any order.
    :param rate: The limit, sends per second.
    :param interval: The limiter's interval between slots.
    """
    from airflow_provider_orange_sms.limit.throttle import LATE_WAKE_UP

    times = sorted(released)
    spans = [round(last - first, 4) for first, last in zip(times, times[rate:], strict=False)]
    assert all(span >= rate * interval - LATE_WAKE_UP - 1e-6 for span in spans), (
        f"{rate + 1} sends within {min(spans)} s (at least {rate * interval - LATE_WAKE_UP:.4f} s "
        f"expected); spans: {spans}"
    )


def on_airflow_3_0() -> bool:
    """Whether the suite runs on Airflow 3.0 (scripts/test-oldest-airflow.sh)."""
    from importlib.metadata import version

    return version("apache-airflow").startswith("3.0.")


#: Why tests that clear a run through tests/support/airflow_runs.py skip on 3.0.
NO_REAL_CLEAR_ON_3_0 = "the test's real clear needs airflow.models.dagrun.get_or_create_dagrun (3.1+)"
#: Why tests whose task reads an asset's inlet events through dag.test() skip on 3.0.
INACTIVE_INLETS_ON_3_0 = "dag.test() leaves inlet assets inactive and 3.0 refuses the task"


def skip_on_airflow_3_0(reason: str) -> pytest.MarkDecorator:
    """Skip a test on Airflow 3.0 only, saying why."""
    return pytest.mark.skipif(on_airflow_3_0(), reason=f"Airflow 3.0: {reason}")


def jitter_tolerant() -> SandboxConfig:
    """
    A sandbox whose rate-limit window is 0.9 s instead of 1 s, for tests over real HTTP whose sends
    come from several processes (machines with their own clocks), where the release instants of
    :func:`judge_rate_at_release` cannot be compared: 0.9 s tolerates 100 ms of arrival jitter.
    """
    return SandboxConfig(dr_delay=None, rate_window=0.9)


def connection_json(sandbox: SandboxServer, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_…`` JSON value pointing at ``sandbox``."""
    extras = {"sender_address": "2250000", "retry_backoff": 0.01, "max_attempts": 4}
    extras.update(extra)
    return json.dumps(
        {
            "conn_type": "orange_sms",
            "host": sandbox.url,
            "login": sandbox.client_id,
            "password": sandbox.client_secret,
            "extra": extras,
        }
    )


def task_deferred() -> type[BaseException]:
    """Airflow's TaskDeferred (in the Task SDK from 3.2, in ``airflow.exceptions`` before)."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow < 3.2
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]
    return TaskDeferred


@contextlib.contextmanager
def top_up_after_balance_reads(
    sandbox: SandboxServer, reads: int, country: str, units: int
) -> Iterator[None]:
    """
    While the block runs, set ``country``'s balance to ``units`` once the sandbox has answered
    ``reads`` balance requests (e.g. the operator's check, then a trigger's first poll): a top-up
    that lands while a task waits for credit, awaited on the requests rather than on time.
    """
    stop = threading.Event()

    def top_up() -> None:
        while not stop.is_set():
            with sandbox.state.lock:
                seen = sum(r["path"].endswith("/contracts") for r in sandbox.state.requests)
            if seen >= reads:
                sandbox.state.balances[country] = units
                return
            stop.wait(0.05)

    helper = threading.Thread(target=top_up, daemon=True)
    helper.start()
    try:
        yield
    finally:
        stop.set()
        helper.join()


@contextlib.contextmanager
def opt_out_records_cleared(numbers: list[str]) -> Iterator[None]:
    """No opt-out record of ``numbers`` before or after the block (the metadata DB lives for the session)."""
    from airflow.models.variable import Variable

    from airflow_provider_orange_sms.opt_out import operator_variable_key, variable_key

    keys = [key(number) for number in numbers for key in (variable_key, operator_variable_key)]
    for key in keys:
        Variable.delete(key)
    yield
    for key in keys:
        Variable.delete(key)


def send_requests(sandbox: SandboxServer) -> list[dict[str, Any]]:
    """The send requests (``POST …/requests``) the sandbox received, accepted or not."""
    return [r for r in sandbox.state.requests if r["method"] == "POST" and "/requests" in r["path"]]


@pytest.fixture
def fast_conn(sandbox: SandboxServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The default connection, pointing at the sandbox, with the client-side throttle opened up."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_per_second=1000)
    )
    return "orange_sms_default"


@pytest.fixture
def orange_conn(sandbox: SandboxServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the ``orange_sms_default`` connection at the sandbox; return the conn id."""
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox))
    return "orange_sms_default"


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Migrate the tests' Airflow metadata DB (sqlite in the temp AIRFLOW_HOME) once per session."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=dict(os.environ),
    )
    return os.environ["AIRFLOW_HOME"]


def load_dag(path: Path, dag_id: str) -> Any:
    """Parse the DAG file at ``path`` with Airflow's DagBag and return ``dag_id`` (no import errors)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[dag_id]


def xcom(run: Any, task_id: str) -> Any:
    """The ``return_value`` XCom of ``task_id`` in the DAG run ``run`` (read from the metadata DB)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value")
            .one()
        )
        return XComModel.deserialize_value(row)


def stop_process(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Terminate a server process started by a test, killing it if it does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A TCP port nothing listens on now (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fake_ti(try_number: int = 1) -> SimpleNamespace:
    """A task instance for ``execute`` called outside Airflow: its identity, and what it pushed."""
    pushed: dict[str, Any] = {}
    return SimpleNamespace(
        dag_id="campaign",
        task_id="send",
        run_id="manual__2026-01-01",
        map_index=-1,
        try_number=try_number,
        pushed=pushed,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )


def received(sandbox: SandboxServer) -> Counter[str]:
    """SMS the sandbox accepted, per recipient."""
    return Counter(m.address for m in sandbox.state.messages)


class FaultyStore(InMemoryLedgerStore):
    """
    An in-memory ledger store whose reads or writes fail when told to (as the execution API or a
    locked metadata database would).

    :param fail_reads: 1-based numbers of the ``get`` calls that fail.
    :param fail_writes: 1-based numbers of the ``set`` calls that fail.
    :param fail_writes_from: Every ``set`` call from this number on fails.
    """

    def __init__(
        self,
        *,
        fail_reads: Iterable[int] = (),
        fail_writes: Iterable[int] = (),
        fail_writes_from: int | None = None,
    ) -> None:
        super().__init__()
        self.fail_reads, self.fail_writes, self.fail_writes_from = (
            set(fail_reads),
            set(fail_writes),
            fail_writes_from,
        )
        self.reads = self.write_calls = 0

    def get(self, key: str) -> Any:
        self.reads += 1
        if self.reads in self.fail_reads:
            raise RuntimeError("injected: execution API unavailable")
        return super().get(key)

    def set(self, key: str, value: Any, description: str) -> None:
        self.write_calls += 1
        if self.write_calls in self.fail_writes or (
            self.fail_writes_from is not None and self.write_calls >= self.fail_writes_from
        ):
            raise RuntimeError("injected: database is locked")
        super().set(key, value, description)


# The session's real API server with the delivery-receipt receiver (tests/support/receipts_server.py).
from tests.support.receipts_server import receipts_server  # noqa: E402, F401

#: Markers by the folder a test lives in (tests/integration/<folder>/).
_FOLDER_MARKERS = {
    "api_server": ("api_server", "db"),
    "browser": ("browser", "api_server", "db"),
    "dag_runs": ("db",),
    "db": ("db",),
    "processes": ("processes",),
    "redis": ("redis", "processes"),
}
#: Markers by a fixture the test uses.
_FIXTURE_MARKERS = {
    "airflow_db": ("db",),
    "receipts_server": ("api_server", "db"),
    "redis_server": ("redis",),
}
#: What a test may need, marked by hand (``@pytest.mark.processes``) or by fixture; tests/unit holds
#: none that needs any of them.
_SLOW = {"db", "api_server", "browser", "redis", "processes", "deployment"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with what it needs (see ``markers`` in pyproject.toml); ``slow`` for any."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts
        needs: set[str] = set()
        if parts[0] == "integration":
            needs.update(_FOLDER_MARKERS.get(parts[1], ("processes", "db")))
            if parts[-1] == "test_deployment.py":
                needs.add("deployment")
        for fixture in getattr(item, "fixturenames", ()):
            needs.update(_FIXTURE_MARKERS.get(fixture, ()))
        needs.update(m.name for m in item.iter_markers() if m.name in _SLOW)
        for marker in sorted(needs | ({"slow"} if needs else set())):
            item.add_marker(marker)
