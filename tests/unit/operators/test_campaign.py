"""Campaign-grade sending through SendSMSOperator against the sandbox: a text per recipient in one
task, a sender per country, and a dry run that sends nothing."""

from __future__ import annotations

import json

import pytest

from airflow_provider_orange_sms.ledger.sent_ledger import InMemoryLedgerStore
from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException
from tests.support.dags import fake_ti
from tests.support.ledger import FaultyStore
from tests.support.sandbox import connection_json, received

ROWS = [
    {"recipient": "+2250700000001", "message": "Bonjour Awa, votre colis arrive demain", "id": 1},
    {"recipient": "+2250700000002", "message": "Bonjour Koffi, votre colis arrive lundi", "id": 2},
    {"recipient": "+221771234567", "message": "Salut Fatou", "id": 3},
]


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


@pytest.fixture
def routed_conn(sandbox, cache_dir, monkeypatch):
    extra = {"sender_addresses": {"CIV": "2250000", "SEN": "2210000"}, "country": "CIV"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_per_second=1000, **extra)
    )


def test_each_recipient_gets_its_own_text_from_the_sender_of_its_country(routed_conn, sandbox):
    results = SendSMSOperator(task_id="send", messages=ROWS).execute({})
    assert [r["status"] for r in results] == ["sent"] * 3
    got = {m.address: (m.message, m.sender_address) for m in sandbox.state.messages}
    assert got == {
        "tel:+2250700000001": (ROWS[0]["message"], "2250000"),
        "tel:+2250700000002": (ROWS[1]["message"], "2250000"),
        "tel:+221771234567": (ROWS[2]["message"], "2210000"),
    }


def test_messages_rendered_from_an_upstream_xcom(routed_conn, sandbox):
    """``{{ ti.xcom_pull(...) }}`` renders a list of dicts as Python text; JSON text works too."""
    op = SendSMSOperator(task_id="send", messages=str(ROWS[:2]))
    op.execute({})
    op2 = SendSMSOperator(task_id="send2", messages=json.dumps(ROWS[2:]))
    op2.execute({})
    assert sorted(m.address for m in sandbox.state.messages) == sorted(
        ["tel:+2250700000001", "tel:+2250700000002", "tel:+221771234567"]
    )


def test_a_recipient_in_a_country_without_a_sender_fails_before_any_send(routed_conn, sandbox):
    rows = [*ROWS, {"recipient": "+237670000001", "message": "Cameroun"}]
    with pytest.raises(
        AirflowFailException, match=r"tel:\+237670000001 \(country CMR\).*CIV, SEN"
    ) as excinfo:
        SendSMSOperator(task_id="send", messages=rows).execute({})
    assert "nothing was sent" in str(excinfo.value)
    assert sandbox.state.messages == []
    assert sandbox.state.token_requests == 0


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        ([{"recipient": "+2250700000001"}], "row 0"),
        ([{"recipient": "07000", "message": "x"}], "row 0"),
        ([ROWS[0], {"recipient": "+2250700000001", "message": "another text"}], "different message"),
        ("not a list", "messages"),
        ([["+2250700000001", "Hi"]], "row 0"),
    ],
)
def test_bad_rows_are_named_and_nothing_is_sent(routed_conn, sandbox, rows, named):
    with pytest.raises(AirflowFailException, match=named):
        SendSMSOperator(task_id="send", messages=rows).execute({})
    assert sandbox.state.messages == []


def test_one_form_or_the_other():
    with pytest.raises(ValueError, match="not both"):
        SendSMSOperator(task_id="s", recipients=["+2250700000001"], message="x", messages=ROWS)
    with pytest.raises(ValueError, match="recipients and message, or messages"):
        SendSMSOperator(task_id="s", recipients=["+2250700000001"])


def test_per_recipient_messages_keep_the_ledger_guarantees(routed_conn, sandbox, ledger_waits):
    # 1st "in flight"; 1st outcome with the 2nd "in flight"; then the 2nd outcome with the 3rd "in
    # flight" fails: the 3rd is not sent and the 2nd, sent, is left "in flight" (uncertain)
    store = FaultyStore(fail_writes_from=3)
    with pytest.raises(AirflowException, match="2 of 3 recipient"):
        SendSMSOperator(task_id="send", messages=ROWS, ledger_store=store).execute({"ti": fake_ti(1)})
    assert ledger_waits == [0.25, 0.5, 1.0]  # the failed write tried 4 times, backing off between
    store.fail_writes_from = None
    with pytest.raises(AirflowFailException, match=r"Uncertain .*tel:\+2250700000002"):
        SendSMSOperator(task_id="send", messages=ROWS, ledger_store=store).execute({"ti": fake_ti(2)})
    results = SendSMSOperator(
        task_id="send", messages=ROWS, ledger_store=store, fail_on_uncertain=False
    ).execute({"ti": fake_ti(3)})
    assert [r["status"] for r in results] == ["sent", "uncertain", "sent"]
    assert all(count == 1 for count in received(sandbox).values())


def test_dry_run_sends_nothing_and_returns_the_plan(routed_conn, sandbox):
    store = InMemoryLedgerStore()
    plan = SendSMSOperator(task_id="send", messages=ROWS, dry_run=True, ledger_store=store).execute(
        {"ti": fake_ti(1)}
    )
    assert plan["dry_run"] is True
    assert plan["recipients"] == 3
    assert plan["by_country"]["CIV"]["recipients"] == 2
    assert plan["by_country"]["SEN"]["senders"] == ["2210000"]
    assert plan["messages"][2] == {
        "recipient": "tel:+221771234567",
        "country": "SEN",
        "sender": "2210000",
        "contract": "SEN",
        "encoding": "GSM-7",
        "segments": 1,
        "message": "Salut Fatou",
    }
    assert plan["segments"] == 3
    assert sandbox.state.requests == []  # no token request either
    assert store.writes == 0


def test_plan_names_recipients_outside_the_sender_country(sandbox, cache_dir, monkeypatch):
    """A CIV sender texting +20... was sent without a word: Orange may bill or refuse it."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_per_second=1000, country="CIV")
    )
    recipients = ["+2250700000001", "+201001234567", "+221771234567", "+221771234568"]
    op = SendSMSOperator(task_id="send", recipients=recipients, message="Bonjour", dry_run=True)
    warnings: list[str] = []
    real = op.log

    class Listen:
        def __getattr__(self, name):
            return getattr(real, name)

        def warning(self, message, *args, **kwargs):
            warnings.append(message % args if args else message)
            real.warning(message, *args, **kwargs)

    monkeypatch.setattr(SendSMSOperator, "log", property(lambda self: Listen()))
    plan = op.execute({})
    assert plan["recipients"] == 4  # not blocked
    assert plan["outside_sender_country"] == {
        "recipients": 3,
        "countries": {"EGY": 1, "SEN": 2},
        "sender_countries": ["CIV"],
    }
    [warning] = [w for w in warnings if "outside" in w]
    assert warning.startswith(
        "3 recipient(s) outside their sender's country (EGY: 1, SEN: 2; sender country CIV)"
    )
    assert sandbox.state.requests == []


def test_plan_of_recipients_in_their_sender_country_has_none_outside(routed_conn, sandbox):
    plan = SendSMSOperator(task_id="send", messages=ROWS, dry_run=True).execute({})
    assert plan["outside_sender_country"] == {"recipients": 0, "countries": {}, "sender_countries": []}


def test_dry_run_still_fails_on_bad_input(routed_conn, sandbox):
    with pytest.raises(AirflowFailException, match="0700"):
        SendSMSOperator(task_id="send", recipients=["0700"], message="x", dry_run=True).execute({})


def test_a_bad_sender_addresses_extra_is_named(sandbox, cache_dir, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, sender_addresses={"CIVX": "2250000"})
    )
    with pytest.raises(AirflowFailException, match="sender_addresses.*CIVX.*nothing was sent"):
        SendSMSOperator(task_id="send", messages=ROWS).execute({})


def test_the_plan_counts_segments_per_country_and_names_lookalikes(routed_conn, sandbox):
    rows = [
        {"recipient": "+2250700000001", "message": "C\u2019est l\u2019heure"},  # curly apostrophes: UCS-2
        {"recipient": "+2250700000002", "message": "x" * 161},  # GSM-7, 2 segments
        {"recipient": "+221771234567", "message": "\u0645\u0631\u062d\u0628\u0627"},  # Arabic: UCS-2
    ]
    ti = fake_ti(1)
    SendSMSOperator(task_id="send", messages=rows, ledger_store=InMemoryLedgerStore()).execute({"ti": ti})
    plan = ti.pushed["sms_plan"]
    assert plan["by_country"]["CIV"]["segments"] == 3
    assert plan["by_country"]["CIV"]["encodings"] == {"UCS-2": 1, "GSM-7": 1}
    assert plan["by_country"]["SEN"]["encodings"] == {"UCS-2": 1}
    assert plan["lookalike_messages"] == [{"recipient": "tel:+2250700000001", "characters": ["\u2019"]}]
    assert sandbox.state.messages[0].message == "C\u2019est l\u2019heure"  # sent as written


def test_replace_lookalikes_sends_the_gsm7_form(routed_conn, sandbox):
    rows = [{"recipient": "+2250700000001", "message": "C\u2019est l\u2019heure \u2013 merci"}]
    SendSMSOperator(task_id="send", messages=rows, replace_lookalikes=True).execute({})
    assert sandbox.state.messages[0].message == "C'est l'heure - merci"
