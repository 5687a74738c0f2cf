"""How an Orange SMS connection is read: its settings validated in one place, each extra's reader,
the connection form generated from them, and how the Redis connection (shared by the token store
and the send limit) is reached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.config.connection_config import (
        DEFAULT_BASE_URL,
        DEFAULT_CONNECT_TIMEOUT,
        DEFAULT_MAX_ATTEMPTS,
        DEFAULT_MAX_MESSAGE_LENGTH,
        DEFAULT_RATE_LIMIT_PER_SECOND,
        DEFAULT_READ_TIMEOUT,
        DEFAULT_RETRY_BACKOFF,
        DEFAULT_RETRY_BACKOFF_MAX,
        DEFAULT_TOKEN_FAILURE_TTL,
        DEFAULT_TOKEN_PATH,
        OrangeSMSConfig,
        config_from_connection,
        normalize_base_url,
    )
    from airflow_provider_orange_sms.config.connection_form import form_fields, form_placeholders
    from airflow_provider_orange_sms.config.redis_connection import deployment_fernet, redis_client

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "DEFAULT_RATE_LIMIT_PER_SECOND",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_RETRY_BACKOFF_MAX",
    "DEFAULT_TOKEN_FAILURE_TTL",
    "DEFAULT_TOKEN_PATH",
    "OrangeSMSConfig",
    "config_from_connection",
    "deployment_fernet",
    "form_fields",
    "form_placeholders",
    "normalize_base_url",
    "redis_client",
]

#: The module defining each name.
_HOMES = {
    "DEFAULT_BASE_URL": "connection_config",
    "DEFAULT_CONNECT_TIMEOUT": "connection_config",
    "DEFAULT_MAX_ATTEMPTS": "connection_config",
    "DEFAULT_MAX_MESSAGE_LENGTH": "connection_config",
    "DEFAULT_RATE_LIMIT_PER_SECOND": "connection_config",
    "DEFAULT_READ_TIMEOUT": "connection_config",
    "DEFAULT_RETRY_BACKOFF": "connection_config",
    "DEFAULT_RETRY_BACKOFF_MAX": "connection_config",
    "DEFAULT_TOKEN_FAILURE_TTL": "connection_config",
    "DEFAULT_TOKEN_PATH": "connection_config",
    "OrangeSMSConfig": "connection_config",
    "config_from_connection": "connection_config",
    "deployment_fernet": "redis_connection",
    "form_fields": "connection_form",
    "form_placeholders": "connection_form",
    "normalize_base_url": "connection_config",
    "redis_client": "redis_connection",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
