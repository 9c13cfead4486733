#!/usr/bin/env bash
# Shared bootstrap for scripts/start.sh and scripts/test.sh: installs what is missing (Debian
# packages, npm dependencies), starts PostgreSQL and Redis on 127.0.0.1 with their data in a
# project-local directory, and stops them again. Sourced, not executed.
#
# Profiles keep the developer's data and the test suite's data apart:
#   PROFILE=dev  → .data/dev,  Postgres :54329, Redis :63799
#   PROFILE=test → .data/test, Postgres :54339, Redis :63809 (database recreated every run)

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROFILE="${PROFILE:-dev}"
if [[ "$PROFILE" == test ]]; then
  PG_PORT="${PG_PORT:-54339}"; REDIS_PORT="${REDIS_PORT:-63809}"
else
  PG_PORT="${PG_PORT:-54329}"; REDIS_PORT="${REDIS_PORT:-63799}"
fi
STATE_DIR="${STATE_DIR:-$ROOT/.data/$PROFILE}"
PG_DATA="$STATE_DIR/pg"
REDIS_DIR="$STATE_DIR/redis"
DB_NAME="${DB_NAME:-gateway}"
DB_USER="${DB_USER:-gateway}"
DB_PASSWORD="${DB_PASSWORD:-gateway}"

log() { printf '\033[1;34m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '\033[1;31m[%s] %s\033[0m\n' "$(basename "$0")" "$*" >&2; exit 1; }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# Debian packages the gateway needs at run time (and, with --test, for the engine services' tests).
ensure_packages() {
  local want=(ffmpeg redis-server pocketsphinx pocketsphinx-en-us)
  [[ "${1:-}" == --test ]] && want+=(python3-fastapi python3-httpx python3-pytest python3-multipart python3-uvicorn chromium)
  ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || want+=(postgresql postgresql-contrib)
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    as_root apt-get update >/dev/null
    as_root apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  }
}

# npm dependencies from the committed lock (`npm ci` fails on this registry mirror; see README).
# ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node (Silero VAD, docs/vad.md) ships its CPU binaries, but
# its postinstall also downloads the CUDA provider from api.nuget.org on linux/x64, and where that host
# is unreachable the whole `npm install` fails. The gateway runs the model on the CPU only.
ensure_node_modules() {
  cd "$ROOT"
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "installing npm dependencies"
    ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error
  fi
}

build() {
  cd "$ROOT"
  log "type-checking and compiling"
  rm -rf dist
  npx --no-install tsc -p tsconfig.build.json
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }

start_postgres() {
  local bin; bin="$(pg_bin)"
  mkdir -p "$STATE_DIR"
  # Postgres refuses to run as root: the cluster belongs to the postgres user.
  if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
    log "initialising PostgreSQL cluster in $PG_DATA"
    mkdir -p "$PG_DATA"; chown postgres:postgres "$PG_DATA"; chmod 700 "$PG_DATA"
    runuser -u postgres -- "$bin/initdb" -D "$PG_DATA" -A trust -U postgres --no-sync >/dev/null
  fi
  if runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "PostgreSQL already running on :$PG_PORT"
  else
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DATA" -w -t 60 -l "$PG_DATA/server.log" \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=/tmp -c fsync=off -c max_connections=200" start >/dev/null
  fi
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [[ "$(runuser -u postgres -- "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'")" != 1 ]]; then
    runuser -u postgres -- "${psql[@]}" -c "CREATE ROLE \"$DB_USER\" LOGIN SUPERUSER PASSWORD '$DB_PASSWORD'"
  fi
  if [[ "${FRESH_DB:-0}" == 1 ]]; then
    runuser -u postgres -- "${psql[@]}" -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)"
  fi
  if [[ "$(runuser -u postgres -- "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'")" != 1 ]]; then
    runuser -u postgres -- "${psql[@]}" -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_USER\""
  fi
  export DATABASE_URL="postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
  export PG_BIN="$bin" PG_PORT PG_DATA
}

start_redis() {
  mkdir -p "$REDIS_DIR"
  if [[ -f "$REDIS_DIR/redis.pid" ]] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; then
    log "Redis already running on :$REDIS_PORT"
  else
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    # AOF on: queued jobs survive a Redis restart (BullMQ keeps all job state in Redis).
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
      --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR"
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  [[ "${FRESH_DB:-0}" == 1 ]] && redis-cli -p "$REDIS_PORT" flushall >/dev/null
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT" REDIS_PORT REDIS_DIR
}

stop_services() {
  if [[ -f "$REDIS_DIR/redis.pid" ]]; then
    kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
  fi
  if [[ -s "$PG_DATA/PG_VERSION" ]]; then
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
  fi
}

migrate() {
  cd "$ROOT"
  log "running migrations"
  node node_modules/typeorm/cli.js migration:run -d dist/src/database/data-source.js >/dev/null
}
