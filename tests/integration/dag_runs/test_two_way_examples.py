"""The two-way example DAGs run end to end against the sandbox (``dag.test``)."""

from __future__ import annotations

from collections import Counter

import pytest

from airflow_provider_orange_sms.receipts.reply_payload import SMSReply
from airflow_provider_orange_sms.receipts.reply_store import store_reply
from tests.support.dags import EXAMPLE_DAGS, load_dag, xcom
from tests.support.opt_out import opt_out_records_cleared
from tests.support.versions import INACTIVE_INLETS_ON_3_0, skip_on_airflow_3_0

CUSTOMERS = ["+2250700000001", "+2250700000002", "+2250700000003"]


@pytest.fixture(autouse=True)
def clean_list(airflow_db):
    """The examples' numbers are also other examples' recipients: leave no record behind."""
    with opt_out_records_cleared(CUSTOMERS):
        yield


def test_the_campaign_skips_the_imported_opt_out(fast_conn, sandbox):
    run = load_dag(
        EXAMPLE_DAGS / "example_orange_sms_opt_out_campaign.py", "example_orange_sms_opt_out_campaign"
    ).test()

    assert run.state == "success"
    assert Counter(m.address for m in sandbox.state.messages) == Counter(f"tel:{n}" for n in CUSTOMERS[:2])
    assert xcom(run, "preview")["opted_out"] == 1
    assert {r["recipient"]: r["status"] for r in xcom(run, "send")}[f"tel:{CUSTOMERS[2]}"] == "opted_out"


@skip_on_airflow_3_0(INACTIVE_INLETS_ON_3_0)
def test_reply_to_confirm(fast_conn, sandbox):
    original = sandbox.state.record_message

    def texted_then_yes(**fields):
        message = original(**fields)
        number = message.address.removeprefix("tel:")
        store_reply(SMSReply(sender=number, destination="+2250000", message="oui"))
        return message

    sandbox.state.record_message = texted_then_yes

    run = load_dag(
        EXAMPLE_DAGS / "example_orange_sms_reply_to_confirm.py", "example_orange_sms_reply_to_confirm"
    ).test()

    assert run.state == "success"
    assert xcom(run, "confirmed") == CUSTOMERS[:2]


@skip_on_airflow_3_0("triggering_asset_events is not keyed by Asset (auto-reply is 3.1+)")
def test_the_auto_reply_answers_only_help_keywords():
    from types import SimpleNamespace

    try:
        from airflow.sdk.exceptions import AirflowSkipException
    except ImportError:  # Airflow < 3.2
        from airflow.exceptions import AirflowSkipException
    from airflow_provider_orange_sms.receipts import INBOUND_MESSAGES

    dag = load_dag(
        EXAMPLE_DAGS / "example_orange_sms_keyword_auto_reply.py", "example_orange_sms_keyword_auto_reply"
    )
    help_requests = dag.get_task("help_requests").python_callable

    def replies(*pairs):
        events = [SimpleNamespace(extra={"sender": s, "message": m}) for s, m in pairs]
        return {"triggering_asset_events": {INBOUND_MESSAGES: events}}

    senders = help_requests(
        **replies(
            ("+2250700000002", " help! "),
            ("+2250700000001", "Aide"),
            ("+2250700000002", "HELP"),
            ("+2250700000003", "help me with my order"),  # a question, not the keyword
            ("+2250700000004", "STOP"),
        )
    )
    assert senders == ["+2250700000001", "+2250700000002"]
    with pytest.raises(AirflowSkipException):
        help_requests(**replies(("+2250700000001", "merci")))
