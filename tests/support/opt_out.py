"""The opt-out list in tests: records of the session's metadata DB cleared around a test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_orange_sms.opt_out import OptOutRecord


@contextlib.contextmanager
def opt_out_records_cleared(numbers: list[str]) -> Iterator[None]:
    """No opt-out record of ``numbers`` before or after the block (the metadata DB lives for the session)."""
    from airflow.models.variable import Variable

    from airflow_provider_orange_sms.opt_out import operator_variable_key, variable_key

    keys = [key(number) for number in numbers for key in (variable_key, operator_variable_key)]
    for key in keys:
        Variable.delete(key)
    yield
    for key in keys:
        Variable.delete(key)


def decision_in_force(number: str) -> OptOutRecord | None:
    """The decision that holds for ``number``: the later of its replies' and the operators' record."""
    from airflow.models.variable import Variable

    from airflow_provider_orange_sms.opt_out import (
        OptOutRecord,
        latest_decision,
        operator_variable_key,
        variable_key,
    )

    raws = [Variable.get(key(number), default_var=None) for key in (variable_key, operator_variable_key)]
    return latest_decision(*(None if raw is None else OptOutRecord.from_json(raw) for raw in raws))
