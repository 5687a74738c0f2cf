"""Full speed without 429s - the margin against arrival jitter (and the sandbox's model of
that jitter), and the ledger's write timed to end with the limiter's wait instead of costing a slot."""

from __future__ import annotations

import random

import pytest

from airflow_provider_orange_sms.limit import file_limiter
from airflow_provider_orange_sms.limit.file_limiter import (
    LATE_WAKE_UP,
    EarlyWork,
    FileSendLimiter,
    SendRecord,
)
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.sandbox.state import SandboxState
from tests.support.sandbox import send_requests


def test_the_sandbox_arrival_jitter_is_a_random_delay_up_to_the_setting():
    delays = [SandboxState(SandboxConfig(arrival_jitter_ms=20, arrival_jitter_seed=7)).arrival_delay()]
    state = SandboxState(SandboxConfig(arrival_jitter_ms=20, arrival_jitter_seed=7))
    delays += [state.arrival_delay() for _ in range(999)]
    assert all(0 <= d <= 0.020 for d in delays)
    assert max(delays) > 0.019  # the whole range is drawn
    assert delays[0] == delays[1]  # a seed repeats the draw
    assert SandboxState(SandboxConfig()).arrival_delay() == 0.0


def _arrivals_at_orange(margin: float, jitter_ms: float, sends: int, monkeypatch, tmp_path) -> int:
    """Send ``sends`` SMS through the limiter on a simulated clock (each wake-up up to LATE_WAKE_UP
    late), deliver each 0 to ``jitter_ms`` later, and return the 429s Orange's window gives."""
    clock = [1_000_000.0]
    rng = random.Random(14)
    monkeypatch.setattr(file_limiter, "SAFETY_MARGIN", margin)
    monkeypatch.setattr(file_limiter.time, "time", lambda: clock[0])
    monkeypatch.setattr(
        file_limiter.time,
        "sleep",
        lambda s: clock.__setitem__(0, clock[0] + s + rng.uniform(0, LATE_WAKE_UP)),
    )
    limiter = FileSendLimiter(5, tmp_path, "account")
    arrivals = []
    for _ in range(sends):
        limiter.acquire()
        arrivals.append(clock[0] + rng.uniform(0, jitter_ms / 1000))
    orange = SandboxState(SandboxConfig(rate_limit=5))
    now = [0.0]
    orange.clock = lambda: now[0]
    for arrival in sorted(arrivals):
        now[0] = arrival
        orange.over_rate_limit("client")
    return orange.rate_limited


def test_the_margin_covers_20_ms_of_arrival_jitter(monkeypatch, tmp_path):
    assert _arrivals_at_orange(file_limiter.SAFETY_MARGIN, 20, 1000, monkeypatch, tmp_path) == 0


def test_the_old_1_percent_margin_did_not(monkeypatch, tmp_path):
    assert _arrivals_at_orange(1.01, 20, 1000, monkeypatch, tmp_path) > 0


def test_the_ledger_write_runs_after_the_booking_and_before_the_send(client, sandbox, monkeypatch):
    """The ledger's in-flight write runs inside the wait (after the token and the booking), so a
    sender killed while waiting has written nothing, and the send follows the write."""
    assert client.limiter is not None
    events: list[tuple[str, int]] = []
    original_book = client.limiter.book

    def book():
        events.append(("book", len(send_requests(sandbox))))
        return original_book()

    monkeypatch.setattr(client.limiter, "book", book)
    for n in range(3):
        client.send_sms(
            f"+225070000000{n}",
            "hi",
            before_send=lambda: events.append(("ledger", len(send_requests(sandbox)))),
        )
    assert events == [("book", 0), ("ledger", 0), ("book", 1), ("ledger", 1), ("book", 2), ("ledger", 2)]
    assert len(send_requests(sandbox)) == 3


def test_early_work_ends_the_wait_early_by_its_recent_duration(monkeypatch):
    """The write gets a head start equal to its recent duration (capped), so it does not make every
    send late by its own length."""
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 6))
        now[0] += seconds

    monkeypatch.setattr(file_limiter.time, "sleep", sleep)

    def work() -> None:
        now[0] += 0.03

    early = EarlyWork()
    early.run(work, 101.0, lambda: now[0], cap=0.1)  # no estimate yet: sleeps to the slot
    assert sleeps == [1.0]
    assert early.estimate == pytest.approx(0.03)
    now[0] = 200.0
    early.run(work, 201.0, lambda: now[0], cap=0.1)  # 30 ms head start
    assert sleeps[-1] == pytest.approx(0.97)
    now[0] = 300.0
    early.run(work, 301.0, lambda: now[0], cap=0.01)  # never more than the cap
    assert sleeps[-1] == pytest.approx(0.99)


def test_a_failing_before_send_sends_nothing(client, sandbox):
    def ledger_down() -> None:
        raise OSError("ledger unavailable")

    with pytest.raises(OSError, match="ledger unavailable"):
        client.send_sms("+2250700000001", "hi", before_send=ledger_down)
    assert send_requests(sandbox) == []


def test_the_sandbox_reports_its_own_delay_before_the_rate_window(client, sandbox):
    """What the sandbox adds to the arrival jitter on a loaded machine is measured, not hidden."""
    client.send_sms("+2250700000001", "hi")
    assert len(sandbox.state.arrival_noise) == 1
    assert sandbox.state.arrival_noise[0] >= 0
    assert sandbox.state.snapshot()["arrival_noise_max_ms"] == 1000 * sandbox.state.arrival_noise[0]


def test_early_work_starts_by_the_longest_recent_duration_not_the_average(monkeypatch):
    """Execution-API writes vary (50 ms typical, 90 ms one in ten on a loaded machine): a head start
    of their average made half of them late, and each late send pushed the schedule back."""
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 6))
        now[0] += seconds

    monkeypatch.setattr(file_limiter.time, "sleep", sleep)
    early = EarlyWork()
    for took in (0.09, 0.01, 0.01, 0.01):
        now[0] = 10.0
        early.run(lambda took=took: now.__setitem__(0, now[0] + took), 11.0, lambda: now[0], cap=0.2)
    assert sleeps[-1] == pytest.approx(1.0 - 0.09)
    assert now[0] <= 11.0  # the last write ended before its slot
    for _ in range(EarlyWork.HISTORY):  # the slow one has left the recent history
        early.run(lambda: now.__setitem__(0, now[0] + 0.01), now[0] + 1, lambda: now[0], cap=0.2)
    assert early.estimate == pytest.approx(0.01)


def test_a_send_record_writes_the_pending_outcome_at_once_when_the_slot_is_far(monkeypatch):
    """A long wait (a shared limit, a queue): the previous outcome is written at its start, so a
    worker killed while waiting leaves it recorded; a short one: it goes with the due write."""
    now = [0.0]
    monkeypatch.setattr(file_limiter.time, "sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    calls: list[tuple[str, float]] = []

    def write(what: str) -> bool:
        calls.append((what, now[0]))
        now[0] += 0.05
        return True

    record = SendRecord(lambda: write("due"), lambda: write("pending"))
    early = EarlyWork()
    early.run(record, 10.0, lambda: now[0], cap=0.2)
    assert calls == [("pending", 0.0), ("due", pytest.approx(10.0 - 0.05))]
    calls.clear()
    now[0] = 20.0
    early.run(record, 20.08, lambda: now[0], cap=0.2)  # no time for two writes: only the due one
    assert calls == [("due", pytest.approx(20.08 - 0.05))]
