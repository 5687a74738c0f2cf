"""What differs between the Airflow versions the suite runs on (3.3 and 3.0)."""

from __future__ import annotations

import pytest

#: Why tests that clear a run through tests/support/airflow_runs.py skip on 3.0.
NO_REAL_CLEAR_ON_3_0 = "the test's real clear needs airflow.models.dagrun.get_or_create_dagrun (3.1+)"
#: Why tests whose task reads an asset's inlet events through dag.test() skip on 3.0.
INACTIVE_INLETS_ON_3_0 = "dag.test() leaves inlet assets inactive and 3.0 refuses the task"


def on_airflow_3_0() -> bool:
    """Whether the suite runs on Airflow 3.0 (scripts/test-oldest-airflow.sh)."""
    from importlib.metadata import version

    return version("apache-airflow").startswith("3.0.")


def skip_on_airflow_3_0(reason: str) -> pytest.MarkDecorator:
    """Skip a test on Airflow 3.0 only, saying why."""
    return pytest.mark.skipif(on_airflow_3_0(), reason=f"Airflow 3.0: {reason}")


def task_deferred() -> type[BaseException]:
    """Airflow's TaskDeferred (in the Task SDK from 3.2, in ``airflow.exceptions`` before)."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow < 3.2
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]
    return TaskDeferred
