#!/usr/bin/env bash
# Runs lint and the whole test suite on a fresh machine of this kind: the same bootstrap as
# start.sh (Debian packages, npm dependencies, PostgreSQL and Redis on 127.0.0.1, here with a
# fresh database in .data/test), type-check, type-aware ESLint (zero warnings), migrations, then
# every Jest suite and the engine services' pytest suites. Ends with one line `N passed, N failed`; exits non-zero when
# anything failed or nothing ran. Extra arguments go to Jest (e.g. a path filter).
PROFILE=test
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"

ensure_packages --test
ensure_node_modules
build
trap stop_services EXIT
FRESH_DB=1 start_postgres
FRESH_DB=1 start_redis
migrate

export SHARED_DIR="${SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}"
[[ -d "$SHARED_DIR/fixtures" ]] || die "fixtures not found at $SHARED_DIR (set SHARED_DIR)"
export PG_SUPERUSER_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export LOG_LEVEL="${LOG_LEVEL:-silent}"

REPORT_DIR="$STATE_DIR/reports"; rm -rf "$REPORT_DIR"; mkdir -p "$REPORT_DIR"
set +e
lint_rc=0
if (($# == 0)); then
  log "linting (ESLint, type-aware, zero warnings)"
  npx --no-install eslint . --max-warnings 0
  lint_rc=$?
fi
log "running Jest"
# --forceExit: a suite whose beforeAll failed can leave a gateway open; CI must still end.
node --experimental-vm-modules node_modules/jest/bin/jest.js --runInBand --forceExit --json --outputFile="$REPORT_DIR/jest.json" "$@"
jest_rc=$?
py_suites=()
for d in engines/*/tests; do [[ -d "$d" ]] && py_suites+=("$d"); done
py_rc=0
if ((${#py_suites[@]})) && (($# == 0)); then
  log "running pytest: ${py_suites[*]}"
  # Debian's interpreter: the python3 first on PATH may be another one without Debian's packages.
  /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$REPORT_DIR/pytest.xml" "${py_suites[@]}"
  py_rc=$?
fi
set -e

read -r passed failed < <(node -e '
  const fs = require("fs");
  let p = 0, f = 0;
  const dir = process.argv[1];
  try { const j = JSON.parse(fs.readFileSync(dir + "/jest.json", "utf8")); p += j.numPassedTests; f += j.numFailedTests + j.numRuntimeErrorTestSuites; } catch { f += 1; }
  try {
    const x = fs.readFileSync(dir + "/pytest.xml", "utf8");
    const m = /<testsuite [^>]*errors="(\d+)"[^>]*failures="(\d+)"[^>]*skipped="(\d+)"[^>]*tests="(\d+)"/.exec(x);
    if (m) { const [e, fl, s, t] = m.slice(1).map(Number); f += e + fl; p += t - e - fl - s; }
  } catch {}
  console.log(p, f);
' "$REPORT_DIR")
((lint_rc != 0)) && failed=$((failed + 1))
echo "$passed passed, $failed failed"
if ((lint_rc != 0 || jest_rc != 0 || py_rc != 0 || failed > 0 || passed == 0)); then exit 1; fi
