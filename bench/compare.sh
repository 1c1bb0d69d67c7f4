#!/usr/bin/env bash
# Continuum and the peers (Restate, DBOS, LangGraph) on the same workload, one
# after the other on this machine: the disk's fsync latency first, then each
# system REPEAT times (median per metric), then a side-by-side table with the
# ratios and each row's durability tier. The peers' scripts live in
# ../shared/peers (PEERS_DIR); they install their pinned npm packages under
# /tmp/peers on first use.
#
#   bash bench/compare.sh                                  # STEPS=10, C=1,64
#   STEPS=100 WORKFLOWS=300 CONCURRENCY=64 bash bench/compare.sh
#   ONLY_CONTINUUM=1 bash bench/compare.sh                 # skip the peers
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
REPEAT="${REPEAT:-3}"
export STEPS="${STEPS:-10}" WORKFLOWS="${WORKFLOWS:-500}" CONCURRENCY="${CONCURRENCY:-1,64}"
lines="$(mktemp)"
trap 'rm -f "$lines"' EXIT

python3 "$ROOT/bench/fsync_latency.py" | tee -a "$lines"
raw=""
for _ in $(seq 1 "$REPEAT"); do
  line="$(bash "$ROOT/bench/run_http.sh" | tail -1)"
  echo "raw: [continuum] $line" >&2
  raw+="$line"$'\n'
done
printf '%s' "$raw" | node "$ROOT/bench/median.mjs" | sed 's|^{|{"config":"continuum (SQLite, synchronous=FULL)",|' | tee -a "$lines"
if [[ "${ONLY_CONTINUUM:-0}" != "1" ]]; then
  REPEAT="$REPEAT" bash "$PEERS_DIR/bench_all.sh" | tee -a "$lines"
fi
node "$ROOT/bench/compare_table.mjs" <"$lines"
