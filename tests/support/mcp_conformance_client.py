"""The MCP client under test when `@modelcontextprotocol/conformance client` runs a
scenario: the conformance harness starts this script with its server's URL as the last
argument and the scenario in MCP_CONFORMANCE_SCENARIO. The script does not speak MCP
itself: it makes a running Continuum server (CONTINUUM_URL, CONTINUUM_API_KEY) use that
URL as an agent's MCP server, so the client being judged is Continuum's.

  initialize   list the server's tools through `GET /v1/mcp/servers/conf/tools`
  tools_call   run an agent whose (mock) model calls conf__add_numbers {a: 2, b: 3}
  sse-retry    run an agent whose model calls conf__test_reconnection (its reply
               stream is cut and must be resumed with Last-Event-ID)
  elicitation-sep1034-client-defaults
               run an agent whose model calls conf__test_client_elicitation_defaults;
               the server asks for input, which the server's "elicitation": "defaults"
               answers with the requested schema's defaults

Env: CONTINUUM_URL, CONTINUUM_API_KEY, MOCK_MODEL_URL (a continuum-mock-model whose
script has a model "conformance_tools_call"). Exits 0 on success."""

import json
import os
import sys
import time
import urllib.request


def call(method, path, body=None):
    request = urllib.request.Request(os.environ["CONTINUUM_URL"] + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + os.environ["CONTINUUM_API_KEY"],
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def main():
    url, scenario = sys.argv[-1], os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    agent = "conformance-" + scenario.replace("_", "-") + "-" + str(int(time.time() * 1000))
    status, body = call("POST", "/v1/agents", {
        "name": agent,
        "model": {"provider": "openai", "model": "conformance_" + scenario.replace("-", "_"), "base_url": os.environ["MOCK_MODEL_URL"]},
        "tools": [{"type": "mcp", "name": "conf", "transport": "http", "url": url, "allowed_tools": ["*"],
                   "connect_timeout_ms": 5000, "elicitation": "defaults"}]})
    if status != 201:
        print("cannot create the agent:", status, body, file=sys.stderr)
        return 1
    if scenario in ("tools_call", "sse-retry", "elicitation-sep1034-client-defaults"):
        status, session = call("POST", "/v1/sessions", {"agent": agent})
        status, run = call("POST", f"/v1/sessions/{session['id']}/runs", {"input": "add", "wait": True})
        print(json.dumps(run), file=sys.stderr)
        output = run.get("output") or ""
        return 0 if run.get("status") == "completed" and "error" not in output and output.strip() != "results:" else 1
    status, listing = call("GET", f"/v1/mcp/servers/conf/tools?agent={agent}")
    print(status, json.dumps(listing), file=sys.stderr)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
