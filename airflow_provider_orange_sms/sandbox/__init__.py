"""A local Orange SMS API emulator: run the provider, its tests and its demo with no Orange account.

Run it with ``python -m airflow_provider_orange_sms.sandbox --port 8089`` or start it from Python::

    from airflow_provider_orange_sms.sandbox import SandboxServer

    with SandboxServer() as sandbox:
        print(sandbox.url, sandbox.client_id, sandbox.client_secret)
"""

from __future__ import annotations

from airflow_provider_orange_sms.sandbox.server import SandboxServer
from airflow_provider_orange_sms.sandbox.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    Fault,
    SandboxConfig,
    SandboxState,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "Fault",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
]
