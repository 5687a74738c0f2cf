"""
The delivery view and the "Orange SMS" page served by the real API
server (tests/support/receipts_server.py) after a real send to the sandbox whose receipts reach the real
receiver: what each endpoint answers a signed-in user, and that anonymous callers get nothing.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from airflow_provider_orange_sms.receipts.subscription_record import LEGACY_VARIABLE, variable_key
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from tests.support import chromium
from tests.support.chromium import CHROMIUM
from tests.support.dags import EXAMPLE_DAGS, TEST_DAGS, load_dag, xcom
from tests.support.processes import free_port, stop_process
from tests.support.sandbox import connection_json
from tests.support.versions import skip_on_airflow_3_0

# -- served by the real API server -----------------------------------------------------------------


@dataclass
class SecuredServer:
    """An API server whose users must sign in (simple auth manager: an admin and a viewer)."""

    url: str
    passwords: dict[str, str]
    secret: str

    def token(self, user: str = "admin") -> str:
        """A JWT for ``user``, from the login endpoint the UI's form posts to."""
        response = requests.post(
            f"{self.url}/auth/token",
            json={"username": user, "password": self.passwords[user]},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def headers(self, user: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}


@pytest.fixture(scope="module")
def secured_server(airflow_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredServer]:
    """
    ``airflow api-server`` on the tests' metadata DB with sign-in required (no all-admins
    shortcut, which makes every anonymous request an admin's). Its auth manager is the simple one
    with one per-DAG denial: the viewer ``outsider`` may not see the DAG ``ui_delivery``.
    """
    home = tmp_path_factory.mktemp("secured-api-server")
    passwords = {name: secrets.token_urlsafe(12) for name in ("admin", "viewer", "outsider")}
    (home / "passwords.json").write_text(json.dumps(passwords))
    secret = secrets.token_urlsafe(24)
    port = free_port()
    env = dict(os.environ)
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    env.update(
        AIRFLOW__CORE__AUTH_MANAGER="tests.support.denying_auth_manager.DenyingAuthManager",
        ORANGE_SMS_TEST_DENIED_DAGS="outsider:ui_delivery",
        PYTHONPATH=os.pathsep.join(
            filter(None, (str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")))
        ),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,viewer:viewer,outsider:viewer",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__API_AUTH__JWT_ISSUER="airflow",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
        AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET=secret,
    )
    log_path = home / "api-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", "1"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a startup limit, not a measured expectation
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"airflow api-server did not start:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/api/v2/version", timeout=2).status_code in (200, 401):
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        yield SecuredServer(url=url, passwords=passwords, secret=secret)
    finally:
        stop_process(process)


ENDPOINTS = ("delivery", "api/delivery", "api/delivery.csv", "account", "api/account")
#: The connection the "Orange SMS" page shows by default (stored in the metadata DB for the API server).
CONN_ID = "orange_sms_default"


@pytest.fixture(scope="module")
def ui_run(
    airflow_db: str,
    receipts_server: Any,
    secured_server: SecuredServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict]:
    """
    A run of tests/dags/ui_delivery.py against a sandbox subscribed to the real receiver: of its seven
    SMS, one is impossible to deliver and one never gets a receipt. The API server reads the account
    from the connection ``orange_sms_default`` stored in the metadata DB.
    """
    from airflow.models import Connection
    from airflow.utils.session import create_session

    config = SandboxConfig(dr_delay=0.05, dr_statuses=("MessageWaiting", "DeliveredToTerminal"))
    with SandboxServer(config=config) as sandbox, pytest.MonkeyPatch.context() as patch:
        conn = connection_json(sandbox, rate_limit_per_second=1000)
        patch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", conn)
        patch.setenv("ORANGE_SMS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == CONN_ID).delete()
            fields = json.loads(conn)
            session.add(
                Connection(
                    conn_id=CONN_ID,
                    conn_type="orange_sms",
                    host=fields["host"],
                    login=fields["login"],
                    password=fields["password"],
                    extra=json.dumps(fields["extra"]),
                )
            )
        from airflow.models import Variable

        # Subscribed as a user would: the example DAG's operator records the id where the page finds it.
        patch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", receipts_server.secret)
        Variable.set("orange_sms_receipts_public_url", receipts_server.url)
        Variable.delete(LEGACY_VARIABLE)
        Variable.delete(variable_key(CONN_ID))
        example = "example_orange_sms_receipts_subscription"
        subscribed = load_dag(EXAMPLE_DAGS / f"{example}.py", example).test()
        assert subscribed.state == "success"
        subscription_id = xcom(subscribed, "subscribe")
        sandbox.state.delivery_statuses["tel:+2250700000203"] = "DeliveryImpossible"
        sandbox.state.delivery_statuses["tel:+221770000002"] = "none"  # Orange never reports it
        run = load_dag(TEST_DAGS / "ui_delivery.py", "ui_delivery").test()
        assert run.state == "success"
        try:
            yield {
                "subscription_id": subscription_id,
                "run": run,
                "sandbox": sandbox,
                "server": secured_server,
                "receiver_secret": receipts_server.secret,
            }
        finally:
            Variable.delete(variable_key(CONN_ID))
            Variable.delete("orange_sms_receipts_public_url")
            with create_session() as session:
                session.query(Connection).filter(Connection.conn_id == CONN_ID).delete()


def _params(run: Any) -> dict[str, str]:
    return {"dag_id": run.dag_id, "run_id": run.run_id}


def _settled_view(server: Any, run: Any) -> dict[str, Any]:
    """The delivery JSON once every receipt the sandbox posts has been stored (5 delivered, 1 impossible)."""
    deadline = time.monotonic() + 120  # a limit for a loaded machine, not an expectation
    while True:
        response = requests.get(
            f"{server.url}/orange-sms-ui/api/delivery",
            params=_params(run),
            headers=server.headers(),
            timeout=30,
        )
        response.raise_for_status()
        view: dict[str, Any] = response.json()
        totals = view["tasks"][0]["totals"]
        if totals["delivered"] + totals["impossible"] == 6 or time.monotonic() > deadline:
            return view
        time.sleep(0.2)


@skip_on_airflow_3_0("Airflow 3.0 has no external views: the pages are not served")
def test_the_delivery_view_counts_what_was_sent_and_what_the_receipts_say(ui_run):
    server, run, sandbox = ui_run["server"], ui_run["run"], ui_run["sandbox"]
    view = _settled_view(server, run)
    [task] = view["tasks"]
    assert len(sandbox.state.messages) == 7  # what the sandbox received is the truth
    assert task["totals"] == {
        "planned": 7,
        "segments": 7,
        "sent": 7,
        "failed": 0,
        "uncertain": 0,
        "opted_out": 0,
        "in_flight": 0,
        "released": 0,
        "delivered": 5,
        "network": 0,
        "impossible": 1,
        "receipt_uncertain": 0,
        "waiting": 1,
    }
    assert task["encodings"] == {"GSM-7": 5, "UCS-2": 2}
    assert task["by_country"]["SEN"]["waiting"] == 1
    assert task["by_country"]["CIV"]["impossible"] == 1
    groups = {(g["country"], g["encoding"]): g for g in task["by_country_encoding"]}
    assert set(groups) == {("CIV", "GSM-7"), ("SEN", "UCS-2")}
    civ, sen = groups["CIV", "GSM-7"], groups["SEN", "UCS-2"]
    assert (civ["sms"]["delivered"], civ["sms"]["impossible"], civ["sms"]["waiting"]) == (4, 1, 0)
    assert (civ["segments"]["planned"], civ["segments"]["sent"], civ["segments"]["delivered"]) == (5, 5, 4)
    assert (sen["sms"]["delivered"], sen["sms"]["waiting"]) == (1, 1)
    assert (sen["segments"]["planned"], sen["segments"]["waiting"]) == (2, 1)
    # The operator's results carry what the groups are made of (the keys users read are unchanged).
    results = xcom(run, "send")
    assert {(r["country"], r["encoding"], r["segments"]) for r in results} == {
        ("CIV", "GSM-7", 1),
        ("SEN", "UCS-2", 1),
    }
    assert all({"recipient", "resource_id", "status"} <= set(r) for r in results)
    assert sorted((r["recipient"], r["delivery"]) for r in task["undelivered"]) == [
        ("+22177•••••02", "waiting"),
        ("+22507••••••03", "impossible"),
    ]
    assert view["live"] is True  # one SMS still waits: the page keeps polling
    body = json.dumps(view)
    assert "0700000203" not in body
    assert "770000002" not in body

    csv_text = requests.get(
        f"{server.url}/orange-sms-ui/api/delivery.csv",
        params=_params(run),
        headers=server.headers(),
        timeout=30,
    ).text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == 7
    assert sum(r["delivery"] == "delivered" for r in rows) == 5

    one = requests.get(
        f"{server.url}/orange-sms-ui/api/delivery",
        params={**_params(run), "task_id": "send", "map_index": "-1"},
        headers=server.headers(),
        timeout=30,
    ).json()
    assert [t["task_id"] for t in one["tasks"]] == ["send"]


@skip_on_airflow_3_0("Airflow 3.0 has no external views: the pages are not served")
def test_the_account_page_shows_balance_usage_receiver_and_receipts(ui_run):
    server, run = ui_run["server"], ui_run["run"]
    _settled_view(server, run)
    response = requests.get(
        f"{server.url}/orange-sms-ui/api/account",
        params={"conn_id": CONN_ID},
        headers=server.headers(),
        timeout=60,
    )
    response.raise_for_status()
    view = response.json()
    balance = {row["country"]: row for row in view["balance"]["rows"]}
    assert set(balance) >= {"CIV", "SEN"}
    assert balance["CIV"]["expires"]
    sandbox_balance = ui_run["sandbox"].state.balances
    assert balance["CIV"]["units"] == sandbox_balance["CIV"]
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert view["usage"]["days"][today]["CIV"] >= 5
    assert view["usage"]["days"][today]["SEN"] >= 2
    assert view["usage"]["chart"].startswith("<svg")
    assert view["receiver"]["secret_configured"] is True
    # The subscription the example DAG made with the operator: found through the connection's record.
    assert view["subscription"]["id"] == ui_run["subscription_id"]
    assert view["subscription"]["source"] == f"Variable {variable_key(CONN_ID)}"
    assert (view["subscription"]["sender_address"], view["subscription"]["country"]) == ("2250000", "CIV")
    assert view["subscription"]["recorded_notify_url"].endswith("/orange-sms/delivery-receipts/***")
    example_task = "example_orange_sms_receipts_subscription.subscribe"
    assert view["subscription"]["recorded_by"].startswith(f"{example_task} of ")
    assert ui_run["subscription_id"] in ui_run["sandbox"].state.subscriptions
    statuses = {row["status"] for row in view["receipts"]["rows"]}
    assert statuses & {"DeliveredToTerminal", "DeliveryImpossible"}
    body = json.dumps(view)
    assert server.secret not in body
    assert ui_run["receiver_secret"] not in body
    assert view["subscription"]["notify_url"].endswith("/orange-sms/delivery-receipts/***")
    assert ui_run["sandbox"].client_secret not in body


@skip_on_airflow_3_0("Airflow 3.0 has no external views: the pages are not served")
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_anonymous_and_forged_callers_get_nothing(ui_run, endpoint):
    server, run = ui_run["server"], ui_run["run"]
    url = f"{server.url}/orange-sms-ui/{endpoint}"
    params = _params(run) if "delivery" in endpoint else {"conn_id": CONN_ID}
    anonymous = requests.get(url, params=params, timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": "Not authenticated"}
    forged = requests.get(url, params=params, headers={"Authorization": "Bearer not.a.token"}, timeout=30)
    assert forged.status_code == 403
    assert "sms" not in forged.text.lower() or forged.json() == {"detail": "Invalid JWT token"}
    cookie = requests.get(url, params=params, cookies={"_token": "not.a.token"}, timeout=30)
    assert cookie.status_code == 403
    token = server.headers()["Authorization"].split(" ", 1)[1]
    signed_in = requests.get(url, params=params, cookies={"_token": token}, timeout=60)
    assert signed_in.status_code == 200, signed_in.text


@skip_on_airflow_3_0("Airflow 3.0 has no external views: the pages are not served")
def test_an_unknown_run_is_404_for_a_signed_in_user(ui_run):
    server = ui_run["server"]
    response = requests.get(
        f"{server.url}/orange-sms-ui/api/delivery",
        params={"dag_id": "ui_delivery", "run_id": "no-such-run"},
        headers=server.headers(),
        timeout=30,
    )
    assert response.status_code == 404


@skip_on_airflow_3_0("Airflow 3.0 has no external views: the pages are not served")
def test_a_viewer_sees_receipts_but_not_the_account_behind_the_connection(ui_run):
    server = ui_run["server"]
    response = requests.get(
        f"{server.url}/orange-sms-ui/api/account",
        params={"conn_id": CONN_ID},
        headers=server.headers("viewer"),
        timeout=60,
    )
    response.raise_for_status()
    view = response.json()
    for section in ("balance", "orange_usage", "subscription"):
        assert view[section] == {"forbidden": f"needs read access to the connection {CONN_ID!r}"}
    assert view["receipts"]["rows"]


@skip_on_airflow_3_0("Airflow 3.0 has no external views: the pages are not served")
def test_a_user_denied_the_dag_gets_403_and_none_of_its_numbers(ui_run):
    """The auth manager denies ``outsider`` the DAG ui_delivery (tests/support/denying_auth_manager.py); the
    viewer, with the same role, may see it: the pages follow the auth manager per DAG."""
    server, run = ui_run["server"], ui_run["run"]
    _settled_view(server, run)
    outsider = server.headers("outsider")
    runs = requests.get(f"{server.url}/api/v2/dags/{run.dag_id}/dagRuns", headers=outsider, timeout=30)
    assert runs.status_code == 403  # Airflow's own API refuses the same DAG
    for endpoint in ("delivery", "api/delivery", "api/delivery.csv"):
        url = f"{server.url}/orange-sms-ui/{endpoint}"
        denied = requests.get(url, params=_params(run), headers=outsider, timeout=30)
        assert denied.status_code == 403, (endpoint, denied.text)
        assert denied.json() == {"detail": f"Forbidden: the runs and XComs of DAG {run.dag_id!r}, and assets"}
        allowed = requests.get(url, params=_params(run), headers=server.headers("viewer"), timeout=30)
        assert allowed.status_code == 200, (endpoint, allowed.text)
    account_view = requests.get(
        f"{server.url}/orange-sms-ui/api/account", params={"conn_id": CONN_ID}, headers=outsider, timeout=60
    ).json()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    hidden = account_view["usage"]["days"].get(today, {}).get("SEN", 0)
    viewer_view = requests.get(
        f"{server.url}/orange-sms-ui/api/account",
        params={"conn_id": CONN_ID},
        headers=server.headers("viewer"),
        timeout=60,
    ).json()
    assert viewer_view["usage"]["days"][today]["SEN"] - hidden == 2  # ui_delivery's two, not counted


@dataclass
class HeldSend:
    """The sandbox holds the ``held``-th send request until :attr:`release` is set."""

    held: int
    arrived: threading.Event
    release: threading.Event


@pytest.fixture
def sandbox_holding_the_third_send(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[SandboxServer, HeldSend]]:
    from airflow_provider_orange_sms.sandbox.server import SandboxHandler

    hold = HeldSend(3, threading.Event(), threading.Event())
    send = SandboxHandler._send
    count = itertools.count(1)

    def held_send(handler: SandboxHandler, client_id: str, sender: str) -> Any:
        if next(count) == hold.held:
            hold.arrived.set()
            hold.release.wait(timeout=300)  # the test sets it; the timeout only frees a broken run
        return send(handler, client_id, sender)

    monkeypatch.setattr(SandboxHandler, "_send", held_send)
    with SandboxServer(config=SandboxConfig(dr_delay=None)) as sandbox:
        yield sandbox, hold
    hold.release.set()


@skip_on_airflow_3_0("Airflow 3.0 has no external views: the pages are not served")
def test_a_task_still_sending_shows_its_progress_from_the_sent_ledger(
    ui_run, sandbox_holding_the_third_send, monkeypatch
):
    """While the sandbox holds the third of four sends, the view shows 2 sent and 1 in flight (the
    task's results are not pushed yet), and after the batch its results."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    server = ui_run["server"]
    sandbox, hold = sandbox_holding_the_third_send
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_per_second=1000)
    )
    seen: dict[str, Any] = {}

    def watch() -> None:
        try:
            if not hold.arrived.wait(timeout=300):
                return
            with create_session() as session:
                run_id = (
                    session.query(DagRun.run_id)
                    .filter(DagRun.dag_id == "ui_sending")
                    .order_by(DagRun.id.desc())
                    .limit(1)
                    .scalar()
                )
            deadline = time.monotonic() + 120  # a limit for a loaded machine, not an expectation
            while time.monotonic() < deadline:
                view = requests.get(
                    f"{server.url}/orange-sms-ui/api/delivery",
                    params={"dag_id": "ui_sending", "run_id": run_id},
                    headers=server.headers(),
                    timeout=30,
                ).json()
                seen["view"] = view
                if view["tasks"] and view["tasks"][0]["totals"]["in_flight"] == 1:
                    return
                time.sleep(0.2)
        finally:
            hold.release.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    run = load_dag(TEST_DAGS / "ui_sending.py", "ui_sending").test()
    watcher.join()
    assert run.state == "success"
    assert len(sandbox.state.messages) == 4  # what the sandbox received: each SMS once

    [task] = seen["view"]["tasks"]
    assert task["reported"] is False
    assert task["state"] == "running"
    assert task["progress"] == {"handled": 3, "from": "sent ledger"}
    totals = task["totals"]
    assert (totals["planned"], totals["sent"], totals["in_flight"]) == (4, 2, 1)
    assert [
        (g["country"], g["encoding"], g["sms"]["sent"], g["segments"]["sent"])
        for g in task["by_country_encoding"]
    ] == [("CIV", "GSM-7", 2, 2)]
    assert seen["view"]["live"] is True
    assert "0700000401" not in json.dumps(seen["view"])

    [done] = requests.get(
        f"{server.url}/orange-sms-ui/api/delivery",
        params=_params(run),
        headers=server.headers(),
        timeout=30,
    ).json()["tasks"]
    assert done["reported"] is True
    assert (done["totals"]["sent"], done["totals"]["in_flight"]) == (4, 0)


# -- in the browser: Airflow's UI with the tabs and the menu entry -----------------------------------


@pytest.fixture
def signed_in_page(ui_run: dict, tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium (never a downloaded browser), signed in through Airflow's login form."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
    server = ui_run["server"]
    with sync_api.sync_playwright() as playwright:
        context = chromium.launch(playwright, tmp_path / "chromium-profile", 1400, 1000)
        try:
            page = context.new_page()
            # Signed in as a user is: Airflow's own login form (the simple auth manager's page).
            page.goto(f"{server.url}/auth/login")
            page.locator("input[name='username']").fill("admin")
            page.locator("input[name='password']").fill(server.passwords["admin"])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
            # What the form leaves behind: the session cookie the UI and the pages' iframes send.
            assert "_token" in {cookie["name"] for cookie in context.cookies(server.url)}
            yield page
        finally:
            context.close()


def _screenshot(page: Any, name: str, tmp_path: Path) -> None:
    target = os.environ.get("ORANGE_SMS_SCREENSHOTS")
    directory = Path(target) if target else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(directory / name))


def _tile(frame: Any, label: str) -> str:
    return str(frame.locator(f"[data-tile='{label}'] b").first.inner_text())


@skip_on_airflow_3_0("Airflow 3.0 has no external views")
def test_the_run_tab_and_the_menu_page_render_the_real_numbers(ui_run, signed_in_page, tmp_path):
    server, run, page = ui_run["server"], ui_run["run"], signed_in_page
    _settled_view(server, run)
    # The run page's "SMS delivery" tab (its route is the plugin's url_route).
    page.goto(f"{server.url}/dags/{run.dag_id}/runs/{quote(run.run_id, safe='')}/plugin/orange-sms-delivery")
    frame = page.frame_locator("iframe[title='SMS delivery']")
    frame.locator("body[data-loaded='true']").wait_for(timeout=60_000)
    assert {label: _tile(frame, label) for label in ("Planned", "Sent", "Delivered", "Impossible")} == {
        "Planned": "7",
        "Sent": "7",
        "Delivered": "5",
        "Impossible": "1",
    }
    assert _tile(frame, "Still waiting") == "1"
    rows = frame.locator("[data-table='undelivered'] tbody tr")
    assert rows.count() == 2
    assert "+22177•••••02" in rows.all_inner_texts()[0] + rows.all_inner_texts()[1]
    assert frame.locator("#live").count() == 1  # one SMS still waits: the view keeps polling
    groups = frame.locator("[data-table='by-country-encoding'] tbody tr").all_inner_texts()
    assert [row.split("\t")[:3] for row in groups] == [["CIV", "GSM-7", "5 (5)"], ["SEN", "UCS-2", "2 (2)"]]
    _screenshot(page, "delivery-view.png", tmp_path)

    page.goto(f"{server.url}/plugin/orange-sms")
    frame = page.frame_locator("iframe[title='Orange SMS']")
    frame.locator("body[data-loaded='true']").wait_for(timeout=60_000)
    balance = frame.locator("[data-table='balance'] tbody tr").all_inner_texts()
    assert any(
        row.startswith("CIV") and str(ui_run["sandbox"].state.balances["CIV"]) in row for row in balance
    )
    assert frame.locator("svg.chart rect title").count() >= 2  # CIV and SEN bars today
    receiver = frame.locator("[data-table='receiver']").inner_text()
    assert "configured" in receiver
    assert ui_run["subscription_id"] in receiver
    assert "Sender\t2250000 (CIV)" in receiver  # from the subscription operator's record
    assert frame.locator("[data-table='receipts'] tbody tr").count() >= 1
    _screenshot(page, "account-page.png", tmp_path)
