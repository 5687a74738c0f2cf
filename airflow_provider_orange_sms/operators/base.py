"""The base class of this provider's operators: the connection id and the hook."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook


class _OrangeSMSBaseOperator(BaseOperator):
    """
    Common base: the connection id and the hook.

    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    ui_color = "#ff7900"  # Orange's brand colour in the Airflow graph view

    def __init__(self, *, orange_sms_conn_id: str = OrangeSMSHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.orange_sms_conn_id = orange_sms_conn_id

    @cached_property
    def hook(self) -> OrangeSMSHook:
        """The hook for ``orange_sms_conn_id``."""
        return OrangeSMSHook(orange_sms_conn_id=self.orange_sms_conn_id)
