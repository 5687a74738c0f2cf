"""The send limit: spacing SMS so no sender pushes an account past Orange's rate, on one machine
(a file lock) or on every machine of a deployment (Redis).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_orange_sms.limit.redis_throttle import KEY_PREFIX, REDIS_ERRORS, RedisSendThrottle
    from airflow_provider_orange_sms.limit.throttle import (
        MAX_RATE_PER_SECOND,
        MIN_RATE_PER_SECOND,
        SendLimiter,
        SendRecord,
        SendThrottle,
    )

__all__ = [
    "KEY_PREFIX",
    "MAX_RATE_PER_SECOND",
    "MIN_RATE_PER_SECOND",
    "REDIS_ERRORS",
    "RedisSendThrottle",
    "SendLimiter",
    "SendRecord",
    "SendThrottle",
]

#: The module defining each name.
_HOMES = {
    "KEY_PREFIX": "redis_throttle",
    "MAX_RATE_PER_SECOND": "throttle",
    "MIN_RATE_PER_SECOND": "throttle",
    "REDIS_ERRORS": "redis_throttle",
    "RedisSendThrottle": "redis_throttle",
    "SendLimiter": "throttle",
    "SendRecord": "throttle",
    "SendThrottle": "throttle",
}


def __getattr__(name: str) -> Any:
    """Import the module defining ``name`` on first use: importing the package stays cheap."""
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
