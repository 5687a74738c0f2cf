"""The base class of this provider's operators: the connection id and the hook, closed when a task
method ends (:func:`closes_hook`)."""

from __future__ import annotations

import functools
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseOperator

from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook

if TYPE_CHECKING:
    from collections.abc import Callable

_R = TypeVar("_R")


def closes_hook(method: Callable[..., _R]) -> Callable[..., _R]:
    """
    Close the operator's hook when ``method`` ends, however it ends (a result, an error, a deferral).

    A task's process may live on after its task (a DAG-level callback, ``dag.test()``, a worker that
    forks): its HTTP session and the limiter's state file must not stay open. The hook opens them
    again on its next use, so an operator run twice still works.

    :param method: A task method (``execute``) of one of this provider's operators.
    """

    @functools.wraps(method)
    def run(self: _OrangeSMSBaseOperator, /, *args: Any, **kwargs: Any) -> _R:
        try:
            return method(self, *args, **kwargs)
        finally:
            self.close_hook()

    return run


class _OrangeSMSBaseOperator(BaseOperator):
    """
    Common base: the connection id and the hook.

    :param orange_sms_conn_id: The Airflow connection of type ``orange_sms``.
    """

    ui_color = "#ff7900"  # Orange's brand colour in the Airflow graph view

    def __init__(self, *, orange_sms_conn_id: str = OrangeSMSHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.orange_sms_conn_id = orange_sms_conn_id

    @cached_property
    def hook(self) -> OrangeSMSHook:
        """The hook for ``orange_sms_conn_id``."""
        return OrangeSMSHook(orange_sms_conn_id=self.orange_sms_conn_id)

    def close_hook(self) -> None:
        """Close the hook's HTTP session and limiter state file, if the hook was used."""
        hook = self.__dict__.get("hook")
        if hook is not None:
            hook.close()
