#!/usr/bin/env bash
# Runs the integration tests against the built binaries, then the crash test.
#
#   CONTINUUM_BUILD_DIR=/path/to/build tests/integration/run_all.sh [unittest args...]
#
# Env: CONTINUUM_BUILD_DIR (default <repo>/build), CRASH_KILLS (50), CRASH_RUNS (24),
# CRASH_SEED, CONTINUUM_TEST_VERBOSE=1 (always print server logs), SKIP_CRASH=1.
# Exits non-zero if anything fails (or if the binaries are missing).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export CONTINUUM_BUILD_DIR="$(cd "${CONTINUUM_BUILD_DIR:-$repo/build}" 2>/dev/null && pwd || echo "${CONTINUUM_BUILD_DIR:-$repo/build}")"
export PYTHONDONTWRITEBYTECODE=1

for bin in continuum continuum-mock-model; do
  if [[ ! -x "$CONTINUUM_BUILD_DIR/$bin" ]]; then
    echo "run_all: $CONTINUUM_BUILD_DIR/$bin is missing; build first" >&2
    exit 2
  fi
done

status=0
cd "$here"
echo "== unittest: test_api test_runs test_cli_config (build: $CONTINUUM_BUILD_DIR)"
python3 -m unittest -v test_api test_runs test_cli_config "$@" || status=1

if [[ "${SKIP_CRASH:-0}" != "1" ]]; then
  echo "== crash test: kills=${CRASH_KILLS:-50} runs=${CRASH_RUNS:-24}"
  python3 crash_test.py || status=1
fi

if [[ $status -eq 0 ]]; then echo "run_all: PASS"; else echo "run_all: FAIL" >&2; fi
exit $status
