"""
Airflow's simple auth manager, except that it denies named users named DAGs: an auth manager with
per-DAG permissions, for tests/test_ui_pages.py's API server
(``AIRFLOW__CORE__AUTH_MANAGER=tests.support.denying_auth_manager.DenyingAuthManager``).

``ORANGE_SMS_TEST_DENIED_DAGS`` lists the denials as ``user:dag_id`` pairs, comma-separated.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

#: The environment variable listing the ``user:dag_id`` denials.
DENIED_ENV = "ORANGE_SMS_TEST_DENIED_DAGS"


def _denied() -> set[tuple[str, str]]:
    pairs = (item.split(":", 1) for item in os.environ.get(DENIED_ENV, "").split(",") if ":" in item)
    return {(user.strip(), dag_id.strip()) for user, dag_id in pairs}


class DenyingAuthManager(SimpleAuthManager):
    """The simple auth manager, denying every access to the DAGs :data:`DENIED_ENV` names per user."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        """
        Deny the listed DAGs to their users; otherwise as the simple auth manager decides.

        :param method: The HTTP method.
        :param user: The user.
        :param access_entity: What of the DAG (runs, XComs…).
        :param details: Which DAG.
        """
        dag_id = getattr(details, "id", None)
        if dag_id is not None and (user.get_name(), dag_id) in _denied():
            return False
        return bool(
            super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        )
