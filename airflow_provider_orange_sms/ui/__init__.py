"""
What a user sees of their SMS in Airflow's UI (Airflow 3.1+): a delivery view on each DAG run and
task instance, and an "Orange SMS" page in the navigation (balance, usage, receipts subscription,
latest receipts and replies). Served by
:class:`~airflow_provider_orange_sms.plugins.pages_plugin.OrangeSMSPagesPlugin` on the API server;
every page and data endpoint checks the caller's Airflow session.
"""

from __future__ import annotations
