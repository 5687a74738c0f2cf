"""
Admission with the real store and the metadata DB: under more receipts than turns, every receipt
answered 200 is stored exactly once, and every one answered 503 is stored nowhere (until sent again).
The store is held, not raced: the first one waits until the test has seen a 503.
"""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi.testclient import TestClient

from airflow_provider_orange_sms.receipts import ASSET_NAME, admission, store
from airflow_provider_orange_sms.receipts import app as receiver
from tests.support.receipts_server import SECRET, receipt

JSON = {"Content-Type": "application/json"}


def _stored(prefix: str) -> list[str]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == ASSET_NAME)
        ).all()
    return [e["resource_id"] for e in extras if str(e.get("resource_id", "")).startswith(prefix)]


def test_every_200_is_stored_once_and_every_503_nowhere(airflow_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", SECRET)
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "")
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES", "1")
    monkeypatch.setattr(admission, "ADMISSION_WAIT", timedelta(seconds=0.2))
    refused_seen = threading.Event()
    real_store = store.store_receipt
    held = []

    def first_store_held(parsed, **kwargs):
        if not held:
            held.append(parsed.resource_id)
            assert refused_seen.wait(120), "no receipt was refused while the only turn was held"
        return real_store(parsed, **kwargs)

    monkeypatch.setattr(store, "store_receipt", first_store_held)
    prefix = f"adm-{uuid.uuid4().hex[:8]}-"
    # 12 receipts, 4 of them sent twice: repeats are stored once, whatever their answers.
    ids = [f"{prefix}{n}" for n in range(12)] + [f"{prefix}{n}" for n in range(4)]

    def post(resource_id: str) -> tuple[str, int]:
        response = client.post(
            f"/delivery-receipts/{SECRET}", content=json.dumps(receipt(resource_id)), headers=JSON
        )
        if response.status_code == 503:
            assert response.headers["Retry-After"] == str(receiver.RETRY_AFTER_SECONDS)
            refused_seen.set()
        return resource_id, response.status_code

    with (
        TestClient(receiver.create_app(), client=("80.12.13.2", 1234)) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        answers = list(pool.map(post, ids))
        ok = {i for i, code in answers if code == 200}
        refused = {i for i, code in answers if code == 503} - ok
        assert {code for _, code in answers} == {200, 503}
        assert ok | refused == set(ids)
        stored = _stored(prefix)
        assert sorted(stored) == sorted(ok), "each receipt answered 200 stored once, none answered 503"
        # Sent again later (as Orange does after a 503: here one at a time), each is stored, once.
        assert {post(resource_id)[1] for resource_id in sorted(refused)} == {200}
    assert sorted(_stored(prefix)) == sorted(set(ids))
