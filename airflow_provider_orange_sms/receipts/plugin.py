"""
The Airflow plugin that mounts the delivery-receipt receiver on the API server.

Registered through the ``airflow.plugins`` entry point (``pyproject.toml``), so installing the
provider is enough: ``POST /orange-sms/delivery-receipts/{secret}`` answers on every API server once
``[orange_sms] delivery_receipts_secret`` is set.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_orange_sms.receipts.app import create_app

#: Where the receiver is mounted on the API server.
URL_PREFIX = "/orange-sms"


class OrangeSMSDeliveryReceiptsPlugin(AirflowPlugin):
    """Mount the Orange SMS delivery-receipt receiver (a FastAPI app) at ``/orange-sms``."""

    name = "orange_sms_delivery_receipts"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Orange SMS delivery receipts"},
    ]
