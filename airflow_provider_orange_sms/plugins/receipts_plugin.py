"""
The Airflow plugin that mounts the receiver (delivery receipts, replies) on the API server.

Registered through the ``airflow.plugins`` entry point (``pyproject.toml``), so installing the
provider is enough: ``POST /orange-sms/delivery-receipts/{secret}`` and
``POST /orange-sms/inbound-messages/{secret}`` answer on every API server once
``[orange_sms] delivery_receipts_secret`` is set.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_orange_sms.receipts import MaskSecretPathMiddleware, create_app

#: Where the receiver is mounted on the API server.
URL_PREFIX = "/orange-sms"


class OrangeSMSDeliveryReceiptsPlugin(AirflowPlugin):
    """
    Mount the Orange SMS delivery-receipt receiver (a FastAPI app) at ``/orange-sms``.

    Its root middleware masks the receiver's secret in the path of every request the API server
    logs, including those that miss the receiver (another case, a trailing slash, ``..``).
    """

    name = "orange_sms_delivery_receipts"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Orange SMS delivery receipts"},
    ]
    fastapi_root_middlewares = [
        {"middleware": MaskSecretPathMiddleware, "name": "Orange SMS receipt secret masking"},
    ]
