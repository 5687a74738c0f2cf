#!/usr/bin/env bash
# Build the docs site into docs/_build/html (open docs/_build/html/index.html), offline: Sphinx with
# Markdown pages (MyST-Parser) and the Python API reference generated from the docstrings. Warnings
# are errors and every cross-reference must resolve (nitpicky). Extra arguments go to sphinx-build.
source "$(dirname "$0")/_env.sh"
echo "==> installing the docs extra (Sphinx, MyST-Parser) into $VENV"
"$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" \
    -c "$CONSTRAINTS" -e "$ROOT[test,docs]" "apache-airflow==$AIRFLOW_VERSION"
echo "==> sphinx-build"
# autodoc imports Airflow, which writes a default airflow.cfg into its home: a throwaway one, so the
# build never touches yours.
AIRFLOW_HOME="$(mktemp -d)"
export AIRFLOW_HOME
trap 'rm -rf "$AIRFLOW_HOME"' EXIT
rm -rf docs/_build
sphinx-build -W --keep-going -n -q -b html docs docs/_build/html "$@"
echo "==> docs/_build/html/index.html"
