"""Redis for the shared send limit and token cache, reached through Airflow's own Redis provider.

The Redis is an Airflow connection of type ``redis`` (``apache-airflow-providers-redis``, installed
with ``pip install "airflow-provider-orange-sms[redis]"``), named by the Orange SMS connection's
``redis_conn_id`` extra (``redis_default`` by default).
"""

from __future__ import annotations

import contextlib
from typing import Any

# Seconds to connect to Redis and to wait for an answer. RedisHook sets neither (redis-py before 6
# then waits forever); a send must not hang on a blackholed Redis, it falls back instead.
REDIS_TIMEOUT_SECONDS = 2.0
_INSTALL_HINT = 'pip install "airflow-provider-orange-sms[redis]"'


def redis_client(redis_conn_id: str) -> Any:
    """
    Return the ``redis.Redis`` client of an Airflow Redis connection (connected on first use).

    :param redis_conn_id: Id of an Airflow connection of type ``redis``.
    :raises ImportError: When apache-airflow-providers-redis is not installed, saying how to install it.
    """
    try:
        from airflow.providers.redis.hooks.redis import RedisHook
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise ImportError(
            f"The Orange SMS connection uses Redis (rate_limit_backend or token_cache 'redis') but "
            f"apache-airflow-providers-redis is not installed ({exc}): {_INSTALL_HINT}"
        ) from None
    client = RedisHook(redis_conn_id=redis_conn_id).get_conn()
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    if isinstance(kwargs, dict):  # not for a cluster client, which keeps them per node
        kwargs.update(socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
    with contextlib.suppress(AttributeError):  # redis-py < 4.4
        # One quick retry (a connection dropped while idle), not redis-py 6's backoff of seconds.
        client.set_retry(Retry(NoBackoff(), 1))
    return client


def deployment_fernet() -> Any:
    """
    Return Airflow's Fernet for the deployment's ``[core] fernet_key`` (a no-op one without a key).

    The Task SDK's from Airflow 3.2 (what workers run), the core one before.
    """
    try:
        from airflow.sdk.crypto import get_fernet
    except ImportError:  # Airflow < 3.2
        from airflow.models.crypto import get_fernet
    return get_fernet()
