#!/usr/bin/env bash
# The shared-store suite: the Redis and PostgreSQL backends against real servers. Installs the Debian
# packages (scripts/setup.sh stores), starts a private redis-server and a private PostgreSQL cluster
# on free loopback ports in a temporary directory, and stops both on exit, failure included.
#
# Usage: scripts/test-stores.sh             store conformance, multi-instance and fault tests
#        scripts/test-stores.sh CMD ARG...  CMD with the servers up and REAUTH_TEST_REDIS_URL /
#                                           REAUTH_TEST_POSTGRES_URL set (the benchmark, a shell)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

log() { printf '[stores] %s\n' "$*" >&2; }

if ! bash scripts/setup.sh stores; then
  printf '\n%s\n%s\n\n' \
    "!!! SKIPPED: redis-server/postgresql could not be installed: the Redis and PostgreSQL store" \
    "!!! conformance, multi-instance and fault tests did NOT run on this machine." >&2
  exit 0
fi

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
REDIS_SERVER=$(command -v redis-server)

# Outside the checkout: PostgreSQL runs as the `postgres` user, who may not be allowed into it
# (a clone under /root). The trap below removes it.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/reauth-stores.XXXXXX")
chmod 755 "$WORK"
REDIS_PID=""
PG_DATA="$WORK/pg/data"

# PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

cleanup() {
  local status=$?
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  if [ -f "$PG_DATA/postmaster.pid" ]; then as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT INT TERM

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  log "no free port found"; return 1
}

wait_until() {
  local what=$1; shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$what did not start"; return 1
}

REDIS_PORT=$(free_port)
mkdir -p "$WORK/redis"
"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
  --logfile "$WORK/redis/redis.log" --daemonize no &
REDIS_PID=$!
wait_until "redis-server on port $REDIS_PORT" redis-cli -p "$REDIS_PORT" ping

PG_PORT=$(free_port)
mkdir -p "$WORK/pg"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$WORK/pg"; fi
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log" >&2; exit 1; }
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/postgres.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $WORK/pg -c max_connections=300" >/dev/null

export REAUTH_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
export REAUTH_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
# The fault tests start and stop servers of their own with these, so that stopping one never
# disturbs the tests sharing the servers above.
export REAUTH_TEST_REDIS_SERVER="$REDIS_SERVER"
export REAUTH_TEST_POSTGRES_BIN="$PG_BIN"
export REAUTH_TEST_TMP="$WORK"
log "redis $REAUTH_TEST_REDIS_URL, postgres $REAUTH_TEST_POSTGRES_URL"

if [ $# -gt 0 ]; then
  "$@"
else
  log "store conformance suites (Redis, PostgreSQL)"
  cargo test -p reauth-server --all-features --lib -- store::
  log "several instances and faults (real reauth-server processes)"
  cargo test -p reauth-server --all-features --test stores
fi
