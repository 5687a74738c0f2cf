#!/usr/bin/env bash
# Regenerate constraints.txt: the exact versions the test, demo and benchmark environments use
# (all Python versions from 3.10), so CI does not change under us when a dependency or a linter
# releases. Run after changing dependencies in pyproject.toml or AIRFLOW_VERSION in _env.sh.
source "$(dirname "$0")/_env.sh"
printf 'apache-airflow==%s\n' "$AIRFLOW_VERSION" | uv pip compile pyproject.toml - --extra test \
    --universal --python-version 3.10 --no-annotate --no-header -o constraints.txt
