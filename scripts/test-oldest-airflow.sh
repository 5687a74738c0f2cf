#!/usr/bin/env bash
# The test suite on the oldest Airflow the package supports (3.0.6), in its own virtualenv
# (.venv-airflow-3.0). CI runs it after ./scripts/test.sh; ruff and mypy need not run twice.
export AIRFLOW_VERSION=3.0.6
export ORANGE_SMS_VENV="$(cd "$(dirname "$0")/.." && pwd)/.venv-airflow-3.0"
export CONSTRAINTS="$(cd "$(dirname "$0")/.." && pwd)/constraints-airflow-3.0.txt"
source "$(dirname "$0")/_env.sh"
echo "==> pytest on apache-airflow==$AIRFLOW_VERSION"
pytest -q "$@"
