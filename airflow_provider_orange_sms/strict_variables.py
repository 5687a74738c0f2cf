"""Reading Airflow Variables so that "missing" and "unreadable" are told apart.

``Variable.get(key, default=None)`` returns the default when the Variable does not exist, but
also when the execution API or the metadata database fails: the Task SDK logs the error and falls
through to "not found". For the sent ledger that would turn "cannot read who was texted" into
"nobody was texted" and resend to everyone, so the ledger reads through the Task SDK's request
to the supervisor instead, and sees its answer as it is.

Fenced Airflow internal: this is the only module using the Task SDK's internal protocol
(``task_runner.SUPERVISOR_COMMS``, ``comms.GetVariable``/``VariableResult``/``ErrorResponse``,
``ErrorType.VARIABLE_NOT_FOUND``), the same on Airflow 3.0 to 3.3. Its guards,
``tests/unit/test_airflow_internals.py`` (those names) and ``tests/integration/db/test_airflow_internals.py``
(a present and a missing Variable read from a real task run), fail loudly if Airflow changes them.
"""

from __future__ import annotations

from typing import Any


class VariableReadError(RuntimeError):
    """A Variable could not be read (as opposed to: it does not exist)."""


def can_read_variables() -> bool:
    """Whether this process runs under Airflow's supervisor (a task, or a DAG processor callback)."""
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def read_variable(key: str) -> str | None:
    """
    Return the raw value of Variable ``key``, ``None`` only when the API server says it does not exist.

    :param key: Variable name.
    :raises VariableReadError: When the answer is anything else (API or database error, no running
        task to ask through).
    """
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import ErrorResponse, GetVariable, VariableResult

    comms: Any = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None:
        raise VariableReadError(f"cannot read Variable {key}: not inside a running Airflow task")
    try:
        answer = comms.send(GetVariable(key=key))
    except Exception as exc:
        raise VariableReadError(f"cannot read Variable {key}: {type(exc).__name__}: {exc}") from exc
    if isinstance(answer, VariableResult):
        return answer.value
    if isinstance(answer, ErrorResponse) and answer.error == ErrorType.VARIABLE_NOT_FOUND:
        return None
    raise VariableReadError(f"cannot read Variable {key}: the API server answered {answer!r}")


def variable_keys(prefix: str) -> list[str] | None:
    """
    Return the keys of the Variables whose name starts with ``prefix``.

    :param prefix: Key prefix.
    :return: The keys, or ``None`` when this Airflow cannot list Variables from a task
        (``Variable.keys`` appeared in Airflow 3.3).
    """
    from airflow.sdk import Variable

    keys = getattr(Variable, "keys", None)
    if keys is None:
        return None
    return list(keys(prefix=prefix))


def variables_listable() -> bool:
    """Whether this Airflow can list Variables from a task (``Variable.keys``, Airflow 3.3+)."""
    from airflow.sdk import Variable

    return hasattr(Variable, "keys")
