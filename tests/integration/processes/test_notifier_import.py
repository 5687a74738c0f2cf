"""The triggerer imports a deadline callback's notifier on its event loop: the import must be cheap."""

from __future__ import annotations

import subprocess
import sys

_IMPORT = """
import sys
import airflow.sdk
import airflow_provider_orange_sms.notifications.orange_sms
heavy = [m for m in ("requests", "redis", "airflow_provider_orange_sms.hooks.orange_sms",
                     "airflow_provider_orange_sms.client", "airflow_provider_orange_sms.ledger.sent_ledger")
         if m in sys.modules]
print("HEAVY:", heavy)
"""


def test_importing_the_notifier_leaves_the_hook_and_requests_to_the_sending_thread():
    result = subprocess.run([sys.executable, "-c", _IMPORT], capture_output=True, text=True, timeout=600)

    assert "HEAVY: []" in result.stdout, result.stdout + result.stderr
