#!/usr/bin/env bash
# Build the wheel, install it (and nothing from this checkout) into a fresh virtualenv next to
# apache-airflow, and check from outside the repository that Airflow registers the provider: the
# distribution in `airflow providers list`, the orange_sms connection type, every plugin the wheel
# declares, the sandbox and `airflow connections test` against it. Also checks that every file of the
# package in git is in the wheel. CI runs it after ./scripts/test.sh.
source "$(dirname "$0")/_env.sh"
WORK="$(mktemp -d)"
trap 'kill "${SANDBOX_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "==> uv build --wheel"
python -m uv build --quiet --wheel --out-dir "$WORK/dist" "$ROOT"
WHEEL="$(ls "$WORK"/dist/*.whl)"
echo "    $(basename "$WHEEL")"
python - "$WHEEL" <<'PY'
import subprocess, sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
tracked = subprocess.run(["git", "ls-files", "airflow_provider_orange_sms"], capture_output=True, text=True,
                         check=True).stdout.split()
missing = [path for path in tracked if path not in names]
if missing:
    sys.exit(f"files of the package missing from the wheel: {missing}")
print(f"    {len(tracked)} package files, all in the wheel")
PY

echo "==> fresh virtualenv with the wheel and apache-airflow==$AIRFLOW_VERSION"
"$PYTHON" -m venv "$WORK/venv"
python -m uv pip install --quiet --python "$WORK/venv/bin/python" -c "$CONSTRAINTS" \
    "$WHEEL" "apache-airflow==$AIRFLOW_VERSION"

cd "$WORK"  # nothing from the checkout on sys.path
export PATH="$WORK/venv/bin:$PATH"
export AIRFLOW_HOME="$WORK/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__TEST_CONNECTION=Enabled
export ORANGE_SMS_CACHE_DIR="$WORK/cache"
python -c 'import airflow_provider_orange_sms, sys; sys.exit("imported from the checkout" if "/site-packages/" not in airflow_provider_orange_sms.__file__ else 0)'
airflow db migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; exit 1; }

echo "==> airflow providers list / hooks / plugins"
airflow providers list -o json >"$WORK/providers.json"
airflow providers hooks -o json >"$WORK/hooks.json"
airflow plugins -o json >"$WORK/plugins.json"
python - "$WORK" <<'PY'
import json, sys
from importlib.metadata import distribution
work = sys.argv[1]
load = lambda name: json.load(open(f"{work}/{name}.json"))
providers = {p["package_name"]: p for p in load("providers")}
assert "airflow-provider-orange-sms" in providers, sorted(providers)
print(f"    provider airflow-provider-orange-sms {providers['airflow-provider-orange-sms']['version']}")
hooks = {h["connection_type"]: h for h in load("hooks")}
assert hooks["orange_sms"]["class"] == "airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook", hooks.get("orange_sms")
print("    connection type orange_sms -> OrangeSMSHook")
declared = {ep.name for ep in distribution("airflow-provider-orange-sms").entry_points if ep.group == "airflow.plugins"}
loaded = {p["name"] for p in load("plugins")}
assert declared <= loaded, f"plugins declared but not loaded: {declared - loaded}"
print(f"    plugins: {', '.join(sorted(declared))}")
PY

echo "==> the sandbox from the wheel, and airflow connections test against it"
PORT="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python -m airflow_provider_orange_sms.sandbox --host 127.0.0.1 --port "$PORT" >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
python - "$PORT" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_sandbox/state", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the sandbox did not start")
PY
export AIRFLOW_CONN_ORANGE_SMS_DEFAULT="{\"conn_type\": \"orange_sms\", \"host\": \"http://127.0.0.1:$PORT\",
  \"login\": \"sandbox-client-id\", \"password\": \"sandbox-client-secret\", \"extra\": {\"sender_address\": \"2250000\"}}"
airflow connections test orange_sms_default | tee "$WORK/test.log"
grep -q "Connection success" "$WORK/test.log"
echo "==> the wheel works on its own"
