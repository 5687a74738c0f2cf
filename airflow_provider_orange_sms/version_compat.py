"""
Names whose import path changed between Airflow 3 releases: the package imports them from here, and
only here (no other module tries one path and falls back to another).

The first path is the current one (Airflow 3.3); the fallbacks serve 3.0-3.2, where the newer path
does not exist yet. The older paths are deprecated on recent releases, so they are never tried first.

The triggerer's execution API (the supervisor's ``in_process_api_server``, ``make_client`` and the
job's type at ``on_starting``) is fenced in ``plugins/triggerer_warm_up_plugin.py`` alone.
"""

from __future__ import annotations

from typing import Any

try:
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover - Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]

try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # pragma: no cover - Airflow < 3.2
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef]

try:
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - Airflow < 3.2
    from airflow.configuration import conf

try:
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
except ImportError:  # pragma: no cover - Airflow < 3.2
    from airflow.exceptions import (  # type: ignore[no-redef,unused-ignore]
        AirflowSensorTimeout,
        AirflowSkipException,
    )

try:
    from airflow.sdk.log import mask_secret
except ImportError:  # pragma: no cover - Airflow < 3.1
    from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]

try:
    from airflow.exceptions import AirflowProviderDeprecationWarning
except ImportError:  # pragma: no cover - a worker with the Task SDK only
    AirflowProviderDeprecationWarning = DeprecationWarning  # type: ignore[assignment,misc]

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowProviderDeprecationWarning",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "conf",
    "get_fernet",
    "mask_secret",
]


def get_fernet() -> Any:
    """
    Return Airflow's Fernet for the deployment's ``[core] fernet_key`` (a no-op one without a key).

    The Task SDK's from Airflow 3.2 (what workers run), the core one before. Imported when called.
    """
    try:
        from airflow.sdk.crypto import get_fernet as _get_fernet
    except ImportError:  # Airflow < 3.2
        from airflow.models.crypto import get_fernet as _get_fernet
    return _get_fernet()
