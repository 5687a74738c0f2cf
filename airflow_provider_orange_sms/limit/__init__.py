"""The send limit: spacing SMS so no sender pushes an account past Orange's rate, on one machine
(a file lock) or on every machine of a deployment (Redis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.limit.file_limiter import (
        MAX_RATE_PER_SECOND,
        MIN_RATE_PER_SECOND,
        FileSendLimiter,
        SendRecord,
    )
    from airflow_provider_orange_sms.limit.limiter import SendLimiter
    from airflow_provider_orange_sms.limit.redis_limiter import KEY_PREFIX, REDIS_ERRORS, RedisSendLimiter

__all__ = [
    "KEY_PREFIX",
    "MAX_RATE_PER_SECOND",
    "MIN_RATE_PER_SECOND",
    "REDIS_ERRORS",
    "FileSendLimiter",
    "RedisSendLimiter",
    "SendLimiter",
    "SendRecord",
]

#: The module defining each name.
_HOMES = {
    "KEY_PREFIX": "redis_limiter",
    "MAX_RATE_PER_SECOND": "file_limiter",
    "MIN_RATE_PER_SECOND": "file_limiter",
    "REDIS_ERRORS": "redis_limiter",
    "RedisSendLimiter": "redis_limiter",
    "SendLimiter": "limiter",
    "SendRecord": "file_limiter",
    "FileSendLimiter": "file_limiter",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
