#!/usr/bin/env bash
# Set up the environment, then print the benchmark table (throughput at the limit, hook overhead,
# token requests from parallel processes, memory, 10,000-SMS batches (one text, a text each) through
# `airflow dags test`, import time against the official HTTP provider), then the several-machine rows
# (benchmarks/machines.py: machines sharing one account through files or Redis, a real
# task at 5/s, an alert beside a 1,000-SMS batch; they need Debian's redis-server and faketime), then
# the Deadline Alert rows (benchmarks/deadline.py: missed deadline to Orange through a real scheduler
# and triggerer, the triggerer loop's longest block while the notifier sends), then a send task and
# an alert beside a flood of delivery receipts (benchmarks/flood.py, on SQLite; with PostgreSQL too:
# scripts/benchmark-flood.sh), and, run as root, the same flood on the deployment topology
# (scripts/benchmark-flood-deployment.sh: the deployment test's machines, 4 to 11 minutes more).
# Takes about 35 minutes. `--json` for JSON; `--only machine`, `--only machines`, `--only deadline`,
# `--only flood` or `--only flood-deployment` for one part.
# Its own virtualenv (.venv-benchmark): the HTTP provider, installed only for the import-time
# comparison, stays out of the test environment and out of the package's dependencies.
if [ "${1:-} ${2:-}" = "--only flood-deployment" ]; then
    shift 2
    exec "$(dirname "$0")/benchmark-flood-deployment.sh" "$@"
fi
export ORANGE_SMS_VENV="${ORANGE_SMS_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv-benchmark}"
source "$(dirname "$0")/_env.sh"
python -m uv pip install --quiet --python "$VENV/bin/python" -c "$CONSTRAINTS" "apache-airflow-providers-http==6.3.0"
python benchmarks/run.py "$@"
case " $* " in
*" --only "*) ;;
*)
    if [ "$(id -u)" = 0 ]; then
        json=()
        case " $* " in *" --json "*) json=(--json) ;; esac
        "$(dirname "$0")/benchmark-flood-deployment.sh" "${json[@]}"
    else
        echo "(the flood on the deployment topology needs root: sudo ./scripts/benchmark.sh --only flood-deployment)"
    fi
    ;;
esac
