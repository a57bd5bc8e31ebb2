#!/usr/bin/env bash
# Start a throw-away PostgreSQL server from Debian's packages on a loopback
# port, for the store suite. Prints the connection URL on stdout.
# Usage: .ci/postgres.sh [PORT]
# SOCLE_PG_FSYNC=on keeps fsync (the tests turn it off; benchmarks keep it);
# SOCLE_PG_OPTS adds server options ("-c shared_buffers=1GB").
set -euo pipefail
port=${1:-55432}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
data=${SOCLE_PGDATA:-/tmp/socle-pg-$port}
run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
if [ -f "$data/postmaster.pid" ] && run "$pgbin/pg_ctl -D $data status" >/dev/null 2>&1; then
  echo "postgres://socle@127.0.0.1:$port/postgres?sslmode=disable"
  exit 0
fi
rm -rf "$data"
mkdir -p "$data"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
run "$pgbin/initdb -D $data -A trust -U socle --no-sync" >"$data.initdb.log" 2>&1 || { cat "$data.initdb.log" >&2; exit 1; }
run "$pgbin/pg_ctl -D $data -w -l $data/server.log -o \"-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=${SOCLE_PG_FSYNC:-off} -c max_connections=300 ${SOCLE_PG_OPTS:-}\" start" >/dev/null
echo "postgres://socle@127.0.0.1:$port/postgres?sslmode=disable"
