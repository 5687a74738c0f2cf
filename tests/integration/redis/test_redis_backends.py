"""The send limit and the token shared through a real redis-server, and what happens when
Redis goes away or restarts in the middle of a batch."""

from __future__ import annotations

import base64
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.limit.file_limiter import LATE_WAKE_UP, FileSendLimiter
from airflow_provider_orange_sms.limit.redis_limiter import RedisSendLimiter, slot_key
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from airflow_provider_orange_sms.token.redis_token_cache import RedisTokenCache
from airflow_provider_orange_sms.token.token_cache import AccessToken, TokenLockTimeout, cache_key
from tests.support.redis_server import RedisServer, redis_client, running_redis
from tests.support.sandbox import FAST_RETRY, connection_json, jitter_tolerant, send_requests

ACCOUNT = "http://sandbox\0client"


class _Fernet:
    """Airflow's Fernet wrapper, as ``get_fernet()`` returns it with a key configured."""

    is_encrypted = True

    def __init__(self) -> None:
        self._fernet = Fernet(Fernet.generate_key())

    def encrypt(self, msg: bytes) -> bytes:
        return self._fernet.encrypt(msg)

    def decrypt(self, msg: bytes | str, ttl: int | None = None) -> bytes:
        return self._fernet.decrypt(msg, ttl)


#: The deployment's Fernet key, the same on every machine.
DEPLOYMENT_KEY = _Fernet()


def redis_limiter(server: RedisServer, tmp_path, name: str = "machine", **kwargs) -> RedisSendLimiter:
    fallback = FileSendLimiter(5, tmp_path / name, ACCOUNT)
    return RedisSendLimiter(5, redis_client(server), ACCOUNT, fallback, where="test redis", **kwargs)


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return jitter_tolerant()


def make_client(
    sandbox: SandboxServer, server: RedisServer, tmp_path, name: str, **kwargs
) -> OrangeSMSClient:
    """A client as one machine would build it: its own cache dir, the shared Redis."""
    kwargs.setdefault("client_secret", sandbox.client_secret)
    kwargs.setdefault(
        "token_cache", RedisTokenCache(redis_client(server), DEPLOYMENT_KEY, where="test redis")
    )
    kwargs.setdefault(
        "make_limiter",
        lambda rate, account: RedisSendLimiter(
            rate, redis_client(server), account, FileSendLimiter(rate, tmp_path / name, account), **LIMITER_KW
        ),
    )
    return OrangeSMSClient(
        base_url=sandbox.url,
        client_id=sandbox.client_id,
        sender_address="2250000",
        retry=FAST_RETRY,
        **kwargs,
    )


# Try Redis again on the very next send after a failure, so the test controls every mode change.
LIMITER_KW = {"where": "test redis", "retry_redis_after": 0.0}


# -- slots ---------------------------------------------------------------------------------------


def test_machines_book_one_schedule_on_redis_clock(redis_server, tmp_path):
    machines = [redis_limiter(redis_server, tmp_path, f"m{n}") for n in range(3)]
    bookings = [machines[n % 3].book() for n in range(15)]
    assert {b.mode for b in bookings} == {"redis"}
    slots = [b.slot for b in bookings]
    # One schedule for the three machines, spaced by the interval to the microsecond.
    assert [round(b - a, 6) for a, b in itertools.pairwise(slots)] == [machines[0].interval] * 14
    # Never more than 5 in any one-second window.
    assert all(slots[i + 5] - slots[i] >= 1.0 for i in range(len(slots) - 5))


def test_a_corrupt_slot_far_ahead_is_distrusted(redis_server, tmp_path, caplog):
    limiter = redis_limiter(redis_server, tmp_path)
    first = limiter.book()
    redis_client(redis_server).set(limiter.key, str(int((first.slot + 10_000) * 1_000_000)))
    with caplog.at_level(logging.WARNING):
        again = limiter.book()
    assert again.slot - first.slot < 60
    assert "starting over from now" in caplog.text


def test_a_sender_woken_late_keeps_its_turn_in_redis(redis_server, tmp_path):
    mine, other = redis_limiter(redis_server, tmp_path, "a"), redis_limiter(redis_server, tmp_path, "b")
    booking = mine.book()
    behind = other.book()  # another machine booked the slot after it
    time.sleep(0.05)  # mine oversleeps its slot by (at least) 50 ms
    assert mine.wait(booking) == 0.0  # it sends at once: no fresh slot to wait for
    assert mine.sends_by_mode == Counter(redis=1)
    # The slots nobody had booked moved back by its lateness (beyond what the margin covers).
    assert other.book().slot - behind.slot >= mine.interval + 0.05 - LATE_WAKE_UP


def test_a_late_answer_holds_every_machines_next_sends_back_in_redis(redis_server, tmp_path):
    mine, other = redis_limiter(redis_server, tmp_path, "a"), redis_limiter(redis_server, tmp_path, "b")
    mine.wait(mine.book())
    mine.answered(0.004)  # the usual round trip
    mine.wait(mine.book())
    behind = other.book()  # another machine booked the slot after it before the answer came
    mine.answered(0.004 + 0.023 + 0.060)  # 60 ms later than the usual round trip and the slack
    # Booked slots stay; the ones nobody had booked moved back by the excess, for every machine.
    assert other.book().slot - behind.slot >= mine.interval + 0.060 - 1e-6
    assert mine.late_answers.count == 1


# -- Redis down or restarted ---------------------------------------------------------------------


def test_redis_killed_and_restarted_mid_batch(sandbox, redis_server, tmp_path, caplog):
    """Sends go on through the per-machine limiter while Redis is down (each mode logged), then
    through Redis again once it is back, empty; every recipient gets exactly one SMS."""
    client = make_client(sandbox, redis_server, tmp_path, "machine")
    recipients = [f"+2250700{n:06d}" for n in range(24)]
    with caplog.at_level(logging.INFO, logger="airflow_provider_orange_sms"):
        for n, recipient in enumerate(recipients):
            if n == 8:
                redis_server.stop()
            if n == 16:
                redis_server.start()  # empty: the slot and the token are gone
            client.send_sms(recipient, "hello")
    assert client.limiter is not None
    modes = client.limiter.sends_by_mode
    # One slot per request: a 429 (possible while machines are not counted) books another.
    assert set(modes) == {"redis", "file"}
    assert modes["redis"] >= 16
    assert modes["file"] >= 8
    assert modes.total() == len(send_requests(sandbox))
    accepted = Counter(m.address for m in sandbox.state.messages)
    assert accepted == Counter({f"tel:{r}": 1 for r in recipients})
    assert len(send_requests(sandbox)) == len(recipients) + sandbox.state.rate_limited
    messages = [r.getMessage() for r in caplog.records]
    assert any("spaced through Redis (test redis)" in m for m in messages)
    assert any("Redis (test redis) cannot be reached" in m and "file limiter" in m for m in messages)
    assert any("answers again" in m and "used the per-machine file limiter" in m for m in messages)
    client.close()
    assert any(
        f"{modes['file']} through file, {modes['redis']} through redis" in m.getMessage()
        for m in caplog.records
    )


def test_redis_unreachable_from_the_start_still_sends(sandbox, redis_server, tmp_path, caplog):
    redis_server.stop()
    client = make_client(sandbox, redis_server, tmp_path, "machine")
    with caplog.at_level(logging.WARNING):
        client.send_sms("+2250700000001", "hello")
        client.send_sms("+2250700000002", "hello")
    assert client.limiter is not None
    assert client.limiter.sends_by_mode == Counter(file=2)
    assert len(sandbox.state.messages) == 2
    assert sandbox.state.token_requests == 1  # a token for this process, with a warning
    assert "Orange SMS token cache: Redis (test redis) cannot be reached" in caplog.text


# -- the token -----------------------------------------------------------------------------------


def test_one_token_request_for_every_machine(sandbox, redis_server, tmp_path):
    clients = [make_client(sandbox, redis_server, tmp_path, f"m{n}") for n in range(8)]
    barrier = threading.Barrier(len(clients))

    def fetch(client: OrangeSMSClient) -> None:
        barrier.wait()
        client.get_token()

    threads = [threading.Thread(target=fetch, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sandbox.state.token_requests == 1
    assert len({c.get_token() for c in clients}) == 1


def test_the_token_is_encrypted_and_the_secret_never_stored(sandbox, redis_server, tmp_path):
    client = make_client(sandbox, redis_server, tmp_path, "m")
    token = client.get_token()
    raw = redis_client(redis_server)
    stored = b"".join(k + (raw.get(k) or b"") for k in raw.keys("*") if raw.type(k) == b"string")
    basic = base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode())
    assert token.encode() not in stored
    assert sandbox.client_secret.encode() not in stored
    assert basic not in stored
    assert raw.pttl(RedisTokenCache.token_key(client._cache_key)) > 3_000_000  # expires with the token


def test_without_a_fernet_key_the_token_is_stored_in_clear_and_a_warning_says_so(redis_server, caplog):
    class NullFernet:
        is_encrypted = False

    with caplog.at_level(logging.WARNING):
        cache = RedisTokenCache(redis_client(redis_server), NullFernet(), where="test redis")  # type: ignore[arg-type]
    assert "unencrypted; anyone who can read that Redis can send SMS" in caplog.text
    cache.set("k", AccessToken.from_lifetime("visible-token", 3600))
    assert b"visible-token" in redis_client(redis_server).get(RedisTokenCache.token_key("k"))
    assert cache.get("k").access_token == "visible-token"


def test_another_fernet_key_reads_as_no_token(redis_server):
    writer = RedisTokenCache(redis_client(redis_server), _Fernet())
    writer.set("k", AccessToken.from_lifetime("t", 3600))
    assert RedisTokenCache(redis_client(redis_server), _Fernet()).get("k") is None


def test_a_changed_secret_never_reuses_the_token(sandbox, redis_server, tmp_path):
    first = make_client(sandbox, redis_server, tmp_path, "a")
    first.get_token()
    sandbox.state.config.clients[sandbox.client_id] = "new-secret"
    rotated = make_client(sandbox, redis_server, tmp_path, "b", client_secret="new-secret")
    rotated.get_token()
    assert sandbox.state.token_requests == 2
    assert first._cache_key != rotated._cache_key


def test_a_token_due_for_refresh_is_fetched_by_one_machine(sandbox, redis_server, tmp_path):
    first = make_client(sandbox, redis_server, tmp_path, "first")
    old = first.get_token()
    # The shared token enters its refresh window: valid for 100 s more, refresh due a second ago.
    first._token_cache.set(
        first._cache_key, AccessToken(old, expires_at=time.time() + 100, refresh_at=time.time() - 1)
    )
    clients = [make_client(sandbox, redis_server, tmp_path, f"m{n}") for n in range(6)]
    barrier = threading.Barrier(len(clients))
    tokens: list[str] = []

    def refresh(client: OrangeSMSClient) -> None:
        barrier.wait()
        tokens.append(client.get_token())

    threads = [threading.Thread(target=refresh, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sandbox.state.token_requests == 2  # the first token, then one refresh for all
    assert len(set(tokens)) == 1
    assert tokens[0] != old


def test_the_token_lock_expires_and_only_its_holder_releases_it(redis_server):
    cache = RedisTokenCache(redis_client(redis_server), _Fernet())
    raw = redis_client(redis_server)
    lock_key = "orange_sms:token-lock:k"
    raw.set(lock_key, "a holder that died", px=300)
    with cache.lock("k", timeout=10):  # waited until the dead holder's lock expired
        assert raw.get(lock_key) != b"a holder that died"
        raw.set(lock_key, "someone else")  # e.g. ours expired and another machine took it
    assert raw.get(lock_key) == b"someone else"  # not released by us
    with pytest.raises(TokenLockTimeout), cache.lock("k", timeout=0.1):
        pass


def test_the_token_lock_expires_after_its_timeout_and_excludes_the_previous_version(redis_server):
    cache = RedisTokenCache(redis_client(redis_server), _Fernet())
    raw = redis_client(redis_server)
    lock_key = "orange_sms:token-lock:k"
    with cache.lock("k", timeout=10):
        assert 9_000 < raw.pttl(lock_key) <= 10_000  # a holder that dies blocks others 10 s at most
        # The previous version's lock (SET NX PX on the same key) is refused while this one is held.
        assert raw.set(lock_key, "previous version", nx=True, px=60_000) is None
    assert not raw.exists(lock_key)
    with cache.lock("k"):  # no wait limit: expires after 60 s
        assert 59_000 < raw.pttl(lock_key) <= 60_000
    raw.set(lock_key, "previous version", px=60_000)
    started = time.monotonic()
    with pytest.raises(TokenLockTimeout, match="busy for 0.2 s"), cache.lock("k", timeout=0.2):
        pass
    assert 0.2 <= time.monotonic() - started < 1
    assert raw.get(lock_key) == b"previous version"


def test_deleting_a_refused_token_keeps_a_newer_one(redis_server):
    cache = RedisTokenCache(redis_client(redis_server), _Fernet())
    old, new = AccessToken.from_lifetime("old", 3600), AccessToken.from_lifetime("new", 3600)
    cache.set("k", new)
    cache.delete("k", old)
    assert cache.get("k").access_token == "new"
    cache.delete("k", new)
    assert cache.get("k") is None


# -- the connection ------------------------------------------------------------------------------


def test_connection_extras_build_the_redis_backends(sandbox, redis_server, cache_dir, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT",
        connection_json(sandbox, rate_limit_backend="redis", auth_cache="redis", redis_conn_id="shared"),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SHARED", redis_server.url)
    hook = OrangeSMSHook()
    assert isinstance(hook.client.limiter, RedisSendLimiter)
    assert isinstance(hook.client._token_cache, RedisTokenCache)
    assert hook.client.limiter.where == "connection 'shared'"
    hook.send_sms("+2250700000001", "hello")
    assert hook.client.limiter.sends_by_mode == Counter(redis=1)
    account = f"{hook.client.base_url}\0{hook.client.client_id}"
    assert redis_client(redis_server).exists(slot_key(account))
    hook.close()


def test_the_old_token_cache_extra_still_works_and_warns(sandbox, redis_server, cache_dir, monkeypatch):
    from airflow.exceptions import AirflowProviderDeprecationWarning

    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, token_cache="redis"))
    monkeypatch.setenv("AIRFLOW_CONN_REDIS_DEFAULT", redis_server.url)
    hook = OrangeSMSHook()
    with pytest.warns(
        AirflowProviderDeprecationWarning, match="'token_cache' is deprecated: name it 'auth_cache'"
    ):
        hook.send_sms("+2250700000001", "hello")
    hook.close()
    assert redis_client(redis_server).keys("orange_sms:token:*")  # the token went through Redis
    assert not list(cache_dir.glob("token-*.json"))


def test_the_default_redis_connection_is_redis_default(sandbox, redis_server, cache_dir, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_backend="redis")
    )
    monkeypatch.setenv("AIRFLOW_CONN_REDIS_DEFAULT", redis_server.url)
    hook = OrangeSMSHook()
    assert hook.client.limiter.where == "connection 'redis_default'"
    hook.close()


REDIS_PASSWORD = "redis-pass-7f3a9c"


@pytest.fixture
def redis_with_password(tmp_path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path, password=REDIS_PASSWORD)


def _keys_by_database(server: RedisServer) -> dict[int, list[bytes]]:
    return {db: sorted(redis_client(server, db).keys("*")) for db in range(3)}


@pytest.mark.parametrize("path", ["/1", "/1?db=1", "?db=1"])
def test_the_database_of_the_redis_connection_is_used(
    sandbox, redis_with_password, cache_dir, monkeypatch, path
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT",
        connection_json(sandbox, rate_limit_backend="redis", auth_cache="redis"),
    )
    uri = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_with_password.port}{path}"
    monkeypatch.setenv("AIRFLOW_CONN_REDIS_DEFAULT", uri)
    hook = OrangeSMSHook()
    hook.send_sms("+2250700000001", "hello")
    hook.close()

    keys = _keys_by_database(redis_with_password)
    assert keys[0] == keys[2] == []  # db 0: the Celery broker's, when sharing its Redis
    assert keys[1]
    assert all(key.startswith(b"orange_sms:") for key in keys[1])


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/1?db=2", "names two databases: '1' in the URI path (schema field) and '2' in the extra db"),
        ("/one", "the URI path (schema field) holds 'one', not a database number"),
    ],
)
def test_a_bad_redis_database_is_refused_naming_it(
    sandbox, redis_with_password, cache_dir, monkeypatch, path, message
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_backend="redis")
    )
    uri = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_with_password.port}{path}"
    monkeypatch.setenv("AIRFLOW_CONN_REDIS_DEFAULT", uri)
    with pytest.raises(ValueError, match=r"Redis connection 'redis_default'") as raised:
        OrangeSMSHook().client  # noqa: B018
    assert message in str(raised.value)
    assert REDIS_PASSWORD not in str(raised.value)
    assert _keys_by_database(redis_with_password) == {0: [], 1: [], 2: []}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rate_limit_backend": "memcached"}, "rate_limit_backend='memcached': expected one of file, redis"),
        ({"rate_limit_backend": 1}, "rate_limit_backend=1"),
        (
            {"auth_cache": "redis-cluster"},
            "auth_cache='redis-cluster': expected one of file, redis, variable, none",
        ),
        (
            {"token_cache": "redis-cluster"},
            "token_cache='redis-cluster': expected one of file, redis, variable, none",
        ),
    ],
)
def test_bad_backend_extras_are_named(sandbox, cache_dir, monkeypatch, extra, message):
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, **extra))
    with pytest.raises(ValueError, match="Invalid connection extra " + message.replace("(", r"\(")):
        OrangeSMSHook().client  # noqa: B018


def test_file_stays_the_default_backend(sandbox, cache_dir, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox))
    assert type(OrangeSMSHook().client.limiter) is FileSendLimiter


def test_cache_key_of_the_redis_cache_is_the_file_cache_key(sandbox, redis_server, tmp_path):
    client = make_client(sandbox, redis_server, tmp_path, "m")
    client.get_token()
    key = cache_key(client.token_url, client.client_id, client._authorization)
    assert redis_client(redis_server).exists(RedisTokenCache.token_key(key))
