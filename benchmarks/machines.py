"""
Benchmarks of one account shared by several machines, run by ``run.py``.

A "machine" is a process with its own cache directory (``machine.py``), so it shares nothing with
the others but what its settings say; two of them can run under ``faketime`` with skewed clocks.
The sandbox runs at Orange's 5/s with arrival jitter (each send reaches its rate window 0 to 20 ms
late); Redis is Debian's ``redis-server`` on a free port. Rates are measured on the sandbox's
arrival times (one clock for all machines).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.fernet import Fernet
from run import free_port, sandbox_process, start_dags_test, state, task_result

HERE = os.path.dirname(os.path.abspath(__file__))
MACHINE = os.path.join(HERE, "machine.py")
JITTER_MS = 20
LIMIT = 5


@contextmanager
def redis_server() -> Iterator[str]:
    """Debian's redis-server on a free port, without persistence; yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(500):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.kill()
            proc.wait(30)


def _read(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("MACHINE "):
            return dict(json.loads(line.split(" ", 1)[1]))
    raise RuntimeError(f"a machine ended without a report (exit {proc.wait()})")


def start_machine(settings: dict[str, Any], skew: float = 0.0) -> subprocess.Popen[str]:
    command = [sys.executable, MACHINE, json.dumps(settings)]
    if skew:
        command = [shutil.which("faketime") or "faketime", "-f", f"{skew:+}s", *command]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if "ready" not in _read(proc):
        raise RuntimeError("a machine did not start")
    return proc


def run_all(procs: list[subprocess.Popen[str]]) -> tuple[float, list[dict[str, Any]]]:
    """Tell every machine to go at once; return when (Unix time) and their final reports."""
    told = time.time()
    for proc in procs:
        go(proc)
    reports = [_read(proc) for proc in procs]
    for proc in procs:
        proc.wait(60)
    return told, reports


def machine_settings(
    url: str,
    redis_url: str,
    fernet_key: str,
    home: str,
    n: int,
    count: int,
    first: int,
    backend: str = "redis",
) -> dict[str, Any]:
    """The settings of machine ``n`` (``machine.py``): ``count`` SMS from number ``first``."""
    return {
        "url": url,
        "cache_dir": os.path.join(home, f"machine{n}"),
        "count": count,
        "first": first,
        "rate_limit_backend": backend,
        "token_cache": backend,
        "redis_url": redis_url,
        "fernet_key": fernet_key,
    }


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def machines_at_once(
    count: int,
    per_machine: int,
    *,
    backend: str,
    skews: tuple[float, ...] = (),
) -> dict[str, Any]:
    """``count`` machines sending ``per_machine`` SMS each at once; ``backend`` for limit and token."""
    with (
        sandbox_process(rate_limit=LIMIT, arrival_jitter_ms=JITTER_MS) as url,
        redis_server() as redis_url,
        tempfile.TemporaryDirectory() as home,
    ):
        fernet_key = Fernet.generate_key().decode()
        procs = [
            start_machine(
                machine_settings(url, redis_url, fernet_key, home, n, per_machine, n * 100_000, backend),
                skews[n] if n < len(skews) else 0.0,
            )
            for n in range(count)
        ]
        told, reports = run_all(procs)
        final = state(url)
    arrivals = sorted(m["received_at"] for m in final["messages"])
    sent = len(arrivals)
    span = arrivals[-1] - arrivals[0] if sent > 1 else 0.0
    ideal = (count * per_machine - 1) / LIMIT
    return {
        "machines": count,
        "sent": sent,
        "failed": sum(r["failed"] for r in reports),
        "rate": (sent - 1) / span if span else 0.0,
        "span_s": span,
        "from_go_s": arrivals[-1] - told if arrivals else 0.0,
        "ideal_s": ideal,
        "rate_limited": final["rate_limited"],
        "token_requests": final["token_requests"],
        "sandbox_noise_ms": final["arrival_noise_max_ms"],
        "modes": [r["modes"] for r in reports],
    }


def real_task_beside_machines(task_sends: int, machines: int, per_machine: int) -> dict[str, Any]:
    """
    A real ``SendSMSOperator`` task (``airflow dags test``) sending ``task_sends`` SMS while
    ``machines`` other machines send ``per_machine`` each, all through Redis (limit and token).

    The machines are told to go when the task's first SMS reaches the sandbox; the combined rate is
    measured on the sandbox's arrivals from then until the machines' last SMS (all senders busy).
    """
    with (
        sandbox_process(rate_limit=LIMIT, arrival_jitter_ms=JITTER_MS, balance=100_000) as url,
        redis_server() as redis_url,
        tempfile.TemporaryDirectory() as home,
    ):
        fernet_key = Fernet.generate_key().decode()
        procs = [  # numbers tel:+22507[1-9]…; the task's: tel:+2250700…
            start_machine(
                machine_settings(url, redis_url, fernet_key, home, n, per_machine, (n + 1) * 10_000_000)
            )
            for n in range(machines)
        ]
        task = start_dags_test(
            url,
            os.path.join(home, "task"),
            task_sends,
            limit=LIMIT,
            rate_limit_backend="redis",
            token_cache="redis",
            redis_url=redis_url,
            fernet_key=fernet_key,
        )
        while not state(url)["messages"] and task.poll() is None:
            time.sleep(0.05)
        told, reports = run_all(procs)
        task_result(task)
        final = state(url)
    busy = sorted(m["received_at"] for m in final["messages"] if m["received_at"] >= told)
    last_machine = max(
        m["received_at"] for m in final["messages"] if not m["address"].startswith("tel:+2250700")
    )
    window = [t for t in busy if t <= last_machine]
    task_all = sorted(m["received_at"] for m in final["messages"] if m["address"].startswith("tel:+2250700"))
    return {
        "sent": len(final["messages"]),
        "failed": sum(r["failed"] for r in reports),
        "rate": (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else 0.0,
        "in_window": len(window),
        "task_sent": len(task_all),
        "rate_limited": final["rate_limited"],
        "token_requests": final["token_requests"],
        "sandbox_noise_ms": final["arrival_noise_max_ms"],
    }


def alert_delay(batch: int, *, shared: bool, alert_after: float = 5.0) -> dict[str, Any]:
    """
    Seconds one alert takes while a ``batch``-SMS batch runs on another machine.

    ``shared``: both space their sends through Redis. Otherwise both run in a one-slot pool (a
    lock held by a send task for its whole run), each spaced by its own machine's limiter.
    """
    with (
        sandbox_process(rate_limit=LIMIT, arrival_jitter_ms=JITTER_MS) as url,
        redis_server() as redis_url,
        tempfile.TemporaryDirectory() as home,
    ):
        common = {
            "url": url,
            "rate_limit_backend": "redis" if shared else "file",
            "token_cache": "redis" if shared else "file",
            "redis_url": redis_url,
            "fernet_key": Fernet.generate_key().decode(),
            "pool_lock": None if shared else os.path.join(home, "pool.lock"),
        }
        batch_proc = start_machine(
            {**common, "cache_dir": os.path.join(home, "a"), "count": batch, "first": 0}
        )
        alert_proc = start_machine(
            {**common, "cache_dir": os.path.join(home, "b"), "count": 1, "first": 9_000_000}
        )
        go(batch_proc)
        time.sleep(alert_after)  # the batch is well under way when the alert comes
        go(alert_proc)
        alert = _read(alert_proc)
        alert_proc.wait(60)
        if shared:
            batch_proc.kill()  # the alert is measured; the rest of the batch would change nothing
        else:
            _read(batch_proc)
        batch_proc.wait(600)
        final = state(url)
    return {
        "alert_s": alert["seconds"],
        "rate_limited": final["rate_limited"],
        "sandbox_noise_ms": final["arrival_noise_max_ms"],
    }


def _append(rows: list[tuple[str, str, str, str]], row: tuple[str, str, str, str]) -> None:
    """Add a row to the table, and show it at once on stderr (a later failure keeps it)."""
    rows.append(row)
    print(" | ".join(row), file=sys.stderr, flush=True)


def several_machines_rows(args: Any, figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table rows of machines sharing one account, a real task at the limit, an alert."""
    from run import dags_test_batch

    rows: list[tuple[str, str, str, str]] = []
    for backend in ("file", "redis"):
        for count in (1, 2, 4):
            if backend == "file" and count == 1:
                continue  # the same as redis with one machine, but for the token cache
            run = figures[f"machines_{backend}_{count}"] = machines_at_once(
                count, 40 // count, backend=backend
            )
            target = ">= 0.95 x 5/s, 0 x 429, 1 token" if backend == "redis" else "(the per-machine limit)"
            _append(
                rows,
                (
                    f"{count} machine(s), 40 SMS at once, limit + token: {backend}, {JITTER_MS} ms jitter",
                    f"{run['sent']} sent, {run['failed']} failed, {run['rate_limited']} x 429, "
                    f"{run['token_requests']} token request(s); "
                    f"sandbox noise <= {run['sandbox_noise_ms']:.0f} ms",
                    f"{run['rate']:.2f}/s = {run['rate'] / LIMIT:.3f} x 5/s",
                    target,
                ),
            )
    done = figures["done_when"] = machines_at_once(4, 10, backend="redis", skews=(0.0, 0.0, 1.5, -1.5))
    _append(
        rows,
        (
            "4 machines x 10 SMS, 2 clocks at +-1.5 s, redis",
            f"{done['rate_limited']} x 429, {done['token_requests']} token request(s); last SMS "
            f"{done['from_go_s']:.2f}s after 'go', first to last {done['span_s']:.2f}s "
            f"(ideal {done['ideal_s']:.2f}s)",
            f"{done['span_s'] / done['ideal_s']:.3f}x first to last, "
            f"{done['from_go_s'] / done['ideal_s']:.3f}x from 'go'",
            "<= 1.05x, 0 x 429, 1 token",
        ),
    )
    task = figures["real_task"] = dags_test_batch(args.task_sends, limit=LIMIT, arrival_jitter_ms=JITTER_MS)
    _append(
        rows,
        (
            f"SendSMSOperator, {args.task_sends} recipients at 5/s, dags test, {JITTER_MS} ms jitter",
            f"{task['sent']} sent, {task['rate_limited']} x 429; "
            f"sandbox noise <= {task['sandbox_noise_ms']:.0f} ms",
            f"{task['rate']:.2f}/s = {task['rate'] / LIMIT:.3f} x 5/s",
            ">= 0.97 x 5/s, 0 x 429",
        ),
    )
    beside = figures["real_task_beside_machines"] = real_task_beside_machines(args.task_sends, 2, 40)
    _append(
        rows,
        (
            f"SendSMSOperator ({args.task_sends} recipients) + 2 machines x 40 SMS, limit + token: redis, "
            f"{JITTER_MS} ms jitter",
            f"{beside['in_window']} SMS while all sent, {beside['failed']} failed, "
            f"{beside['rate_limited']} x 429, {beside['token_requests']} token request(s); "
            f"sandbox noise <= {beside['sandbox_noise_ms']:.0f} ms",
            f"{beside['rate']:.2f}/s = {beside['rate'] / LIMIT:.3f} x 5/s",
            ">= 0.95 x 5/s, 0 x 429, 1 token",
        ),
    )
    for shared in (True, False):
        alert = figures[f"alert_{'shared' if shared else 'pool'}"] = alert_delay(
            args.alert_batch, shared=shared
        )
        _append(
            rows,
            (
                f"one alert while {args.alert_batch} SMS go out on another machine: "
                + ("shared limiter (redis)" if shared else "1-slot pool"),
                f"sent {alert['alert_s']:.2f}s after it was due, {alert['rate_limited']} x 429; "
                f"sandbox noise <= {alert['sandbox_noise_ms']:.0f} ms",
                f"{alert['alert_s']:.2f}s",
                "<= 2 slots" if shared else "(behind the whole batch)",
            ),
        )
    return rows
