#!/usr/bin/env bash
# Regenerate the constraints files: the exact versions the test, demo and benchmark environments
# use (all Python versions from 3.10), so CI does not change under us when a dependency or a linter
# releases. Run after changing dependencies in pyproject.toml or the Airflow versions below.
#   constraints.txt              Airflow 3.3.2, the version the README's and docs' commands use
#   constraints-airflow-3.0.txt  Airflow 3.0.6, the oldest the package supports (scripts/test-oldest-airflow.sh)
source "$(dirname "$0")/_env.sh"
lock() {
    local output=$1 extras=$2
    shift 2
    # shellcheck disable=SC2086
    printf '%s\n' "$@" | uv pip compile pyproject.toml - --extra test $extras \
        --universal --python-version 3.10 --no-annotate --no-header -o "$output"
}
# constraints.txt also pins the docs extra (scripts/docs.sh), the deployment test's extra (Celery, Redis, PostgreSQL providers) and the
# PostgreSQL drivers scripts/test-postgres.sh installs (psycopg2 for Airflow's engine, asyncpg for its
# async one).
lock constraints.txt "--extra deployment --extra docs" "apache-airflow==$AIRFLOW_VERSION" psycopg2-binary asyncpg
# Airflow 3.0.6 does not cap fastapi/cadwyn; their later releases break its in-process execution API
# (every `dags test` task gets a 422), so pin the last versions it works with.
lock constraints-airflow-3.0.txt "" "apache-airflow==3.0.6" "fastapi<0.116" "cadwyn<6"
