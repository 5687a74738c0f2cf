"""What the read endpoints' answers must hold, checked before anything reads them.

Orange's balance, statistics, purchase orders and subscription reads answer one JSON object under
one key (``partnerContracts``, ``partnerStatistics``, ``purchaseOrders``,
``deliveryReceiptSubscription``). A 2xx with JSON of another shape (``{}``, a ``partnerContracts``
without ``contracts``, an ``availableUnits`` of ``"lots"``) would otherwise surface as a bare
``KeyError``/``TypeError``/``ValueError`` deep in a sensor or the account page, or as a wrong
balance. Each check here raises :class:`WrongShape` saying where the answer is wrong; the client
turns it into an :class:`~airflow_provider_orange_sms.exceptions.OrangeSMSError` naming the endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "WrongShape",
    "check_purchase_orders",
    "check_statistics",
    "check_subscription",
    "contract_units",
]

_MISSING = object()
_WHOLE_NUMBER = re.compile(r"\s*-?\d+\s*")


class WrongShape(Exception):
    """
    An answer that is not the endpoint's: :meth:`describe` says where and what (e.g.
    ``partnerContracts.contracts is missing``).

    :param where: The path of the wrong part (``partnerContracts.contracts[0].serviceContracts``).
    :param value: What is there.
    :param expected: What should be (``a list``).
    """

    def __init__(self, where: str, value: Any, expected: str) -> None:
        self.where, self.value, self.expected = where, value, expected
        super().__init__(where)

    def describe(self, secrets: Iterable[str] = ()) -> str:
        """
        Say where the answer is wrong and what is there (a string value blanked of ``secrets``,
        then cut short).

        :param secrets: Values never shown (the access token, should a proxy echo it).
        """
        if self.value is _MISSING:
            return f"{self.where} is missing"
        return f"{self.where} is {_what(self.value, secrets)}, not {self.expected}"

    def __str__(self) -> str:
        return self.describe()


def _what(value: Any, secrets: Iterable[str]) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "***")
        return f"the string {value[:40]!r}"
    return f"the {type(value).__name__} {str(value)[:40]}"


def _object_in(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key, _MISSING)
    if isinstance(value, Mapping):
        return value
    raise WrongShape(where, value, "an object")


def _objects_in(
    parent: Mapping[str, Any], key: str, where: str, *, required: bool = True
) -> list[Mapping[str, Any]]:
    value = parent.get(key, _MISSING)
    if (value is _MISSING or value is None) and not required:
        return []
    if not isinstance(value, list):
        raise WrongShape(where, value, "a list")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise WrongShape(f"{where}[{index}]", item, "an object")
    return value


def _whole_number_in(parent: Mapping[str, Any], key: str, where: str) -> int:
    value = parent.get(key, _MISSING)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    raise WrongShape(where, value, "a whole number")


def contract_units(body: Mapping[str, Any]) -> list[tuple[str, int]]:
    """
    ``(country, availableUnits)`` of every service contract of a contracts (balance) answer.

    A missing or null ``contracts`` or ``serviceContracts`` is no contract (an account without a
    bundle yet): 0 units. A missing ``availableUnits`` inside a service contract is wrong: read as 0
    it would hold back every send, and as anything else it would let them through.

    :param body: The answer's JSON object.
    :raises WrongShape: When the answer is not ``partnerContracts.contracts[].serviceContracts[]``
        (lists, when present) with a whole number of ``availableUnits`` each.
    """
    partner = _object_in(body, "partnerContracts", "partnerContracts")
    units = []
    contracts = _objects_in(partner, "contracts", "partnerContracts.contracts", required=False)
    for index, contract in enumerate(contracts):
        where = f"partnerContracts.contracts[{index}].serviceContracts"
        for position, service in enumerate(_objects_in(contract, "serviceContracts", where, required=False)):
            count = _whole_number_in(service, "availableUnits", f"{where}[{position}].availableUnits")
            units.append((str(service.get("country", "")).upper(), count))
    return units


def check_statistics(body: Mapping[str, Any]) -> None:
    """
    Check a statistics answer: ``partnerStatistics``, whose lists (when present) hold objects and
    whose ``usage`` counts are whole numbers. An absent list reads as no usage.

    :param body: The answer's JSON object.
    :raises WrongShape: When it is not so.
    """
    partner = _object_in(body, "partnerStatistics", "partnerStatistics")
    blocks = _objects_in(partner, "statistics", "partnerStatistics.statistics", required=False)
    for index, block in enumerate(blocks):
        where = f"partnerStatistics.statistics[{index}].serviceStatistics"
        for position, per_country in enumerate(
            _objects_in(block, "serviceStatistics", where, required=False)
        ):
            apps_where = f"{where}[{position}].countryStatistics"
            for number, app in enumerate(
                _objects_in(per_country, "countryStatistics", apps_where, required=False)
            ):
                if app.get("usage") is not None:  # absent or null: no usage counted yet
                    _whole_number_in(app, "usage", f"{apps_where}[{number}].usage")


def check_purchase_orders(body: Mapping[str, Any]) -> None:
    """
    Check a purchase orders answer: ``purchaseOrders``, a list of objects.

    :param body: The answer's JSON object.
    :raises WrongShape: When it is not so.
    """
    _objects_in(body, "purchaseOrders", "purchaseOrders")


def check_subscription(body: Mapping[str, Any]) -> None:
    """
    Check a delivery-receipt subscription answer: ``deliveryReceiptSubscription``, an object.

    :param body: The answer's JSON object.
    :raises WrongShape: When it is not so.
    """
    _object_in(body, "deliveryReceiptSubscription", "deliveryReceiptSubscription")
