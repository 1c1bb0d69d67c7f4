"""Identity against the real binary: the JWT every HTTP tool call carries
(`Continuum-Identity`), the keys that sign it (`/.well-known/jwks.json`, rotation),
and inbound OIDC bearer tokens.

  identity to tools    an in-process tool fetches the JWKS from Continuum for every call,
                       verifies the EdDSA signature with `cryptography` and checks iss, aud
                       (its own URL), exp; the claims name the session's user (or the
                       session's creator), the agent (act.sub), the tenant, run, session
                       and the tool_call step's seq; jti is unique per call; the caller's
                       own bearer token (admin key, API key, OIDC token) reaches no tool
  rotation             POST /v1/identity/rotate makes a new key current; the JWKS keeps the
                       newest three; members get 403; survives a restart; audited
  defaults, config     iss "continuum" and a 300 s lifetime by default; bad settings exit 2
  OIDC                 Ed25519, ES256 and RS256 tokens from a JWKS file: roles admin may
                       write, a member sees only their own sessions, a tenant claim picks
                       the tenant; expired (beyond the leeway), not yet valid, wrong
                       issuer or audience, alg none, HS256 keyed with the public key,
                       unknown kid, foreign signature, tampered payload or signature, no
                       exp -> 401 (and audited as auth:fail without the token)
  jwks_url             an issuer whose keys are served by a local HTTP server: fetched at
                       start, and not again at every audit checkpoint"""

import base64
import json
import os
import shutil
import tempfile
import threading
import time
import unittest

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness import (Client, ContinuumServer, InProcessServer, IntegrationTest, clean_env, describe,
                     http_tool, run_cli, tool_steps, wait_until)

IDP = "https://idp.test"
IDP_ORGS = "https://orgs.idp.test"  # the same keys, the tenant taken from the "org" claim
AUDIENCE = "continuum"
CONTINUUM_ISSUER = "https://continuum.test"
TOOL_TTL_S = 120
JWKS_PATH = "/.well-known/jwks.json"


# --- JWTs -----------------------------------------------------------------------


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u_json(value):
    return b64u(json.dumps(value, separators=(",", ":")).encode())


def int_bytes(number, length=None):
    length = length or (number.bit_length() + 7) // 8
    return number.to_bytes(length, "big")


class IdpKey:
    """A signing key of the test identity provider: Ed25519 (EdDSA), P-256 (ES256) or RSA (RS256)."""

    def __init__(self, alg, kid):
        self.alg, self.kid = alg, kid
        if alg == "EdDSA":
            self.private = Ed25519PrivateKey.generate()
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def sign(self, data):
        if self.alg == "EdDSA":
            return self.private.sign(data)
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
            return int_bytes(r, 32) + int_bytes(s, 32)
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def jwk(self):
        public = self.private.public_key()
        base = {"kid": self.kid, "alg": self.alg, "use": "sig"}
        if self.alg == "EdDSA":
            raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
            return {**base, "kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        numbers = public.public_numbers()
        if self.alg == "ES256":
            return {**base, "kty": "EC", "crv": "P-256", "x": b64u(int_bytes(numbers.x, 32)),
                    "y": b64u(int_bytes(numbers.y, 32))}
        return {**base, "kty": "RSA", "n": b64u(int_bytes(numbers.n)), "e": b64u(int_bytes(numbers.e))}


def mint(key, claims, header=None):
    """A compact JWS of `claims` signed by `key` (header: alg, typ, kid unless given)."""
    header = header if header is not None else {"alg": key.alg, "typ": "JWT", "kid": key.kid}
    signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
    return f"{signing_input}.{b64u(key.sign(signing_input.encode()))}"


def hs256(header, claims, secret):
    signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(signing_input.encode())
    return f"{signing_input}.{b64u(mac.finalize())}"


def claims_for(sub, roles, issuer=IDP, **extra):
    now = int(time.time())
    claims = {"iss": issuer, "aud": AUDIENCE, "sub": sub, "roles": roles, "iat": now, "exp": now + 600}
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


_IDP_KEYS = {}


def idp_keys():
    """The test IdP's keys, made once per process (RSA key generation is the slow part)."""
    if not _IDP_KEYS:
        _IDP_KEYS.update({"EdDSA": IdpKey("EdDSA", "ed-1"), "ES256": IdpKey("ES256", "ec-1"),
                          "RS256": IdpKey("RS256", "rsa-1")})
    return _IDP_KEYS


def decode_token(token):
    header, payload, _ = token.split(".")
    return json.loads(b64u_decode(header)), json.loads(b64u_decode(payload))


def verify_identity_token(token, jwks, issuer, audience, now_s):
    """What a tool should do with Continuum-Identity: verify the EdDSA signature by the
    JWKS key its kid names, then iss, aud and exp. Returns (header, claims); raises."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64u_decode(header_b64))
    if header.get("alg") != "EdDSA":
        raise ValueError(f"alg {header.get('alg')!r}")
    (jwk,) = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")] or [None]
    if jwk is None:
        raise ValueError(f"kid {header.get('kid')!r} is not in the JWKS")
    if (jwk.get("kty"), jwk.get("crv"), jwk.get("alg")) != ("OKP", "Ed25519", "EdDSA"):
        raise ValueError(f"unexpected JWK {jwk}")
    Ed25519PublicKey.from_public_bytes(b64u_decode(jwk["x"])).verify(
        b64u_decode(signature_b64), f"{header_b64}.{payload_b64}".encode())
    claims = json.loads(b64u_decode(payload_b64))
    if claims.get("iss") != issuer:
        raise ValueError(f"iss {claims.get('iss')!r}")
    if claims.get("aud") != audience:
        raise ValueError(f"aud {claims.get('aud')!r} is not {audience!r}")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now_s:
        raise ValueError(f"expired: exp {claims.get('exp')} now {now_s}")
    return header, claims


# --- in-process servers ------------------------------------------------------------


class IdentityCheckingTool(InProcessServer):
    """An HTTP tool that, for every call, fetches the JWKS from Continuum
    (`jwks_base()` gives its base URL), verifies Continuum-Identity and records what it
    got. Answers 200 "verified <sub>" or 401 with the reason."""

    def __init__(self, jwks_base, issuer):
        self.jwks_base, self.issuer = jwks_base, issuer
        self._calls, self._lock = [], threading.Lock()
        self._serve_replies(self._answer)

    def _answer(self, method, path, headers, body):
        call = {"path": path, "headers": list(headers.items()), "body": body, "error": None,
                "header": None, "claims": None, "token": headers.get("Continuum-Identity")}
        try:
            jwks = Client(self.jwks_base()).get(JWKS_PATH, auth=False, timeout_s=30)
            if jwks.status != 200:
                raise ValueError(f"JWKS fetch: {jwks}")
            call["jwks"] = jwks.body
            if not call["token"]:
                raise ValueError("no Continuum-Identity header")
            call["header"], call["claims"] = verify_identity_token(
                call["token"], jwks.body, self.issuer, f"http://127.0.0.1:{self.port}{path}", int(time.time()))
        except (ValueError, KeyError, InvalidSignature, OSError) as error:
            call["error"] = f"{type(error).__name__}: {error}"
        with self._lock:
            self._calls.append(call)
        reply = (call["error"] or f"verified {call['claims']['sub']}").encode()
        return (401 if call["error"] else 200), "text/plain", reply

    @property
    def calls(self):
        with self._lock:
            return list(self._calls)

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/tools/{name}"


class JwksServer(InProcessServer):
    """Serves a JWK Set at /jwks.json and counts the fetches."""

    def __init__(self, jwks):
        self.jwks, self.fetches = jwks, 0
        self._serve_replies(self._answer)

    def _answer(self, method, path, headers, body):
        self.fetches += 1
        return (200 if path == "/jwks.json" else 404), "application/json", json.dumps(self.jwks).encode()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/jwks.json"


# --- tests ---------------------------------------------------------------------------


class IdentityTestBase(IntegrationTest):
    SCRIPTS = {
        # Two calls in parallel, then one more: three tool_call steps.
        "three_calls": {"steps": [{"tool_calls": [{"name": "whoami", "arguments": {"n": 1}},
                                                  {"name": "whoami", "arguments": {"n": 2}}]},
                                  {"tool_calls": [{"name": "whoami", "arguments": {"n": 3}}]},
                                  {"content": "done: {{tool_results}}"}]},
        "one_call": {"steps": [{"tool_calls": [{"name": "whoami", "arguments": {"n": 1}}]},
                               {"content": "done: {{tool_results}}"}]},
    }
    SERVER_ENV = {}
    ISSUER = "continuum"

    def setUp(self):
        super().setUp()
        self.keys = idp_keys()
        if self.SERVER_ENV or self.oidc_env():
            self.server.stop()
            self.server.extra_env.update(self.SERVER_ENV)
            self.server.extra_env.update(self.oidc_env())
            self.server.start()
            self.client = self.server.client()
        self.tool = IdentityCheckingTool(lambda: self.server.base_url, self.ISSUER)
        self.addCleanup(self.tool.stop)

    def oidc_env(self):
        return {}

    def write_oidc_files(self, issuers):
        jwks_path = os.path.join(self.tmp, "idp-jwks.json")
        with open(jwks_path, "w", encoding="utf-8") as f:
            json.dump({"keys": [key.jwk() for key in self.keys.values()]}, f)
        path = os.path.join(self.tmp, "oidc-issuers.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"issuers": [{**issuer, "jwks_file": jwks_path} for issuer in issuers]}, f)
        return path

    def oidc(self, sub, roles, alg="EdDSA", **extra):
        return mint(self.keys[alg], claims_for(sub, roles, **extra))

    def identity_agent(self, name, script="one_call"):
        whoami = http_tool(self.tool, "whoami", {"type": "object", "properties": {"n": {"type": "integer"}}})
        return self.make_agent(name, script, tools=[whoami])

    def run_in(self, session, client=None, text="who am I?"):
        """A completed run of `session` started by `client`; returns (run, its tool_call steps, the calls the
        tool got during it)."""
        client = client or self.client
        before = len(self.tool.calls)
        run = client.start_run(session, text, wait=True)
        self.assertEqual(run["status"], "completed", run)
        steps = tool_steps(client.steps(run["id"]))
        calls = self.tool.calls[before:]
        self.assertEqual(len(calls), len(steps), calls)
        self.assertEqual([c["error"] for c in calls], [None] * len(calls), "the tool could not verify its caller")
        for step in steps:
            self.assertFalse(step["payload"]["is_error"], step)
        return run, steps, calls

    def assert_not_forwarded(self, calls, *tokens):
        for call in calls:
            names = [name.lower() for name, _ in call["headers"]]
            self.assertNotIn("authorization", names, "no tool auth configured: no Authorization header")
            for token in tokens:
                leaked = [name for name, value in call["headers"] if token in value]
                self.assertEqual(leaked, [], "the caller's bearer token reached the tool")
                self.assertNotIn(token.encode(), call["body"])


class ToolIdentityTest(IdentityTestBase):
    SERVER_ENV = {"CONTINUUM_IDENTITY_ISSUER": CONTINUUM_ISSUER, "CONTINUUM_TOOL_TOKEN_TTL_S": str(TOOL_TTL_S)}
    ISSUER = CONTINUUM_ISSUER

    def oidc_env(self):
        return {"CONTINUUM_OIDC_ISSUERS_FILE": self.write_oidc_files([{"issuer": IDP, "audience": AUDIENCE}])}

    def test_tool_gets_a_verifiable_token_naming_user_agent_run_and_step(self):
        self.identity_agent("concierge", "three_calls")
        session = self.client.post("/v1/sessions", {"agent": "concierge", "user": "alice"}).body["id"]
        started = int(time.time())
        run, steps, calls = self.run_in(session)
        finished = int(time.time())
        self.assertEqual(len(calls), 3)
        jwks = self.client.get(JWKS_PATH, auth=False)
        self.assertEqual(jwks.status, 200, jwks)
        (key,) = jwks.body["keys"]
        self.assertEqual(sorted(key), ["alg", "crv", "kid", "kty", "use", "x"], key)
        self.assertEqual((key["kty"], key["crv"], key["alg"], key["use"]), ("OKP", "Ed25519", "EdDSA", "sig"))
        self.assertEqual(len(b64u_decode(key["x"])), 32)

        step_of_call = {json.loads(c["body"])["n"]: c for c in calls}
        step_seq = {(s["payload"]["arguments"] if isinstance(s["payload"]["arguments"], dict)
                     else json.loads(s["payload"]["arguments"]))["n"]: s["seq"] for s in steps}
        for n, call in sorted(step_of_call.items()):
            with self.subTest(call=n):
                header, claims = call["header"], call["claims"]
                self.assertEqual((header["alg"], header["kid"]), ("EdDSA", key["kid"]), header)
                self.assertEqual(claims["iss"], CONTINUUM_ISSUER)
                self.assertEqual(claims["sub"], "alice", "the session's end user")
                self.assertEqual(claims["act"], {"sub": "concierge"}, "the agent acting for them")
                self.assertEqual(claims["aud"], self.tool.url("whoami"), "exactly the URL in the agent spec")
                self.assertEqual((claims["tenant"], claims["run_id"], claims["session_id"]),
                                 ("default", run["id"], session))
                self.assertEqual(claims["step"], step_seq[n], "the tool_call step's seq")
                self.assertEqual(dict(call["headers"]).get("Continuum-Step"), str(claims["step"]))
                self.assertEqual(dict(call["headers"]).get("Continuum-Run-Id"), run["id"])
                self.assertEqual(claims["exp"] - claims["iat"], TOOL_TTL_S, claims)
                self.assertTrue(started - 1 <= claims["iat"] <= finished + 1, (started, claims, finished))
                self.assertTrue(claims["jti"], claims)
        self.assertEqual(len({c["claims"]["jti"] for c in calls}), 3, "jti is unique per call")
        self.assertEqual(len({c["token"] for c in calls}), 3)
        self.assert_not_forwarded(calls, self.api_key)

        # aud is the URL exactly as the agent spec gives it, query string included.
        whoami_q = http_tool(self.tool, "whoami", {"type": "object", "properties": {"n": {"type": "integer"}}},
                             url=self.tool.url("whoami") + "?region=eu&v=1")
        self.make_agent("concierge-q", "one_call", tools=[whoami_q])
        query_session = self.client.post("/v1/sessions", {"agent": "concierge-q", "user": "alice"}).body["id"]
        _, _, (call,) = self.run_in(query_session)
        self.assertEqual(call["path"], "/tools/whoami?region=eu&v=1")
        self.assertEqual(call["claims"]["aud"], self.tool.url("whoami") + "?region=eu&v=1")
        self.assertEqual(call["claims"]["act"], {"sub": "concierge-q"})

        # A session without "user" belongs to its creator: the admin here.
        own = self.new_session("concierge")
        _, _, calls = self.run_in(own)
        self.assertEqual({c["claims"]["sub"] for c in calls}, {"admin"})
        self.assertEqual({c["claims"]["act"]["sub"] for c in calls}, {"concierge"})

    def test_inbound_tokens_never_reach_tools(self):
        self.identity_agent("relay")
        cases = {}
        member_key = self.client.post("/v1/api-keys", {"user": "mia", "roles": ["member"]}).body["token"]
        cases["a member's API key"] = (member_key, None, "mia")
        cases["a member's OIDC token"] = (self.oidc("olivia", ["member"]), None, "olivia")
        cases["an admin's OIDC token, for an end user"] = (self.oidc("root", ["admin"], alg="ES256"), "zed", "zed")
        cases["the admin key"] = (self.api_key, "yara", "yara")
        for case, (token, user, expected_sub) in cases.items():
            with self.subTest(case):
                client = Client(self.server.base_url, token)
                body = {"agent": "relay"} if user is None else {"agent": "relay", "user": user}
                resp = client.post("/v1/sessions", body)
                self.assertEqual(resp.status, 201, resp)
                run, _, calls = self.run_in(resp.body["id"], client)
                self.assertEqual([c["claims"]["sub"] for c in calls], [expected_sub])
                self.assertEqual(calls[0]["claims"]["run_id"], run["id"])
                self.assert_not_forwarded(calls, token, self.api_key)



class ToolIdentityDefaultsTest(IdentityTestBase):
    def test_defaults_issuer_continuum_and_at_most_300_seconds(self):
        self.identity_agent("plain")
        session = self.client.post("/v1/sessions", {"agent": "plain", "user": "bea"}).body["id"]
        _, _, (call,) = self.run_in(session)
        claims = call["claims"]
        self.assertEqual((claims["iss"], claims["sub"]), ("continuum", "bea"))
        self.assertLessEqual(claims["exp"] - claims["iat"], 300, claims)
        self.assertGreater(claims["exp"] - claims["iat"], 0, claims)

    def test_bad_identity_settings_are_refused(self):
        data = tempfile.mkdtemp(prefix="continuum-identity-config-")
        self.addCleanup(shutil.rmtree, data, True)
        for name, value, param in (("CONTINUUM_TOOL_TOKEN_TTL_S", "301", "tool_token_ttl_s"),
                                   ("CONTINUUM_TOOL_TOKEN_TTL_S", "0", "tool_token_ttl_s"),
                                   ("CONTINUUM_OIDC_ISSUERS_FILE", os.path.join(data, "missing.yaml"),
                                    "oidc_issuers_file")):
            with self.subTest(name=name, value=value):
                result = run_cli(["serve", "--data", data, "--listen", "127.0.0.1:0"],
                                 clean_env(**{name: value, "CONTINUUM_API_KEY": "k"}), data)
                self.assertNotEqual(result.returncode, 0, describe(result))
                self.assertIn(param, result.stderr + result.stdout, describe(result))
        for issuers, why in (({"issuers": [{"issuer": IDP, "audience": AUDIENCE}]}, "no jwks_file or jwks_url"),
                             ({"issuers": [{"issuer": IDP, "jwks_url": "http://127.0.0.1:9/k"}]}, "no audience"),
                             ({"issuers": [{"issuer": IDP, "audience": AUDIENCE, "jwks_url": "http://127.0.0.1:9/k",
                                            "leeway_s": 301}]}, "leeway over 300"),
                             ({"issuers": [{"issuer": IDP, "audience": AUDIENCE, "jwks_url": "http://127.0.0.1:9/k",
                                            "audiance": "typo"}]}, "an unknown key")):
            with self.subTest(why):
                path = os.path.join(data, "issuers.json")
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(issuers, f)
                result = run_cli(["serve", "--data", data, "--listen", "127.0.0.1:0"],
                                 clean_env(CONTINUUM_OIDC_ISSUERS_FILE=path, CONTINUUM_API_KEY="k"), data)
                self.assertNotEqual(result.returncode, 0, describe(result))
                self.assertIn("oidc_issuers_file", result.stderr + result.stdout, describe(result))


class OidcTest(IdentityTestBase):

    def oidc_env(self):
        return {"CONTINUUM_OIDC_ISSUERS_FILE": self.write_oidc_files([
            {"issuer": IDP, "audience": AUDIENCE, "tenant": "default", "user_claim": "sub", "roles_claim": "roles",
             "leeway_s": 60},
            {"issuer": IDP_ORGS, "audience": [AUDIENCE, "other"], "tenant_claim": "org", "user_claim": "email",
             "roles_claim": "groups"}])}

    def agent_body(self, name):
        return {"name": name, "model": {"provider": "openai", "model": "x"}, "instructions": "x", "tools": []}

    def test_admin_tokens_write_and_members_see_their_own_sessions(self):
        for alg in ("EdDSA", "ES256", "RS256"):
            with self.subTest(alg=alg):
                admin = Client(self.server.base_url, self.oidc(f"boss-{alg.lower()}", ["admin"], alg=alg))
                resp = admin.post("/v1/agents", self.agent_body(f"by-{alg.lower()}"))
                self.assertEqual(resp.status, 201, resp)
        self.assertEqual(sorted(a["name"] for a in self.client.get("/v1/agents").body["data"]),
                         ["by-eddsa", "by-es256", "by-rs256"], "in the issuer's tenant, seen by its admin")
        wait_until(lambda: len([e for e in self.client.get("/v1/audit?action=agent:write").body["data"]
                                if e["outcome"] == "allow"]) == 3, message="three agent:write decisions")
        decisions = [e for e in self.client.get("/v1/audit?action=agent:write").body["data"] if e["outcome"] == "allow"]
        self.assertEqual(sorted(e["principal"] for e in decisions),
                         ["user:boss-eddsa", "user:boss-es256", "user:boss-rs256"])
        self.assertEqual({e["details"]["credential"] for e in decisions}, {f"oidc:{IDP}"})

        # A member: only their own sessions, and no writes beyond them.
        self.client.create_agent(self.agent_body("helper"))
        alice_sessions = [self.client.post("/v1/sessions", {"agent": "helper", "user": "alice"}).body["id"]
                          for _ in range(2)]
        bob_session = self.client.post("/v1/sessions", {"agent": "helper", "user": "bob"}).body["id"]
        alice = Client(self.server.base_url, self.oidc("alice", ["member"], alg="ES256"))
        listed = alice.get("/v1/sessions?limit=100")
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual(sorted(s["id"] for s in listed.body["data"]), sorted(alice_sessions))
        self.assertEqual(alice.get(f"/v1/sessions/{alice_sessions[0]}").status, 200)
        self.assert_error(alice.get(f"/v1/sessions/{bob_session}"), 403, "permission_error", check_param=False)
        self.assert_error(alice.post("/v1/agents", self.agent_body("alices")), 403, "permission_error",
                          check_param=False)
        self.assertEqual(alice.get("/v1/agents").status, 200, "members read agents")
        everyone = self.client.get("/v1/sessions?limit=100").body["data"]
        self.assertEqual(len(everyone), 3, "the admin sees all of them")

        # Roles come only from the roles claim: none -> nothing beyond the default deny.
        nobody = Client(self.server.base_url, self.oidc("nobody", None))
        self.assertEqual(nobody.get("/v1/agents").status, 403)

        # The tenant, user and roles from the claims an issuer names: an admin of "acme" sees acme only.
        def orgs_token(**claims):
            return mint(self.keys["EdDSA"], {**claims_for("ignored-sub", None, issuer=IDP_ORGS), **claims})
        acme = Client(self.server.base_url, orgs_token(org="acme", email="ace@acme.test", groups=["admin"],
                                                       aud=["other"]))
        resp = acme.post("/v1/agents", self.agent_body("acme-only"))
        self.assertEqual(resp.status, 201, resp)
        self.assertEqual([a["name"] for a in acme.get("/v1/agents").body["data"]], ["acme-only"])
        self.assertNotIn("acme-only", [a["name"] for a in self.client.get("/v1/agents").body["data"]])
        acme_audit = wait_until(lambda: [e for e in acme.get("/v1/audit?action=agent:write").body["data"]
                                         if e["outcome"] == "ok"], message="acme's agent:write")
        self.assertEqual(acme_audit[0]["principal"], "user:ace@acme.test", acme_audit)
        for claims, why in (({"email": "ace@acme.test", "groups": ["admin"]}, "no tenant claim"),
                            ({"org": "acme", "groups": ["admin"]}, "no user claim"),
                            ({"org": "acme corp", "email": "ace@acme.test", "groups": ["admin"]}, "an invalid tenant"),
                            ({"org": "acme", "email": "ace smith", "groups": ["admin"]}, "an invalid user id")):
            with self.subTest(why):
                self.assertEqual(self.client.get("/v1/agents", api_key=orgs_token(**claims)).status, 401)
        self.assertEqual(self.client.get("/v1/agents", api_key=orgs_token(org="acme", email="ace@acme.test",
                                                                          roles=["admin"])).status, 403,
                         "this issuer's roles are in 'groups', not 'roles'")

        # Within the leeway (60 s) an expired token still works; beyond it, not.
        now = int(time.time())
        late = Client(self.server.base_url, self.oidc("boss", ["admin"], iat=now - 600, exp=now - 20))
        self.assertEqual(late.get("/v1/agents").status, 200)
        early = Client(self.server.base_url, self.oidc("boss", ["admin"], nbf=now + 20))
        self.assertEqual(early.get("/v1/agents").status, 200, "nbf within the leeway")

    def attack_tokens(self):
        """(a valid admin token, {attack: a token that must be refused})."""
        keys = self.keys
        ed, ec_key = keys["EdDSA"], keys["ES256"]
        now = int(time.time())
        admin = claims_for("mallory", ["admin"])
        control = mint(ed, admin)
        self.assertEqual(self.client.get("/v1/agents", api_key=control).status, 200, "control: a valid token")
        stranger = IdpKey("EdDSA", "ed-1")  # claims a known kid, signs with another key
        unknown = IdpKey("EdDSA", "ed-2")
        public_raw = ed.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        ec_public_pem = ec_key.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        header_, payload_, signature_ = control.split(".")
        elevated = dict(admin, sub="admin")
        flipped_signature = signature_[:-4] + ("AAAA" if signature_[-4:] != "AAAA" else "BBBA")

        attacks = {
            "expired beyond the leeway": mint(ed, dict(admin, iat=now - 900, exp=now - 120)),
            "nbf in the future": mint(ed, dict(admin, nbf=now + 600, exp=now + 1200)),
            "wrong issuer": mint(ed, dict(admin, iss="https://evil.test")),
            "issuer with a trailing slash": mint(ed, dict(admin, iss=IDP + "/")),
            "wrong audience": mint(ed, dict(admin, aud="someone-else")),
            "audience list without ours": mint(ed, dict(admin, aud=["a", "b"])),
            "no exp": mint(ed, {k: v for k, v in admin.items() if k != "exp"}),
            "alg none": f"{b64u_json({'alg': 'none', 'typ': 'JWT'})}.{b64u_json(admin)}.",
            "alg none with a kid": f"{b64u_json({'alg': 'none', 'kid': 'ed-1'})}.{b64u_json(admin)}.",
            "alg NONE": f"{b64u_json({'alg': 'NONE', 'kid': 'ed-1'})}.{b64u_json(admin)}.",
            "HS256 keyed with the raw public key": hs256({"alg": "HS256", "typ": "JWT", "kid": "ed-1"}, admin,
                                                         public_raw),
            "HS256 keyed with the JWK's x": hs256({"alg": "HS256", "kid": "ed-1"}, admin, ed.jwk()["x"].encode()),
            "HS256 keyed with the JWK": hs256({"alg": "HS256", "kid": "ed-1"}, admin,
                                              json.dumps(ed.jwk()).encode()),
            "HS256 keyed with the EC key's PEM": hs256({"alg": "HS256", "kid": "ec-1"}, admin, ec_public_pem),
            "unknown kid": mint(unknown, admin),
            "known kid, another key's signature": mint(stranger, admin),
            "EdDSA signature under the ES256 key's kid": mint(ed, admin, {"alg": "EdDSA", "kid": "ec-1"}),
            "ES256 claimed, EdDSA key's kid": mint(ec_key, admin, {"alg": "ES256", "kid": "ed-1"}),
            "no kid among several keys": mint(ed, admin, {"alg": "EdDSA", "typ": "JWT"}),
            "tampered payload": f"{header_}.{b64u_json(elevated)}.{signature_}",
            "tampered signature": f"{header_}.{payload_}.{flipped_signature}",
            "signature removed": f"{header_}.{payload_}.",
            "padded base64": f"{header_}.{payload_}.{signature_}==",
            "critical header": mint(ed, admin, {"alg": "EdDSA", "kid": "ed-1", "crit": ["exp"]}),
        }
        return control, attacks

    def test_forged_and_invalid_tokens_are_401(self):
        control, attacks = self.attack_tokens()
        for name, token in attacks.items():
            with self.subTest(attack=name):
                self.assertNotEqual(token, control)
                resp = self.client.get("/v1/agents", api_key=token)
                self.assert_error(resp, 401, "authentication_error", check_param=False)
                self.assertNotIn(token, resp.text)
        self.assertEqual(self.client.get("/v1/agents", api_key=control).status, 200, "control, after the attacks")

        # Each refusal is audited as an auth failure (at most 20 a second; the rest are
        # counted in a metric), without the token.
        def failures():
            return self.client.get("/v1/audit?action=auth:fail&limit=1000").body["data"]
        counted = self.metric("continuum_auth_failures_total")
        unaudited = self.metric("continuum_auth_failures_unaudited_total")
        self.assertEqual(counted, len(attacks))
        wait_until(lambda: len(failures()) + unaudited == len(attacks), message="an auth:fail event per audited attack")
        self.assertGreaterEqual(len(failures()), min(20, len(attacks)), "the first 20 of any second are audited")
        self.assertEqual({(e["principal"], e["outcome"], e["resource"], e["details"]["credential"])
                          for e in failures()}, {("anonymous", "deny", "route:GET /v1/agents", "other")})
        export = self.client.get("/v1/audit/export").text
        self.assertEqual([name for name, token in attacks.items() if token.split(".")[1] in export
                          and len(token.split(".")[1]) > 10], [], "tokens (or their payloads) in the audit log")

    def metric(self, name):
        text = self.client.get("/metrics").text
        values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")
                  or line.startswith(name + "{")]
        self.assertEqual(len(values), 1, f"{name} in /metrics")
        return values[0]


class OidcJwksUrlTest(IdentityTestBase):
    """An issuer with jwks_url: its keys come from a local HTTP server."""

    def jwks_issuer_server(self, checkpoint_ms):
        jwks = JwksServer({"keys": [self.keys["EdDSA"].jwk()]})
        self.addCleanup(jwks.stop)
        path = os.path.join(self.tmp, f"issuers-url-{checkpoint_ms}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"issuers": [{"issuer": IDP, "audience": AUDIENCE, "jwks_url": jwks.url}]}, f)
        self.server.stop()
        server = self.start_process(ContinuumServer(
            self.tmp, os.path.join(self.tmp, f"data-url-{checkpoint_ms}"), self.api_key, self.mock.base_url,
            env={"CONTINUUM_OIDC_ISSUERS_FILE": path, "CONTINUUM_AUDIT_CHECKPOINT_MS": str(checkpoint_ms)}))
        return jwks, server

    def wait_accepted(self, server, token, timeout_s=20):
        """Polls until `token` is accepted (503 while the keys are not loaded yet)."""
        seen = []

        def accepted():
            resp = server.client().get("/v1/agents", api_key=token)
            seen.append(resp.status)
            if resp.status not in (200, 503):
                raise AssertionError(f"unexpected {resp}")
            return resp.status == 200
        try:
            wait_until(accepted, timeout_s=timeout_s, interval_s=0.1, message="the issuer's keys to be fetched")
        except AssertionError as error:
            raise AssertionError(f"{error}; statuses seen: {sorted(set(seen))}") from None

    def test_keys_are_fetched_at_start(self):
        # Audit checkpoints hourly: the first fetch must not wait for one.
        jwks, server = self.jwks_issuer_server(checkpoint_ms=3_600_000)
        token = self.oidc("remote-admin", ["admin"])
        self.wait_accepted(server, token)
        self.assertGreaterEqual(jwks.fetches, 1)
        forged = mint(IdpKey("EdDSA", "ed-1"), claims_for("remote-admin", ["admin"]))
        self.assertEqual(server.client().get("/v1/agents", api_key=forged).status, 401)

    def test_keys_are_not_refetched_at_every_audit_checkpoint(self):
        # Checkpoints every 100 ms; the keys are refreshed every 10 minutes, not with each.
        jwks, server = self.jwks_issuer_server(checkpoint_ms=100)
        self.wait_accepted(server, self.oidc("remote-admin", ["admin"]))
        after_first = jwks.fetches
        time.sleep(3)  # some 30 checkpoints (fewer on a slow machine, which only makes this weaker)
        self.assertLessEqual(jwks.fetches - after_first, 1,
                             f"{jwks.fetches} fetches of the issuer's keys within seconds of the start")


if __name__ == "__main__":
    unittest.main()


# Tokens expire at the issuing second (truncated) plus the lifetime: with 1 s, a token
# could be expired before the tool saw it (it failed so once under load). 2 s leave
# at least a second.
ROTATION_TTL_S = 2


class ToolIdentityRotationTest(IdentityTestBase):
    """Rotation: a key is replaced only once it is older than the token lifetime (2 s here)."""
    SERVER_ENV = {"CONTINUUM_IDENTITY_ISSUER": CONTINUUM_ISSUER, "CONTINUUM_TOOL_TOKEN_TTL_S": str(ROTATION_TTL_S)}
    ISSUER = CONTINUUM_ISSUER
    oidc_env = ToolIdentityTest.oidc_env

    def test_rotation_publishes_the_new_key_and_keeps_the_newest_three(self):
        self.identity_agent("rotor")
        session = self.new_session("rotor")
        _, _, (first,) = self.run_in(session)
        kid1 = first["header"]["kid"]
        self.assertEqual([k["kid"] for k in self.client.get(JWKS_PATH, auth=False).body["keys"]], [kid1])

        member = Client(self.server.base_url, self.client.post("/v1/api-keys", {"user": "mo"}).body["token"])
        self.assert_error(member.post("/v1/identity/rotate"), 403, "permission_error", check_param=False)
        self.assertEqual(self.client.post("/v1/identity/rotate", auth=False).status, 401)
        self.assertEqual(self.client.post("/v1/identity/rotate", api_key=self.oidc("x", ["member"])).status, 403)
        self.assertEqual([k["kid"] for k in self.client.get(JWKS_PATH, auth=False).body["keys"]], [kid1],
                         "refused rotations changed nothing")

        too_soon = self.client.post("/v1/identity/rotate")
        self.assertEqual(too_soon.status, 409, "a key younger than the token lifetime is not replaced")
        acme = Client(self.server.base_url,
                      self.client.post("/v1/api-keys", {"user": "root", "roles": ["admin"], "tenant": "acme"}).body["token"])
        self.assertEqual(acme.post("/v1/identity/rotate").status, 403, "one key set serves all tenants")
        time.sleep(ROTATION_TTL_S + 0.2)
        rotated = self.client.post("/v1/identity/rotate")
        self.assertEqual(rotated.status, 200, rotated)
        kid2 = rotated.body["kid"]
        self.assertEqual(rotated.body, {"object": "identity_key", "kid": kid2, "current": True})
        self.assertNotEqual(kid2, kid1)
        self.assertEqual(sorted(k["kid"] for k in self.client.get(JWKS_PATH, auth=False).body["keys"]),
                         sorted([kid1, kid2]), "the old key stays published")
        _, _, (second,) = self.run_in(session)
        self.assertEqual(second["header"]["kid"], kid2, "new calls are signed by the new key")
        # A token signed before the rotation still verifies against the published set.
        jwks_now = self.client.get(JWKS_PATH, auth=False).body
        verify_identity_token(first["token"], jwks_now, CONTINUUM_ISSUER, self.tool.url("whoami"),
                              first["claims"]["iat"])

        admin_oidc = self.oidc("ops", ["admin"], alg="RS256")
        kids = [kid1, kid2]
        for client_token in (self.api_key, admin_oidc):
            time.sleep(ROTATION_TTL_S + 0.2)
            resp = self.client.post("/v1/identity/rotate", api_key=client_token)
            self.assertEqual(resp.status, 200, resp)
            kids.append(resp.body["kid"])
        self.assertEqual(len(set(kids)), 4)
        published = [k["kid"] for k in self.client.get(JWKS_PATH, auth=False).body["keys"]]
        self.assertEqual(sorted(published), sorted(kids[1:]), "the newest three")
        with self.assertRaisesRegex(ValueError, "is not in the JWKS"):
            verify_identity_token(first["token"], self.client.get(JWKS_PATH, auth=False).body, CONTINUUM_ISSUER,
                                  self.tool.url("whoami"), first["claims"]["iat"])

        mode = os.stat(os.path.join(self.server.data_dir, "tool-identity.keys")).st_mode
        self.assertEqual(mode & 0o077, 0, f"the identity keys are readable by others: {oct(mode)}")
        self.server.restart()
        self.client = self.server.client()
        self.assertEqual(sorted(k["kid"] for k in self.client.get(JWKS_PATH, auth=False).body["keys"]),
                         sorted(kids[1:]), "the keys survive a restart")
        _, _, (after,) = self.run_in(session)
        self.assertEqual(after["header"]["kid"], kids[-1], "the current key survives a restart")

        def audit(action):
            return self.client.get(f"/v1/audit?action={action}&limit=1000").body["data"]
        # identity:write decisions: two refused, four allowed (one of them too soon: 409).
        wait_until(lambda: len(audit("identity:rotate")) == 3 and len(audit("identity:write")) == 6,
                   message="every rotation, and every decision about one, audited")
        changes = audit("identity:rotate")
        self.assertEqual([e["resource"] for e in changes], [f"identity:{k}" for k in kids[1:]])
        self.assertEqual([e["outcome"] for e in changes], ["ok"] * 3)
        self.assertEqual(sorted(e["principal"] for e in changes), ["user:admin", "user:admin", "user:ops"])
        decisions = sorted((e["principal"], e["outcome"]) for e in audit("identity:write"))
        self.assertEqual(decisions, [("user:admin", "allow"), ("user:admin", "allow"), ("user:admin", "allow"),
                                     ("user:mo", "deny"), ("user:ops", "allow"), ("user:x", "deny")])
