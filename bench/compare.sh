#!/usr/bin/env bash
# Continuum and the peers (Restate, DBOS, LangGraph) on the same workload, one
# after the other on this machine: the disk's fsync latency first, then REPEAT
# rounds, each running Continuum once and then every peer once (interleaved, so
# that a VM whose speed drifts over minutes weighs on every system alike), then
# the median per metric and a side-by-side table with the ratios and each row's
# durability tier. The peers' scripts live in ../shared/peers (PEERS_DIR); they
# install their pinned npm packages under /tmp/peers on first use.
#
#   bash bench/compare.sh                                  # STEPS=10, C=1,64
#   STEPS=100 WORKFLOWS=300 CONCURRENCY=64 bash bench/compare.sh
#   ONLY_CONTINUUM=1 bash bench/compare.sh                 # skip the peers
#   ONLY=restate/run.sh bash bench/compare.sh              # one peer (bench_all.sh's ONLY)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
REPEAT="${REPEAT:-3}"
export STEPS="${STEPS:-10}" WORKFLOWS="${WORKFLOWS:-500}" CONCURRENCY="${CONCURRENCY:-1,64}"
lines="$(mktemp)"  # the fsync line and one median line per system
runs="$(mktemp)"   # one line per run of each system
trap 'rm -f "$lines" "$runs"' EXIT

python3 "$ROOT/bench/fsync_latency.py" | tee -a "$lines"
for round in $(seq 1 "$REPEAT"); do
  echo "round $round of $REPEAT" >&2
  line="$(bash "$ROOT/bench/run_http.sh" | tail -1)"
  echo "raw: [continuum] $line" >&2
  printf '%s\n' "$line" | sed 's|^{|{"config":"continuum (SQLite, synchronous=FULL)",|' >>"$runs"
  if [[ "${ONLY_CONTINUUM:-0}" != "1" ]]; then
    REPEAT=1 bash "$PEERS_DIR/bench_all.sh" >>"$runs"  # each peer once; "raw:" lines on stderr
  fi
done
node "$ROOT/bench/median.mjs" <"$runs" | tee -a "$lines"
node "$ROOT/bench/compare_table.mjs" <"$lines"
