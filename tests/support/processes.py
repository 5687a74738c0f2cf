"""Processes and ports in tests: a free port, stopping a server, how long a child may take."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
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
    command: Sequence[str], env: Mapping[str, str], timeout: float = PROCESS_DEADLINE
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` like ``subprocess.run(capture_output=True, text=True)``; if it outlives
    ``timeout``, fail the test with every Python stack of its process group (an executor's workers
    and their task processes included), dumped by :mod:`faulthandler` on ``SIGABRT``, so that a hang
    seen once on a loaded machine says where it waited.
    """
    import pytest

    process = subprocess.Popen(
        command,
        env={**env, "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGABRT)
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # what survived its parent's abort
        pytest.fail(
            f"{command[:3]} still ran after {timeout:g} s; its stacks and output:\n"
            f"--- stderr (tail) ---\n{stderr[-15000:]}\n--- stdout (tail) ---\n{stdout[-6000:]}"
        )
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
