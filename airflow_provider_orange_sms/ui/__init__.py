"""
What a user sees of their SMS in Airflow's UI (Airflow 3.1+): a delivery view on each DAG run and
task instance, and an "Orange SMS" page in the navigation (balance, usage, receipts subscription,
latest receipts and replies). Served by
:class:`~airflow_provider_orange_sms.plugins.pages_plugin.OrangeSMSPagesPlugin` on the API server;
every page and data endpoint checks the caller's Airflow session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.ui.app import URL_PREFIX, create_app

__all__ = [
    "URL_PREFIX",
    "create_app",
]

#: The module defining each name.
_HOMES = {
    "URL_PREFIX": "app",
    "create_app": "app",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
