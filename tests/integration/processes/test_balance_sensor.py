"""
The balance sensor in a fresh Python process: Airflow's ``[operators] default_deferrable`` setting,
read when Airflow starts, decides whether it defers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.processes
@pytest.mark.parametrize("setting", ["True", "False"])
def test_deferrable_defaults_to_airflows_default_deferrable(setting):
    """Like official sensors, ``[operators] default_deferrable`` decides when the DAG does not."""
    code = (
        "from airflow_provider_orange_sms.sensors.orange_sms import BalanceSensor;"
        "print(BalanceSensor(task_id='wait', minimum_units=1).deferrable)"
    )
    env = dict(os.environ, AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=setting)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == setting
