"""One public import path per class: the public modules say what they offer (``__all__``), and no
class or function of the package is offered by two of them."""

from __future__ import annotations

import importlib
from collections import defaultdict

import pytest

#: Where users import from (README, example DAGs); every other module is an implementation detail.
PUBLIC_MODULES = [
    "airflow_provider_orange_sms.client",
    "airflow_provider_orange_sms.exceptions",
    "airflow_provider_orange_sms.get_provider_info",
    "airflow_provider_orange_sms.hooks.orange_sms",
    "airflow_provider_orange_sms.notifications.orange_sms",
    "airflow_provider_orange_sms.operators.orange_sms",
    "airflow_provider_orange_sms.receipts",
    "airflow_provider_orange_sms.sandbox",
    "airflow_provider_orange_sms.segments",
    "airflow_provider_orange_sms.sensors.orange_sms",
    "airflow_provider_orange_sms.triggers.orange_sms",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_each_public_module_says_what_it_offers(name):
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list), f"{name} has no __all__"
    for attribute in module.__all__:
        assert hasattr(module, attribute), f"{name}.__all__ names {attribute!r}, which it does not have"


def test_no_class_or_function_is_offered_by_two_public_modules():
    # An alias inside one module (send_orange_sms_notification = OrangeSMSNotifier, Airflow's
    # convention for notifiers) is one path.
    offered_by = defaultdict(set)
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if isinstance(value, type) or callable(value):
                offered_by[id(value)].add(name)
    twice = [paths for paths in offered_by.values() if len(paths) > 1]
    assert twice == []


@pytest.mark.parametrize(
    ("public", "cls"),
    [
        ("airflow_provider_orange_sms.operators.orange_sms", "SendSMSOperator"),
        ("airflow_provider_orange_sms.sensors.orange_sms", "DeliveryReceiptSensor"),
    ],
)
def test_operator_and_sensor_have_one_public_path_and_internal_homes(public, cls):
    # One rule for what is public: the modules above. The class lives in an internal module and only
    # its public module offers it.
    obj = getattr(importlib.import_module(public), cls)
    assert obj.__module__ not in PUBLIC_MODULES, f"{cls} is implemented in a public module {obj.__module__}"
    paths = [name for name in PUBLIC_MODULES if getattr(importlib.import_module(name), cls, None) is obj]
    assert paths == [public]
