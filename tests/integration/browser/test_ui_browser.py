"""
The connection form and its Test icon in a real browser: Airflow's API server and headless Chromium.

Starts ``airflow api-server`` (sqlite, simple auth manager, everyone admin) in its own
``AIRFLOW_HOME`` and drives Debian's Chromium (``/usr/bin/chromium``, or ``$ORANGE_SMS_CHROMIUM``)
with Playwright for Python; nothing downloads a browser. Skips, saying why, where Chromium or
Playwright is missing, or on Airflow < 3.2 (whose form ignores the provider's extra fields).

Set ``ORANGE_SMS_SCREENSHOTS=docs`` to refresh the docs' screenshots in ``docs/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_orange_sms.sandbox import SandboxServer
from tests.support import chromium
from tests.support.chromium import CHROMIUM
from tests.support.processes import free_port


def _airflow_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(part) for part in version("apache-airflow").split(".")[:2])


pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium)",
    ),
    pytest.mark.skipif(
        _airflow_version() < (3, 2),
        reason="Airflow < 3.2 does not show a provider's extra fields in the connection form",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")


@pytest.fixture(scope="module")
def browser_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(scope="module")
def api_server(browser_sandbox: SandboxServer) -> Iterator[dict[str, Any]]:
    """A migrated AIRFLOW_HOME and ``airflow api-server`` on a free port; yields its URL and env."""
    home = Path(tempfile.mkdtemp(prefix="orange-sms-ui-"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_")) and key != "AIRFLOW_HOME"
    }
    env.update(
        AIRFLOW_HOME=str(home / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        ORANGE_SMS_CACHE_DIR=str(home / "cache"),
    )
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    # A connection created from JSON, as the docs' AIRFLOW_CONN_ORANGE_SMS_DEFAULT (no port).
    conn_json = json.dumps(
        {
            "conn_type": "orange_sms",
            "host": browser_sandbox.url,
            "login": browser_sandbox.client_id,
            "password": browser_sandbox.client_secret,
            "extra": {"sender_address": "2250000", "country": "CIV"},
        }
    )
    subprocess.run(
        [*airflow, "connections", "add", "from_json", "--conn-json", conn_json],
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (home / "api-server.log").open("wb")
    proc = subprocess.Popen(
        [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180  # a startup limit, not a measured expectation
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/version", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"airflow api-server did not start: {(home / 'api-server.log').read_text()}")
                time.sleep(0.5)
        yield {"url": url, "env": env, "home": home}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        context = chromium.launch(playwright, tmp_path / "chromium-profile", 1280, 900)
        try:
            yield context.new_page()
        finally:
            context.close()


def _screenshot(page: Any, name: str, tmp_path: Path, *, full_page: bool = False) -> None:
    target = os.environ.get("ORANGE_SMS_SCREENSHOTS")
    directory = Path(target) if target else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(700)  # let the toast's slide-in animation end (the picture only)
    page.screenshot(path=str(directory / name), full_page=full_page)


def _add_connection(page: Any, url: str, conn_id: str, host: str, secret: str) -> Any:
    """Fill the Add Connection form as a user would; return the dialog."""
    page.goto(f"{url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill(conn_id)
    dialog.get_by_role("combobox").first.fill("Orange SMS")
    page.keyboard.press("Enter")
    dialog.locator("input[name=host]").fill(host)
    dialog.locator("input[name=login]").fill("sandbox-client-id")
    dialog.locator("input[name=password]").fill(secret)
    dialog.get_by_text("Extra Fields", exact=True).click()
    dialog.locator("#element_sender_address").fill("2250000")
    dialog.locator("#element_country").fill("CIV")
    return dialog


def _stored_extra(api_server: dict[str, Any], conn_id: str) -> dict[str, Any]:
    """The connection's extras as the REST API returns them."""
    url = api_server["url"]
    with urllib.request.urlopen(f"{url}/auth/token", timeout=30) as response:
        token = json.load(response)["access_token"]
    request = urllib.request.Request(
        f"{url}/api/v2/connections/{conn_id}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(json.load(response)["extra"] or "{}"))


def _test_icon(page: Any, conn_id: str) -> str:
    """Press the row's Test icon; return the toast's text once it shows."""
    row = page.get_by_role("row").filter(has=page.get_by_text(conn_id, exact=True))
    row.get_by_role("button", name="Test Connection").click()
    toast = page.locator("[data-part=root][data-type]").filter(has_text="Test Connection")
    toast.first.wait_for(timeout=60_000)
    return str(toast.first.inner_text())


def test_form_saves_what_the_user_set_and_test_succeeds(api_server, browser_sandbox, page, tmp_path):
    dialog = _add_connection(
        page, api_server["url"], "orange_sms_ui", browser_sandbox.url, browser_sandbox.client_secret
    )
    assert dialog.locator("input[name=host]").get_attribute("placeholder") == "https://api.orange.com"
    assert dialog.locator("input[name=port]").count() == 0  # the port lives in the Base URL
    assert dialog.get_by_text("Select Value").count() == 0  # every select starts at its default, none at null
    _screenshot(page, "connection-form.png", tmp_path, full_page=True)
    dialog.get_by_role("button", name="Save").click()
    page.get_by_text("orange_sms_ui", exact=True).wait_for()

    assert _stored_extra(api_server, "orange_sms_ui") == {
        "sender_address": "2250000",
        "country": "CIV",
        "rate_limit_per_second": 5,
        "rate_limit_backend": "file",
        "auth_cache": "file",
        "redis_conn_id": "redis_default",
        "connect_timeout": 10,
        "read_timeout": 30,
        "max_attempts": 5,
        "retry_backoff": 1,
        "max_message_length": 1530,
    }
    message = _test_icon(page, "orange_sms_ui")
    _screenshot(page, "connection-test-success.png", tmp_path)
    assert "Test Connection Successful" in message
    assert f"Connected to the Orange SMS API at {browser_sandbox.url}" in message
    assert "SMS units available" in message


def test_wrong_secret_says_so(api_server, browser_sandbox, page, tmp_path):
    dialog = _add_connection(
        page, api_server["url"], "orange_sms_wrong", browser_sandbox.url, "not-the-secret"
    )
    dialog.get_by_role("button", name="Save").click()
    page.get_by_text("orange_sms_wrong", exact=True).wait_for()

    message = _test_icon(page, "orange_sms_wrong")
    _screenshot(page, "connection-test-wrong-secret.png", tmp_path)
    assert "Test Connection Failed" in message
    assert "OrangeSMSAuthError" in message
    assert "not-the-secret" not in message


def test_connection_created_from_json_tests_too(api_server, browser_sandbox, page):
    page.goto(f"{api_server['url']}/connections")
    message = _test_icon(page, "from_json")
    assert "Test Connection Successful" in message
