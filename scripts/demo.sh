#!/usr/bin/env bash
# Start the local Orange sandbox, point an Airflow connection at it and run the example campaign
# DAG end to end with `airflow dags test`, then show what the sandbox received.
# Everything lives in .demo/ (a fresh AIRFLOW_HOME each run). DAG id may be given as argument.
source "$(dirname "$0")/_env.sh"
DAG_ID="${1:-example_orange_sms_campaign}"
DEMO="$ROOT/.demo"
rm -rf "$DEMO"
mkdir -p "$DEMO"
export AIRFLOW_HOME="$DEMO/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/example_dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export ORANGE_SMS_CACHE_DIR="$DEMO/cache"
PORT="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SANDBOX="http://127.0.0.1:$PORT"

echo "==> starting the Orange SMS sandbox on $SANDBOX (log: .demo/sandbox.log)"
python -m airflow_provider_orange_sms.sandbox --port "$PORT" >"$DEMO/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill "$SANDBOX_PID" 2>/dev/null || true' EXIT
python - "$SANDBOX" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(sys.argv[1] + "/_sandbox/state", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the sandbox did not start: see .demo/sandbox.log")
PY

export AIRFLOW_CONN_ORANGE_SMS_DEFAULT="{\"conn_type\": \"orange_sms\", \"host\": \"$SANDBOX\",
  \"login\": \"sandbox-client-id\", \"password\": \"sandbox-client-secret\",
  \"extra\": {\"sender_address\": \"2250000\", \"country\": \"CIV\"}}"

echo "==> airflow db migrate (fresh AIRFLOW_HOME in .demo/airflow)"
airflow db migrate >"$DEMO/db-migrate.log" 2>&1 || { cat "$DEMO/db-migrate.log"; exit 1; }
echo "==> airflow dags test $DAG_ID"
airflow dags test "$DAG_ID"
echo
python -m airflow_provider_orange_sms.sandbox.report "$SANDBOX"
