"""What SendSMSOperator decides about its input before and while sending, against the sandbox over
HTTP: an unlisted sender name stops the batch at its first refusal; the balance checked is the
sender's contract's; a send window never open for a recipient fails before any send; look-alike
characters are replaced before validation, and letters are kept unless transliteration is asked.

The sandbox's count of SMS per recipient is the truth in every test.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import requests

from airflow_provider_orange_sms._compat import AirflowFailException
from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from tests.conftest import send_requests


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


def received(sandbox) -> Counter:
    """SMS the sandbox accepted, per recipient."""
    return Counter(m.address for m in sandbox.state.messages)


def xcom_ti():
    """Enough of a task instance to collect XCom pushes (the sent ledger is turned off separately)."""
    pushed: dict = {}
    return SimpleNamespace(
        dag_id="inputs",
        task_id="send",
        run_id="manual__2026-01-01",
        map_index=-1,
        try_number=1,
        pushed=pushed,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )


# -- 6. an unlisted sender name -----------------------------------------------------------------


def test_the_sandbox_answers_an_unlisted_sender_name_as_orange_page_says(client, sandbox):
    """Orange's page: "if the sender name used is not on the list … you will get an error: 400
    requestError"."""
    token = client.get_token()
    response = requests.post(
        sandbox.url + "/smsmessaging/v1/outbound/tel%3A%2B2250000/requests",
        json={
            "outboundSMSMessageRequest": {
                "address": "tel:+2250700000001",
                "senderAddress": "tel:+2250000",
                "senderName": "NotListed",
                "outboundSMSTextMessage": {"message": "Hi"},
            }
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json() == {
        "requestError": {
            "policyException": {
                "messageId": "POL0001",
                "text": "A policy error occurred. Error code is %1",
                "variables": ["senderName NotListed not allowed"],
            }
        }
    }
    assert sandbox.state.messages == []


def test_without_a_whitelist_the_default_sender_name_is_used(make_client, sandbox):
    """Orange's page: "If the Service Provider has not a whitelist, the default sender name will be used"."""
    sandbox.state.config.sender_names = ()
    make_client().send_sms("+2250700000001", "Hi", sender_name="Anything")
    assert [(m.address, m.sender_name) for m in sandbox.state.messages] == [("tel:+2250700000001", None)]


def test_an_unlisted_sender_name_stops_the_batch_at_the_first_refusal(fast_conn, sandbox):
    numbers = [f"+22507000004{n:02d}" for n in range(20)]
    op = SendSMSOperator(task_id="send", recipients=numbers, message="Hi", sender_name="NotListed")
    with pytest.raises(AirflowFailException) as excinfo:  # a retry would be refused the same way
        op.execute({})
    text = str(excinfo.value)
    assert "0 of 20 recipient(s) sent" in text
    assert "1 failed, 19 not attempted" in text
    assert "400 POL0001" in text
    assert "NotListed" in text
    assert len(send_requests(sandbox)) == 1  # one request, not one per recipient
    assert received(sandbox) == Counter()
