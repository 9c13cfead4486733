#!/usr/bin/env bash
# Runs the benchmarks in bench/ (see bench/README.md) against real gateway processes: the same
# bootstrap as test.sh (Debian packages, npm dependencies, compile, PostgreSQL and Redis on
# 127.0.0.1) with the bench profile's own state and ports — .data/bench, Postgres :54359,
# Redis :63829, a fresh database every run — so the dev and test data are never touched.
# Each benchmark runs as `node dist/bench/<name>.js`, writes bench/results/<name>.json and
# prints its table; all tables are printed again at the end.
#
#   ./scripts/bench.sh                    # every benchmark (the list in ALL below)
#   ./scripts/bench.sh overhead ingest    # only these
#   DIST_DIR=/tmp/x ./scripts/bench.sh    # compile into another directory than dist/
#   BENCH_NO_BUILD=1 ./scripts/bench.sh   # reuse the last build (dist/, or DIST_DIR)
#
# Settings (environment): BENCH_MAX_LOAD (1.5) and BENCH_LOAD_WAIT_S (180): each benchmark waits
# up to that long for the 1-minute load average to drop below that; per-benchmark knobs are in
# bench/README.md.
PROFILE=bench
PG_PORT="${PG_PORT:-54359}"
REDIS_PORT="${REDIS_PORT:-63829}"
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"

ALL=(long-audio overhead ingest vad speech-pipeline speech-workers pocketsphinx-wer fairness)
names=("$@")
((${#names[@]})) || names=("${ALL[@]}")
for name in "${names[@]}"; do
  [[ -f "$ROOT/bench/$name.ts" ]] || die "no benchmark '$name' (have: ${ALL[*]})"
done

ensure_packages
ensure_node_modules
if [[ "${BENCH_NO_BUILD:-0}" == 1 ]]; then
  DIST_DIR="${DIST_DIR:-$ROOT/dist}"
  [[ -f "$DIST_DIR/bench/report.js" ]] || die "BENCH_NO_BUILD=1 but $DIST_DIR holds no compiled benchmarks"
  log "using the existing build in $DIST_DIR"
elif [[ -z "${DIST_DIR:-}" ]]; then
  build
  DIST_DIR="$ROOT/dist"
else
  # Another output directory (e.g. while someone else uses dist/): it needs the project's
  # node_modules and proto/ beside it, and package.json's "type": "module" for ESM.
  log "type-checking and compiling into $DIST_DIR"
  rm -rf "$DIST_DIR"
  npx --no-install tsc -p tsconfig.build.json --outDir "$DIST_DIR"
  ln -sfn "$ROOT/node_modules" "$DIST_DIR/node_modules"
  ln -sfn "$ROOT/proto" "$DIST_DIR/proto"
  echo '{"type":"module"}' >"$DIST_DIR/package.json"
fi
trap stop_services EXIT
FRESH_DB=1 start_postgres
FRESH_DB=1 start_redis
log "running migrations"
node node_modules/typeorm/cli.js migration:run -d "$DIST_DIR/src/database/data-source.js" >/dev/null

export SHARED_DIR="${SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}"
[[ -d "$SHARED_DIR/fixtures" ]] || die "fixtures not found at $SHARED_DIR (set SHARED_DIR)"
export LOG_LEVEL="${LOG_LEVEL:-silent}"

cd "$ROOT"
failed=()
for name in "${names[@]}"; do
  log "benchmark $name (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  node "$DIST_DIR/bench/$name.js" || failed+=("$name")
done
node "$DIST_DIR/bench/report.js" || true
((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
