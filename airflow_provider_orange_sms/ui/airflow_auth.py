"""
Who is calling the provider's pages, and what they may see: the ONE module of the pages that touches
Airflow's security internals (``tests/unit/test_airflow_internals.py`` guards them).

Airflow does not authenticate plugin apps. These pages use the dependency Airflow's own REST API
uses, ``airflow.api_fastapi.core_api.security.get_user``: an ``Authorization: Bearer`` token, else
the ``_token`` session cookie the UI's login sets (an ``external_views`` iframe loads its URL with
that cookie, as the browser sends it to the same origin). No valid token: 401 (none, expired) or
403 (invalid), before anything else runs. Then the configured auth manager decides per resource,
as Airflow's endpoints do: the DAG's runs and XComs for a delivery view, the connection for the
balance and subscription, assets for the receipts and replies.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException, status

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine


def user_dependency() -> Callable[..., Coroutine[Any, Any, Any]]:
    """Airflow's own ``get_user`` dependency (401/403 for a missing or invalid token)."""
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


#: ``Depends`` of the authenticated Airflow user, for the pages' routes.
CurrentUser = Depends(user_dependency())


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def _with_team(details_class: Any, **fields: Any) -> Any:
    """``details_class(**fields)``, with ``team_name`` only where the class has it (3.1+)."""
    names = {f.name for f in dataclasses.fields(details_class)}
    return details_class(**{k: v for k, v in fields.items() if k in names})


def _team_of_dag(dag_id: str) -> str | None:
    from airflow.models.dag import DagModel

    get_team_name = getattr(DagModel, "get_team_name", None)
    return get_team_name(dag_id) if get_team_name is not None else None


def may_read_dag_run(user: Any, dag_id: str) -> bool:
    """
    Whether ``user`` may read ``dag_id``'s runs and their XComs (what a delivery view shows).

    :param user: The authenticated Airflow user.
    :param dag_id: The DAG.
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    manager = _auth_manager()
    details = _with_team(DagDetails, id=dag_id, team_name=_team_of_dag(dag_id))
    return all(
        manager.is_authorized_dag(method="GET", access_entity=entity, details=details, user=user)
        for entity in (DagAccessEntity.RUN, DagAccessEntity.XCOM)
    )


def may_read_connection(user: Any, conn_id: str) -> bool:
    """
    Whether ``user`` may read the connection ``conn_id`` (its account's balance, subscription).

    :param user: The authenticated Airflow user.
    :param conn_id: The Orange SMS connection.
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    details = _with_team(ConnectionDetails, conn_id=conn_id)
    return bool(_auth_manager().is_authorized_connection(method="GET", details=details, user=user))


def may_read_assets(user: Any) -> bool:
    """
    Whether ``user`` may read assets and their events (delivery receipts, replies).

    :param user: The authenticated Airflow user.
    """
    return bool(_auth_manager().is_authorized_asset(method="GET", user=user))


def forbid(what: str) -> HTTPException:
    """
    The 403 answered when the user may not see ``what``.

    :param what: What was refused, for the message.
    """
    return HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=f"Forbidden: {what}")
