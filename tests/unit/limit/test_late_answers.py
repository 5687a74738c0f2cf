"""A loaded machine delays requests after the limiter let them go: a late answer holds the next sends
back, so Orange's 1.0 s window never counts more than its limit. Simulated on a virtual clock with
four senders sharing one limiter, the delays drawn from a seeded generator."""

from __future__ import annotations

import heapq
import random

import pytest

from airflow_provider_orange_sms.limit import file_limiter
from airflow_provider_orange_sms.limit.file_limiter import (
    LATE_WAKE_UP,
    FileSendLimiter,
    answer_push,
    interval_for,
)
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.sandbox.state import SandboxState

SENDERS = 4
SENDS = 2000


def simulate(tmp_path, monkeypatch, *, honour_answers: bool) -> tuple[int, float]:
    """
    Four senders book, wait for their slot, send and wait for the answer, then book again. One
    request in ten leaves up to 80 ms after its release (a descheduled process), the rest up to 3 ms;
    the answer comes 2 ms after the arrival. Returns the 429s Orange's window gives and the pace.
    """
    clock = [1_000_000.0]
    monkeypatch.setattr(file_limiter.time, "time", lambda: clock[0])
    rng = random.Random(26)
    limiter = FileSendLimiter(5, tmp_path, "account")
    events: list[tuple[float, int, str, float]] = [(clock[0], n, "book", 0.0) for n in range(SENDERS)]
    arrivals: list[float] = []
    while len(arrivals) < SENDS:
        at, sender, kind, released = heapq.heappop(events)
        clock[0] = at
        if kind == "book":
            heapq.heappush(events, (limiter.book().slot, sender, "release", 0.0))
        elif kind == "release":
            delay = rng.uniform(0, 0.080) if rng.random() < 0.1 else rng.uniform(0, 0.003)
            arrivals.append(at + delay)
            heapq.heappush(events, (at + delay + 0.002, sender, "answer", at))
        else:
            if honour_answers:
                limiter.answered(at - released)
            heapq.heappush(events, (at, sender, "book", 0.0))
    orange = SandboxState(SandboxConfig(rate_limit=5))
    now = [0.0]
    orange.clock = lambda: now[0]
    for arrival in sorted(arrivals):
        now[0] = arrival
        orange.over_rate_limit("client")
    ordered = sorted(arrivals)
    return orange.rate_limited, (len(ordered) - 1) / (ordered[-1] - ordered[0])


def test_requests_delayed_after_their_release_got_429s_before(tmp_path, monkeypatch):
    rate_limited, _ = simulate(tmp_path, monkeypatch, honour_answers=False)
    assert rate_limited > 0


def test_late_answers_hold_the_next_sends_back_so_orange_counts_none_over(tmp_path, monkeypatch):
    rate_limited, pace = simulate(tmp_path, monkeypatch, honour_answers=True)
    assert rate_limited == 0
    assert pace > 0.95 * 5  # on the virtual clock: held back only by the late answers' excess


def test_an_answer_within_the_slack_pushes_nothing():
    interval = interval_for(5)
    slack = 5 * interval - 1.0 - LATE_WAKE_UP
    assert slack == pytest.approx(0.023)
    assert answer_push(slack, 5, interval) == 0.0
    assert answer_push(slack + 0.040, 5, interval) == pytest.approx(0.040)
    # Below one send per window the next send is the one a window later.
    assert answer_push(0.5, 0.5, interval_for(0.5)) == 0.0


def test_a_late_answer_pushes_the_unbooked_slots_back(tmp_path, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(file_limiter.time, "time", lambda: clock[0])
    limiter = FileSendLimiter(5, tmp_path, "account")
    interval = interval_for(5)
    limiter.answered(0.004)  # the usual round trip
    first = limiter.book().slot
    limiter.answered(0.004 + 0.023 + 0.050)
    assert limiter.book().slot == pytest.approx(first + interval + 0.050)
    assert (limiter.late_answers.count, limiter.late_answers.pushed) == (1, pytest.approx(0.050))


def test_a_long_round_trip_alone_pushes_nothing(tmp_path, monkeypatch):
    """A distant Orange answers every send 120 ms after it left: no arrival comes closer to another."""
    clock = [1_000_000.0]
    monkeypatch.setattr(file_limiter.time, "time", lambda: clock[0])
    limiter = FileSendLimiter(5, tmp_path, "account")
    slots = []
    for jitter in (0.0, 0.010, 0.004, 0.020, 0.001):
        slots.append(limiter.book().slot)
        limiter.answered(0.120 + jitter)
    assert limiter.late_answers.count == 0
    assert slots == pytest.approx([slots[0] + n * interval_for(5) for n in range(5)])
