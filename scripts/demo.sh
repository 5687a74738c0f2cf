#!/usr/bin/env bash
# Start the local Orange sandbox, point an Airflow connection at it and show the delivery-receipt
# loop: an API server with the receiver, the subscription registered, a bulk send, receipts arriving
# as asset events, the sensor completing and the delivered/impossible report.
# `./scripts/demo.sh <dag_id>` instead runs one example DAG (e.g. example_orange_sms_campaign) with
# `airflow dags test` and shows what the sandbox received.
# Everything lives in .demo/ (a fresh AIRFLOW_HOME each run).
source "$(dirname "$0")/_env.sh"
DAG_ID="${1:-receipts}"
DEMO="$ROOT/.demo"
rm -rf "$DEMO"
mkdir -p "$DEMO"
export AIRFLOW_HOME="$DEMO/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/example_dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export ORANGE_SMS_CACHE_DIR="$DEMO/cache"

free_port() {
    python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for URL SECONDS WHAT: poll URL every 0.5 s until it answers, or give up naming WHAT's log.
wait_for() {
    python - "$1" "$2" "$3" <<'PY'
import sys, time, urllib.request
url, seconds, what = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + seconds
while True:
    try:
        urllib.request.urlopen(url, timeout=1)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"the {what} did not start: see .demo/{what}.log")
        time.sleep(0.5)
PY
}

PORT="$(free_port)"
SANDBOX="http://127.0.0.1:$PORT"

echo "==> starting the Orange SMS sandbox on $SANDBOX (log: .demo/sandbox.log)"
# Receipts: MessageWaiting then DeliveredToTerminal for each SMS, DeliveryImpossible for every 4th.
python -m airflow_provider_orange_sms.sandbox --host 127.0.0.1 --port "$PORT" --dr-delay 0.3 \
    --dr-statuses MessageWaiting,DeliveredToTerminal --dr-impossible-every 4 >"$DEMO/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill "$SANDBOX_PID" 2>/dev/null || true' EXIT
wait_for "$SANDBOX/_sandbox/state" 10 sandbox

export AIRFLOW_CONN_ORANGE_SMS_DEFAULT="{\"conn_type\": \"orange_sms\", \"host\": \"$SANDBOX\",
  \"login\": \"sandbox-client-id\", \"password\": \"sandbox-client-secret\",
  \"extra\": {\"sender_address\": \"2250000\", \"country\": \"CIV\"}}"

echo "==> airflow db migrate (fresh AIRFLOW_HOME in .demo/airflow)"
airflow db migrate >"$DEMO/db-migrate.log" 2>&1 || { cat "$DEMO/db-migrate.log"; exit 1; }
if [ "$DAG_ID" != "receipts" ]; then
    echo "==> airflow dags test $DAG_ID"
    airflow dags test "$DAG_ID"
    echo
    python -m airflow_provider_orange_sms.sandbox.report "$SANDBOX"
    exit 0
fi

# -- the delivery-receipt loop ----------------------------------------------------------------------
API_PORT="$(free_port)"
API="http://127.0.0.1:$API_PORT"
export AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET="$(python -c 'import secrets; print(secrets.token_urlsafe(24))')"
export AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS="127.0.0.1"
# Every caller an admin: tolerable only because both servers listen on 127.0.0.1 alone.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
# The receiver's public base URL (https://airflow.example.com behind a proxy in real life).
export AIRFLOW_VAR_ORANGE_SMS_RECEIPTS_PUBLIC_URL="$API"
echo "==> starting airflow api-server with the receipt receiver on $API (log: .demo/api-server.log)"
airflow api-server --host 127.0.0.1 --port "$API_PORT" --workers 1 >"$DEMO/api-server.log" 2>&1 &
API_PID=$!
trap 'kill "$SANDBOX_PID" "$API_PID" 2>/dev/null || true' EXIT
echo "==> registering $API/orange-sms/delivery-receipts/*** with the sandbox (while the API server starts)"
airflow dags test example_orange_sms_receipts_subscription >"$DEMO/subscription.log" 2>&1 \
    || { cat "$DEMO/subscription.log"; exit 1; }
grep -o "Orange posts delivery receipts to .*(subscription [^)]*)" "$DEMO/subscription.log" | head -1
wait_for "$API/api/v2/version" 120 api-server
echo "==> airflow dags test example_orange_sms_delivery_receipts (send 8 SMS, wait for receipts, report)"
airflow dags test example_orange_sms_delivery_receipts >"$DEMO/receipts-dag.log" 2>&1 \
    || { tail -50 "$DEMO/receipts-dag.log"; exit 1; }
grep -E "Delivery receipts: |Delivery report: " "$DEMO/receipts-dag.log" | sed -E 's/.*(Delivery (receipts|report): )/  \1/; s/ \[[^] ]*\]( loc=.*)?$//' | tail -4
echo "==> receipts stored as events of the asset orange_sms_delivery_receipts (GET /api/v2/assets/events)"
python - "$API" <<'PY'
import collections, json, sys, urllib.request
api = sys.argv[1]
token = json.load(urllib.request.urlopen(api + "/auth/token", timeout=10))["access_token"]
request = urllib.request.Request(
    api + "/api/v2/assets/events?name_pattern=orange_sms_delivery_receipts&limit=100",
    headers={"Authorization": "Bearer " + token},
)
events = json.load(urllib.request.urlopen(request, timeout=10))["asset_events"]
print(f"  {len(events)} events: " + ", ".join(f"{n} {s}" for s, n in collections.Counter(e["extra"]["status"] for e in events).items()))
print("  e.g. " + json.dumps(events[-1]["extra"]))
PY
if grep -q -- "$AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET" "$DEMO/api-server.log"; then
    echo "!! the receiver's secret appears in .demo/api-server.log"; exit 1
fi
echo "  (the API server's log shows the receipt path as /orange-sms/delivery-receipts/***)"

# -- two-way: a subscriber replies STOP, and the next campaign skips them ------------------------------
echo "==> a subscriber replies STOP: the sandbox posts it to $API/orange-sms/inbound-messages/***"
python - "$SANDBOX" "$API/orange-sms/inbound-messages/$AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET" <<'PY'
import json, sys, urllib.request
sandbox, url = sys.argv[1], sys.argv[2]
def call(method, path, body):
    request = urllib.request.Request(sandbox + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    body = urllib.request.urlopen(request, timeout=60).read()
    return json.loads(body) if body else None
call("PUT", "/_sandbox/inbound-url", {"url": url})
answer = call("POST", "/_sandbox/inbound", {"sender": "+2250700000002", "message": "Stop"})
print(f"  +2250700000002 replied 'Stop'; the receiver answered {answer['status']} {json.dumps(answer['response'])}")
PY
echo "==> airflow dags test example_orange_sms_opt_out_campaign (imports +2250700000003 as opted out)"
airflow dags test example_orange_sms_opt_out_campaign >"$DEMO/opt-out-dag.log" 2>&1 \
    || { tail -50 "$DEMO/opt-out-dag.log"; exit 1; }
grep -E "Not sending to|Opt-out list: " "$DEMO/opt-out-dag.log" | sed -E 's/^.*(Not sending to|Opt-out list: )/  \1/; s/ \[[^] ]*\]( loc=.*)?$//'
echo
python -m airflow_provider_orange_sms.sandbox.report "$SANDBOX"
