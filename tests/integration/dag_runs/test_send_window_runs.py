"""Quiet hours and short balances in real DAG runs (dag.test): the task defers on Airflow's triggers
and resumes to send."""

from __future__ import annotations

from collections import Counter

import pendulum
import pytest

from airflow_provider_orange_sms.sandbox import SandboxConfig
from tests.support.dags import TEST_DAGS, load_dag
from tests.support.sandbox import received, top_up_after_balance_reads


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


def test_the_window_opens_inside_airflow(airflow_db, fast_conn, sandbox):
    """dags test: the task defers on a DateTimeTrigger, resumes when it fires and sends then."""
    dag = load_dag(TEST_DAGS / "send_window.py", "test_sms_send_window")
    # Whole seconds: the window is written as HH:MM:SS, so it opens exactly at this instant.
    opening = pendulum.now("UTC").add(seconds=3).replace(microsecond=0)
    closes = opening.add(hours=1)  # across midnight too
    run = dag.test(run_conf={"opens": opening.format("HH:mm:ss"), "closes": closes.format("HH:mm:ss")})
    assert run.get_task_instance("send").state == "success"
    assert len(sandbox.state.messages) == 2
    assert min(m.received_at for m in sandbox.state.messages) >= opening.timestamp()


def test_short_balance_waits_in_the_trigger_inside_airflow(airflow_db, fast_conn, sandbox):
    """dags test: the task defers on BalanceTrigger, the balance is topped up, the task resumes and sends."""
    sandbox.state.balances["CIV"] = 1
    # Balance reads: the operator's check, then the trigger's first poll.
    with top_up_after_balance_reads(sandbox, reads=2, country="CIV", units=10):
        run = load_dag(TEST_DAGS / "send_window.py", "test_sms_check_balance").test()

    assert run.get_task_instance("send").state == "success"
    assert received(sandbox) == Counter(["tel:+2250700000001", "tel:+2250700000002"])
    assert sandbox.state.balances["CIV"] == 8
