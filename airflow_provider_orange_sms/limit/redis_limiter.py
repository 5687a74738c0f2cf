"""One send limit for every machine of a deployment, booked in Redis on Redis's clock.

The booking rules are those of the per-machine limiter (:mod:`airflow_provider_orange_sms.limit.file_limiter`:
GCRA "virtual scheduling", one slot per send, a late sender keeping its turn), run as atomic Lua
scripts so every worker of every machine books from one schedule. The schedule lives on Redis's
clock (``TIME`` inside the script): a worker receives how long to wait, never an absolute time, and
sleeps that long on its own monotonic clock, so workers whose wall clocks differ by seconds still
send in turn. The only error left is the network delay between Redis and the worker, which the
safety margin covers.

When Redis cannot be reached (down, restarting, a network split) the send is not refused: this
process falls back to the per-machine file limiter, says so in a WARNING, tries Redis again after
a few seconds and says when it is back. Meanwhile other machines are not counted, so Orange may
answer 429; a 429 means Orange took nothing, and the client waits it out and retries, so no SMS is
lost or sent twice. Slots booked in Redis before a restart are forgotten with it (Redis here keeps
no data on disk): the first sends after it may come a few slots early, with the same worst case.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from airflow_provider_orange_sms.limit.file_limiter import (
    LATE_WAKE_UP,
    MIN_MAX_AHEAD_SECONDS,
    RATE_WINDOW_SECONDS,
    EarlyWork,
    FileSendLimiter,
    answer_push,
    check_rate,
    interval_for,
    wait_for_turn,
)
from airflow_provider_orange_sms.limit.limiter import Booking, LateAnswers

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: Prefix of every key the provider writes in Redis.
KEY_PREFIX = "orange_sms"
# Seconds the process uses the file limiter after Redis failed, before it tries Redis again: a
# blackholed Redis costs a connect timeout per try, so not on every send.
RETRY_REDIS_AFTER = 2.0
# Every sender of every machine holds at most one slot; 256 of them is beyond any deployment's
# concurrency. A next free slot further ahead is corrupt (or Redis's clock stepped back): start over.
_MAX_AHEAD_INTERVALS = 256
_LONG_WAIT_SECONDS = 5.0
_US = 1_000_000
# Errors meaning "Redis cannot be used right now": connection refused or lost, timeouts, a Redis
# still loading its data after a restart, refused credentials.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)

# Redis's TIME in microseconds. Scripts that read TIME and then write need effects replication,
# the default from Redis 5 and the only mode from 7; older servers need it asked for.
_NOW = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS[1]: the account's next free slot (µs). ARGV: interval, furthest trusted slot ahead (µs).
# Returns {slot, wait, reset}: the booked slot and how long after now it is, both in µs.
BOOK_SCRIPT = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local reset = 0
if next_free - now > tonumber(ARGV[2]) then
  next_free = now
  reset = 1
end
local slot = math.max(now, next_free)
redis.call('SET', KEYS[1], string.format('%d', slot + interval), 'PX',
  string.format('%d', math.floor((slot + interval - now) / 1000) + 60000))
return {slot, slot - now, reset}
"""
)

# A sender woken late after its slot ARGV[1] keeps its turn (file_limiter.keep_turn, in Lua): it sends now
# and the slots nobody has booked yet move back by its lateness beyond the free lateness ARGV[5],
# unless more senders are booked behind it than one window holds; then it takes a fresh slot.
# ARGV: slot, interval, window, furthest trusted slot ahead, free lateness (µs).
# Returns {kept, slot, wait}.
KEEP_TURN_SCRIPT = (
    _NOW
    + """
local slot = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local stored
local result
if next_free <= now then
  stored = now + interval
  result = {1, now, 0}
elseif next_free - slot <= math.max(tonumber(ARGV[3]), interval) then
  stored = next_free + math.max(now - slot - tonumber(ARGV[5]), 0)
  result = {1, now, 0}
else
  if next_free - now > tonumber(ARGV[4]) then next_free = now end
  stored = next_free + interval
  result = {0, next_free, next_free - now}
end
redis.call('SET', KEYS[1], string.format('%d', stored), 'PX',
  string.format('%d', math.floor((stored - now) / 1000) + 60000))
return result
"""
)


# A late answer pushes the slots nobody has booked yet back by ARGV[1] (µs; file_limiter.answer_push).
PUSH_SCRIPT = (
    _NOW
    + """
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local stored = math.max(next_free, now) + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', stored), 'PX',
  string.format('%d', math.floor((stored - now) / 1000) + 60000))
return 1
"""
)


class _RedisLost(Exception):
    """Redis failed during a wait: the send takes a slot of the fallback instead."""


def slot_key(account: str) -> str:
    """
    Return the Redis key of an account's next free slot.

    :param account: What identifies the account (base URL + client id); only its hash is used.
    """
    return f"{KEY_PREFIX}:slot:{hashlib.sha256(account.encode()).hexdigest()[:32]}"


class RedisSendLimiter:
    """
    A limiter of sends per second for one Orange account, shared through Redis by every machine.

    :param rate_per_second: Sends allowed per second (Orange: 5), from 0.01 to 1000.
    :param redis: A ``redis.Redis`` client (from Airflow's ``RedisHook``); connected lazily.
    :param account: What identifies the account (base URL + client id).
    :param fallback: The per-machine limiter used while Redis cannot be reached.
    :param where: How the Redis is named in logs (its Airflow connection id), never a password.
    :param retry_redis_after: Seconds on the fallback after a Redis failure before trying it again.
    """

    def __init__(
        self,
        rate_per_second: float,
        redis: Any,
        account: str,
        fallback: FileSendLimiter,
        *,
        where: str = "redis",
        retry_redis_after: float = RETRY_REDIS_AFTER,
    ) -> None:
        self.rate_per_second = check_rate(rate_per_second)
        self.interval = interval_for(self.rate_per_second)
        self.max_ahead = max(MIN_MAX_AHEAD_SECONDS, _MAX_AHEAD_INTERVALS * self.interval)
        self.fallback = fallback
        self.where = where
        self.retry_redis_after = retry_redis_after
        self.key = slot_key(account)
        self._redis = redis
        self._book = redis.register_script(BOOK_SCRIPT)
        self._keep_turn = redis.register_script(KEEP_TURN_SCRIPT)
        self._push = redis.register_script(PUSH_SCRIPT)
        #: The answers that came late enough to push the unbooked slots back.
        self.late_answers = LateAnswers()
        self._interval_us = round(self.interval * _US)
        self._max_ahead_us = round(self.max_ahead * _US)
        self._window_us = round(RATE_WINDOW_SECONDS * _US)
        self._late_wake_up_us = round(LATE_WAKE_UP * _US)
        self._long_wait = max(_LONG_WAIT_SECONDS, 4 * self.interval)
        # monotonic time until which Redis is not tried again; None while Redis works.
        self._down_until: float | None = None
        self._announced = False
        self._fallback_sends = 0
        #: Sends spaced per mode (``redis``, ``file``, ``process``) by this limiter.
        self.sends_by_mode: Counter[str] = Counter()
        #: The mode the last send was spaced with.
        self.last_mode = ""
        self._last_sent: float | None = None
        self._early = EarlyWork()
        #: When the last send was let go: on Redis's clock, or the fallback's while Redis was down.
        self.last_release: float | None = None

    def __repr__(self) -> str:
        return f"RedisSendLimiter(rate_per_second={self.rate_per_second!r}, redis={self.where!r})"

    # -- modes -----------------------------------------------------------------------------------

    def _redis_failed(self, exc: BaseException) -> None:
        if self._down_until is None:
            log.warning(
                "Orange SMS send limit: Redis (%s) cannot be reached (%s: %s). Sends from this process "
                "are spaced by the per-machine file limiter until it answers (tried again every %g s); "
                "other machines are not counted meanwhile, so Orange may answer 429, which is waited "
                "out and retried (no SMS is lost or sent twice)",
                self.where,
                type(exc).__name__,
                exc,
                self.retry_redis_after,
            )
        else:
            log.debug("Redis (%s) still unreachable: %s", self.where, exc)
        self._down_until = time.monotonic() + self.retry_redis_after

    def _redis_answered(self) -> None:
        if self._down_until is not None:
            log.warning(
                "Orange SMS send limit: Redis (%s) answers again; sends are spaced through it again "
                "(%d send(s) used the per-machine file limiter meanwhile)",
                self.where,
                self._fallback_sends,
            )
            self._down_until = None
            self._fallback_sends = 0
        elif not self._announced:
            log.info(
                "Orange SMS sends are spaced through Redis (%s): %g SMS/s shared by every process of "
                "every machine using it",
                self.where,
                self.rate_per_second,
            )
        self._announced = True

    def _redis_usable(self) -> bool:
        return self._down_until is None or time.monotonic() >= self._down_until

    # -- booking ---------------------------------------------------------------------------------

    def book(self) -> Booking:
        """Take the next free send slot (in Redis, or in the fallback while Redis is down)."""
        if self._redis_usable():
            try:
                slot_us, wait_us, reset = self._book(
                    keys=[self.key], args=[self._interval_us, self._max_ahead_us]
                )
            except REDIS_ERRORS as exc:
                self._redis_failed(exc)
            else:
                received = time.monotonic()
                self._redis_answered()
                if int(reset):
                    log.warning(
                        "Orange SMS send limit: the next free slot in Redis (%s) was more than %.0f s "
                        "ahead (corrupt, or Redis's clock stepped back); starting over from now",
                        self.where,
                        self.max_ahead,
                    )
                return Booking(int(slot_us) / _US, received + int(wait_us) / _US, "redis")
        return self.fallback.book()

    def wait(self, booking: Booking, before_send: Callable[[], object] | None = None) -> float:
        """
        Sleep until ``booking``'s slot; return the seconds waited.

        A sender woken late keeps its turn (see
        :func:`~airflow_provider_orange_sms.limit.file_limiter.keep_turn`).
        If Redis fails meanwhile, the send takes a slot of the fallback instead.

        :param booking: What :meth:`book` returned.
        :param before_send: Work to run at the end of the wait
            (:class:`~airflow_provider_orange_sms.limit.file_limiter.EarlyWork`).
        """
        waited = self._after_a_mode_change(booking.mode)
        if booking.mode != "redis":
            waited += self.fallback.wait(booking, before_send)
            self.last_release = self.fallback.last_release
            self._count(booking.mode)
            return waited
        try:
            more, released = wait_for_turn(
                booking,
                clock=time.monotonic,
                keep_turn=self._keep_turn_in_redis,
                long_wait=self._long_wait,
                on_long_wait=self._log_long_wait,
                early=self._early,
                before_send=before_send,
                head_start=self.interval,
            )
        except _RedisLost:
            fresh = self.fallback.book()
            waited += self._after_a_mode_change(fresh.mode) + self.fallback.wait(fresh)
            self.last_release = self.fallback.last_release
            self._count(fresh.mode)
            return waited
        self.last_release = released.slot
        self._count("redis")
        return waited + more

    def _keep_turn_in_redis(self, late: Booking) -> Booking | None:
        """Keep a late sender's turn in Redis (``None``: send now) or book it a fresh slot there."""
        try:
            kept, slot_us, wait_us = self._keep_turn(
                keys=[self.key],
                args=[
                    round(late.slot * _US),
                    self._interval_us,
                    self._window_us,
                    self._max_ahead_us,
                    self._late_wake_up_us,
                ],
            )
        except REDIS_ERRORS as exc:
            self._redis_failed(exc)
            raise _RedisLost from exc
        if int(kept):
            return None
        return Booking(int(slot_us) / _US, time.monotonic() + int(wait_us) / _US, "redis")

    def answered(self, after: float) -> None:
        """
        Push the slots nobody has booked yet back when the answer came late (see
        :func:`~airflow_provider_orange_sms.limit.file_limiter.answer_push`), where the send was booked.

        :param after: Seconds from the send's release to its answer.
        """
        if self.last_mode != "redis":
            self.fallback.answered(after)
            return
        push = answer_push(self.late_answers.lateness(after), self.rate_per_second, self.interval)
        if push <= 0:
            return
        try:
            self._push(keys=[self.key], args=[round(push * _US)])
        except REDIS_ERRORS as exc:
            self._redis_failed(exc)
            return
        self.late_answers.add(push, f"Redis {self.where}")

    def _log_long_wait(self, wait: float) -> None:
        log.warning(
            "Orange SMS send limit: waiting %.1f s for a send slot (%g SMS/s shared through Redis %s by "
            "every machine)",
            wait,
            self.rate_per_second,
            self.where,
        )

    def _after_a_mode_change(self, mode: str) -> float:
        """
        Keep one interval after this process's last send when its mode changes: the other mode's
        schedule does not know that send, and would let the next one follow it at once.
        """
        if not self.last_mode or mode == self.last_mode or self._last_sent is None:
            return 0.0
        pause = self._last_sent + self.interval - time.monotonic()
        if pause <= 0:
            return 0.0
        time.sleep(pause)
        return pause

    def _count(self, mode: str) -> None:
        self._last_sent = time.monotonic()
        self.sends_by_mode[mode] += 1
        self.last_mode = mode
        if mode != "redis":
            self._fallback_sends += 1
        log.debug("Orange SMS send spaced by the %s limiter", mode)

    def acquire(self) -> float:
        """Book a slot and wait for it (:meth:`book`, then :meth:`wait`); return the seconds waited."""
        return self.wait(self.book())

    def close(self) -> None:
        """Close the fallback's state file; log how the sends were spaced when any fell back."""
        if set(self.sends_by_mode) - {"redis"}:
            log.warning(
                "Orange SMS sends spaced: %s",
                ", ".join(f"{count} through {mode}" for mode, count in sorted(self.sends_by_mode.items())),
            )
        self.fallback.close()
