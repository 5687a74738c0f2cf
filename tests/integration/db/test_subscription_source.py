"""Which subscription the "Orange SMS" page shows for a connection, read from the metadata DB's
Variables when the connection has no record of its own: the Variable of earlier releases, then
nothing once any connection keeps records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_orange_sms.receipts.subscription_record import (
    LEGACY_VARIABLE,
    VARIABLE_PREFIX,
    SubscriptionRecord,
    variable_key,
)
from airflow_provider_orange_sms.ui import account
from airflow_provider_orange_sms.ui import airflow_data as data


@pytest.fixture
def variables(airflow_db: str) -> Iterator[Any]:
    """``Variable``, with no subscription record nor legacy Variable before or after the test."""
    from airflow.models import Variable
    from airflow.utils.session import create_session

    def clear() -> None:
        with create_session() as session:
            for row in session.query(Variable).filter(Variable.key.startswith(VARIABLE_PREFIX)).all():
                session.delete(row)
        Variable.delete(LEGACY_VARIABLE)

    clear()
    yield Variable
    clear()


def test_the_legacy_variable_still_names_the_subscription(variables):
    variables.set(LEGACY_VARIABLE, " legacy-id\n")
    found = data.connection_subscription("orange_sms_default")
    assert (found.subscription_id, found.source, found.record) == (
        "legacy-id",
        f"Variable {LEGACY_VARIABLE}, not tied to a connection",
        None,
    )
    assert account.record_view(found.record) == {}


def test_a_connection_without_a_record_shows_none_once_another_has_one(variables):
    other = SubscriptionRecord(conn_id="orange_sms_other", subscription_id="other-id")
    variables.set(variable_key("orange_sms_other"), other.to_json(), serialize_json=True)
    found = data.connection_subscription("orange_sms_default")
    assert (found.subscription_id, found.source) == (
        None,
        f"none recorded for this connection (Variable {variable_key('orange_sms_default')})",
    )
    assert data.connection_subscription("orange_sms_other").subscription_id == "other-id"


NOT_RECORDS = ["not json", json.dumps(["a", "list"]), json.dumps({"subscription_id": "x"})]


@pytest.mark.parametrize("value", NOT_RECORDS)
def test_a_variable_that_is_not_a_record_says_so(variables, value):
    key = variable_key("orange_sms_default")
    variables.set(key, value)
    found = data.connection_subscription("orange_sms_default")
    assert found.subscription_id is None
    assert found.source == f"Variable {key} does not hold a subscription record"
