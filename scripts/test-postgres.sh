#!/usr/bin/env bash
# The tests of the receiver and the sent ledger that go through Airflow's metadata database, on
# PostgreSQL (a throwaway cluster, see _postgres.sh) instead of SQLite. Extra arguments go to pytest
# (default: the receipt store, the receiver over HTTP, the ledger's fault tests, the opt-out list
# under races and in sends). A few minutes.
source "$(dirname "$0")/_env.sh"
source "$(dirname "$0")/_postgres.sh"
if [ "$#" = 0 ]; then
    set -- tests/integration/db/test_receipts_store.py tests/integration/api_server/test_receipts_http.py tests/integration/db/test_reply_store.py tests/integration/api_server/test_reply_http.py tests/integration/dag_runs/test_ledger_faults.py \
        tests/integration/api_server/test_opt_out_races.py tests/integration/dag_runs/test_opt_out_send.py tests/integration/dag_runs/test_opt_out_list.py
fi
echo "==> pytest on PostgreSQL"
pytest -q "$@"
