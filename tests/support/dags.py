"""DAGs in tests: where the example and test DAGs are, parsing one, and reading what a run left."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = _ROOT / "example_dags"
TEST_DAGS = _ROOT / "tests" / "dags"


def load_dag(path: Path, dag_id: str) -> Any:
    """Parse the DAG file at ``path`` with Airflow's DagBag and return ``dag_id`` (no import errors)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[dag_id]


def xcom(run: Any, task_id: str) -> Any:
    """The ``return_value`` XCom of ``task_id`` in the DAG run ``run`` (read from the metadata DB)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value")
            .one()
        )
        return XComModel.deserialize_value(row)


def fake_ti(try_number: int = 1) -> SimpleNamespace:
    """A task instance for ``execute`` called outside Airflow: its identity, and what it pushed."""
    pushed: dict[str, Any] = {}
    return SimpleNamespace(
        dag_id="campaign",
        task_id="send",
        run_id="manual__2026-01-01",
        map_index=-1,
        try_number=try_number,
        pushed=pushed,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )
