"""
Example: a daily report on the Orange SMS account.

Three operators read the account in parallel, each pushing Orange's JSON to XCom:

* ``balance`` (:class:`GetSMSBalanceOperator`): SMS units left per country, with expiry dates;
* ``statistics`` (:class:`GetSMSStatisticsOperator`): SMS sent per country and application;
* ``purchase_orders`` (:class:`GetPurchaseOrdersOperator`): the bundles bought.

``report`` turns the three answers into one small summary (units left, SMS used and orders per
country) and returns it, ready to be mailed or stored. Nothing is sent: these calls only read.
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import (
    GetPurchaseOrdersOperator,
    GetSMSBalanceOperator,
    GetSMSStatisticsOperator,
)

# The task log, not print(): stdout reaches it on another channel and can land in "Post Execute".
log = logging.getLogger(__name__)

with DAG(
    dag_id="example_orange_sms_account_report",
    description="Balance, usage and purchase orders of the Orange SMS account, summarized daily.",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:
    balance = GetSMSBalanceOperator(task_id="balance")
    statistics = GetSMSStatisticsOperator(task_id="statistics")
    purchase_orders = GetPurchaseOrdersOperator(task_id="purchase_orders")

    @task
    def report(
        balance: dict[str, Any], statistics: dict[str, Any], purchase_orders: dict[str, Any]
    ) -> dict[str, dict[str, int]]:
        """Summarize per country: units left, SMS used, purchase orders."""
        summary: dict[str, dict[str, int]] = {}

        def row(country: str) -> dict[str, int]:
            return summary.setdefault(country, {"units_left": 0, "sms_used": 0, "orders": 0})

        for contract in balance.get("partnerContracts", {}).get("contracts", []):
            for service_contract in contract.get("serviceContracts", []):
                row(service_contract["country"])["units_left"] += int(service_contract["availableUnits"])
        for stats in statistics.get("partnerStatistics", {}).get("statistics", []):
            for service_stats in stats.get("serviceStatistics", []):
                used = sum(int(app["usage"]) for app in service_stats.get("countryStatistics", []))
                row(service_stats["country"])["sms_used"] += used
        for order in purchase_orders.get("purchaseOrders", []):
            row(order["orderExecutioninformation"]["country"])["orders"] += 1
        for country, values in sorted(summary.items()):
            log.info(f"{country}: {values}")
        return summary

    report(balance.output, statistics.output, purchase_orders.output)
