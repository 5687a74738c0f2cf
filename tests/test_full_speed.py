"""Issue 14: full speed without 429s - the margin against arrival jitter (and the sandbox's model of
that jitter), and the ledger's write overlapping the throttle's wait instead of costing a slot."""

from __future__ import annotations

import random

import pytest

from airflow_provider_orange_sms import throttle as throttle_module
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.sandbox.state import SandboxState
from airflow_provider_orange_sms.throttle import LATE_WAKE_UP, SendThrottle
from tests.conftest import send_requests


def test_the_sandbox_arrival_jitter_is_a_random_delay_up_to_the_setting():
    delays = [SandboxState(SandboxConfig(arrival_jitter_ms=20, arrival_jitter_seed=7)).arrival_delay()]
    state = SandboxState(SandboxConfig(arrival_jitter_ms=20, arrival_jitter_seed=7))
    delays += [state.arrival_delay() for _ in range(999)]
    assert all(0 <= d <= 0.020 for d in delays)
    assert max(delays) > 0.019  # the whole range is drawn
    assert delays[0] == delays[1]  # a seed repeats the draw
    assert SandboxState(SandboxConfig()).arrival_delay() == 0.0


def _arrivals_at_orange(margin: float, jitter_ms: float, sends: int, monkeypatch, tmp_path) -> int:
    """Send ``sends`` SMS through the throttle on a simulated clock (each wake-up up to LATE_WAKE_UP
    late), deliver each 0 to ``jitter_ms`` later, and return the 429s Orange's window gives."""
    clock = [1_000_000.0]
    rng = random.Random(14)
    monkeypatch.setattr(throttle_module, "SAFETY_MARGIN", margin)
    monkeypatch.setattr(throttle_module.time, "time", lambda: clock[0])
    monkeypatch.setattr(
        throttle_module.time,
        "sleep",
        lambda s: clock.__setitem__(0, clock[0] + s + rng.uniform(0, LATE_WAKE_UP)),
    )
    throttle = SendThrottle(5, tmp_path, "account")
    arrivals = []
    for _ in range(sends):
        throttle.acquire()
        arrivals.append(clock[0] + rng.uniform(0, jitter_ms / 1000))
    orange = SandboxState(SandboxConfig(rate_limit=5))
    now = [0.0]
    orange.clock = lambda: now[0]
    for arrival in sorted(arrivals):
        now[0] = arrival
        orange.over_rate_limit("client")
    return orange.rate_limited


def test_the_margin_covers_20_ms_of_arrival_jitter(monkeypatch, tmp_path):
    assert _arrivals_at_orange(throttle_module.SAFETY_MARGIN, 20, 1000, monkeypatch, tmp_path) == 0


def test_the_old_1_percent_margin_did_not(monkeypatch, tmp_path):
    assert _arrivals_at_orange(1.01, 20, 1000, monkeypatch, tmp_path) > 0


def test_work_before_the_request_overlaps_the_throttle_wait(client, sandbox, monkeypatch):
    """The ledger's in-flight write runs after the slot is booked and before the wait: it delays
    nothing (before, written between sends, it could push each send past its slot)."""
    assert client.throttle is not None
    events: list[tuple[str, float]] = []
    original_book, original_wait = client.throttle.book, client.throttle.wait

    def book():
        booking = original_book()
        events.append(("book", booking.slot))
        return booking

    def wait(booking):
        events.append(("wait", booking.slot))
        return original_wait(booking)

    monkeypatch.setattr(client.throttle, "book", book)
    monkeypatch.setattr(client.throttle, "wait", wait)
    for n in range(3):
        client.send_sms(f"+225070000000{n}", "hi", before_request=lambda n=n: events.append(("ledger", n)))
    assert [e[0] for e in events] == ["book", "ledger", "wait"] * 3
    assert len(send_requests(sandbox)) == 3


def test_a_failing_before_request_sends_nothing(client, sandbox):
    def ledger_down() -> None:
        raise OSError("ledger unavailable")

    with pytest.raises(OSError, match="ledger unavailable"):
        client.send_sms("+2250700000001", "hi", before_request=ledger_down)
    assert send_requests(sandbox) == []


def test_the_sandbox_reports_its_own_delay_before_the_rate_window(client, sandbox):
    """What the sandbox adds to the arrival jitter on a loaded machine is measured, not hidden."""
    client.send_sms("+2250700000001", "hi")
    assert len(sandbox.state.arrival_noise) == 1
    assert sandbox.state.arrival_noise[0] >= 0
    assert sandbox.state.snapshot()["arrival_noise_max_ms"] == 1000 * sandbox.state.arrival_noise[0]
