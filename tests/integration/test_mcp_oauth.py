"""OAuth 2.1 for HTTP MCP servers, end to end: the real binary, a mock model that calls an
MCP tool, and tests/support/mcp_test_server.py in --oauth mode (the MCP endpoint is a
protected resource, and the same port is its authorization server: dynamic client
registration, PKCE S256, resource indicators, rotating refresh tokens, access tokens it
refuses once expired). The test plays the administrator's browser: it opens the
authorization URL without following redirects, then opens the Location (Continuum's
public callback) itself.

  before authorization  the tool listing answers 409 "needs authorization"; a run's call
                        of the server's tool is an error result saying so, and never
                        reaches the server; GET .../authorization says authorized false.
  authorizing           `continuum mcp authorize test --agent A` prints the URL (PKCE S256,
                        state, scope, resource, Continuum's callback as redirect URI); the
                        callback answers 200; the client registered itself once and got
                        its tokens with the authorization_code grant; the listing and a
                        run's call now work; GET .../authorization (and `mcp authorization`)
                        shows authorized, refreshable, the scope, the issuer and client id,
                        and no token or client secret; the same state cannot be used twice.
  restart               after a clean restart on the same data dir a run succeeds with the
                        tokens sealed in the vault: no 401, no token request, nobody
                        authorizes again; no issued token nor the client secret is at rest
                        in clear (every file of the data dir, or a pg_dump).
  forget                `mcp authorization test --forget` -> the listing answers 409 again,
                        and authorized is false.
  refresh               authorized again with a 2 s access token lifetime (the test server's
                        oauth_token_lifetime file): once the token has expired (the server
                        refuses it), a run still succeeds, no person involved: the server
                        logged the expired token's 401 and a refresh_token grant.
  revoked               the authorization server revokes the grant: a run is told the server
                        needs authorization (after a refused refresh), the listing is 409
                        again, authorized and refreshable are false. (Expected to fail, a
                        bug: the refused tokens stay in the vault and are tried again on
                        every later request, and are shown as authorized after a restart.)
  logs                  no issued token and no client secret in Continuum's log or audit
                        export; the audit log has mcp_server:register, :authorize, :token
                        (authorization_code and refresh_token grants) and :deauthorize.
  callback              a malformed and an unknown state -> 400 JSON errors; a forged code ->
                        a 4xx error (the authorization server refused it); an authorization
                        the person refuses (error=access_denied) -> 400, the state is gone,
                        and the audit log has mcp_server:authorize with outcome deny.
  access                a member API key cannot start (403) or forget an authorization.

Needs only python3 (no Node)."""

import json
import os
import re
import time
import unittest
import urllib.parse

from harness import IntegrationTest, where_stored, wait_until
from mcp_conformance_client import open_as_browser  # tests/support: plays the browser
from test_governance import client_for
from test_mcp import McpTestBase, McpTestHttpServer, call, calls_then_report, http_server, read_jsonl

AGENT = "oauth-agent"
SERVER = "test"
CALLBACK_PATH = "/v1/mcp/oauth/callback"


class OAuthMcpServer(McpTestHttpServer):
    """The MCP test server over HTTP in --oauth mode."""

    def __init__(self, log_dir, state_dir):
        super().__init__(log_dir, state_dir, name="mcp_oauth_http")

    def _spawn(self, argv, env=None):
        super()._spawn(argv + ["--oauth"], env)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"


def query_of(url):
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(url).query).items()}


class McpOAuthTest(McpTestBase):
    SCRIPTS = {"add": calls_then_report([call("test__add", a=2, b=40)])}

    @classmethod
    def setUpClass(cls):
        IntegrationTest.setUpClass()  # only Python servers here: no Node needed (McpTestBase's check)

    def setUp(self):
        super().setUp()
        self.oauth_state = self.state_dir("oauth_state")
        self.mcp = self.start_process(OAuthMcpServer(self.tmp, self.oauth_state))
        self.agent(AGENT, "add", http_server(SERVER, self.mcp.url, allowed_tools=["add", "echo"], oauth={}))

    # --- what the MCP server saw -------------------------------------------------------

    def oauth_events(self, endpoint=None):
        events = read_jsonl(os.path.join(self.oauth_state, "oauth.jsonl"))
        return [e for e in events if endpoint is None or e["endpoint"] == endpoint]

    def granted(self):
        """The token requests the authorization server granted, in order."""
        return [e for e in self.oauth_events("token") if e["status"] == 200]

    def issued_secrets(self):
        """Every access token, refresh token and client secret the server handed out."""
        values = [e["client_secret"] for e in self.oauth_events("register")]
        for grant in self.granted():
            values += [grant["access_token"], grant["refresh_token"]]
        return values

    def tool_calls_at_server(self):
        return [c for c in read_jsonl(os.path.join(self.oauth_state, "calls.jsonl")) if c["tool"] == "add"]

    # --- what Continuum says -------------------------------------------------------------

    def listing(self):
        return self.client.get(f"/v1/mcp/servers/{SERVER}/tools?agent={AGENT}")

    def authorization_view(self):
        resp = self.client.get(f"/v1/mcp/servers/{SERVER}/authorization?agent={AGENT}")
        self.assertEqual(resp.status, 200, resp)
        return resp

    def callback(self, query):
        """Continuum's public callback, as a browser reaches it (no API key)."""
        return self.client.get(f"{CALLBACK_PATH}?{query}", auth=False)

    def assert_listing_needs_authorization(self):
        """The listing answers 409. A listing the open connection read a moment ago may still
        be reused (for a 2026-07-28 server without ttlMs, about a second): wait for that to end."""
        last = {}

        def refused():
            last["listing"] = self.listing()
            return last["listing"].status == 409
        wait_until(refused, timeout_s=60, message="the listing to answer 409")
        self.assertIn("needs authorization", last["listing"].body["error"]["message"], last["listing"])

    def assert_run_needs_authorization(self):
        """A run's call of test__add is an error result saying the server needs authorization,
        not retried, and it never reaches the server."""
        calls_before = len(self.tool_calls_at_server())
        run = self.run_agent(AGENT)
        self.assert_completed(run)
        (step,) = self.mcp_steps(run)
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertIn("needs authorization", step["payload"]["output"], step)
        self.assertIn("needs authorization", run["output"])
        self.assertLessEqual(step["payload"]["attempts"], 1, f"not retried: nobody is there to authorize: {step}")
        self.assertEqual(len(self.tool_calls_at_server()), calls_before, "the call never reached the server")
        return step

    def assert_needs_authorization(self):
        self.assert_listing_needs_authorization()
        step = self.assert_run_needs_authorization()
        # The listing fails first, so the tool is withheld with that reason (attempts 0);
        # mcp_unauthorized is for a call already on its way (docs/mcp.md "Tokens").
        self.assertEqual(step["payload"]["attempts"], 0, step)
        self.assertFalse(self.authorization_view().body["authorized"])

    def assert_add_works(self):
        listing = self.listing()
        self.assertEqual(listing.status, 200, listing)
        self.assertEqual(sorted(t["name"] for t in listing.body["data"] if t["allowed"]), ["add", "echo"])
        calls_before = len(self.tool_calls_at_server())
        run = self.run_agent(AGENT)
        self.assert_completed(run)
        self.assertEqual(run["output"], "results: 42")
        (step,) = self.mcp_steps(run)
        self.assertFalse(step["payload"]["is_error"], step)
        self.assertEqual(len(self.tool_calls_at_server()), calls_before + 1)
        return run

    def browse_authorization(self, authorization_url):
        """The administrator's browser: the authorization server redirects at once to
        Continuum's callback, which is opened too. Returns (callback status, its text, callback URL)."""
        status, location, text = open_as_browser(authorization_url)
        self.assertEqual(status, 302, f"the authorization server redirects: {status} {text}")
        self.assertTrue(location.startswith(self.server.base_url + CALLBACK_PATH + "?"), location)
        status, _, text = open_as_browser(location)
        return status, text, location

    def authorize(self):
        """An administrator authorizes through the API and the browser; returns the token grant."""
        started = self.client.post(f"/v1/mcp/servers/{SERVER}/authorize", {"agent": AGENT})
        self.assertEqual(started.status, 200, started)
        status, text, _ = self.browse_authorization(started.body["authorization_url"])
        self.assertEqual(status, 200, text)
        return self.granted()[-1]

    # --- the life of an authorization ----------------------------------------------------

    def test_authorize_use_restart_forget_and_refresh(self):
        with self.subTest("before authorization"):
            self.assert_needs_authorization()
            view = self.authorization_view().body
            self.assertEqual((view["authorized"], view["refreshable"]), (False, False), view)

        # An administrator authorizes with the CLI and opens the URL it prints.
        cli = self.cli("mcp", "authorize", SERVER, "--agent", AGENT)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        urls = re.findall(r"^\s+(http\S+)$", cli.stdout, re.M)
        self.assertEqual(len(urls), 1, cli.stdout)
        url = urls[0]
        self.assertTrue(url.startswith(self.mcp.base + "/authorize?"), url)
        asked = query_of(url)
        self.assertEqual(asked["code_challenge_method"], "S256", asked)
        self.assertEqual(asked["redirect_uri"], self.server.base_url + CALLBACK_PATH, asked)
        self.assertEqual(asked["resource"], self.mcp.url, "the resource indicator is the MCP server's URL")
        self.assertEqual(asked["scope"], "tools", "the scope the server's metadata lists")
        status, text, callback_url = self.browse_authorization(url)
        self.assertEqual(status, 200, text)
        self.assertIn("is authorized", text)
        (registration,) = self.oauth_events("register")
        self.assertEqual([g["grant_type"] for g in self.granted()], ["authorization_code"])
        self.assertEqual(self.granted()[0]["resource"], self.mcp.url)

        with self.subTest("a used state is refused"):
            again = self.client.get(callback_url[len(self.server.base_url):], auth=False)
            self.assert_error(again, 400, "invalid_request_error", check_param=False)
            self.assertIn("unknown, used or expired", again.body["error"]["message"])
            self.assertEqual(len(self.oauth_events("token")), 1, "the code was not exchanged again")

        with self.subTest("authorized: the listing and the tool work"):
            self.assert_add_works()
            resp = self.authorization_view()
            view = resp.body
            self.assertEqual((view["authorized"], view["refreshable"], view["scope"]), (True, True, "tools"), view)
            self.assertEqual(view["issuer"], self.mcp.base, view)
            self.assertEqual(view["client_id"], registration["client_id"], view)
            shown = self.cli("mcp", "authorization", SERVER, "--agent", AGENT)
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertTrue(json.loads(shown.stdout)["authorized"], shown.stdout)
            for secret in self.issued_secrets():
                self.assertNotIn(secret, resp.text, "GET .../authorization never shows a token or secret")
                self.assertNotIn(secret, shown.stdout)

        with self.subTest("after a restart the sealed tokens are used"):
            token_requests = len(self.oauth_events("token"))
            refusals = len(self.oauth_events("mcp"))
            self.assertEqual(self.server.restart(), 0)
            self.client = self.server.client()
            self.assert_add_works()
            self.assertEqual(len(self.oauth_events("token")), token_requests, "no token was requested")
            self.assertEqual(len(self.oauth_events("mcp")), refusals, "the stored access token was sent at once")
            self.assertEqual(len(self.oauth_events("authorize")), 1, "nobody authorized again")
            self.assertEqual(where_stored(self.server, self.issued_secrets()),
                             {secret: [] for secret in self.issued_secrets()},
                             "tokens and the client secret are sealed at rest")
            # They are the vault secret mcp-oauth-<server>: listed, never shown.
            listed = self.client.get("/v1/secrets")
            self.assertIn(f"mcp-oauth-{SERVER}", [s["name"] for s in listed.body["data"]], listed)
            shown = self.client.get(f"/v1/secrets/mcp-oauth-{SERVER}")
            self.assertEqual(shown.status, 200, shown)
            for secret in self.issued_secrets():
                self.assertNotIn(secret, listed.text + shown.text)

        with self.subTest("forget"):
            forgot = self.cli("mcp", "authorization", SERVER, "--agent", AGENT, "--forget")
            self.assertEqual(forgot.returncode, 0, forgot.stderr)
            self.assertTrue(json.loads(forgot.stdout)["deleted"], forgot.stdout)
            self.assertFalse(self.authorization_view().body["authorized"])
            # Forgetting drops the connection and its cached listing: refused at once.
            self.assertEqual(self.listing().status, 409)
            self.assert_needs_authorization()

        with self.subTest("refresh without a person"):
            with open(os.path.join(self.oauth_state, "oauth_token_lifetime"), "w", encoding="utf-8") as f:
                f.write("2")
            self.assertEqual(self.authorize()["grant_type"], "authorization_code")
            self.assertEqual(len(self.oauth_events("register")), 2, "forgetting dropped the registration too")
            self.assert_add_works()

            refreshes = [g for g in self.granted() if g["grant_type"] == "refresh_token"]
            newest = self.granted()[-1]
            self.assertEqual(newest["expires_in"], 2, newest)
            wait_until(lambda: time.time() > newest["expires_at"] + 0.2, timeout_s=30,
                       message="the access token to expire")
            self.assert_add_works()
            refreshed = [g for g in self.granted() if g["grant_type"] == "refresh_token"]
            self.assertGreater(len(refreshed), len(refreshes), "the expired token was refreshed")
            expired = [e for e in self.oauth_events("mcp") if e["reason"] == "expired"]
            self.assertTrue(expired, "the server refused the expired token before the refresh")
            self.assertEqual(len(self.oauth_events("authorize")), 2, "no person was involved")
            view = self.authorization_view().body
            self.assertTrue(view["authorized"] and view["refreshable"], view)

        with self.subTest("the authorization server revokes the grant"):
            open(os.path.join(self.oauth_state, "oauth_revoke"), "w").close()
            refused_before = len([e for e in self.oauth_events("token") if e["status"] != 200])
            # The run's listing fails (409 for GET), or, while the last listing is still
            # reused, the call itself is refused (mcp_unauthorized): either way the run is
            # told that the server needs authorization, after one refused refresh.
            self.assert_run_needs_authorization()
            self.assert_listing_needs_authorization()
            refused = [e for e in self.oauth_events("token") if e["status"] != 200]
            # (How often it is tried: test_a_refused_refresh_token_is_not_tried_again.)
            self.assertGreater(len(refused), refused_before, "the refresh token was tried")
            self.assertEqual((refused[-1]["grant_type"], refused[-1]["error"]), ("refresh_token", "invalid_grant"))
            view = self.authorization_view().body
            self.assertEqual((view["authorized"], view["refreshable"]), (False, False), view)

        with self.subTest("no token in Continuum's log or audit log"):
            log = self.server_log()
            audit = self.client.get("/v1/audit/export")
            self.assertEqual(audit.status, 200, audit)
            self.assertGreater(len(self.issued_secrets()), 4)
            for secret in self.issued_secrets():
                self.assertNotIn(secret, log)
                self.assertNotIn(secret, audit.text)

            def audited(action):
                resp = self.client.get(f"/v1/audit?action={action}&limit=100")
                self.assertEqual(resp.status, 200, resp)
                return resp.body["data"]
            grants = [e["details"].get("grant") for e in audited("mcp_server:token")]
            self.assertIn("authorization_code", grants)
            self.assertIn("refresh_token", grants)
            for action in ("mcp_server:authorize", "mcp_server:register", "mcp_server:deauthorize"):
                self.assertTrue(audited(action), action)

    # When the authorization server refuses the refresh token (invalid_grant, e.g. the
    # grant was revoked), the tokens are forgotten in the vault too: neither the dead access
    # token nor the dead refresh token is offered again, on this node or after a restart.
    def test_a_refused_refresh_token_is_not_tried_again(self):
        grant = self.authorize()
        self.assert_add_works()
        open(os.path.join(self.oauth_state, "oauth_revoke"), "w").close()
        self.assert_run_needs_authorization()
        self.assert_listing_needs_authorization()
        self.assert_run_needs_authorization()
        presented = [e["presented_refresh_token"] for e in self.oauth_events("token")
                     if e["grant_type"] == "refresh_token"]
        dead_tokens_sent = [e for e in self.oauth_events("mcp") if e["reason"] == "unknown"]
        view = self.authorization_view().body
        self.assertEqual((view["authorized"], view["refreshable"]), (False, False), view)
        self.assertEqual(self.server.restart(), 0)
        self.client = self.server.client()
        after_restart = self.authorization_view().body
        self.assertEqual(presented, [grant["refresh_token"]], "the refused refresh token is tried once")
        self.assertEqual([e["presented"] for e in dead_tokens_sent], [grant["access_token"]],
                         "the refused access token is sent once")
        self.assertEqual((after_restart["authorized"], after_restart["refreshable"]), (False, False), after_restart)

    # --- the callback and who may authorize ---------------------------------------------

    def test_callback_refuses_malformed_unknown_and_refused_authorizations(self):
        with self.subTest("a member may not authorize"):
            member = client_for(self.server, self.client, "mallory", roles=["member"])
            refused = member.post(f"/v1/mcp/servers/{SERVER}/authorize", {"agent": AGENT})
            self.assertEqual(refused.status, 403, refused)
            forget = member.delete(f"/v1/mcp/servers/{SERVER}/authorization?agent={AGENT}")
            self.assertEqual(forget.status, 403, forget)
            self.assertEqual(self.oauth_events("register"), [], "nothing was started")

        with self.subTest("a malformed state"):
            resp = self.callback("state=nonsense&code=abc")
            self.assert_error(resp, 400, "invalid_request_error", check_param=False)

        started = self.client.post(f"/v1/mcp/servers/{SERVER}/authorize", {"agent": AGENT})
        self.assertEqual(started.status, 200, started)
        url = started.body["authorization_url"]
        state = query_of(url)["state"]

        with self.subTest("an unknown state of the right form"):
            tenant_part = state.split(".")[0]
            resp = self.callback(urllib.parse.urlencode({"state": tenant_part + "." + "0" * 48, "code": "abc"}))
            self.assert_error(resp, 400, "invalid_request_error", check_param=False)
            self.assertIn("unknown, used or expired", resp.body["error"]["message"])

        with self.subTest("a code the authorization server does not know"):
            forged_start = self.client.post(f"/v1/mcp/servers/{SERVER}/authorize", {"agent": AGENT})
            self.assertEqual(forged_start.status, 200, forged_start)
            status, location, _ = open_as_browser(forged_start.body["authorization_url"])
            self.assertEqual(status, 302)
            status, _, text = open_as_browser(re.sub(r"([?&]code=)[^&]+", r"\1forged", location))
            self.assertTrue(400 <= status < 500, f"{status} {text}")  # (403 today; the docs do not say)
            self.assertIn("invalid_grant", json.loads(text)["error"]["message"])
            (exchange,) = self.oauth_events("token")
            self.assertEqual((exchange["grant_type"], exchange["error"]), ("authorization_code", "invalid_grant"))
            self.assertFalse(self.authorization_view().body["authorized"])

        with self.subTest("the person refuses"):
            open(os.path.join(self.oauth_state, "oauth_deny"), "w").close()
            status, text, callback_url = self.browse_authorization(url)
            self.assertEqual(status, 400, text)
            self.assertEqual(query_of(callback_url)["error"], "access_denied")
            self.assertIn("access_denied", json.loads(text)["error"]["message"])
            again = self.client.get(callback_url[len(self.server.base_url):], auth=False)
            self.assert_error(again, 400, "invalid_request_error", check_param=False)
            self.assertIn("unknown, used or expired", again.body["error"]["message"])
            events = self.client.get("/v1/audit?action=mcp_server:authorize&limit=100").body["data"]
            denied = [e for e in events if e["action"] == "mcp_server:authorize" and e["outcome"] == "deny"]
            self.assertEqual(len(denied), 1, events)
            self.assertEqual(denied[0]["resource"], f"mcp:{SERVER}")
            self.assertIn("access_denied", json.dumps(denied[0]["details"]))
            self.assertEqual(len(self.oauth_events("token")), 1, "no code, no (further) token request")
            self.assertFalse(self.authorization_view().body["authorized"])
            self.assertEqual(self.listing().status, 409)


if __name__ == "__main__":
    unittest.main()
