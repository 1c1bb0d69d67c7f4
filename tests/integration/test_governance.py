"""Governance against the real binary: API keys, tenants taken from the credential,
policy on every API action, and policy over the effects of runs.

  authorization matrix   every route x {no token, an unknown ck_ token, garbage, a
                         revoked key, the owner (alice, member), another member (bob),
                         an admin of another tenant (carol, "acme"), the admin} ->
                         status, as a table (MATRIX) a newcomer extends by one row
  no leaks               list endpoints show a member only their own sessions and a
                         tenant nothing of another tenant's agents, sessions, secrets,
                         keys or approvals
  API keys               issued once (token only in the 201), listed without secrets,
                         revoked -> 401; other tenants only by admins of "default"
  policy API             built-in version 0; PUT as YAML text or a JSON object makes
                         versions; invalid documents are 400s naming the place;
                         /v1/policy/test explains (deny wins, require_approval on
                         args.amount > 1000, default deny, history); members may not
                         write it
  policy over effects    a denied tool call is never made and the model sees the
                         denial; count() and sum() over the session's calls; a denied
                         model call fails the run with permission_denied
  CLI                    api-keys create/list/revoke, policy set/show/versions/test
  bootstrap              without CONTINUUM_API_KEY the server issues an admin key into
                         <data>/api-key (0600), prints it once on stdout, keeps it
                         across restarts, and issues a new one if it was revoked"""

import copy
import hashlib
import http.client
import itertools
import json
import os
import re
import secrets
import stat
import string
import subprocess
import unittest
import urllib.parse

from harness import (Client, ContinuumServer, IntegrationTest, clean_env, describe, http_tool, model_spec,
                     result_for, run_cli, tool_steps, wait_until)

TOKEN_RE = re.compile(r"^ck_([0-9a-f]{16})_([0-9a-f]{48})$")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 409: "conflict_error"}
BUILT_IN_STATEMENT_IDS = ["admins-do-everything", "auditors-read-audit-and-policy", "approvers-decide-approvals",
                          "members-read-agents", "members-own-sessions-and-runs", "agents-use-tools-and-models"]
API_KEY_FIELDS = ["created_at_ms", "created_by", "id", "name", "object", "revoked_at_ms", "roles", "tenant", "user"]

# A require_approval statement added to the built-in policy where a test needs approvals.
LARGE_REFUNDS = {"id": "large-refunds", "effect": "require_approval", "principal": "agent:*",
                 "action": "tool:invoke", "resource": "tool:refund", "when": "args.amount > 1000"}


# --- helpers shared with test_approvals ------------------------------------------


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def issue_key(admin, user, roles=None, tenant=None, name=None):
    """POST /v1/api-keys as `admin` (a Client); returns the 201 body (with its token)."""
    body = {"user": user}
    if roles is not None:
        body["roles"] = roles
    if tenant is not None:
        body["tenant"] = tenant
    if name is not None:
        body["name"] = name
    resp = admin.post("/v1/api-keys", body)
    if resp.status != 201:
        raise AssertionError(f"POST /v1/api-keys {body} -> {resp.status} {resp.text[:2000]}")
    return resp.body


def client_for(server, admin, user, roles=None, tenant=None):
    """A Client authenticating as a new API key of `user`."""
    return Client(server.base_url, issue_key(admin, user, roles, tenant)["token"])


def stream_status(base_url, path, token):
    """The status of GET `path` as an SSE request, and the body when it is an error
    (a 200 stream is closed once its headers arrived)."""
    parsed = urllib.parse.urlparse(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        headers = {"Accept": "text/event-stream"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        if resp.status == 200:
            return resp.status, None
        text = resp.read().decode("utf-8", errors="replace")
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text
    finally:
        conn.close()


def approval_requested_step(client, run_id):
    steps = [s for s in client.steps(run_id) if s["kind"] == "approval_requested"]
    return steps[0] if steps else None


def wait_for_approval(client, run_id):
    """Waits until run `run_id` is waiting on an approval; returns the approval_requested step."""
    client.wait_run(run_id, statuses=("waiting",))
    return wait_until(lambda: approval_requested_step(client, run_id), message=f"approval_requested of {run_id}")


class GovernanceHelpers:
    """Mixed into IntegrationTest subclasses."""

    def put_policy(self, document, client=None, expect=201):
        resp = (client or self.client).put("/v1/policy", {"document": document})
        self.assertEqual(resp.status, expect, resp)
        return resp.body

    def built_in_document(self):
        return copy.deepcopy(self.client.ok("GET", "/v1/policy", expect=200)["document"])

    def assert_status(self, resp, status):
        """`status`, and for errors the documented shape and type."""
        self.assertEqual(resp.status, status, resp)
        if status >= 400:
            self.assert_error(resp, status, ERROR_TYPES[status], check_param=False)


# --- the authorization matrix ------------------------------------------------------

# Every row is also sent with no token, an unknown well-formed ck_ token, a garbage
# token and a revoked key: each must be 401 (authentication_error).
#
# Paths and string values in bodies are format strings over the fixtures made in
# GovernanceTest.test_authorization_matrix: {alice_session}, {alice_run}, {approval}, ... A name
# starting with "fresh_" makes a new one for each request (for rows that change
# state), so rows do not depend on each other.
#
# Principals: alice and bob are members of tenant "default"; alice owns the session
# and run; carol is an admin of tenant "acme"; admin is the configured admin key.
MATRIX = [
    # method, path, body                                                   alice  bob carol admin
    # agents
    ("GET", "/v1/agents", None,                                              200, 200, 200, 200),
    ("GET", "/v1/agents/helper", None,                                       200, 200, 404, 200),
    ("POST", "/v1/agents", {"name": "{fresh_agent_name}", "instructions": "x",
                            "model": {"provider": "openai", "model": "hello",
                                      "base_url": "{mock_base_url}"}},       403, 403, 201, 201),
    # carol's PUT makes an agent "updatable" of her own tenant (version 1)
    ("PUT", "/v1/agents/updatable", {"instructions": "v2",
                                     "model": {"provider": "openai", "model": "hello",
                                               "base_url": "{mock_base_url}"}}, 403, 403, 201, 200),
    # sessions (acme has no agent "helper": carol passes the policy, then 404)
    ("POST", "/v1/sessions", {"agent": "helper"},                            201, 201, 404, 201),
    ("POST", "/v1/sessions", {"agent": "helper", "user": "alice"},           201, 403, 404, 201),
    ("GET", "/v1/sessions", None,                                            200, 200, 200, 200),
    ("GET", "/v1/sessions/{alice_session}", None,                            200, 403, 404, 200),
    ("GET", "/v1/sessions/{alice_session}/items", None,                      200, 403, 404, 200),
    ("GET", "/v1/sessions/{alice_session}/runs", None,                       200, 403, 404, 200),
    ("DELETE", "/v1/sessions/{fresh_alice_session}", None,                   200, 403, 404, 200),
    ("POST", "/v1/sessions/{fresh_alice_session}/runs", {"input": "hi"},     202, 403, 404, 202),
    # a run in a session of its own: session:create as above, then run:create
    ("POST", "/v1/runs", {"agent": "helper", "input": "hi"},                 202, 202, 404, 202),
    ("POST", "/v1/runs", {"agent": "helper", "input": "hi", "user": "alice"}, 202, 403, 404, 202),
    # runs
    ("GET", "/v1/runs/{alice_run}", None,                                    200, 403, 404, 200),
    ("GET", "/v1/runs/{alice_run}/steps", None,                              200, 403, 404, 200),
    ("GET", "/v1/runs/{alice_run}/events", None,                             200, 403, 404, 200),
    ("POST", "/v1/runs/{fresh_alice_waiting_run}/cancel", None,              200, 403, 404, 200),
    ("POST", "/v1/runs/{alice_run}/cancel", None,                            409, 403, 404, 409),
    # the vault
    ("GET", "/v1/secrets", None,                                             403, 403, 200, 200),
    ("GET", "/v1/secrets/matrix-secret", None,                               403, 403, 404, 200),
    ("PUT", "/v1/secrets/written-secret", {"value": "not-a-real-credential"}, 403, 403, 200, 200),
    ("DELETE", "/v1/secrets/{fresh_secret}", None,                           403, 403, 404, 200),
    # encryption keys, cluster, metrics
    ("GET", "/v1/keys", None,                                                403, 403, 200, 200),
    ("POST", "/v1/keys/rotate", None,                                        403, 403, 200, 200),
    ("POST", "/v1/keys/shred", {"user": "nobody-in-particular"},             403, 403, 200, 200),
    # Server-wide: only the system tenant sees them (another tenant's admin gets 404).
    ("GET", "/v1/cluster", None,                                             403, 403, 404, 200),
    ("GET", "/metrics", None,                                                403, 403, 404, 200),
    # policy (setUp wrote versions 1 and 2 in "default"; acme has none)
    ("GET", "/v1/policy", None,                                              403, 403, 200, 200),
    ("GET", "/v1/policy/versions", None,                                     403, 403, 200, 200),
    ("GET", "/v1/policy/versions/2", None,                                   403, 403, 404, 200),
    ("POST", "/v1/policy/test", {"action": "agent:read", "resource": "agent:helper"}, 403, 403, 200, 200),
    ("PUT", "/v1/policy", {"document": "{policy_text}"},                     403, 403, 201, 201),
    # API keys (only admins of "default" issue keys for another tenant)
    ("GET", "/v1/api-keys", None,                                            403, 403, 200, 200),
    ("POST", "/v1/api-keys", {"user": "dave"},                               403, 403, 201, 201),
    ("POST", "/v1/api-keys", {"user": "dave", "tenant": "acme"},             403, 403, 201, 201),
    ("POST", "/v1/api-keys", {"user": "dave", "tenant": "globex"},           403, 403, 403, 201),
    ("DELETE", "/v1/api-keys/{fresh_key_id}", None,                          403, 403, 404, 200),
    # approvals (of alice's runs; a member may neither read nor decide them)
    ("GET", "/v1/approvals", None,                                           200, 200, 200, 200),
    ("GET", "/v1/approvals?status=pending", None,                            200, 200, 200, 200),
    ("GET", "/v1/approvals/{approval}", None,                                403, 403, 404, 200),
    ("POST", "/v1/approvals/{fresh_approval}/approve", {"comment": "ok"},   403, 403, 404, 200),
    ("POST", "/v1/approvals/{fresh_approval}/deny", None,                    403, 403, 404, 200),
    # the audit log (each tenant reads its own chain)
    ("GET", "/v1/audit", None,                                               403, 403, 200, 200),
    ("GET", "/v1/audit/export", None,                                        403, 403, 200, 200),
    ("GET", "/v1/audit/verify", None,                                        403, 403, 200, 200),
    # identity keys: the system tenant's only; the admin's 409 says the key is younger
    # than the token lifetime (rotation itself: test_identity)
    ("POST", "/v1/identity/rotate", None,                                    403, 403, 403, 409),
]

PRINCIPALS = ("alice", "bob", "carol", "admin")


class Fixtures:
    """A mapping for str.format: fixed values, and fresh_* names made on each use."""

    def __init__(self, values, factories):
        self.values = values
        self.factories = factories

    def __getitem__(self, key):
        if key in self.factories:
            return self.factories[key]()
        return self.values[key]

    def fill(self, value):
        if isinstance(value, str):
            return string.Formatter().vformat(value, (), self)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


class GovernanceTest(GovernanceHelpers, IntegrationTest):
    SCRIPTS = {
        "hello": {"steps": [{"content": "hello {{input}}"}]},
        "refund_big": {"steps": [{"tool_calls": [{"name": "refund", "arguments": {"amount": 2500}}]},
                                 {"content": "refund said {{tool_results}}"}]},
        "one_call": {"steps": [{"tool_calls": [{"name": "lookup", "arguments": {"q": "{{input}}"}}]},
                               {"content": "tool said {{tool_results}}"}]},
        "dangerous": {"steps": [{"tool_calls": [{"name": "wipe_disk", "arguments": {"target": "{{input}}"}}]},
                                {"content": "tool said {{tool_results}}"}]},
        "refunds": {"steps": [{"tool_calls": [{"name": "refund", "arguments": {"amount": 2000}}]},
                              {"tool_calls": [{"name": "refund", "arguments": {"amount": 2500}}]},
                              {"tool_calls": [{"name": "refund", "arguments": {"amount": 1000}}]},
                              {"tool_calls": [{"name": "refund", "arguments": {"amount": 500}}]},
                              {"content": "done: {{tool_results}}"}]},
    }

    def setUp(self):
        super().setUp()
        self.counter = itertools.count(1)

    def next_name(self, prefix):
        return f"{prefix}-{next(self.counter)}"

    def principals(self):
        """alice and bob (members of "default"), carol (admin of "acme"), admin."""
        alice = client_for(self.server, self.client, "alice")
        bob = client_for(self.server, self.client, "bob")
        carol = client_for(self.server, self.client, "carol", ["admin"], tenant="acme")
        return {"alice": alice, "bob": bob, "carol": carol, "admin": self.client}

    def refund_tool(self):
        return http_tool(self.tools, "refund", {"type": "object", "properties": {"amount": {"type": "number"}},
                                                "required": ["amount"]})

    def new_approval(self, alice):
        """A run of alice's that waits on an approval: (run id, approval id)."""
        session = alice.ok("POST", "/v1/sessions", {"agent": "refunder"}, expect=201)["id"]
        run = alice.ok("POST", f"/v1/sessions/{session}/runs", {"input": "refund please"}, expect=202)
        step = wait_for_approval(self.client, run["id"])
        return run["id"], step["payload"]["approval_id"]

    # --- the authorization matrix ------------------------------------------------

    def test_authorization_matrix(self):
        who = self.principals()
        alice = who["alice"]
        self.make_agent("helper", "hello")
        self.make_agent("updatable", "hello")
        self.make_agent("refunder", "refund_big", tools=[self.refund_tool()])
        document = self.built_in_document()
        document["statements"].append(LARGE_REFUNDS)
        self.assertEqual(self.put_policy(document)["version"], 1)
        self.assertEqual(self.put_policy(document)["version"], 2)
        self.assertEqual(self.client.put("/v1/secrets/matrix-secret", {"value": "value-12345"}).status, 200)

        # A session created without "user" belongs to its creator.
        alice_session = alice.ok("POST", "/v1/sessions", {"agent": "helper"}, expect=201)
        self.assertEqual(alice_session["user"], "alice", alice_session)
        alice_run = alice.ok("POST", f"/v1/sessions/{alice_session['id']}/runs", {"input": "hi", "wait": True},
                             expect=200)
        self.assertEqual(alice_run["status"], "completed", alice_run)
        _, approval = self.new_approval(alice)

        revoked = issue_key(self.client, "eve")
        self.assertEqual(self.client.delete(f"/v1/api-keys/{revoked['id']}").status, 200)
        anonymous = {"no token": None, "unknown ck_ token": f"ck_{secrets.token_hex(8)}_{secrets.token_hex(24)}",
                     "garbage token": "garbage", "revoked key": revoked["token"]}

        def fresh_alice_session():
            return alice.ok("POST", "/v1/sessions", {"agent": "helper"}, expect=201)["id"]

        def fresh_secret():
            name = self.next_name("doomed")
            self.assertEqual(self.client.put(f"/v1/secrets/{name}", {"value": "value-12345"}).status, 200)
            return name

        fixtures = Fixtures(
            {"alice_session": alice_session["id"], "alice_run": alice_run["id"], "approval": approval,
             "mock_base_url": self.mock.base_url, "policy_text": json.dumps(document)},
            {"fresh_agent_name": lambda: self.next_name("new-agent"),
             "fresh_alice_session": fresh_alice_session,
             "fresh_alice_waiting_run": lambda: self.new_approval(alice)[0],
             "fresh_approval": lambda: self.new_approval(alice)[1],
             "fresh_secret": fresh_secret,
             "fresh_key_id": lambda: issue_key(self.client, self.next_name("temp"))["id"]})

        for method, path_template, body_template, *expected in MATRIX:
            for name, status in zip(PRINCIPALS, expected):
                path, body = fixtures.fill(path_template), fixtures.fill(body_template)
                with self.subTest(method=method, path=path_template, principal=name):
                    self.check_request(who[name], method, path, body, status)
            path, body = fixtures.fill(path_template), fixtures.fill(body_template)
            for name, token in anonymous.items():
                with self.subTest(method=method, path=path_template, principal=name):
                    self.check_request(Client(self.server.base_url, token), method, path, body, 401)

    def check_request(self, client, method, path, body, expected):
        if path.endswith("/events"):
            status, error = stream_status(self.server.base_url, path, client.api_key)
            self.assertEqual(status, expected, error)
            if expected >= 400:
                self.assertEqual(error["error"]["type"], ERROR_TYPES[expected], error)
            return
        resp = client.request(method, path, body=body, auth=client.api_key is not None)
        self.assert_status(resp, expected)

    # --- nothing leaks through lists -------------------------------------------------

    def test_lists_show_nothing_of_other_users_or_tenants(self):
        who = self.principals()
        alice, bob, carol = who["alice"], who["bob"], who["carol"]
        self.make_agent("helper", "hello")
        self.assertEqual(self.client.put("/v1/secrets/default-secret", {"value": "value-12345"}).status, 200)
        carol.ok("POST", "/v1/agents", {"name": "acme-agent", "model": model_spec(self.mock, "hello")}, expect=201)
        self.assertEqual(carol.put("/v1/secrets/acme-secret", {"value": "value-12345"}).status, 200)
        carol_extra_key = issue_key(carol, "acme-bot")
        self.assertEqual(carol_extra_key["tenant"], "acme")

        sessions = {"alice": {alice.ok("POST", "/v1/sessions", {"agent": "helper"}, expect=201)["id"]
                              for _ in range(3)},
                    "bob": {bob.ok("POST", "/v1/sessions", {"agent": "helper"}, expect=201)["id"]},
                    "admin": {self.client.create_session("helper")["id"]},
                    "carol": {carol.ok("POST", "/v1/sessions", {"agent": "acme-agent"}, expect=201)["id"]}}
        admin_for_alice = self.client.ok("POST", "/v1/sessions", {"agent": "helper", "user": "alice"}, expect=201)
        self.assertEqual(admin_for_alice["user"], "alice")
        sessions["alice"].add(admin_for_alice["id"])

        def listed(client):
            page = client.ok("GET", "/v1/sessions?limit=1000", expect=200)
            self.assertFalse(page["has_more"], page)
            return {s["id"]: s["user"] for s in page["data"]}

        self.assertEqual(listed(alice), {sid: "alice" for sid in sessions["alice"]}, "alice sees only her own")
        self.assertEqual(listed(bob), {sid: "bob" for sid in sessions["bob"]}, "bob sees only his own")
        self.assertEqual(set(listed(carol)), sessions["carol"], "carol sees only acme's")
        self.assertEqual(set(listed(self.client)), sessions["alice"] | sessions["bob"] | sessions["admin"],
                         "the admin sees every session of its tenant, none of acme's")
        # Paging a member's list never reaches past their own sessions.
        page = alice.ok("GET", "/v1/sessions?limit=2", expect=200)
        self.assertEqual(len(page["data"]), 2)
        self.assertTrue(page["has_more"], page)
        rest = alice.ok("GET", f"/v1/sessions?limit=100&after={page['next_cursor']}", expect=200)
        self.assertEqual({s["id"] for s in page["data"] + rest["data"]}, sessions["alice"])

        def names(client, path, key="name"):
            return {entry[key] for entry in client.ok("GET", path, expect=200)["data"]}

        self.assertEqual(names(carol, "/v1/agents"), {"acme-agent"})
        self.assertEqual(names(alice, "/v1/agents"), {"helper"})
        self.assertEqual(names(self.client, "/v1/agents"), {"helper"})
        self.assertEqual(names(carol, "/v1/secrets"), {"acme-secret"})
        self.assertEqual(names(self.client, "/v1/secrets"), {"default-secret"})

        admin_keys = self.client.ok("GET", "/v1/api-keys", expect=200)["data"]
        carol_keys = carol.ok("GET", "/v1/api-keys", expect=200)["data"]
        self.assertEqual({k["user"] for k in admin_keys}, {"alice", "bob"})
        self.assertEqual({k["user"] for k in carol_keys}, {"carol", "acme-bot"})
        self.assertEqual({k["tenant"] for k in carol_keys}, {"acme"})
        for key in admin_keys + carol_keys:
            self.assertEqual(sorted(key), API_KEY_FIELDS, "a listed key shows no token, secret or hash")
        listing = self.client.get("/v1/api-keys").text + carol.get("/v1/api-keys").text
        for token in (alice.api_key, bob.api_key, carol.api_key, carol_extra_key["token"]):
            self.assertNotIn(token.split("_")[2], listing, "no secret part of a token is listed")

        # Another tenant's ids answer 404, also for an admin of that tenant.
        some_alice_session = next(iter(sessions["alice"]))
        self.assert_status(carol.get(f"/v1/sessions/{some_alice_session}"), 404)
        self.assert_status(self.client.get(f"/v1/sessions/{next(iter(sessions['carol']))}"), 404)
        self.assert_status(self.client.get("/v1/agents/acme-agent"), 404)
        self.assert_status(self.client.get("/v1/secrets/acme-secret"), 404)
        self.assert_status(carol.delete(f"/v1/api-keys/{admin_keys[0]['id']}"), 404)
        # A key without any role of the built-in policy cannot list sessions at all.
        nobody = client_for(self.server, self.client, "nobody", ["guest"])
        self.assert_status(nobody.get("/v1/sessions"), 403)

    # --- API keys ----------------------------------------------------------------

    def test_api_keys_are_shown_once_and_revocable(self):
        resp = self.client.post("/v1/api-keys", {"user": "alice", "name": "alice's laptop"})
        self.assertEqual(resp.status, 201, resp)
        key = resp.body
        self.assertEqual(sorted(key), sorted(API_KEY_FIELDS + ["token"]), key)
        self.assertEqual((key["object"], key["tenant"], key["user"], key["roles"], key["name"], key["created_by"],
                          key["revoked_at_ms"]),
                         ("api_key", "default", "alice", ["member"], "alice's laptop", "admin", None), key)
        match = TOKEN_RE.match(key["token"])
        self.assertIsNotNone(match, key["token"])
        self.assertEqual(key["id"], "key_" + match.group(1), "the id is the token's public part")

        alice = Client(self.server.base_url, key["token"])
        self.assertEqual(alice.get("/v1/agents").status, 200, "the key authenticates")
        listed = {k["id"]: k for k in self.client.ok("GET", "/v1/api-keys", expect=200)["data"]}
        self.assertEqual(listed[key["id"]], {k: v for k, v in key.items() if k != "token"})

        # Roles given are the key's roles; other tenants only for admins of "default".
        approver = issue_key(self.client, "paula", ["approver", "member"])
        self.assertEqual(approver["roles"], ["approver", "member"])
        acme_admin = issue_key(self.client, "carol", ["admin"], tenant="acme")
        self.assertEqual(acme_admin["tenant"], "acme")
        carol = Client(self.server.base_url, acme_admin["token"])
        self.assert_status(carol.post("/v1/api-keys", {"user": "x", "tenant": "default"}), 403)
        self.assertEqual(issue_key(carol, "acme-user")["tenant"], "acme", "a tenant admin issues keys in its tenant")

        # Validation.
        for body, param in [({}, "user"), ({"user": "has space"}, "user"), ({"user": "u", "roles": "admin"}, "roles"),
                            ({"user": "u", "roles": [1]}, "roles"), ({"user": "u", "token": "x"}, "token"),
                            ({"user": "u", "tenant": "bad tenant"}, "tenant")]:
            with self.subTest(body=body):
                self.assert_error(self.client.post("/v1/api-keys", body), 400, "invalid_request_error", param)

        # Revocation: 401 from then on, shown in the list; a second revoke is 404.
        resp = self.client.delete(f"/v1/api-keys/{key['id']}")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, {"object": "api_key", "id": key["id"], "revoked": True})
        self.assert_error(alice.get("/v1/agents"), 401, "authentication_error", check_param=False)
        listed = {k["id"]: k for k in self.client.ok("GET", "/v1/api-keys", expect=200)["data"]}
        self.assertIsInstance(listed[key["id"]]["revoked_at_ms"], int)
        self.assert_status(self.client.delete(f"/v1/api-keys/{key['id']}"), 404)
        self.assert_status(self.client.delete("/v1/api-keys/key_0000000000000000"), 404)
        # A token with the right id but the wrong secret is refused too.
        other = issue_key(self.client, "mallory")
        forged = "ck_" + TOKEN_RE.match(other["token"]).group(1) + "_" + "0" * 48
        self.assert_error(Client(self.server.base_url, forged).get("/v1/agents"), 401, "authentication_error",
                          check_param=False)

    # --- the policy API ------------------------------------------------------------

    POLICY_YAML = """\
statements:
  - id: admins
    effect: allow
    principal: role:admin
    action: "*"
    resource: "*"
  - id: agents-use-tools
    effect: allow
    principal: "agent:*"
    action: [tool:invoke, model:invoke]
  - id: large-refunds
    effect: require_approval
    principal: "agent:*"
    action: tool:invoke
    resource: tool:refund
    when: args.amount > 1000
  - id: no-wire-transfers
    effect: deny
    principal: "*"
    action: tool:invoke
    resource: tool:wire_transfer
  - id: refund-rate
    effect: deny
    principal: "*"
    action: tool:invoke
    resource: tool:refund
    when: count("refund", "24h") >= 3
"""

    def test_policy_versions_and_validation(self):
        built_in = self.client.ok("GET", "/v1/policy", expect=200)
        self.assertEqual((built_in["object"], built_in["version"], built_in["built_in"], built_in["created_at_ms"],
                          built_in["created_by"]), ("policy", 0, True, None, None), built_in)
        self.assertEqual([s["id"] for s in built_in["document"]["statements"]], BUILT_IN_STATEMENT_IDS)
        self.assertEqual(self.client.ok("GET", "/v1/policy/versions", expect=200)["data"], [])
        self.assert_status(self.client.get("/v1/policy/versions/1"), 404)

        v1 = self.put_policy(self.POLICY_YAML)
        self.assertEqual((v1["object"], v1["version"], v1["built_in"], v1["created_by"]), ("policy", 1, False, "admin"))
        self.assertIsInstance(v1["created_at_ms"], int)
        self.assertEqual([s["id"] for s in v1["document"]["statements"]],
                         ["admins", "agents-use-tools", "large-refunds", "no-wire-transfers", "refund-rate"])
        large = v1["document"]["statements"][2]
        self.assertEqual((large["effect"], large["when"]), ("require_approval", "args.amount > 1000"))
        self.assertEqual(self.client.ok("GET", "/v1/policy", expect=200), v1, "a local PUT is in force at once")

        as_json = {"statements": [{"id": "admins", "effect": "allow", "principal": "role:admin", "action": "*"}]}
        v2 = self.put_policy(as_json)
        self.assertEqual(v2["version"], 2)
        self.assertEqual([s["id"] for s in v2["document"]["statements"]], ["admins"])
        v3 = self.put_policy(json.dumps(as_json))  # JSON as text
        self.assertEqual(v3["version"], 3)

        versions = self.client.ok("GET", "/v1/policy/versions", expect=200)["data"]
        self.assertEqual(sorted(v["version"] for v in versions), [1, 2, 3])
        for version in versions:
            self.assertEqual((version["object"], version["created_by"]), ("policy_version", "admin"), version)
        self.assertEqual(self.client.ok("GET", "/v1/policy/versions/1", expect=200), v1)
        self.assertEqual(self.client.ok("GET", "/v1/policy/versions/2", expect=200)["document"], v2["document"])
        for missing in ("4", "0", "-1", "abc"):
            with self.subTest(version=missing):
                self.assert_status(self.client.get(f"/v1/policy/versions/{missing}"), 404)

        invalid = [
            ({"document": {"statements": [{"effect": "allow", "principal": "*", "action": "*", "principals": "*"}]}},
             "statements[0].principals"),
            ({"document": {"statements": [{"effect": "permit", "principal": "*", "action": "*"}]}},
             "statements[0].effect"),
            ({"document": {"statements": [{"effect": "allow", "action": "*"}]}}, "statements[0].principal"),
            ({"document": {"statements": [{"effect": "allow", "principal": "*", "action": "*"},
                                          {"effect": "deny", "principal": "*", "action": "x", "when": "args.a >"}]}},
             "statements[1].when"),
            ({"document": {"statements": [{"effect": "allow", "principal": "*", "action": "*",
                                           "when": "unknown_fn(1) == 1"}]}}, "statements[0].when"),
            ({"document": {"statements": [{"effect": "allow", "principal": "*", "action": "*",
                                           "when": 'count("refund", "24hours") < 2'}]}}, "statements[0].when"),
            ({"document": {"statements": [{"id": "same", "effect": "allow", "principal": "*", "action": "*"},
                                          {"id": "same", "effect": "deny", "principal": "*", "action": "*"}]}},
             "statements[1].id"),
            ({"document": {"statements": [{"effect": "allow", "principal": [], "action": "*"}]}},
             "statements[0].principal"),
            ({"document": {"rules": []}}, "rules"),
            ({"document": {}}, "statements"),
            ("statements:\n  - effect: allow\n    principal: '*'\n    action: '*'\n    condition: x\n",
             "statements[0].condition"),
            ({}, "document"),
            ({"document": 42}, "document"),
            ({"document": {"statements": []}, "extra": 1}, "extra"),
        ]
        for body, param in invalid:
            if isinstance(body, str):
                body = {"document": body}
            with self.subTest(body=body):
                self.assert_error(self.client.put("/v1/policy", body), 400, "invalid_request_error", param)
        # Not even YAML: 400 without a place to name.
        for text in ("statements: [unclosed", "{not json"):
            with self.subTest(document=text):
                self.assert_error(self.client.put("/v1/policy", {"document": text}), 400, "invalid_request_error",
                                  check_param=False)
        self.assertEqual(self.client.ok("GET", "/v1/policy", expect=200)["version"], 3, "no invalid one was stored")

    def test_policy_test_explains_decisions(self):
        version = self.put_policy(self.POLICY_YAML)["version"]

        def decide(**body):
            return self.client.ok("POST", "/v1/policy/test", body, expect=200)

        held = decide(action="tool:invoke", resource="tool:refund", user="alice", agent="support",
                      args={"amount": 2500})
        self.assertEqual((held["object"], held["decision"], held["statement"], held["policy_version"]),
                         ("policy_decision", "require_approval", "large-refunds", version), held)
        self.assertTrue(held["reason"], held)
        self.assertEqual(len(held["trace"]), 5, "one line per statement")
        for statement_id, line in zip(["admins", "agents-use-tools", "large-refunds", "no-wire-transfers",
                                       "refund-rate"], held["trace"]):
            self.assertTrue(line.startswith(statement_id + " ("), line)
        self.assertIn("applies", held["trace"][2])

        small = decide(action="tool:invoke", resource="tool:refund", user="alice", agent="support",
                       args={"amount": 500})
        self.assertEqual((small["decision"], small["statement"]), ("allow", "agents-use-tools"), small)
        self.assertIn("when is false", small["trace"][2])

        # An explicit deny wins over the allow that also applies.
        wire = decide(action="tool:invoke", resource="tool:wire_transfer", agent="support", args={"amount": 5})
        self.assertEqual((wire["decision"], wire["statement"]), ("deny", "no-wire-transfers"), wire)
        self.assertTrue(wire["trace"][1].startswith("agents-use-tools (allow): applies"), wire["trace"])

        # ... and over require_approval: the fourth refund of the day is denied, large or not.
        busy = decide(action="tool:invoke", resource="tool:refund", agent="support", args={"amount": 2500},
                      history={"refund": {"count": 3}})
        self.assertEqual((busy["decision"], busy["statement"]), ("deny", "refund-rate"), busy)
        calm = decide(action="tool:invoke", resource="tool:refund", agent="support", args={"amount": 20},
                      history={"refund": {"count": 2}})
        self.assertEqual(calm["decision"], "allow", calm)

        # Nothing matches: denied by default, no statement named.
        nothing = decide(action="tool:invoke", resource="tool:refund", user="alice", roles=["member"])
        self.assertEqual((nothing["decision"], nothing["statement"]), ("deny", None), nothing)
        self.assertIn("no statement allows tool:invoke on tool:refund", nothing["reason"])
        # The caller's own roles by default: the admin may do anything.
        mine = decide(action="policy:write", resource="policy:*")
        self.assertEqual((mine["decision"], mine["statement"]), ("allow", "admins"), mine)

        # An unsaved document is tested instead of the one in force.
        draft = decide(action="tool:invoke", resource="tool:refund", agent="support", args={"amount": 2500},
                       document={"statements": [{"id": "open", "effect": "allow", "principal": "*", "action": "*"}]})
        self.assertEqual((draft["decision"], draft["statement"], draft["policy_version"]), ("allow", "open", None))
        # A sum rule with a described history.
        budget = {"statements": [{"id": "budget", "effect": "allow", "principal": "agent:*", "action": "tool:invoke",
                                  "when": 'sum("refund", "amount", "24h") + args.amount <= 5000'}]}
        within = decide(action="tool:invoke", resource="tool:refund", agent="a", args={"amount": 1000},
                        history={"refund": {"count": 2, "sum": {"amount": 4000}}}, document=budget)
        over = decide(action="tool:invoke", resource="tool:refund", agent="a", args={"amount": 1001},
                      history={"refund": {"count": 2, "sum": {"amount": 4000}}}, document=budget)
        self.assertEqual((within["decision"], over["decision"]), ("allow", "deny"), (within, over))

        self.assert_error(self.client.post("/v1/policy/test", {"resource": "x"}), 400, "invalid_request_error",
                          "action")
        self.assert_error(self.client.post("/v1/policy/test", {"action": "a", "resource": "r", "document": {}}),
                          400, "invalid_request_error", "statements")

    def test_members_cannot_write_or_read_the_policy(self):
        alice = client_for(self.server, self.client, "alice")
        auditor = client_for(self.server, self.client, "audrey", ["auditor"])
        document = {"statements": [{"id": "everyone", "effect": "allow", "principal": "*", "action": "*"}]}
        self.assert_status(alice.put("/v1/policy", {"document": document}), 403)
        self.assert_status(alice.get("/v1/policy"), 403)
        self.assert_status(auditor.put("/v1/policy", {"document": document}), 403)
        self.assertEqual(auditor.ok("GET", "/v1/policy", expect=200)["version"], 0, "auditors read the policy")
        self.assertEqual(self.client.ok("GET", "/v1/policy", expect=200)["version"], 0, "nothing was written")
        self.assert_status(alice.put("/v1/agents/x", {"model": model_spec(self.mock, "hello")}), 403)

        # A tenant's policy binds its API: after a PUT that lets members write agents, alice may.
        document = self.built_in_document()
        document["statements"].append({"id": "members-write-agents", "effect": "allow", "principal": "role:member",
                                       "action": "agent:write", "resource": "agent:team-*"})
        self.put_policy(document)
        self.assertEqual(alice.put("/v1/agents/team-bot", {"model": model_spec(self.mock, "hello")}).status, 201)
        self.assert_status(alice.put("/v1/agents/other-bot", {"model": model_spec(self.mock, "hello")}), 403)

    def test_require_approval_or_deny_on_an_api_action_is_a_403_naming_the_statement(self):
        document = self.built_in_document()
        document["statements"] += [
            {"id": "agent-changes-need-review", "effect": "require_approval", "principal": "*",
             "action": "agent:write", "resource": "agent:prod-*"},
            {"id": "no-secret-reads", "effect": "deny", "principal": "*", "action": "secret:read"}]
        self.put_policy(document)
        resp = self.client.post("/v1/agents", {"name": "prod-bot", "model": model_spec(self.mock, "hello")})
        self.assert_status(resp, 403)
        self.assertIn("agent-changes-need-review", resp.body["error"]["message"])
        resp = self.client.get("/v1/secrets")
        self.assert_status(resp, 403)
        self.assertIn("no-secret-reads", resp.body["error"]["message"], "an explicit deny beats admins' allow")
        self.assertEqual(self.client.post("/v1/agents", {"name": "dev-bot",
                                                         "model": model_spec(self.mock, "hello")}).status, 201)

    # --- policy over the effects of runs -----------------------------------------------

    def agents_policy(self, *tool_statements, models=True):
        """Admins do everything; agents use their model (unless `models` is false); plus these."""
        statements = [{"id": "admins", "effect": "allow", "principal": "role:admin", "action": "*"}]
        if models:
            statements.append({"id": "models", "effect": "allow", "principal": "agent:*", "action": "model:invoke"})
        return self.put_policy({"statements": statements + list(tool_statements)})

    def test_denied_tool_is_never_called_and_the_model_sees_why(self):
        self.agents_policy({"id": "tools", "effect": "allow", "principal": "agent:*", "action": "tool:invoke"},
                           {"id": "no-wiping", "effect": "deny", "principal": "agent:*", "action": "tool:invoke",
                            "resource": "tool:wipe_disk"})
        self.make_agent("janitor", "dangerous", tools=[http_tool(self.tools, "wipe_disk")])
        run = self.client.start_run(self.new_session("janitor"), "/dev/sda", wait=True)
        self.assertEqual(run["status"], "completed", run)
        (step,) = tool_steps(self.client.steps(run["id"]))
        payload = step["payload"]
        self.assertTrue(payload["is_error"], step)
        self.assertIs(payload.get("denied"), True, step)
        self.assertTrue(payload["output"].startswith("error: the call was denied by policy: "), step)
        self.assertIn("no-wiping", payload["output"])
        self.assertEqual(run["output"], "tool said " + payload["output"], "the model saw the denial as the result")
        stats = self.tools.stats()
        self.assertEqual(stats["deliveries"], 0, "the tool was never called")
        self.assertEqual(self.tools.ledger(), {})

    def test_count_rule_denies_the_third_call_in_a_session(self):
        self.agents_policy({"id": "two-lookups-a-day", "effect": "allow", "principal": "agent:*",
                            "action": "tool:invoke", "resource": "tool:lookup",
                            "when": 'count("lookup", "24h") < 2'})
        self.make_agent("looker", "one_call", tools=[http_tool(self.tools, "lookup")])
        session = self.new_session("looker")
        outputs = []
        for n in range(3):
            run = self.client.start_run(session, f"q{n}", wait=True)
            self.assertEqual(run["status"], "completed", run)
            (step,) = tool_steps(self.client.steps(run["id"]))
            outputs.append(step["payload"])
        self.assertEqual([p["output"] for p in outputs[:2]], [result_for("lookup", {"q": "q0"}),
                                                              result_for("lookup", {"q": "q1"})])
        self.assertTrue(outputs[2]["is_error"] and outputs[2].get("denied"), outputs[2])
        self.assertIn("no statement allows tool:invoke on tool:lookup", outputs[2]["output"])
        self.assertEqual(self.tools.stats()["tools"]["lookup"]["applied"], 2)
        # The count is per session: a new session may look things up again.
        run = self.client.start_run(self.new_session("looker"), "fresh", wait=True)
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertFalse(step["payload"]["is_error"], step)
        self.assertEqual(self.tools.stats()["tools"]["lookup"]["applied"], 3)

    def test_sum_rule_keeps_a_refund_budget(self):
        self.agents_policy({"id": "refund-budget", "effect": "allow", "principal": "agent:*",
                            "action": "tool:invoke", "resource": "tool:refund",
                            "when": 'sum("refund", "amount", "24h") + args.amount <= 5000'})
        self.make_agent("refunder", "refunds", tools=[self.refund_tool()])
        run = self.client.start_run(self.new_session("refunder"), "refund all", wait=True)
        self.assertEqual(run["status"], "completed", run)
        steps = tool_steps(self.client.steps(run["id"]))
        amounts = [json.loads(s["payload"]["arguments"])["amount"] for s in steps]
        self.assertEqual(amounts, [2000, 2500, 1000, 500])
        self.assertEqual([bool(s["payload"].get("denied")) for s in steps], [False, False, True, False],
                         "4500 + 1000 is over budget; a denied call does not count, so 4500 + 500 fits")
        applied = sorted(record["args"]["amount"] for record in self.tools.ledger().values()
                         if record["applied"])
        self.assertEqual(applied, [500, 2000, 2500])
        self.assertEqual(self.tools.stats()["deliveries"], 3)

    def test_denied_model_call_fails_the_run(self):
        self.agents_policy({"id": "tools", "effect": "allow", "principal": "agent:*", "action": "tool:invoke"},
                           models=False)
        self.make_agent("mute", "hello")
        run = self.client.start_run(self.new_session("mute"), "hi", wait=True)
        self.assertEqual(run["status"], "failed", run)
        self.assertEqual(run["error"]["code"], "permission_denied", run)
        self.assertEqual(self.mock.stats()["requests_total"], 0, "the model was never called")

    # --- the CLI -----------------------------------------------------------------------

    def cli_ok(self, *args, api_key=None):
        result = self.cli(*args) if api_key is None else run_cli(
            [*args, "--server", self.server.base_url, "--api-key", api_key], clean_env(), self.tmp)
        self.assertEqual(result.returncode, 0, describe(result))
        return result

    def test_cli_api_keys(self):
        created = json.loads(self.cli_ok("api-keys", "create", "--user", "frank", "--role", "member",
                                         "--role", "approver", "--name", "ci").stdout)
        self.assertEqual((created["user"], created["roles"], created["name"], created["tenant"]),
                         ("frank", ["member", "approver"], "ci", "default"), created)
        self.assertRegex(created["token"], TOKEN_RE)
        frank = Client(self.server.base_url, created["token"])
        self.assertEqual(frank.get("/v1/agents").status, 200)

        acme = json.loads(self.cli_ok("api-keys", "create", "--user", "carol", "--role", "admin",
                                      "--tenant", "acme").stdout)
        self.assertEqual(acme["tenant"], "acme")
        default_role = json.loads(self.cli_ok("api-keys", "create", "--user", "gina").stdout)
        self.assertEqual(default_role["roles"], ["member"])

        listing = self.cli_ok("api-keys", "list")
        listed = json.loads(listing.stdout)["data"]
        self.assertEqual({k["id"] for k in listed}, {created["id"], default_role["id"]}, "acme's key is not listed")
        self.assertNotIn(created["token"], listing.stdout)
        self.assertNotIn(created["token"].split("_")[2], listing.stdout)

        revoked = json.loads(self.cli_ok("api-keys", "revoke", created["id"]).stdout)
        self.assertEqual(revoked, {"object": "api_key", "id": created["id"], "revoked": True})
        self.assert_status(frank.get("/v1/agents"), 401)
        again = self.cli("api-keys", "revoke", created["id"])
        self.assertEqual(again.returncode, 1, describe(again))
        self.assertIn("error:", again.stderr)

        # A member's key cannot issue keys: the CLI fails with the server's message.
        gina = run_cli(["api-keys", "create", "--user", "x", "--server", self.server.base_url, "--api-key",
                        default_role["token"]], clean_env(), self.tmp)
        self.assertEqual(gina.returncode, 1, describe(gina))
        self.assertIn("may not apikey:write", gina.stderr)

    def test_cli_policy(self):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.POLICY_YAML)
        shown = json.loads(self.cli_ok("policy", "show").stdout)
        self.assertEqual((shown["version"], shown["built_in"]), (0, True))

        stored = json.loads(self.cli_ok("policy", "set", path).stdout)
        self.assertEqual((stored["version"], stored["built_in"]), (1, False))
        shown = json.loads(self.cli_ok("policy", "show").stdout)
        self.assertEqual(shown["version"], 1)
        self.assertEqual(shown["document"]["statements"][2]["id"], "large-refunds")
        versions = json.loads(self.cli_ok("policy", "versions").stdout)["data"]
        self.assertEqual([v["version"] for v in versions], [1])

        # `policy test` prints plain text for people: the decision, the reason, a trace line
        # per statement (indented), with no JSON quoting.
        result = self.cli_ok("policy", "test", "--action", "tool:invoke", "--resource", "tool:refund",
                             "--agent", "support", "--user", "alice", "--args", '{"amount": 2500}')
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), 2 + 5, "decision, reason and a trace line per statement")
        with self.subTest(output="decision line"):
            self.assertEqual(lines[0], "decision: require_approval (statement large-refunds)", result.stdout)
        with self.subTest(output="reason line"):
            self.assertEqual(lines[1], "reason: statement 'large-refunds' requires approval for tool:invoke on "
                                       "tool:refund", result.stdout)
        with self.subTest(output="trace lines"):
            self.assertTrue(lines[4].startswith("  large-refunds (require_approval): applies: "), result.stdout)
            self.assertTrue(lines[2].startswith("  admins (allow): does not apply: "), result.stdout)

        result = self.cli_ok("policy", "test", "--action", "tool:invoke", "--resource", "tool:refund",
                             "--agent", "support", "--args", '{"amount": 5}', "--history", '{"refund": {"count": 3}}')
        with self.subTest(output="deny by a history rule"):
            self.assertTrue(result.stdout.startswith("decision: deny (statement refund-rate)\n"), result.stdout)

        result = self.cli_ok("policy", "test", "--action", "session:read", "--resource", "session:s1",
                             "--user", "alice", "--role", "member")
        with self.subTest(output="default deny"):
            self.assertTrue(result.stdout.startswith("decision: deny\nreason: no statement allows session:read"),
                            result.stdout)

        # --file tests an unsaved policy; the one in force stays.
        draft = os.path.join(self.tmp, "draft.yaml")
        with open(draft, "w", encoding="utf-8") as f:
            f.write("statements:\n  - id: members-read-sessions\n    effect: allow\n    principal: role:member\n"
                    "    action: session:read\n")
        result = self.cli_ok("policy", "test", "--action", "session:read", "--resource", "session:s1",
                             "--user", "alice", "--role", "member", "--file", draft)
        with self.subTest(output="--file"):
            self.assertTrue(result.stdout.startswith("decision: allow (statement members-read-sessions)\n"),
                            result.stdout)
        self.assertIn("members-read-sessions", result.stdout)
        self.assertEqual(self.client.ok("GET", "/v1/policy", expect=200)["version"], 1)

        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("statements:\n  - effect: maybe\n    principal: '*'\n    action: '*'\n")
        result = self.cli("policy", "set", bad)
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertIn("statements[0].effect", result.stderr)
        self.assertEqual(self.client.ok("GET", "/v1/policy", expect=200)["version"], 1)

    # --- the bootstrap admin key -----------------------------------------------------------

    def test_bootstrap_key_without_a_configured_api_key(self):
        server = self.start_process(BootstrapServer(self.tmp, os.path.join(self.tmp, "boot-data")))
        key_file = os.path.join(server.data_dir, "api-key")
        mode = stat.S_IMODE(os.stat(key_file).st_mode)
        self.assertEqual(mode, 0o600, oct(mode))
        with open(key_file, encoding="utf-8") as f:
            token = f.read().strip()
        self.assertRegex(token, TOKEN_RE)
        self.assertEqual(server.stdout_of_start(1).count(token), 1, server.stdout_of_start(1))
        self.assertNotIn(token, server.log_text(10**7), "the token is printed on stdout, not logged")

        admin = Client(server.base_url, token)
        keys = admin.ok("GET", "/v1/api-keys", expect=200)["data"]
        self.assertEqual([(k["user"], k["roles"], k["tenant"], k["name"]) for k in keys],
                         [("admin", ["admin"], "default", "bootstrap")])
        acme = issue_key(admin, "carol", ["admin"], tenant="acme")  # only the system tenant's admins may
        self.assertEqual(acme["tenant"], "acme")
        self.assert_status(Client(server.base_url, self.api_key).get("/v1/agents"), 401)
        self.assert_status(Client(server.base_url, None).get("/v1/agents"), 401)
        # The CLI reads the key from the data directory.
        result = run_cli(["api-keys", "list", "--server", server.base_url, "--data", server.data_dir], clean_env(),
                         self.tmp)
        self.assertEqual(result.returncode, 0, describe(result))

        server.restart()
        admin = Client(server.base_url, token)
        self.assertNotIn(token, server.stdout_of_start(2), "not printed again")
        self.assertNotIn("ck_", server.stdout_of_start(2))
        with open(key_file, encoding="utf-8") as f:
            self.assertEqual(f.read().strip(), token, "the same key after a restart")
        self.assertEqual(len(admin.ok("GET", "/v1/api-keys", expect=200)["data"]), 1, "no second key was issued")

        # Revoked, it is replaced at the next start (and the new one printed once).
        self.assertEqual(admin.delete(f"/v1/api-keys/{keys[0]['id']}").status, 200)
        self.assert_status(admin.get("/v1/agents"), 401)
        server.restart()
        with open(key_file, encoding="utf-8") as f:
            new_token = f.read().strip()
        self.assertNotEqual(new_token, token)
        self.assertEqual(server.stdout_of_start(3).count(new_token), 1)
        self.assertEqual(Client(server.base_url, new_token).get("/v1/agents").status, 200)


class BootstrapServer(ContinuumServer):
    """`continuum serve` without CONTINUUM_API_KEY; its stdout goes to its own file
    (one per start), apart from the log on stderr."""

    def __init__(self, log_dir, data_dir):
        super().__init__(log_dir, data_dir, api_key=None)
        self.name = "continuum-bootstrap"
        self.log_path = os.path.join(log_dir, "continuum-bootstrap.stderr.log")
        self.log_dir = log_dir

    def environment(self):
        env = super().environment()
        env.pop("CONTINUUM_API_KEY", None)
        return env

    def stdout_path(self, start):
        return os.path.join(self.log_dir, f"continuum-bootstrap.stdout.{start}.log")

    def stdout_of_start(self, start):
        with open(self.stdout_path(start), encoding="utf-8", errors="replace") as f:
            return f.read()

    def _spawn(self, argv, env=None):
        self._log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as log, open(self.stdout_path(self.starts + 1), "wb") as out:
            log.write(f"\n===== start {' '.join(argv)} (no CONTINUUM_API_KEY) =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log, env=env)


if __name__ == "__main__":
    unittest.main()
