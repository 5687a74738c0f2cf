"""A real redis-server (Debian's package) for the tests, on a free port in a temporary directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
FAKETIME = shutil.which("faketime") or "/usr/bin/faketime"


class RedisServer:
    """
    One ``redis-server`` process without persistence (a restart forgets everything, the worst case).

    :param directory: Its working directory (log file).
    :param password: Its ``requirepass``; none by default.
    """

    def __init__(self, directory: Path, password: str | None = None) -> None:
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``: what an Airflow ``redis`` connection URI looks like."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers PING."""
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.directory / "redis.log"),
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)  # polling a port that is about to open: there is no event to await

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
                conn.sendall(auth + b"PING\r\n")
                answer = b""
                while answer.count(b"\r\n") < (2 if auth else 1):
                    chunk = conn.recv(64)
                    if not chunk:
                        break
                    answer += chunk
                return answer.endswith(b"+PONG\r\n")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it (SIGKILL: a crash, nothing saved) and wait until it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.process = None

    def restart(self) -> None:
        """Kill it and start a fresh, empty one on the same port."""
        self.stop()
        self.start()


def running_redis(tmp_path: Path, password: str | None = None) -> Iterator[RedisServer]:
    """
    A fresh redis-server for one test, killed at the end (a test module's ``redis_server`` fixture).

    :param tmp_path: The test's temporary directory.
    :param password: The server's ``requirepass``; none by default.
    """
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def redis_client(server: RedisServer, db: int = 0) -> object:
    """
    A redis-py client of ``server`` with the provider's timeouts (as the hook builds it).

    :param server: The server.
    :param db: The database number.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host="127.0.0.1",
        port=server.port,
        password=server.password,
        db=db,
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 1),
    )
