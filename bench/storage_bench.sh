#!/usr/bin/env bash
# Storage benchmarks: W1 and W2 (runs of 50 steps, for steadier numbers than
# the 10-step default) on SQLite and on PostgreSQL, each with
# encryption at rest off and on, REPEAT times (default 3), next to
# PostgreSQL's own commit rate on this machine (pgbench: single-row INSERTs,
# one transaction each, same durability: fsync=on, synchronous_commit=on) and
# the disk's fdatasync latency. Prints one JSON line per measurement.
#
#   bench/storage_bench.sh [BUILD_DIR]
#
# Starts a throwaway PostgreSQL cluster (scripts/pg-cluster.sh) and removes it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
REPEAT="${REPEAT:-3}"
PGBENCH_SECONDS="${PGBENCH_SECONDS:-10}"

work="$(mktemp -d /tmp/continuum-storage-bench.XXXXXX)"
chmod 755 "$work"
trap 'bash "$ROOT/scripts/pg-cluster.sh" stop "$work/cluster"; rm -rf "$work"' EXIT

python3 - "$work/fsync-probe" <<'PY'
import json, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o600)
samples = []
for i in range(1000):
    os.pwrite(fd, b"x" * 4096, i * 4096)
    start = time.perf_counter()
    os.fdatasync(fd)
    samples.append((time.perf_counter() - start) * 1000)
samples.sort()
print(json.dumps({"workload": "fdatasync 4 KiB append", "p50_ms": round(samples[500], 3),
                  "p99_ms": round(samples[990], 3)}))
PY

url="$(bash "$ROOT/scripts/pg-cluster.sh" start "$work/cluster")"
bindir="$(pg_config --bindir)"
psql -qX -v ON_ERROR_STOP=1 "$url" -c "CREATE TABLE commit_probe (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)"
printf '%s\n' "INSERT INTO commit_probe (payload) VALUES ('{\"kind\":\"tool_result\",\"output\":\"ok\"}');" \
  >"$work/insert.sql"
chmod 644 "$work/insert.sql"
for clients in 1 10 100; do
  threads=$((clients < 2 ? clients : 2))
  tps="$("$bindir/pgbench" -n -M prepared -f "$work/insert.sql" -c "$clients" -j "$threads" \
    -T "$PGBENCH_SECONDS" "$url" 2>/dev/null | awk '/^tps/ {print $3; exit}')"
  echo "{\"workload\":\"pgbench single-row insert\",\"clients\":$clients,\"commits_per_s\":${tps%.*}}"
done

for round in $(seq 1 "$REPEAT"); do
  for store in "" "$url"; do
    for encryption in 0 1; do
      export BENCH_DIR="$work/engine" BENCH_STORE="$store" BENCH_ENCRYPTION="$encryption"
      "$BUILD/bench/engine_bench" w1 2000
      BENCH_W2_MODEL_CALLS=25 "$BUILD/bench/engine_bench" w2 100 1000  # 50 steps per run
    done
  done
done
