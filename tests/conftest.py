"""
The suite's setup: its own Airflow home (:mod:`tests.support.airflow_home`, before Airflow is
imported), the fixtures every kind of test uses (:mod:`tests.support.fixtures`), and the markers
saying what each test needs. Helpers live in ``tests/support/``, a folder's own fixtures in its
``conftest.py`` (``tests/integration/conftest.py``: the metadata DB and the API server).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.support.airflow_home  # noqa: F401  (sets AIRFLOW_HOME and friends: must come first)

pytest_plugins = ["tests.support.fixtures"]

#: Markers by the folder a test lives in (tests/integration/<folder>/).
_FOLDER_MARKERS = {
    "api_server": ("api_server", "db"),
    "browser": ("browser", "api_server", "db"),
    "dag_runs": ("db",),
    "db": ("db",),
    "processes": ("processes",),
    "redis": ("redis", "processes"),
}
#: Markers by a fixture the test uses.
_FIXTURE_MARKERS = {
    "airflow_db": ("db",),
    "receipts_server": ("api_server", "db"),
    "redis_server": ("redis",),
}
#: What a test may need, marked by hand (``@pytest.mark.processes``) or by fixture; tests/unit holds
#: none that needs any of them.
_SLOW = {"db", "api_server", "browser", "redis", "processes", "deployment"}


def pytest_configure(config: pytest.Config) -> None:
    """
    Import Airflow before any test runs: it configures logging on import, replacing the root logger's
    handlers, so inside a test (the first to import it when run alone) it would blind that test's
    caplog.
    """
    import airflow  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with what it needs (see ``markers`` in pyproject.toml); ``slow`` for any."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts
        needs: set[str] = set()
        if parts[0] == "integration":
            needs.update(_FOLDER_MARKERS.get(parts[1], ("processes", "db")))
            if parts[-1] == "test_deployment.py":
                needs.add("deployment")
        for fixture in getattr(item, "fixturenames", ()):
            needs.update(_FIXTURE_MARKERS.get(fixture, ()))
        needs.update(m.name for m in item.iter_markers() if m.name in _SLOW)
        for marker in sorted(needs | ({"slow"} if needs else set())):
            item.add_marker(marker)
