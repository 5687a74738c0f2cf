"""Fixtures of the tests that need Airflow's metadata database or its API server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# The session's real API server with the delivery-receipt receiver.
from tests.support.receipts_server import receipts_server  # noqa: F401


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Migrate the tests' Airflow metadata DB (sqlite in the temp AIRFLOW_HOME) once per session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=dict(os.environ),
    )
    return os.environ["AIRFLOW_HOME"]
