"""The OAuth2 access token: credentials, the one shared fetch, and where tokens are kept between
tasks and machines (a file, an Airflow Variable, or Redis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.token.access_token import SharedToken, basic_authorization, client_id_of
    from airflow_provider_orange_sms.token.redis_token_cache import RedisTokenCache
    from airflow_provider_orange_sms.token.token_cache import (
        AccessToken,
        FileTokenCache,
        MemoryTokenCache,
        TokenCache,
        default_cache_dir,
    )
    from airflow_provider_orange_sms.token.variable_token_cache import VariableTokenCache

__all__ = [
    "AccessToken",
    "FileTokenCache",
    "MemoryTokenCache",
    "RedisTokenCache",
    "SharedToken",
    "TokenCache",
    "VariableTokenCache",
    "basic_authorization",
    "client_id_of",
    "default_cache_dir",
]

#: The module defining each name.
_HOMES = {
    "AccessToken": "token_cache",
    "FileTokenCache": "token_cache",
    "MemoryTokenCache": "token_cache",
    "RedisTokenCache": "redis_token_cache",
    "SharedToken": "access_token",
    "TokenCache": "token_cache",
    "VariableTokenCache": "variable_token_cache",
    "basic_authorization": "access_token",
    "client_id_of": "access_token",
    "default_cache_dir": "token_cache",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
