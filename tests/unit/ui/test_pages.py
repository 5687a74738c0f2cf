"""The delivery view's and the "Orange SMS" page's numbers, pure (served: tests/integration/api_server)."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import datetime, timezone

from airflow_provider_orange_sms.ui import account, delivery
from airflow_provider_orange_sms.ui.airflow_data import SendTask

# -- the numbers (pure) --------------------------------------------------------------------------


def test_numbers_are_masked_in_the_middle():
    assert delivery.mask_number("tel:+2250700000101") == "+22507••••••01"
    assert delivery.mask_number("+221770000001") == "+22177•••••01"
    assert "0700000101" not in delivery.mask_number("tel:+2250700000101")


def test_a_final_receipt_is_not_replaced_by_a_late_waiting_one():
    events = [
        {"extra": {"resource_id": "a", "recipient": "tel:+1", "status": "DeliveryImpossible"}},
        {"extra": {"resource_id": "a", "recipient": "tel:+1", "status": "MessageWaiting"}},
        {"extra": {"resource_id": "", "recipient": "tel:+2", "status": "DeliveredToTerminal"}},
    ]
    by_id, by_recipient = delivery.latest_receipts(events)
    assert by_id["a"].status == "DeliveryImpossible"
    assert by_recipient["tel:+2"].status == "DeliveredToTerminal"


def _task() -> SendTask:
    plan = {
        "recipients": 4,
        "segments": 5,
        "by_country": {
            "CIV": {"recipients": 3, "segments": 3, "encodings": {"GSM-7": 3}},
            "SEN": {"recipients": 1, "segments": 2, "encodings": {"UCS-2": 1}},
        },
    }
    results = [
        {"recipient": "tel:+2250700000001", "resource_id": "r1", "status": "sent"},
        {"recipient": "tel:+2250700000002", "resource_id": "r2", "status": "sent"},
        {"recipient": "tel:+2250700000003", "resource_id": None, "status": "opted_out"},
        {"recipient": "tel:+221770000001", "resource_id": "r4", "status": "sent"},
    ]
    return SendTask("d", "r", "send", -1, state="success", plan=plan, results=results)


def test_task_summary_counts_per_country_and_lists_the_undelivered():
    events = [
        {"extra": {"resource_id": "r1", "recipient": "tel:+2250700000001", "status": "DeliveredToTerminal"}},
        {"extra": {"resource_id": "r4", "recipient": "tel:+221770000001", "status": "DeliveryImpossible"}},
    ]
    view = delivery.run_view("d", "r", "success", [_task()], events)
    [task] = view["tasks"]
    assert task["totals"] == {
        "planned": 4,
        "segments": 5,
        "sent": 3,
        "failed": 0,
        "uncertain": 0,
        "opted_out": 1,
        "in_flight": 0,
        "released": 0,
        "delivered": 1,
        "network": 0,
        "impossible": 1,
        "receipt_uncertain": 0,
        "waiting": 1,
    }
    assert task["encodings"] == {"GSM-7": 3, "UCS-2": 1}
    assert task["by_country"]["SEN"]["impossible"] == 1
    assert task["by_country"]["CIV"]["waiting"] == 1
    assert [(r["recipient"], r["delivery"]) for r in task["undelivered"]] == [
        ("+22507••••••02", "waiting"),
        ("+22177•••••01", "impossible"),
    ]
    assert view["live"] is True  # r2 still waits for its receipt
    # Results without encoding and segments (older ones): taken from the plan's one encoding per country.
    civ, sen = task["by_country_encoding"]
    assert (civ["country"], civ["encoding"], civ["sms"]["planned"], civ["segments"]["planned"]) == (
        "CIV",
        "GSM-7",
        3,
        3,
    )
    assert (sen["sms"]["impossible"], sen["segments"]["impossible"]) == (1, 2)


def _entry(number: str, resource_id: str | None, status: str, encoding: str, segments: int) -> dict:
    return {
        "recipient": number,
        "resource_id": resource_id,
        "status": status,
        "country": "CIV",
        "encoding": encoding,
        "segments": segments,
    }


def test_outcomes_and_their_cost_are_split_by_country_and_encoding():
    plan = {
        "recipients": 3,
        "segments": 5,
        "by_country": {
            "CIV": {
                "recipients": 3,
                "segments": 5,
                "encodings": {"GSM-7": 2, "UCS-2": 1},
                "segments_by_encoding": {"GSM-7": 2, "UCS-2": 3},
            }
        },
    }
    results = [
        _entry("tel:+2250700000001", "r1", "sent", "GSM-7", 1),
        _entry("tel:+2250700000002", "r2", "sent", "GSM-7", 1),
        _entry("tel:+2250700000003", "r3", "sent", "UCS-2", 3),
    ]
    task = SendTask("d", "r", "send", -1, state="success", plan=plan, results=results)
    events = [
        {"extra": {"resource_id": "r1", "status": "DeliveredToTerminal"}},
        {"extra": {"resource_id": "r3", "status": "DeliveryImpossible"}},
    ]
    [summary] = delivery.run_view("d", "r", "success", [task], events)["tasks"]
    rows = {(g["country"], g["encoding"]): g for g in summary["by_country_encoding"]}
    gsm, ucs = rows["CIV", "GSM-7"], rows["CIV", "UCS-2"]
    assert (gsm["sms"]["planned"], gsm["segments"]["planned"]) == (2, 2)
    assert (gsm["sms"]["delivered"], gsm["sms"]["waiting"], gsm["sms"]["impossible"]) == (1, 1, 0)
    assert (ucs["sms"]["planned"], ucs["segments"]["planned"]) == (1, 3)
    assert (ucs["sms"]["impossible"], ucs["segments"]["impossible"]) == (1, 3)
    assert summary["segments"]["sent"] == 5
    rows_csv = list(csv.DictReader(io.StringIO(delivery.to_csv({"tasks": [summary]}))))
    assert [(r["encoding"], r["segments"]) for r in rows_csv] == [
        ("GSM-7", "1"),
        ("GSM-7", "1"),
        ("UCS-2", "3"),
    ]


def _chunk(entries: list, try_number: int, run_after: str = "2026-03-02T10:00:00+00:00") -> dict:
    mark = {
        "run_after": run_after,
        "clear_number": 0,
        "map_index": -1,
        "try_number": try_number,
        "ti_id": f"t{try_number}",
    }
    return {"version": 3, "run": mark, "entries": entries}


def test_a_task_still_sending_shows_what_its_sent_ledger_holds():
    run_after = datetime(2026, 3, 2, 10, tzinfo=timezone.utc)
    chunks = [
        _chunk([["tel:+2250700000001", None, "in_flight"], ["tel:+2250700000001", "r1", "sent"]], 1),
        _chunk([["tel:+2250700000002", None, "in_flight"], ["tel:+2250700000002", None, "failed"]], 2),
        _chunk([["tel:+2250700000003", None, "in_flight"]], 2),
    ]
    plan = {
        "recipients": 4,
        "segments": 4,
        "by_country": {"CIV": {"recipients": 4, "segments": 4, "encodings": {"GSM-7": 4}}},
    }
    task = SendTask("d", "r", "send", -1, state="running", plan=plan, ledger_chunks=chunks)
    events = [{"extra": {"resource_id": "r1", "status": "DeliveredToTerminal"}}]
    view = delivery.run_view("d", "r", "running", [task], events, run_after=run_after, clear_number=0)
    [summary] = view["tasks"]
    assert summary["reported"] is False
    assert summary["progress"] == {"handled": 3, "from": "sent ledger"}
    totals = summary["totals"]
    assert (totals["sent"], totals["failed"], totals["in_flight"], totals["delivered"]) == (1, 1, 1, 1)
    [group] = summary["by_country_encoding"]
    assert (group["encoding"], group["segments"]["sent"]) == ("GSM-7", 1)
    assert view["live"] is True
    assert "0700000003" not in json.dumps(view)

    # A ledger left by an earlier incarnation of the run (deleted, re-created): nothing sent yet.
    older = [_chunk(c["entries"], 1, run_after="2026-03-01T10:00:00+00:00") for c in chunks]
    task.ledger_chunks = older
    [summary] = delivery.run_view("d", "r", "running", [task], [], run_after=run_after, clear_number=0)[
        "tasks"
    ]
    assert summary["totals"]["sent"] == 0
    # Chunks of an older incarnation followed by this one's: only this one's count.
    task.ledger_chunks = [*older, _chunk([["tel:+2250700000004", "r4", "sent"]], 1)]
    [summary] = delivery.run_view("d", "r", "running", [task], [], run_after=run_after, clear_number=0)[
        "tasks"
    ]
    assert [(r["recipient"], r["status"]) for r in summary["recipients"]] == [("+22507••••••04", "sent")]


def test_a_recipient_released_for_resending_is_counted_while_its_task_sends():
    run_after = datetime(2026, 3, 2, 10, tzinfo=timezone.utc)
    chunks = [
        _chunk([["tel:+2250700000001", None, "in_flight"], ["tel:+2250700000001", "r1", "sent"]], 1),
        _chunk([["tel:+2250700000002", None, "in_flight"], ["tel:+2250700000002", None, "uncertain"]], 1),
        # The next try, given release_uncertain=["+2250700000002"], releases it before sending again.
        _chunk([["tel:+2250700000002", None, "released"]], 2),
    ]
    plan = {
        "recipients": 2,
        "segments": 2,
        "by_country": {"CIV": {"recipients": 2, "segments": 2, "encodings": {"GSM-7": 2}}},
    }
    task = SendTask("d", "r", "send", -1, state="running", plan=plan, ledger_chunks=chunks)
    view = delivery.run_view("d", "r", "running", [task], [], run_after=run_after, clear_number=0)
    [summary] = view["tasks"]
    totals = summary["totals"]
    assert (totals["sent"], totals["uncertain"], totals["released"]) == (1, 0, 1)
    assert summary["by_country"]["CIV"]["released"] == 1
    [group] = summary["by_country_encoding"]
    assert (group["sms"]["released"], group["segments"]["released"]) == (1, 1)
    assert [(r["recipient"], r["status"]) for r in summary["undelivered"]] == [
        ("+22507••••••01", "sent"),
        ("+22507••••••02", "released"),
    ]


def test_csv_has_one_masked_line_per_recipient():
    view = delivery.run_view("d", "r", "success", [_task()], [])
    rows = list(csv.DictReader(io.StringIO(delivery.to_csv(view))))
    assert [r["status"] for r in rows] == ["sent", "sent", "opted_out", "sent"]
    assert all("0700000001" not in r["recipient"] for r in rows)


def test_usage_counts_sent_sms_per_day_and_country_and_charts_them():
    task = _task()
    task.when = datetime(2026, 3, 2, 10, tzinfo=timezone.utc)
    days = account.daily_usage([task], datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert days == {"2026-03-02": {"CIV": 2, "SEN": 1}}
    svg = account.usage_chart(days, datetime(2026, 3, 15, tzinfo=timezone.utc))
    assert svg.startswith("<svg")
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert "2026-03-02 CIV: 2 SMS" in svg
    assert "2026-03-02 SEN: 1 SMS" in svg


def test_orange_answers_are_kept_for_a_while_per_connection():
    calls: list[str] = []
    key = f"c-{uuid.uuid4()}"

    def fetch() -> str:
        calls.append("x")
        return f"answer {len(calls)}"

    assert account.cached(key, "contracts", fetch, now=1000.0) == "answer 1"
    assert account.cached(key, "contracts", fetch, now=1000.0 + account.CACHE_SECONDS - 1) == "answer 1"
    assert account.cached(key, "contracts", fetch, now=1000.0 + account.CACHE_SECONDS + 1) == "answer 2"


def test_the_notify_url_is_shown_without_its_secret():
    shown = account.subscription_view(
        {
            "deliveryReceiptSubscription": {
                "callbackReference": {
                    "notifyURL": "https://af.example/orange-sms/delivery-receipts/s3cr3t-xyz"
                }
            }
        }
    )
    assert shown == {"notify_url": "https://af.example/orange-sms/delivery-receipts/***"}


def test_a_run_whose_send_has_not_started_keeps_polling_until_it_ends():
    running = delivery.run_view("d", "r", "running", [], [])
    assert (running["live"], running["run_finished"]) == (True, False)
    for state in ("queued", None):
        assert delivery.run_view("d", "r", state, [], [])["live"] is True
    for state in ("success", "failed"):
        ended = delivery.run_view("d", "r", state, [], [])
        assert (ended["live"], ended["run_finished"]) == (False, True)  # no send task: final


def test_a_task_deferred_for_its_send_window_says_until_when():
    waiting = {"for": "send_window", "until": "2026-03-02T08:00:00+00:00"}
    plan = {"recipients": 2, "segments": 2, "by_country": {}}
    task = SendTask("d", "r", "send", -1, state="deferred", plan=plan, waiting=waiting)
    [summary] = delivery.run_view("d", "r", "running", [task], [])["tasks"]
    assert summary["waiting"] == waiting
    assert summary["reported"] is False


# -- the markup (templates and static files) ------------------------------------------------------


def test_the_chart_escapes_what_it_labels():
    days = {"2026-03-02": {"<script>&": 1}}
    svg = account.usage_chart(days, datetime(2026, 3, 15, tzinfo=timezone.utc))
    assert "<script>" not in svg
    assert "2026-03-02 &lt;script&gt;&amp;: 1 SMS" in svg


def test_the_pages_name_static_files_the_app_serves_to_anyone():
    from fastapi.testclient import TestClient

    from airflow_provider_orange_sms.ui import create_app
    from airflow_provider_orange_sms.ui.pages import STATIC_DIR, render

    client = TestClient(create_app())
    for name in ("delivery.html", "account.html"):
        html = render(name, version="9.9", poll_seconds=5)
        named = re.findall(r'(?:href|src)="static/([^"?]+)\?v=9\.9"', html)
        assert len(named) == 3, html
        for static in named:
            assert (STATIC_DIR / static).is_file()
            response = client.get(f"/static/{static}")  # no session: style and scripts hold no data
            assert response.status_code == 200
            assert response.text == (STATIC_DIR / static).read_text()
    assert 'data-poll-seconds="5"' in render("delivery.html", version="1", poll_seconds=5)


def test_a_failing_metadata_database_answers_503_not_500(monkeypatch):
    """The pages read the metadata database on each request: when it fails, the caller tries again."""
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import OperationalError

    from airflow_provider_orange_sms.ui import airflow_auth as auth
    from airflow_provider_orange_sms.ui import airflow_data as data
    from airflow_provider_orange_sms.ui import create_app

    def locked(*args, **kwargs):
        raise OperationalError("SELECT dag_run.state FROM dag_run", {}, Exception("database is locked"))

    monkeypatch.setattr(auth, "may_read_dag_run", lambda user, dag_id: True)
    monkeypatch.setattr(auth, "may_read_assets", lambda user: True)
    monkeypatch.setattr(auth, "may_read_connection", lambda user, conn_id: False)
    monkeypatch.setattr(data, "run_send_tasks", locked)
    monkeypatch.setattr(data, "receiver_secret_set", lambda: True)
    monkeypatch.setattr(data, "variable", locked)
    app = create_app()
    app.dependency_overrides[auth.CurrentUser.dependency] = lambda: object()
    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/api/delivery?dag_id=d&run_id=r", "/api/delivery.csv?dag_id=d&run_id=r", "/api/account"):
        answer = client.get(path)
        assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "30"), path
        assert "database is locked" not in answer.text
        assert "SELECT" not in answer.text


def test_the_csv_file_name_of_a_run_id_with_accents_is_ascii(monkeypatch):
    """
    Run ids follow ``[scheduler] allowed_run_id_pattern``, which a deployment may open to any
    letter: the file name keeps ASCII letters only (a header holds Latin-1, not ``é``).
    """
    from fastapi.testclient import TestClient

    from airflow_provider_orange_sms.ui import airflow_auth as auth
    from airflow_provider_orange_sms.ui import app as ui_app
    from airflow_provider_orange_sms.ui import create_app

    monkeypatch.setattr(ui_app, "_delivery_view", lambda *args: {"tasks": []})
    monkeypatch.setattr(delivery, "to_csv", lambda view: "recipient\n")
    app = create_app()
    app.dependency_overrides[auth.CurrentUser.dependency] = lambda: object()
    answer = TestClient(app, raise_server_exceptions=False).get(
        "/api/delivery.csv", params={"dag_id": "d", "run_id": "relance_été_2026"}
    )
    assert answer.status_code == 200
    assert (
        answer.headers["Content-Disposition"] == 'attachment; filename="sms-delivery-d_relance__t__2026.csv"'
    )
