"""
One log line per problem, not per receipt: the receiver's repeated warnings are rate-limited.

At production volume a lasting problem (no DAG declares the asset, a locked database) would
otherwise print the same line for every receipt. :class:`RepeatLimiter` lets the first occurrence
of each problem through, then at most one line per interval saying how many were left out.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any


class RepeatLimiter:
    """
    Decide which occurrences of a recurring problem get logged.

    :param interval: Seconds between two lines about the same problem; ``math.inf`` for once per
        process.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[object, float] = {}
        self._skipped: dict[object, int] = {}

    def allow(self, problem: object) -> int | None:
        """
        Whether to log this occurrence of ``problem``.

        Returns None to stay silent, else how many occurrences were left out since the last line.

        :param problem: Any hashable key naming the problem (not the receipt).
        """
        now = time.monotonic()
        with self._lock:
            last = self._last.get(problem)
            if last is not None and now - last < self.interval:
                self._skipped[problem] = self._skipped.get(problem, 0) + 1
                return None
            self._last[problem] = now
            return self._skipped.pop(problem, 0)


class OnceLogger:
    """
    Wrap a (structlog or stdlib) logger: warnings whose message starts with one of ``prefixes``
    are logged once per process and their arguments; everything else passes through.

    :param logger: The wrapped logger.
    :param prefixes: Messages to log only once.
    """

    def __init__(self, logger: Any, prefixes: tuple[str, ...]) -> None:
        self._logger = logger
        self._prefixes = prefixes
        self._limiter = RepeatLimiter(math.inf)

    def warning(self, event: str, *args: Any, **kwargs: Any) -> Any:
        """Log, unless this message with these arguments was already logged."""
        if event.startswith(self._prefixes) and self._limiter.allow((event, repr(args))) is None:
            return None
        return self._logger.warning(event, *args, **kwargs)

    warn = warning

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)
