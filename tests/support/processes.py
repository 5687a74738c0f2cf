"""Processes and ports in tests: a free port, stopping a server, how long a child may take."""

from __future__ import annotations

import socket
import subprocess
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
