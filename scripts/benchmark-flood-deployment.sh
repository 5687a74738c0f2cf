#!/usr/bin/env bash
# The receipt flood (benchmarks/flood.py) on the deployment topology: the deployment test's machines
# (scripts/_deployment.sh: PostgreSQL, Redis, `api-server --apps core` and `--apps execution` with two
# workers each, scheduler, dag-processor, two Celery workers, one clock 1.5 s ahead, the sandbox),
# then benchmarks/flood_deployment.py on the sandbox's machine (Orange's side, the one address the
# receiver accepts receipts from) prints a send task's pace and an alert's trigger-to-Orange time
# alone and beside the flood, receipts/s, 5xx and the API servers' CPU per receipt. Needs root on
# Debian; 5 to 11 minutes on the shared 2-core machine. Extra arguments go to flood_deployment.py
# (e.g. --flood-rounds 3, --json); `./scripts/benchmark.sh --only flood-deployment` runs this.
set -euo pipefail
SENDS=60
for ((i = 1; i <= $#; i++)); do
    case "${!i}" in
        --flood-sends) j=$((i + 1)) && SENDS="${!j}" ;;
        --flood-sends=*) SENDS="${!i#*=}" ;;
    esac
done
DEPLOYMENT_DAGS=("$(cd "$(dirname "$0")/.." && pwd)/benchmarks/dags/bench_flood.py")
DEPLOYMENT_ENV=(ORANGE_SMS_BENCH_FLOOD_SENDS="$SENDS")
SANDBOX_ARGS=(--balances '{"CIV": 1000000}')
source "$(dirname "$0")/_deployment.sh"

main() {
    deployment_up
    step "benchmarks/flood_deployment.py on the sandbox's machine"
    awaited on sandbox env ORANGE_SMS_FLOOD_API="$API" ORANGE_SMS_FLOOD_EXECUTION_API="$EXECUTION_API" \
        ORANGE_SMS_FLOOD_SANDBOX="$SANDBOX" ORANGE_SMS_FLOOD_SERVERS_NS="$PREFIX-control" \
        ORANGE_SMS_FLOOD_LOGS="$LOGS" python "$ROOT/benchmarks/flood_deployment.py" "$@"
}

# Called on the last line: bash has read the whole file before anything runs.
main "$@"
