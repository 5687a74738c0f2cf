"""Re-running a DAG run through Airflow in tests: cleared (the same run) or deleted and re-created.

``dag.test(logical_date=d, run_after=d)`` run again deletes the run of that logical date and creates
it anew with the same ``run_id`` (``airflow.models.dagrun.get_or_create_dagrun``): that is a *new
incarnation* of the run, not a clear. :func:`cleared_not_recreated` makes it clear and re-run the
existing run instead, as a clear from the UI or the REST API does (``clear_task_instances`` with a
run state: the run's ``clear_number`` grows, each task instance starts a new try with a new id).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def cleared_not_recreated() -> Iterator[None]:
    """Within this context, ``dag.test()`` of an existing run clears it and runs it again."""
    from unittest import mock

    from airflow.models import dagrun
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    original = dagrun.get_or_create_dagrun

    def clear_existing(*, dag: Any, run_id: str, session: Any, **kwargs: Any) -> Any:
        # dag.test() has already cleared the run's task instances (without touching the run).
        run = session.scalar(
            select(dagrun.DagRun).where(dagrun.DagRun.dag_id == dag.dag_id, dagrun.DagRun.run_id == run_id)
        )
        if run is None:
            return original(dag=dag, run_id=run_id, session=session, **kwargs)
        run.clear_number += 1  # what clear_task_instances does when the UI or REST API clears a run
        run.state = DagRunState.RUNNING
        session.commit()
        run.dag = dag  # as create_dagrun() leaves it
        return run

    with mock.patch.object(dagrun, "get_or_create_dagrun", clear_existing):
        yield


def fail_task_of_a_killed_worker(dag_id: str, run_id: str, task_id: str) -> None:
    """
    Mark a task instance whose worker was killed as failed, as the scheduler does once its
    heartbeats time out (there is no scheduler in these tests).
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id):
            ti.state = TaskInstanceState.FAILED


def xcom_value(run: Any, task_id: str, key: str) -> Any:
    """The XCom ``key`` of ``task_id`` in the DAG run ``run`` (read from the metadata DB)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key=key)
            .one()
        )
        return XComModel.deserialize_value(row)


def without_comms_debug(output: str) -> str:
    """
    ``output`` without Airflow 3.0's DEBUG lines of the in-process supervisor messages.

    Airflow 3.0's dag.test() logs every message between task and supervisor at DEBUG, the very
    values sent to the secrets masker (``MaskSecret(value=…)``: a Variable's, a connection's) and
    the rendered fields before the server redacts them. Airflow's own logging of any secret, not
    something an operator can change; 3.1+ does not log them.
    """
    comms = ("Sending request", "Received message from task runner")
    return "\n".join(
        line for line in output.splitlines() if not ("[debug" in line and any(c in line for c in comms))
    )
