#!/usr/bin/env bash
# Configures and builds Continuum. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Default: a Release build in ./build. ccache speeds up rebuilds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${1:-$ROOT/build}"
shift || true
JOBS="${CONTINUUM_BUILD_JOBS:-$(nproc)}"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -Wno-dev "$@" >/dev/null
ninja -C "$BUILD_DIR" -j "$JOBS"
