"""Phone numbers and texts: validating and normalising numbers, senders and countries, lists of
recipients as callers pass them, and per-recipient messages. Pure: no Airflow, no I/O. How many SMS
a text costs is public, in :mod:`airflow_provider_orange_sms.segments`.
"""

from __future__ import annotations
