"""
The guard on the Airflow internals that ``receipts/store.py`` uses.

If one of these tests fails after an Airflow upgrade, the receiver may silently stop storing
receipts: read ``store.py`` against the new ``POST /api/v2/assets/events`` implementation
(``airflow/api_fastapi/core_api/routes/public/assets.py``) before releasing.
"""

from __future__ import annotations

import inspect
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_orange_sms.receipts import ASSET_NAME, DELIVERY_RECEIPTS
from airflow_provider_orange_sms.receipts import store as store_module
from airflow_provider_orange_sms.receipts.payload import Receipt
from airflow_provider_orange_sms.receipts.store import StoreUnavailableError, store_receipt


def test_airflow_internals_the_store_relies_on_are_still_there():
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    parameters = inspect.signature(asset_manager.register_asset_change).parameters
    for name in ("asset", "extra", "session"):
        assert name in parameters, f"register_asset_change lost its {name!r} parameter"
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    for column in ("id", "name", "uri", "group", "updated_at"):
        assert column in AssetModel.__table__.columns, f"AssetModel lost {column!r}"
    for column in ("id", "asset_id", "extra", "timestamp"):
        assert column in AssetEvent.__table__.columns, f"AssetEvent lost {column!r}"
    assert callable(create_session)
    # The uri Airflow stores for the asset: DAGs only see events of this exact row.
    assert DELIVERY_RECEIPTS.uri == "orange-sms://delivery-receipts/"
    assert store_module.normalised_uri() == DELIVERY_RECEIPTS.uri


def _events(resource_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra, AssetModel.name, AssetModel.uri)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == ASSET_NAME)
        ).all()
    return [
        {**extra, "_asset": (name, uri)}
        for extra, name, uri in rows
        if extra.get("resource_id") == resource_id
    ]


def test_store_creates_the_asset_and_the_event_once(airflow_db):
    resource_id = f"store-{uuid.uuid4()}"
    delivered = Receipt(resource_id, "tel:+2250700000001", "DeliveredToTerminal")
    now = datetime.now(timezone.utc)

    assert store_receipt(delivered, now=now) is True
    assert store_receipt(delivered, now=now + timedelta(hours=1)) is False  # a repeat
    assert store_receipt(Receipt(resource_id, "tel:+2250700000001", "DeliveryImpossible")) is True

    events = _events(resource_id)
    assert [e["status"] for e in events] == ["DeliveredToTerminal", "DeliveryImpossible"]
    assert events[0] == {
        "resource_id": resource_id,
        "recipient": "tel:+2250700000001",
        "status": "DeliveredToTerminal",
        "received_at": now.isoformat(),
        "_asset": (ASSET_NAME, "orange-sms://delivery-receipts/"),
    }
    # Past the dedup window, the same receipt counts again.
    assert store_receipt(delivered, now=now + store_module.DEDUP_WINDOW + timedelta(minutes=1)) is True


def test_receipts_without_a_resource_id_dedup_over_a_short_window(airflow_db):
    recipient = f"tel:+22507{uuid.uuid4().int % 10**8:08d}"
    silent = Receipt("", recipient, "DeliveredToTerminal")
    now = datetime.now(timezone.utc)
    assert store_receipt(silent, now=now) is True
    assert store_receipt(silent, now=now + timedelta(minutes=1)) is False
    assert (
        store_receipt(silent, now=now + store_module.DEDUP_WINDOW_WITHOUT_ID + timedelta(minutes=1)) is True
    )


def test_a_failure_mid_transaction_stores_nothing(airflow_db, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("INSERT INTO asset_event", {}, Exception("database is locked"))

    monkeypatch.setattr(store_module, "register_event", broken)
    monkeypatch.setattr(store_module.time, "sleep", lambda seconds: None)
    resource_id = f"store-{uuid.uuid4()}"
    with pytest.raises(StoreUnavailableError, match="3 attempts"):
        store_receipt(Receipt(resource_id, "tel:+2250700000001", "DeliveredToTerminal"))
    monkeypatch.undo()
    assert _events(resource_id) == []
