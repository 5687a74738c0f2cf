"""The operators close their hook's HTTP session when a task method ends, however it ends, and an
operator (or a hook) used again after that works."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.operators.orange_sms import GetSMSBalanceOperator, SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowFailException

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow < 3.2
    from airflow.exceptions import TaskDeferred


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


@pytest.fixture
def closed(monkeypatch):
    """The clients closed so far, in order (each is closed for real too)."""
    clients: list[OrangeSMSClient] = []
    close = OrangeSMSClient.close

    def closing(client: OrangeSMSClient) -> None:
        clients.append(client)
        close(client)

    monkeypatch.setattr(OrangeSMSClient, "close", closing)
    return clients


def test_an_operator_closes_its_hook_and_runs_again_with_a_new_session(fast_conn, sandbox, closed):
    op = GetSMSBalanceOperator(task_id="balance", country="CIV")
    first = op.execute(context={})
    assert len(closed) == 1
    assert "client" not in op.hook.__dict__  # the hook holds no closed client

    assert op.execute(context={}) == first  # the same hook, reused: a new client
    assert len(closed) == 2
    assert closed[0] is not closed[1]


def test_a_send_closes_the_hook_after_the_batch(fast_conn, sandbox, closed):
    op = SendSMSOperator(task_id="send", recipients=["+2250700000001", "+2250700000002"], message="Hi")
    assert [r["status"] for r in op.execute(context={})] == ["sent", "sent"]
    assert closed == [closed[0]]


def test_a_failed_send_closes_the_hook_too(fast_conn, sandbox, closed):
    sandbox.state.rejected_recipients["tel:+2250700000666"] = "test"
    op = SendSMSOperator(task_id="send", recipients=["+2250700000666"], message="Hi")
    with pytest.raises(AirflowFailException, match="SVC0004"):
        op.execute(context={})
    assert len(closed) == 1


def test_a_deferred_send_closes_the_hook_before_the_wait(fast_conn, sandbox, closed):
    sandbox.state.balances["CIV"] = 0
    op = SendSMSOperator(
        task_id="send", recipients=["+2250700000001"], message="Hi", check_balance=True, deferrable=True
    )
    with pytest.raises(TaskDeferred):
        op.execute(context={})
    assert len(closed) == 1
    assert sandbox.state.messages == []
