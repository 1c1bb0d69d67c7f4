#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 and runs each for FUZZ_SECONDS
# (default 30) over its committed corpus. New crash reproducers are written
# beside the target (crash-*) and fail the run; commit them with the fix.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build-fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-30}"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -Wno-dev -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCONTINUUM_FUZZ=ON -DCONTINUUM_BENCH=OFF >/dev/null
ninja -C "$BUILD" request_body_fuzzer chat_stream_fuzzer sealed_value_fuzzer policy_fuzzer jwt_fuzzer mcp_message_fuzzer openai_input_fuzzer
for target in request_body chat_stream sealed_value policy jwt mcp_message openai_input; do
  corpus="$ROOT/tests/fuzz/corpus/$target"
  work="$(mktemp -d)"
  echo "fuzz: $target for ${SECONDS_EACH}s"
  (cd "$work" && "$BUILD/tests/fuzz/${target}_fuzzer" -max_total_time="$SECONDS_EACH" -max_len=65536 \
    -artifact_prefix="$ROOT/tests/fuzz/" "$work" "$corpus" 2>&1 | tail -3)
  rm -rf "$work"
done
