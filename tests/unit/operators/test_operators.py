"""Operators against the sandbox over HTTP: sending, validation, partial failure, retry guard, admin."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from airflow_provider_orange_sms.batch.batch_report import Progress
from airflow_provider_orange_sms.exceptions import OrangeSMSNotFoundError
from airflow_provider_orange_sms.ledger import sent_ledger
from airflow_provider_orange_sms.ledger.sent_ledger import (
    CHUNK_SIZE,
    InMemoryLedgerStore,
    SentLedger,
    ledger_key,
)
from airflow_provider_orange_sms.operators.orange_sms import (
    CreateDeliveryReceiptSubscriptionOperator,
    DeleteDeliveryReceiptSubscriptionOperator,
    GetDeliveryReceiptSubscriptionOperator,
    GetPurchaseOrdersOperator,
    GetSMSBalanceOperator,
    GetSMSStatisticsOperator,
    SendSMSOperator,
)
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException
from tests.support.sandbox import connection_json, send_requests

NUMBERS = ["+2250700000001", "+2250700000002", "+2250700000003"]
ADDRESSES = ["tel:+2250700000001", "tel:+2250700000002", "tel:+2250700000003"]
REJECTED = "tel:+2250700000666"


@pytest.fixture
def sandbox_config():
    """No limiting tests here: let the sandbox accept sends as fast as they come."""
    return SandboxConfig(dr_delay=None, rate_limit=1000)


def fake_ti(try_number=1, run_id="manual__2026-01-01", map_index=-1):
    return SimpleNamespace(
        dag_id="campaign", task_id="send", run_id=run_id, map_index=map_index, try_number=try_number
    )


class FakeTI:
    """Enough of a task instance for ``{{ ti.xcom_pull(...) }}`` templates."""

    def __init__(self, value):
        self.value = value

    def xcom_pull(self, task_ids=None, key="return_value"):
        return self.value


# -- sending -------------------------------------------------------------------------------------


def test_send_returns_one_result_per_recipient_in_input_order(fast_conn, sandbox):
    op = SendSMSOperator(task_id="send", recipients=list(reversed(NUMBERS)), message="Bonjour 👋")
    results = op.execute(context={})

    assert [r["recipient"] for r in results] == list(reversed(ADDRESSES))
    assert all(r["status"] == "sent" for r in results)
    by_address = {m.address: m for m in sandbox.state.messages}
    assert [r["resource_id"] for r in results] == [by_address[a].resource_id for a in reversed(ADDRESSES)]
    assert {m.message for m in sandbox.state.messages} == {"Bonjour 👋"}
    assert {m.sender_address for m in sandbox.state.messages} == {"2250000"}  # from the connection extra
    assert json.loads(json.dumps(results)) == results  # XCom-serialisable as is


def test_single_recipient_string_and_sender_name(fast_conn, sandbox):
    results = SendSMSOperator(
        task_id="send", recipients="+225 07 00 00 00 01", message="Hi", sender_name="Airflow"
    ).execute(context={})
    assert [r["recipient"] for r in results] == ["tel:+2250700000001"]
    assert [(m.address, m.sender_name) for m in sandbox.state.messages] == [("tel:+2250700000001", "Airflow")]


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{{ ti.xcom_pull(task_ids='load') }}", id="list-looking-string"),
        pytest.param("{{ ti.xcom_pull(task_ids='load') | tojson }}", id="json-string"),
        pytest.param("{{ ti.xcom_pull(task_ids='load') | join(', ') }}", id="comma-string"),
        pytest.param(
            ["{{ ti.xcom_pull(task_ids='load')[0] }}", "{{ ti.xcom_pull(task_ids='load')[1] }}", NUMBERS[2]],
            id="list",
        ),
    ],
)
def test_templated_recipients_in_every_rendered_form(fast_conn, sandbox, template):
    op = SendSMSOperator(task_id="send", recipients=template, message="Run {{ run_id }}")
    context = {"ti": FakeTI(NUMBERS), "run_id": "r1"}
    op.render_template_fields(context)
    assert op.message == "Run r1"

    results = op.execute(context={})

    assert [r["recipient"] for r in results] == ADDRESSES
    assert [m.address for m in sandbox.state.messages] == ADDRESSES
    assert {m.message for m in sandbox.state.messages} == {"Run r1"}


def test_templated_sender(fast_conn, sandbox):
    op = SendSMSOperator(
        task_id="send",
        recipients=NUMBERS[0],
        message="Hi",
        sender_address="{{ params.sender }}",
        sender_name="{{ params.name }}",
    )
    op.render_template_fields({"params": {"sender": "+2210000", "name": "Airflow"}})
    op.execute(context={})
    [message] = sandbox.state.messages
    assert (message.sender_address, message.sender_name) == ("2210000", "Airflow")


def test_duplicate_recipients_are_sent_once(fast_conn, sandbox):
    recipients = ["+2250700000001", "+225 0700000002", "tel:+2250700000001", "00 225 07 00 00 00 02"]
    results = SendSMSOperator(task_id="send", recipients=recipients, message="Hi").execute(context={})
    assert [r["recipient"] for r in results] == ADDRESSES[:2]
    assert sorted(m.address for m in sandbox.state.messages) == ADDRESSES[:2]


@pytest.mark.parametrize(
    ("recipients", "message", "named"),
    [
        (["+2250700000001", "+22507abc"], "Hi", "'+22507abc'"),
        ("+2250700000001, 12", "Hi", "'12'"),
        (["+2250700000001", None], "Hi", "None"),
        ("['+2250700000001', ", "Hi", "cannot be parsed"),
        ([], "Hi", "no phone number"),
        (NUMBERS, "   ", "the SMS text is empty"),
    ],
)
def test_invalid_input_fails_before_anything_is_sent(fast_conn, sandbox, recipients, message, named):
    op = SendSMSOperator(task_id="send", recipients=recipients, message=message)
    with pytest.raises(AirflowFailException) as excinfo:
        op.execute(context={})
    assert named in str(excinfo.value)
    assert sandbox.state.messages == []
    assert send_requests(sandbox) == []


def test_partial_failure_sends_the_rest_then_fails_naming_each_failure(fast_conn, sandbox):
    sandbox.state.rejected_recipients[REJECTED] = "test"
    recipients = [NUMBERS[0], "+2250700000666", NUMBERS[1]]
    op = SendSMSOperator(task_id="send", recipients=recipients, message="Hi")

    with pytest.raises(AirflowFailException) as excinfo:  # a 400 would be refused again: no retry
        op.execute(context={})

    text = str(excinfo.value)
    assert "2 of 3 recipient(s) sent (2 by this try, 0 by earlier tries), 0 uncertain, 1 failed" in text
    assert REJECTED in text
    assert "SVC0004" in text
    assert sorted(m.address for m in sandbox.state.messages) == ADDRESSES[:2]
    assert len(send_requests(sandbox)) == 3


def test_failures_that_may_pass_later_leave_the_task_retryable(fast_conn, sandbox):
    """A 503 (after its retries) may pass on a later try: with a 400 beside it, Airflow may retry."""
    sandbox.state.add_fault(kind="status", status=503, path="/requests", method="POST", count=4)
    sandbox.state.rejected_recipients[REJECTED] = "test"
    op = SendSMSOperator(task_id="send", recipients=[NUMBERS[0], REJECTED], message="Hi")

    with pytest.raises(AirflowException) as excinfo:
        op.execute(context={})

    assert not isinstance(excinfo.value, AirflowFailException)
    text = str(excinfo.value)
    assert "0 of 2 recipient(s) sent (0 by this try, 0 by earlier tries), 0 uncertain, 2 failed" in text
    assert f"{ADDRESSES[0]}: Orange SMS API 503" in text  # its 4 attempts (max_attempts) all got 503
    assert f"{REJECTED}: Orange SMS API 400 SVC0004" in text
    assert len(send_requests(sandbox)) == 5


def test_no_units_left_leaves_the_task_retryable(fast_conn, sandbox):
    """403 policy error: credit can be topped up before the next try, so it is not a final failure."""
    sandbox.state.balances["CIV"] = 0
    op = SendSMSOperator(task_id="send", recipients=NUMBERS[:1], message="Hi")
    with pytest.raises(AirflowException, match="403 POL0001") as excinfo:
        op.execute(context={})
    assert not isinstance(excinfo.value, AirflowFailException)


def test_an_outage_stops_the_batch_and_a_retry_resumes_it(fast_conn, sandbox):
    """Orange keeps answering 503: after 5 recipients in a row fail, the rest is left for a retry."""
    numbers = [f"+22507000001{n:02d}" for n in range(12)]
    store = InMemoryLedgerStore()
    fault = sandbox.state.add_fault(kind="status", status=503, path="/requests", method="POST", count=10_000)

    def run(try_number):
        op = SendSMSOperator(task_id="send", recipients=numbers, message="Hi", ledger_store=store)
        return op.execute(context={"ti": fake_ti(try_number)})

    with pytest.raises(AirflowException) as excinfo:
        run(1)
    assert not isinstance(excinfo.value, AirflowFailException)
    assert "0 of 12 recipient(s) sent" in str(excinfo.value)
    assert "0 uncertain, 5 failed, 7 not attempted" in str(excinfo.value)
    assert all(f"tel:{n}: Orange SMS API 503" in str(excinfo.value) for n in numbers[:5])
    assert f"tel:{numbers[5]}" not in str(excinfo.value)
    assert len(send_requests(sandbox)) == 5 * 4  # each of the 5 used its own max_attempts (4) first

    fault.count = 0  # Orange is back
    results = run(2)
    assert [r["status"] for r in results] == ["sent"] * 12
    assert sorted(m.address for m in sandbox.state.messages) == [f"tel:{n}" for n in numbers]


def test_zero_max_consecutive_failures_tries_every_recipient(fast_conn, sandbox):
    sandbox.state.add_fault(kind="status", status=503, path="/requests", method="POST", count=10_000)
    numbers = [f"+22507000001{n:02d}" for n in range(7)]
    op = SendSMSOperator(task_id="send", recipients=numbers, message="Hi", max_consecutive_failures=0)
    with pytest.raises(AirflowException, match="0 of 7 recipient.s. sent .* 7 failed, 0 not attempted"):
        op.execute(context={})
    assert len(send_requests(sandbox)) == 7 * 4


def test_no_units_left_stops_a_long_batch_at_once(fast_conn, sandbox):
    """403 'no units left' is about the account, not the recipient: the batch stops at the first."""
    sandbox.state.balances["CIV"] = 0
    numbers = [f"+22507000002{n:02d}" for n in range(20)]
    with pytest.raises(AirflowException, match="0 of 20 recipient.s. sent .* 1 failed, 19 not attempted"):
        SendSMSOperator(task_id="send", recipients=numbers, message="Hi").execute(context={})
    assert len(send_requests(sandbox)) == 1  # a 403 is never retried by the client


def test_negative_max_consecutive_failures_is_refused():
    with pytest.raises(ValueError, match="max_consecutive_failures -1"):
        SendSMSOperator(task_id="send", recipients=NUMBERS, message="Hi", max_consecutive_failures=-1)


def test_refused_recipients_in_a_row_do_not_stop_the_batch(fast_conn, sandbox):
    rejected = [f"+22507000006{n:02d}" for n in range(6)]
    for number in rejected:
        sandbox.state.rejected_recipients[f"tel:{number}"] = "test"
    op = SendSMSOperator(task_id="send", recipients=[*rejected, NUMBERS[0]], message="Hi")
    with pytest.raises(AirflowFailException, match="1 of 7 recipient.s. sent .* 6 failed"):
        op.execute(context={})
    assert [m.address for m in sandbox.state.messages] == [ADDRESSES[0]]


def test_auth_error_stops_the_batch(sandbox, cache_dir, monkeypatch):
    conn = json.loads(connection_json(sandbox, rate_limit_per_second=1000))
    conn["password"] = "wrong secret"
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", json.dumps(conn))
    op = SendSMSOperator(task_id="send", recipients=NUMBERS, message="Hi")

    with pytest.raises(AirflowFailException, match="refused the credentials.* 0 of 3 recipient"):
        op.execute(context={})

    token_calls = [r for r in sandbox.state.requests if "token" in r["path"]]
    assert len(token_calls) == 1  # no attempt for the 2nd and 3rd recipients
    assert sandbox.state.messages == []


def test_progress_is_logged_every_tenth_of_a_big_batch():
    lines = []
    logger = SimpleNamespace(info=lambda fmt, *args: lines.append(fmt % args))
    progress = Progress(1000, logger, interval=float("inf"))
    for _ in range(1000):
        progress.step()
    assert len(lines) == 10
    assert lines[0].startswith("Progress: 100/1000 SMS processed (10%)")
    assert lines[-1].startswith("Progress: 1000/1000 SMS processed (100%)")
    assert all("/s, ETA" in line for line in lines)


def test_progress_of_a_small_batch_is_logged_once_at_the_end():
    lines = []
    logger = SimpleNamespace(info=lambda fmt, *args: lines.append(fmt % args))
    progress = Progress(8, logger, interval=float("inf"))
    for _ in range(8):
        progress.step()
    assert [line.split(" (")[0] for line in lines] == ["Progress: 8/8 SMS processed"]


def test_progress_rate_of_a_paced_batch_is_the_pace():
    """8 SMS 0.2 s apart: 5.0/s, not 8 / 1.4 s (the first send waits for nothing)."""
    lines, now = [], [0.0]
    logger = SimpleNamespace(info=lambda fmt, *args: lines.append(fmt % args))
    progress = Progress(8, logger, interval=float("inf"), clock=lambda: now[0])
    for _ in range(8):
        progress.step()
        now[0] += 0.2
    assert lines == ["Progress: 8/8 SMS processed (100%), 5.0/s, ETA 0 s"]


# -- retry guard ---------------------------------------------------------------------------------


def test_retry_guard_skips_recipients_an_earlier_try_reached(fast_conn, sandbox):
    """Try 1: the 1st send is refused (400), the 2nd has an unknown outcome. Try 2 sends the 1st only."""
    store = InMemoryLedgerStore()
    sandbox.state.add_fault(kind="status", status=400, path="/requests", method="POST")
    sandbox.state.add_fault(kind="drop_after", path="/requests", method="POST")

    def run(try_number, **kwargs):
        op = SendSMSOperator(task_id="send", recipients=NUMBERS, message="Hi", ledger_store=store, **kwargs)
        return op.execute(context={"ti": fake_ti(try_number)})

    with pytest.raises(AirflowFailException) as excinfo:  # a retry would change nothing
        run(1)
    assert "1 of 3 recipient(s) sent (1 by this try, 0 by earlier tries), 1 uncertain, 1 failed" in str(
        excinfo.value
    )
    assert ADDRESSES[0] in str(excinfo.value)
    assert ADDRESSES[1] in str(excinfo.value)  # uncertain: a failure in the try where it happened
    assert store.values  # the ledger survives the failed try
    # The sandbox processed the 2nd send before dropping the connection: the SMS did go out.
    assert [m.address for m in sandbox.state.messages] == ADDRESSES[1:]
    resource_id_3 = sandbox.state.messages[1].resource_id

    with pytest.raises(AirflowFailException, match=f"Uncertain .*: {re.escape(ADDRESSES[1])}$"):
        run(2)  # a clear: the refused one is sent, the uncertain one still fails the task

    assert [m.address for m in sandbox.state.messages] == [ADDRESSES[1], ADDRESSES[2], ADDRESSES[0]]
    assert len(send_requests(sandbox)) == 4  # 3 in try 1, only the refused one again in try 2
    results = run(3, fail_on_uncertain=False)  # accepted: the task succeeds, nothing is sent
    hi = {"country": "CIV", "encoding": "GSM-7", "segments": 1}  # each recipient's SMS, as the plan counts it
    assert results == [
        {
            "recipient": ADDRESSES[0],
            "resource_id": sandbox.state.messages[2].resource_id,
            "status": "sent",
            **hi,
        },
        {"recipient": ADDRESSES[1], "resource_id": None, "status": "uncertain", **hi},
        {"recipient": ADDRESSES[2], "resource_id": resource_id_3, "status": "sent", **hi},
    ]
    # The ledger outlives the success (Airflow may fail to record it): a clear reports, never resends.
    assert run(4, fail_on_uncertain=False) == results
    assert len(send_requests(sandbox)) == 4


def test_retry_guard_is_per_task_instance(fast_conn, sandbox):
    store = InMemoryLedgerStore()
    sandbox.state.rejected_recipients[REJECTED] = "test"
    recipients = [NUMBERS[0], REJECTED]
    op = SendSMSOperator(task_id="send", recipients=recipients, message="Hi", ledger_store=store)
    with pytest.raises(AirflowException):
        op.execute(context={"ti": fake_ti(run_id="run_a")})
    sandbox.state.rejected_recipients.clear()

    # Another DAG run (or map index) has its own ledger: it sends to everyone.
    op.execute(context={"ti": fake_ti(run_id="run_b")})
    op.execute(context={"ti": fake_ti(run_id="run_a", map_index=0)})
    assert [m.address for m in sandbox.state.messages].count(ADDRESSES[0]) == 3
    # The same task instance's retry only sends to the one it missed.
    op.execute(context={"ti": fake_ti(run_id="run_a", try_number=2)})
    assert [m.address for m in sandbox.state.messages].count(ADDRESSES[0]) == 3
    assert [m.address for m in sandbox.state.messages].count(REJECTED) == 3


def test_ledger_is_written_in_chunks(fast_conn, sandbox, monkeypatch):
    monkeypatch.setattr(sent_ledger, "CHUNK_SIZE", 2)
    store = InMemoryLedgerStore()
    numbers = [f"+22507000000{n:02d}" for n in range(1, 6)]
    sandbox.state.rejected_recipients["tel:+2250700000005"] = "test"
    op = SendSMSOperator(task_id="send", recipients=numbers, message="Hi", ledger_store=store)
    with pytest.raises(AirflowException):
        op.execute(context={"ti": fake_ti()})

    key = ledger_key("campaign", "send", "manual__2026-01-01", -1)
    chunks = [json.loads(store.values[k])["entries"] for k in sorted(store.values)]
    # One write per send: its "in flight" entry right before its request, with the outcome of the
    # send before it; the last outcome at the end of the batch.
    assert store.writes == len(numbers) + 1
    assert all(len(chunk) <= 2 + 1 for chunk in chunks)  # CHUNK_SIZE, passed by the write that fills it
    assert [entry for chunk in chunks for entry in chunk][:3] == [
        ["tel:+2250700000001", None, "in_flight"],
        ["tel:+2250700000001", sandbox.state.messages[0].resource_id, "sent"],
        ["tel:+2250700000002", None, "in_flight"],
    ]
    assert "campaign.send run manual__2026-01-01" in store.descriptions[f"{key}_0"]

    sandbox.state.rejected_recipients.clear()
    results = op.execute(context={"ti": fake_ti(try_number=2)})
    assert [r["recipient"] for r in results] == [f"tel:{n}" for n in numbers]
    assert sorted(m.address for m in sandbox.state.messages) == sorted(f"tel:{n}" for n in numbers)


def test_ledger_round_trip_across_many_chunks():
    store = InMemoryLedgerStore()
    context = {"ti": fake_ti()}
    first = SentLedger.from_context(context, store)
    assert first.load() == {}
    for n in range(2 * CHUNK_SIZE + 50):
        first.append([(f"tel:+22507{n:08d}", f"id-{n}", "sent")])
    assert len(store.values) == 3
    assert max(len(json.loads(v)["entries"]) for v in store.values.values()) == CHUNK_SIZE

    second = SentLedger.from_context(context, store)  # the next try
    entries = second.load()
    assert len(entries) == 2 * CHUNK_SIZE + 50
    assert entries["tel:+2250700000007"].resource_id == "id-7"
    second.append([("tel:+2250799999999", None, "in_flight")])
    assert len(store.values) == 4  # appended in a new chunk: earlier chunks are never rewritten
    second.append([("tel:+2250799999999", None, "uncertain")])

    third = SentLedger.from_context(context, store)
    assert third.load()["tel:+2250799999999"].status == "uncertain"


def test_empty_context_has_no_guard(fast_conn, sandbox):
    op = SendSMSOperator(
        task_id="send", recipients=NUMBERS[:1], message="Hi", ledger_store=InMemoryLedgerStore()
    )
    op.execute(context={})
    op.execute(context={})
    assert [m.address for m in sandbox.state.messages] == ADDRESSES[:1] * 2
    assert op.ledger_store.values == {}


def test_retry_guard_can_be_turned_off(fast_conn, sandbox):
    store = InMemoryLedgerStore()
    op = SendSMSOperator(
        task_id="send", recipients=NUMBERS[:1], message="Hi", ledger_store=store, retry_guard=False
    )
    op.execute(context={"ti": fake_ti()})
    assert store.writes == 0
    assert [m.address for m in sandbox.state.messages] == ADDRESSES[:1]


def test_variables_outside_a_task_run_block_sending(fast_conn, sandbox):
    """The default store (Airflow Variables) cannot be read outside a running task: nothing is sent."""
    op = SendSMSOperator(task_id="send", recipients=NUMBERS[:2], message="Hi")
    with pytest.raises(AirflowException, match="Not sending any SMS: cannot (read|list) the sent ledger"):
        op.execute(context={"ti": fake_ti()})
    assert send_requests(sandbox) == []


# -- admin and subscriptions ---------------------------------------------------------------------


def test_balance_operator_returns_the_contracts_json(fast_conn, sandbox):
    everything = GetSMSBalanceOperator(task_id="balance").execute(context={})
    countries = {
        sc["country"]: sc["availableUnits"]
        for c in everything["partnerContracts"]["contracts"]
        for sc in c["serviceContracts"]
    }
    assert countries == sandbox.state.balances

    op = GetSMSBalanceOperator(task_id="balance", country="{{ params.country }}")
    op.render_template_fields({"params": {"country": "SEN"}})
    filtered = op.execute(context={})
    [contract] = filtered["partnerContracts"]["contracts"]
    assert [sc["country"] for sc in contract["serviceContracts"]] == ["SEN"]


def test_statistics_operator_returns_usage(fast_conn, sandbox):
    SendSMSOperator(task_id="send", recipients=NUMBERS[:2], message="Hi").execute(context={})
    op = GetSMSStatisticsOperator(task_id="stats", country="{{ 'CIV' }}", app_id="{{ app }}")
    op.render_template_fields({"app": sandbox.client_id})
    stats = op.execute(context={})
    [service] = stats["partnerStatistics"]["statistics"][0]["serviceStatistics"]
    assert service["country"] == "CIV"
    assert service["countryStatistics"] == [{"applicationId": sandbox.client_id, "usage": 2}]


def test_purchase_orders_operator(fast_conn, sandbox):
    op = GetPurchaseOrdersOperator(task_id="orders", country="{{ params.country }}")
    op.render_template_fields({"params": {"country": "CMR"}})
    orders = op.execute(context={})
    assert [o["orderExecutioninformation"]["country"] for o in orders["purchaseOrders"]] == ["CMR"]


def test_subscription_operators_create_get_delete(fast_conn, sandbox):
    create = CreateDeliveryReceiptSubscriptionOperator(task_id="create", notify_url="{{ url }}")
    create.render_template_fields({"url": "https://example.invalid/receipts"})
    subscription_id = create.execute(context={})
    assert list(sandbox.state.subscriptions) == [subscription_id]

    get = GetDeliveryReceiptSubscriptionOperator(
        task_id="get", subscription_id="{{ ti.xcom_pull(task_ids='create') }}"
    )
    get.render_template_fields({"ti": FakeTI(subscription_id)})
    body = get.execute(context={})
    subscription = body["deliveryReceiptSubscription"]
    assert subscription["callbackReference"]["notifyURL"] == "https://example.invalid/receipts"
    assert subscription["resourceURL"].endswith(subscription_id)

    delete = DeleteDeliveryReceiptSubscriptionOperator(task_id="delete", subscription_id=subscription_id)
    assert delete.execute(context={}) is None
    assert sandbox.state.subscriptions == {}
    with pytest.raises(OrangeSMSNotFoundError):
        get.execute(context={})


def test_operators_take_the_connection_id(sandbox, cache_dir, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MY_ORANGE", connection_json(sandbox))
    op = GetSMSBalanceOperator(task_id="balance", orange_sms_conn_id="my_orange", country="CIV")
    assert op.hook.orange_sms_conn_id == "my_orange"
    assert op.execute(context={})["partnerContracts"]["contracts"]
