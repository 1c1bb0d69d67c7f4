#!/usr/bin/env bash
# Runs the end-to-end tests of Continuum's OpenAI-compatible API (Responses and
# Conversations) with the official openai SDK pinned in package.json:
#
#   tests/openai/run.sh [node --test options, e.g. --test-name-pattern=stream]
#
# Installs the pinned packages first (scripts/install-node-deps.sh: npm ci from
# package-lock.json when node_modules is missing or older than the lock file).
# Each test file starts its own mock model and `continuum serve` on a temp data dir (SQLite); with
# CONTINUUM_TEST_POSTGRES_URL (unless SKIP_POSTGRES=1) the tests run again, each
# server on a fresh database of that cluster.
# Env: CONTINUUM_BUILD_DIR (default <repo>/build) holds the binaries;
# CONTINUUM_TEST_VERBOSE=1 always prints the process logs; CONTINUUM_TEST_KEEP=1
# keeps the temp dirs. Exits non-zero if a test fails or the binaries are missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${CONTINUUM_BUILD_DIR:-$repo/build}"
export CONTINUUM_BUILD_DIR="$(cd "$build" 2>/dev/null && pwd || echo "$build")"

for bin in continuum continuum-mock-model; do
  if [[ ! -x "$CONTINUUM_BUILD_DIR/$bin" ]]; then
    echo "openai e2e: $CONTINUUM_BUILD_DIR/$bin is missing; build first" >&2
    exit 2
  fi
done

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "openai e2e: node and npm are needed (scripts/install-node-deps.sh installs them)" >&2
  exit 2
fi
node_version="$(node --version)"
node_major="${node_version#v}"
node_major="${node_major%%.*}"
if ((node_major < 20)); then
  echo "openai e2e: node $node_version is too old (the tests need >= 20; openai 7.57.0 declares >= 22)" >&2
  exit 2
fi

# The pinned packages (npm ci when node_modules is missing or older than the lock).
bash "$repo/scripts/install-node-deps.sh" >&2

cd "$repo"
# The files are listed rather than the directory: Node 20 searches a directory,
# Node 22 takes the arguments as globs.
status=0
node --test "$@" "$here"/*.test.mjs || status=1
# Again on PostgreSQL (each server on a fresh database), when a cluster is given.
if [[ -n "${CONTINUUM_TEST_POSTGRES_URL:-}" && "${SKIP_POSTGRES:-0}" != "1" ]]; then
  echo "== openai e2e on PostgreSQL"
  CONTINUUM_TEST_STORE=postgres node --test "$@" "$here"/*.test.mjs || status=1
fi
exit $status
