"""Processes and ports in tests: a free port, stopping a server, how long a child may take."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: Seconds a test's child process may take, Python and Airflow imports included: a bound against a
#: hang, far above what a loaded machine needs (minutes were seen with both cores busy), never a
#: measurement.
PROCESS_DEADLINE = 600.0


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


def run_or_dump_stacks(
    command: Sequence[str],
    env: Mapping[str, str],
    timeout: float = PROCESS_DEADLINE,
    finished: Callable[[], bool] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` like ``subprocess.run(capture_output=True, text=True)``, for a command that
    forks workers (an executor's): wait for the command itself, not for its output to close, then
    kill what it left in its process group; a leaked worker holding the output pipe would otherwise
    keep the test waiting after the command ended. If the command outlives ``timeout``, fail the
    test with every Python stack of its process group, dumped by :mod:`faulthandler` on
    ``SIGABRT``, so that a hang seen once on a loaded machine says where it waited.

    :param finished: Says whether the work the command was started for is done (e.g. its DAG run
        has ended in the database). Once it is, the command gets :data:`SHUTDOWN_GRACE` seconds to
        exit; if it is still shutting down then, its process group is killed and the result's
        ``returncode`` is ``-9``: Airflow 3.3's ``LocalExecutor.end()`` can wait forever for a
        worker that never gets its stop message (seen about once in ten runs on a loaded machine,
        all other workers exited), which is Airflow's shutdown, not what a test checks.
    """
    import pytest

    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            command,
            env={**env, "PYTHONFAULTHANDLER": "1"},
            stdout=stdout,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        try:
            _wait(process, timeout, finished)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
            with contextlib.suppress(ProcessLookupError):  # it may have ended right at the deadline
                os.killpg(process.pid, signal.SIGABRT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # what it left behind
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    if hung:
        pytest.fail(
            f"{list(command[:3])} still ran after {timeout:g} s; its stacks and output:\n"
            f"--- stderr (tail) ---\n{err[-15000:]}\n--- stdout (tail) ---\n{out[-6000:]}"
        )
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


#: Seconds a command whose work is done may take to exit before its process group is killed.
SHUTDOWN_GRACE = 60.0


def _wait(process: subprocess.Popen[str], timeout: float, finished: Callable[[], bool] | None) -> None:
    """Wait for ``process``; stop waiting ``SHUTDOWN_GRACE`` s after ``finished()`` holds."""
    if finished is None:
        process.wait(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(process.args, timeout)
        if finished():
            try:
                process.wait(timeout=SHUTDOWN_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            return
        time.sleep(0.5)  # a state in another process's database: there is no event to await
