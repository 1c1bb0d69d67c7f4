#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running Continuum with the
# claims-triage demo: installs dependencies, builds (Release), starts the demo
# tool server, the bundled mock model (unless OPENAI_API_KEY is set), and
# `continuum serve` on SQLite in ./continuum-data. Ctrl-C stops everything.
#
# Env: OPENAI_API_KEY (+ OPENAI_BASE_URL, CONTINUUM_DEMO_MODEL=gpt-4o-mini) to use a
# real model; CONTINUUM_LISTEN (127.0.0.1:8080).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install-deps.sh
bash scripts/build.sh "$ROOT/build"

DATA="$ROOT/continuum-data"
LISTEN="${CONTINUUM_LISTEN:-127.0.0.1:8080}"
mkdir -p "$DATA"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

python3 examples/claims/tool_server.py --port 8091 2>>"$DATA/tool-server.log" &
pids+=($!)

if [[ -z "${OPENAI_API_KEY:-}" ]]; then
  model="claims-triage-mock"
  "$ROOT/build/continuum-mock-model" --script examples/mock-model/claims.json --listen 127.0.0.1:8090 \
    2>>"$DATA/mock-model.log" &
  pids+=($!)
  export OPENAI_BASE_URL="http://127.0.0.1:8090/v1"
  echo "quickstart: no OPENAI_API_KEY; using the bundled mock model"
else
  model="${CONTINUUM_DEMO_MODEL:-gpt-4o-mini}"
  echo "quickstart: using model $model at ${OPENAI_BASE_URL:-the OpenAI API}"
fi

export CONTINUUM_ALLOW_PRIVATE_TOOL_ADDRESSES=true   # the demo tools listen on loopback
"$ROOT/build/continuum" serve --data "$DATA" --listen "$LISTEN" 2>>"$DATA/server.log" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://$LISTEN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
sed "s/MODEL_PLACEHOLDER/$model/" examples/claims/agent.yaml >"$DATA/claims-agent.yaml"
"$ROOT/build/continuum" --server "http://$LISTEN" agent apply -f "$DATA/claims-agent.yaml" --data "$DATA" >/dev/null

cat <<INFO

Continuum is running on http://$LISTEN (data: $DATA, logs: $DATA/*.log)
API key: $(cat "$DATA/api-key")   (also read automatically by the CLI from $DATA/api-key)

Try it:
  build/continuum --server http://$LISTEN chat claims-triage --data $DATA
    > CLM-1001
  curl -s -H "Authorization: Bearer \$(cat $DATA/api-key)" http://$LISTEN/v1/agents

Ctrl-C stops the server, the mock model and the tool server.
INFO
wait "${pids[-1]}"
