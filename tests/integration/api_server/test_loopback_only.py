"""
What the project starts for a demo or a test listens on 127.0.0.1 only: the API servers run with
every caller an admin (``SIMPLE_AUTH_MANAGER_ALL_ADMINS``), so on another interface anyone on the
network would get an admin token from ``/auth/token``.

The listening sockets are read from ``/proc/net/tcp`` and ``/proc/net/tcp6`` (this network
namespace's), and a connection is tried on each of this machine's other IPv4 addresses.
"""

from __future__ import annotations

import ast
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[3]
_LISTEN = "0A"


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == _LISTEN and int(hex_port, 16) == port:
                found.add(_address(address))
    return found


def other_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (``ip -4 -o addr``), if ``ip`` is there."""
    ip = shutil.which("ip")
    if ip is None:
        return []
    out = subprocess.run([ip, "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    return [a for a in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out) if not a.startswith("127.")]


def assert_loopback_only(port: int) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read the listening sockets from (not Linux)")
    assert listening_addresses(port) == {"127.0.0.1"}
    for address in other_addresses():
        with socket.socket() as probe, pytest.raises(OSError):  # noqa: PT011 (refused or unreachable)
            probe.settimeout(5)
            probe.connect((address, port))


def test_the_tests_api_server_listens_on_loopback_only(receipts_server):
    assert_loopback_only(int(urlsplit(receipts_server.url).port or 0))


def test_the_sandbox_listens_on_loopback_only_by_default():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_orange_sms.sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60  # a startup limit, not a measured expectation
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/_sandbox/state", timeout=2)
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the sandbox did not start")
                time.sleep(0.2)
        assert_loopback_only(port)
    finally:
        stop_process(process)


#: The commands that start a server, in a shell script (wherever they sit on the line: after
#: ``nice``, ``exec`` or ``"$VENV/bin/…"``).
_SERVER_COMMAND = re.compile(
    r"\bairflow[\"']?\s+(api-server|standalone|webserver)\b"
    r"|\s-m\s+airflow_provider_orange_sms\.sandbox(?![.\w])"
    r"|\b(redis-server|uvicorn|http\.server)\b"
)
#: Airflow commands whose log server binds every interface unless ``--skip-serve-logs``.
_LOG_SERVING_COMMAND = re.compile(r"\bairflow[\"']?\s+(scheduler|triggerer|celery\s+worker)\b")
#: Scripts whose servers run in network namespaces of their own, on the namespaces' addresses.
_NAMESPACED = {"test-deployment.sh"}


def _shell_commands(script: Path) -> list[str]:
    """The script's command lines, continuation lines joined; comments and ``echo`` lines left out."""
    joined = re.sub(r"\\\n\s*", " ", script.read_text())
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.strip().startswith(("#", "echo ", "printf "))
    ]


@pytest.mark.parametrize(
    "script", sorted(p.name for p in (ROOT / "scripts").glob("*.sh") if p.name not in _NAMESPACED)
)
def test_the_scripts_start_their_servers_on_loopback(script):
    """Every script's servers (the demo's API server with every caller an admin, the sandbox…)."""
    for line in _shell_commands(ROOT / "scripts" / script):
        if _SERVER_COMMAND.search(line):
            assert re.search(r"--(host|bind)[ =]127\.0\.0\.1\b", line), line
        if _LOG_SERVING_COMMAND.search(line):
            assert "--skip-serve-logs" in line, line


def test_the_scripts_checked_for_loopback_start_servers():
    """The check above reads the commands it should: the demo's two servers are found."""
    found = [line for line in _shell_commands(ROOT / "scripts" / "demo.sh") if _SERVER_COMMAND.search(line)]
    assert len(found) == 2, found


def test_every_api_server_a_test_or_benchmark_starts_binds_loopback():
    """Each ``"api-server"`` of a command list in tests/ and benchmarks/ comes with ``--host 127.0.0.1``."""
    starts = 0
    for path in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]:
        if path == Path(__file__):
            continue
        text = path.read_text()
        for match in re.finditer(r'"api-server",', text):
            starts += 1
            following = re.sub(r"\s+", " ", text[match.end() : match.end() + 60])
            assert following.startswith(' "--host", "127.0.0.1"'), f"{path.relative_to(ROOT)}: {following}"
    assert starts >= 4


#: Airflow commands that also start a log server on every interface unless told not to.
_LOG_SERVING_COMMANDS = frozenset({"scheduler", "triggerer"})


def _commands(tree: ast.AST) -> list[list[object]]:
    """The argument lists of calls and list/tuple literals: where a command's words are written."""
    found: list[list[object]] = []
    for node in ast.walk(tree):
        items = node.args if isinstance(node, ast.Call) else getattr(node, "elts", None)
        if isinstance(node, (ast.Call, ast.List, ast.Tuple)) and items:
            found.append([item.value if isinstance(item, ast.Constant) else None for item in items])
    return found


def test_every_scheduler_and_triggerer_a_test_or_benchmark_starts_serves_no_logs():
    """
    ``airflow scheduler`` (with LocalExecutor) and ``airflow triggerer`` start Airflow's log server,
    which binds every interface (``host=""``, no setting changes it): each one started by a test or a
    benchmark comes with ``--skip-serve-logs``. A command word is one after the first argument (the
    process's name, or ``airflow``), so a name alone is not taken for a command.
    """
    starts = 0
    for path in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]:
        if path == Path(__file__):
            continue
        for words in _commands(ast.parse(path.read_text())):
            if _LOG_SERVING_COMMANDS.intersection(words[1:]):
                starts += 1
                assert "--skip-serve-logs" in words, f"{path.relative_to(ROOT)}: {words}"
    assert starts >= 3
