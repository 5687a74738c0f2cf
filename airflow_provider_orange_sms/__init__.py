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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__version__ = "0.1.0"

__all__ = ["__version__"]


def lazy_attributes(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """
    Return a module ``__getattr__`` importing the module that defines a name on first use (internal:
    each concern package offers its names through it, so importing a package stays cheap).

    :param package: The package's ``__name__``.
    :param homes: Each name the package offers, and the module of the package defining it.
    """

    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
