"""Apache Airflow provider for the Orange SMS API (Africa and Middle East).

Importing this package is cheap: Airflow calls
:func:`~airflow_provider_orange_sms.get_provider_info.get_provider_info` for every provider when it
starts, so nothing here imports Airflow, requests or the hook.

Public modules (import from these; every other module is internal to the provider):
``hooks.orange_sms``, ``operators.orange_sms``, ``sensors.orange_sms``, ``triggers.orange_sms``,
``notifications.orange_sms``, ``exceptions``, ``segments``, ``receipts``, ``client`` (the wire client
without Airflow) and ``sandbox`` (the local API emulator). Each one's ``__all__`` lists its names.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
