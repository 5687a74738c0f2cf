#!/usr/bin/env bash
# The delivery-receipt receiver at volume (benchmarks/receipts.py): one api-server, receipts/s,
# p50/p99 and 5xx with 0 and 200,000 stored receipts on SQLite, then 0, 100,000, 200,000 and
# 1,000,000 on a throwaway PostgreSQL (_postgres.sh); sequential and 1,000 concurrent, each next to a
# trivial endpoint on the same server (the machine-speed yardstick), with the load average and the
# CPU per request. About 25 minutes. Extra arguments go to both runs (e.g. --json, --workers 2).
source "$(dirname "$0")/_env.sh"
echo "==> SQLite"
( unset AIRFLOW__DATABASE__SQL_ALCHEMY_CONN; python benchmarks/receipts.py --sizes 0,200000 "$@" )
source "$(dirname "$0")/_postgres.sh"
echo "==> PostgreSQL"
python benchmarks/receipts.py --sizes 0,100000,200000,1000000 "$@"
