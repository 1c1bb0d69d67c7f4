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

  auth/*       the server is configured with `oauth` (from MCP_CONFORMANCE_CONTEXT: a
               pre-registered client, its secret or private key put in the vault, the
               client_credentials grant; or a client metadata document URL). The script
               lists the tools and runs an agent whose model calls conf__test-tool; when
               Continuum says the server needs authorization, the script does what the
               administrator's browser would: POST .../authorize, open the URL (the test
               authorization server redirects at once) and follow the redirect to
               Continuum's callback. At most 3 authorizations, as a person would give up.

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


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def open_as_browser(url):
    """GETs `url` without following redirects; returns (status, Location, body)."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.headers.get("Location"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location"), error.read().decode()


def oauth_config(scenario, context, stamp):
    """The server's `oauth` for this scenario; puts its credentials in the vault."""
    def vault(name, value):
        status, body = call("PUT", f"/v1/secrets/{name}", {"value": value})
        if status != 200:
            raise SystemExit(f"cannot store {name}: {status} {body}")
        return name
    oauth = {}
    if scenario.startswith("auth/client-credentials"):
        oauth["grant"] = "client_credentials"
    if "client_id" in context:
        oauth["client_id"] = context["client_id"]
    if "client_secret" in context:
        oauth["client_secret"] = vault(f"conf-secret-{stamp}", context["client_secret"])
    if "private_key_pem" in context:
        oauth["private_key"] = vault(f"conf-key-{stamp}", context["private_key_pem"].replace("\n", " "))
        oauth["signing_algorithm"] = context.get("signing_algorithm", "ES256")
    if scenario == "auth/basic-cimd":
        oauth["client_metadata_url"] = "https://conformance-test.local/client-metadata.json"
    return oauth


def needs_authorization(text):
    return "needs authorization" in text


def authorize(agent):
    """What an administrator does: start the authorization, open its URL in a browser,
    which the authorization server sends back to Continuum's callback."""
    status, body = call("POST", "/v1/mcp/servers/conf/authorize", {"agent": agent})
    print("authorize:", status, json.dumps(body), file=sys.stderr)
    if status != 200 or "authorization_url" not in body:
        return False
    status, location, _ = open_as_browser(body["authorization_url"])
    if status not in (301, 302, 303, 307) or not location:
        print("the authorization server did not redirect:", status, file=sys.stderr)
        return False
    status, _, text = open_as_browser(location)
    print("callback:", status, text.strip(), file=sys.stderr)
    return status == 200


def run_auth_scenario(agent):
    authorizations = 0

    def until_authorized(attempt):
        nonlocal authorizations
        while True:
            ok, text = attempt()
            if ok or not needs_authorization(text) or authorizations >= 3:
                return ok
            authorizations += 1
            if not authorize(agent):
                return False

    def listing():
        status, body = call("GET", f"/v1/mcp/servers/conf/tools?agent={agent}")
        print("tools:", status, json.dumps(body), file=sys.stderr)
        return status == 200, json.dumps(body)

    def tool_run():
        status, session = call("POST", "/v1/sessions", {"agent": agent})
        status, run = call("POST", f"/v1/sessions/{session['id']}/runs", {"input": "call", "wait": True})
        print("run:", json.dumps(run), file=sys.stderr)
        output = run.get("output") or ""
        return run.get("status") == "completed" and "test" in output and "error" not in output, output

    return 0 if until_authorized(listing) and until_authorized(tool_run) else 1


def main():
    url, scenario = sys.argv[-1], os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    stamp = str(int(time.time() * 1000))
    agent = ("conf-" + scenario.replace("_", "-").replace("/", "-"))[:50] + "-" + stamp
    server = {"type": "mcp", "name": "conf", "transport": "http", "url": url, "allowed_tools": ["*"],
              "connect_timeout_ms": 5000, "elicitation": "defaults"}
    model = "conformance_" + scenario.replace("-", "_")
    if scenario.startswith("auth/"):
        server["oauth"] = oauth_config(scenario, json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}"), stamp)
        model = "conformance_auth"
    status, body = call("POST", "/v1/agents", {
        "name": agent,
        "model": {"provider": "openai", "model": model, "base_url": os.environ["MOCK_MODEL_URL"]},
        "tools": [server]})
    if status != 201:
        print("cannot create the agent:", status, body, file=sys.stderr)
        return 1
    if scenario.startswith("auth/"):
        return run_auth_scenario(agent)
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
