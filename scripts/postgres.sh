#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for tests and benchmarks (idempotent).
#   eval "$(scripts/postgres.sh start)"   start it (creating it on first use) and export STREETWATCH_TEST_PG_URL
#   scripts/postgres.sh stop              stop it (the data stays for the next start)
#   scripts/postgres.sh url               print the export line of a running cluster
# Only export lines go to stdout; progress goes to stderr. PostgreSQL refuses to run as root,
# so as root the cluster belongs to the 'postgres' OS user.
# Each checkout has its own cluster (STREETWATCH_PG_DIR overrides where), so two test runs of two
# clones on one machine never stop or share each other's database.
set -euo pipefail

CHECKOUT=$(cd "$(dirname "$0")/.." && pwd -P)
PGDATA_ROOT=${STREETWATCH_PG_DIR:-/tmp/streetwatch-pg-$(printf '%s' "$CHECKOUT" | sha256sum | cut -c1-12)}
PGDATA="$PGDATA_ROOT/data"
DB=streetwatch_test

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/$1" ]] && { echo "$dir/$1"; return; }
  done
  command -v "$1" || { echo "postgres.sh: $1 not found; install PostgreSQL 15 (scripts/install.sh --dev)" >&2; exit 1; }
}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() {
  [[ -f "$PGDATA/PG_VERSION" ]] && as_owner "$(pg_bin pg_ctl)" -D "$PGDATA" status >/dev/null 2>&1
}

print_url() {
  local port
  port=$(cat "$PGDATA_ROOT/port")
  echo "export STREETWATCH_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:${port}/${DB}"
}

start() {
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    mkdir -p "$PGDATA_ROOT"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$PGDATA_ROOT"
    echo "postgres.sh: creating a cluster in $PGDATA" >&2
    as_owner "$(pg_bin initdb)" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    # Many short test schemas and two ingest workers locking geohash cells: room for more locks.
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA_ROOT'
max_connections = 200
max_locks_per_transaction = 512
shared_buffers = 128MB
CONF
  fi
  if ! running; then
    local port
    port=$(free_port)
    echo "$port" >"$PGDATA_ROOT/port"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$PGDATA_ROOT/port"
    as_owner "$(pg_bin pg_ctl)" -D "$PGDATA" -l "$PGDATA_ROOT/server.log" -o "-p $port" -w start >/dev/null
    echo "postgres.sh: PostgreSQL listening on 127.0.0.1:$port" >&2
  fi
  local port
  port=$(cat "$PGDATA_ROOT/port")
  if ! as_owner "$(pg_bin psql)" -h 127.0.0.1 -p "$port" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$DB'" postgres | grep -q 1; then
    as_owner "$(pg_bin createdb)" -h 127.0.0.1 -p "$port" -U postgres "$DB"
  fi
  print_url
}

stop() {
  if running; then
    as_owner "$(pg_bin pg_ctl)" -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres.sh: stopped" >&2
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) running && print_url ;;
  *) echo "usage: scripts/postgres.sh start|stop|url" >&2; exit 2 ;;
esac
