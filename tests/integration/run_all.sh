#!/usr/bin/env bash
# Runs the integration tests against the built binaries, then the crash test.
#
#   CONTINUUM_BUILD_DIR=/path/to/build tests/integration/run_all.sh [unittest args...]
#
# Env: CONTINUUM_BUILD_DIR (default <repo>/build), CRASH_KILLS (50), CRASH_RUNS (24),
# CRASH_SEED, CONTINUUM_TEST_VERBOSE=1 (always print server logs), SKIP_CRASH=1,
# CONTINUUM_TEST_POSTGRES_URL (a PostgreSQL cluster: the tests run again on it, and
# multinode_test runs several servers on one database; scripts/test.sh starts one),
# SKIP_POSTGRES=1, PG_CRASH_RESTARTS (8: crash
# restarts of a private PostgreSQL cluster in the crash test's postgres mode).
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
echo "== unittest: test_api test_runs test_cli_config test_encryption test_vault test_governance test_approvals test_audit test_identity test_mcp test_mcp_pins test_mcp_oauth (build: $CONTINUUM_BUILD_DIR)"
python3 -m unittest -v test_api test_runs test_cli_config test_encryption test_vault test_governance test_approvals test_audit test_identity test_mcp test_mcp_pins test_mcp_oauth "$@" || status=1

if [[ -n "${CONTINUUM_TEST_POSTGRES_URL:-}" && "${SKIP_POSTGRES:-0}" != "1" ]]; then
  echo "== unittest on PostgreSQL: the same tests, each server on a fresh database"
  CONTINUUM_TEST_STORE=postgres python3 -m unittest test_api test_runs test_cli_config test_encryption test_vault test_governance test_approvals test_audit test_identity test_mcp test_mcp_pins test_mcp_oauth "$@" || status=1
  echo "== multi-node: several servers on one PostgreSQL database (kill -9, pause, cross-node cancel)"
  python3 -m unittest -v multinode_test || status=1
fi

if [[ "${SKIP_CRASH:-0}" != "1" ]]; then
  echo "== crash test: kills=${CRASH_KILLS:-50} runs=${CRASH_RUNS:-24}"
  CRASH_TARGET=continuum python3 crash_test.py || status=1
  if [[ "${SKIP_POSTGRES:-0}" != "1" ]]; then
    echo "== crash test on PostgreSQL: restarts=${PG_CRASH_RESTARTS:-8} runs=${CRASH_RUNS:-24}"
    CRASH_TARGET=postgres CRASH_KILLS=${PG_CRASH_RESTARTS:-8} python3 crash_test.py || status=1
  fi
fi

if [[ $status -eq 0 ]]; then echo "run_all: PASS"; else echo "run_all: FAIL" >&2; fi
exit $status
