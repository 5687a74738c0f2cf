"""Benchmarks of the Orange SMS client against the local sandbox over HTTP. Prints a table.

Run with ``./scripts/benchmark.sh`` (sets up the environment) or ``python benchmarks/run.py``.
Each sandbox runs in its own process so the server does not share the client's interpreter lock.

Figures:
* throughput at the 5/s limit, one process and two processes at once: wall time against the ideal
  ``(n - 1) / 5`` seconds (target <= 1.03x) and the number of 429 answers (target 0); four sending
  processes at once: combined rate (target >= 0.95 x 5/s) and 429 answers (target 0);
* hook overhead with the limit lifted: mean time per send through ``OrangeSMSClient.send_sms``
  against a bare ``requests.Session`` posting the same requests (target <= 1.1x);
* token requests made by 50 processes asking for a token at the same moment (target 1);
* memory: peak Python allocations while sending a batch;
* a 10,000-recipient ``SendSMSOperator`` batch through ``airflow dags test`` with the limit lifted
  (``dags_test_send.py``), one text for all (``recipients=``) and a different text per recipient
  (``messages=``): peak memory growth of the task (target < 50 MB) and what the operator's retry
  ledger costs per SMS: execution-API requests (Variables…) and the time they take;
* import time of ``OrangeSMSHook`` vs the official HTTP provider's ``HttpHook``, each in fresh
  processes (target <= 1.1x; needs apache-airflow-providers-http, which benchmark.sh installs);
* a flood of delivery receipts (``flood.py``): a send task's pace and an alert's trigger-to-Orange
  time alone and beside 48 receipt connections, on a scheduler-run Airflow with one API server and
  with the receiver on an API server of its own (targets >= 0.8 and <= 1.5), receipts/s, 5xx and
  API-server CPU per receipt during the flood (the same on the deployment topology, as root:
  ``./scripts/benchmark.sh --only flood-deployment``, ``flood_deployment.py``).

Then the several-machine rows (``machines.py``) and the Deadline Alert rows (``deadline.py``: missed
deadline to Orange on a real scheduler and triggerer, and the triggerer loop's longest block while
the notifier sends).

``--json`` prints the figures as JSON instead of the table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.limit.file_limiter import MAX_RATE_PER_SECOND
from airflow_provider_orange_sms.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

SENDER = "2250000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sandbox_process(
    rate_limit: int = 5, balance: int = 1_000_000, arrival_jitter_ms: float = 0
) -> Iterator[str]:
    """Run the sandbox in a child process (sends reaching its window 0..jitter ms late); yield its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_orange_sms.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--rate-limit",
            str(rate_limit),
            "--balances",
            json.dumps({"CIV": balance}),
            "--dr-delay",
            "-1",
            "--arrival-jitter-ms",
            str(arrival_jitter_ms),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                state(url)
                break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_sandbox/state", timeout=5) as response:
        return json.load(response)


def make_client(url: str, cache_dir: str, **kwargs: Any) -> OrangeSMSClient:
    return OrangeSMSClient.with_file_cache(
        cache_dir,
        base_url=url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        sender_address=SENDER,
        **kwargs,
    )


def _send_batch(url: str, cache_dir: str, count: int, offset: int, barrier: Any, out: Any) -> None:
    client = make_client(url, cache_dir)
    client.get_token()
    barrier.wait()
    start = time.perf_counter()
    for i in range(count):
        client.send_sms(f"+22507{offset + i:08d}", "benchmark")
    out.put((start, time.perf_counter()))


def throughput(processes: int, per_process: int) -> dict[str, Any]:
    """Send ``per_process`` SMS from each of ``processes`` processes at once at the 5/s limit."""
    ctx = multiprocessing.get_context("spawn")
    with sandbox_process(rate_limit=5) as url, tempfile.TemporaryDirectory() as cache_dir:
        barrier, out = ctx.Barrier(processes), ctx.Queue()
        procs = [
            ctx.Process(target=_send_batch, args=(url, cache_dir, per_process, n * 10_000, barrier, out))
            for n in range(processes)
        ]
        for proc in procs:
            proc.start()
        spans = [out.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join()
        final = state(url)
    total = processes * per_process
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    ideal = (total - 1) / 5
    return {
        "sent": len(final["messages"]),
        "wall_s": wall,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "rate_limited": final["rate_limited"],
    }


def overhead(count: int, rounds: int) -> dict[str, Any]:
    """Mean seconds per send: client with the limit lifted vs a bare requests.Session."""
    with sandbox_process(rate_limit=10**9) as url, tempfile.TemporaryDirectory() as cache_dir:
        client = make_client(url, cache_dir, rate_limit_per_second=None)
        token = client.get_token()
        session = requests.Session()
        send_url = f"{url}/smsmessaging/v1/outbound/tel%3A%2B{SENDER}/requests"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

        def bare(i: int) -> None:
            body = {
                "outboundSMSMessageRequest": {
                    "address": f"tel:+22507{i:08d}",
                    "senderAddress": f"tel:+{SENDER}",
                    "outboundSMSTextMessage": {"message": "benchmark"},
                }
            }
            response = session.post(send_url, json=body, headers=headers, timeout=(10, 30))
            response.raise_for_status()
            response.json()

        def hook(i: int) -> None:
            client.send_sms(f"+22507{i:08d}", "benchmark")

        # The highest rate the limiter accepts: its cost per send, with (almost) no waiting.
        limited = make_client(url, cache_dir, rate_limit_per_second=MAX_RATE_PER_SECOND)

        def hook_with_limiter(i: int) -> None:
            limited.send_sms(f"+22507{i:08d}", "benchmark")

        timings: dict[str, list[float]] = {"bare": [], "hook": [], "hook_limiter": []}
        for fn in (bare, hook, hook_with_limiter):  # warm-up: connections, token
            fn(0)
        for _ in range(rounds):  # interleave rounds so machine noise hits all three alike
            for name, fn in (("bare", bare), ("hook", hook), ("hook_limiter", hook_with_limiter)):
                start = time.perf_counter()
                for i in range(count):
                    fn(i)
                timings[name].append((time.perf_counter() - start) / count)
    per = {name: statistics.median(values) for name, values in timings.items()}
    return {
        "bare_ms": per["bare"] * 1000,
        "hook_ms": per["hook"] * 1000,
        "hook_limiter_ms": per["hook_limiter"] * 1000,
        "ratio": per["hook"] / per["bare"],
        "ratio_limiter": per["hook_limiter"] / per["bare"],
    }


def _fetch_token(url: str, cache_dir: str, barrier: Any) -> None:
    client = make_client(url, cache_dir)
    barrier.wait()
    client.get_token()


def token_requests(processes: int) -> dict[str, Any]:
    """How many token requests ``processes`` processes make when they all start at once."""
    ctx = multiprocessing.get_context("spawn")
    with sandbox_process() as url, tempfile.TemporaryDirectory() as cache_dir:
        barrier = ctx.Barrier(processes)
        procs = [ctx.Process(target=_fetch_token, args=(url, cache_dir, barrier)) for _ in range(processes)]
        start = time.perf_counter()
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(120)
        elapsed = time.perf_counter() - start
        failed = sum(1 for proc in procs if proc.exitcode != 0)
        return {"token_requests": state(url)["token_requests"], "failed": failed, "seconds": elapsed}


def memory(count: int) -> dict[str, Any]:
    """Peak traced Python memory while sending ``count`` SMS with the limit lifted."""
    with sandbox_process(rate_limit=10**9) as url, tempfile.TemporaryDirectory() as cache_dir:
        client = make_client(url, cache_dir, rate_limit_per_second=None)
        client.send_sms("+2250700000000", "warm-up")
        tracemalloc.start()
        for i in range(count):
            client.send_sms(f"+22507{i:08d}", "benchmark")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"peak_kib": peak / 1024}


def dags_test_batch(
    count: int, dag_id: str = "bench_send_batch", limit: float = 0, arrival_jitter_ms: float = 0
) -> dict[str, Any]:
    """
    Run ``dags_test_send.py`` (``airflow dags test`` of one SendSMSOperator batch) in a fresh home.

    :param count: Recipients of the batch.
    :param dag_id: ``bench_send_batch`` (one text for all) or ``bench_send_personalised`` (a text each).
    :param limit: The rate limit of the sandbox and of the connection; 0: lifted.
    :param arrival_jitter_ms: The sandbox's arrival jitter.
    """
    with (
        sandbox_process(
            rate_limit=int(limit) or 10**9, balance=10 * count + 1000, arrival_jitter_ms=arrival_jitter_ms
        ) as url,
        tempfile.TemporaryDirectory() as home,
    ):
        start = time.perf_counter()
        figures = task_result(start_dags_test(url, home, count, dag_id, limit))
        wall = time.perf_counter() - start
        final = state(url)
    arrivals = sorted(m["received_at"] for m in final["messages"])
    sent = len(arrivals)
    rate = (sent - 1) / (arrivals[-1] - arrivals[0]) if sent > 1 else 0.0
    figures.update(
        count=count,
        sent=sent,
        wall_s=wall,
        rate=rate,
        rate_limited=final["rate_limited"],
        sandbox_noise_ms=final["arrival_noise_max_ms"],
    )
    return figures


def start_dags_test(
    url: str, home: str, count: int, dag_id: str = "bench_send_batch", limit: float = 0, **extra: Any
) -> subprocess.Popen[str]:
    """
    Start ``dags_test_send.py`` (``airflow dags test``) in a fresh Airflow home, its DB migrated.

    :param url: The sandbox.
    :param home: A directory for the Airflow home and the cache.
    :param count: Recipients of the batch.
    :param dag_id: One of the DAGs in ``dags/``.
    :param limit: The connection's rate limit; 0: lifted.
    :param extra: More connection extras; ``redis_url`` becomes the ``redis_default`` connection,
        ``fernet_key`` the deployment's Fernet key (the Redis token cache encrypts with it).
    """
    root = os.path.dirname(os.path.abspath(__file__))
    redis_url = extra.pop("redis_url", None)
    fernet_key = extra.pop("fernet_key", None)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update(
        AIRFLOW_HOME=os.path.join(home, "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=os.path.join(root, "dags"),
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        ORANGE_SMS_CACHE_DIR=os.path.join(home, "cache"),
        ORANGE_SMS_BENCH_RECIPIENTS=str(count),
        AIRFLOW_CONN_ORANGE_SMS_DEFAULT=json.dumps(
            {
                "conn_type": "orange_sms",
                "host": url,
                "login": DEFAULT_CLIENT_ID,
                "password": DEFAULT_CLIENT_SECRET,
                # rate limit 0: no limiter (the limit lifted)
                "extra": {"sender_address": SENDER, "rate_limit_per_second": limit, **extra},
            }
        ),
    )
    if redis_url:
        env["AIRFLOW_CONN_REDIS_DEFAULT"] = redis_url
    if fernet_key:
        env["AIRFLOW__CORE__FERNET_KEY"] = fernet_key
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
    )
    return subprocess.Popen(
        [sys.executable, os.path.join(root, "dags_test_send.py"), dag_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def task_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a :func:`start_dags_test` process; return what it reported."""
    stdout, stderr = proc.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("BENCH-RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"dags test failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return dict(json.loads(lines[-1].split(" ", 1)[1]))


def batch_rows(label: str, batch: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table rows of one :func:`dags_test_batch` run: the task's memory, then its ledger's cost."""
    sent = max(batch["sent"], 1)
    api_requests = sum(batch["requests"].values())
    api_seconds = sum(batch["seconds"].values())
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(batch["requests"].items(), key=lambda kv: -kv[1]))
    return [
        (
            f"SendSMSOperator, {batch['count']} {label}, dags test, limit lifted",
            f"{batch['sent']} sent, task {batch['task_seconds']:.1f}s",
            f"+{batch['memory_growth_kib'] / 1024:.1f} MB peak",
            "< 50 MB",
        ),
        (
            "  ledger: execution-API requests per SMS",
            kinds,
            f"{api_requests / sent:.3f} req, {1000 * api_seconds / sent:.2f} ms",
            "(informative)",
        ),
    ]


_IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_time(rounds: int) -> dict[str, Any]:
    """Median seconds to import each hook module in a fresh interpreter, measured alternately."""
    modules = {
        "orange": "airflow_provider_orange_sms.hooks.orange_sms",
        "http": "airflow.providers.http.hooks.http",
    }
    try:
        subprocess.run([sys.executable, "-c", f"import {modules['http']}"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        return {"error": "apache-airflow-providers-http is not installed (scripts/benchmark.sh installs it)"}
    env = {**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "True"}
    times: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(rounds):
        for name, module in modules.items():
            out = subprocess.run(
                [sys.executable, "-c", _IMPORT.format(module=module)],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            times[name].append(float(out.split()[-1]))
    orange, http = (statistics.median(times[name]) for name in modules)
    return {"orange_s": orange, "http_s": http, "ratio": orange / http}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=26, help="SMS per throughput run (default 26)")
    parser.add_argument("--overhead-sends", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--token-processes", type=int, default=50)
    parser.add_argument("--batch", type=int, default=10_000, help="recipients of the dags-test batch")
    parser.add_argument("--import-rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--only",
        choices=("machine", "machines", "deadline", "flood"),
        help="only the one-machine rows, the several-machine rows (machines.py), the Deadline Alert "
        "rows (deadline.py) or the receipt flood's (flood.py)",
    )
    parser.add_argument("--deadline-runs", type=int, default=10, help="missed deadlines to time")
    parser.add_argument("--task-sends", type=int, default=200, help="recipients of the real task at 5/s")
    parser.add_argument("--alert-batch", type=int, default=1000, help="the batch an alert runs beside")
    from flood import add_arguments, flood_rows

    add_arguments(parser)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    rows: list[tuple[str, str, str, str]] = []
    if args.only in (None, "machine"):
        rows += one_machine_rows(args, figures)
    if args.only in (None, "machines"):
        from machines import several_machines_rows

        rows += several_machines_rows(args, figures)
    if args.only in (None, "deadline"):
        from deadline import deadline_rows

        rows += deadline_rows(args, figures)
    if args.only in (None, "flood"):
        rows += flood_rows(args, figures)

    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), **figures}, indent=2))
        return

    widths = [
        max(len(row[i]) for row in [("benchmark", "measured", "result", "target"), *rows]) for i in range(4)
    ]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for row in [("benchmark", "measured", "result", "target"), tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def one_machine_rows(args: argparse.Namespace, figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Throughput, overhead, tokens, memory, the 10,000-SMS batches and import time (one machine)."""
    rows: list[tuple[str, str, str, str]] = []
    one = figures["throughput_1"] = throughput(1, args.sends)
    rows.append(
        (
            "throughput, 1 process",
            f"{one['sent']} SMS in {one['wall_s']:.2f}s "
            f"(ideal {one['ideal_s']:.2f}s), {one['rate_limited']} x 429",
            f"{one['ratio']:.3f}x",
            "<= 1.03x, 0 x 429",
        )
    )
    two = figures["throughput_2"] = throughput(2, args.sends // 2)
    rows.append(
        (
            "throughput, 2 processes at once",
            f"{two['sent']} SMS in {two['wall_s']:.2f}s "
            f"(ideal {two['ideal_s']:.2f}s), {two['rate_limited']} x 429",
            f"{two['ratio']:.3f}x",
            "<= 1.03x, 0 x 429",
        )
    )
    four = figures["throughput_4"] = throughput(4, max(1, round(args.sends / 4)))
    rate4 = (four["sent"] - 1) / four["wall_s"]
    rows.append(
        (
            "throughput, 4 processes at once",
            f"{four['sent']} SMS in {four['wall_s']:.2f}s, {four['rate_limited']} x 429",
            f"{rate4:.2f}/s = {rate4 / 5:.3f} x 5/s",
            ">= 0.95 x 5/s, 0 x 429",
        )
    )
    over = figures["overhead"] = overhead(args.overhead_sends, args.rounds)
    rows.append(
        (
            "overhead per send, limit lifted",
            f"hook {over['hook_ms']:.3f} ms vs bare requests {over['bare_ms']:.3f} ms",
            f"{over['ratio']:.3f}x",
            "<= 1.1x",
        )
    )
    rows.append(
        (
            f"  same, limiter on at {MAX_RATE_PER_SECOND:g}/s",
            f"hook {over['hook_limiter_ms']:.3f} ms vs bare {over['bare_ms']:.3f} ms",
            f"{over['ratio_limiter']:.3f}x",
            "(informative)",
        )
    )
    tokens = figures["token_requests"] = token_requests(args.token_processes)
    rows.append(
        (
            f"token requests, {args.token_processes} processes",
            f"{tokens['token_requests']} request(s), {tokens['failed']} failed, {tokens['seconds']:.2f}s",
            str(tokens["token_requests"]),
            "1",
        )
    )
    mem = figures["memory"] = memory(args.overhead_sends)
    rows.append((f"peak Python memory, {args.overhead_sends} sends", f"{mem['peak_kib']:.0f} KiB", "", ""))
    batch = figures["dags_test_batch"] = dags_test_batch(args.batch)
    rows.extend(batch_rows("recipients", batch))
    personalised = figures["dags_test_personalised"] = dags_test_batch(args.batch, "bench_send_personalised")
    rows.extend(batch_rows("personalised messages", personalised))
    imports = figures["import_time"] = import_time(args.import_rounds)
    if "error" in imports:
        rows.append(("import time, OrangeSMSHook vs HttpHook", imports["error"], "", "<= 1.1x"))
    else:
        rows.append(
            (
                "import time, OrangeSMSHook vs HttpHook",
                f"{imports['orange_s'] * 1000:.0f} ms vs {imports['http_s'] * 1000:.0f} ms (fresh processes)",
                f"{imports['ratio']:.3f}x",
                "<= 1.1x",
            )
        )
    return rows


if __name__ == "__main__":
    main()
