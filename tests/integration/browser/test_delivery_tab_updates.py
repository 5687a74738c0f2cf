"""
The run's "SMS delivery" tab, opened in Chromium before the send starts, follows the run WITHOUT a
reload: the send not started yet, then deferred for its send window (until the window's opening),
then sending, then its results; and a run that ends with no send task gets the final word and the
tab stops polling. Before the fix the tab said "No SMS send task in this run" at once and never
polled again (only a reload showed the send), and a deferred task read "sending, nothing recorded yet".

The tab is served by the tests' real ``airflow api-server`` (tests/support/receipts_server.py) on the
tests' SQLite metadata DB. The runs are created through its REST API (no scheduler runs them); the
test then moves them on in the DB the way the scheduler, a worker and the triggerer would: task
instance states, a real ``Trigger`` row for a ``DateTimeTrigger``, and the XComs the real
SendSMSOperator pushed when ``dag.test()`` ran it against the sandbox beforehand (nothing runs while
the browser watches: no SQLite lock is held across the page's polls).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from airflow_provider_orange_sms.ledger import ledger_key
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from airflow_provider_orange_sms.ui.pages import POLL_SECONDS
from tests.support import chromium
from tests.support.chromium import CHROMIUM
from tests.support.dags import TEST_DAGS, load_dag
from tests.support.sandbox import connection_json
from tests.support.versions import skip_on_airflow_3_0

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium)",
    ),
    skip_on_airflow_3_0("Airflow 3.0 has no external views: the pages are not served"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")

DAG_ID, NO_SEND_DAG_ID, TASK_ID = "ui_tab_updates", "ui_tab_no_send", "send"
#: A limit for a loaded machine (each state is waited for, never timed): the page polls every 5 s.
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def sent_for_real(airflow_db: str, receipts_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """
    Run both DAGs once with ``dag.test()`` (the send against the sandbox): the DAGs are then in the
    metadata DB for the API server, and the send task's XCom rows are what the real operator pushes.
    Returns those rows' stored values by key (``sms_plan``, ``return_value``).
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with SandboxServer(config=SandboxConfig(dr_delay=None)) as sandbox, pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_per_second=1000))
        patch.setenv("ORANGE_SMS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        run = load_dag(TEST_DAGS / "ui_tab_updates.py", DAG_ID).test()
        assert run.state == "success"
        assert len(sandbox.state.messages) == 2
        assert load_dag(TEST_DAGS / "ui_tab_updates.py", NO_SEND_DAG_ID).test().state == "success"
    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=run.run_id, task_id=TASK_ID).all()
        stored = {row.key: row.value for row in rows}
    assert set(stored) == {"sms_plan", "return_value"}, stored
    return stored


def _trigger(server: Any, dag_id: str) -> str:
    """A new run of ``dag_id`` through the REST API (queued: no scheduler runs it); its run id."""
    run_id = f"manual__tab-{uuid.uuid4().hex[:8]}"
    response = requests.post(
        f"{server.url}/api/v2/dags/{dag_id}/dagRuns",
        json={"dag_run_id": run_id, "logical_date": None},
        headers=server.headers(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return run_id


def _set_run(dag_id: str, run_id: str, state: str) -> None:
    """The run's state, as the scheduler sets it (``set_state`` dates its start and end)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one().set_state(DagRunState(state))


def _push(run_id: str, key: str, stored: Any) -> None:
    """An XCom row as the execution API stores what the task sends (already serialised)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        XComModel.set(
            key, stored, dag_id=DAG_ID, task_id=TASK_ID, run_id=run_id, serialize=False, session=session
        )


def _send_ti(session: Any, run_id: str) -> Any:
    from airflow.models.taskinstance import TaskInstance

    return session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id, task_id=TASK_ID).one()


def _defer_for_window(run_id: str, opening: datetime) -> None:
    """What a worker does when the send task defers for its window: a Trigger row, the task deferred."""
    from airflow.models.trigger import Trigger
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        trigger = Trigger.from_object(DateTimeTrigger(moment=opening))
        session.add(trigger)
        session.flush()
        ti = _send_ti(session, run_id)
        ti.state = TaskInstanceState.DEFERRED
        ti.trigger_id = trigger.id
        ti.next_method = "execute_after_wait"
        ti.next_kwargs = {}
        ti.start_date = datetime.now(timezone.utc)


def _resume(run_id: str) -> None:
    """What the triggerer and a worker do when the window opens: the trigger fires, the task runs again."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        ti = _send_ti(session, run_id)
        trigger_id, ti.trigger_id = ti.trigger_id, None
        ti.state = TaskInstanceState.RUNNING
        session.flush()
        session.query(Trigger).filter_by(id=trigger_id).delete()


def _succeed(run_id: str) -> None:
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        ti = _send_ti(session, run_id)
        ti.state = TaskInstanceState.SUCCESS
        ti.end_date = datetime.now(timezone.utc)
        ti.next_method = ti.next_kwargs = None


class Tab:
    """The run's "SMS delivery" tab in Chromium, and what would betray a reload of it or of the page."""

    def __init__(self, page: Any, url: str) -> None:
        self.page, self.url = page, url
        self.frame_navigations = 0
        self.polls = 0
        page.on("framenavigated", self._navigated)
        page.on("request", self._request)
        page.goto(url)
        self.frame = page.frame_locator("iframe[title='SMS delivery']")
        self.frame.locator("body[data-loaded='true']").wait_for(timeout=WAIT_MS)
        self.navigations_at_load = self.frame_navigations
        # A mark in the tab's own window: a reload of the iframe (or of the page) wipes it.
        self._delivery_frame().evaluate("window.__sameDocument = 'kept'")

    def _delivery_frame(self) -> Any:
        [frame] = [f for f in self.page.frames if "/orange-sms-ui/delivery" in f.url]
        return frame

    def _navigated(self, frame: Any) -> None:
        self.frame_navigations += 1

    def _request(self, request: Any) -> None:
        if "/orange-sms-ui/api/delivery?" in request.url:
            self.polls += 1

    def text(self, selector: str) -> str:
        locator = self.frame.locator(selector)
        locator.wait_for(timeout=WAIT_MS)
        return str(locator.inner_text())

    def assert_not_reloaded(self) -> None:
        assert self.page.url == self.url
        assert self.frame_navigations == self.navigations_at_load
        assert self._delivery_frame().evaluate("window.__sameDocument") == "kept"


@pytest.fixture
def browser(receipts_server: Any, tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium (never a downloaded browser), signed in with the API server's token."""
    token = receipts_server.headers()["Authorization"].split(" ", 1)[1]
    with sync_api.sync_playwright() as playwright:
        context = chromium.launch(playwright, tmp_path / "chromium-profile", 1400, 1000)
        try:
            context.add_cookies([{"name": "_token", "value": token, "url": receipts_server.url}])
            yield context.new_page()
        finally:
            context.close()


def _tab_url(server: Any, dag_id: str, run_id: str) -> str:
    return f"{server.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/plugin/orange-sms-delivery"


def test_the_tab_follows_the_send_from_not_started_to_sent_without_a_reload(
    sent_for_real, receipts_server, browser
):
    run_id = _trigger(receipts_server, DAG_ID)
    _set_run(DAG_ID, run_id, "running")
    tab = Tab(browser, _tab_url(receipts_server, DAG_ID, run_id))

    # Right after the trigger: the send has not started, and the tab keeps polling.
    assert "The SMS send has not started yet (run running)" in tab.text("#not-started")
    assert tab.frame.locator("#empty").count() == 0
    assert tab.frame.locator("#live").count() == 1

    # The task starts, pushes its plan and defers on a DateTimeTrigger until its window opens.
    opening = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(microsecond=0)
    plan = dict(sent_for_real["sms_plan"], ledger=ledger_key(DAG_ID, TASK_ID, run_id, -1))
    _push(run_id, "sms_plan", plan)
    _defer_for_window(run_id, opening)
    progress = tab.frame.locator(f"[data-task='{TASK_ID}'] [data-progress]")
    progress.filter(has_text="waits for its send window").wait_for(timeout=WAIT_MS)
    waiting = str(progress.inner_text())
    assert f"deferred — waits for its send window until {opening.isoformat()}" in waiting
    assert "sending" not in waiting
    assert tab.frame.locator("#not-started").count() == 0
    assert tab.frame.locator("#live").count() == 1
    assert tab.text("[data-tile='Planned'] b") == "2"
    tab.assert_not_reloaded()

    # The window opens: the trigger fires and the task runs again.
    _resume(run_id)
    progress.filter(has_text="running — sending, nothing recorded yet").wait_for(timeout=WAIT_MS)
    tab.assert_not_reloaded()

    # It sends, pushes its results and succeeds; the run succeeds.
    _push(run_id, "return_value", sent_for_real["return_value"])
    _succeed(run_id)
    _set_run(DAG_ID, run_id, "success")
    tab.frame.locator(f"[data-task='{TASK_ID}'] [data-progress='reported']").wait_for(timeout=WAIT_MS)
    assert tab.text("[data-tile='Sent'] b") == "2"
    assert tab.text("[data-tile='Failed'] b") == "0"
    assert str(progress.inner_text()).strip() == "success"
    assert "run success" in tab.text("h1 + span")
    assert tab.frame.locator("#not-started").count() == 0
    assert tab.frame.locator("#empty").count() == 0
    tab.assert_not_reloaded()


def test_a_run_that_ends_with_no_send_task_says_so_and_stops_polling(sent_for_real, receipts_server, browser):
    run_id = _trigger(receipts_server, NO_SEND_DAG_ID)
    _set_run(NO_SEND_DAG_ID, run_id, "running")
    tab = Tab(browser, _tab_url(receipts_server, NO_SEND_DAG_ID, run_id))
    assert "has not started yet (run running)" in tab.text("#not-started")
    assert tab.frame.locator("#live").count() == 1

    _set_run(NO_SEND_DAG_ID, run_id, "success")
    assert tab.text("#empty") == "No SMS send task in this run (no sms_plan XCom)."
    assert tab.frame.locator("#not-started").count() == 0
    assert tab.frame.locator("#live").count() == 0
    polls = tab.polls
    # Two poll periods and more with nothing fetched: the tab stopped polling (a bound, not a timing).
    browser.wait_for_timeout((2 * POLL_SECONDS + 2) * 1000)
    assert tab.polls == polls
    tab.assert_not_reloaded()
