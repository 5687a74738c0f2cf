"""The send limit: spacing SMS so no sender pushes an account past Orange's rate, on one machine
(a file lock) or on every machine of a deployment (Redis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.limit.limiter import SendLimiter
    from airflow_provider_orange_sms.limit.redis_throttle import KEY_PREFIX, REDIS_ERRORS, RedisSendThrottle
    from airflow_provider_orange_sms.limit.throttle import (
        MAX_RATE_PER_SECOND,
        MIN_RATE_PER_SECOND,
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
    "SendLimiter": "limiter",
    "SendRecord": "throttle",
    "SendThrottle": "throttle",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
