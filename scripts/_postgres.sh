# Sourced after _env.sh by the scripts that need PostgreSQL: installs the drivers (psycopg2 for
# Airflow's engine, asyncpg for its async one) and Debian's `postgresql` with apt-get when missing,
# starts a throwaway cluster in a temporary directory on a free loopback port (owned by the
# postgres user when run as root: initdb refuses root), exports AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
# pointing at its `airflow` database, and stops and deletes it on exit. PG_KEEP=1 leaves it running.
echo "==> installing the PostgreSQL drivers"
python -m uv pip install --quiet --python "$VENV/bin/python" -c "$CONSTRAINTS" psycopg2-binary asyncpg

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(pg_bin)" ]; then
    echo "==> apt-get install postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
PG_BIN="$(pg_bin)"
PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/orange-sms-postgres.XXXXXX")"
PG_PORT="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_DIR"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi
stop_postgres() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
echo "==> PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT ($PG_DIR)"
[ "${PG_KEEP:-0}" = 1 ] || trap stop_postgres EXIT
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >/dev/null
# A throwaway cluster: no fsync; connections for a few API server workers and the tests.
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w start -o \
    "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >/dev/null
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres airflow
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://postgres@127.0.0.1:$PG_PORT/airflow"
if [ "${PG_KEEP:-0}" = 1 ]; then
    echo "PostgreSQL left running: $AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (stop: $PG_BIN/pg_ctl -D $PG_DIR/data stop)"
fi
