#!/usr/bin/env bash
# Set up the environment, then lint, type-check and run the test suite.
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k limiter
source "$(dirname "$0")/_env.sh"
echo "==> ruff"
ruff check .
ruff format --check .
echo "==> mypy"
mypy
echo "==> pytest"
pytest -q "$@"
