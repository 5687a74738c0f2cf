"""Admission in the receiver: at most ``delivery_receipts_max_concurrent_stores`` stores at once, the
others waiting their turn a bounded time, then a 503 with ``Retry-After`` that stored nothing.

The stores are held with events, not sleeps: each test decides when a store may finish."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import anyio
import pytest
from fastapi.testclient import TestClient

from airflow_provider_orange_sms.receipts import admission, store
from airflow_provider_orange_sms.receipts import app as receiver
from airflow_provider_orange_sms.settings import DEFAULT_DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES
from tests.support.receipts_server import receipt

SECRET = "a-long-random-secret-for-tests"
JSON = {"Content-Type": "application/json"}
#: Long enough never to run out on a loaded machine while a test holds the stores.
HELD = timedelta(seconds=60)


class HeldStore:
    """A fake ``store_receipt`` that blocks until released; records what it stored, once each."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.stored: list[str] = []
        self.started = threading.Semaphore(0)

    def __call__(self, parsed, **kwargs) -> bool:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.started.release()
        try:
            assert self.release.wait(HELD.total_seconds()), "the test never released the store"
            with self.lock:
                new = parsed.resource_id not in self.stored
                self.stored.append(parsed.resource_id)
            return new
        finally:
            with self.lock:
                self.running -= 1

    def wait_started(self, count: int) -> None:
        for _ in range(count):
            assert self.started.acquire(timeout=HELD.total_seconds()), "a store did not start"


@pytest.fixture
def held(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", SECRET)
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "")
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES", "2")
    monkeypatch.setattr(receiver, "_UNSTORED", receiver.RepeatLimiter(60.0))
    # Airflow configures logging on first use of its configuration: before pytest captures the test's.
    assert admission.max_concurrent_stores() == 2
    fake = HeldStore()
    monkeypatch.setattr(store, "store_receipt", fake)
    yield fake
    fake.release.set()


def receiver_client() -> TestClient:
    return TestClient(receiver.create_app(), client=("80.12.13.2", 1234))


def post(client: TestClient, resource_id: str):
    return client.post(f"/delivery-receipts/{SECRET}", content=json.dumps(receipt(resource_id)), headers=JSON)


def test_beyond_the_turns_a_receipt_waits_then_gets_503_with_retry_after_and_is_not_stored(
    held, monkeypatch, caplog
):
    # The third receipt finds both turns held until the test releases them: its wait runs out.
    monkeypatch.setattr(admission, "ADMISSION_WAIT", timedelta(seconds=0.2))
    with receiver_client() as client, ThreadPoolExecutor(2) as pool:
        first = [pool.submit(post, client, f"held-{n}") for n in range(2)]
        held.wait_started(2)
        with caplog.at_level("WARNING", logger=receiver.__name__):
            refused = post(client, "refused-1")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == str(receiver.RETRY_AFTER_SECONDS)
        assert "try again later" in refused.json()["detail"]
        held.release.set()
        assert [f.result().json() for f in first] == [{"status": "stored"}] * 2
        # Once the turns are free again, the same receipt is stored, once.
        assert post(client, "refused-1").json() == {"status": "stored"}
    assert sorted(held.stored) == ["held-0", "held-1", "refused-1"]
    assert held.most_at_once == 2
    [line] = [r for r in caplog.records if r.name == receiver.__name__]
    assert (line.levelname, "not stored, answered 503" in line.getMessage()) == ("WARNING", True)


def test_waiting_receipts_are_stored_in_turn_none_lost_none_twice(held):
    with receiver_client() as client, ThreadPoolExecutor(8) as pool:
        answers = [pool.submit(post, client, f"r-{n}") for n in range(8)]
        held.wait_started(2)
        held.release.set()
        codes = [a.result().status_code for a in answers]
    assert codes == [200] * 8
    assert sorted(held.stored) == sorted(f"r-{n}" for n in range(8))
    assert held.most_at_once == 2


def test_the_stores_use_threads_of_their_own_not_the_shared_pool(held):
    async def shared_pool_tokens_in_use() -> float:
        return anyio.to_thread.current_default_thread_limiter().borrowed_tokens

    with receiver_client() as client, ThreadPoolExecutor(2) as pool:
        answers = [pool.submit(post, client, f"own-{n}") for n in range(2)]
        held.wait_started(2)
        in_use = client.portal.call(shared_pool_tokens_in_use)  # type: ignore[union-attr]
        held.release.set()
        assert [a.result().status_code for a in answers] == [200, 200]
    assert in_use == 0


@pytest.mark.parametrize("raw", ["0", "-3", "2.5", "four", "inf", "nan"])
def test_an_invalid_setting_answers_503_naming_the_value_and_stores_nothing(held, monkeypatch, caplog, raw):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES", raw)
    with pytest.raises(admission.AdmissionSettingError) as info:
        admission.parse_max_concurrent_stores(raw)
    assert f"delivery_receipts_max_concurrent_stores {raw!r}" in str(info.value)
    assert "whole number of at least 1" in str(info.value)
    with receiver_client() as client, caplog.at_level("ERROR", logger=receiver.__name__):
        response = post(client, "r-1")
    assert (response.status_code, response.headers["Retry-After"]) == (503, str(receiver.RETRY_AFTER_SECONDS))
    assert f"delivery_receipts_max_concurrent_stores {raw!r}" in caplog.text
    assert held.stored == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", DEFAULT_DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES), ("1", 1), (" 16 ", 16), ("8.0", 8)],
)
def test_valid_settings(raw, expected):
    assert admission.parse_max_concurrent_stores(raw) == expected
