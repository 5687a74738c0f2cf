"""One OAuth2 token for every machine of a deployment, kept in Redis.

Keyed like the file cache (:func:`~airflow_provider_orange_sms.token.token_cache.cache_key`: token URL,
client id and secret hashed together), so a changed secret never reuses a token; the secret itself is
never written. The token is encrypted with the deployment's Fernet key when one is configured
(``[core] fernet_key``, the key Airflow encrypts connections and Variables with); without one it is
stored as it is, and anyone who can read that Redis can send SMS on the account until it expires.

One fetcher at a time: redis-py's :class:`redis.lock.Lock` (``SET NX PX``: it expires by itself if
its holder dies) held for one token request, released only by its holder (redis-py's Lua check of
the holder's id). Expiry is kept by Redis (the key's ``PX``) and read back as time left, so machines
whose clocks differ agree on when the token must be refreshed.

A Redis that cannot be reached is not an error here: reads count as "no token" and the client then
fetches a token for its own process (with a WARNING), as it does when the file cache is unusable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import LockNotOwnedError

from airflow_provider_orange_sms.limit import KEY_PREFIX, REDIS_ERRORS
from airflow_provider_orange_sms.token.token_cache import AccessToken, TokenFailure, TokenLockTimeout

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

# Deletes KEYS[1] only if it starts with ARGV[1] (a token's fingerprint): a newer token stays.
_DELETE_IF_OWNED = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# How often a waiter polls a busy token lock (a token request takes tens of milliseconds).
_LOCK_POLL_SECONDS = 0.02
# Lock expiry when the caller sets no timeout: longer than one token request's worst case.
_DEFAULT_LOCK_EXPIRY_SECONDS = 60.0


class Encryptor(Protocol):
    """What is needed from a Fernet (Airflow's ``get_fernet()``): encrypt, decrypt, and whether it does."""

    is_encrypted: bool

    def encrypt(self, msg: bytes) -> bytes:
        """Encrypt ``msg``."""

    def decrypt(self, msg: bytes | str, ttl: int | None = None) -> bytes:
        """Decrypt ``msg``."""


class RedisTokenCache:
    """
    Tokens shared through Redis by every machine of the deployment.

    :param redis: A ``redis.Redis`` client (from Airflow's ``RedisHook``); connected lazily.
    :param encryptor: Airflow's Fernet (``get_fernet()``); ``None`` or one without a key stores the
        token unencrypted (a WARNING says so).
    :param where: How the Redis is named in logs (its Airflow connection id).
    """

    def __init__(self, redis: Any, encryptor: Encryptor | None = None, *, where: str = "redis") -> None:
        self._redis = redis
        self._encryptor = encryptor if encryptor is not None and encryptor.is_encrypted else None
        self.where = where
        self._delete_if_owned = redis.register_script(_DELETE_IF_OWNED)
        self._warned_unreachable = False
        if self._encryptor is None:
            log.warning(
                "No Fernet key configured ([core] fernet_key): the Orange SMS access token is stored "
                "in Redis (%s) unencrypted; anyone who can read that Redis can send SMS on the account "
                "until the token expires",
                where,
            )

    def __repr__(self) -> str:
        return f"RedisTokenCache(redis={self.where!r}, encrypted={self._encryptor is not None})"

    @staticmethod
    def token_key(key: str) -> str:
        """
        Return the Redis key holding the token for cache ``key``.

        :param key: Cache key from :func:`~airflow_provider_orange_sms.token.token_cache.cache_key`.
        """
        return f"{KEY_PREFIX}:token:{key}"

    def _unreachable(self, exc: BaseException) -> None:
        if not self._warned_unreachable:
            log.warning(
                "Orange SMS token cache: Redis (%s) cannot be reached (%s: %s); this process fetches "
                "its own token meanwhile",
                self.where,
                type(exc).__name__,
                exc,
            )
            self._warned_unreachable = True

    @staticmethod
    def _fingerprint(access_token: str) -> str:
        return hashlib.sha256(access_token.encode()).hexdigest()[:16] + ":"

    def _seal(self, data: dict[str, Any]) -> str:
        raw = json.dumps(data).encode()
        return (self._encryptor.encrypt(raw) if self._encryptor is not None else raw).decode()

    def _open(self, sealed: str) -> Any:
        raw = sealed.encode()
        if self._encryptor is not None:
            raw = self._encryptor.decrypt(raw)
        return json.loads(raw)

    def _read_live(self, redis_key: str) -> tuple[Any, int] | None:
        """Return a key's value and milliseconds left; ``None`` when absent, expired or Redis is down."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(redis_key)
            pipe.pttl(redis_key)
            value, left_ms = pipe.execute()
        except REDIS_ERRORS as exc:
            self._unreachable(exc)
            return None
        if value is None or left_ms is None or left_ms <= 0:
            return None
        return value, int(left_ms)

    def get(self, key: str) -> AccessToken | None:
        """
        Return the shared token for ``key``; none stored, unreadable or Redis down count as none.

        :param key: Cache key.
        """
        stored = self._read_live(self.token_key(key))
        if stored is None:
            return None
        value, left_ms = stored
        try:
            text = value.decode() if isinstance(value, bytes) else str(value)
            data = self._open(text.split(":", 1)[1])  # after the token's fingerprint
            expires_at = time.time() + left_ms / 1000
            # Rebuilt on this machine's clock from the time left that Redis keeps.
            return AccessToken.from_dict(
                {
                    "access_token": data["access_token"],
                    "token_type": data.get("token_type", "Bearer"),
                    "expires_at": expires_at,
                    "refresh_at": expires_at - float(data["refresh_before"]),
                }
            )
        except Exception:  # another Fernet key, a value written by hand: fetch a new token
            log.warning(
                "Orange SMS token cache: the token in Redis (%s) is unreadable; fetching a new one",
                self.where,
            )
            return None

    def set(self, key: str, token: AccessToken) -> None:
        """
        Store ``token`` until it expires (encrypted when a Fernet key is configured).

        :param key: Cache key.
        :param token: The token to share.
        """
        left_ms = int((token.expires_at - time.time()) * 1000)
        if left_ms <= 0:
            return
        sealed = self._seal(
            {
                "access_token": token.access_token,
                "token_type": token.token_type,
                "refresh_before": token.expires_at - token.refresh_at,
            }
        )
        self._redis.set(self.token_key(key), self._fingerprint(token.access_token) + sealed, px=left_ms)

    def delete(self, key: str, token: AccessToken) -> None:
        """
        Forget ``token`` if it is still the one stored (another machine may have refreshed it).

        :param key: Cache key.
        :param token: The token Orange refused.
        """
        self._delete_if_owned(keys=[self.token_key(key)], args=[self._fingerprint(token.access_token)])

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """
        Hold the deployment-wide lock for one token request for ``key``.

        It expires by itself after ``timeout`` seconds (60 without one), so a holder that died does
        not block the others for longer; it is released only by its holder.

        :param key: Cache key.
        :param timeout: Longest wait in seconds (``None``: no limit); then :class:`TokenLockTimeout`.
        """
        # redis-py's Lock takes it with SET <key> <random id> NX PX <expiry>, as this provider's own
        # lock did before it: the key is unchanged, so machines still running the older version
        # during a rolling upgrade and this one exclude each other.
        lock = self._redis.lock(
            f"{KEY_PREFIX}:token-lock:{key}",
            timeout=timeout if timeout else _DEFAULT_LOCK_EXPIRY_SECONDS,  # the key's PX
            sleep=_LOCK_POLL_SECONDS,
            # redis-py gives up when its next try would fall past this bound: one poll more makes
            # its last try the first one once ``timeout`` has passed, as before.
            blocking_timeout=None if timeout is None else timeout + _LOCK_POLL_SECONDS,
            thread_local=False,  # this call's own Lock: its id need not hide from other threads
        )
        if not lock.acquire(token=uuid.uuid4().hex):
            raise TokenLockTimeout(f"the Orange SMS token lock in Redis was busy for {timeout:g} s")
        try:
            yield
        finally:
            try:
                lock.release()
            except LockNotOwnedError:
                # It expired while held and another machine may hold it now: theirs stays.
                log.debug("Orange SMS token lock in Redis (%s) expired before its release", self.where)
            except REDIS_ERRORS:
                pass  # unreachable now: the lock expires by itself

    # -- failures --------------------------------------------------------------------------------

    @staticmethod
    def failure_key(key: str) -> str:
        """
        Return the Redis key remembering a failed token request for cache ``key``.

        :param key: Cache key.
        """
        return f"{KEY_PREFIX}:token-failure:{key}"

    def get_failure(self, key: str) -> TokenFailure | None:
        """
        Return the failed token request another machine met for ``key``, if still remembered.

        :param key: Cache key.
        """
        stored = self._read_live(self.failure_key(key))
        if stored is None:
            return None
        value, left_ms = stored
        try:
            data = json.loads(value)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return TokenFailure.from_dict({**data, "until": time.time() + left_ms / 1000})

    def set_failure(self, key: str, failure: TokenFailure) -> None:
        """
        Remember a failed token request for every machine until ``failure.until``.

        :param key: Cache key.
        :param failure: What failed (its message holds no secret).
        """
        left_ms = int((failure.until - time.time()) * 1000)
        if left_ms > 0:
            data = {"message": failure.message, "auth": failure.auth, "owner": failure.owner}
            self._redis.set(self.failure_key(key), json.dumps(data), px=left_ms)

    def clear_failure(self, key: str) -> None:
        """
        Forget the failed token request for ``key`` (a token was fetched since).

        :param key: Cache key.
        """
        self._redis.delete(self.failure_key(key))
