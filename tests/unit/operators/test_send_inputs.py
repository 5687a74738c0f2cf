"""What SendSMSOperator decides about its input before and while sending, against the sandbox over
HTTP: an unlisted sender name stops the batch at its first refusal; the balance checked is the
sender's contract's; a send window never open for a recipient fails before any send; look-alike
characters are replaced before validation, and letters are kept unless transliteration is asked.

The sandbox's count of SMS per recipient is the truth in every test.
"""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from types import SimpleNamespace

import pytest
import requests

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException
from tests.support.sandbox import connection_json, send_requests
from tests.support.versions import task_deferred


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


# -- 7. the balance checked is the sender's contract's ------------------------------------------

SEN_RECIPIENTS = ["+221771234501", "+221771234502"]
SEN_ADDRESSES = [f"tel:{n}" for n in SEN_RECIPIENTS]


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_civ_sender_is_checked_against_civ_units_not_the_recipients_country(fast_conn, sandbox, deferrable):
    """One CIV sender (the connection's 2250000), Senegalese recipients: Orange debits CIV. SEN's
    empty contract must neither fail the task nor make it wait (it would wait forever)."""
    sandbox.state.balances.update({"CIV": 10, "SEN": 0})
    op = SendSMSOperator(
        task_id="send", recipients=SEN_RECIPIENTS, message="Hi", check_balance=True, deferrable=deferrable
    )
    results = op.execute({})
    assert [r["status"] for r in results] == ["sent", "sent"]
    assert received(sandbox) == Counter(SEN_ADDRESSES)
    assert sandbox.state.balances == {"CIV": 8, "SEN": 0, "CMR": 250}


def test_an_empty_sender_contract_fails_before_any_send(fast_conn, sandbox):
    """SEN's units would cover the SMS, but they are not the ones debited: CIV's are."""
    sandbox.state.balances.update({"CIV": 1, "SEN": 500})
    op = SendSMSOperator(
        task_id="send", recipients=SEN_RECIPIENTS, message="Hi", check_balance=True, deferrable=False
    )
    with pytest.raises(AirflowException, match="CIV contract .*1 available, 2 needed .*nothing was sent"):
        op.execute({})
    assert send_requests(sandbox) == []


def test_the_deferred_wait_is_on_the_sender_contract_and_ends_when_it_is_topped_up(fast_conn, sandbox):
    sandbox.state.balances.update({"CIV": 1, "SEN": 500})
    op = SendSMSOperator(
        task_id="send",
        recipients=SEN_RECIPIENTS,
        message="Hi",
        check_balance=True,
        deferrable=True,
        balance_poke_interval=0.05,
    )
    with pytest.raises(task_deferred()) as deferred:
        op.execute({})
    trigger = deferred.value.trigger
    assert (trigger.country, trigger.minimum_units) == ("CIV", 2)
    assert send_requests(sandbox) == []

    sandbox.state.balances["CIV"] = 5  # topped up: the trigger, as the triggerer would run it, fires

    async def first_event():
        async for event in trigger.run():
            return event.payload
        return None

    event = asyncio.run(first_event())
    assert event["status"] == "success"
    assert event["country"] == "CIV"
    results = op.execute_after_wait({}, event=event)
    assert [r["status"] for r in results] == ["sent", "sent"]
    assert received(sandbox) == Counter(SEN_ADDRESSES)


def test_a_sender_of_unknown_country_fails_the_balance_check_before_any_send(fast_conn, sandbox):
    op = SendSMSOperator(
        task_id="send",
        recipients=SEN_RECIPIENTS,
        message="Hi",
        sender_address="15551234567",  # no country: no contract to check
        check_balance=True,
    )
    with pytest.raises(AirflowFailException, match="sender 15551234567 is unknown; nothing was sent"):
        op.execute({})
    assert send_requests(sandbox) == []


def test_the_plan_counts_segments_per_contract_billed(sandbox, cache_dir, monkeypatch):
    """Routed senders: CIV and SEN recipients each from their country's sender; an explicit CIV
    sender_address bills everything to CIV."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT",
        connection_json(
            sandbox, rate_limit_per_second=1000, sender_addresses={"CIV": "2250000", "SEN": "2210000"}
        ),
    )
    rows = [
        {"recipient": "+2250700000001", "message": "x" * 161},  # 2 segments
        {"recipient": SEN_RECIPIENTS[0], "message": "Salut"},
    ]
    routed = SendSMSOperator(task_id="plan", messages=rows, dry_run=True).execute({})
    assert routed["by_contract"] == {
        "CIV": {"senders": ["2250000"], "sms": 1, "segments": 2},
        "SEN": {"senders": ["2210000"], "sms": 1, "segments": 1},
    }
    assert [row["contract"] for row in routed["messages"]] == ["CIV", "SEN"]

    ti = xcom_ti()
    SendSMSOperator(task_id="send", messages=rows, sender_address="2250000", retry_guard=False).execute(
        {"ti": ti}
    )
    plan = ti.pushed["sms_plan"]
    assert plan["by_contract"] == {"CIV": {"senders": ["2250000"], "sms": 2, "segments": 3}}
    assert plan["by_country"]["SEN"]["senders"] == ["2250000"]
    assert sandbox.state.balances["CIV"] == sandbox.state.config.balances["CIV"] - 2  # billed as planned
    assert received(sandbox) == Counter(["tel:+2250700000001", SEN_ADDRESSES[0]])


# -- 8. a send window never open for a recipient --------------------------------------------------

CIV = "tel:+2250700000001"  # Africa/Abidjan, UTC+0
DRC = "tel:+243812345678"  # Africa/Kinshasa (UTC+1) and Africa/Lubumbashi (UTC+2)


def at(hour, minute=0):
    return datetime.datetime(2026, 11, 25, hour, minute, tzinfo=datetime.timezone.utc)


@pytest.fixture
def civ_and_drc_conn(sandbox, cache_dir, monkeypatch):
    extra = {"sender_addresses": {"CIV": "2250000", "COD": "2430000"}, "rate_limit_per_second": 1000}
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, **extra))
    sandbox.state.balances["COD"] = 100


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_window_never_open_for_one_recipient_fails_before_any_send_without_retries(
    civ_and_drc_conn, sandbox, dry_run
):
    """09:00-09:30 is open in Abidjan at 09:10 UTC, but never in Kinshasa and Lubumbashi at once: the
    task fails before texting the Ivorian, naming the Congolese number, its zones and the window."""
    op = SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+243812345678"],
        message="Rappel",
        send_window=("09:00", "09:30"),
        send_window_timezone="recipient",
        dry_run=dry_run,
    )
    op.clock = lambda: at(9, 10)
    with pytest.raises(AirflowFailException) as excinfo:
        op.execute({})
    text = str(excinfo.value)
    assert DRC in text
    assert CIV not in text
    assert "Africa/Kinshasa, Africa/Lubumbashi" in text
    assert "09:00-09:30" in text
    assert "nothing was sent" in text
    assert sandbox.state.requests == []  # not even a token request
    assert received(sandbox) == Counter()


def test_a_number_without_a_known_time_zone_fails_before_any_send_without_retries(fast_conn, sandbox):
    op = SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+80012345678"],  # an international freephone number: no zone
        message="Rappel",
        send_window=("08:00", "20:00"),
        send_window_timezone="recipient",
    )
    op.clock = lambda: at(9, 10)
    with pytest.raises(AirflowFailException, match=r"No time zone is known for tel:\+80012345678"):
        op.execute({})
    assert sandbox.state.requests == []


def test_a_wider_window_still_reaches_both_zones(civ_and_drc_conn, sandbox):
    """Control: a window open somewhere in both DRC zones at once is accepted and both are texted."""
    op = SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+243812345678"],
        message="Rappel",
        send_window=("08:00", "20:00"),
        send_window_timezone="recipient",
    )
    op.clock = lambda: at(9, 10)
    assert [r["status"] for r in op.execute({})] == ["sent", "sent"]
    assert received(sandbox) == Counter([CIV, DRC])


# -- 9. replace_lookalikes: before validation, punctuation only unless asked to transliterate ------


@pytest.fixture
def short_limit_conn(sandbox, cache_dir, monkeypatch):
    """Texts of at most 40 characters (the connection extra ``max_message_length``)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT",
        connection_json(sandbox, rate_limit_per_second=1000, max_message_length=40),
    )


def test_a_text_the_replacement_grows_past_the_limit_is_refused_before_any_send(short_limit_conn, sandbox):
    """40 characters as written, 42 once ``…`` becomes ``...``: refused before row 0 is sent."""
    at_the_limit = "Votre commande est arriv\u00e9e \u2013 merci bien\u2026"
    assert len(at_the_limit) == 40
    rows = [
        {"recipient": "+2250700000001", "message": "Bonjour"},
        {"recipient": "+2250700000002", "message": at_the_limit},
        {"recipient": "+2250700000003", "message": "Bonsoir"},
    ]
    op = SendSMSOperator(task_id="send", messages=rows, replace_lookalikes=True)
    with pytest.raises(AirflowFailException) as excinfo:
        op.execute({})
    text = str(excinfo.value)
    assert "row 1" in text
    assert "42 characters, longer than the limit of 40" in text
    assert "40 characters as written" in text
    assert "nothing was sent" in text
    assert sandbox.state.requests == []
    assert received(sandbox) == Counter()


def test_one_message_that_grows_past_the_limit_is_refused_before_any_send(short_limit_conn, sandbox):
    op = SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+2250700000002"],
        message="Votre commande est arriv\u00e9e \u2013 merci bien\u2026",
        replace_lookalikes=True,
    )
    with pytest.raises(AirflowFailException) as excinfo:
        op.execute({})
    # Refused by validation (naming both lengths), not by the first send of the batch.
    assert "42 characters, longer than the limit of 40" in str(excinfo.value)
    assert "40 characters as written" in str(excinfo.value)
    assert "Batch stopped" not in str(excinfo.value)
    assert sandbox.state.requests == []


@pytest.mark.parametrize(
    ("written", "sent"),
    [
        # Letters GSM-7 lacks keep the text UCS-2: nothing to gain, it goes as written.
        (
            "C\u2019est s\u00fbr, je\u00fbne re\u00e7u\u2026",
            "C\u2019est s\u00fbr, je\u00fbne re\u00e7u\u2026",
        ),
        ("Ramadan : je\u00fbne", "Ramadan : je\u00fbne"),
        # Only look-alike punctuation and spaces make it UCS-2: replaced; GSM-7 accents untouched.
        (
            "Voil\u00e0, c\u2019est r\u00e9gl\u00e9\u00a0\u2013 \u00ab merci \u00bb\u2026",
            'Voil\u00e0, c\'est r\u00e9gl\u00e9 - " merci "...',
        ),
    ],
)
def test_replace_lookalikes_keeps_letters(fast_conn, sandbox, written, sent):
    SendSMSOperator(
        task_id="send", recipients=["+2250700000001"], message=written, replace_lookalikes=True
    ).execute({})
    assert [m.message for m in sandbox.state.messages] == [sent]


def test_transliteration_only_when_asked_and_the_plan_counts_what_is_sent(fast_conn, sandbox):
    from airflow_provider_orange_sms.segments import sms_segments

    rows = [
        {
            "recipient": "+2250700000001",
            "message": "C\u2019est s\u00fbr, colis re\u00e7u \u2013 " + "x" * 130,
        },
        {"recipient": "+2250700000002", "message": "Je\u00fbne \u00e0 18h\u2026"},
        {"recipient": "+2250700000003", "message": "\u0645\u0631\u062d\u0628\u0627 \u2013 ok"},  # Arabic
    ]
    ti = xcom_ti()
    SendSMSOperator(
        task_id="send", messages=rows, replace_lookalikes="transliterate", retry_guard=False
    ).execute({"ti": ti})
    sent = {m.address: m.message for m in sandbox.state.messages}
    assert sent == {
        "tel:+2250700000001": "C'est sur, colis recu - " + "x" * 130,
        "tel:+2250700000002": "Jeune \u00e0 18h...",
        "tel:+2250700000003": rows[2]["message"],  # stays UCS-2: sent as written
    }
    plan = ti.pushed["sms_plan"]
    counted = [sms_segments(text) for text in sent.values()]
    assert plan["segments"] == sum(segments for _, segments in counted) == 1 + 1 + 1
    assert plan["by_country"]["CIV"]["encodings"] == {"GSM-7": 2, "UCS-2": 1}
    assert received(sandbox) == Counter(list(sent))  # each once


def test_an_unknown_replace_lookalikes_value_is_named():
    with pytest.raises(ValueError, match="replace_lookalikes 'ascii'"):
        SendSMSOperator(
            task_id="send", recipients=["+2250700000001"], message="Hi", replace_lookalikes="ascii"
        )
