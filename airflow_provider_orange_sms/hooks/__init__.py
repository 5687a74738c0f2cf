"""The hook: an Airflow connection turned into an Orange SMS client (public: ``hooks.orange_sms``)."""

from __future__ import annotations
