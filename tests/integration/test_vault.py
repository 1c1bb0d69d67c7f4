"""The vault of tool credentials against the real binary (docs/api.md: "Vault (tool
credentials)" and the http tool's `auth`; docs/encryption.md: `secrets.value` is sealed):

  injection, redaction   a canary value set with `continuum secrets set` reaches an
                         in-process tool as `Authorization: Bearer <canary>`; the tool
                         echoes it back and the echo is "[redacted]" in the journal, in
                         what the model is sent and in the answer; the canary is in no API
                         response, event stream, metrics, CLI output or server log, and
                         not at rest (every file of the data dir, -wal included, while
                         running and after a stop; or pg_dump, text and hex)
  missing credential     a tool naming an absent secret gets an error result
                         (credential_unavailable), is never called, and the run goes on
  rotation and removal   the next call carries the new value (created_at_ms stays,
                         updated_at_ms moves); after `continuum secrets delete` calls fail
                         with credential_unavailable
  error bodies           a credential echoed in a tool's error body is redacted as well,
                         also where the body is cut to the length shown to the model
  validation             bad names and bodies are 400s, unknown names 404, no key 401;
                         an agent's `auth` with an inline value or a header the runtime
                         sets itself is a 400"""

import json
import os
import secrets
import sqlite3
import subprocess
import threading
import time
import unittest
from dataclasses import dataclass

from harness import (CLI_TIMEOUT_S, ContinuumServer, InProcessServer, IntegrationTest, describe, is_postgres_url,
                     model_spec, read_sse, tool_steps, where_stored)
from test_encryption import SEALED_MAGIC

REDACTED = "[redacted]"
ECHO_TAIL = "account ACME-42 is active"
ERROR_BODY_SHOWN_MAX = 500  # bytes of a tool's error body put in its error result (tools/tool_runner.cpp)


def new_credential():
    """A secret value that cannot occur by chance."""
    return "sk-canary-" + secrets.token_hex(16)


@dataclass
class ToolRequest:
    path: str
    headers: list  # (name, value) pairs as received, repeats included
    body: bytes

    def header_values(self, name):
        return [value for key, value in self.headers if key.lower() == name.lower()]


class EchoingTool(InProcessServer):
    """An http tool served in the test process. It records every request and answers
    `status` with a body that echoes the value of `header` it received:
    "<pad dots><header> was <value>; account ACME-42 is active"."""

    def __init__(self, header="Authorization"):
        self.header = header
        self.status = 200
        self.pad = 0
        self._requests = []
        self._lock = threading.Lock()
        self._serve_replies(self._answer)

    def _answer(self, method, path, headers, body):
        with self._lock:
            self._requests.append(ToolRequest(path, list(headers.items()), body))
            status = self.status
        return status, "text/plain; charset=utf-8", self.reply_for(headers.get(self.header)).encode()

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def reply_for(self, value):
        return "." * self.pad + f"{self.header} was {value if value is not None else '(none)'}; {ECHO_TAIL}"

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/tools/{name}"


class VaultTest(IntegrationTest):
    SCRIPTS = {
        "call_once": {"steps": [{"tool_calls": [{"name": "crm", "arguments": {"q": "{{input}}"}}]},
                                {"content": "tool said {{tool_results}}"}]},
    }

    # --- helpers ---------------------------------------------------------------

    def echoing_tool(self, header="Authorization"):
        tool = EchoingTool(header)
        self.addCleanup(tool.stop)
        return tool

    def vault_agent(self, name, tool, auth, endpoint=None):
        """An agent whose one http tool, "crm", is `tool` with `auth`."""
        crm = {"type": "http", "name": "crm", "description": "looks up an account",
               "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
               "url": tool.url("crm"), "auth": auth}
        return self.client.create_agent({"name": name, "model": model_spec(endpoint or self.mock, "call_once"),
                                         "instructions": "Look the account up.", "tools": [crm]})

    def run_once(self, agent, text="look up ACME-42"):
        """A finished run of `agent` on a new session: (session id, run, its one tool_call step)."""
        session = self.new_session(agent)
        run = self.client.start_run(session, text, wait=True)
        self.assertEqual(run["status"], "completed", run)
        (step,) = tool_steps(self.client.steps(run["id"]))
        return session, run, step

    def put_secret(self, name, value):
        resp = self.client.put(f"/v1/secrets/{name}", {"value": value})
        self.assertEqual(resp.status, 200, resp)
        self.assert_secret_view(resp.body, name)
        return resp.body

    def assert_secret_view(self, view, name):
        self.assertEqual(sorted(view), ["created_at_ms", "name", "object", "updated_at_ms"], view)
        self.assertEqual((view["object"], view["name"]), ("secret", name), view)
        self.assertLessEqual(view["created_at_ms"], view["updated_at_ms"], view)

    def assert_credential_unavailable(self, step, secret_name):
        payload = step["payload"]
        self.assertTrue(payload["is_error"], step)
        self.assertIn("credential_unavailable", payload["output"], step)
        self.assertIn(secret_name, payload["output"], step)
        self.assertEqual(payload["attempts"], 1, "a missing credential is not retried")

    def cli_ok(self, *args, input_text=""):
        result = self.cli(*args, input_text=input_text)
        self.assertEqual(result.returncode, 0, describe(result))
        return result

    def sealed_secret_values(self):
        """{name: stored value (bytes)} read from the store itself, behind the server."""
        if is_postgres_url(self.server.store):
            result = subprocess.run(["psql", "-AtX", "-F", " ", self.server.store, "-c",
                                     "SELECT name, encode(value, 'hex') FROM secrets"],
                                    capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
            self.assertEqual(result.returncode, 0, result.stderr)
            rows = [line.split(" ", 1) for line in result.stdout.splitlines() if line.strip()]
            return {name: bytes.fromhex(value) for name, value in rows}
        self.assertFalse(self.server.alive(), "read the SQLite file only while the server is stopped")
        conn = sqlite3.connect(os.path.join(self.server.data_dir, "continuum.db"))
        conn.text_factory = bytes
        try:
            return {name.decode(): bytes(value) for name, value in conn.execute("SELECT name, value FROM secrets")}
        finally:
            conn.close()

    # --- 1. the credential reaches the tool, and nothing else ------------------------

    def test_credential_reaches_the_tool_and_nowhere_else(self):
        canary, name = new_credential(), "crm-token"
        exposures = {}  # where the canary must not be: {place: text}

        set_result = self.cli_ok("secrets", "set", name, input_text=canary + "\n")
        exposures["continuum secrets set (output)"] = set_result.stdout + set_result.stderr
        view = json.loads(set_result.stdout)
        self.assert_secret_view(view, name)
        self.assertEqual(view["created_at_ms"], view["updated_at_ms"], view)

        tool, model = self.echoing_tool(), self.strict_model()
        auth = {"secret": name, "header": "Authorization", "prefix": "Bearer "}
        self.vault_agent("crm-agent", tool, auth, endpoint=model)
        session, run, step = self.run_once("crm-agent")

        # The tool got the credential, once and exactly, beside the runtime's own headers.
        (request,) = tool.requests
        self.assertEqual(request.path, "/tools/crm")
        self.assertEqual(request.header_values("Authorization"), [f"Bearer {canary}"])
        self.assertEqual(request.header_values("Idempotency-Key"), [step["payload"]["idempotency_key"]])
        self.assertEqual(json.loads(request.body), {"q": "look up ACME-42"})

        # Its echo of the credential was blanked out before the journal and the model saw it.
        expected_output = tool.reply_for(f"Bearer {REDACTED}")
        self.assertFalse(step["payload"]["is_error"], step)
        self.assertEqual(step["payload"]["output"], expected_output)
        self.assertEqual(run["output"], f"tool said {expected_output}")
        self.assertEqual(model.rejections, [])
        self.assertEqual(len(model.requests), 2, "one model call before the tool call, one after")
        self.assertIn(REDACTED, model.requests[-1].decode(), "the model was shown the redacted tool result")
        for index, body in enumerate(model.requests):
            exposures[f"model request {index + 1}"] = body.decode(errors="replace")

        # Not in any API answer, event stream, metrics, CLI output or log.
        agent = self.client.ok("GET", "/v1/agents/crm-agent", expect=200)
        self.assertEqual(agent["tools"][0]["auth"], auth, "the agent names its credential (and only names it)")
        listing = self.client.ok("GET", "/v1/secrets", expect=200)
        self.assertEqual(listing["object"], "list", listing)
        self.assertEqual([s["name"] for s in listing["data"]], [name], listing)
        self.assertEqual(self.client.ok("GET", f"/v1/secrets/{name}", expect=200), view)
        for path in ("/v1/agents/crm-agent", "/v1/agents", f"/v1/sessions/{session}",
                     f"/v1/sessions/{session}/items?limit=100", "/v1/sessions?limit=100", f"/v1/runs/{run['id']}",
                     f"/v1/runs/{run['id']}/steps?limit=1000", "/v1/secrets", f"/v1/secrets/{name}", "/metrics",
                     "/v1/audit?limit=1000", "/v1/audit/export", f"/v1/approvals?status=", "/v1/api-keys",
                     "/v1/policy"):
            resp = self.client.get(path)
            self.assertEqual(resp.status, 200, f"GET {path}: {resp}")
            exposures[f"GET {path}"] = resp.text
        items = [i["message"] for i in self.client.items(session)]
        self.assertEqual([m["role"] for m in items], ["user", "assistant", "tool", "assistant"], items)
        self.assertEqual(items[2]["content"], expected_output)
        events = read_sse(self.server.base_url, f"/v1/runs/{run['id']}/events", self.api_key)
        self.assertEqual(events[-1].event, "run_completed", events)
        sse_text = "\n".join(e.data for e in events)
        self.assertIn(REDACTED, sse_text, "the stream carries the (redacted) tool result")
        exposures["GET /v1/runs/{id}/events (SSE)"] = sse_text
        listed = self.cli_ok("secrets", "list")
        self.assertIn(name, listed.stdout, describe(listed))
        exposures["continuum secrets list"] = listed.stdout + listed.stderr
        shown = self.cli_ok("run", "steps", run["id"])
        self.assertIn(REDACTED, shown.stdout, describe(shown))
        exposures["continuum run steps"] = shown.stdout + shown.stderr
        audit = self.cli_ok("audit", "list", "--limit", "1000")
        self.assertIn("secret:write", audit.stdout, "the audit log records the credential's creation")
        exposures["continuum audit list"] = audit.stdout + audit.stderr
        exposures["server log (running)"] = self.server.log_text(tail_bytes=1 << 30)
        exposures["mock model log"] = self.mock.log_text(tail_bytes=1 << 30)
        self.assertEqual(sorted(place for place, text in exposures.items() if canary in text), [],
                         "the credential's value was exposed")

        # Not at rest: sealed in the store, whether the server runs or not.
        live = where_stored(self.server, [canary])[canary]
        self.assertEqual(self.server.stop(), 0, "SIGTERM is a clean shutdown")
        stopped = where_stored(self.server, [canary])[canary]
        self.assertEqual({"running": live, "stopped": stopped}, {"running": [], "stopped": []},
                         "the credential's value is stored readable")
        stored = self.sealed_secret_values()
        self.assertEqual(sorted(stored), [name], stored)
        self.assertTrue(stored[name].startswith(SEALED_MAGIC), f"not sealed: {stored[name][:16]!r}")
        self.assertNotIn(canary, self.server.log_text(tail_bytes=1 << 30), "the server log, after the stop")

        # After a restart the sealed value still opens, and is still what the tool gets.
        self.server.start()
        self.client = self.server.client()
        _, _, again = self.run_once("crm-agent", "once more")
        self.assertEqual(tool.requests[-1].header_values("Authorization"), [f"Bearer {canary}"])
        self.assertEqual(again["payload"]["output"], expected_output)
        self.assertNotIn(canary, self.server.log_text(tail_bytes=1 << 30))

    def test_control_scan_finds_the_credential_when_encryption_is_off(self):
        # Proves the at-rest scan above can see a secret's value: unsealed, it is found.
        self.server.stop()
        self.server = self.start_process(ContinuumServer(
            self.tmp, os.path.join(self.tmp, "data-plain"), self.api_key, self.mock.base_url,
            env={"CONTINUUM_ENCRYPTION": "false"}))
        self.client = self.server.client()
        canary = new_credential()
        self.put_secret("plain-token", canary)
        self.assertEqual(self.server.stop(), 0)
        self.assertNotEqual(where_stored(self.server, [canary])[canary], [],
                            "with encryption off the value is stored readable")

    # --- 2. a credential that is not in the vault ---------------------------------------

    def test_missing_credential_is_an_error_result_and_the_tool_is_not_called(self):
        tool = self.echoing_tool()
        self.put_secret("other-token", new_credential())  # a vault that has something, just not this
        self.vault_agent("orphan", tool, {"secret": "absent-token", "prefix": "Bearer "})
        _, run, step = self.run_once("orphan")
        self.assert_credential_unavailable(step, "absent-token")
        self.assertEqual(run["output"], "tool said " + step["payload"]["output"], "the model saw the error")
        self.assertEqual(tool.requests, [], "the tool was called without its credential")

    # --- 3. rotation and removal ------------------------------------------------------------

    def test_rotated_value_is_used_by_the_next_call_and_a_deleted_one_by_none(self):
        name, first, second = "rotating-token", new_credential(), new_credential()
        tool = self.echoing_tool()
        created = self.put_secret(name, first)
        agent = self.vault_agent("rotor", tool, {"secret": name})  # header and prefix defaults
        self.assertEqual(agent["tools"][0]["auth"], {"secret": name, "header": "Authorization", "prefix": ""}, agent)

        _, _, step = self.run_once("rotor")
        self.assertEqual(tool.requests[-1].header_values("Authorization"), [first], "no prefix by default")
        self.assertEqual(step["payload"]["output"], tool.reply_for(REDACTED))

        time.sleep(0.01)  # so that the rotation lands in a later millisecond
        rotated = self.put_secret(name, second)
        self.assertEqual(rotated["created_at_ms"], created["created_at_ms"], "a new value is not a new secret")
        self.assertGreater(rotated["updated_at_ms"], created["updated_at_ms"], (created, rotated))
        self.assertEqual(self.client.ok("GET", f"/v1/secrets/{name}", expect=200), rotated)
        self.assertEqual(self.client.ok("GET", "/v1/secrets", expect=200)["data"], [rotated])

        _, run, step = self.run_once("rotor")
        self.assertEqual(len(tool.requests), 2)
        self.assertEqual(tool.requests[-1].header_values("Authorization"), [second], "the rotated value is used")
        self.assertEqual(step["payload"]["output"], tool.reply_for(REDACTED))
        for value in (first, second):
            self.assertNotIn(value, json.dumps(self.client.steps(run["id"])))

        deleted = self.cli_ok("secrets", "delete", name)
        self.assertEqual(json.loads(deleted.stdout), {"object": "secret", "name": name, "deleted": True},
                         describe(deleted))
        self.assertEqual(self.client.ok("GET", "/v1/secrets", expect=200)["data"], [])
        _, _, step = self.run_once("rotor")
        self.assert_credential_unavailable(step, name)
        self.assertEqual(len(tool.requests), 2, "no call without the credential")

        again = self.put_secret(name, first)  # created anew
        self.assertGreaterEqual(again["created_at_ms"], rotated["updated_at_ms"], again)
        _, _, step = self.run_once("rotor")
        self.assertFalse(step["payload"]["is_error"], step)
        self.assertEqual(tool.requests[-1].header_values("Authorization"), [first])

    # --- 4. the credential in an error body ---------------------------------------------

    def test_credential_echoed_in_an_error_body_is_redacted(self):
        name, canary = "api-key", new_credential()
        tool = self.echoing_tool(header="X-Api-Key")
        tool.status = 403  # not retried: the body goes to the model as the error result
        self.put_secret(name, canary)
        self.vault_agent("rejected", tool, {"secret": name, "header": "X-Api-Key"})
        echo_at = len(tool.reply_for("")) - len(f"; {ECHO_TAIL}")  # where the value starts, after the pad
        cases = {
            "whole body shown": 0,
            # The body is cut to ERROR_BODY_SHOWN_MAX bytes for the model; put the cut in
            # the middle of the echoed credential.
            "body cut inside the credential": ERROR_BODY_SHOWN_MAX - echo_at - len(canary) // 2,
        }
        for case, pad in cases.items():
            with self.subTest(case):
                tool.pad = pad
                _, run, step = self.run_once("rejected")
                self.assertEqual(tool.requests[-1].header_values("X-Api-Key"), [canary])
                output = step["payload"]["output"]
                self.assertTrue(step["payload"]["is_error"], step)
                self.assertIn("http_403", output, step)
                if pad == 0:
                    self.assertIn(f"X-Api-Key was {REDACTED}", output, step)
                leaked = [part for part in (canary, canary[:len(canary) // 2], canary[len(canary) // 2:])
                          if part in output or part in run["output"]]
                self.assertEqual(leaked, [], f"the credential (or part of it) reached the model: {output!r}")

    # --- 5. validation ---------------------------------------------------------------------

    def test_bad_secrets_are_rejected(self):
        for body, param in (({}, "value"), ({"value": ""}, "value"), ({"value": "a\nb"}, "value"),
                            ({"value": "a\rb"}, "value"), ({"value": 5}, "value"), ({"value": None}, "value"),
                            ({"value": "x" * 16385}, "value"), ({"value": "seven77"}, "value"),
                            ({"value": "ok", "note": "x"}, "note")):
            with self.subTest(body=json.dumps(body)[:40]):
                resp = self.client.put("/v1/secrets/good-name", body)
                self.assert_error(resp, 400, "invalid_request_error", param=param)
        self.assert_error(self.client.put("/v1/secrets/good-name", raw="{not json"), 400, "invalid_request_error",
                          check_param=False)
        self.assert_error(self.client.put("/v1/secrets/good-name", raw='["value"]'), 400, "invalid_request_error",
                          check_param=False)
        for bad in ("bad%20name", "x" * 65, "dot.name", "caf%C3%A9"):
            with self.subTest(name=bad):
                resp = self.client.put(f"/v1/secrets/{bad}", {"value": "v" * 8})
                self.assert_error(resp, 400, "invalid_request_error", param="name")
        self.assertEqual(self.client.get("/v1/secrets").body["data"], [], "nothing was stored")
        # The limits themselves are fine.
        self.put_secret("x" * 64, "v" * 16384)
        self.put_secret("A-z_0", "v" * 8)  # 8 bytes: the shortest value, still redactable

        for method in ("GET", "DELETE"):
            with self.subTest(unknown=method):
                resp = self.client.request(method, "/v1/secrets/never-set")
                self.assert_error(resp, 404, "not_found_error", check_param=False)
        self.put_secret("short-lived", "value-one")
        resp = self.client.delete("/v1/secrets/short-lived")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, {"object": "secret", "name": "short-lived", "deleted": True})
        self.assert_error(self.client.get("/v1/secrets/short-lived"), 404, "not_found_error", check_param=False)
        self.assert_error(self.client.delete("/v1/secrets/short-lived"), 404, "not_found_error", check_param=False)
        self.assertEqual([s["name"] for s in self.client.get("/v1/secrets").body["data"]], ["A-z_0", "x" * 64])

        for method, path, body in (("PUT", "/v1/secrets/any", {"value": "v"}), ("GET", "/v1/secrets", None),
                                   ("GET", "/v1/secrets/A-z_0", None), ("DELETE", "/v1/secrets/A-z_0", None)):
            with self.subTest(unauthenticated=f"{method} {path}"):
                self.assertEqual(self.client.request(method, path, body=body, auth=False).status, 401)
                self.assertEqual(self.client.request(method, path, body=body, api_key="wrong-key").status, 401)
        self.assertEqual(self.client.get("/v1/secrets/A-z_0").status, 200, "still there")
        self.assertEqual(self.client.get("/v1/secrets/any").status, 404, "not created")

    def test_bad_tool_auth_is_rejected(self):
        tool = self.echoing_tool()
        base = {"type": "http", "name": "crm", "description": "d",
                "parameters": {"type": "object", "properties": {}}, "url": tool.url("crm")}
        builtin = {"type": "builtin", "name": "echo", "description": "d",
                   "parameters": {"type": "object", "properties": {}}}
        cases = [
            ({**base, "auth": {"secret": "s", "value": "inline"}}, "tools[0].auth.value"),
            ({**base, "auth": {"secret": "s", "header": "Idempotency-Key"}}, "tools[0].auth.header"),
            ({**base, "auth": {"secret": "s", "header": "content-type"}}, "tools[0].auth.header"),
            ({**base, "auth": {"secret": "s", "header": "Continuum-Run-Id"}}, "tools[0].auth.header"),
            ({**base, "auth": {"secret": "s", "header": "Bad Header"}}, "tools[0].auth.header"),
            ({**base, "auth": {"secret": "s", "prefix": "Bearer\n"}}, "tools[0].auth.prefix"),
            ({**base, "auth": {}}, "tools[0].auth.secret"),
            ({**base, "auth": {"secret": "no spaces"}}, "tools[0].auth.secret"),
            ({**base, "auth": "s"}, "tools[0].auth"),
            ({**builtin, "auth": {"secret": "s"}}, "tools[0].auth"),
        ]
        for index, (spec, param) in enumerate(cases):
            with self.subTest(auth=json.dumps(spec["auth"]), param=param):
                definition = {"name": f"bad-auth-{index}", "model": model_spec(self.mock, "call_once"),
                              "instructions": "x", "tools": [spec]}
                resp = self.client.post("/v1/agents", definition)
                self.assert_error(resp, 400, "invalid_request_error", param=param)
                self.assertNotIn("inline", resp.text, "an inline value is not echoed back")
        self.assertEqual(self.client.get("/v1/agents").body["data"], [], "no agent was created")


if __name__ == "__main__":
    unittest.main()
