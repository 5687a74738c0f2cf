"""Tokens kept in Airflow Variables: the token store for workers on several machines without Redis.

Its public import path is :mod:`airflow_provider_orange_sms.hooks.orange_sms`.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict

from airflow_provider_orange_sms.token.token_cache import AccessToken, FileTokenCache, TokenFailure


class VariableTokenCache:
    """
    Tokens kept in Airflow Variables, for deployments whose workers run on several machines.

    Every worker then reuses the token one of them fetched. Variables have no compare-and-set, so
    the lock around a fetch is per machine (a file lock): in the worst case each machine fetches
    once when the token expires. The token is stored under ``orange_sms_token_<hash>``; configure
    a Fernet key so Airflow encrypts Variable values at rest.

    :param lock_dir: Directory for the per-machine lock files.
    """

    def __init__(self, lock_dir: str | None = None) -> None:
        self._machine_locks = FileTokenCache(lock_dir)

    @staticmethod
    def variable_key(key: str) -> str:
        """
        Return the name of the Variable holding the token for cache ``key``.

        :param key: Cache key from :func:`~airflow_provider_orange_sms.token.token_cache.cache_key`.
        """
        return f"orange_sms_token_{key[:32]}"

    def get(self, key: str) -> AccessToken | None:
        """
        Return the token stored in the Variable, if any (an unreadable one counts as none).

        :param key: Cache key.
        """
        from airflow.sdk import Variable

        try:
            data = Variable.get(self.variable_key(key), default=None, deserialize_json=True)
        except Exception:
            return None
        return AccessToken.from_dict(data)

    def set(self, key: str, token: AccessToken) -> None:
        """
        Store ``token`` in the Variable.

        :param key: Cache key.
        :param token: The token to share.
        """
        from airflow.sdk import Variable

        Variable.set(
            self.variable_key(key),
            asdict(token),
            description="Orange SMS API access token cache (airflow-provider-orange-sms)",
            serialize_json=True,
        )

    def delete(self, key: str, token: AccessToken) -> None:
        """
        Delete the Variable if it still holds ``token`` (another worker may have refreshed it).

        :param key: Cache key.
        :param token: The token Orange refused.
        """
        from airflow.sdk import Variable

        if self.get(key) == token:
            with contextlib.suppress(Exception):
                Variable.delete(self.variable_key(key))

    def lock(self, key: str, timeout: float | None = None) -> contextlib.AbstractContextManager[object]:
        """
        Return a per-machine file lock, held while one process requests a token.

        :param key: Cache key from :func:`~airflow_provider_orange_sms.token.token_cache.cache_key`.
        :param timeout: Longest wait in seconds (``None``: no limit).
        """
        return self._machine_locks.lock(key, timeout)

    def get_failure(self, key: str) -> TokenFailure | None:
        """
        Return the failed token request remembered on this machine for ``key``, if any.

        :param key: Cache key.
        """
        return self._machine_locks.get_failure(key)

    def set_failure(self, key: str, failure: TokenFailure) -> None:
        """
        Remember a failed token request on this machine (not in a Variable: it is short-lived).

        :param key: Cache key.
        :param failure: What failed and until when to remember it.
        """
        self._machine_locks.set_failure(key, failure)

    def clear_failure(self, key: str) -> None:
        """
        Forget the failed token request for ``key`` on this machine.

        :param key: Cache key.
        """
        self._machine_locks.clear_failure(key)
