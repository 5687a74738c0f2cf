"""OrangeSMSNotifier as a Deadline Alert's callback: awaited in the triggerer, exactly once per deadline.

Airflow's own ``CallbackTrigger`` runs the notifier here, as the triggerer does; the deadline
record lives in an in-memory store (a triggerer keeps it in Variables, see
tests/integration/processes/test_deadline_alerts.py for the real thing).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_orange_sms.ledger import DeadlineRecord
from airflow_provider_orange_sms.ledger import deadline_record as deadline_record_module
from airflow_provider_orange_sms.notifications import orange_sms as notifier_module
from airflow_provider_orange_sms.notifications.orange_sms import OrangeSMSNotifier
from tests.support.sandbox import received
from tests.support.versions import skip_on_airflow_3_0
from tests.unit.notifications.deadline_callbacks import (
    NOTIFIER_PATH,
    SharedStore,
    deadline_context,
    run_callback_trigger,
)

ON_CALL = ["+2250700000001", "+2250700000002"]
#: Deadline Alerts, their callbacks and the trigger that runs them arrived in Airflow 3.1.
needs_deadlines = skip_on_airflow_3_0("Deadline Alerts arrived in Airflow 3.1")


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> SharedStore:
    """The deadline records every notifier of the test reads and writes (instead of Variables)."""
    shared = SharedStore()
    monkeypatch.setattr(deadline_record_module, "VariableLedgerStore", lambda: shared)
    monkeypatch.setattr(deadline_record_module, "CLAIM_SETTLE", 0.0)
    monkeypatch.setattr(notifier_module, "OWNER_POLL", 0.01)
    return shared


@needs_deadlines
def test_the_notifier_is_a_deadline_callback_with_its_own_parameters():
    from airflow.sdk import AsyncCallback, SyncCallback

    kwargs = {"recipients": ON_CALL, "message": "{{ dag_run.dag_id }} is late"}
    assert AsyncCallback(OrangeSMSNotifier, kwargs=kwargs).path == NOTIFIER_PATH
    assert SyncCallback(OrangeSMSNotifier, kwargs=kwargs).kwargs == kwargs


@needs_deadlines
def test_the_callback_trigger_texts_each_on_call_number_the_rendered_message(fast_conn, sandbox, store):
    events = run_callback_trigger(
        {"recipients": ON_CALL, "message": "{{ dag_run.dag_id }} missed its deadline"},
        deadline_context("nightly_load"),
    )

    assert events[-1]["state"] == "success", events
    assert sorted((m.address, m.message) for m in sandbox.state.messages) == [
        ("tel:+2250700000001", "nightly_load missed its deadline"),
        ("tel:+2250700000002", "nightly_load missed its deadline"),
    ]
    [record] = store.values.values()
    assert record.count('"sent"') == 2


@needs_deadlines
def test_the_event_loop_runs_while_the_sms_is_in_flight(fast_conn, sandbox, store):
    # The sandbox holds the SMS until a coroutine on the triggerer's loop lets it go: the send can
    # only finish if the loop keeps running meanwhile (a blocking send would never get its answer).
    release = threading.Event()
    arrived = threading.Event()
    original = sandbox.state.record_message

    def held_until_the_loop_releases_it(**fields: Any) -> Any:
        arrived.set()
        assert release.wait(timeout=120), "the event loop was blocked while the SMS was in flight"
        return original(**fields)

    sandbox.state.record_message = held_until_the_loop_releases_it

    async def loop_side() -> None:
        while not arrived.is_set():
            await asyncio.sleep(0.01)
        release.set()

    events = run_callback_trigger(
        {"recipients": ON_CALL[:1], "message": "late"}, deadline_context("nightly_load"), beside=loop_side()
    )

    assert events[-1]["state"] == "success", events
    assert received(sandbox) == {"tel:+2250700000001": 1}


@needs_deadlines
def test_a_second_run_of_the_same_deadline_texts_nobody_again(fast_conn, sandbox, store):
    context = deadline_context("nightly_load")
    kwargs = {"recipients": ON_CALL, "message": "late"}

    assert run_callback_trigger(kwargs, context)[-1]["state"] == "success"
    assert run_callback_trigger(kwargs, context)[-1]["state"] == "success"

    assert received(sandbox) == {"tel:+2250700000001": 1, "tel:+2250700000002": 1}


@needs_deadlines
def test_a_run_killed_after_its_request_left_is_not_repeated_for_that_number(fast_conn, sandbox, store):
    # What a triggerer killed right after the first SMS left leaves behind: "in flight".
    context = deadline_context("nightly_load")
    key = deadline_record_module.deadline_record_key(context["deadline"]["id"])
    store.set(
        key,
        {"owner": "killed", "recipients": {"tel:+2250700000001": {"status": "in_flight"}}},
        "left by a killed triggerer",
    )

    events = run_callback_trigger({"recipients": ON_CALL, "message": "late"}, context)

    assert events[-1]["state"] == "success", events
    assert received(sandbox) == {"tel:+2250700000002": 1}
    assert store.get(key)["recipients"]["tel:+2250700000001"] == {"status": "in_flight"}


@needs_deadlines
def test_two_triggerers_running_the_same_callback_send_once(fast_conn, sandbox, monkeypatch):
    # Both read the record before either claims it: the claim settles, the last writer sends.
    shared = SharedStore()
    monkeypatch.setattr(deadline_record_module, "VariableLedgerStore", lambda: shared)
    both_read = threading.Barrier(2)
    reads = iter(range(1_000_000))
    original_get, original_set = shared.get, shared.set
    owners: list[str] = []

    def get_in_step(key: str) -> Any:
        value = original_get(key)
        if next(reads) < 2:  # each run's first read: the one before its claim
            both_read.wait(timeout=60)
        return value

    def set_noting_owners(key: str, value: Any, description: str) -> None:
        owners.append(value["owner"])
        original_set(key, value, description)

    shared.set = set_noting_owners  # type: ignore[method-assign]
    shared.get = get_in_step  # type: ignore[method-assign]
    monkeypatch.setattr(deadline_record_module, "CLAIM_SETTLE", 0.3)
    monkeypatch.setattr(notifier_module, "OWNER_POLL", 0.01)
    context = deadline_context("nightly_load")
    key = deadline_record_module.deadline_record_key(context["deadline"]["id"])
    results: list[list[dict[str, Any]]] = []

    def triggerer() -> None:
        results.append(run_callback_trigger({"recipients": ON_CALL, "message": "late"}, context))

    threads = [threading.Thread(target=triggerer, name=f"triggerer-{n}") for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    # The run that stood back waited for the other's outcome, and reports it.
    assert [r[-1]["state"] for r in results] == ["success", "success"]
    assert len(set(owners[:2])) == 2  # both claimed it
    assert shared.get(key)["done"] is True
    assert received(sandbox) == {"tel:+2250700000001": 1, "tel:+2250700000002": 1}


@needs_deadlines
def test_a_bad_number_fails_the_callback_naming_it_before_anything_is_sent(fast_conn, sandbox, store):
    events = run_callback_trigger(
        {"recipients": ["+2250700000001", "not-a-number"], "message": "late"}, deadline_context("nightly")
    )

    assert events[-1]["state"] == "failed"
    assert "'not-a-number'" in events[-1]["body"]
    assert sandbox.state.messages == []
    assert store.values == {}


def test_a_deadline_id_that_is_not_a_uuid_is_refused():
    with pytest.raises(ValueError, match="'../x'"):
        DeadlineRecord("../x")


@needs_deadlines  # 3.0's BaseNotifier is not awaitable
def test_a_notifier_awaited_outside_a_deadline_keeps_no_record(fast_conn, sandbox, store):
    notifier = OrangeSMSNotifier(recipients=ON_CALL[:1], message="{{ reason }}", context={"reason": "late"})

    asyncio.run(_await(notifier))

    assert [m.message for m in sandbox.state.messages] == ["late"]
    assert store.values == {}


async def _await(notifier: OrangeSMSNotifier) -> None:
    await notifier


def test_a_record_claimed_by_another_run_during_the_settle_sends_nothing(fast_conn, sandbox):
    shared = SharedStore()
    deadline_id = str(uuid.uuid4())

    def other_run_claims(_seconds: float) -> None:
        shared.set(deadline_record_module.deadline_record_key(deadline_id), {"owner": "other"}, "other")

    record = DeadlineRecord(deadline_id, store=shared, sleep=other_run_claims)

    assert record.claim(["tel:+2250700000001"]) is False
    assert record.lost


@needs_deadlines
def test_a_run_that_lost_its_claim_to_a_silent_owner_takes_over(fast_conn, sandbox, store, monkeypatch):
    # Another run's claim lands during this one's settle, and that run then dies without a word.
    original_set = store.set

    def claimed_by_a_run_that_dies(key: str, value: Any, description: str) -> None:
        original_set(key, value, description)
        if not getattr(store, "interfered", False):
            store.interfered = True  # type: ignore[attr-defined]
            silent = {"owner": "dead", "updated_at": "2026-01-01T00:00:00+00:00", "recipients": {}}
            original_set(key, silent, description)

    store.set = claimed_by_a_run_that_dies  # type: ignore[method-assign]

    events = run_callback_trigger({"recipients": ON_CALL, "message": "late"}, deadline_context("nightly"))

    assert events[-1]["state"] == "success", events
    assert received(sandbox) == {"tel:+2250700000001": 1, "tel:+2250700000002": 1}


@needs_deadlines
def test_a_run_that_lost_its_claim_reports_the_owners_failures(fast_conn, sandbox, store):
    context = deadline_context("nightly")
    key = deadline_record_module.deadline_record_key(context["deadline"]["id"])
    original_set = store.set

    def claimed_by_a_run_that_failed(key_: str, value: Any, description: str) -> None:
        original_set(key_, value, description)
        if not getattr(store, "interfered", False):
            store.interfered = True  # type: ignore[attr-defined]
            owner = {
                "owner": "other",
                "done": True,
                "recipients": {f"tel:{ON_CALL[0]}": {"status": "uncertain"}},
            }
            original_set(key_, owner, description)

    store.set = claimed_by_a_run_that_failed  # type: ignore[method-assign]

    events = run_callback_trigger({"recipients": ON_CALL[:1], "message": "late"}, context)

    assert events[-1]["state"] == "failed"
    assert f"tel:{ON_CALL[0]}: uncertain" in events[-1]["body"]
    assert sandbox.state.messages == []
    assert store.get(key)["owner"] == "other"


@needs_deadlines
def test_a_sync_callback_runs_the_notifier_as_an_executor_does(fast_conn, sandbox, store):
    import structlog
    from airflow.sdk.execution_time.callback_supervisor import execute_callback

    context = deadline_context("nightly_load")
    kwargs = {"recipients": ON_CALL, "message": "{{ dag_run.dag_id }} is late", "context": context}

    success, error = execute_callback(NOTIFIER_PATH, kwargs, "", None, structlog.get_logger())

    assert (success, error) == (True, None)
    assert [(m.address, m.message) for m in sandbox.state.messages] == [
        ("tel:+2250700000001", "nightly_load is late"),
        ("tel:+2250700000002", "nightly_load is late"),
    ]
    assert store.values == {}  # an executor's callback process cannot write Variables: no record


def test_a_finished_run_sweeps_the_oldest_records_past_their_retention():
    shared = SharedStore()
    old, young = "2026-01-01T00:00:00+00:00", datetime.now(timezone.utc).isoformat()
    ids = [str(uuid.UUID(int=n)) for n in range(1, 5)]  # in time order, as Airflow's UUID7s are
    for deadline_id, updated in zip(ids, [old, old, young, old], strict=True):
        key = deadline_record_module.deadline_record_key(deadline_id)
        shared.set(key, {"done": True, "updated_at": updated, "recipients": {}}, "a record")
    record = DeadlineRecord(str(uuid.UUID(int=99)), store=shared)

    assert record.sweep() == 2
    # The oldest two went; the sweep stopped at the first record still kept.
    assert sorted(shared.values) == [deadline_record_module.deadline_record_key(i) for i in ids[2:]]
