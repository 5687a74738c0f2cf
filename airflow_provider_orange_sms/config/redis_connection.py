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
            f"The Orange SMS connection uses Redis (rate_limit_backend or auth_cache 'redis') but "
            f"apache-airflow-providers-redis is not installed ({exc}): {_INSTALL_HINT}"
        ) from None
    hook = RedisHook(redis_conn_id=redis_conn_id)
    database = _database_of(hook.get_connection(redis_conn_id), redis_conn_id)
    client = hook.get_conn()
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    if isinstance(kwargs, dict):  # not for a cluster client, which keeps them per node
        kwargs.update(socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        if database is not None:
            # RedisHook reads only the extra "db": a URI's /1 (the schema field) would be ignored.
            kwargs["db"] = database
    elif database:
        raise ValueError(
            f"Redis connection {redis_conn_id!r} names database {database}, but Redis in cluster mode "
            "only has database 0"
        )
    with contextlib.suppress(AttributeError):  # redis-py < 4.4
        # One quick retry (a connection dropped while idle), not redis-py 6's backoff of seconds.
        client.set_retry(Retry(NoBackoff(), 1))
    return client


def _database_number(conn_id: str, where: str, value: object) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip() if not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(
            f"Invalid Redis connection {conn_id!r}: {where} holds {value!r}, not a database number (0, 1, 2…)"
        )
    return int(text)


def _database_of(conn: Any, conn_id: str) -> int | None:
    """
    Return the database number an Airflow Redis connection names, or ``None`` when it names none.

    A connection given as a URI (``redis://:password@host:6379/1``) holds the number in its schema
    field; one made in the UI holds it in the extra ``db``. Both may be given when they agree.

    :param conn: The Airflow connection of type ``redis``.
    :param conn_id: Its id, for errors.
    :raises ValueError: When one is not a number, or when they differ, naming both values.
    """
    in_uri = _database_number(conn_id, "the URI path (schema field)", conn.schema)
    extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
    in_extra = _database_number(conn_id, "the extra db", extra.get("db"))
    if in_uri is not None and in_extra is not None and in_uri != in_extra:
        raise ValueError(
            f"Redis connection {conn_id!r} names two databases: {conn.schema!r} in the URI path "
            f"(schema field) and {extra.get('db')!r} in the extra db; keep one, or make them equal"
        )
    return in_uri if in_uri is not None else in_extra


def deployment_fernet() -> Any:
    """
    Return Airflow's Fernet for the deployment's ``[core] fernet_key`` (a no-op one without a key).

    The Task SDK's from Airflow 3.2 (what workers run), the core one before.
    """
    from airflow_provider_orange_sms.version_compat import get_fernet

    return get_fernet()
