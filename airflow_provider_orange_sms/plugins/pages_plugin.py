"""
The Airflow plugin serving the provider's pages: the delivery view (a tab of every DAG run and task
instance) and the "Orange SMS" page in the navigation.

Registered through the ``airflow.plugins`` entry point. ``external_views`` (the tabs and the menu
entry) exist from Airflow 3.1; on 3.0 the plugin registers nothing (the README says what to use
instead).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_orange_sms.ui import URL_PREFIX, create_app


def _has_external_views() -> bool:
    return "external_views" in vars(AirflowPlugin)


_QUERY = "dag_id={DAG_ID}&run_id={RUN_ID}"
EXTERNAL_VIEWS: list[dict[str, Any]] = [
    {
        "name": "SMS delivery",
        "href": f"{URL_PREFIX}/delivery?{_QUERY}",
        "destination": "dag_run",
        "url_route": "orange-sms-delivery",
    },
    {
        "name": "SMS delivery",
        "href": f"{URL_PREFIX}/delivery?{_QUERY}&task_id={{TASK_ID}}&map_index={{MAP_INDEX}}",
        "destination": "task_instance",
        "url_route": "orange-sms-task-delivery",
    },
    {
        "name": "Orange SMS",
        "href": f"{URL_PREFIX}/account",
        "destination": "nav",
        "url_route": "orange-sms",
    },
]


class OrangeSMSPagesPlugin(AirflowPlugin):
    """The delivery view and the "Orange SMS" page (Airflow 3.1+), served at ``/orange-sms-ui``."""

    name = "orange_sms_pages"
    if _has_external_views():
        fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Orange SMS pages"}]
        external_views = EXTERNAL_VIEWS
