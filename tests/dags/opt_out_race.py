"""The opt-out list operators and a campaign on numbers given by the test.

Run by tests/integration/api_server/test_opt_out_races.py: ``OPT_OUT_RACE_NUMBERS`` (comma-separated)
are the operators' numbers, ``OPT_OUT_RACE_CAMPAIGN`` the campaign's recipients.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import (
    ImportOptOutListOperator,
    RemoveFromOptOutListOperator,
    SendSMSOperator,
)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
NUMBERS = os.environ.get("OPT_OUT_RACE_NUMBERS", "+2250700009001")
CAMPAIGN = os.environ.get("OPT_OUT_RACE_CAMPAIGN", "+2250700009001")

with DAG("test_opt_out_race_remove", schedule=None, start_date=START):
    RemoveFromOptOutListOperator(task_id="remove", numbers=NUMBERS)

with DAG("test_opt_out_race_erase", schedule=None, start_date=START):
    RemoveFromOptOutListOperator(task_id="erase", numbers=NUMBERS, erase=True)

with DAG("test_opt_out_race_import", schedule=None, start_date=START):
    ImportOptOutListOperator(task_id="import", numbers=NUMBERS)

with DAG("test_opt_out_race_campaign", schedule=None, start_date=START):
    SendSMSOperator(task_id="send", recipients=CAMPAIGN, message="Promo: -20% this week")
