"""Quiet hours: SendWindow's arithmetic, and SendSMSOperator deferring until each recipient's window
opens, resuming through the sent ledger (no recipient texted twice, nobody texted at night)."""

from __future__ import annotations

import datetime
from collections import Counter

import pytest

from airflow_provider_orange_sms.batch.send_window import SendWindow
from airflow_provider_orange_sms.ledger.sent_ledger import InMemoryLedgerStore
from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowException
from tests.support.dags import fake_ti
from tests.support.sandbox import connection_json, received, send_requests
from tests.support.versions import task_deferred

UTC = datetime.timezone.utc
CIV = "tel:+2250700000001"  # Africa/Abidjan, UTC+0
EGY = "tel:+201001234567"  # Africa/Cairo, UTC+2 in November
RUS = "tel:+79161234567"  # prefix spans Europe/Bucharest .. Asia/Kamchatka


def at(hour, minute=0):
    return datetime.datetime(2026, 11, 25, hour, minute, tzinfo=UTC)


# -- SendWindow ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "timezone", "named"),
    [
        (("8:00",), "UTC", "send_window"),
        (("08:00", "25:00"), "UTC", "end '25:00'"),
        (("08:00", "08:00"), "UTC", "same time"),
        (("08:00", "20:00"), "Mars/Olympus", "Mars/Olympus"),
        ("08:00-20:00", "UTC", "send_window"),
    ],
)
def test_bad_windows_are_named(window, timezone, named):
    with pytest.raises(ValueError, match=named):
        SendWindow.parse(window, timezone)


def test_open_in_a_fixed_zone():
    window = SendWindow.parse(("08:00", "20:00"), "Africa/Cairo")
    assert not window.is_open(CIV, at(5, 59))  # 07:59 in Cairo
    assert window.is_open(CIV, at(6))  # 08:00 in Cairo
    assert not window.is_open(CIV, at(18))  # 20:00 in Cairo: closed
    assert window.next_opening(CIV, at(18)) == at(6) + datetime.timedelta(days=1)


def test_a_window_across_midnight():
    window = SendWindow.parse(("22:00", "02:00"), "UTC")
    assert window.is_open(CIV, at(23))
    assert window.is_open(CIV, at(1))
    assert not window.is_open(CIV, at(12))
    assert window.next_opening(CIV, at(12)) == at(22)


def test_each_recipients_own_time_zone():
    window = SendWindow.parse(("08:00", "20:00"), "recipient")
    assert window.is_open(EGY, at(7))
    assert not window.is_open(CIV, at(7))
    assert window.next_opening(CIV, at(7)) == at(8)
    assert window.next_opening(EGY, at(7)) == at(7)


def test_a_number_spanning_many_zones_is_open_only_when_open_in_all_of_them():
    wide = SendWindow.parse(("08:00", "20:00"), "recipient")
    assert wide.next_opening(RUS, at(3)) == at(6)  # 08:00 in Bucharest, 18:00 in Kamchatka
    assert not wide.is_open(RUS, at(9))  # 21:00 in Kamchatka
    short = SendWindow.parse(("09:00", "12:00"), "recipient")
    with pytest.raises(ValueError, match="never open in all time zones"):
        short.next_opening(RUS, at(3))
    narrow = SendWindow.parse(("08:00", "20:00"), "Europe/Moscow")
    assert narrow.next_opening(RUS, at(3)) == at(5)  # 08:00 in Moscow


# -- SendSMSOperator ----------------------------------------------------------------------------


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


@pytest.fixture
def two_country_conn(sandbox, cache_dir, monkeypatch):
    extra = {"sender_addresses": {"CIV": "2250000", "EGY": "200000"}, "rate_limit_per_second": 1000}
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, **extra))
    sandbox.state.balances["EGY"] = 100


def operator(store, clock, **kwargs):
    op = SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+201001234567"],
        message="Bonjour",
        send_window=("08:00", "20:00"),
        send_window_timezone="recipient",
        ledger_store=store,
        **kwargs,
    )
    op.clock = clock
    return op


def test_recipients_are_sent_as_each_window_opens(two_country_conn, sandbox):
    store, now = InMemoryLedgerStore(), [at(7)]
    op = operator(store, lambda: now[0])
    with pytest.raises(task_deferred()) as deferred:
        op.execute({"ti": fake_ti(1)})
    assert received(sandbox) == Counter([EGY])  # 09:00 in Cairo, 07:00 in Abidjan
    assert deferred.value.trigger.moment == at(8)
    assert deferred.value.method_name == "execute_after_wait"

    now[0] = at(8)
    results = op.execute_after_wait({"ti": fake_ti(1)}, event={"status": "success"})
    assert received(sandbox) == Counter([EGY, CIV])  # each exactly once
    assert [r["status"] for r in results] == ["sent", "sent"]


def test_outside_every_window_nothing_is_sent_and_no_worker_is_held(two_country_conn, sandbox):
    op = operator(InMemoryLedgerStore(), lambda: at(21))
    with pytest.raises(task_deferred()) as deferred:
        op.execute({"ti": fake_ti(1)})
    assert send_requests(sandbox) == []
    assert deferred.value.trigger.moment == at(6) + datetime.timedelta(days=1)  # 08:00 in Cairo


def test_the_wait_is_announced_before_any_send_in_local_time(two_country_conn, sandbox, monkeypatch):
    """A campaign triggered at 07:00 UTC said it was deferring only after sending to whoever was
    already in their window, and in UTC: users saw no reason it waited for 08:00. The task now says
    so first, before its first send, in the window's own terms."""
    said: list[tuple[str, int]] = []  # each message with the sends the sandbox had seen by then
    op = operator(InMemoryLedgerStore(), lambda: at(7))
    real = op.log

    class Listen:
        def __getattr__(self, name):
            return getattr(real, name)

        def info(self, message, *args, **kwargs):
            said.append((message % args if args else message, len(send_requests(sandbox))))
            real.info(message, *args, **kwargs)

    spy = Listen()
    monkeypatch.setattr(SendSMSOperator, "log", property(lambda self: spy))
    with pytest.raises(task_deferred()):
        op.execute({"ti": fake_ti(1)})
    expected = (
        "1 recipient(s) outside the send window 08:00-20:00: deferring until it opens at 08:00 "
        "(each recipient's local time), next at 2026-11-25 08:00 UTC"
    )
    assert (expected, 0) in said  # before the first send
    assert received(sandbox) == Counter([EGY])  # the one in its window was still sent


def test_a_batch_the_window_end_interrupts_resumes_at_the_next_opening(two_country_conn, sandbox):
    """The window closes after the first SMS (the clock reads 20:00 from the second look on): the
    second SMS waits for the next opening, then goes."""
    store, times = InMemoryLedgerStore(), iter([at(17, 59)] + [at(20)] * 50)
    op = SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+2250700000002"],
        message="Bonjour",
        send_window=("08:00", "20:00"),
        ledger_store=store,
    )
    op.clock = lambda: next(times)
    with pytest.raises(task_deferred()) as deferred:
        op.execute({"ti": fake_ti(1)})
    assert received(sandbox) == Counter([CIV])
    assert deferred.value.trigger.moment == at(8) + datetime.timedelta(days=1)

    op.clock = lambda: at(8) + datetime.timedelta(days=1)
    op.execute_after_wait({"ti": fake_ti(1)}, event=None)
    assert received(sandbox) == Counter([CIV, "tel:+2250700000002"])


# -- check_balance --------------------------------------------------------------------------------


def test_not_enough_units_fails_before_any_send(fast_conn, sandbox):
    sandbox.state.balances["CIV"] = 3
    op = SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+2250700000002"],
        message="x" * 161,  # 2 segments each: 4 units
        check_balance=True,
        deferrable=False,
    )
    with pytest.raises(AirflowException, match="CIV contract .*: 3 available, 4 needed .*nothing was sent"):
        op.execute({})
    assert send_requests(sandbox) == []


def test_not_enough_units_defers_on_the_balance_trigger(fast_conn, sandbox):
    sandbox.state.balances["CIV"] = 1
    op = SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+2250700000002"],
        message="Hi",
        check_balance=True,
        deferrable=True,
    )
    with pytest.raises(task_deferred()) as deferred:
        op.execute({})
    assert deferred.value.trigger.minimum_units == 2
    assert deferred.value.trigger.country == "CIV"
    assert send_requests(sandbox) == []


def test_enough_units_sends(fast_conn, sandbox):
    op = SendSMSOperator(task_id="send", recipients=["+2250700000001"], message="Hi", check_balance=True)
    assert op.execute({})[0]["status"] == "sent"
