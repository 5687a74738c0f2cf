#!/usr/bin/env bash
# A flood of delivery receipts beside a send task and an alert (benchmarks/flood.py): a scheduler-run
# Airflow with one API server (as `airflow standalone`) and with the receiver on an API server of its
# own (`--apps core` + `--apps execution`, the recommended topology), on SQLite, then on a throwaway
# PostgreSQL (_postgres.sh) as deployed. benchmark.sh runs the SQLite half in its table. About 15
# minutes on a quiet 2-core machine. Extra arguments go to both runs (e.g. --flood-rounds 3, --json).
source "$(dirname "$0")/_env.sh"
echo "==> SQLite"
( unset AIRFLOW__DATABASE__SQL_ALCHEMY_CONN; python benchmarks/flood.py "$@" )
source "$(dirname "$0")/_postgres.sh"
echo "==> PostgreSQL"
python benchmarks/flood.py "$@"
