"""
The guard on the Airflow internals that ``receipts/store.py`` uses.

If one of these tests fails after an Airflow upgrade, the receiver may silently stop storing
receipts: read ``store.py`` against the new ``POST /api/v2/assets/events`` implementation
(``airflow/api_fastapi/core_api/routes/public/assets.py``) before releasing.
"""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest

from airflow_provider_orange_sms.receipts import DELIVERY_RECEIPTS
from airflow_provider_orange_sms.receipts import store as store_module
from airflow_provider_orange_sms.receipts.quiet_log import OnceLogger
from airflow_provider_orange_sms.receipts.store import StoreUnavailableError


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
    # The inactive-asset warning is quieted through the manager class's logger (LoggingMixin._log).
    assert isinstance(inspect.getattr_static(type(asset_manager), "register_asset_change"), classmethod)
    quiet = store_module._quiet_manager_class(type(asset_manager))
    assert isinstance(quiet.logger(), OnceLogger)
    # The uri Airflow stores for the asset: DAGs only see events of this exact row.
    assert DELIVERY_RECEIPTS.uri == "orange-sms://delivery-receipts/"
    assert store_module.normalised_uri() == DELIVERY_RECEIPTS.uri


def test_a_bad_retention_setting_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_DEDUP_HOURS", "12")
    with pytest.raises(StoreUnavailableError, match=r"delivery_receipts_dedup_hours '12'.*at least 24"):
        store_module.dedup_retention()
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_DEDUP_HOURS", "three days")
    with pytest.raises(StoreUnavailableError, match="'three days'"):
        store_module.dedup_retention()
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_DEDUP_HOURS", "96")
    assert store_module.dedup_retention() == timedelta(hours=96)


def test_a_repeated_warning_is_logged_once_per_process():
    logged = []

    class Recorder:
        def warning(self, event, *args, **kwargs):
            logged.append(event % args)

        def info(self, event, *args, **kwargs):
            logged.append(event % args)

    quiet = OnceLogger(Recorder(), ("Emitting event for inactive AssetModel",))
    for _ in range(5):
        quiet.warning("Emitting event for inactive AssetModel %s", "asset-a")
        quiet.info("something else %s", 1)
    quiet.warning("Emitting event for inactive AssetModel %s", "asset-b")
    quiet.warning("AssetModel %s not found; cannot create asset event.", "x")
    quiet.warning("AssetModel %s not found; cannot create asset event.", "x")
    assert logged.count("Emitting event for inactive AssetModel asset-a") == 1
    assert logged.count("Emitting event for inactive AssetModel asset-b") == 1
    assert logged.count("something else 1") == 5
    assert logged.count("AssetModel x not found; cannot create asset event.") == 2


class _Clock:
    """The store's ``time`` in a test: the clock moves only when the test moves it; sleeps are noted."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[tuple[float, bool]] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append((seconds, store_module._SQLITE_LOCK.locked()))


@pytest.mark.parametrize(("dialect", "pauses"), [("sqlite", True), ("postgresql", False)])
def test_on_sqlite_a_write_leaves_the_database_free_as_long_again(monkeypatch, dialect, pauses):
    from types import SimpleNamespace

    from airflow import settings

    clock = _Clock()
    monkeypatch.setattr(store_module, "time", clock)
    monkeypatch.setattr(settings, "engine", SimpleNamespace(dialect=SimpleNamespace(name=dialect)))
    for took in (0.03, 5.0):
        with store_module._one_writer(deadline=clock.now + 10):
            clock.now += took
    limit = store_module.SQLITE_PAUSE_MAX.total_seconds()
    # The pause holds this process's writer lock: no other receipt of this process writes meanwhile.
    assert clock.slept == ([(pytest.approx(0.03), True), (limit, True)] if pauses else [])
    assert not store_module._SQLITE_LOCK.locked()
