"""Spacing SMS sends so no process on the machine pushes an account past Orange's limit.

Orange accepts at most 5 SMS per second per account and answers 429 above that. Sends are spaced
evenly (one every 200 ms at 5/s) by *reserving time slots* in a small state file shared by every
process on the machine: holding an exclusive ``flock`` on that file a sender reads the next free
slot, takes it, writes back ``slot + interval`` and unlocks, then sleeps until its slot. That is
the "virtual scheduling" form of GCRA. It is exact (no polling, no sleeps longer than needed),
first come first served across processes, and costs one lock and an 8-byte read/write per send.
The slots live on the wall clock (``time.monotonic`` is not shared between processes), so a free
slot further ahead than the machine's senders could have booked (64 intervals, at least 2 s) is
taken for a clock step back and ignored, and a wait longer than a few intervals is logged.
The lock is taken on the already-open state file (``filelock`` reopens its lock file on every
acquire, which tripled the cost of a send with the limit lifted).

pyrate-limiter was evaluated first; its SQLite bucket, the one that shares a limit across
processes, let one process take every permit while another starved and, in its blocking path,
advanced timestamps virtually so six sends landed in under a second. The slot file keeps the
guarantee this provider needs: never more than ``rate`` sends in any one-second window.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows, where Airflow workers do not run
    fcntl = None  # type: ignore[assignment]
    from filelock import FileLock

# Sends are spaced a little wider than 1/rate so network jitter between the client and Orange cannot
# squeeze six requests into one second on Orange's side. Costs 1% of throughput.
SAFETY_MARGIN = 1.01
#: Rates accepted, sends per second. Below 0.01 (one send every 100 s) a typo is likelier than
#: intent; above 1000 the throttle's own cost would dominate. 0 or ``None`` lifts the limit instead.
MIN_RATE_PER_SECOND = 0.01
MAX_RATE_PER_SECOND = 1000.0
# A free slot further ahead than this many intervals cannot come from the senders of one machine:
# each booking sender holds one slot, so N senders book at most N intervals ahead, and 64 is well
# above an Airflow worker's parallelism. Further means the wall clock stepped back since the slot
# was written (or the state file is corrupt): start over from now.
_MAX_AHEAD_INTERVALS = 64
# ... but never less than this, so a fast rate still tolerates small clock adjustments.
_MIN_MAX_AHEAD_SECONDS = 2.0
# A wait longer than this (and longer than a few intervals) is logged as a WARNING: silent
# minutes-long waits looked like a hung task.
_LONG_WAIT_SECONDS = 5.0
_LONG_WAIT_INTERVALS = 4
_STATE = struct.Struct("<d")
# Waking up later than this after a slot's time counts as late (time.sleep overshoots ~0.1 ms).
_LATE_WAKE_UP = 0.002
# Fresh slots a late sender books before it sends anyway.
_MAX_LATE_ROUNDS = 3
# Next free slot per account, for processes whose state file cannot be used (read-only home).
_LOCAL_SLOTS: dict[str, float] = {}
_LOCAL_SLOTS_LOCK = threading.Lock()

log = logging.getLogger(__name__)


class SendThrottle:
    """
    A machine-wide limiter of sends per second for one Orange account.

    :param rate_per_second: Sends allowed per second (Orange: 5), from 0.01 to 1000.
    :param state_dir: Directory of the shared slot file. Processes that must share the limit must
        use the same directory.
    :param account: What identifies the account (e.g. base URL + client id); hashed into the file
        name so different accounts do not slow each other down.
    """

    def __init__(self, rate_per_second: float, state_dir: str | os.PathLike[str], account: str) -> None:
        if (
            isinstance(rate_per_second, bool)
            or not isinstance(rate_per_second, (int, float))
            or not MIN_RATE_PER_SECOND <= rate_per_second <= MAX_RATE_PER_SECOND  # also refuses NaN
        ):
            raise ValueError(
                f"Invalid rate_per_second {rate_per_second!r}: expected {MIN_RATE_PER_SECOND:g} to "
                f"{MAX_RATE_PER_SECOND:g} sends per second"
            )
        self.rate_per_second = float(rate_per_second)
        self.interval = SAFETY_MARGIN / self.rate_per_second
        #: Furthest ahead of now a booked slot is trusted (seconds).
        self.max_ahead = max(_MIN_MAX_AHEAD_SECONDS, _MAX_AHEAD_INTERVALS * self.interval)
        self._long_wait = max(_LONG_WAIT_SECONDS, _LONG_WAIT_INTERVALS * self.interval)
        self._digest = hashlib.sha256(account.encode()).hexdigest()[:32]
        self._directory = Path(state_dir)
        self._state_path = self._directory / f"throttle-{self._digest}.slot"
        self._lock_path = self._directory / f"throttle-{self._digest}.lock"
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._fd_pid = 0
        self._shared = True

    def __repr__(self) -> str:
        return f"SendThrottle(rate_per_second={self.rate_per_second!r}, state={str(self._state_path)!r})"

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
                    "Orange SMS throttle state %s unusable (%s): the send limit is kept for this "
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

    def reserve(self) -> float:
        """
        Take the next free send slot and return its Unix time (it may be in the past: send now).

        Does not sleep; :meth:`acquire` does.
        """
        with self._thread_lock:
            state_fd = self._state_fd()
            if state_fd is None:
                with _LOCAL_SLOTS_LOCK:
                    slot = self._next_slot(_LOCAL_SLOTS.get(self._digest, 0.0))
                    _LOCAL_SLOTS[self._digest] = slot + self.interval
                return slot
            with self._locked(state_fd) as fd:
                raw = os.pread(fd, _STATE.size, 0)
                slot = self._next_slot(_STATE.unpack(raw)[0] if len(raw) == _STATE.size else 0.0)
                os.pwrite(fd, _STATE.pack(slot + self.interval), 0)
        return slot

    def _next_slot(self, next_free: float) -> float:
        now = time.time()
        if next_free - now > self.max_ahead:
            log.warning(
                "Orange SMS throttle: the next free slot was %.1f s ahead, more than the %.1f s the "
                "senders of one machine can book (the wall clock stepped back?); starting over from now",
                next_free - now,
                self.max_ahead,
            )
            return now
        return max(now, next_free)

    def acquire(self) -> float:
        """
        Block until this caller may send; return the seconds waited.

        A caller woken late from its wait (a loaded machine) does not send in its stale slot: the
        slots after it may already be booked by other senders, and sending late would bunch it with
        them. It books a fresh slot instead (a few rounds at most).
        """
        waited = 0.0
        for _ in range(_MAX_LATE_ROUNDS):
            slot = self.reserve()
            wait = slot - time.time()
            if wait <= 0:
                return waited
            if wait > self._long_wait:
                log.warning(
                    "Orange SMS throttle: waiting %.1f s for a send slot (%g SMS/s shared by every "
                    "process on this machine, state %s)",
                    wait,
                    self.rate_per_second,
                    self._state_path,
                )
            time.sleep(wait)
            waited += wait
            if time.time() - slot <= _LATE_WAKE_UP:
                return waited
        return waited

    def close(self) -> None:
        """Close the state file (a later :meth:`acquire` reopens it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
