"""The wire client's parts under :class:`~airflow_provider_orange_sms.client.OrangeSMSClient`.

The HTTP session and its retry rules, reading Orange's answers (errors, the read endpoints' shapes),
the sender numbers. No Airflow here. The public client is :mod:`airflow_provider_orange_sms.client`.
"""

from __future__ import annotations
