"""The token store and the send limiter, without the network."""

from __future__ import annotations

import itertools
import os
import stat
import time

import pytest

from airflow_provider_orange_sms.limit import file_limiter
from airflow_provider_orange_sms.limit.file_limiter import LATE_WAKE_UP, SAFETY_MARGIN, FileSendLimiter
from airflow_provider_orange_sms.token.token_cache import (
    AccessToken,
    FileTokenCache,
    MemoryTokenCache,
    cache_key,
)


def test_cache_key_depends_on_url_id_and_secret_but_hides_the_secret():
    base = cache_key("https://api.orange.com/oauth/v3/token", "id", "secret")
    assert base != cache_key("https://api.orange.com/oauth/v3/token", "id", "other-secret")
    assert base != cache_key("https://api.orange.com/oauth/v2/token", "id", "secret")
    assert base != cache_key("https://api.orange.com/oauth/v3/token", "id2", "secret")
    assert "secret" not in base
    assert len(base) == 64


def test_token_refreshes_before_expiry():
    token = AccessToken.from_lifetime("abc", 3600)
    assert token.expires_at - token.refresh_at == pytest.approx(300)
    assert token.is_fresh(now=token.refresh_at - 1)
    assert not token.is_fresh(now=token.refresh_at + 1)
    short = AccessToken.from_lifetime("abc", 60)
    assert short.expires_at - short.refresh_at == pytest.approx(6)
    assert "abc" not in repr(token)


def test_file_cache_is_private_and_stores_no_secret(tmp_path):
    cache = FileTokenCache(tmp_path / "c")
    token = AccessToken.from_lifetime("the-token", 3600)
    cache.set("k", token)
    files = [p for p in (tmp_path / "c").iterdir() if p.suffix == ".json"]
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700
    assert cache.get("k") == token
    assert cache.get("other") is None


def test_delete_only_removes_the_token_it_was_given(tmp_path):
    for cache in (FileTokenCache(tmp_path), MemoryTokenCache()):
        old = AccessToken.from_lifetime("old", 3600)
        new = AccessToken.from_lifetime("new", 3600)
        cache.set("k", new)
        cache.delete("k", old)  # someone else already refreshed: keep theirs
        assert cache.get("k") == new
        cache.delete("k", new)
        assert cache.get("k") is None


def test_corrupt_cache_file_counts_as_missing(tmp_path):
    cache = FileTokenCache(tmp_path)
    cache.set("k", AccessToken.from_lifetime("t", 3600))
    next(tmp_path.glob("*.json")).write_text("{not json")
    assert cache.get("k") is None


def test_limiter_reserves_evenly_spaced_slots(tmp_path, frozen_clock):
    limiter = FileSendLimiter(5, tmp_path, "account")
    slots = [limiter.reserve() for _ in range(12)]
    assert slots[0] == frozen_clock[0]
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(gap == pytest.approx(SAFETY_MARGIN / 5) for gap in gaps)
    # Never more than 5 slots in any one-second window.
    assert all(slots[i + 5] - slots[i] >= 1.0 for i in range(len(slots) - 5))


def test_limiter_slot_after_a_pause_is_now(tmp_path, frozen_clock):
    limiter = FileSendLimiter(5, tmp_path, "account")
    limiter.reserve()
    frozen_clock[0] += 60
    assert limiter.reserve() == frozen_clock[0]  # no credit saved up: no burst after a pause


def test_limiter_state_is_shared_through_the_directory(tmp_path, frozen_clock):
    first = FileSendLimiter(5, tmp_path, "account")
    second = FileSendLimiter(5, tmp_path, "account")
    other_account = FileSendLimiter(5, tmp_path, "another account")
    a = first.reserve()
    b = second.reserve()
    c = other_account.reserve()
    assert b - a == pytest.approx(SAFETY_MARGIN / 5)
    assert c == a  # different accounts do not queue behind each other


def test_limiter_recovers_from_a_clock_jump(tmp_path):
    limiter = FileSendLimiter(5, tmp_path, "account")
    limiter.reserve()
    # Simulate a slot written far in the future (wall clock moved back since).
    import struct

    path = next(tmp_path.glob("limiter-*.slot"))
    path.write_bytes(struct.pack("<d", time.time() + 10_000))
    limiter.close()
    assert limiter.reserve() <= time.time() + 1


def test_limiter_rejects_bad_rate(tmp_path):
    with pytest.raises(ValueError, match="rate_per_second"):
        FileSendLimiter(0, tmp_path, "a")


def test_unusable_state_directory_keeps_the_limit_in_the_process(tmp_path, caplog, frozen_clock):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    limiter = FileSendLimiter(5, blocker / "limiter", "account-ro")
    same_process = FileSendLimiter(5, blocker / "limiter", "account-ro")
    slots = [limiter.reserve(), same_process.reserve(), limiter.reserve()]
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(gap == pytest.approx(SAFETY_MARGIN / 5) for gap in gaps)
    assert "for this process only" in caplog.text


def test_a_sender_woken_late_keeps_its_turn(tmp_path, frozen_clock, monkeypatch):
    """Woken 50 ms late while another sender holds the next slot: it sends at once, and the slots
    nobody booked yet move back by 50 ms (before: it threw its slot away and queued again)."""
    interval = SAFETY_MARGIN / 5
    start = frozen_clock[0]
    mine, other = FileSendLimiter(5, tmp_path, "account"), FileSendLimiter(5, tmp_path, "account")
    booked_meanwhile = []

    def sleep(seconds):
        if not booked_meanwhile:  # the first wait: another process books a slot, and we wake late
            booked_meanwhile.append(other.reserve() - start)
            seconds += 0.05
        frozen_clock[0] += seconds

    monkeypatch.setattr(file_limiter.time, "sleep", sleep)
    assert other.reserve() == start  # another process sends now
    mine.acquire()  # mine: start + 1 interval, but woken at start + 1 interval + 50 ms
    assert booked_meanwhile == [pytest.approx(2 * interval)]
    assert frozen_clock[0] - start == pytest.approx(interval + 0.05)  # sent at once, its turn kept
    # The slots nobody booked moved back by its lateness beyond the lateness the margin covers.
    assert mine.reserve() - start == pytest.approx(3 * interval + 0.05 - LATE_WAKE_UP)


def test_a_lone_sender_woken_a_few_ms_late_loses_no_slot(tmp_path, frozen_clock, monkeypatch):
    """Every sleep overshooting by 3 ms once made each send wait two intervals (0.76 x the limit)."""
    monkeypatch.setattr(
        file_limiter.time,
        "sleep",
        lambda seconds: frozen_clock.__setitem__(0, frozen_clock[0] + seconds + 0.003),
    )
    limiter = FileSendLimiter(5, tmp_path, "account")
    start = frozen_clock[0]
    sent = []
    for _ in range(51):
        limiter.acquire()
        sent.append(frozen_clock[0] - start)
    # 50 intervals plus at most the overshoot beyond LATE_WAKE_UP per send (the margin covers the
    # rest), and the last send's own overshoot; before the fix: about 100 intervals.
    assert sent[-1] == pytest.approx(50 * (SAFETY_MARGIN / 5 + 0.003 - LATE_WAKE_UP) + LATE_WAKE_UP)


def test_a_late_sender_with_a_full_window_queued_behind_it_books_a_fresh_slot(
    tmp_path, frozen_clock, monkeypatch
):
    """More senders booked after it than one window holds: sending late could put 6 in a second."""
    interval = SAFETY_MARGIN / 5
    start = frozen_clock[0]
    mine, others = FileSendLimiter(5, tmp_path, "account"), FileSendLimiter(5, tmp_path, "account")
    booking = mine.book()
    queued = [others.reserve() for _ in range(5)]  # 5 senders booked behind it: 1.025 s of slots
    frozen_clock[0] += 0.05  # woken 50 ms late
    monkeypatch.setattr(
        file_limiter.time, "sleep", lambda seconds: frozen_clock.__setitem__(0, frozen_clock[0] + seconds)
    )
    mine.wait(booking)
    assert queued[-1] - start == pytest.approx(5 * interval)
    assert frozen_clock[0] - start == pytest.approx(6 * interval)  # after the queue


def test_late_senders_keeping_their_turn_never_put_six_sends_in_a_second(tmp_path, frozen_clock, monkeypatch):
    """Four senders, each woken 0 to 150 ms late at random: any one-second window holds <= 5 sends."""
    import random

    rng = random.Random(14)
    limiters = [FileSendLimiter(5, tmp_path, "account") for _ in range(4)]
    pending = {n: limiters[n].book() for n in range(4)}  # each sender holds one booked slot
    wake = {n: pending[n].deadline + rng.choice([0, 0, 0.001, 0.004, 0.03, 0.15]) for n in range(4)}
    monkeypatch.setattr(file_limiter.time, "sleep", lambda seconds: None)
    sends = []
    for _ in range(400):
        sender = min(wake, key=lambda n: wake[n])  # the next sender to wake up
        frozen_clock[0] = max(frozen_clock[0], wake[sender])
        limiters[sender].wait(pending[sender])
        sends.append(frozen_clock[0])
        pending[sender] = limiters[sender].book()
        wake[sender] = max(frozen_clock[0], pending[sender].deadline) + rng.choice(
            [0, 0, 0.001, 0.004, 0.03, 0.15]
        )
    sends.sort()
    assert all(sends[i + 5] - sends[i] >= 1.0 for i in range(len(sends) - 5))
    # Still near the limit although a send in three wakes 4 to 150 ms late (simulated clock).
    assert (len(sends) - 1) / (sends[-1] - sends[0]) > 3.5


def test_an_on_time_wake_up_keeps_the_schedule(tmp_path, frozen_clock, monkeypatch):
    monkeypatch.setattr(
        file_limiter.time, "sleep", lambda seconds: frozen_clock.__setitem__(0, frozen_clock[0] + seconds)
    )
    limiter = FileSendLimiter(5, tmp_path, "account")
    first = limiter.reserve()
    limiter.acquire()
    assert limiter.reserve() - first == pytest.approx(2 * SAFETY_MARGIN / 5)
