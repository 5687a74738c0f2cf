"""The provider's settings and their defaults, each defined once.

Cheap to import (standard library only): :func:`~airflow_provider_orange_sms.get_provider_info.
get_provider_info` reads the defaults from here for the connection form.
"""

from __future__ import annotations

from airflow_provider_orange_sms.addresses import DEFAULT_MAX_MESSAGE_LENGTH

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "DEFAULT_RATE_LIMIT_PER_SECOND",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_TOKEN_FAILURE_TTL",
    "DEFAULT_TOKEN_PATH",
]

DEFAULT_BASE_URL = "https://api.orange.com"
DEFAULT_TOKEN_PATH = "/oauth/v3/token"
#: Orange's per-account limit.
DEFAULT_RATE_LIMIT_PER_SECOND = 5.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_BACKOFF = 1.0
# Long enough that a burst of tasks started together sees the first one's failure, short enough
# that a fixed endpoint or corrected secret is picked up by the next task retry.
DEFAULT_TOKEN_FAILURE_TTL = 30.0
