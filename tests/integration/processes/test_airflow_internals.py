"""
Guards on the Airflow internals the provider relies on that need another process: the masker's
warning about a short extra (docs/connection.md, Connection), read in a fresh interpreter. The
guards that need nothing else are in tests/unit/test_airflow_internals.py, which lists every fenced
module.
"""

from __future__ import annotations

import pytest

from tests.support.versions import skip_on_airflow_3_0

_READ_CONNECTION = """
from airflow.sdk import Connection
from airflow.sdk.log import _secrets_masker

conn = Connection.get("orange_sms_default")
print("redacted:", _secrets_masker().redact("country CIV"))
"""


@pytest.mark.processes
@skip_on_airflow_3_0("airflow.sdk.log has no _secrets_masker; the Connection page's note is about 3.1+")
def test_airflow_still_warns_about_a_short_extra_it_does_not_mask():
    """
    Why the Connection page says the warning is Airflow's: reading any connection whose extras hold a value
    under 5 characters (``country: "CIV"``) logs "Skipping masking for a secret as it's too short",
    because ``Connection.get`` builds the connection's URI through ``extra_dejson``, which hands
    every extra to the masker, and the masker checks the length before the key's name. The value
    is not masked. When this fails, Airflow changed: update the Connection page's note (docs/connection.md).
    """
    import json
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW_CONN_ORANGE_SMS_DEFAULT"] = json.dumps(
        {"conn_type": "orange_sms", "login": "id", "password": "a-long-secret", "extra": {"country": "CIV"}}
    )
    result = subprocess.run(
        [sys.executable, "-c", _READ_CONNECTION], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "redacted: country CIV" in result.stdout  # not treated as a secret
    assert "Skipping masking for a secret as it's too short" in output
