#!/usr/bin/env bash
# Starts the gateway with its embedded defaults: installs missing Debian packages and npm
# dependencies, starts PostgreSQL and Redis on 127.0.0.1 (data in .data/dev), migrates, and
# serves on :8000 (PORT) in the foreground. Ctrl-C stops the gateway and its services.
PROFILE=dev
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"

ensure_packages
ensure_node_modules
build
trap stop_services EXIT
start_postgres
start_redis
migrate
export DATA_DIR="${DATA_DIR:-$STATE_DIR/storage}"
log "serving on http://127.0.0.1:${PORT:-8000} (Ctrl-C to stop)"
node dist/src/main.js
