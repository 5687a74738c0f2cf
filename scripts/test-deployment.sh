#!/usr/bin/env bash
# The deployment test: a small production-shaped Airflow on this one machine, each part on its own
# simulated machine (scripts/_deployment.sh builds it: PostgreSQL and Redis, an API server for the UI,
# the REST API and the receiver, another for the execution API, scheduler and dag-processor, two
# Celery workers, one clock 1.5 s ahead, and the sandbox, each in a network namespace), then
# tests/integration/test_deployment.py runs a DAG on it and checks what the sandbox received.
# Needs root on Debian and Python 3.10+; its own virtualenv, .venv-deployment. Logs and the
# machines' homes: .deployment/. Everything it starts is stopped, and the namespaces deleted, when it
# ends, also on failure.
#   ORANGE_SMS_DEPLOYMENT_BACKEND=file  the per-machine limiter and token file instead of Redis
#   ORANGE_SMS_DEPLOYMENT_RECIPIENTS=N  recipients per send task (100)
set -euo pipefail
source "$(dirname "$0")/_deployment.sh"

main() {
    deployment_up
    step "tests/integration/test_deployment.py (limiter and token cache: $BACKEND)"
    awaited on control env ORANGE_SMS_DEPLOYMENT_API="$API" ORANGE_SMS_DEPLOYMENT_SANDBOX="$SANDBOX" \
        ORANGE_SMS_DEPLOYMENT_WORKERS=worker1,worker2 ORANGE_SMS_DEPLOYMENT_LOGS="$LOGS" \
        python -m pytest -p no:cacheprovider -q -s --tb=short "$ROOT/tests/integration/test_deployment.py"
}

# Called on the last line: bash has read the whole file before anything runs.
main "$@"
