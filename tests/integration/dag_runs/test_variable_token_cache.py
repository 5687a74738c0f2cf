"""The Variable token store, exercised inside real task runs (Variables only work there)."""

from __future__ import annotations

import pytest

from tests.support.dags import TEST_DAGS, load_dag
from tests.support.sandbox import connection_json


def _token_variable_keys() -> list[str]:
    from airflow.models import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        return [v.key for v in session.query(Variable).filter(Variable.key.like("orange_sms_token_%"))]


@pytest.fixture
def no_token_variables(airflow_db):
    """Each test starts and ends without token Variables, even when an assertion failed."""
    from airflow.models import Variable

    for key in _token_variable_keys():
        Variable.delete(key)
    yield
    for key in _token_variable_keys():
        Variable.delete(key)


@pytest.mark.parametrize(("token_cache", "expected_token_requests"), [("variable", 1), ("none", 2)])
def test_tasks_share_the_token_through_a_variable(
    no_token_variables, sandbox, cache_dir, monkeypatch, token_cache, expected_token_requests
):
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, token_cache=token_cache))
    dag = load_dag(TEST_DAGS / "variable_token_cache.py", "test_token_store")
    run = dag.test()
    assert run.state == "success"
    assert [m.message for m in sandbox.state.messages] == ["first task", "second task"]
    assert sandbox.state.token_requests == expected_token_requests
    assert not list(cache_dir.glob("token-*.json"))  # nothing went to the file store

    keys = _token_variable_keys()
    if token_cache == "variable":
        from airflow.models import Variable

        assert len(keys) == 1
        stored = Variable.get(keys[0], deserialize_json=True)
        assert stored["access_token"] in sandbox.state.tokens
        assert sandbox.client_secret not in str(stored)
    else:
        assert keys == []
