"""The token lock is held for one request at a time, waited for boundedly, and a failed
token request is remembered so other processes do not each pay the full retry budget.

Clients built with ``make_client`` share only the cache directory, as separate processes do. Counts
are of the requests the sandbox received on the token endpoint; no assertion depends on timing.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.exceptions import (
    TRANSIENT_ERRORS,
    OrangeSMSAuthError,
    OrangeSMSConnectionError,
    OrangeSMSServerError,
)
from airflow_provider_orange_sms.hooks.orange_sms import VariableTokenCache
from airflow_provider_orange_sms.token.token_cache import AccessToken, FileTokenCache, TokenFailure
from tests.support.sandbox import FAST_RETRY


def token_posts(sandbox):
    return [r for r in sandbox.state.requests if r["path"].startswith("/oauth")]


def sends(sandbox):
    return [r for r in sandbox.state.requests if r["path"].endswith("/requests")]


def received(sandbox):
    return Counter(m.address for m in sandbox.state.messages)


def test_a_failing_token_endpoint_is_asked_once_per_retry_budget_not_once_per_process(make_client, sandbox):
    sandbox.state.add_fault(kind="status", status=503, path="/oauth", count=10_000)
    with pytest.raises(OrangeSMSServerError):
        make_client().send_sms("+2250700000001", "hi")
    assert len(token_posts(sandbox)) == FAST_RETRY.max_attempts
    for _ in range(3):  # three more "processes" right after
        with pytest.raises(OrangeSMSConnectionError, match="failed moments ago") as err:
            make_client().send_sms("+2250700000001", "hi")
        assert isinstance(err.value, TRANSIENT_ERRORS)  # worth a task retry later
    assert len(token_posts(sandbox)) == FAST_RETRY.max_attempts
    assert sends(sandbox) == []


def test_rejected_credentials_are_remembered(make_client, sandbox):
    for _ in range(4):
        with pytest.raises(OrangeSMSAuthError):
            make_client(client_secret="wrong").send_sms("+2250700000001", "hi")
    assert len(token_posts(sandbox)) == 1
    # Other credentials have their own key: not affected.
    make_client().send_sms("+2250700000001", "hi")
    assert len(token_posts(sandbox)) == 2
    assert received(sandbox) == {"tel:+2250700000001": 1}


def test_concurrent_clients_share_one_retry_budget(make_client, sandbox):
    sandbox.state.add_fault(kind="status", status=503, path="/oauth", count=10_000)
    clients = [make_client() for _ in range(4)]
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def run(client):
        barrier.wait()
        try:
            client.get_token()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    # Whoever got the lock first tried its whole budget; the others saw its failure under the lock.
    assert len(token_posts(sandbox)) == FAST_RETRY.max_attempts
    assert sorted(type(e).__name__ for e in errors) == [
        "OrangeSMSConnectionError",
        "OrangeSMSConnectionError",
        "OrangeSMSConnectionError",
        "OrangeSMSServerError",
    ]


def test_the_lock_is_free_during_retry_backoff(make_client, sandbox, cache_dir):
    sandbox.state.add_fault(kind="status", status=503, path="/oauth", count=2)
    client = make_client()
    lock_path = FileTokenCache(cache_dir).lock_path(client._cache_key)
    free_during_sleep: list[bool] = []

    def sleep(_seconds):
        try:
            FileLock(str(lock_path), timeout=0).acquire()
        except FileLockTimeout:
            free_during_sleep.append(False)
        else:
            free_during_sleep.append(True)
            FileLock(str(lock_path)).release()

    client.sleep = sleep
    client.send_sms("+2250700000001", "hi")
    assert free_during_sleep == [True, True]
    assert len(token_posts(sandbox)) == 3
    assert received(sandbox) == {"tel:+2250700000001": 1}


def test_waiting_for_a_stuck_token_request_is_bounded(make_client, sandbox, cache_dir):
    client = make_client(token_lock_timeout=0.2)
    assert make_client().token_lock_timeout == 10 + 30 + 5  # one request's worst case, plus margin
    holder = FileLock(str(FileTokenCache(cache_dir).lock_path(client._cache_key)))
    holder.acquire()  # another process stuck in its token request
    outcome: list[BaseException | str] = []

    def send():
        try:
            outcome.append(client.send_sms("+2250700000001", "hi"))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    thread.join(60)
    stuck = thread.is_alive()
    holder.release()
    thread.join(60)
    assert not stuck, "the client waited for the lock without bound"
    [error] = outcome
    assert isinstance(error, OrangeSMSConnectionError)
    assert "waited 0.2 s for another process's token request" in str(error)
    assert token_posts(sandbox) == []
    assert sends(sandbox) == []


def test_a_token_fetched_later_clears_the_remembered_failure(make_client, sandbox, cache_dir):
    sandbox.state.add_fault(kind="status", status=503, path="/oauth", count=FAST_RETRY.max_attempts)
    first = make_client()
    with pytest.raises(OrangeSMSServerError):
        first.send_sms("+2250700000001", "hi")
    cache = FileTokenCache(cache_dir)
    remembered = cache.get_failure(first._cache_key)
    assert remembered is not None
    assert "503" in remembered.message
    # Time passes (the failure expires) without sleeping: rewrite its deadline.
    cache.set_failure(first._cache_key, TokenFailure(0.0, remembered.message, False, remembered.owner))
    make_client().send_sms("+2250700000001", "hi")
    assert cache.get_failure(first._cache_key) is None
    assert len(token_posts(sandbox)) == FAST_RETRY.max_attempts + 1
    assert received(sandbox) == {"tel:+2250700000001": 1}


BAD_TOKENS = [
    {"access_token": "x", "expires_at": "soon", "refresh_at": None},
    {"access_token": "x", "expires_at": 9e99, "refresh_at": "later"},
    {"access_token": 42, "expires_at": 9e99, "refresh_at": 9e99},
    {"access_token": "x", "expires_at": True, "refresh_at": 9e99},
    {"access_token": "x", "expires_at": float("inf"), "refresh_at": float("nan")},
    ["x", 1, 2],
]


@pytest.mark.parametrize("stored", BAD_TOKENS[:2])
def test_a_malformed_token_file_counts_as_no_token(make_client, sandbox, cache_dir, stored):
    assert [AccessToken.from_dict(bad) for bad in BAD_TOKENS] == [None] * len(BAD_TOKENS)
    client = make_client()
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / f"token-{client._cache_key}.json").write_text(json.dumps(stored))
    client.send_sms("+2250700000001", "hi")
    make_client().send_sms("+2250700000002", "hi")  # the fresh token replaced the bad file
    assert sandbox.state.token_requests == 1
    assert received(sandbox) == {"tel:+2250700000001": 1, "tel:+2250700000002": 1}


@pytest.mark.parametrize("stored", BAD_TOKENS[:4])
def test_a_malformed_token_variable_counts_as_no_token(sandbox, cache_dir, monkeypatch, stored):
    import airflow.sdk

    variables: dict[str, object] = {}

    def get(key, default=None, deserialize_json=False):
        return variables.get(key, stored)

    def set_(key, value, description=None, serialize_json=False):
        variables[key] = value

    monkeypatch.setattr(airflow.sdk.Variable, "get", staticmethod(get))
    monkeypatch.setattr(airflow.sdk.Variable, "set", staticmethod(set_))
    client = OrangeSMSClient(
        base_url=sandbox.url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        sender_address="2250000",
        retry=FAST_RETRY,
        token_cache=VariableTokenCache(str(cache_dir)),
        state_dir=str(cache_dir),
    )
    try:
        client.send_sms("+2250700000001", "hi")
    finally:
        client.close()
    assert sandbox.state.token_requests == 1
    assert received(sandbox) == {"tel:+2250700000001": 1}
    assert list(variables) == [VariableTokenCache.variable_key(client._cache_key)]
