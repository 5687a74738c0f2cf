# Sourced by scripts/test-deployment.sh and scripts/benchmark-flood-deployment.sh: a small
# production-shaped Airflow on this one machine, each part on its own simulated machine (a network
# namespace with its own address, hostname, HOME and cache).
#
#   db       PostgreSQL (metadata) and Redis (Celery's broker, the provider's limiter and token)
#   control  airflow api-server --apps core --workers 2 (UI, REST API, the receipt receiver) and
#            airflow api-server --apps execution --workers 2 (the tasks' execution API), scheduler,
#            dag-processor: a flood of receipts cannot queue in front of the tasks' calls
#   worker1  airflow celery worker
#   worker2  airflow celery worker, its clock 1.5 s ahead (Debian's faketime)
#   sandbox  the Orange SMS sandbox at 5 SMS/s, posting delivery receipts to the API server
#
# The machines share a private /24 that exists only on the veth pairs created here, bridged inside a
# namespace of their own: nothing is added to the host's network and no traffic leaves it. Needs
# root on Debian (apt-get installs postgresql, redis-server, faketime, iproute2 when missing) and
# Python 3.10+; its own virtualenv, .venv-deployment. Logs and the machines' homes: .deployment/.
# deployment_up builds it all; everything started is stopped, and the namespaces deleted, when the
# sourcing script ends, also on failure. What the sourcing script may set first:
#   DEPLOYMENT_DAGS  the DAG files every Airflow machine gets (default: the deployment test's DAG)
#   DEPLOYMENT_ENV   extra NAME=value settings of every machine
#   SANDBOX_ARGS     extra arguments of the sandbox
#   ORANGE_SMS_DEPLOYMENT_BACKEND=file  the per-machine limiter and token file instead of Redis
#   ORANGE_SMS_DEPLOYMENT_RECIPIENTS=N  recipients per send task of the deployment test's DAG (100)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BACKEND="${ORANGE_SMS_DEPLOYMENT_BACKEND:-redis}"
RECIPIENTS="${ORANGE_SMS_DEPLOYMENT_RECIPIENTS:-100}"
RATE_WINDOW=1.0 # Orange's: at most 5 SMS in any 1.0 s
WORK="$ROOT/.deployment"
LOGS="$WORK/logs"
NET=10.213.7 # the machines' /24: it exists only on the veths below, inside the namespaces
PREFIX="osd$(printf '%04x' $(((RANDOM ^ $$) & 0xffff)))" # this run's namespaces and links (≤ 15 chars)
NODES=(db control worker1 worker2 sandbox)
declare -A ADDRESS=([db]=$NET.3 [control]=$NET.2 [worker1]=$NET.11 [worker2]=$NET.12 [sandbox]=$NET.20)
declare -A CLOCK=([worker2]=+1.5) # seconds ahead of the real clock (faketime)
DB=$NET.3
API="http://$NET.2:8080"           # UI, REST API and the receiver (what Orange posts receipts to)
EXECUTION_API="http://$NET.2:8081" # what the workers' tasks call
SANDBOX="http://$NET.20:8089"
PIDS=()
CREATED_NS=()
PG_TMP=""
PG_DATA=""
STARTED=$SECONDS
[ -v DEPLOYMENT_DAGS ] || DEPLOYMENT_DAGS=("$ROOT/tests/integration/dags/deployment_send.py")
[ -v DEPLOYMENT_ENV ] || DEPLOYMENT_ENV=()
[ -v SANDBOX_ARGS ] || SANDBOX_ARGS=()

# step MESSAGE: a progress line with the seconds since the start.
step() { printf '==> [%3d s] %s\n' $((SECONDS - STARTED)) "$1"; }

install_packages() {
    local missing=() policy_added=""
    command -v ip >/dev/null || missing+=(iproute2)
    command -v faketime >/dev/null || missing+=(faketime)
    command -v redis-server >/dev/null || missing+=(redis-server)
    compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
    if [ ${#missing[@]} -gt 0 ]; then
        step "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # Where an init system runs, the packages would start system services (PostgreSQL on 5432,
        # Redis on 6379): this script starts its own, so keep those from starting.
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            policy_added=1
        fi
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        [ -z "$policy_added" ] || rm -f /usr/sbin/policy-rc.d
    fi
    PG_BIN="$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" | sort -V | tail -1)")"
}

install_python() {
    export ORANGE_SMS_VENV="${ORANGE_SMS_VENV:-$ROOT/.venv-deployment}"
    source "$ROOT/scripts/_env.sh"
    step "installing the deployment extra (Celery, Redis, PostgreSQL providers) into $VENV"
    python -m uv pip install --quiet --python "$VENV/bin/python" -c "$CONSTRAINTS" -e "$ROOT[test,deployment]"
}

# stop_processes NAMESPACE...: TERM every process in them, KILL what is left after 10 s.
stop_processes() {
    local ns pids=()
    for ns in "$@"; do
        # shellcheck disable=SC2207
        [ -z "$ns" ] || pids+=($(ip netns pids "$ns" 2>/dev/null))
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null
    for _ in $(seq 40); do
        kill -0 "${pids[@]}" 2>/dev/null || return 0
        sleep 0.25
    done
    kill -KILL "${pids[@]}" 2>/dev/null
}

cleanup() {
    local rc=$? ns link
    set +e
    trap - EXIT INT TERM
    step "stopping the deployment (logs in .deployment/logs)"
    # Every process in one of this run's namespaces is one this script started (or its child):
    # Airflow first, then PostgreSQL and Redis.
    stop_processes "${CREATED_NS[@]/#"$PREFIX-db"/}"
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        ip netns exec "$PREFIX-db" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 20 \
            stop >/dev/null 2>&1
    fi
    stop_processes "${CREATED_NS[@]}"
    [ ${#PIDS[@]} -eq 0 ] || kill -KILL "${PIDS[@]}" 2>/dev/null
    for ns in "${CREATED_NS[@]}"; do
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    rmdir /etc/netns 2>/dev/null
    # A link created but not yet moved into its namespace (a failure mid-setup) is in the host's.
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$PREFIX"); do
        ip link del "$link" 2>/dev/null
    done
    if [ -n "$PG_TMP" ]; then
        cp "$PG_TMP/postgresql.log" "$LOGS/db-postgresql.log" 2>/dev/null
        rm -rf "$PG_TMP"
    fi
    step "$(basename "$0") $([ "$rc" = 0 ] && echo passed || echo "FAILED ($rc)")"
    exit "$rc"
}

# The machines: one namespace each, a veth pair from each to a bridge in the switch namespace.
create_network() {
    local node ns n=0 hosts="127.0.0.1 localhost"$'\n'
    step "network: namespaces $PREFIX-{switch,$(IFS=,; echo "${NODES[*]}")} on $NET.0/24"
    for node in "${NODES[@]}"; do hosts+="${ADDRESS[$node]} $node"$'\n'; done
    ip netns add "$PREFIX-switch"
    CREATED_NS+=("$PREFIX-switch")
    ip -n "$PREFIX-switch" link add br0 type bridge
    ip -n "$PREFIX-switch" link set br0 up
    for node in "${NODES[@]}"; do
        ns="$PREFIX-$node"
        ip netns add "$ns"
        CREATED_NS+=("$ns")
        # `ip netns exec` bind-mounts these over /etc: the machines know each other's names, no DNS.
        mkdir -p "/etc/netns/$ns"
        printf '%s' "$hosts" >"/etc/netns/$ns/hosts"
        printf '# no DNS inside the deployment test\n' >"/etc/netns/$ns/resolv.conf"
        ip link add "${PREFIX}n$n" type veth peer name "${PREFIX}s$n"
        ip link set "${PREFIX}n$n" netns "$ns"
        ip link set "${PREFIX}s$n" netns "$PREFIX-switch"
        ip -n "$PREFIX-switch" link set "${PREFIX}s$n" master br0 up
        ip -n "$ns" link set "${PREFIX}n$n" name eth0
        ip -n "$ns" addr add "${ADDRESS[$node]}/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        mkdir -p "$WORK/$node/home"
        n=$((n + 1))
    done
}

random_secret() { python -c 'import secrets; print(secrets.token_urlsafe(48))'; }

# What every Airflow machine shares (their airflow.cfg in real life); each has its own HOME.
configure() {
    local limiter
    PG_PASSWORD="$(random_secret)"
    REDIS_PASSWORD="$(random_secret)"
    if [ "$BACKEND" = redis ]; then
        limiter='"rate_limit_backend": "redis", "auth_cache": "redis", "redis_conn_id": "redis_default"'
    else
        limiter='"rate_limit_backend": "file", "auth_cache": "file"'
    fi
    COMMON=(
        PATH="$VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        LANG=C.UTF-8
        PYTHONUNBUFFERED=1
        AIRFLOW__CORE__EXECUTOR=CeleryExecutor
        AIRFLOW__CORE__LOAD_EXAMPLES=False
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
        AIRFLOW__CORE__FERNET_KEY="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$EXECUTION_API/execution/"
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
        AIRFLOW__API__SECRET_KEY="$(random_secret)"
        AIRFLOW__API_AUTH__JWT_SECRET="$(random_secret)"
        # A loaded machine answers slowly: let workers wait for the execution API rather than fail.
        AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT=60
        AIRFLOW__WORKERS__EXECUTION_API_RETRIES=10
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://airflow:$PG_PASSWORD@$DB:5432/airflow"
        AIRFLOW__CELERY__BROKER_URL="redis://:$REDIS_PASSWORD@$DB:6379/0"
        AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql://airflow:$PG_PASSWORD@$DB:5432/airflow"
        AIRFLOW__CELERY__WORKER_CONCURRENCY=2
        AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET="$(random_secret)"
        AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS="${ADDRESS[sandbox]}"
        AIRFLOW_VAR_ORANGE_SMS_RECEIPTS_PUBLIC_URL="$API"
        AIRFLOW_CONN_ORANGE_SMS_DEFAULT="{\"conn_type\": \"orange_sms\", \"host\": \"$SANDBOX\",
            \"login\": \"sandbox-client-id\", \"password\": \"sandbox-client-secret\",
            \"extra\": {\"sender_address\": \"2250000\", \"country\": \"CIV\", $limiter}}"
        AIRFLOW_CONN_REDIS_DEFAULT="{\"conn_type\": \"redis\", \"host\": \"$DB\", \"port\": 6379,
            \"password\": \"$REDIS_PASSWORD\", \"extra\": {\"db\": 1}}"
        ORANGE_SMS_DEPLOYMENT_RECIPIENTS="$RECIPIENTS"
        ORANGE_SMS_DEPLOYMENT_RATE_WINDOW="$RATE_WINDOW"
        "${DEPLOYMENT_ENV[@]}"
    )
    local node
    for node in control worker1 worker2; do
        mkdir -p "$WORK/$node/home/dags"
        cp "${DEPLOYMENT_DAGS[@]}" "$WORK/$node/home/dags/"
    done
}

# on NODE COMMAND...: run COMMAND on that machine: its network, hostname, HOME (its own Airflow
# home, DAGs folder and ~/.cache) and clock.
on() {
    local node=$1 home="$WORK/$1/home" clock=()
    shift
    if [ -n "${CLOCK[$node]:-}" ]; then
        clock=(faketime -f "${CLOCK[$node]}")
    fi
    ip netns exec "$PREFIX-$node" unshare --uts /bin/sh -c 'hostname "$0" && exec "$@"' "$node" \
        env -i "${COMMON[@]}" HOME="$home" AIRFLOW_HOME="$home/airflow" \
        AIRFLOW__CORE__DAGS_FOLDER="$home/dags" "${clock[@]}" "$@"
}

# awaited COMMAND...: run COMMAND and wait for it in a way a TERM signal interrupts (bash runs a trap
# only once a foreground command has ended); cleanup then stops it with its machine.
awaited() {
    "$@" <&0 & # stdin stays (a background command's would be /dev/null)
    wait $!
}

# start NODE NAME COMMAND...: run COMMAND on NODE in the background, its output in logs/NODE-NAME.log.
start() {
    local node=$1 name=$2
    shift 2
    on "$node" "$@" >"$LOGS/$node-$name.log" 2>&1 &
    PIDS+=($!)
}

# wait_for NODE URL|HOST:PORT SECONDS LOG: from NODE, until the URL answers or the port accepts.
wait_for() {
    awaited on "$1" python - "$2" "$3" "$4" <<'PY'
import socket, sys, time, urllib.request
target, seconds, log = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + seconds
while True:
    try:
        if target.startswith("http"):
            urllib.request.urlopen(target, timeout=5).close()
        else:
            host, port = target.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=5).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"{target} did not answer within {seconds:.0f} s: see .deployment/logs/{log}")
        time.sleep(1)
PY
}

# wait_for_log FILE TEXT SECONDS: until the log holds TEXT.
wait_for_log() {
    local deadline=$((SECONDS + $3))
    until grep -q -- "$2" "$1"; do
        if [ $SECONDS -gt $deadline ]; then
            echo "no '$2' in $1 within $3 s; its end:" >&2
            tail -n 30 "$1" >&2
            exit 1
        fi
        sleep 1
    done
}

show_clocks() {
    # A new file's modification time is the kernel's real clock, which faketime does not change.
    local skew='import os, tempfile, time
with tempfile.TemporaryFile() as f:
    print(f"{time.time() - os.fstat(f.fileno()).st_mtime:+.2f}")'
    step "clocks: worker1 $(on worker1 python -c "$skew") s, worker2 $(on worker2 python -c "$skew") s from the real time"
}

start_db() {
    step "db: PostgreSQL ($PG_BIN) and Redis on $DB"
    # PostgreSQL's files: a directory its user can reach wherever the clone lives.
    PG_TMP="$(mktemp -d /tmp/orange-sms-deployment-pg.XXXXXX)"
    chmod 755 "$PG_TMP"
    chown postgres "$PG_TMP"
    PG_DATA="$PG_TMP/data"
    install -d -o postgres -g postgres -m 700 "$PG_DATA" "$PG_TMP/run"
    on db runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust \
        --auth-host=reject >"$LOGS/db-initdb.log" 2>&1
    echo "host airflow airflow $NET.0/24 scram-sha-256" >>"$PG_DATA/pg_hba.conf"
    on db runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_TMP/postgresql.log" -w -t 60 \
        -o "-c listen_addresses=$DB -c unix_socket_directories=$PG_TMP/run -c max_connections=200" \
        start >/dev/null
    on db runuser -u postgres -- psql -q -h "$PG_TMP/run" -U postgres -v ON_ERROR_STOP=1 \
        -v password="$PG_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'password';
CREATE DATABASE airflow OWNER airflow;
SQL
    mkdir -p "$WORK/db/redis"
    start db redis redis-server --bind "$DB" --port 6379 --requirepass "$REDIS_PASSWORD" \
        --save "" --appendonly no --dir "$WORK/db/redis"
    wait_for control "$DB:6379" 60 db-redis.log
}

start_airflow() {
    step "control: airflow db migrate (PostgreSQL)"
    awaited on control airflow db migrate >"$LOGS/control-db-migrate.log" 2>&1 || {
        tail -n 30 "$LOGS/control-db-migrate.log"
        exit 1
    }
    step "sandbox: Orange SMS sandbox at 5 SMS/s on $SANDBOX"
    # It stands for Orange's own servers: a higher priority keeps this machine's load from delaying
    # the moment it sees a send (its rate window), and a receipt the busy API server did not
    # answer within 10 s is posted again (Orange's receipts "may be repeated"; stored once).
    # Its window is Orange's, 1.0 s: a send that reaches it late (a loaded machine delays requests
    # after the limiter let them go) is the limiter's to absorb, and the test prints 429s per 1,000
    # SMS with the load.
    start sandbox sandbox nice -n -10 python -m airflow_provider_orange_sms.sandbox \
        --host "${ADDRESS[sandbox]}" --port 8089 --rate-limit 5 --rate-window "$RATE_WINDOW" --dr-retries 3 \
        "${SANDBOX_ARGS[@]}"
    step "control: api-server --apps core and --apps execution, scheduler, dag-processor; worker1, worker2: airflow celery worker"
    start control api-server airflow api-server --host "${ADDRESS[control]}" --port 8080 --workers 2 --apps core
    start control api-server-execution airflow api-server --host "${ADDRESS[control]}" --port 8081 --workers 2 \
        --apps execution
    start control scheduler airflow scheduler
    start control dag-processor airflow dag-processor
    start worker1 celery airflow celery worker
    start worker2 celery airflow celery worker
    # Generous: on a loaded machine each API server worker takes minutes to import Airflow.
    wait_for control "$SANDBOX/_sandbox/state" 60 sandbox-sandbox.log
    wait_for control "$API/api/v2/version" 480 control-api-server.log
    wait_for control "$EXECUTION_API/execution/health" 480 control-api-server-execution.log
    wait_for_log "$LOGS/worker1-celery.log" "celery@worker1 ready" 480
    wait_for_log "$LOGS/worker2-celery.log" "celery@worker2 ready" 480
    step "deployment up"
}

# deployment_up: check, install, then build the network, PostgreSQL, Redis and Airflow; cleanup (on
# exit) takes it all down again.
deployment_up() {
    if [ "$(id -u)" != 0 ]; then
        echo "$(basename "$0") needs root (network namespaces, apt-get, PostgreSQL's user)" >&2
        exit 1
    fi
    case "$BACKEND" in redis | file) ;; *)
        echo "ORANGE_SMS_DEPLOYMENT_BACKEND=$BACKEND: expected redis or file" >&2
        exit 1
        ;;
    esac
    install_packages
    install_python
    rm -rf "$WORK"
    mkdir -p "$LOGS"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    create_network
    configure
    show_clocks
    start_db
    start_airflow
}
