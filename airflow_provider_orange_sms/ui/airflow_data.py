"""
What the pages read from Airflow's metadata database: the ONE module of the pages that touches
Airflow's models (``tests/unit/test_airflow_internals.py`` and
``tests/integration/db/test_airflow_internals.py`` guard them).

It reads, never writes: the XComs the send operator pushes (``sms_plan`` before its batch, its
result list as ``return_value`` on success or ``sms_results`` on failure), the sent ledger of a send
task that has not reported yet (its Variables: what it sent so far), its task instances' states,
the events of the delivery-receipts and inbound-messages assets, the subscription records and a few
Variables, and the receiver's configuration. The plugin runs inside the API server, which has the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_orange_sms.ledger import ledger_key
from airflow_provider_orange_sms.receipts import (
    ASSET_NAME,
    INBOUND_ASSET_NAME,
    LEGACY_VARIABLE,
    VARIABLE_PREFIX,
    SubscriptionRecord,
    variable_key,
)
from airflow_provider_orange_sms.settings import PARTIAL_RESULTS_KEY, PLAN_KEY, configured_secret

#: XCom keys of SendSMSOperator's results: on success, and on a failure part-way.
RESULTS_KEYS = ("return_value", PARTIAL_RESULTS_KEY)
#: The class whose tasks' results are delivery-receipt subscription ids.
SUBSCRIPTION_OPERATOR = "CreateDeliveryReceiptSubscriptionOperator"
#: The Variable the subscription examples build the receiver's public URL from.
PUBLIC_URL_VARIABLE = "orange_sms_receipts_public_url"


@dataclass
class SendTask:
    """
    One SendSMSOperator task instance of a run, as its XComs and state say.

    :param dag_id: Its DAG.
    :param run_id: Its run.
    :param task_id: The task.
    :param map_index: Its map index (-1 when not mapped).
    :param state: The task instance's state (``None`` if unknown).
    :param plan: Its ``sms_plan`` XCom.
    :param results: Its result list (``return_value`` or ``sms_results``), ``None`` while sending.
    :param when: When it last ran (end, else start), for daily usage.
    :param ledger_chunks: While it has no results: its sent ledger's chunks, in order (``None`` when
        it has none yet, or its key is unknown).
    :param waiting: While deferred: ``{"for": "send_window" | "balance" | "trigger", "until": ISO
        8601 or None}``, from the trigger it waits on (``until``: a send window's opening).
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None = None
    plan: dict[str, Any] | None = None
    results: list[dict[str, Any]] | None = None
    when: datetime | None = None
    ledger_chunks: list[Any] | None = None
    waiting: dict[str, Any] | None = None
    _results_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RunInfo:
    """
    A DAG run's times: receipts are looked for from ``since`` on.

    :param state: The run's state.
    :param since: ``run_after`` (kept by a clear), else its start.
    :param run_after: The run's ``run_after`` (what its sent ledgers are marked with).
    :param clear_number: How many times the run was cleared.
    """

    state: str | None
    since: datetime | None
    run_after: datetime | None = None
    clear_number: int | None = None


def _deserialize(row: Any) -> Any:
    from airflow.models.xcom import XComModel

    return XComModel.deserialize_value(row)


def _collect(rows: Any) -> dict[tuple[str, str, str, int], SendTask]:
    tasks: dict[tuple[str, str, str, int], SendTask] = {}
    others: list[Any] = []
    for row in rows:
        if row.key == PLAN_KEY:
            plan = _deserialize(row)
            if isinstance(plan, dict) and not plan.get("dry_run"):
                key = (row.dag_id, row.run_id, row.task_id, row.map_index)
                tasks[key] = SendTask(row.dag_id, row.run_id, row.task_id, row.map_index, plan=plan)
        else:
            others.append(row)
    for row in others:
        task = tasks.get((row.dag_id, row.run_id, row.task_id, row.map_index))
        if task is None or task._results_key == "return_value":
            continue  # return_value (success) wins over sms_results (an earlier failed try)
        value = _deserialize(row)
        if isinstance(value, list):
            task.results = [entry for entry in value if isinstance(entry, dict)]
            task._results_key = row.key
    return tasks


def _ti_key(ti: Any) -> tuple[Any, Any, Any, Any]:
    return (ti.dag_id, ti.run_id, ti.task_id, ti.map_index)


def _add_states(session: Any, tasks: dict[tuple[str, str, str, int], SendTask]) -> None:
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select, tuple_

    if not tasks:
        return
    keys = list(tasks)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        query = select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
            TaskInstance.start_date,
            TaskInstance.end_date,
            TaskInstance.trigger_id,
        ).where(
            tuple_(
                TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index
            ).in_(chunk)
        )
        for dag_id, run_id, task_id, map_index, state, started, ended, trigger_id in session.execute(query):
            task = tasks[(dag_id, run_id, task_id, map_index)]
            task.state = None if state is None else str(getattr(state, "value", state))
            task.when = ended or started
            if task.state == "deferred":
                task.waiting = _waiting_on(session, trigger_id)


#: The triggers SendSMSOperator defers on (by class name), and what it waits for on each.
_WAITS = {"DateTimeTrigger": "send_window", "BalanceTrigger": "balance"}


def _waiting_on(session: Any, trigger_id: int | None) -> dict[str, Any]:
    """What a deferred task waits for, from its trigger's row (a send window: until its opening)."""
    from airflow.models.trigger import Trigger

    trigger = None if trigger_id is None else session.get(Trigger, trigger_id)
    if trigger is None:
        return {"for": "trigger", "until": None}
    kind = _WAITS.get(str(trigger.classpath).rsplit(".", 1)[-1], "trigger")
    until = None
    if kind == "send_window":
        try:
            moment = trigger.kwargs.get("moment")
        except Exception:  # kwargs encrypted with another Fernet key: the wait is still shown
            moment = None
        until = moment.isoformat() if isinstance(moment, datetime) else None
    return {"for": kind, "until": until}


def run_send_tasks(
    dag_id: str, run_id: str, task_id: str | None = None, map_index: int | None = None
) -> tuple[RunInfo | None, list[SendTask]]:
    """
    The run (``None`` if there is none) and its send tasks, in task order.

    :param dag_id: The DAG.
    :param run_id: The run.
    :param task_id: Only this task.
    :param map_index: Only this map index (with ``task_id``; -1 for an unmapped task).
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.execute(
            select(DagRun.state, DagRun.run_after, DagRun.start_date, DagRun.clear_number).where(
                DagRun.dag_id == dag_id, DagRun.run_id == run_id
            )
        ).first()
        if run is None:
            return None, []
        state, run_after, started, clear_number = run
        info = RunInfo(
            None if state is None else str(getattr(state, "value", state)),
            run_after or started,
            run_after,
            clear_number,
        )
        query = select(XComModel).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.key.in_((PLAN_KEY, *RESULTS_KEYS)),
        )
        if task_id is not None:
            query = query.where(XComModel.task_id == task_id)
            if map_index is not None:
                query = query.where(XComModel.map_index == map_index)
        tasks = _collect(session.scalars(query))
        _add_states(session, tasks)
        for task in tasks.values():
            if task.results is None:
                task.ledger_chunks = _ledger_chunks(session, task)
    return info, sorted(tasks.values(), key=lambda t: (t.task_id, t.map_index))


def _ledger_chunks(session: Any, task: SendTask) -> list[Any] | None:
    """
    The chunks of ``task``'s sent ledger (Variables ``<key>_0``, ``<key>_1`` …), in order, up to the
    first missing or unreadable one, as the operator reads them; ``None`` when it has none.

    The key is in the plan (``ledger``); an unmapped task's is also derived from its identity.
    """
    from airflow.models.crypto import get_fernet
    from airflow.models.variable import Variable
    from sqlalchemy import select

    key = (task.plan or {}).get("ledger")
    if not isinstance(key, str) and task.map_index < 0:
        key = ledger_key(task.dag_id, task.task_id, task.run_id, -1)
    if not isinstance(key, str):
        return None
    rows = session.execute(
        select(Variable.key, Variable._val, Variable.is_encrypted).where(
            Variable.key.like(key.replace("_", "\\_") + "\\_%", escape="\\")
        )
    ).all()
    stored = {name: (value, encrypted) for name, value, encrypted in rows}
    chunks: list[Any] = []
    while f"{key}_{len(chunks)}" in stored:
        value, encrypted = stored[f"{key}_{len(chunks)}"]
        try:
            text = get_fernet().decrypt(value.encode()).decode() if encrypted else value
            chunks.append(json.loads(text))
        except Exception:  # another Fernet key, or not JSON: what follows cannot be placed
            break
    return chunks or None


def send_tasks_since(since: datetime) -> list[SendTask]:
    """
    Every send task that pushed its plan since ``since`` (any DAG), for the usage chart.

    :param since: The oldest XCom time to include.
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        plans = session.execute(
            select(XComModel.dag_id, XComModel.run_id).where(
                XComModel.key == PLAN_KEY, XComModel.timestamp >= since
            )
        ).all()
        runs = {(dag_id, run_id) for dag_id, run_id in plans}
        tasks: dict[tuple[str, str, str, int], SendTask] = {}
        for dag_id, run_id in sorted(runs):
            rows = session.scalars(
                select(XComModel).where(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id == run_id,
                    XComModel.key.in_((PLAN_KEY, *RESULTS_KEYS)),
                )
            )
            tasks.update(_collect(rows))
        _add_states(session, tasks)
    return list(tasks.values())


def asset_events(
    name: str, *, since: datetime | None = None, limit: int = 1000, newest_first: bool = False
) -> list[dict[str, Any]]:
    """
    Events of the asset ``name``: ``{"timestamp": datetime, "extra": {...}}``.

    :param name: The asset's name.
    :param since: Only events from then on.
    :param limit: At most this many.
    :param newest_first: Newest first (else oldest first).
    """
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = (
        select(AssetEvent.timestamp, AssetEvent.extra)
        .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
        .where(AssetModel.name == name)
    )
    if since is not None:
        query = query.where(AssetEvent.timestamp >= since)
    order = AssetEvent.timestamp.desc() if newest_first else AssetEvent.timestamp.asc()
    query = query.order_by(order, AssetEvent.id.desc() if newest_first else AssetEvent.id.asc()).limit(limit)
    with create_session() as session:
        return [
            {"timestamp": timestamp, "extra": extra if isinstance(extra, dict) else {}}
            for timestamp, extra in session.execute(query)
        ]


def receipt_events(since: datetime | None, limit: int) -> list[dict[str, Any]]:
    """
    Delivery-receipt events from ``since`` on, oldest first.

    :param since: Only events from then on.
    :param limit: At most this many.
    """
    return asset_events(ASSET_NAME, since=since, limit=limit)


def latest_receipts(limit: int) -> list[dict[str, Any]]:
    """
    The newest delivery-receipt events.

    :param limit: How many.
    """
    return asset_events(ASSET_NAME, limit=limit, newest_first=True)


def latest_replies(limit: int) -> list[dict[str, Any]]:
    """
    The newest reply events (subscribers' replies).

    :param limit: How many.
    """
    return asset_events(INBOUND_ASSET_NAME, limit=limit, newest_first=True)


def variable(key: str) -> str | None:
    """
    A Variable's value, or ``None`` when it is not set.

    :param key: The Variable's key.
    """
    from airflow.models import Variable

    value = Variable.get(key, default_var=None)
    return None if value is None else str(value)


@dataclass(frozen=True)
class SubscriptionSource:
    """
    The delivery-receipt subscription the page shows for a connection, and where it was found.

    :param subscription_id: Its id (``None``: none to show).
    :param source: Where the id came from, or why there is none.
    :param record: The connection's record, when it has one.
    """

    subscription_id: str | None
    source: str
    record: SubscriptionRecord | None = None


def connection_subscription(conn_id: str) -> SubscriptionSource:
    """
    The subscription of connection ``conn_id``: its record (the Variable
    ``orange_sms_receipts_subscription.<conn_id>``, written by the subscription operators), else
    the legacy Variable ``orange_sms_receipts_subscription_id``, else, while no connection has a
    record yet (tasks run before records existed), the result of the latest successful
    ``CreateDeliveryReceiptSubscriptionOperator`` task.

    :param conn_id: The connection shown.
    """
    key = variable_key(conn_id)
    raw = variable(key)
    if raw is not None:
        record = SubscriptionRecord.from_json(raw)
        if record is None:
            return SubscriptionSource(None, f"Variable {key} does not hold a subscription record")
        if record.subscription_id:
            return SubscriptionSource(record.subscription_id, f"Variable {key}", record)
        return SubscriptionSource(
            None, f"subscription {record.deleted_subscription_id} was deleted (Variable {key})", record
        )
    legacy = variable(LEGACY_VARIABLE)
    if legacy and legacy.strip():
        return SubscriptionSource(legacy.strip(), f"Variable {LEGACY_VARIABLE}, not tied to a connection")
    if _any_subscription_record():
        return SubscriptionSource(None, f"none recorded for this connection (Variable {key})")
    return _latest_created_subscription()


def _any_subscription_record() -> bool:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    pattern = VARIABLE_PREFIX.replace("_", "\\_") + "%"
    with create_session() as session:
        found = session.execute(
            select(Variable.key).where(Variable.key.like(pattern, escape="\\")).limit(1)
        ).first()
    return found is not None


def _latest_created_subscription() -> SubscriptionSource:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel)
            .join(
                TaskInstance,
                (TaskInstance.dag_id == XComModel.dag_id)
                & (TaskInstance.run_id == XComModel.run_id)
                & (TaskInstance.task_id == XComModel.task_id)
                & (TaskInstance.map_index == XComModel.map_index),
            )
            .where(
                TaskInstance.operator == SUBSCRIPTION_OPERATOR,
                TaskInstance.state == "success",
                XComModel.key == "return_value",
            )
            .order_by(XComModel.timestamp.desc())
            .limit(1)
        ).first()
        if row is None:
            return SubscriptionSource(None, "no subscription recorded yet")
        value = _deserialize(row)
        where = f"task {row.dag_id}.{row.task_id} of {row.run_id}, connection unknown"
    return SubscriptionSource(str(value) if value else None, where)


def receiver_secret_set() -> bool:
    """Whether ``[orange_sms] delivery_receipts_secret`` is set (the receiver answers)."""
    return bool(configured_secret())
