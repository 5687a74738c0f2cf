"""
Where a real send task's time goes, send by send: ``python benchmarks/profile_task.py [count] [limit]``.

Runs one ``SendSMSOperator`` batch through ``airflow dags test`` (``dags_test_send.py``) against
the sandbox at ``limit`` SMS/s (default 200 at 5/s, 20 ms of arrival jitter) and records, in the
task's process, each step of each send: the opt-out read, the booking, the ledger writes, the
limiter's wait and the HTTP request. Prints their durations, how often the ledger write ended after
its slot (then the schedule moves back), the rate the sandbox saw and the machine's load. A higher
limit (20/s) magnifies every per-send cost.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

_EVENTS: list[dict[str, Any]] = []


def _wrap(owner: Any, name: str, label: str, extra: Any = None) -> None:
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.time()
        result = original(*args, **kwargs)
        event = {"step": label, "start": started, "end": time.time()}
        if extra is not None:
            event.update(extra(args, result))
        _EVENTS.append(event)
        return result

    setattr(owner, name, timed)


def record_send_steps(path: str) -> None:
    """In the task's process: time each step of each send; write them to ``path`` at exit."""
    from airflow_provider_orange_sms.ledger.sent_ledger import SentLedger
    from airflow_provider_orange_sms.limit import file_limiter
    from airflow_provider_orange_sms.opt_out.check import OptOutCheck
    from airflow_provider_orange_sms.wire.transport import Transport

    _wrap(file_limiter.FileSendLimiter, "book", "book", lambda args, result: {"slot": result.slot})
    _wrap(file_limiter.FileSendLimiter, "wait", "wait")
    _wrap(file_limiter.FileSendLimiter, "_keep_turn", "keep turn")
    _wrap(Transport, "send_once", "http")
    _wrap(SentLedger, "append", "ledger write")
    _wrap(OptOutCheck, "opted_out", "opt-out read")
    _wrap(file_limiter.EarlyWork, "run", "early work", lambda args, result: {"deadline": args[2]})

    def save() -> None:
        with open(path, "w") as out:
            json.dump(_EVENTS, out)

    atexit.register(save)


def summary(events: list[dict[str, Any]]) -> list[str]:
    """Lines describing the recorded steps."""
    lines = []
    for step in ("opt-out read", "book", "ledger write", "wait", "keep turn", "http"):
        took = sorted(1000 * (e["end"] - e["start"]) for e in events if e["step"] == step)
        if took:
            lines.append(
                f"{step:13} {len(took):5d} x  mean {statistics.mean(took):7.1f} ms  median "
                f"{statistics.median(took):7.1f}  p90 {took[int(0.9 * len(took))]:7.1f}  max {took[-1]:7.1f}"
            )
    late = [1000 * (e["end"] - e["deadline"]) for e in events if e["step"] == "early work"]
    missed = [m for m in late if m > 0]
    lines.append(
        f"ledger write ended after its slot: {len(missed)} of {len(late)} sends"
        + (f", by {statistics.mean(missed):.1f} ms on average" if missed else "")
    )
    slots = [e["slot"] for e in events if e["step"] == "book"]
    gaps = [1000 * (b - a) for a, b in itertools.pairwise(slots)]
    if gaps:
        lines.append(f"booked slots {statistics.mean(gaps):.1f} ms apart on average")
    return lines


def main() -> None:
    from run import sandbox_process, start_dags_test, state, task_result

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with (
        sandbox_process(rate_limit=limit, balance=10 * count + 1000, arrival_jitter_ms=20) as url,
        tempfile.TemporaryDirectory() as home,
    ):
        path = os.path.join(home, "steps.json")
        os.environ["ORANGE_SMS_BENCH_PROFILE"] = path
        load_before = os.getloadavg()[0]
        task_result(start_dags_test(url, home, count, limit=limit))
        load_after = os.getloadavg()[0]
        final = state(url)
        with open(path) as steps:
            events = json.load(steps)
    arrivals = sorted(m["received_at"] for m in final["messages"])
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    print(
        f"{len(arrivals)} SMS at {limit}/s: {rate:.2f}/s = {rate / limit:.3f} x the limit, "
        f"{final['rate_limited']} x 429, sandbox noise <= {final['arrival_noise_max_ms']:.0f} ms, "
        f"load average {load_before:.1f} -> {load_after:.1f} ({os.cpu_count()} CPUs)"
    )
    print("\n".join(summary(events)))


if __name__ == "__main__":
    main()
