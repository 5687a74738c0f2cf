"""
The tests' own Airflow home and settings, set on import, before Airflow is first imported.

``tests/conftest.py`` imports this first. Child processes the tests spawn inherit the variables and
reuse the same temporary home and Fernet key, as the processes of one deployment do.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile

from tests.support.dags import EXAMPLE_DAGS, TEST_DAGS

# Keep Airflow away from the user's own AIRFLOW_HOME.
if "ORANGE_SMS_TESTS_AIRFLOW_HOME" not in os.environ:
    os.environ["ORANGE_SMS_TESTS_AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="orange-sms-tests-airflow-")
    atexit.register(shutil.rmtree, os.environ["ORANGE_SMS_TESTS_AIRFLOW_HOME"], ignore_errors=True)
os.environ["AIRFLOW_HOME"] = os.environ["ORANGE_SMS_TESTS_AIRFLOW_HOME"]
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# One Fernet key for this process and the Airflow processes it spawns, as in a real deployment
# (each would otherwise make up its own and not decrypt the others' Variables).
if "AIRFLOW__CORE__FERNET_KEY" not in os.environ:
    from cryptography.fernet import Fernet

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# dag.test() syncs the DAG bundle that holds the DAG file: declare the example and test DAG folders.
os.environ.setdefault(
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
    json.dumps(
        [
            {
                "name": name,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(path), "refresh_interval": 0},
            }
            for name, path in (("orange_sms_examples", EXAMPLE_DAGS), ("orange_sms_test_dags", TEST_DAGS))
        ]
    ),
)
