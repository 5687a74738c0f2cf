"""
Run ``airflow dags test <dag_id>`` in this process and report what the send task cost.

``<dag_id>``, the first argument, is one of the DAGs in ``dags/`` (default ``bench_send_batch``).

Counts every request the task makes to Airflow's execution API (Variables, XCom…: whatever the
operator's ledger uses) by wrapping the in-process supervisor's message handler, with the time spent
in them, and the peak memory growth of the process from the start of ``SendSMSOperator.execute``.
Prints one JSON object. Called by run.py, which sets up AIRFLOW_HOME, the sandbox and the connection.
With ``ORANGE_SMS_BENCH_PROFILE=<file>`` it also records the steps of each send (``profile_task.py``).
"""

from __future__ import annotations

import collections
import json
import os
import resource
import sys
import time
from typing import Any

from airflow.sdk.execution_time import supervisor

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

requests: collections.Counter[str] = collections.Counter()
seconds: collections.Counter[str] = collections.Counter()
memory: dict[str, float] = {}
span: dict[str, float] = {}

original_send = supervisor.InProcessSupervisorComms.send


def counted_send(self: Any, msg: Any) -> Any:
    name = type(msg).__name__
    start = time.perf_counter()
    try:
        return original_send(self, msg)
    finally:
        requests[name] += 1
        seconds[name] += time.perf_counter() - start


original_execute = SendSMSOperator.execute


def measured_execute(self: Any, context: Any) -> Any:
    with open("/proc/self/statm") as statm:
        memory["rss_start_kib"] = int(statm.read().split()[1]) * resource.getpagesize() / 1024
    span["start"] = time.perf_counter()
    try:
        return original_execute(self, context)
    finally:
        span["end"] = time.perf_counter()
        memory["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


supervisor.InProcessSupervisorComms.send = counted_send  # type: ignore[method-assign]
SendSMSOperator.execute = measured_execute  # type: ignore[method-assign]
if os.environ.get("ORANGE_SMS_BENCH_PROFILE"):
    from profile_task import record_send_steps

    record_send_steps(os.environ["ORANGE_SMS_BENCH_PROFILE"])


def main() -> None:
    from airflow.__main__ import main as airflow_main

    dag_id = sys.argv[1] if len(sys.argv) > 1 else "bench_send_batch"
    sys.argv = ["airflow", "dags", "test", dag_id]
    try:
        airflow_main()
    except SystemExit as exc:
        if exc.code:
            raise
    print(
        "BENCH-RESULT "
        + json.dumps(
            {
                "requests": dict(requests),
                "seconds": dict(seconds),
                "task_seconds": span.get("end", 0) - span.get("start", 0),
                "memory_growth_kib": memory.get("peak_kib", 0) - memory.get("rss_start_kib", 0),
                **memory,
            }
        )
    )


if __name__ == "__main__":
    main()
