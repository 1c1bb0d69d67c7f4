#!/usr/bin/env bash
# Installs what the tests need on the Node side: Node.js and npm (Debian 12
# packages, only if missing) and the pinned npm packages of each Node test
# directory (from its package-lock.json, only if node_modules is missing or
# older than the lock file): tests/mcp (the MCP servers and conformance
# harness) and tests/openai (the official openai SDK for the e2e tests).
# Safe to run repeatedly. Run as root or with sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_TEST_DIRS=(tests/mcp tests/openai)
did=()

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]} > 0)); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  did+=("apt-installed ${missing[*]}")
fi

node_version="$(node --version)"
node_major="${node_version#v}"
node_major="${node_major%%.*}"
if ((node_major < 20)); then
  # Debian 12's nodejs is 18: the stdio servers run, but the conformance
  # harness needs Node >= 20 and server-everything's HTTP mode needs >= 19.
  echo "install-node-deps: warning: node $node_version < 20; conformance and openai e2e tests will not run" >&2
fi

# npm ci in $ROOT/$1 unless its node_modules is at least as new as its lock file.
install_locked_packages() {
  local rel="$1"
  local dir="$ROOT/$rel"
  if [[ -d "$dir/node_modules" && -f "$dir/node_modules/.package-lock.json" &&
    ! "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
    return 0
  fi
  local log
  log="$(mktemp)"
  if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund) >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-node-deps: npm ci in $rel failed" >&2
    exit 1
  fi
  rm -f "$log"
  did+=("npm ci in $rel")
}

for rel in "${NODE_TEST_DIRS[@]}"; do
  install_locked_packages "$rel"
done

if ((${#did[@]} == 0)); then
  echo "install-node-deps: node $node_version and node_modules of ${NODE_TEST_DIRS[*]} up to date"
else
  summary="$(IFS=';'; echo "${did[*]}")"
  echo "install-node-deps: ${summary//;/; } (node $node_version)"
fi
