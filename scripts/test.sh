#!/usr/bin/env bash
# The whole test suite, from a clean checkout: installs dependencies (Debian
# packages; Node.js and the pinned npm MCP servers of tests/mcp), builds,
# starts a throwaway PostgreSQL cluster (scripts/pg-cluster.sh), runs unit
# tests (the store conformance suite on SQLite and PostgreSQL), integration
# tests (real binary over HTTP, mock model, tool server; on SQLite, then on
# PostgreSQL), the crash tests, then the unit and integration tests again
# under ASan+UBSan, then each fuzz target for a short time.
#
# Environment: CONTINUUM_SKIP_SANITIZERS=1 / CONTINUUM_SKIP_FUZZ=1 to skip stages.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

stage() { echo; echo "=== $* ($(date +%H:%M:%S))"; }

stage "dependencies"
bash scripts/install-deps.sh
bash scripts/install-node-deps.sh  # Node.js, the pinned MCP servers (tests/mcp) and openai SDK (tests/openai)
export CONTINUUM_REQUIRE_MCP=1

stage "release build"
bash scripts/build.sh "$ROOT/build"

stage "throwaway PostgreSQL cluster"
PG_DIR="$(mktemp -d /tmp/continuum-pg-test.XXXXXX)"
chmod 755 "$PG_DIR"
trap 'bash "$ROOT/scripts/pg-cluster.sh" stop "$PG_DIR/cluster"; rm -rf "$PG_DIR"' EXIT
CONTINUUM_TEST_POSTGRES_URL="$(bash scripts/pg-cluster.sh start "$PG_DIR/cluster")"
export CONTINUUM_TEST_POSTGRES_URL CONTINUUM_REQUIRE_POSTGRES=1
echo "PostgreSQL at $CONTINUUM_TEST_POSTGRES_URL"

stage "unit tests"
"$ROOT/build/tests/unit_tests" --gtest_brief=1 2>"$ROOT/build/unit-tests.log" || { tail -50 "$ROOT/build/unit-tests.log"; exit 1; }

stage "integration and crash tests"
CONTINUUM_BUILD_DIR="$ROOT/build" bash tests/integration/run_all.sh
CONTINUUM_BUILD_DIR="$ROOT/build" bash tests/openai/run.sh  # the official openai SDK against the server

if [[ "${CONTINUUM_SKIP_SANITIZERS:-0}" != "1" ]]; then
  stage "ASan+UBSan build"
  bash scripts/build.sh "$ROOT/build-asan" -DCONTINUUM_SANITIZE=ON -DCONTINUUM_BENCH=OFF -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  stage "unit tests under ASan+UBSan"
  "$ROOT/build-asan/tests/unit_tests" --gtest_brief=1 2>"$ROOT/build-asan/unit-tests.log" || { tail -80 "$ROOT/build-asan/unit-tests.log"; exit 1; }
  stage "integration tests under ASan+UBSan"
  CONTINUUM_BUILD_DIR="$ROOT/build-asan" SKIP_CRASH=1 SKIP_POSTGRES=1 bash tests/integration/run_all.sh
fi

if [[ "${CONTINUUM_SKIP_FUZZ:-0}" != "1" ]]; then
  stage "fuzz targets (clang libFuzzer)"
  bash tests/fuzz/run.sh
fi

stage "all tests passed"
