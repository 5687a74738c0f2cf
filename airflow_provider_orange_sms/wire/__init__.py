"""The wire client's parts under :class:`~airflow_provider_orange_sms.client.OrangeSMSClient`.

The HTTP session and its retry rules, reading Orange's answers (errors, the read endpoints' shapes),
the sender numbers. No Airflow here. The public client is :mod:`airflow_provider_orange_sms.client`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.wire.client_base import ClientBase
    from airflow_provider_orange_sms.wire.errors import (
        created_id,
        describe_response,
        error_from_response,
        error_object_in,
        json_object,
        request_error_in,
    )
    from airflow_provider_orange_sms.wire.read_shapes import (
        WrongShape,
        check_purchase_orders,
        check_statistics,
        check_subscription,
        contract_units,
    )
    from airflow_provider_orange_sms.wire.transport import RetryPolicy, Transport

__all__ = [
    "ClientBase",
    "RetryPolicy",
    "Transport",
    "WrongShape",
    "check_purchase_orders",
    "check_statistics",
    "check_subscription",
    "contract_units",
    "created_id",
    "describe_response",
    "error_from_response",
    "error_object_in",
    "json_object",
    "request_error_in",
]

#: The module defining each name.
_HOMES = {
    "ClientBase": "client_base",
    "RetryPolicy": "transport",
    "Transport": "transport",
    "WrongShape": "read_shapes",
    "check_purchase_orders": "read_shapes",
    "check_statistics": "read_shapes",
    "check_subscription": "read_shapes",
    "contract_units": "read_shapes",
    "created_id": "errors",
    "describe_response": "errors",
    "error_from_response": "errors",
    "error_object_in": "errors",
    "json_object": "errors",
    "request_error_in": "errors",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
