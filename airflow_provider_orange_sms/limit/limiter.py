"""What the client needs from a limiter of sends per second (:class:`SendLimiter`), the slot it
books (:class:`Booking`), and the answer times both limiters judge late answers by
(:class:`LateAnswers`). The limiters: :mod:`~airflow_provider_orange_sms.limit.file_limiter` (one
machine) and :mod:`~airflow_provider_orange_sms.limit.redis_limiter` (every machine of a deployment).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Booking:
    """
    A send slot taken from a limiter.

    :param slot: When the send may go, on the limiter's shared clock (seconds). For a sender that
        kept its turn (:func:`~airflow_provider_orange_sms.limit.file_limiter.keep_turn`), when it was let go.
    :param deadline: The same instant on the clock the limiter sleeps with.
    :param mode: Which limiter booked it: ``file`` (this machine's state file), ``process`` (this
        process only), ``redis`` (every machine sharing the Redis).
    """

    slot: float
    deadline: float
    mode: str


class SendLimiter(Protocol):
    """What the client needs from a limiter of sends per second."""

    rate_per_second: float
    #: When the last send was let go, on the limiter's shared clock (``None`` before the first).
    last_release: float | None

    def book(self) -> Booking:
        """Take the next free send slot without waiting for it."""

    def wait(self, booking: Booking, before_send: Callable[[], object] | None = None) -> float:
        """
        Sleep until the booked slot (keeping the turn when woken late); return the seconds waited.

        :param booking: What :meth:`book` returned.
        :param before_send: Work to run at the end of the wait, before the slot is used
            (:class:`~airflow_provider_orange_sms.limit.file_limiter.EarlyWork`); if it raises, the
            wait ends there.
        """

    def answered(self, after: float) -> None:
        """
        Take in that the answer to the send just let go came ``after`` seconds after its release
        (see :func:`~airflow_provider_orange_sms.limit.file_limiter.answer_push`).

        :param after: Seconds from the end of :meth:`wait` to the answer.
        """

    def acquire(self) -> float:
        """Book a slot and wait for it; return the seconds waited."""

    def close(self) -> None:
        """Release what the limiter holds (files, connections)."""


class LateAnswers:
    """
    A limiter's recent answer times, and the answers that came late enough to push slots back.

    The network's own round trip (tens of milliseconds to a distant Orange) delays every answer
    alike and moves no arrival closer to another: only an answer later than the fastest of the last
    :data:`HISTORY` counts as late, by the difference.
    """

    #: Answers whose fastest is the usual round trip.
    HISTORY = 64

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.HISTORY)
        #: Answers that pushed the unbooked slots back.
        self.count = 0
        #: Seconds pushed in total.
        self.pushed = 0.0

    def lateness(self, answered_after: float) -> float:
        """
        Take in an answer; return how much later it came than the fastest recent one.

        :param answered_after: Seconds from the send's release to its answer.
        """
        self._recent.append(answered_after)
        return answered_after - min(self._recent)

    def add(self, push: float, where: str) -> None:
        """
        Count one push; the 1st, every 10th up to 100, then every 100th are logged at INFO.

        :param push: Its seconds.
        :param where: Which limiter.
        """
        self.count += 1
        self.pushed += push
        if self.count == 1 or self.count % (10 if self.count <= 100 else 100) == 0:
            self.log(where)

    def log(self, where: str) -> None:
        """
        Log the pushes, if any, at INFO (they explain a pace below the limit).

        :param where: Which limiter.
        """
        if self.count:
            log.info(
                "Orange SMS send limit (%s): %d answer(s) so far came late enough that the next sends "
                "were held back, %.0f ms in total, so that Orange never counts more than its limit in a "
                "window",
                where,
                self.count,
                1000 * self.pushed,
            )
