"""
The fixtures every kind of test uses (registered by ``pytest_plugins`` in ``tests/conftest.py``): a
real sandbox server over HTTP, clients of it, an isolated cache, the default connection pointing at
it, a frozen limiter clock, the sent ledger's write back-offs recorded instead of slept. Fixtures
of one folder live in that folder's ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from tests.support.sandbox import FAST_RETRY, connection_json


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private token/limiter cache directory, also exported as ORANGE_SMS_CACHE_DIR."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("ORANGE_SMS_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Freeze the limiter's wall clock so slot arithmetic does not depend on machine load."""
    from airflow_provider_orange_sms.limit import file_limiter

    clock = [1_000_000.0]
    monkeypatch.setattr(file_limiter.time, "time", lambda: clock[0])
    return clock


@pytest.fixture
def ledger_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sent ledger's waits between write tries, recorded here instead of slept."""
    from airflow_provider_orange_sms.ledger import SentLedger

    waits: list[float] = []
    init = SentLedger.__init__

    def init_recording_waits(self: SentLedger, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.sleep = waits.append

    monkeypatch.setattr(SentLedger, "__init__", init_recording_waits)
    return waits


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Sandbox settings; override in a test module to change them."""
    return SandboxConfig(dr_delay=None)


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[SandboxServer]:
    """A fresh Orange SMS sandbox listening on a free loopback port."""
    with SandboxServer(config=sandbox_config) as server:
        yield server


@pytest.fixture
def make_client(sandbox: SandboxServer, cache_dir: Path) -> Iterator[Callable[..., OrangeSMSClient]]:
    """Build clients talking to the sandbox with the shared file cache (close them afterwards)."""
    clients: list[OrangeSMSClient] = []

    def factory(**overrides: Any) -> OrangeSMSClient:
        kwargs: dict[str, Any] = {
            "base_url": sandbox.url,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "sender_address": "2250000",
            "retry": FAST_RETRY,
        }
        kwargs.update(overrides)
        client = OrangeSMSClient.with_file_cache(str(cache_dir), **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., OrangeSMSClient]) -> OrangeSMSClient:
    """A client of the sandbox."""
    return make_client()


@pytest.fixture
def fast_conn(sandbox: SandboxServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The default connection, pointing at the sandbox, with the client-side limiter opened up."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox, rate_limit_per_second=1000)
    )
    return "orange_sms_default"


@pytest.fixture
def orange_conn(sandbox: SandboxServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the ``orange_sms_default`` connection at the sandbox; return the conn id."""
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", connection_json(sandbox))
    return "orange_sms_default"
