"""
The receipt store against the Airflow metadata DB: each receipt stored once as an asset event,
the dedup rows, their sweep, and what ``airflow db clean`` leaves of them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_orange_sms.receipts import ASSET_NAME, dedup
from airflow_provider_orange_sms.receipts import store as store_module
from airflow_provider_orange_sms.receipts.payload import Receipt
from airflow_provider_orange_sms.receipts.store import StoreUnavailableError, store_receipt


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
    # Ordered by what the test stored (not by insertion: PostgreSQL returns rows in any order).
    return sorted(
        (
            {**extra, "_asset": (name, uri)}
            for extra, name, uri in rows
            if extra.get("resource_id") == resource_id
        ),
        key=lambda event: event["received_at"],
    )


def test_store_creates_the_asset_and_the_event_once(airflow_db):
    resource_id = f"store-{uuid.uuid4()}"
    delivered = Receipt(resource_id, "tel:+2250700000001", "DeliveredToTerminal")
    now = datetime.now(timezone.utc)

    assert store_receipt(delivered, now=now) is True
    assert store_receipt(delivered, now=now + timedelta(hours=1)) is False  # a repeat
    later = now + timedelta(hours=2)
    assert store_receipt(Receipt(resource_id, "tel:+2250700000001", "DeliveryImpossible"), now=later) is True

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
    past_window = now + store_module.dedup_retention() + timedelta(minutes=1)
    assert store_receipt(delivered, now=past_window) is True
    assert store_receipt(delivered, now=past_window + timedelta(seconds=1)) is False


def test_receipts_without_a_resource_id_dedup_over_a_short_window(airflow_db):
    recipient = f"tel:+22507{uuid.uuid4().int % 10**8:08d}"
    silent = Receipt("", recipient, "DeliveredToTerminal")
    now = datetime.now(timezone.utc)
    assert store_receipt(silent, now=now) is True
    assert store_receipt(silent, now=now + timedelta(minutes=1)) is False
    assert store_receipt(silent, now=now + store_module.WINDOW_WITHOUT_ID + timedelta(minutes=1)) is True


def test_a_failure_mid_transaction_stores_nothing(airflow_db, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("INSERT INTO asset_event", {}, Exception("database is locked"))

    monkeypatch.setattr(store_module, "register_event", broken)
    monkeypatch.setattr(store_module.time, "sleep", lambda seconds: None)
    resource_id = f"store-{uuid.uuid4()}"
    delivered = Receipt(resource_id, "tel:+2250700000001", "DeliveredToTerminal")
    with pytest.raises(StoreUnavailableError, match="OperationalError"):
        store_receipt(delivered)
    monkeypatch.undo()
    assert _events(resource_id) == []
    # The dedup row went with the rollback: the sender's retry is stored, not taken for a repeat.
    assert store_receipt(delivered) is True
    assert len(_events(resource_id)) == 1


def _dedup_rows(kind: str) -> int:
    import sqlalchemy as sa
    from airflow.utils.session import create_session

    table = dedup.dedup_table()
    with create_session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.kind == kind)))


def test_sweeping_expired_rows_keeps_repeats_inside_the_retention_stored_once(airflow_db):
    from airflow.utils.session import create_session

    resource_id = f"sweep-{uuid.uuid4()}"
    now = datetime.now(timezone.utc)
    retention = store_module.dedup_retention()
    old = Receipt(resource_id, "tel:+2250700000001", "DeliveredToTerminal")
    recent = Receipt(resource_id, "tel:+2250700000002", "DeliveredToTerminal")
    assert store_receipt(old, now=now - retention - timedelta(hours=1)) is True
    assert store_receipt(recent, now=now - retention + timedelta(hours=1)) is True

    kind = store_module.KIND
    before = _dedup_rows(kind)
    with create_session() as session:
        deleted = dedup.sweep(session, kind, before=now - retention, batch=1)
    # Every row of this session older than the retention went (at least the old receipt's), the rest
    # stayed: the recent receipt's repeat is still recognised.
    assert deleted >= 1
    assert _dedup_rows(kind) == before - deleted
    assert store_receipt(recent, now=now) is False
    assert store_receipt(old, now=now) is True  # past the retention: a new receipt, as if never swept
    assert [e["recipient"] for e in _events(resource_id)] == [
        "tel:+2250700000001",
        "tel:+2250700000002",
        "tel:+2250700000001",
    ]


def test_the_portable_claim_agrees_with_the_upsert(airflow_db):
    """The path for databases without ON CONFLICT (MySQL), run on this one."""
    from airflow.utils.session import create_session

    now = datetime.now(timezone.utc)
    window = timedelta(hours=1)
    parts = ("portable", str(uuid.uuid4()))
    values = {"kind": "test", "key_digest": dedup.key_digest(parts), "seen_at": int(now.timestamp())}
    answers = []
    for at in (now, now + timedelta(minutes=30), now + timedelta(minutes=61)):
        with create_session() as session:
            dedup.ensure_table(session)
            values["seen_at"] = int(at.timestamp())
            answers.append(dedup._claim_portably(session, dict(values), int((at - window).timestamp())))
    with create_session() as session:
        answers.append(dedup.claim(session, "test", parts, now=now + timedelta(minutes=62), window=window))
    assert answers == [True, False, True, False]


@pytest.mark.processes
def test_airflow_db_clean_of_asset_events_keeps_repeats_stored_once(airflow_db):
    """`airflow db clean --tables asset_event` (README) deletes events; the dedup rows stay."""
    import os
    import subprocess
    import sys

    resource_id = f"clean-{uuid.uuid4()}"
    delivered = Receipt(resource_id, "tel:+2250700000001", "DeliveredToTerminal")
    assert store_receipt(delivered) is True
    assert len(_events(resource_id)) == 1
    clean_before = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    subprocess.run(
        [
            *(sys.executable, "-m", "airflow", "db", "clean", "--tables", "asset_event"),
            *("--clean-before-timestamp", clean_before, "--skip-archive", "--yes"),
        ],
        check=True,
        capture_output=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert _events(resource_id) == []
    assert store_receipt(delivered) is False
    assert _events(resource_id) == []


def test_storing_a_receipt_sweeps_expired_rows_in_the_background(airflow_db, monkeypatch):
    import threading

    import sqlalchemy as sa
    from airflow.utils.session import create_session

    now = datetime.now(timezone.utc)
    expired = Receipt(f"expired-{uuid.uuid4()}", "tel:+2250700000001", "DeliveredToTerminal")
    assert store_receipt(expired, now=now - store_module.dedup_retention() - timedelta(hours=1)) is True
    table = dedup.dedup_table()
    digest = dedup.key_digest((expired.resource_id, expired.recipient, expired.status))
    query = sa.select(sa.func.count()).select_from(table).where(table.c.key_digest == digest)
    with create_session() as session:
        assert session.scalar(query) == 1

    for thread in threading.enumerate():  # a sweep started by an earlier test
        if thread.name == "orange-sms-dedup-sweep":
            thread.join(timeout=60)
    monkeypatch.setattr(store_module, "_last_sweep", -float("inf"))
    assert store_receipt(Receipt(f"fresh-{uuid.uuid4()}", "tel:+2250700000001", "MessageWaiting")) is True
    sweeps = [t for t in threading.enumerate() if t.name == "orange-sms-dedup-sweep"]
    for thread in sweeps:
        thread.join(timeout=60)
    with create_session() as session:
        assert session.scalar(query) == 0
