"""Four machines (own cache directories, two with clocks skewed by +-1.5 s)
sending 10 SMS each at once through one account, with rate_limit_backend and auth_cache "redis",
make one token request and get no 429. The time they take against the ideal is measured by
``scripts/benchmark.sh``, not asserted here.

The sandbox judges each send at the instant the shared limiter let it go, on Redis's clock (each
machine tags its requests with it), in Orange's exact one-second window: arrival times would mix
four processes' scheduling delays, which is the jitter the safety margin is for, not what this
test is about (``scripts/benchmark.sh`` measures the real arrivals, with 20 ms of jitter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_orange_sms.sandbox import SandboxConfig
from tests.support.rate import judge_rate_at_release
from tests.support.redis_server import FAKETIME, RedisServer, running_redis
from tests.support.sandbox import connection_json

MACHINE = Path(__file__).with_name("redis_machine.py")
ROOT = Path(__file__).resolve().parents[3]
#: Clock offset of each machine, seconds.
SKEWS = (0.0, 0.0, 1.5, -1.5)
PER_MACHINE = 10


def read_report(machine: subprocess.Popen[str]) -> dict[str, Any]:
    """The next ``MACHINE {json}`` line of a machine (``{}`` if it ended without one)."""
    assert machine.stdout is not None
    for line in machine.stdout:
        if line.startswith("MACHINE "):
            return dict(json.loads(line.split(" ", 1)[1]))
    return {}


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(dr_delay=None)  # Orange's one-second window


def test_four_machines_with_skewed_clocks_share_one_limit_and_one_token(
    sandbox, redis_server, tmp_path, monkeypatch
):
    if not Path(FAKETIME).exists():
        pytest.skip("faketime is not installed (Debian: apt-get install faketime; .ci/run does)")
    released = judge_rate_at_release(sandbox, monkeypatch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        AIRFLOW_CONN_ORANGE_SMS_DEFAULT=connection_json(
            sandbox, rate_limit_backend="redis", auth_cache="redis"
        ),
        AIRFLOW_CONN_REDIS_DEFAULT=redis_server.url,
        PYTHONPATH=str(ROOT),
    )
    machines = []
    for n, skew in enumerate(SKEWS):
        command = [sys.executable, str(MACHINE), str(PER_MACHINE), str(n * 100)]
        if skew:
            command = [FAKETIME, "-f", f"{skew:+}s", *command]
        machines.append(
            subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=(tmp_path / f"machine{n}.log").open("w"),
                text=True,
                env={**env, "ORANGE_SMS_CACHE_DIR": str(tmp_path / f"machine{n}")},
                cwd=ROOT,
            )
        )
    try:
        for machine in machines:
            assert "ready" in read_report(machine), "a machine did not start"
        for machine in machines:
            machine.stdin.write("go\n")
            machine.stdin.flush()
        told = time.time()
        started = [read_report(machine)["go"] for machine in machines]
        reports = [read_report(machine) for machine in machines]
        for machine in machines:
            machine.wait(60)
    finally:
        for machine in machines:
            if machine.poll() is None:
                machine.kill()
    logs = {n: (tmp_path / f"machine{n}.log").read_text()[-3000:] for n in range(len(SKEWS))}
    assert [m.returncode for m in machines] == [0] * len(SKEWS), logs
    # The clocks really differed (read within a second of "go").
    for skew, clock in zip(SKEWS, started, strict=True):
        assert abs(clock - told - skew) < 0.75
    assert sandbox.state.token_requests == 1
    assert sandbox.state.rate_limited == 0
    # Judged on one clock, Redis's: the 40 release instants, never 6 in one second.
    assert len(released) == len(SKEWS) * PER_MACHINE
    ordered = sorted(released)
    assert all(ordered[i + 5] - ordered[i] >= 1.0 for i in range(len(ordered) - 5))
    accepted = Counter(m.address for m in sandbox.state.messages)
    expected = {f"tel:+22507{n * 100 + i:08d}" for n in range(len(SKEWS)) for i in range(PER_MACHINE)}
    assert accepted == Counter(dict.fromkeys(expected, 1))
    assert [r["modes"] for r in reports] == [{"redis": PER_MACHINE}] * len(SKEWS)
