"""The connection form of the ``orange_sms`` connection type, generated from
:class:`~airflow_provider_orange_sms.config.connection_config.OrangeSMSConfig`'s extra fields
(their defaults, labels and placeholders), so the form and the config cannot disagree."""

from __future__ import annotations

from dataclasses import MISSING, Field
from typing import Any

from airflow_provider_orange_sms.config.connection_config import extra_fields


def _shown(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _default_of(f: Field[Any]) -> object:
    return None if f.default is MISSING else f.default


def form_fields() -> dict[str, dict[str, Any]]:
    """
    Return the connection form's extra fields (``conn-fields`` in provider info).

    A field shows its config default as its value, except extras whose name contains "token":
    Airflow masks their value and would show (and store) ``***``.
    """
    form: dict[str, dict[str, Any]] = {}
    for f, spec in extra_fields():
        schema = dict(spec.schema)
        default = _default_of(f)
        if default is not None and "token" not in f.name:
            schema["default"] = _shown(default)
        form[f.name] = {"label": spec.label, "description": spec.description, "schema": schema}
    return form


def form_placeholders() -> dict[str, str]:
    """Return the placeholders of the extra fields: the given one, else the default."""
    placeholders: dict[str, str] = {}
    for f, spec in extra_fields():
        default = _default_of(f)
        if spec.placeholder is not None:
            placeholders[f.name] = spec.placeholder
        elif default is not None:
            placeholders[f.name] = str(_shown(default))
    return placeholders
