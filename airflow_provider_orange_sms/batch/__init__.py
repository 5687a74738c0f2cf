"""One batch of :class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator`: what it
is asked to send, its plan, the quiet hours it waits for, its steps (:class:`SMSBatch`), its report,
and how an uncertain recipient is settled from a delivery receipt or released by the user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.batch.send_input import validated_input, validated_release
    from airflow_provider_orange_sms.batch.send_plan import build_plan, log_plan
    from airflow_provider_orange_sms.batch.send_window import SendWindow
    from airflow_provider_orange_sms.batch.settlement import settle_from_receipts
    from airflow_provider_orange_sms.batch.sms_batch import SMSBatch

__all__ = [
    "SMSBatch",
    "SendWindow",
    "build_plan",
    "log_plan",
    "settle_from_receipts",
    "validated_input",
    "validated_release",
]

#: The module defining each name.
_HOMES = {
    "SMSBatch": "sms_batch",
    "SendWindow": "send_window",
    "build_plan": "send_plan",
    "log_plan": "send_plan",
    "settle_from_receipts": "settlement",
    "validated_input": "send_input",
    "validated_release": "send_input",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
