"""Where OAuth2 access tokens are kept between hook instances, tasks and processes.

Orange caps token requests (about 50 a minute) and a token lives for an hour or more, so one
token is fetched per set of credentials and shared. A cache is looked up by a key derived from
the token URL, the client id *and* the secret, so a changed or wrong secret never reuses an old
token. The secret itself is never stored.

* :class:`FileTokenCache` (default) - a private JSON file per key (mode 0600) in the user's cache
  directory, with a file lock around each token request so processes started at the same moment
  still make one request. Shared by every process of one user on one machine.

The lock is held for one HTTP attempt at a time (never across retry backoffs) and waited for only
so long (:class:`TokenLockTimeout`). A failed token request is remembered for a few tens of
seconds (:class:`TokenFailure`, next to the token file) so that, while the token endpoint is down
or the credentials are wrong, other processes fail fast instead of each paying the full retry
budget.

* :class:`MemoryTokenCache` - this process only (used when caching is disabled: each client
  instance then keeps its own token).

The hook adds a cache backed by an Airflow Variable for deployments spanning several machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

# platformdirs and filelock are imported where they are used (the cache directory, a token fetch):
# importing the hook then costs neither.
if TYPE_CHECKING:
    from collections.abc import Iterator

#: Environment variable that moves the cache directory (token files and limiter state).
CACHE_DIR_ENV = "ORANGE_SMS_CACHE_DIR"


def default_cache_dir() -> Path:
    """Return the directory for token files and limiter state (``$ORANGE_SMS_CACHE_DIR`` wins)."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("airflow-provider-orange-sms"))


@dataclass(frozen=True)
class AccessToken:
    """
    An OAuth2 bearer token and when it stops being usable.

    :param access_token: The bearer token.
    :param expires_at: Unix time (seconds) at which Orange stops accepting it.
    :param refresh_at: Unix time after which a new token is fetched: a little before expiry, so a
        request never leaves with a token that expires on the way.
    :param token_type: Normally ``Bearer``.
    """

    access_token: str
    expires_at: float
    refresh_at: float
    token_type: str = "Bearer"

    def __repr__(self) -> str:
        return f"AccessToken(access_token='***', expires_at={self.expires_at!r})"

    @classmethod
    def from_dict(cls, data: object) -> AccessToken | None:
        """
        Rebuild a stored token, or return ``None`` when ``data`` is not a well-formed one.

        A cache written by hand or by another version (``"expires_at": "soon"``) then counts as
        no token, and a new one is fetched, instead of failing every send.

        :param data: What a cache stored (``asdict`` of a token).
        """
        if not isinstance(data, dict):
            return None
        token, token_type = data.get("access_token"), data.get("token_type", "Bearer")
        times = (data.get("expires_at"), data.get("refresh_at"))
        if not isinstance(token, str) or not token or not isinstance(token_type, str):
            return None
        if not all(_finite_number(value) for value in times):
            return None
        return cls(token, float(times[0]), float(times[1]), token_type)  # type: ignore[arg-type]

    @classmethod
    def from_lifetime(cls, access_token: str, expires_in: float, token_type: str = "Bearer") -> AccessToken:
        """
        Build a token that Orange said lives ``expires_in`` seconds from now.

        It is refreshed 10% of its lifetime before expiry, at most 5 minutes before.

        :param access_token: The bearer token.
        :param expires_in: Lifetime in seconds, as the token endpoint answered it.
        :param token_type: Normally ``Bearer``.
        """
        now = time.time()
        margin = min(300.0, expires_in * 0.1)
        return cls(access_token, now + expires_in, now + expires_in - margin, token_type)

    def is_fresh(self, now: float | None = None) -> bool:
        """
        Return whether the token can still be used without refreshing it.

        :param now: Current Unix time (defaults to ``time.time()``).
        """
        return (time.time() if now is None else now) < self.refresh_at


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class TokenLockTimeout(TimeoutError):
    """Waited too long for another process to finish its token request."""


@dataclass(frozen=True)
class TokenFailure:
    """
    A token request that failed, remembered until ``until`` so other callers fail fast.

    :param until: Unix time after which it is forgotten.
    :param message: The error's text (never a secret).
    :param auth: Whether the credentials were rejected (not worth retrying) or the endpoint failed.
    :param owner: Who failed (one id per fetch), so its own retries are not stopped by it.
    """

    until: float
    message: str
    auth: bool
    owner: str

    @classmethod
    def from_dict(cls, data: object) -> TokenFailure | None:
        """
        Rebuild a stored failure, or ``None`` when ``data`` is not a well-formed one.

        :param data: What a cache stored.
        """
        if not isinstance(data, dict) or not _finite_number(data.get("until")):
            return None
        message, auth, owner = data.get("message"), data.get("auth"), data.get("owner")
        if not isinstance(message, str) or not isinstance(auth, bool) or not isinstance(owner, str):
            return None
        return cls(float(data["until"]), message, auth, owner)

    def is_active(self, now: float | None = None) -> bool:
        """
        Whether it is still remembered.

        :param now: Current Unix time (defaults to ``time.time()``).
        """
        return (time.time() if now is None else now) < self.until


def cache_key(token_url: str, client_id: str, client_secret: str) -> str:
    """
    Return the cache key for one set of credentials: a SHA-256 of URL, id and secret.

    :param token_url: Full URL of the token endpoint.
    :param client_id: OAuth2 client id.
    :param client_secret: OAuth2 client secret (only its hash ends up in the key).
    """
    material = "\0".join((token_url, client_id, client_secret)).encode()
    return hashlib.sha256(material).hexdigest()


class TokenCache(Protocol):
    """
    What the client needs from a token store: the token, a lock around each token request, and the
    failed request remembered for a short while (see :class:`TokenFailure`).
    """

    def get(self, key: str) -> AccessToken | None:
        """
        Return the stored token for ``key``, if any.

        :param key: Cache key from :func:`cache_key`.
        """

    def set(self, key: str, token: AccessToken) -> None:
        """
        Store ``token`` under ``key``.

        :param key: Cache key from :func:`cache_key`.
        :param token: The token to share.
        """

    def delete(self, key: str, token: AccessToken) -> None:
        """
        Forget ``token`` under ``key``, only if it is still the one stored.

        :param key: Cache key from :func:`cache_key`.
        :param token: The token Orange refused.
        """

    def lock(self, key: str, timeout: float | None = None) -> contextlib.AbstractContextManager[object]:
        """
        Return a context manager held while one caller requests a new token for ``key``.

        :param key: Cache key from :func:`cache_key`.
        :param timeout: Longest wait in seconds (``None``: no limit); then :class:`TokenLockTimeout`.
        """

    def get_failure(self, key: str) -> TokenFailure | None:
        """
        Return the failed token request remembered for ``key``, if any (active or not).

        :param key: Cache key from :func:`cache_key`.
        """

    def set_failure(self, key: str, failure: TokenFailure) -> None:
        """
        Remember a failed token request for ``key``, so other callers fail fast until it ends.

        :param key: Cache key from :func:`cache_key`.
        :param failure: What failed and until when to remember it.
        """

    def clear_failure(self, key: str) -> None:
        """
        Forget the failed token request for ``key`` (a token was fetched since).

        :param key: Cache key from :func:`cache_key`.
        """


class MemoryTokenCache:
    """Tokens kept in this process only. Thread safe."""

    def __init__(self) -> None:
        self._tokens: dict[str, AccessToken] = {}
        self._failures: dict[str, TokenFailure] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> AccessToken | None:
        """
        Return the stored token for ``key``, if any.

        :param key: Cache key from :func:`cache_key`.
        """
        return self._tokens.get(key)

    def set(self, key: str, token: AccessToken) -> None:
        """
        Store ``token`` under ``key``.

        :param key: Cache key from :func:`cache_key`.
        :param token: The token to share.
        """
        self._tokens[key] = token

    def get_failure(self, key: str) -> TokenFailure | None:
        """
        Return the remembered failed token request for ``key``, if any.

        :param key: Cache key from :func:`cache_key`.
        """
        return self._failures.get(key)

    def set_failure(self, key: str, failure: TokenFailure) -> None:
        """
        Remember a failed token request for ``key``.

        :param key: Cache key from :func:`cache_key`.
        :param failure: What failed and until when to remember it.
        """
        self._failures[key] = failure

    def clear_failure(self, key: str) -> None:
        """
        Forget the failed token request for ``key`` (a token was fetched since).

        :param key: Cache key from :func:`cache_key`.
        """
        self._failures.pop(key, None)

    def delete(self, key: str, token: AccessToken) -> None:
        """
        Forget ``token`` under ``key`` if it is still the one stored.

        :param key: Cache key from :func:`cache_key`.
        :param token: The token Orange refused.
        """
        with self._guard:
            if self._tokens.get(key) == token:
                del self._tokens[key]

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """
        Hold the per-key thread lock.

        :param key: Cache key from :func:`cache_key`.
        :param timeout: Longest wait in seconds (``None``: no limit); then :class:`TokenLockTimeout`.
        """
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TokenLockTimeout(f"the Orange SMS token lock was busy for {timeout:g} s")
        try:
            yield
        finally:
            lock.release()


class FileTokenCache:
    """
    Tokens in private files, shared by every process of the user on this machine.

    :param directory: Where the files go (created with mode 0700). Defaults to
        :func:`default_cache_dir`.
    """

    #: Longest wait for the lock in :meth:`delete`: a token that cannot be dropped then is refused
    #: by Orange again and dropped later; waiting behind a stalled request would be worse.
    delete_lock_timeout = 10.0

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def __repr__(self) -> str:
        return f"FileTokenCache(directory={str(self.directory)!r})"

    def _path(self, key: str) -> Path:
        return self.directory / f"token-{key}.json"

    def _ensure_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def get(self, key: str) -> AccessToken | None:
        """
        Return the stored token for ``key``; a missing or unreadable file counts as none.

        :param key: Cache key from :func:`cache_key`.
        """
        try:
            data = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return AccessToken.from_dict(data)

    def _failure_path(self, key: str) -> Path:
        return self.directory / f"token-{key}.failed"

    def get_failure(self, key: str) -> TokenFailure | None:
        """
        Return the remembered failed token request for ``key``; an unreadable file counts as none.

        :param key: Cache key from :func:`cache_key`.
        """
        try:
            data = json.loads(self._failure_path(key).read_text())
        except (OSError, ValueError):
            return None
        return TokenFailure.from_dict(data)

    def set_failure(self, key: str, failure: TokenFailure) -> None:
        """
        Remember a failed token request for ``key``, for every process on the machine.

        :param key: Cache key from :func:`cache_key`.
        :param failure: What failed and until when to remember it.
        """
        self._ensure_dir()
        self._write_json(self._failure_path(key), asdict(failure))

    def clear_failure(self, key: str) -> None:
        """
        Forget the failed token request for ``key`` (a token was fetched since).

        :param key: Cache key from :func:`cache_key`.
        """
        with contextlib.suppress(FileNotFoundError):
            self._failure_path(key).unlink()

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def set(self, key: str, token: AccessToken) -> None:
        """
        Write ``token`` atomically to a file only the user can read.

        :param key: Cache key from :func:`cache_key`.
        :param token: The token to share.
        """
        self._ensure_dir()
        self._write_json(self._path(key), asdict(token))

    def delete(self, key: str, token: AccessToken) -> None:
        """
        Remove the file if it still holds ``token`` (another process may have refreshed it).

        :param key: Cache key from :func:`cache_key`.
        :param token: The token Orange refused.
        """
        with self.lock(key, timeout=self.delete_lock_timeout):
            if self.get(key) == token:
                with contextlib.suppress(FileNotFoundError):
                    self._path(key).unlink()

    def lock_path(self, key: str) -> Path:
        """
        Return the path of the inter-process lock file for ``key``.

        :param key: Cache key from :func:`cache_key`.
        """
        return self.directory / f"token-{key}.lock"

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """
        Hold an inter-process file lock for ``key``.

        :param key: Cache key from :func:`cache_key`.
        :param timeout: Longest wait in seconds (``None``: no limit); then :class:`TokenLockTimeout`.
        """
        from filelock import FileLock
        from filelock import Timeout as FileLockTimeout

        self._ensure_dir()
        lock = FileLock(str(self.lock_path(key)), mode=0o600, timeout=-1 if timeout is None else timeout)
        try:
            lock.acquire()
        except FileLockTimeout:
            raise TokenLockTimeout(f"the Orange SMS token lock was busy for {timeout:g} s") from None
        try:
            yield
        finally:
            lock.release()
