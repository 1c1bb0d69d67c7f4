#!/usr/bin/env bash
# Installs what the MCP integration tests need on the Node side: Node.js and npm
# (Debian 12 packages, only if missing) and the pinned npm packages of
# tests/mcp (from its package-lock.json, only if node_modules is missing or
# older than the lock file). Safe to run repeatedly. Run as root or with sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MCP_DIR="$ROOT/tests/mcp"
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
  echo "install-node-deps: warning: node $node_version < 20; conformance tests will not run" >&2
fi

if [[ ! -d "$MCP_DIR/node_modules" || ! -f "$MCP_DIR/node_modules/.package-lock.json" ||
  "$MCP_DIR/package-lock.json" -nt "$MCP_DIR/node_modules/.package-lock.json" ]]; then
  log="$(mktemp)"
  if ! (cd "$MCP_DIR" && npm ci --ignore-scripts --no-audit --no-fund) >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-node-deps: npm ci in tests/mcp failed" >&2
    exit 1
  fi
  rm -f "$log"
  did+=("npm ci in tests/mcp")
fi

if ((${#did[@]} == 0)); then
  echo "install-node-deps: node $node_version and tests/mcp/node_modules up to date"
else
  summary="$(IFS=';'; echo "${did[*]}")"
  echo "install-node-deps: ${summary//;/; } (node $node_version)"
fi
