"""The example DAGs parse cleanly and run end to end against the sandbox (dag.test())."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tests.support.dags import EXAMPLE_DAGS, load_dag, xcom
from tests.support.sandbox import top_up_after_balance_reads
from tests.support.versions import on_airflow_3_0, skip_on_airflow_3_0

DAG_IDS = {
    "example_orange_sms_campaign",
    "example_orange_sms_account_report",
    "example_orange_sms_failure_alert",
    "example_orange_sms_delivery_receipts",
    "example_orange_sms_undelivered_followup",
    "example_orange_sms_receipts_subscription",
    "example_orange_sms_personalised_campaign",
    "example_orange_sms_keyword_auto_reply",
    "example_orange_sms_opt_out_campaign",
    "example_orange_sms_reply_to_confirm",
    "example_orange_sms_nightly_deadline",
    "example_orange_sms_on_call_escalation",
}
#: Examples of Deadline Alerts, which Airflow 3.0 does not have (their import fails there).
DEADLINE_EXAMPLES = {"example_orange_sms_nightly_deadline", "example_orange_sms_on_call_escalation"}
CAMPAIGN_ADDRESSES = [f"tel:+22507000000{n:02d}" for n in range(1, 9)]


def _example_dags():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag

    return DagBag(dag_folder=str(EXAMPLE_DAGS)).dags


def test_examples_that_send_sms_never_run_on_a_time_schedule():
    """The campaign example ran on a cron schedule: one click on Trigger with "unpause on trigger"
    also started the scheduled run, texting everyone twice. An example that sends runs by hand (or
    on an asset event, which a click does not produce)."""
    from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

    dags = _example_dags()
    senders = {d for d, dag in dags.items() if any(isinstance(t, SendSMSOperator) for t in dag.tasks)}
    assert "example_orange_sms_campaign" in senders
    for dag_id in senders:
        timetable = type(dags[dag_id].timetable).__name__
        assert timetable in {"NullTimetable", "AssetTriggeredTimetable"}, f"{dag_id} sends on {timetable}"


def test_examples_report_through_the_task_log_not_print():
    """A task's print() reaches Airflow 3's supervisor on the stdout socket, its log lines on
    another: the supervisor writes whichever it reads first, so the receipts report and the
    campaign summary printed at the end of a task showed up inside the collapsed "Post Execute"
    group. Log lines share the channel of Airflow's own, so they keep their place."""
    printing = {
        f"{path.name}:{node.lineno}"
        for path in sorted(EXAMPLE_DAGS.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    }
    assert not printing, f"print() in example DAGs (use the task log): {sorted(printing)}"


def test_example_dags_load_without_import_errors():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag

    # Airflow 3.3's DagBag has no include_examples argument; the conftest sets
    # AIRFLOW__CORE__LOAD_EXAMPLES=False, so only this folder is parsed.
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    expected = DAG_IDS
    if on_airflow_3_0():
        expected = DAG_IDS - DEADLINE_EXAMPLES
        assert {Path(path).stem for path in bag.import_errors} == DEADLINE_EXAMPLES
        assert all("Deadline" in error for error in bag.import_errors.values()), bag.import_errors
    else:
        assert bag.import_errors == {}
    assert set(bag.dag_ids) == expected
    for dag_id in expected:
        dag = bag.dags[dag_id]
        assert set(dag.tags) == {"orange_sms", "example"}
        assert dag.schedule is None or dag.catchup is False
        source = Path(dag.fileloc).read_text()
        assert len(ast.get_docstring(ast.parse(source)) or "") > 200  # documented at the top
        assert "from airflow.sdk import DAG" in source


def test_campaign_runs_end_to_end(airflow_db, orange_conn, sandbox):
    dag = load_dag(EXAMPLE_DAGS / "example_orange_sms_campaign.py", "example_orange_sms_campaign")
    run = dag.test()

    assert run.state == "success"
    assert sorted(m.address for m in sandbox.state.messages) == CAMPAIGN_ADDRESSES
    assert len(sandbox.state.messages) == 8  # exactly one SMS per recipient
    assert all("{{" not in m.message and "weekly news" in m.message for m in sandbox.state.messages)
    assert sandbox.state.balances["CIV"] == sandbox.state.config.balances["CIV"] - 8
    assert xcom(run, "summarize") == {"total": 8, "sent": 8, "uncertain": 0}
    sent = xcom(run, "send_campaign")
    assert [r["recipient"] for r in sent] == CAMPAIGN_ADDRESSES
    assert {r["resource_id"] for r in sent} == {m.resource_id for m in sandbox.state.messages}


def test_campaign_waits_for_credit_in_the_trigger(airflow_db, orange_conn, sandbox):
    """Low credit: the sensor defers; the trigger (run in-process by dag.test) sees the top-up."""
    sandbox.state.balances["CIV"] = 3
    # Balance reads: check_balance, the sensor's own check, then the trigger's first poll.
    with top_up_after_balance_reads(sandbox, reads=3, country="CIV", units=20):
        dag = load_dag(EXAMPLE_DAGS / "example_orange_sms_campaign.py", "example_orange_sms_campaign")
        run = dag.test()

    assert run.state == "success"
    assert xcom(run, "wait_for_credit") == 20
    assert sorted(m.address for m in sandbox.state.messages) == CAMPAIGN_ADDRESSES
    assert sandbox.state.balances["CIV"] == 12


def test_account_report_runs_end_to_end(airflow_db, orange_conn, sandbox):
    dag = load_dag(EXAMPLE_DAGS / "example_orange_sms_account_report.py", "example_orange_sms_account_report")
    run = dag.test()

    assert run.state == "success"
    report = xcom(run, "report")
    assert report == {
        country: {"units_left": units, "sms_used": 0, "orders": 1}
        for country, units in sandbox.state.config.balances.items()
    }
    assert sandbox.state.messages == []  # a report never sends


def test_failure_alert_sends_the_sms(airflow_db, orange_conn, sandbox):
    dag = load_dag(EXAMPLE_DAGS / "example_orange_sms_failure_alert.py", "example_orange_sms_failure_alert")
    run = dag.test()

    assert run.state == "failed"
    [message] = sandbox.state.messages
    assert message.address == "tel:+2250700000001"
    assert message.message == (
        f"Airflow alert: example_orange_sms_failure_alert.load_warehouse failed (run {run.run_id})."
    )


def test_personalised_campaign_runs_end_to_end(airflow_db, sandbox, cache_dir, monkeypatch, receipts_server):
    """Rows -> dry-run plan -> balance check -> send -> receipts through a real API server -> report.

    The send window (08:00-20:00 in each recipient's zone) is held open here so the test does not
    depend on the hour it runs at; tests/unit/batch/test_send_window.py covers the window itself.
    """
    from importlib.metadata import version

    import pytest

    from airflow_provider_orange_sms.batch.send_window import SendWindow
    from tests.support.sandbox import connection_json

    if version("apache-airflow").startswith("3.0."):
        pytest.skip("Airflow 3.0's dag.test() leaves inlet assets inactive and then refuses the sensor")
    monkeypatch.setattr(SendWindow, "is_open", lambda self, address, now: True)
    extra = {"sender_addresses": {"CIV": "2250000", "SEN": "2210000"}}
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, **extra))
    sandbox.state.config.dr_delay = 0.05
    sandbox.state.subscriptions.clear()
    from airflow_provider_orange_sms.client import OrangeSMSClient

    OrangeSMSClient(
        base_url=sandbox.url, client_id=sandbox.client_id, client_secret=sandbox.client_secret
    ).create_delivery_receipt_subscription(receipts_server.receipt_url, sender_address="2250000")

    dag = load_dag(
        EXAMPLE_DAGS / "example_orange_sms_personalised_campaign.py",
        "example_orange_sms_personalised_campaign",
    )
    run = dag.test()

    assert run.state == "success"
    plan = xcom(run, "plan")
    assert plan["dry_run"] is True
    assert {c: s["recipients"] for c, s in plan["by_country"].items()} == {"CIV": 2, "SEN": 2}
    assert len(plan["lookalike_messages"]) == 4  # the curly apostrophe
    sent = {m.address: (m.sender_address, m.message) for m in sandbox.state.messages}
    assert sorted(sent) == [
        "tel:+221771234567",
        "tel:+221771234568",
        "tel:+2250700000001",
        "tel:+2250700000002",
    ]
    assert sent["tel:+221771234567"][0] == "2210000"
    assert sent["tel:+2250700000002"] == (
        "2250000",
        "Bonjour Koffi, votre commande A-1002 arrive lundi. Merci d'avoir choisi notre boutique.",
    )
    assert xcom(run, "report") == {"delivered": 4, "impossible": 0, "other": 0}


@skip_on_airflow_3_0(
    "the task fails, but 3.0.6's dag.test does not print the failing task's message where "
    "the test captures it (not investigated)"
)
def test_subscription_without_its_variable_says_which_to_set(
    airflow_db, orange_conn, sandbox, monkeypatch, capfd
):
    """The subscription example read its Variable with a bare Variable.get: a new user saw only
    VARIABLE_NOT_FOUND. It must name the Variable, what it holds and how to set it, and subscribe
    nothing."""
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", "walkthrough-secret-0123456789")
    monkeypatch.delenv("AIRFLOW_VAR_ORANGE_SMS_RECEIPTS_PUBLIC_URL", raising=False)
    dag = load_dag(
        EXAMPLE_DAGS / "example_orange_sms_receipts_subscription.py",
        "example_orange_sms_receipts_subscription",
    )
    run = dag.test()

    output = "".join(capfd.readouterr())
    assert run.state == "failed"
    assert "Set the Airflow Variable orange_sms_receipts_public_url (it is not set)" in output
    assert "public base URL" in output
    assert "airflow variables set orange_sms_receipts_public_url https://" in output
    assert sandbox.state.subscriptions == {}


def test_subscription_registers_the_public_url_from_its_variable(
    airflow_db, orange_conn, sandbox, monkeypatch
):
    """The same DAG with the Variable set (the walkthrough's value) subscribes the receiver's URL."""
    secret = "walkthrough-secret-0123456789"
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", secret)
    monkeypatch.setenv("AIRFLOW_VAR_ORANGE_SMS_RECEIPTS_PUBLIC_URL", "http://127.0.0.1:8080/")
    dag = load_dag(
        EXAMPLE_DAGS / "example_orange_sms_receipts_subscription.py",
        "example_orange_sms_receipts_subscription",
    )
    run = dag.test()

    assert run.state == "success"
    [subscription] = sandbox.state.subscriptions.values()
    assert subscription.notify_url == f"http://127.0.0.1:8080/orange-sms/delivery-receipts/{secret}"
    assert xcom(run, "subscribe") == subscription.subscription_id
    assert xcom(run, "show_subscription") == "http://127.0.0.1:8080/orange-sms/delivery-receipts/***"
    # The operator recorded it for the page (no Variable write of the example's own), secret masked.
    from airflow.models import Variable

    from airflow_provider_orange_sms.receipts.subscription_record import variable_key

    record = Variable.get(variable_key(orange_conn), deserialize_json=True)
    assert (record["subscription_id"], record["notify_url"]) == (
        subscription.subscription_id,
        "http://127.0.0.1:8080/orange-sms/delivery-receipts/***",
    )
    assert secret not in json.dumps(record)
