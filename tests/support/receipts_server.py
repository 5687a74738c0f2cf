"""A real ``airflow api-server`` with the delivery-receipt receiver, shared by the receipt tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.processes import free_port, stop_process

ASSET_NAME = "orange_sms_delivery_receipts"
INBOUND_ASSET_NAME = "orange_sms_inbound_messages"
#: Orange's callers (from its DR documentation) plus loopback, where the tests and sandbox post from.
ALLOWED_IPS = "127.0.0.1,80.12.13.2,80.12.102.66,80.12.209.66,80.12.66.97"
#: The receiver's secret in the tests that run its app in-process (tests/unit/receipts/test_reply_receiver.py
#: without a database, tests/integration/db/test_reply_store.py with one).
SECRET = "a-long-random-secret-for-tests"


@dataclass
class ReceiptsServer:
    """A running API server: its URL, the receiver's secret, and its combined output."""

    url: str
    secret: str
    log_path: Path
    process: subprocess.Popen[bytes]
    _token: str | None = field(default=None, repr=False)

    @property
    def receipt_url(self) -> str:
        """The full receiver URL, secret included."""
        return f"{self.url}/orange-sms/delivery-receipts/{self.secret}"

    @property
    def reply_url(self) -> str:
        """The reply receiver URL, secret included."""
        return f"{self.url}/orange-sms/inbound-messages/{self.secret}"

    def reply_events(self, sender: str) -> list[dict[str, Any]]:
        """Every reply event (GET /api/v2/assets/events) from ``sender``."""
        return [e for e in self.asset_events(INBOUND_ASSET_NAME) if e["extra"].get("sender") == sender]

    def variable(self, key: str) -> str | None:
        """A Variable's value through the REST API (GET /api/v2/variables/{key}); None when absent."""
        response = requests.get(f"{self.url}/api/v2/variables/{key}", headers=self.headers(), timeout=30)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        value: str = response.json()["value"]
        return value

    def headers(self) -> dict[str, str]:
        """Bearer auth for the REST API (simple auth manager, everyone admin)."""
        if self._token is None:
            response = requests.get(f"{self.url}/auth/token", timeout=30)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def events(self, resource_prefix: str) -> list[dict[str, Any]]:
        """Every receipt event (GET /api/v2/assets/events) whose resource id starts with the prefix."""
        return [
            e
            for e in self.asset_events(ASSET_NAME)
            if str(e["extra"].get("resource_id", "")).startswith(resource_prefix)
        ]

    def asset_events(self, name: str) -> list[dict[str, Any]]:
        """Every event of the asset ``name``, page by page: Airflow 3.0 ignores ``name_pattern`` here,
        so its first page can hold only other assets' events."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            response = requests.get(
                f"{self.url}/api/v2/assets/events",
                params={"name_pattern": name, "limit": 100, "offset": offset},
                headers=self.headers(),
                timeout=30,
            )
            response.raise_for_status()
            page = response.json()["asset_events"]
            found += [e for e in page if e["name"] == name]
            if len(page) < 100:
                return found
            offset += 100

    def output(self) -> str:
        """Everything the API server printed so far."""
        return self.log_path.read_text(errors="replace")


def receipt(
    resource_id: str, status: str = "DeliveredToTerminal", address: str = "tel:+2250700000001"
) -> dict:
    """An Orange delivery-receipt body."""
    return {
        "deliveryInfoNotification": {
            "callbackData": resource_id,
            "deliveryInfo": {"address": address, "deliveryStatus": status},
        }
    }


def reply_body(
    sender: str,
    message: str,
    *,
    message_id: str | None = "",
    destination: str = "tel:+2250000",
    date_time: str = "2026-02-10T14:30:00Z",
    callback_data: str | None = None,
) -> dict:
    """
    An Orange reply body (OneAPI, ``inboundSMSMessageNotification``); ``message_id=""`` makes a
    unique one, None leaves it out.
    """
    sms: dict[str, Any] = {
        "senderAddress": sender,
        "destinationAddress": destination,
        "message": message,
        "dateTime": date_time,
    }
    if message_id is not None:
        sms["messageId"] = message_id or f"m-{uuid.uuid4()}"
    notification: dict[str, Any] = {"inboundSMSMessage": sms}
    if callback_data is not None:
        notification["callbackData"] = callback_data
    return {"inboundSMSMessageNotification": notification}


def unique_prefix() -> str:
    """A resource-id prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}-"


@contextlib.contextmanager
def hold_lock(held: str, body: dict) -> Iterator[None]:
    """
    Hold, in another transaction, a lock that storing ``body`` needs, until the block ends.

    SQLite: an exclusive transaction on the database (``held="same_receipt"`` is skipped: SQLite has
    no row locks). PostgreSQL: ``"database"`` locks the dedup table (ACCESS EXCLUSIVE, as a
    migration or a long maintenance job would); ``"same_receipt"`` inserts the receipt's own dedup
    row without committing (as a worker stuck mid-transaction would).

    ``"asset_row"`` locks the asset's row (``SELECT … FOR UPDATE``), which receipts no longer need.

    :param held: ``"database"``, ``"same_receipt"`` or ``"asset_row"``.
    :param body: The receipt body the receiver will be sent.
    """
    import sqlalchemy as sa
    from airflow.configuration import conf
    from airflow.utils.session import create_session

    from airflow_provider_orange_sms.receipts import dedup
    from airflow_provider_orange_sms.receipts.store import KIND

    url = conf.get("database", "sql_alchemy_conn")
    if url.startswith("sqlite"):
        if held != "database":
            pytest.skip("SQLite locks the whole database, not rows")
        import sqlite3

        lock = sqlite3.connect(url.split(":///", 1)[1], timeout=60, isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return
    with create_session() as session:
        dedup.ensure_table(session)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            if held == "database":
                connection.execute(sa.text(f"LOCK TABLE {dedup.TABLE_NAME} IN ACCESS EXCLUSIVE MODE"))
            elif held == "asset_row":
                connection.execute(
                    sa.text("SELECT id FROM asset WHERE name = :name FOR UPDATE"), {"name": ASSET_NAME}
                )
            else:
                notification = body["deliveryInfoNotification"]
                parts = (
                    notification["callbackData"],
                    notification["deliveryInfo"]["address"],
                    notification["deliveryInfo"]["deliveryStatus"],
                )
                connection.execute(
                    sa.insert(dedup.dedup_table()).values(
                        kind=KIND, key_digest=dedup.key_digest(parts), seen_at=int(time.time())
                    )
                )
            try:
                yield
            finally:
                transaction.rollback()
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def receipts_server(airflow_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiptsServer]:
    """Start ``airflow api-server`` (sqlite, simple auth manager) once per session, with the receiver."""
    port = free_port()
    secret = secrets.token_urlsafe(24)
    log_path = tmp_path_factory.mktemp("api-server") / "api-server.log"
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET": secret,
            "AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS": ALLOWED_IPS,
            # Lets the tests pose as Orange's addresses (or others) through X-Forwarded-For.
            "AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_TRUSTED_PROXIES": "127.0.0.1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "100",
            # Airflow 3.0 signs tokens with iss=None unless set, which newer PyJWT refuses.
            "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow",
        }
    )
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            # Loopback only: every caller is an admin here (ALL_ADMINS).
            [
                *(sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", "1"),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = ReceiptsServer(url=f"http://127.0.0.1:{port}", secret=secret, log_path=log_path, process=process)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"airflow api-server exited with {process.returncode}:\n{server.output()[-3000:]}"
                )
            try:
                if requests.get(f"{server.url}/api/v2/version", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"airflow api-server did not answer:\n{server.output()[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        stop_process(process)
