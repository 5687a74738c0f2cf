# Sourced by the other scripts: creates (or updates) the project's virtualenv with everything the
# tests, the demo and the benchmarks need. Needs only Python 3.10+ and access to PyPI.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ORANGE_SMS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
# The Airflow version the suite is run against; the package itself accepts any apache-airflow>=3.0.
AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
# Exact versions of everything else (regenerate with scripts/lock.sh).
CONSTRAINTS="${CONSTRAINTS:-$ROOT/constraints.txt}"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "Python 3.10+ is needed (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.x" >&2
    exit 1
}
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "==> installing airflow-provider-orange-sms and apache-airflow==$AIRFLOW_VERSION into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
"$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" \
    -c "$CONSTRAINTS" -e "$ROOT[test]" "apache-airflow==$AIRFLOW_VERSION"
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
