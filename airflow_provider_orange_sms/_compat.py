"""Imports whose location changed between Airflow 3 releases; the rest of the package imports from here."""

from __future__ import annotations

try:
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - Airflow < 3.2
    from airflow.configuration import conf

__all__ = ["conf"]
