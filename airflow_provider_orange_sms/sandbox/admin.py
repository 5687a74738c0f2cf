"""The sandbox's admin endpoints: balance (contracts), statistics and purchase orders."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from airflow_provider_orange_sms.sandbox.answers import Answer

if TYPE_CHECKING:
    from airflow_provider_orange_sms.sandbox.state import SandboxState


def contracts(state: SandboxState, client_id: str, country: str | None) -> Answer:
    """``GET /sms/admin/v1/contracts``: the balance per country."""
    with state.lock:
        balances = dict(state.balances)
    service_contracts = [
        {
            "country": code,
            "service": "SMS_OCB",
            "contractId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{client_id}/{code}")),
            "availableUnits": max(units, 0),
            "expires": "2027-12-31T23:59:59",
            "scDescription": f"{code} - {max(units, 0)} SMS",
        }
        for code, units in sorted(balances.items())
        if country is None or code == country
    ]
    contracts = [
        {
            "service": "SMS_OCB",
            "contractDescription": "Your SMS balance (per country)",
            "serviceContracts": service_contracts,
        }
    ]
    return Answer(200, {"partnerContracts": {"partnerId": f"{client_id}@sandbox", "contracts": contracts}})


def statistics(state: SandboxState, client_id: str, country: str | None, app_id: str) -> Answer:
    """``GET /sms/admin/v1/statistics``: the SMS sent per country and application."""
    usage: dict[str, dict[str, int]] = {}
    with state.lock:
        for message in state.messages:
            if (country and message.country != country) or (app_id and message.client_id != app_id):
                continue
            per_app = usage.setdefault(message.country, {})
            per_app[message.client_id] = per_app.get(message.client_id, 0) + 1
    service_statistics = [
        {
            "country": code,
            "countryStatistics": [{"applicationId": a, "usage": n} for a, n in sorted(apps.items())],
        }
        for code, apps in sorted(usage.items())
    ]
    statistics = [{"service": "SMS_OCB", "serviceStatistics": service_statistics}]
    return Answer(200, {"partnerStatistics": {"partnerId": f"{client_id}@sandbox", "statistics": statistics}})


def purchase_orders(state: SandboxState, client_id: str, country: str | None) -> Answer:
    """``GET /sms/admin/v1/purchaseorders``: one order per configured balance."""
    orders = []
    for index, (code, units) in enumerate(sorted(state.config.balances.items())):
        if country and code != country:
            continue
        bundle = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bundle/{code}/{units}"))
        orders.append(
            {
                "purchaseOrderId": str(24031977 + index),
                "mode": "OCB",
                "bundleId": bundle,
                "bundleDescription": f"Bundle - {units} SMS",
                "partnerId": f"{client_id}@sandbox",
                "inputs": [{"type": "bundleId", "value": bundle}],
                "orderExecutioninformation": {
                    "date": "2026-01-01T12:00:00",
                    "amount": units * 30,
                    "currency": "XOF",
                    "service": "SMS_OCB",
                    "country": code,
                    "contractId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{client_id}/{code}")),
                },
            }
        )
    return Answer(200, {"purchaseOrders": orders})
