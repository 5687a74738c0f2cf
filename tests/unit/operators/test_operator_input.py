"""SendSMSOperator's input, end to end against the sandbox: national numbers reach the country the
user meant (the connection's ``country`` or the operator's ``default_country``), a message Orange
would refuse for every recipient is refused before the first request, and nothing goes out when
any of it is wrong."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowFailException
from tests.support.sandbox import connection_json, send_requests


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


def use_connection(monkeypatch, sandbox, **extra):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_per_second=1000, **extra)
    )


def test_national_numbers_go_to_the_connections_country(sandbox, cache_dir, monkeypatch):
    use_connection(monkeypatch, sandbox, country="CIV")
    results = SendSMSOperator(task_id="send", recipients="0700000001, 07 00 00 00 02", message="Hi").execute(
        {}
    )
    assert [r["recipient"] for r in results] == ["tel:+2250700000001", "tel:+2250700000002"]
    assert [m.address for m in sandbox.state.messages] == ["tel:+2250700000001", "tel:+2250700000002"]


def test_default_country_overrides_the_connections_country(sandbox, cache_dir, monkeypatch):
    use_connection(monkeypatch, sandbox, country="CIV")
    op = SendSMSOperator(
        task_id="send",
        recipients=["771234567"],
        message="Hi",
        default_country="SEN",
        sender_address="2210000",
    )
    assert op.execute({})[0]["recipient"] == "tel:+221771234567"  # not +7 (Kazakhstan/Russia)
    assert [m.address for m in sandbox.state.messages] == ["tel:+221771234567"]


def test_a_national_number_without_any_country_is_refused_before_any_request(sandbox, cache_dir, monkeypatch):
    use_connection(monkeypatch, sandbox)  # no country
    op = SendSMSOperator(task_id="send", recipients=["+2250700000001", "0700000001"], message="Hi")
    with pytest.raises(AirflowFailException, match="'0700000001'.*nothing was sent") as excinfo:
        op.execute({})
    assert "country" in str(excinfo.value)
    assert len(send_requests(sandbox)) == 0
    assert sandbox.state.token_requests == 0


def test_a_too_long_message_is_refused_before_any_request(sandbox, cache_dir, monkeypatch):
    use_connection(monkeypatch, sandbox)
    op = SendSMSOperator(
        task_id="send", recipients=[f"+22507000001{n:02d}" for n in range(10)], message="x" * 10_000
    )
    with pytest.raises(AirflowFailException, match="10000.*1530") as excinfo:
        op.execute({})
    assert "nothing was sent" in str(excinfo.value)
    assert len(send_requests(sandbox)) == 0


def test_the_message_limit_is_a_connection_setting(sandbox, cache_dir, monkeypatch):
    use_connection(monkeypatch, sandbox, max_message_length=10)
    with pytest.raises(AirflowFailException, match="11.*10"):
        SendSMSOperator(task_id="send", recipients=["+2250700000001"], message="x" * 11).execute({})
    assert len(send_requests(sandbox)) == 0


@pytest.mark.parametrize("message", ["\u200b\u200b\u200b", "Hi\x00there"])
def test_invisible_or_nul_messages_are_refused(sandbox, cache_dir, monkeypatch, message):
    use_connection(monkeypatch, sandbox)
    with pytest.raises(AirflowFailException, match="nothing was sent"):
        SendSMSOperator(task_id="send", recipients=["+2250700000001"], message=message).execute({})
    assert len(send_requests(sandbox)) == 0
