"""Where OAuth2 access tokens are kept between hook instances, tasks and processes.

Orange caps token requests (about 50 a minute) and a token lives for an hour or more, so one
token is fetched per set of credentials and shared. A cache is looked up by a key derived from
the token URL, the client id *and* the secret, so a changed or wrong secret never reuses an old
token. The secret itself is never stored.

* :class:`FileTokenCache` (default) - a private JSON file per key (mode 0600) in the user's cache
  directory, with a file lock around the fetch so processes started at the same moment still
  make one request. Shared by every process of one user on one machine.
* :class:`MemoryTokenCache` - this process only (used when caching is disabled: each client
  instance then keeps its own token).

The hook adds a cache backed by an Airflow Variable for deployments spanning several machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import platformdirs
from filelock import FileLock

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Environment variable that moves the cache directory (token files and throttle state).
CACHE_DIR_ENV = "ORANGE_SMS_CACHE_DIR"


def default_cache_dir() -> Path:
    """Return the directory for token files and throttle state (``$ORANGE_SMS_CACHE_DIR`` wins)."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
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
    """What the client needs from a token store."""

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

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        """
        Return a context manager held while one caller fetches a new token for ``key``.

        :param key: Cache key from :func:`cache_key`.
        """


class MemoryTokenCache:
    """Tokens kept in this process only. Thread safe."""

    def __init__(self) -> None:
        self._tokens: dict[str, AccessToken] = {}
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

    def delete(self, key: str, token: AccessToken) -> None:
        """
        Forget ``token`` under ``key`` if it is still the one stored.

        :param key: Cache key from :func:`cache_key`.
        :param token: The token Orange refused.
        """
        with self._guard:
            if self._tokens.get(key) == token:
                del self._tokens[key]

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        """
        Return the per-key thread lock.

        :param key: Cache key from :func:`cache_key`.
        """
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class FileTokenCache:
    """
    Tokens in private files, shared by every process of the user on this machine.

    :param directory: Where the files go (created with mode 0700). Defaults to
        :func:`default_cache_dir`.
    """

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
            return AccessToken(**data)
        except (OSError, ValueError, TypeError):
            return None

    def set(self, key: str, token: AccessToken) -> None:
        """
        Write ``token`` atomically to a file only the user can read.

        :param key: Cache key from :func:`cache_key`.
        :param token: The token to share.
        """
        self._ensure_dir()
        path = self._path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(asdict(token), fh)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, key: str, token: AccessToken) -> None:
        """
        Remove the file if it still holds ``token`` (another process may have refreshed it).

        :param key: Cache key from :func:`cache_key`.
        :param token: The token Orange refused.
        """
        with self.lock(key):
            if self.get(key) == token:
                with contextlib.suppress(FileNotFoundError):
                    self._path(key).unlink()

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """
        Hold an inter-process file lock for ``key``.

        :param key: Cache key from :func:`cache_key`.
        """
        self._ensure_dir()
        with FileLock(str(self.directory / f"token-{key}.lock"), mode=0o600):
            yield
