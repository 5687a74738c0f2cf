"""Spacing SMS sends so no process on the machine pushes an account past Orange's limit.

Orange accepts at most 5 SMS per second per account and answers 429 above that. Sends are spaced
evenly (one every 205 ms at 5/s) by *reserving time slots* in a small state file shared by every
process on the machine: holding an exclusive ``flock`` on that file a sender reads the next free
slot, takes it, writes back ``slot + interval`` and unlocks, then sleeps until its slot. That is
the "virtual scheduling" form of GCRA. It is exact (no polling, no sleeps longer than needed),
first come first served across processes, and costs one lock and an 8-byte read/write per send.
The slots live on the wall clock (``time.monotonic`` is not shared between processes), so a free
slot further ahead than the machine's senders could have booked (64 intervals, at least 2 s) is
taken for a clock step back and ignored, and a wait longer than a few intervals is logged.
The lock is taken on the already-open state file (``filelock`` reopens its lock file on every
acquire, which tripled the cost of a send with the limit lifted).

Booking and waiting are two steps (:meth:`FileSendLimiter.book`, :meth:`FileSendLimiter.wait`) so the
caller can do its own bookkeeping (the operator's ledger write) during the wait instead of after it.
A sender woken late keeps its turn: it sends at once and pushes the slots nobody has booked yet
back by its lateness (see :func:`keep_turn`), instead of throwing its slot away.

The same booking rules run on Redis, on Redis's clock, for deployments spanning several machines
(:mod:`airflow_provider_orange_sms.limit.redis_limiter`).

pyrate-limiter was evaluated first; its SQLite bucket, the one that shares a limit across
processes, let one process take every permit while another starved and, in its blocking path,
advanced timestamps virtually so six sends landed in under a second. The slot file keeps the
guarantee this provider needs: never more than ``rate`` sends in any one-second window.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_orange_sms.limit.limiter import Booking, LateAnswers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows, where Airflow workers do not run
    fcntl = None  # type: ignore[assignment]
    from filelock import FileLock

#: Orange's window: at most ``rate`` sends in any this many seconds.
RATE_WINDOW_SECONDS = 1.0
# Sends are spaced so that ``rate`` of them span the window plus 25 ms: requests reaching Orange up
# to 20 ms later or earlier than sent (network jitter), plus a sender woken up to _LATE_WAKE_UP late,
# still never put rate + 1 sends in one second on Orange's side. Costs 2.4% of throughput.
SAFETY_MARGIN = 1.025
#: Rates accepted, sends per second. Below 0.01 (one send every 100 s) a typo is likelier than
#: intent; above 1000 the limiter's own cost would dominate. 0 or ``None`` lifts the limit instead.
MIN_RATE_PER_SECOND = 0.01
MAX_RATE_PER_SECOND = 1000.0
# A free slot further ahead than this many intervals cannot come from the senders of one machine:
# each booking sender holds one slot, so N senders book at most N intervals ahead, and 64 is well
# above an Airflow worker's parallelism. Further means the wall clock stepped back since the slot
# was written (or the state file is corrupt): start over from now.
MAX_AHEAD_INTERVALS = 64
# ... but never less than this, so a fast rate still tolerates small clock adjustments.
MIN_MAX_AHEAD_SECONDS = 2.0
# A wait longer than this (and longer than a few intervals) is logged as a WARNING: silent
# minutes-long waits looked like a hung task.
_LONG_WAIT_SECONDS = 5.0
_LONG_WAIT_INTERVALS = 4
_STATE = struct.Struct("<d")
#: Waking up at most this late after a slot's time needs nothing (time.sleep overshoots ~0.1 ms;
#: the safety margin covers it). Later, the sender keeps its turn by pushing the unbooked slots back
#: by the rest of its lateness.
LATE_WAKE_UP = 0.002
# Fresh slots a late sender books (only when many senders are queued behind it) before it sends.
_MAX_LATE_ROUNDS = 3
# Next free slot per account, for processes whose state file cannot be used (read-only home).
_LOCAL_SLOTS: dict[str, float] = {}
_LOCAL_SLOTS_LOCK = threading.Lock()

log = logging.getLogger(__name__)


def check_rate(rate_per_second: object) -> float:
    """
    Return ``rate_per_second`` as a float, or raise naming it when it is out of range.

    :param rate_per_second: Sends per second, from 0.01 to 1000.
    :raises ValueError: When it is not a number in that range (``bool`` and NaN included).
    """
    if (
        isinstance(rate_per_second, bool)
        or not isinstance(rate_per_second, (int, float))
        or not MIN_RATE_PER_SECOND <= rate_per_second <= MAX_RATE_PER_SECOND  # also refuses NaN
    ):
        raise ValueError(
            f"Invalid rate_per_second {rate_per_second!r}: expected {MIN_RATE_PER_SECOND:g} to "
            f"{MAX_RATE_PER_SECOND:g} sends per second"
        )
    return float(rate_per_second)


def interval_for(rate_per_second: float) -> float:
    """
    Seconds between two booked slots at ``rate_per_second`` (with the safety margin).

    :param rate_per_second: Sends per second.
    """
    return SAFETY_MARGIN / rate_per_second


def keep_turn(next_free: float, slot: float, now: float, interval: float) -> float | None:
    """
    What a sender woken late (at ``now``, after its ``slot``) writes back so it may send at once.

    Sending late only brings the sender closer to the sends after it. Those not booked yet are
    pushed back by its lateness beyond :data:`LATE_WAKE_UP` (the lateness any send may have within
    the safety margin, so pushing it too would only lose time); those already booked are safe as
    long as they all fall within one window after its slot (at most ``rate - 1`` of them, whatever
    their lateness): then any one-second window still holds at most ``rate`` sends. Nothing booked
    ahead (``next_free <= now``): the late send is just a send now.

    :param next_free: The shared next free slot.
    :param slot: The late sender's slot.
    :param now: Now, on the same clock.
    :param interval: Seconds between slots.
    :return: The new next free slot, or ``None`` when too many senders are booked after this one:
        then it must book a fresh slot instead.
    """
    if next_free <= now:
        return now + interval
    if next_free - slot <= max(RATE_WINDOW_SECONDS, interval) + 1e-9:
        return next_free + max(now - slot - LATE_WAKE_UP, 0.0)
    return None


def answer_push(lateness: float, rate_per_second: float, interval: float) -> float:
    """
    How far to push back the slots nobody has booked yet when a send's answer came late.

    Orange counts a send when it arrives, which is some time after the limiter let it go, and a
    loaded machine delays a request now and then beyond the network's usual delay. The send ``n``
    slots later (``n`` sends per window) leaves at least ``n * interval`` after it (less
    :data:`LATE_WAKE_UP`): more than the window by a slack of about 23 ms at 5/s. The answer comes
    after the arrival, so an answer later than usual (``lateness``, see :class:`LateAnswers`) by more
    than the slack says the send may have arrived that much later than usual: the next sends move
    back by the excess, so the one ``n`` later still arrives a full window after it. It costs
    throughput only when an answer is late.

    :param lateness: How much later than the fastest recent answer this one came (seconds).
    :param rate_per_second: Sends per second.
    :param interval: Seconds between slots.
    :return: Seconds to push the unbooked slots back (0: none).
    """
    per_window = max(1, math.floor(rate_per_second * RATE_WINDOW_SECONDS + 1e-9))
    slack = per_window * interval - RATE_WINDOW_SECONDS - LATE_WAKE_UP
    return max(0.0, lateness - slack)


@dataclass(frozen=True)
class SendRecord:
    """
    A sender's bookkeeping around one send, in two parts, as ``before_send`` of a limiter's wait.

    :param due: Runs right before the send leaves (the "in flight" write); calling the record
        calls it. When there was no time for ``pending`` on its own, ``due`` does that work too.
    :param pending: Earlier bookkeeping (the previous send's outcome) that runs at the start of the
        wait when the slot is far enough for it to run on its own first; returns whether it had
        anything to do. So a sender killed during a long wait has its earlier outcomes recorded.
    """

    due: Callable[[], object]
    pending: Callable[[], bool]

    def __call__(self) -> None:
        self.due()


class EarlyWork:
    """
    Runs a sender's own work (the ledger's "in flight" write) at the end of its wait, timed to end
    before the slot comes, so the work neither costs a slot nor leaves long before the wait is over.

    The work must happen after the booking (a sender killed while waiting for a long turn has sent
    nothing, and its ledger should say so), but run after the slot it would make every send late
    by its duration, and lateness is lost throughput (:func:`keep_turn` pushes the next slots back
    by it). So the wait ends early by the longest of the work's recent durations (capped), the work
    runs, and the caller then sleeps what is left of the slot as usual: the send never leaves
    before its slot. Starting early costs nothing but a slightly longer window in which a killed
    sender leaves an "in flight" record for an SMS it never sent (reported uncertain, never sent
    twice); starting late costs the whole miss, and such writes vary (a loaded execution API: 50 ms
    typical, 90 ms one in ten), so the estimate is a recent maximum, not an average.
    """

    #: Recent durations kept for the estimate.
    HISTORY = 16
    #: The pending work runs on its own only in a wait with at least this much time to spare
    #: (seconds): at 5/s it always does unless writes are slow, and at high rates (slots a few ms
    #: apart) it never does, so which write carries an outcome does not hinge on a millisecond.
    PENDING_MIN_SPARE = 0.05

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.HISTORY)

    @property
    def estimate(self) -> float:
        """The head start the work gets (before the cap): its longest recent duration, seconds."""
        return max(self._recent, default=0.0)

    def run(
        self, work: Callable[[], object], deadline: float, clock: Callable[[], float], cap: float
    ) -> float:
        """
        Sleep until ``deadline`` less the expected duration of ``work``, then run it.

        :param work: The caller's work; its exception propagates (the caller then sends nothing). A
            :class:`SendRecord`'s pending part runs first, at once, when the slot leaves time for it.
        :param deadline: The slot's instant on ``clock``.
        :param clock: The clock ``deadline`` is on.
        :param cap: The longest head start given to ``work`` (seconds).
        :return: The seconds slept.
        """
        spare = deadline - min(self.estimate, cap) - clock()
        if isinstance(work, SendRecord) and spare > max(self.estimate, self.PENDING_MIN_SPARE):
            started = clock()
            if work.pending():  # time for it on its own before the due work
                self._recent.append(max(clock() - started, 0.0))
        pause = deadline - min(self.estimate, cap) - clock()
        if pause > 0:
            time.sleep(pause)
        started = clock()
        work()
        self._recent.append(max(clock() - started, 0.0))
        return max(pause, 0.0)


def wait_for_turn(
    booking: Booking,
    *,
    clock: Callable[[], float],
    keep_turn: Callable[[Booking], Booking | None],
    long_wait: float,
    on_long_wait: Callable[[float], None],
    early: EarlyWork,
    before_send: Callable[[], object] | None,
    head_start: float,
) -> tuple[float, Booking]:
    """
    Sleep until ``booking``'s slot, keeping the turn when woken late: the wait of every limiter.

    A sender woken late (a loaded machine, or work done between booking and waiting) keeps its
    turn: ``keep_turn`` lets it send at once and pushes the slots not yet booked back by its
    lateness; only when more senders are queued behind it than fit in one window does it book a
    fresh slot (a few rounds at most).

    :param booking: The booked slot; its ``deadline`` is on ``clock``.
    :param clock: The clock the limiter sleeps with.
    :param keep_turn: Given the late booking, returns ``None`` when the limiter lets it go now, or
        a fresh booking to wait for; it may raise to end the wait (the caller handles it).
    :param long_wait: A wait longer than this (seconds) is reported to ``on_long_wait``.
    :param on_long_wait: Logs a long wait (seconds).
    :param early: Times ``before_send``.
    :param before_send: Work to run at the end of the wait (:class:`EarlyWork`).
    :param head_start: The longest head start ``before_send`` gets (seconds).
    :return: The seconds waited, and the booking the send goes out in, its ``slot`` the instant
        (on the limiter's shared clock) the send was let go at the earliest.
    """
    waited = 0.0
    if before_send is not None:
        waited += early.run(before_send, booking.deadline, clock, head_start)
    for _ in range(_MAX_LATE_ROUNDS):
        wait = booking.deadline - clock()
        if wait > 0:
            if wait > long_wait:
                on_long_wait(wait)
            time.sleep(wait)
            waited += wait
        late = clock() - booking.deadline
        if late <= LATE_WAKE_UP:
            return waited, booking
        fresh = keep_turn(booking)
        if fresh is None:
            return waited, Booking(booking.slot + late, booking.deadline + late, booking.mode)
        booking = fresh
    return waited, booking


class FileSendLimiter:
    """
    A machine-wide limiter of sends per second for one Orange account.

    :param rate_per_second: Sends allowed per second (Orange: 5), from 0.01 to 1000.
    :param state_dir: Directory of the shared slot file. Processes that must share the limit must
        use the same directory.
    :param account: What identifies the account (e.g. base URL + client id); hashed into the file
        name so different accounts do not slow each other down.
    """

    def __init__(self, rate_per_second: float, state_dir: str | os.PathLike[str], account: str) -> None:
        self.rate_per_second = check_rate(rate_per_second)
        self.interval = interval_for(self.rate_per_second)
        #: Furthest ahead of now a booked slot is trusted (seconds).
        self.max_ahead = max(MIN_MAX_AHEAD_SECONDS, MAX_AHEAD_INTERVALS * self.interval)
        self._long_wait = max(_LONG_WAIT_SECONDS, _LONG_WAIT_INTERVALS * self.interval)
        self._digest = hashlib.sha256(account.encode()).hexdigest()[:32]
        self._directory = Path(state_dir)
        self._state_path = self._directory / f"limiter-{self._digest}.slot"
        self._lock_path = self._directory / f"limiter-{self._digest}.lock"
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._fd_pid = 0
        self._shared = True
        self._early = EarlyWork()
        self.last_release: float | None = None
        #: The answers that came late enough to push the unbooked slots back.
        self.late_answers = LateAnswers()

    def __repr__(self) -> str:
        return f"FileSendLimiter(rate_per_second={self.rate_per_second!r}, state={str(self._state_path)!r})"

    def _state_fd(self) -> int | None:
        """The open state file, or ``None`` when it cannot be used (then the limit is per process)."""
        if self._fd is not None and self._fd_pid != os.getpid():
            # Inherited through fork: the parent's lock would not exclude this child. Reopen.
            os.close(self._fd)
            self._fd = None
        if self._fd is None and self._shared:
            try:
                self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._fd = os.open(self._state_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                log.warning(
                    "Orange SMS send limit state %s unusable (%s): the send limit is kept for this "
                    "process only, so other processes sending at the same time are not counted",
                    self._state_path,
                    exc,
                )
                self._shared = False
                return None
            self._fd_pid = os.getpid()
        return self._fd

    @contextlib.contextmanager
    def _locked(self, fd: int) -> Iterator[int]:
        if fcntl is None:  # pragma: no cover
            with FileLock(str(self._lock_path), mode=0o600):
                yield fd
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _update(self, change: Callable[[float], tuple[float, float | None]]) -> tuple[float | None, str]:
        """
        Apply ``change`` to the next free slot atomically across the machine's processes.

        :param change: Maps the stored next free slot to (new next free slot, result).
        :return: The result and the mode (``file`` or ``process``).
        """
        with self._thread_lock:
            state_fd = self._state_fd()
            if state_fd is None:
                with _LOCAL_SLOTS_LOCK:
                    stored, result = change(_LOCAL_SLOTS.get(self._digest, 0.0))
                    _LOCAL_SLOTS[self._digest] = stored
                return result, "process"
            with self._locked(state_fd) as fd:
                raw = os.pread(fd, _STATE.size, 0)
                stored, result = change(_STATE.unpack(raw)[0] if len(raw) == _STATE.size else 0.0)
                os.pwrite(fd, _STATE.pack(stored), 0)
        return result, "file"

    def _take(self, next_free: float) -> tuple[float, float]:
        slot = self._next_slot(next_free)
        return slot + self.interval, slot

    def reserve(self) -> float:
        """
        Take the next free send slot and return its Unix time (it may be in the past: send now).

        Does not sleep; :meth:`acquire` does.
        """
        slot, _ = self._update(self._take)
        assert slot is not None
        return slot

    def book(self) -> Booking:
        """Take the next free send slot without waiting for it (:meth:`wait` does)."""
        slot, mode = self._update(self._take)
        assert slot is not None
        return Booking(slot, slot, mode)

    def _next_slot(self, next_free: float) -> float:
        now = time.time()
        if next_free - now > self.max_ahead:
            log.warning(
                "Orange SMS send limit: the next free slot was %.1f s ahead, more than the %.1f s the "
                "senders of one machine can book (the wall clock stepped back?); starting over from now",
                next_free - now,
                self.max_ahead,
            )
            return now
        return max(now, next_free)

    def _keep_turn(self, slot: float) -> Booking | None:
        """Let a sender woken late send now; a fresh booking when too many are queued behind it."""

        def change(next_free: float) -> tuple[float, float | None]:
            now = time.time()
            kept = keep_turn(next_free, slot, now, self.interval)
            if kept is not None:
                return kept, None
            return self._take(next_free)

        fresh, mode = self._update(change)
        return None if fresh is None else Booking(fresh, fresh, mode)

    def wait(self, booking: Booking, before_send: Callable[[], object] | None = None) -> float:
        """
        Sleep until ``booking``'s slot; return the seconds waited (see :func:`wait_for_turn`).

        :param booking: What :meth:`book` returned.
        :param before_send: Work to run at the end of the wait (:class:`EarlyWork`).
        """
        waited, released = wait_for_turn(
            booking,
            clock=time.time,
            keep_turn=lambda late: self._keep_turn(late.slot),
            long_wait=self._long_wait,
            on_long_wait=self._log_long_wait,
            early=self._early,
            before_send=before_send,
            head_start=self.interval,
        )
        self.last_release = released.slot
        return waited

    def answered(self, after: float) -> None:
        """
        Push the slots nobody has booked yet back when the answer came late (:func:`answer_push`).

        :param after: Seconds from the send's release to its answer.
        """
        push = answer_push(self.late_answers.lateness(after), self.rate_per_second, self.interval)
        if push <= 0:
            return
        self._update(lambda next_free: (max(next_free, time.time()) + push, None))
        self.late_answers.add(push, "this machine")

    def _log_long_wait(self, wait: float) -> None:
        log.warning(
            "Orange SMS send limit: waiting %.1f s for a send slot (%g SMS/s shared by every process on "
            "this machine, state %s)",
            wait,
            self.rate_per_second,
            self._state_path,
        )

    def acquire(self) -> float:
        """Block until this caller may send (:meth:`book`, then :meth:`wait`); return the seconds waited."""
        return self.wait(self.book())

    def close(self) -> None:
        """Close the state file (a later :meth:`acquire` reopens it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
