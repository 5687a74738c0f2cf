"""
Guards on the Airflow internals the provider relies on that need the metadata DB: a running task's
Variable reads (``strict_variables.py``) and the sent ledger's Variable rows the pages read
(``ui/airflow_data.py``). The guards that need nothing else are in tests/unit/test_airflow_internals.py,
which lists every fenced module.
"""

from __future__ import annotations

import pytest

from tests.support.dags import TEST_DAGS, load_dag, xcom


@pytest.fixture
def guard_variables(airflow_db):
    from airflow.models import Variable

    Variable.set("orange_sms_guard_present", "here")
    Variable.delete("orange_sms_guard_missing")
    yield
    Variable.delete("orange_sms_guard_present")


def test_a_running_task_tells_a_missing_variable_from_a_present_one(guard_variables):
    dag = load_dag(TEST_DAGS / "strict_variables.py", "test_strict_variables")
    run = dag.test()
    assert run.state == "success"
    assert xcom(run, "read") == {"present": "here", "missing": None}


def test_the_airflow_internals_the_ledger_reading_uses_are_still_there(airflow_db):
    """ui/airflow_data.py reads a running task's sent ledger from the Variable table (encrypted
    values, decrypted with Airflow's Fernet) and the run's clear_number: fail loudly if they move."""
    from airflow.models.crypto import get_fernet
    from airflow.models.dagrun import DagRun
    from airflow.models.variable import Variable

    assert {"key", "_val", "is_encrypted"} <= set(vars(Variable))
    assert "clear_number" in vars(DagRun)
    fernet = get_fernet()
    assert fernet.decrypt(fernet.encrypt(b"[]")) == b"[]"
