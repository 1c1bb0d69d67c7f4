#!/usr/bin/env bash
# The peers' workload on Continuum over HTTP (bench/http_workflows.mjs): starts
# `continuum serve` on a fresh data dir (SQLite, synchronous=FULL: an fsync
# per group commit) with an in-process scripted model, defines the agent, runs
# the closed-loop client, prints its JSON lines, stops the server.
#
#   bash bench/run_http.sh            # STEPS=10 WORKFLOWS=500 CONCURRENCY=1,64
#   STEPS=100 WORKFLOWS=300 CONCURRENCY=64 bash bench/run_http.sh
#
# Env: CONTINUUM_BUILD_DIR (build), STEPS, WORKFLOWS, CONCURRENCY,
# MAX_SECONDS_PER_LEVEL, WARMUP, SESSION_FIRST (passed to the client), STORE (a PostgreSQL
# URL: run on it instead of SQLite; the database must be empty).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${CONTINUUM_BUILD_DIR:-$ROOT/build}"
STEPS="${STEPS:-10}"
work="$(mktemp -d /tmp/continuum-bench-XXXXXX)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

rounds=$((STEPS / 2))
cat >"$work/script.json" <<EOF
{"scripts": {"bench": {"steps": [
  {"tool_calls": [{"name": "noop", "arguments": {}}], "repeat": $rounds},
  {"content": "done"}]}}}
EOF
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
store_args=()
if [[ -n "${STORE:-}" ]]; then store_args=(--store "$STORE"); fi
CONTINUUM_API_KEY="$key" CONTINUUM_SCRIPTED_MODEL_FILE="$work/script.json" CONTINUUM_LOG_LEVEL=warn \
  "$BUILD/continuum" serve --data "$work/data" --listen "127.0.0.1:$port" "${store_args[@]}" \
  2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 200); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"name": "bench", "model": {"provider": "scripted", "model": "bench"},
       "tools": [{"type": "builtin", "name": "noop"}], "limits": {"max_steps": 100000}}' \
  "http://127.0.0.1:$port/v1/agents" >/dev/null
CONTINUUM_URL="http://127.0.0.1:$port" CONTINUUM_API_KEY="$key" AGENT=bench STEPS="$STEPS" \
  node "$ROOT/bench/http_workflows.mjs"
