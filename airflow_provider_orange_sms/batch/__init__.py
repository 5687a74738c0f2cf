"""One batch of :class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator`: what it
is asked to send, its plan, the quiet hours it waits for, its steps (:class:`SMSBatch`) and its report.
"""

from __future__ import annotations
