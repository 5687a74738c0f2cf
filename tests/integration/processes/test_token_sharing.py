"""
The token cache and the send limiter shared between processes: spawned clients fetch one token
and together keep Orange's send limit, processes racing for limiter slots get distinct evenly
spaced ones, and a forked child reopens the limiter's state file.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.limit.file_limiter import SAFETY_MARGIN, FileSendLimiter
from tests.support.processes import PROCESS_DEADLINE
from tests.support.rate import assert_windows_spaced, judge_rate_at_release, tag_sends_with_their_slot


@pytest.mark.processes
def test_token_shared_between_processes(sandbox, cache_dir):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    args = (sandbox.url, sandbox.client_id, sandbox.client_secret, str(cache_dir), barrier)
    procs = [ctx.Process(target=_fetch_token_in_process, args=args) for _ in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(PROCESS_DEADLINE)
    assert [p.exitcode for p in procs] == [0] * 6
    assert sandbox.state.token_requests == 1


def _fetch_token_in_process(url, client_id, secret, cache_dir, barrier):
    client = OrangeSMSClient.with_file_cache(
        cache_dir, base_url=url, client_id=client_id, client_secret=secret
    )
    barrier.wait()
    client.get_available_units()


@pytest.mark.processes
def test_two_processes_share_the_limit(sandbox, cache_dir, monkeypatch):
    import multiprocessing

    released = judge_rate_at_release(sandbox, monkeypatch)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    args = (sandbox.url, sandbox.client_id, sandbox.client_secret, str(cache_dir), barrier)
    procs = [ctx.Process(target=_send_in_process, args=(*args, n)) for n in (0, 1)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(PROCESS_DEADLINE)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sandbox.state.rate_limited == 0
    assert Counter(m.address for m in sandbox.state.messages) == Counter(
        f"tel:+2250701{n}000{i:02d}" for n in (0, 1) for i in range(6)
    )
    assert sandbox.state.token_requests == 1
    # Judged as Orange's window is: a late sender may send beside one booked after it (keep_turn).
    assert_windows_spaced(released, 5, SAFETY_MARGIN / 5)


def _send_in_process(url, client_id, secret, cache_dir, barrier, n):
    client = OrangeSMSClient.with_file_cache(
        cache_dir, base_url=url, client_id=client_id, client_secret=secret, sender_address="2250000"
    )
    tag_sends_with_their_slot(client)
    barrier.wait()
    for i in range(6):
        client.send_sms(f"+2250701{n}000{i:02d}", "hi")


def _reserve_slots(state_dir, count, barrier, queue):
    limiter = FileSendLimiter(5, state_dir, "account")
    barrier.wait()
    queue.put([limiter.reserve() for _ in range(count)])


@pytest.mark.processes
def test_processes_reserving_at_once_get_distinct_evenly_spaced_slots(tmp_path):
    """Two processes racing for slots: together their slots never come closer than the interval."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_reserve_slots, args=(str(tmp_path), 20, barrier, queue)) for _ in range(2)]
    for proc in procs:
        proc.start()
    slots = sorted(queue.get(timeout=PROCESS_DEADLINE) + queue.get(timeout=PROCESS_DEADLINE))
    for proc in procs:
        proc.join(PROCESS_DEADLINE)
    assert len(set(slots)) == 40
    interval = SAFETY_MARGIN / 5
    assert all(b - a >= interval - 1e-6 for a, b in itertools.pairwise(slots))


def _reserve_in_child(limiter, queue):
    queue.put((limiter.reserve(), limiter._fd_pid, os.getpid()))


@pytest.mark.processes
def test_forked_child_reopens_the_state_file(tmp_path, frozen_clock):
    """A child must not lock through the parent's open file (flock would not exclude them)."""
    import multiprocessing

    limiter = FileSendLimiter(5, tmp_path, "account")
    # The forked child inherits the frozen clock: its slot follows the parent's however slowly it
    # starts (booking ahead of a real clock held only while the child started within 10 s).
    booked = [limiter.reserve() for _ in range(3)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_reserve_in_child, args=(limiter, queue))
    child.start()
    child_slot, child_fd_pid, child_pid = queue.get(timeout=PROCESS_DEADLINE)
    child.join(timeout=PROCESS_DEADLINE)
    assert child_fd_pid == child_pid != os.getpid()
    interval = SAFETY_MARGIN / 5
    # The child's reservation went into the shared file: it follows the parent's, and the parent's
    # next slot follows the child's.
    assert child_slot - booked[-1] == pytest.approx(interval)
    assert limiter.reserve() - child_slot == pytest.approx(interval)
