"""The limiter distrusts slots booked impossibly far ahead, says when it waits long, and
refuses rates that would silently disable it."""

from __future__ import annotations

import logging
import struct
import time
from collections import Counter

import pytest

from airflow_provider_orange_sms.limit import file_limiter
from airflow_provider_orange_sms.limit.file_limiter import SAFETY_MARGIN, FileSendLimiter


@pytest.fixture
def frozen_clock(monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(file_limiter.time, "time", lambda: clock[0])
    return clock


def write_next_free(state_dir, limiter, when):
    limiter.reserve()
    limiter.close()
    next(state_dir.glob("limiter-*.slot")).write_bytes(struct.pack("<d", when))


def test_a_slot_minutes_ahead_is_distrusted(tmp_path, frozen_clock, caplog):
    # Before: anything under 600 s ahead was trusted, so the next send waited 5 minutes.
    limiter = FileSendLimiter(5, tmp_path, "account")
    write_next_free(tmp_path, limiter, frozen_clock[0] + 300)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_orange_sms.limit.file_limiter"):
        assert limiter.reserve() == frozen_clock[0]
    assert "stepped back" in caplog.text


def test_slots_booked_by_many_senders_are_still_honoured(tmp_path, frozen_clock):
    interval = SAFETY_MARGIN / 5
    limiter = FileSendLimiter(5, tmp_path, "account")
    assert limiter.max_ahead == pytest.approx(64 * interval)
    slots = [limiter.reserve() for _ in range(64)]  # 64 senders booking at the same instant
    assert slots == pytest.approx([frozen_clock[0] + i * interval for i in range(64)])
    # Just past the cap: distrusted (the clock stepped back by more than 64 senders could book).
    write_next_free(tmp_path, limiter, frozen_clock[0] + limiter.max_ahead + 0.5)
    assert limiter.reserve() == frozen_clock[0]
    slowest = FileSendLimiter(0.01, tmp_path, "slow account")  # 102.5 s apart, still spaced
    assert [slowest.reserve() - frozen_clock[0] for _ in range(3)] == pytest.approx([0, 102.5, 205])


def test_a_long_wait_is_logged(tmp_path, frozen_clock, monkeypatch, caplog):
    slept: list[float] = []

    def sleep(seconds):
        slept.append(seconds)
        frozen_clock[0] += seconds

    monkeypatch.setattr(file_limiter.time, "sleep", sleep)
    limiter = FileSendLimiter(1, tmp_path, "account")  # interval 1.025 s: 64 s ahead is legitimate
    write_next_free(tmp_path, limiter, frozen_clock[0] + 20)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_orange_sms.limit.file_limiter"):
        limiter.acquire()
    assert slept == [pytest.approx(20)]
    assert "waiting 20.0 s for a send slot" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="airflow_provider_orange_sms.limit.file_limiter"):
        limiter.acquire()  # the usual one-interval wait stays quiet
    assert slept[-1] == pytest.approx(SAFETY_MARGIN)
    assert caplog.text == ""


@pytest.mark.parametrize("rate", [0.001, 0.0099, 1001, float("nan"), float("inf"), True, "5"])
def test_rates_outside_the_sane_range_are_refused(tmp_path, rate):
    # Before: 0.001 (a 1010 s interval, over the old 600 s reset) disabled limiting entirely.
    with pytest.raises(ValueError, match="rate_per_second") as err:
        FileSendLimiter(rate, tmp_path, "account")
    assert repr(rate) in str(err.value)


def test_a_client_sends_at_once_after_the_clock_stepped_back(make_client, sandbox, cache_dir, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(file_limiter.time, "sleep", waits.append)  # record, never really sleep
    client = make_client()
    assert client.limiter is not None
    write_next_free(cache_dir, client.limiter, time.time() + 300)
    client.send_sms("+2250700000001", "hi")
    assert all(wait < 60 for wait in waits), waits
    assert Counter(m.address for m in sandbox.state.messages) == {"tel:+2250700000001": 1}


def test_a_client_refuses_a_rate_that_would_lift_the_limit(make_client, sandbox):
    with pytest.raises(ValueError, match="0.001"):
        make_client(rate_limit_per_second=0.001)
