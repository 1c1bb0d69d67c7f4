#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: initdb in DIR,
# listening on 127.0.0.1 only, trust authentication (loopback, test data only),
# fsync and synchronous_commit on (the same durability as production).
#
#   pg-cluster.sh start DIR [PORT]   initdb if needed, start; prints the URL
#   pg-cluster.sh url DIR            prints the URL of a started cluster
#   pg-cluster.sh restart DIR [MODE] pg_ctl restart (MODE: fast | immediate)
#   pg-cluster.sh stop DIR           stop (immediate) and keep the files
#
# As root the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail

command_name="${1:?usage: pg-cluster.sh start|url|restart|stop DIR [...]}"
dir="${2:?cluster directory required}"
bindir="$(pg_config --bindir)"

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url_of() { echo "postgresql://continuum@127.0.0.1:$(cat "$dir/port")/continuum"; }

wait_ready() {
  for _ in $(seq 1 300); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")" -U continuum -d postgres; then return 0; fi
    sleep 0.1
  done
  echo "pg-cluster: server in $dir did not become ready" >&2
  tail -20 "$dir/server.log" >&2 || true
  return 1
}

start() {
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_owner "$bindir/initdb" -D "$dir/data" -U continuum --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner tee "$dir/port" >/dev/null <<<"${1:-$(free_port)}"
    as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $(cat "$dir/port")
unix_socket_directories = '$dir'
max_connections = 300
fsync = on
synchronous_commit = on
CONF
  fi
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
  wait_ready
  if ! "$bindir/psql" -qtA -h 127.0.0.1 -p "$(cat "$dir/port")" -U continuum -d postgres \
      -c "SELECT 1 FROM pg_database WHERE datname = 'continuum'" | grep -q 1; then
    "$bindir/createdb" -h 127.0.0.1 -p "$(cat "$dir/port")" -U continuum continuum
  fi
  url_of
}

case "$command_name" in
  start) start "${3:-}" ;;
  url) url_of ;;
  restart)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m "${3:-fast}" -w restart >/dev/null
    wait_ready ;;
  stop) as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true ;;
  *) echo "pg-cluster: unknown command $command_name" >&2; exit 2 ;;
esac
