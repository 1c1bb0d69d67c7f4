#!/usr/bin/env bash
# W1 and W2 on PostgreSQL, next to PostgreSQL's own commit rate on the same
# machine: pgbench running single-row INSERTs, one transaction each, with the
# same durability (fsync=on, synchronous_commit=on), at the same client counts
# W2 uses as concurrency. Prints one JSON line per measurement.
#
#   bench/postgres_bench.sh [BUILD_DIR]
#
# Starts a throwaway cluster (scripts/pg-cluster.sh) and removes it afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
SECONDS_PER_POINT="${PGBENCH_SECONDS:-10}"

work="$(mktemp -d /tmp/continuum-pg-bench.XXXXXX)"
chmod 755 "$work"
trap 'bash "$ROOT/scripts/pg-cluster.sh" stop "$work/cluster"; rm -rf "$work"' EXIT
url="$(bash "$ROOT/scripts/pg-cluster.sh" start "$work/cluster")"
bindir="$(pg_config --bindir)"

psql -qX -v ON_ERROR_STOP=1 "$url" -c "CREATE TABLE commit_probe (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)"
cat >"$work/insert.sql" <<'SQL'
INSERT INTO commit_probe (payload) VALUES ('{"kind":"tool_result","output":"ok"}');
SQL
chmod 644 "$work/insert.sql"
for clients in 1 10 100; do
  threads=$((clients < 2 ? clients : 2))
  tps="$("$bindir/pgbench" -n -M prepared -f "$work/insert.sql" -c "$clients" -j "$threads" -T "$SECONDS_PER_POINT" "$url" 2>/dev/null |
    awk '/^tps/ {print $3; exit}')"
  echo "{\"workload\":\"pgbench single-row insert\",\"clients\":$clients,\"commits_per_s\":${tps%.*}}"
done

BENCH_STORE="$url" "$BUILD/bench/engine_bench" w1 2000
BENCH_STORE="$url" "$BUILD/bench/engine_bench" w2 10 100 1000
