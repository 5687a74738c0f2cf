"""DeliveryReceiptSensor: input parsing and matching in-process (its whole loop: dag_runs tests)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from airflow_provider_orange_sms.receipts import DELIVERY_RECEIPTS
from airflow_provider_orange_sms.sensors.delivery_receipts import parse_resource_ids
from airflow_provider_orange_sms.sensors.orange_sms import DeliveryReceiptSensor

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
RESULTS = [
    {"recipient": "tel:+2250700000001", "resource_id": "id-1", "status": "sent"},
    {"recipient": "tel:+2250700000002", "resource_id": "id-2", "status": "sent"},
    {"recipient": "tel:+2250700000003", "resource_id": None, "status": "failed"},
    {"recipient": "tel:+2250700000004", "resource_id": None, "status": "uncertain"},
]


@pytest.mark.parametrize(
    "value",
    [
        RESULTS,
        json.dumps(RESULTS),
        str(RESULTS),  # what "{{ ti.xcom_pull(...) }}" renders
        [str(RESULTS[:1]), str(RESULTS[1:])],  # mapped sends: a list of rendered lists
    ],
)
def test_send_results_in_every_shape(value):
    targets, skipped = parse_resource_ids(value)
    assert targets == {"id-1": "tel:+2250700000001", "id-2": "tel:+2250700000002"}
    assert [s["status"] for s in skipped] == ["failed", "uncertain"]


def test_plain_ids():
    assert parse_resource_ids("a-1, b-2")[0] == {"a-1": None, "b-2": None}
    assert parse_resource_ids(["a-1", "b-2", "a-1"])[0] == {"a-1": None, "b-2": None}
    assert parse_resource_ids("['a-1']")[0] == {"a-1": None}


@pytest.mark.parametrize("bad", [42, [{"recipient": "x"}], "[unbalanced"])
def test_bad_resource_ids_are_named(bad):
    with pytest.raises(ValueError, match="Invalid resource_ids"):
        parse_resource_ids(bad)


class FakeAccessor:
    """Stands in for InletEventsAccessor: records each fetch's ``after``."""

    def __init__(self, store: FakeInletEvents) -> None:
        self.store = store
        self._after: str | None = None
        self._limit: int | None = None

    def ascending(self, ascending: bool = True) -> FakeAccessor:
        return self

    def after(self, after: str) -> FakeAccessor:
        self._after = after
        return self

    def limit(self, limit: int) -> FakeAccessor:
        self._limit = limit
        return self

    def __iter__(self):
        self.store.fetches.append(self._after)
        after = datetime.fromisoformat(self._after) if self._after else None
        selected = [e for e in self.store.events if after is None or e.timestamp >= after]
        return iter(selected[: self._limit])


class FakeInletEvents:
    def __init__(self) -> None:
        self.events: list[SimpleNamespace] = []
        self.fetches: list[str | None] = []

    def add(
        self, seconds: float, resource_id: str, status: str, recipient: str = "tel:+2250700000001"
    ) -> None:
        extra = {"resource_id": resource_id, "recipient": recipient, "status": status, "received_at": "x"}
        self.events.append(
            SimpleNamespace(id=len(self.events) + 1, timestamp=T0 + timedelta(seconds=seconds), extra=extra)
        )

    def __getitem__(self, key):
        assert key == DELIVERY_RECEIPTS
        return FakeAccessor(self)


def make_context(inlet_events: FakeInletEvents) -> dict:
    pushed: dict = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.__setitem__(key, value), pushed=pushed)
    return {"inlet_events": inlet_events, "dag_run": SimpleNamespace(start_date=T0, run_after=T0), "ti": ti}


def test_the_sensor_declares_the_asset_as_inlet_and_is_not_deferrable():
    sensor = DeliveryReceiptSensor(task_id="w", resource_ids=["a"])
    assert sensor.inlets == [DELIVERY_RECEIPTS]
    assert sensor.mode == "reschedule"
    with pytest.raises(ValueError, match="cannot be deferrable"):
        DeliveryReceiptSensor(task_id="w2", resource_ids=["a"], deferrable=True)


def test_poke_fetches_only_what_is_new_and_waits_for_final_statuses():
    events = FakeInletEvents()
    sensor = DeliveryReceiptSensor(task_id="w", resource_ids=RESULTS, mode="poke")
    context = make_context(events)

    events.add(1, "id-1", "MessageWaiting")
    events.add(2, "other-send", "DeliveredToTerminal")
    assert not sensor.poke(context)
    events.add(3, "id-1", "DeliveredToTerminal", "tel:+2250700000001")
    events.add(3, "id-2", "MessageWaiting", "tel:+2250700000002")
    assert not sensor.poke(context)
    events.add(4, "id-2", "DeliveryImpossible", "tel:+2250700000002")
    done = sensor.poke(context)

    assert done.is_done
    assert done.xcom_value == {"id-1": "DeliveredToTerminal", "id-2": "DeliveryImpossible"}
    # Each poke asked afresh, from the last event seen: not everything since the start.
    assert events.fetches == [
        T0.isoformat(),
        (T0 + timedelta(seconds=2)).isoformat(),
        (T0 + timedelta(seconds=3)).isoformat(),
    ]
    assert context["ti"].pushed["receipts"]["id-2"]["matched_by"] == "resource_id"


def test_receipts_without_callback_data_are_matched_by_recipient():
    events = FakeInletEvents()
    sensor = DeliveryReceiptSensor(task_id="w", resource_ids=RESULTS, mode="poke")
    context = make_context(events)
    events.add(1, "", "DeliveredToTerminal", "tel:+2250700000001")
    events.add(1, "", "DeliveredToNetwork", "tel:+2250700000002")
    events.add(1, "", "DeliveredToTerminal", "tel:+2250700000099")  # someone else's
    done = sensor.poke(context)
    assert done.xcom_value == {"id-1": "DeliveredToTerminal", "id-2": "DeliveredToNetwork"}
    assert {v["matched_by"] for v in context["ti"].pushed["receipts"].values()} == {"recipient"}


def test_fail_on_impossible_names_the_undelivered():
    from airflow_provider_orange_sms.version_compat import AirflowFailException

    events = FakeInletEvents()
    events.add(1, "id-1", "DeliveredToTerminal")
    events.add(1, "id-2", "DeliveryImpossible", "tel:+2250700000002")
    sensor = DeliveryReceiptSensor(task_id="w", resource_ids=RESULTS, mode="poke", fail_on_impossible=True)
    context = make_context(events)
    with pytest.raises(AirflowFailException, match=r"id-2 \(tel:\+2250700000002\)"):
        sensor.poke(context)
    assert context["ti"].pushed["receipts"]["id-2"]["status"] == "DeliveryImpossible"


def test_timeout_names_the_ids_without_a_final_receipt():
    try:
        from airflow.sdk.exceptions import AirflowSensorTimeout
    except ImportError:  # Airflow < 3.2
        from airflow.exceptions import AirflowSensorTimeout

    events = FakeInletEvents()
    events.add(1, "id-1", "DeliveredToTerminal")
    events.add(1, "id-2", "MessageWaiting")
    sensor = DeliveryReceiptSensor(task_id="w", resource_ids=RESULTS, mode="poke", timeout=0, poke_interval=0)
    context = make_context(events)
    with pytest.raises(
        AirflowSensorTimeout,
        match=r"No final delivery receipt for 1 of 2 SMS: id-2 \(last status MessageWaiting\)",
    ):
        sensor.execute(context)
    assert context["ti"].pushed["missing_resource_ids"] == ["id-2"]


def test_nothing_sent_means_nothing_to_wait_for():
    sensor = DeliveryReceiptSensor(task_id="w", resource_ids=RESULTS[2:], mode="poke")
    assert sensor.poke(make_context(FakeInletEvents())).xcom_value == {}


def test_delivery_notification_not_supported_ends_the_wait_without_failing_on_impossible():
    events = FakeInletEvents()
    events.add(1, "id-1", "DeliveredToTerminal")
    events.add(1, "id-2", "DeliveryNotificationNotSupported", "tel:+2250700000002")
    sensor = DeliveryReceiptSensor(task_id="w", resource_ids=RESULTS, mode="poke", fail_on_impossible=True)
    done = sensor.poke(make_context(events))
    assert done.is_done
    assert done.xcom_value == {"id-1": "DeliveredToTerminal", "id-2": "DeliveryNotificationNotSupported"}
