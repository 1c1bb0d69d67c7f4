"""The audit log against the real binary: a per-tenant SHA-256 hash chain appended with
each change, Ed25519-signed checkpoints, the query/export/verify API, and the offline
`continuum audit verify`.

  workload             an agent, a session, a run with a tool call, a tool call denied by
                       policy, a request refused to a member, a bad token, a policy write,
                       a secret put, a key issued for another tenant -> the events are
                       there with the right action, outcome, principal, resource and run;
                       tenants see only their own chain
  query                GET /v1/audit filters (action, principal, run, since_ms, until_ms)
                       and pages (limit, after/next_cursor) agree with the full list;
                       bad parameters are 400s; a member gets 403 (and that refusal is
                       itself recorded), an auditor reads; `continuum audit list`
  nothing secret       the admin key, an issued key's token, a secret's value and a tool
                       argument are in no audit row (table, checkpoints) and no export
  concurrency          parallel requests leave one gap-free chain; it continues across a
                       restart
  offline tampering    (SQLite) on copies of a stopped server's data dir: edit a column,
                       edit the hashed event text, delete a record, swap two records,
                       truncate below the shutdown checkpoint -> `audit verify --data-dir`
                       exits 1 naming the first bad record; re-hashing the chain after an
                       edit, or a forged checkpoint signature, is still caught; untouched
                       -> exit 0
  export               `continuum audit export` is verifiable offline (by the CLI and by an
                       independent checker in this file: chain links and checkpoint
                       signatures by the key in <data>/audit-signing.key); an edited or
                       dropped line is BROKEN naming the record; a checkpoint key that is
                       not trusted is BROKEN
  PostgreSQL           the chain verifies online (GET /v1/audit/verify) and offline from an
                       export; an UPDATE behind the server is reported by both"""

import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness import (CLI_TIMEOUT_S, Client, ContinuumServer, IntegrationTest, binary, clean_env, describe,
                     http_tool, is_postgres_url, new_postgres_database, run_cli, tool_steps, wait_until)
from test_governance import issue_key

TENANT = "default"
FIRST_BAD_RE = re.compile(r"^first bad record: (\d+)$", re.M)
OK_RE = re.compile(r"^OK: (\d+) records and (\d+) signed checkpoints verified", re.M)
EVENT_FIELDS = ["action", "at_ms", "details", "hash", "object", "outcome", "principal", "resource", "run_id", "seq"]
GENESIS = b"\0" * 32


def sha256(data):
    return hashlib.sha256(data).digest()


def chain_hash(prev, seq, event_text):
    """hash(seq) = SHA-256(hash(seq-1) || seq as 8 bytes big-endian || canonical event)."""
    return sha256(prev + seq.to_bytes(8, "big") + event_text.encode("utf-8"))


def checkpoint_message(tenant, seq, hash_hex, at_ms):
    return f"continuum-audit-checkpoint/v1\n{tenant}\n{seq}\n{hash_hex}\n{at_ms}".encode()


def public_key_of_seed_file(path):
    """The raw Ed25519 public key of a key file holding a hex seed (<data>/audit-signing.key)."""
    with open(path, encoding="utf-8") as f:
        seed = bytes.fromhex(f.readline().strip())
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def parse_export(text):
    """The lines of an export: (events, checkpoints), each a list of dicts in file order."""
    events, checkpoints = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        {"event": events, "checkpoint": checkpoints}[record["type"]].append(record)
    return events, checkpoints


def independent_check(events, checkpoints, trusted_key=None):
    """Checks an export's chains without the server's code: every link and hash, every
    column against the hashed content, every checkpoint against the chain and its
    signature (by `trusted_key`, raw bytes, when given). Returns a list of problems."""
    problems = []
    by_tenant = {}
    for event in events:
        by_tenant.setdefault(event["tenant"], []).append(event)
    hashes = {}
    for tenant, chain in by_tenant.items():
        prev = GENESIS
        for expected_seq, event in enumerate(chain, 1):
            where = f"{tenant}#{event['seq']}"
            if event["seq"] != expected_seq:
                problems.append(f"{where}: expected seq {expected_seq}")
                break
            if bytes.fromhex(event["prev_hash"]) != prev:
                problems.append(f"{where}: prev_hash does not link")
            digest = chain_hash(prev, event["seq"], event["event"])
            if digest.hex() != event["hash"]:
                problems.append(f"{where}: hash mismatch")
            content = json.loads(event["event"])
            for column in ("tenant", "at_ms", "principal", "action", "resource", "run_id", "outcome"):
                if content[column] != event[column]:
                    problems.append(f"{where}: column {column} differs from the hashed content")
            prev = digest
            hashes[(tenant, event["seq"])] = digest.hex()
    for checkpoint in checkpoints:
        where = f"checkpoint {checkpoint['tenant']}#{checkpoint['seq']}"
        if hashes.get((checkpoint["tenant"], checkpoint["seq"])) != checkpoint["hash"]:
            problems.append(f"{where}: does not match the chain")
        key = bytes.fromhex(checkpoint["public_key"])
        if trusted_key is not None and key != trusted_key:
            problems.append(f"{where}: signed by an unexpected key")
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(
                bytes.fromhex(checkpoint["signature"]),
                checkpoint_message(checkpoint["tenant"], checkpoint["seq"], checkpoint["hash"], checkpoint["at_ms"]))
        except Exception as error:  # InvalidSignature, or a malformed key
            problems.append(f"{where}: signature does not verify ({type(error).__name__})")
    return problems


class AuditTestBase(IntegrationTest):
    SCRIPTS = {
        "lookup_once": {"steps": [{"tool_calls": [{"name": "lookup", "arguments": {"q": "{{input}}"}}]},
                                  {"content": "found {{tool_results}}"}]},
        "dangerous_once": {"steps": [{"tool_calls": [{"name": "wipe", "arguments": {"target": "{{input}}"}}]},
                                     {"content": "tool said {{tool_results}}"}]},
    }
    SERVER_ENV = {"CONTINUUM_AUDIT_CHECKPOINT_MS": "100"}

    def setUp(self):
        super().setUp()
        self.restart_with(self.SERVER_ENV)

    def restart_with(self, env):
        self.server.stop()
        self.server.extra_env.update(env)
        self.server.start()
        self.client = self.server.client()

    # --- reading the log ---------------------------------------------------------

    def audit_page(self, query="", client=None, expect=200):
        resp = (client or self.client).get("/v1/audit" + query)
        self.assertEqual(resp.status, expect, resp)
        return resp.body

    def all_events(self, query="", page=1000, client=None):
        """Every event of the caller's tenant matching `query` (e.g. "action=x"), all pages."""
        events, after = [], 0
        for _ in range(10_000):
            sep = "&" if query else ""
            body = self.audit_page(f"?{query}{sep}limit={page}&after={after}", client)
            self.assertEqual(body["object"], "list", body)
            events.extend(body["data"])
            if not body["has_more"]:
                self.assertIsNone(body["next_cursor"], body)
                return events
            after = body["next_cursor"]
            self.assertEqual(after, body["data"][-1]["seq"], body)
        raise AssertionError("too many pages")

    def assert_verifies_online_and_from_the_export(self, export, events, checkpoints, file_name, *cli_args):
        """GET /v1/audit/verify and `audit verify --file` both check every record and checkpoint."""
        verification = self.client.ok("GET", "/v1/audit/verify", expect=200)
        self.assertEqual((verification["ok"], verification["events_checked"], verification["checkpoints_checked"]),
                         (True, events, checkpoints), verification)
        path = os.path.join(self.tmp, file_name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(export)
        self.assert_verified(self.verify_cli("--file", path, *cli_args), records=events)

    def wait_for_event(self, predicate, message, client=None):
        """Some API decisions are appended after the answer is sent: poll for them."""
        return wait_until(lambda: [e for e in self.all_events(client=client) if predicate(e)], message=message)

    def settle(self):
        """Waits until the log stops growing (refusals are appended after their answers)."""
        seen = [-1]

        def unchanged():
            time.sleep(0.2)
            count = len(self.all_events())
            stable, seen[0] = count == seen[0], count
            return stable
        wait_until(unchanged, message="the audit log to stop growing")

    def export_text(self, client=None):
        resp = (client or self.client).get("/v1/audit/export")
        self.assertEqual(resp.status, 200, resp)
        self.assertTrue(resp.headers.get("content-type", "").startswith("application/x-ndjson"), resp.headers)
        return resp.text

    def export_when_checkpointed(self, client=None):
        """An export whose newest checkpoint covers the newest event (checkpoints come
        every 100 ms here), once the log has stopped growing."""
        def covered():
            text = self.export_text(client)
            events, checkpoints = parse_export(text)
            if events and checkpoints and max(c["seq"] for c in checkpoints) == events[-1]["seq"]:
                return text
            return None
        return wait_until(covered, message="a checkpoint covering the newest audit event")

    def verify_cli(self, *args):
        return run_cli(["audit", "verify", *args], clean_env(), self.tmp)

    def assert_verified(self, result, records=None):
        self.assertEqual(result.returncode, 0, describe(result))
        match = OK_RE.search(result.stdout)
        self.assertIsNotNone(match, describe(result))
        if records is not None:
            self.assertEqual(int(match.group(1)), records, describe(result))
        self.assertNotIn("BROKEN", result.stdout, describe(result))
        return int(match.group(1)), int(match.group(2))

    def assert_broken(self, result, first_bad=None, tenant=TENANT, problem=None):
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertIn(f"BROKEN: tenant {tenant}: ", result.stdout, describe(result))
        self.assertNotIn("OK:", result.stdout, describe(result))
        if first_bad is not None:
            self.assertEqual(FIRST_BAD_RE.findall(result.stdout), [str(first_bad)], describe(result))
        if problem is not None:
            self.assertIn(problem, result.stdout, describe(result))

    # --- a workload ---------------------------------------------------------------

    def workload(self):
        """Does a bit of everything that is audited; returns what it made and the
        strings that must never reach the audit log."""
        w = {"arg_canary": "arg-canary-" + secrets.token_hex(8), "secret_value": "sk-canary-" + secrets.token_hex(16)}
        lookup = http_tool(self.tools, "lookup", {"type": "object", "properties": {"q": {"type": "string"}}})
        wipe = http_tool(self.tools, "wipe", {"type": "object", "properties": {"target": {"type": "string"}}})
        self.make_agent("auditee", "lookup_once", tools=[lookup])
        self.make_agent("wrecker", "dangerous_once", tools=[wipe])
        w["session"] = self.client.post("/v1/sessions", {"agent": "auditee", "user": "alice"}).body["id"]
        run = self.client.start_run(w["session"], f"find {w['arg_canary']}", wait=True)
        self.assertEqual(run["status"], "completed", run)
        w["run"] = run["id"]
        (w["tool_step"],) = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(len(self.tools.ledger()), 1, "the tool was called once")

        bob = issue_key(self.client, "bob", ["member"])
        w["bob_token"], w["bob_key"] = bob["token"], bob["id"]
        bob_client = Client(self.server.base_url, bob["token"])
        refused = bob_client.post("/v1/agents", {"name": "bobs-agent", "model": {"provider": "openai", "model": "x"},
                                                 "instructions": "x", "tools": []})
        self.assertEqual(refused.status, 403, refused)

        w["bad_token"] = "ck_" + secrets.token_hex(8) + "_" + secrets.token_hex(24)
        self.assertEqual(self.client.get("/v1/agents", api_key=w["bad_token"]).status, 401)

        document = self.client.ok("GET", "/v1/policy", expect=200)["document"]
        document["statements"].append({"id": "no-wiping", "effect": "deny", "principal": "*",
                                       "action": "tool:invoke", "resource": "tool:wipe"})
        policy = self.client.put("/v1/policy", {"document": document})
        self.assertEqual(policy.status, 201, policy)
        w["policy_version"] = policy.body["version"]

        secret = self.client.put("/v1/secrets/crm-token", {"value": w["secret_value"]})
        self.assertEqual(secret.status, 200, secret)

        w["wreck_session"] = self.new_session("wrecker")
        wreck = self.client.start_run(w["wreck_session"], f"everything {w['arg_canary']}", wait=True)
        self.assertEqual(wreck["status"], "completed", wreck)
        w["wreck_run"] = wreck["id"]
        (w["wreck_step"],) = tool_steps(self.client.steps(wreck["id"]))
        self.assertTrue(w["wreck_step"]["payload"]["is_error"], w["wreck_step"])
        self.assertEqual(len(self.tools.ledger()), 1, "the denied tool was not called")

        carol = issue_key(self.client, "carol", ["admin"], tenant="acme")
        w["carol_token"] = carol["token"]
        w["acme"] = Client(self.server.base_url, carol["token"])
        w["acme"].create_agent({"name": "acme-bot", "model": {"provider": "openai", "model": "x"},
                                "instructions": "x", "tools": []})
        # The last events are appended after their answers: wait for them.
        self.wait_for_event(lambda e: e["action"] == "auth:fail", "the auth:fail event")
        self.wait_for_event(lambda e: e["principal"] == "user:bob" and e["outcome"] == "deny", "bob's refusal")
        self.settle()
        w["never"] = {"admin API key": self.api_key, "bob's token": w["bob_token"],
                      "bob's token secret": w["bob_token"].rsplit("_", 1)[1], "carol's token": w["carol_token"],
                      "the bad token": w["bad_token"], "the secret's value": w["secret_value"],
                      "a tool argument": w["arg_canary"]}
        return w

    def stored_audit_text(self):
        """Every row of the audit tables, as text (bytes columns as hex too)."""
        if is_postgres_url(self.server.store):
            result = subprocess.run(["psql", "-AtX", self.server.store, "-c",
                                     "SELECT * FROM audit_events; SELECT * FROM audit_checkpoints"],
                                    capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
            self.assertEqual(result.returncode, 0, result.stderr)
            return result.stdout
        conn = sqlite3.connect(f"file:{os.path.join(self.server.data_dir, 'continuum.db')}?mode=ro", uri=True)
        conn.text_factory = bytes  # the hash columns hold raw bytes
        try:
            parts = []
            for table in ("audit_events", "audit_checkpoints"):
                for row in conn.execute(f"SELECT * FROM {table}"):
                    for value in row:
                        if isinstance(value, bytes):
                            parts += [value.hex(), value.decode("utf-8", errors="replace")]
                        else:
                            parts.append(str(value))
            return "\n".join(parts)
        finally:
            conn.close()


class AuditLogTest(AuditTestBase):

    def test_workload_is_recorded_with_actions_outcomes_and_principals(self):
        w = self.workload()
        events = self.all_events()
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)), "a gap-free chain")
        for event in events:
            self.assertEqual(sorted(event), EVENT_FIELDS, event)
            self.assertEqual(event["object"], "audit_event")
            self.assertRegex(event["hash"], r"^[0-9a-f]{64}$")
        self.assertEqual(len({e["hash"] for e in events}), len(events))

        def find(**fields):
            return [e for e in events if all(e[k] == v for k, v in fields.items())]

        def one(**fields):
            found = find(**fields)
            self.assertEqual(len(found), 1, f"{fields}: {json.dumps(found)[:1500]}")
            return found[0]

        # Changes, each beside the (allowed) decision that let it happen.
        one(action="agent:write", resource="agent:auditee", outcome="ok", principal="user:admin")
        decision = one(action="agent:write", resource="agent:auditee", outcome="allow", principal="user:admin")
        self.assertEqual(decision["details"]["statement"], "admins-do-everything", decision)
        self.assertEqual(decision["details"]["credential"], "config", decision)
        self.assertRegex(decision["details"]["inputs_hash"], r"^[0-9a-f]{64}$")
        policy = one(action="policy:write", outcome="ok")
        self.assertEqual((policy["principal"], policy["resource"]), ("user:admin", f"policy:{w['policy_version']}"))
        one(action="secret:write", resource="secret:crm-token", outcome="ok", principal="user:admin")
        issued = find(action="apikey:create", outcome="ok", principal="user:admin")
        self.assertIn(f"apikey:{w['bob_key']}", [e["resource"] for e in issued], issued)
        self.assertEqual(sorted((e["details"]["tenant"], e["details"]["user"]) for e in issued),
                         [("acme", "carol"), ("default", "bob")], issued)

        # The member's refusal names the member, the rule (none: default deny) and the key.
        refusal = one(principal="user:bob", action="agent:write", outcome="deny")
        self.assertEqual(refusal["details"]["credential"], w["bob_key"], refusal)
        self.assertEqual(find(principal="user:bob", outcome="ok"), [], "the refused change did not happen")

        # The bad token: anonymous, in the system tenant's chain.
        failed = one(action="auth:fail")
        self.assertEqual((failed["principal"], failed["outcome"], failed["resource"]),
                         ("anonymous", "deny", "route:GET /v1/agents"), failed)
        self.assertEqual(failed["details"]["credential"], "api_key", failed)

        # The run's lifecycle and effects, by the agent, on the run.
        run_events = find(run_id=w["run"])
        self.assertTrue(all(e["principal"] == "agent:auditee" for e in run_events), run_events)
        lifecycle = [(e["action"], e["outcome"]) for e in run_events if e["action"].startswith("run:")]
        self.assertEqual(lifecycle, [("run:create", "queued"), ("run:start", "running"),
                                     ("run:complete", "completed")], run_events)
        effects = [(e["action"], e["resource"], e["outcome"]) for e in run_events
                   if e["action"] in ("tool:invoke", "model:invoke")]
        self.assertEqual(effects, [("model:invoke", "model:lookup_once", "allow"),
                                   ("tool:invoke", "tool:lookup", "allow"),
                                   ("model:invoke", "model:lookup_once", "allow")], run_events)
        tool_event = one(run_id=w["run"], action="tool:invoke")
        self.assertEqual(tool_event["details"]["seq"], w["tool_step"]["seq"], tool_event)
        self.assertEqual(tool_event["details"]["on_behalf_of"], "alice", tool_event)
        self.assertEqual(tool_event["details"]["statement"], "agents-use-tools-and-models", tool_event)
        self.assertRegex(tool_event["details"]["inputs_hash"], r"^[0-9a-f]{64}$")

        # The tool call the new policy denied: recorded as a deny by the statement.
        denied = one(run_id=w["wreck_run"], action="tool:invoke")
        self.assertEqual((denied["resource"], denied["outcome"], denied["principal"]),
                         ("tool:wipe", "deny", "agent:wrecker"), denied)
        self.assertEqual(denied["details"]["statement"], "no-wiping", denied)
        self.assertEqual(denied["details"]["seq"], w["wreck_step"]["seq"], denied)
        self.assertEqual(denied["details"]["on_behalf_of"], "admin", "a session without user is its creator's")
        one(run_id=w["wreck_run"], action="run:complete", outcome="completed")

        # Reads that were allowed are not recorded (GET /v1/audit itself, GET /v1/policy...).
        self.assertEqual(find(action="audit:read"), [])
        self.assertEqual(find(action="policy:read"), [])

        # Tenants: acme's chain is its own, numbered from 1; neither sees the other's.
        acme_events = self.all_events(client=w["acme"])
        self.assertEqual([e["seq"] for e in acme_events], list(range(1, len(acme_events) + 1)))
        self.assertEqual({e["principal"] for e in acme_events}, {"user:carol"}, acme_events)
        self.assertIn(("agent:write", "agent:acme-bot", "ok"),
                      [(e["action"], e["resource"], e["outcome"]) for e in acme_events])
        self.assertEqual(find(resource="agent:acme-bot"), [], "acme's events are not in default's chain")
        self.assertEqual(w["acme"].get("/v1/audit/verify").body["events_checked"], len(acme_events))

        verification = self.client.ok("GET", "/v1/audit/verify", expect=200)
        self.assertEqual(verification, {"object": "audit_verification", "ok": True, "broken_seq": None,
                                        "problem": None, "events_checked": len(self.all_events()),
                                        "checkpoints_checked": verification["checkpoints_checked"]})

    def test_auth_failure_records_the_client_address(self):
        # Regression: check_head's request copy had no remote address, so every auth:fail said "remote": "".
        self.assertEqual(self.client.get("/v1/agents", api_key="not-a-key").status, 401)
        (failed,) = self.wait_for_event(lambda e: e["action"] == "auth:fail", "the auth:fail event")
        self.assertEqual(failed["details"]["path"], "/v1/agents", failed)
        self.assertEqual(failed["details"]["credential"], "other", failed)
        self.assertEqual(failed["details"]["remote"], "127.0.0.1", failed)

    def test_allowed_reads_are_recorded_only_with_audit_reads(self):
        self.assertEqual(self.client.get("/v1/agents").status, 200)
        self.assertEqual(self.client.post("/v1/agents", {"name": "probe", "model": {"model": "m"}}).status, 201)
        self.wait_for_event(lambda e: e["action"] == "agent:write", "the write")
        self.assertEqual([e for e in self.all_events("action=agent:read")], [], "reads are not recorded by default")
        self.restart_with({"CONTINUUM_AUDIT_READS": "true"})
        self.assertEqual(self.client.get("/v1/agents").status, 200)
        (read,) = self.wait_for_event(lambda e: e["action"] == "agent:read", "the read")
        self.assertEqual((read["principal"], read["outcome"], read["resource"]), ("user:admin", "allow", "agent:*"))

    def test_filters_and_pages(self):
        w = self.workload()
        events = self.all_events()
        self.assertGreater(len(events), 20, "enough events to page through")
        for query, expected in (
                ("action=tool:invoke", [e for e in events if e["action"] == "tool:invoke"]),
                ("principal=user:bob", [e for e in events if e["principal"] == "user:bob"]),
                ("principal=anonymous", [e for e in events if e["principal"] == "anonymous"]),
                (f"run={w['run']}", [e for e in events if e["run_id"] == w["run"]]),
                (f"run={w['run']}&action=tool:invoke",
                 [e for e in events if e["run_id"] == w["run"] and e["action"] == "tool:invoke"]),
                ("action=no:such-action", [])):
            with self.subTest(query=query):
                self.assertEqual(self.all_events(query), expected)
                self.assertEqual(self.all_events(query, page=1), expected, "the same one page at a time")
                self.assertTrue(expected or query.startswith("action=no"), "each filter matches something")

        # Time windows: since_ms is inclusive, until_ms exclusive.
        middle = events[len(events) // 2]["at_ms"]
        late = events[-3]["at_ms"]
        for query, expected in (
                (f"since_ms={middle}", [e for e in events if e["at_ms"] >= middle]),
                (f"until_ms={middle}", [e for e in events if e["at_ms"] < middle]),
                (f"since_ms={middle}&until_ms={late}", [e for e in events if middle <= e["at_ms"] < late]),
                (f"since_ms={middle}&action=tool:invoke",
                 [e for e in events if e["at_ms"] >= middle and e["action"] == "tool:invoke"])):
            with self.subTest(query=query):
                self.assertEqual(self.all_events(query), expected)

        # Pages: limit and the cursor.
        first = self.audit_page("?limit=5")
        self.assertEqual((first["data"], first["has_more"], first["next_cursor"]), (events[:5], True, 5))
        second = self.audit_page("?limit=5&after=5")
        self.assertEqual(second["data"], events[5:10])
        last = self.audit_page(f"?limit=1000&after={events[-2]['seq']}")
        self.assertEqual((last["data"], last["has_more"], last["next_cursor"]), ([events[-1]], False, None))
        self.assertEqual(self.audit_page(f"?after={events[-1]['seq']}")["data"], [])
        self.assertEqual(len(self.audit_page("")["data"]), min(100, len(events)), "100 by default")
        self.assertEqual(self.all_events(page=7), events)
        for query, param in (("?limit=0", "limit"), ("?limit=1001", "limit"), ("?limit=ten", "limit"),
                             ("?after=-1", "after"), ("?since_ms=yesterday", "since_ms"), ("?until_ms=-5", "until_ms")):
            with self.subTest(bad=query):
                self.assert_error(self.client.get("/v1/audit" + query), 400, "invalid_request_error", param=param)

        # Who may read it: not members (and the refusal is itself recorded), auditors yes.
        bob = Client(self.server.base_url, w["bob_token"])
        for path in ("/v1/audit", "/v1/audit/export", "/v1/audit/verify"):
            with self.subTest(member=path):
                self.assert_error(bob.get(path), 403, "permission_error", check_param=False)
            self.assertEqual(self.client.get(path, auth=False).status, 401)
        self.wait_for_event(lambda e: e["principal"] == "user:bob" and e["action"] == "audit:read"
                            and e["outcome"] == "deny", "bob's refused audit reads")
        auditor = Client(self.server.base_url, issue_key(self.client, "ada", ["auditor"])["token"])
        self.assertEqual(self.all_events("action=tool:invoke", client=auditor),
                         [e for e in events if e["action"] == "tool:invoke"])

        # The CLI lists the same.
        result = self.cli("audit", "list", "--run", w["run"], "--action", "tool:invoke", "--limit", "5")
        self.assertEqual(result.returncode, 0, describe(result))
        self.assertEqual(json.loads(result.stdout)["data"],
                         [e for e in events if e["run_id"] == w["run"] and e["action"] == "tool:invoke"])
        result = self.cli("audit", "list", "--principal", "user:bob", "--limit", "1")
        self.assertEqual(result.returncode, 0, describe(result))
        listed = json.loads(result.stdout)
        self.assertEqual((len(listed["data"]), listed["data"][0]["principal"], listed["has_more"]),
                         (1, "user:bob", True), listed)

    def test_tokens_secrets_and_arguments_never_reach_the_log(self):
        w = self.workload()
        export = self.export_when_checkpointed()
        cli_export = os.path.join(self.tmp, "cli-export.jsonl")
        result = self.cli("audit", "export", "-o", cli_export)
        self.assertEqual(result.returncode, 0, describe(result))
        with open(cli_export, encoding="utf-8") as f:
            cli_text = f.read()
        self.assertEqual(parse_export(cli_text)[0], parse_export(export)[0], "the CLI writes the API's export")
        self.assertTrue(w["arg_canary"] in json.dumps(self.client.steps(w["run"])),
                        "control: the argument is in the journal, where it belongs")
        listing = json.dumps(self.all_events()) + json.dumps(self.all_events(client=w["acme"]))
        acme_export = self.export_text(client=w["acme"])
        self.assertEqual(self.server.stop(), 0)
        stored = self.stored_audit_text()
        places = {"GET /v1/audit": listing, "export": export, "CLI export": cli_text, "audit tables": stored,
                  "acme's export": acme_export}
        exposed = sorted(f"{name} in {place}" for name, value in w["never"].items()
                         for place, text in places.items() if value in text or value.encode().hex() in text)
        self.assertEqual(exposed, [])
        self.assertIn(w["bob_key"], stored, "control: the scan sees the audit rows (bob's key id is there)")

    def test_concurrent_writers_leave_one_gap_free_chain_that_continues_after_a_restart(self):
        self.make_agent("busy", "lookup_once", tools=[http_tool(self.tools, "lookup")])
        member = Client(self.server.base_url, issue_key(self.client, "mo", ["member"])["token"])
        errors = []

        def hammer(index):
            try:
                if index % 3 == 0:
                    self.assertEqual(member.post("/v1/agents", {"name": f"m{index}", "instructions": "x", "tools": [],
                                                                "model": {"provider": "openai", "model": "x"}}).status,
                                     403)
                elif index % 3 == 1:
                    self.assertEqual(self.client.get("/v1/agents", api_key=f"nope-{index}").status, 401)
                else:
                    session = self.client.create_session("busy")["id"]
                    self.client.start_run(session, f"q{index}", wait=True)
            except Exception as error:  # noqa: BLE001 (reported below)
                errors.append(repr(error))

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        expected = lambda events: (sum(e["action"] == "auth:fail" for e in events) == 10  # noqa: E731
                                   and sum(e["principal"] == "user:mo" and e["outcome"] == "deny" for e in events) == 10
                                   and sum(e["action"] == "run:complete" for e in events) == 10)
        wait_until(lambda: expected(self.all_events()), message="all the concurrent events")
        before = self.all_events()
        self.assertEqual([e["seq"] for e in before], list(range(1, len(before) + 1)))
        self.assertTrue(self.client.ok("GET", "/v1/audit/verify", expect=200)["ok"])

        self.server.restart()
        self.client = self.server.client()
        self.assertEqual(self.client.get("/v1/agents", api_key="after-restart").status, 401)
        after = self.wait_for_event(lambda e: e["seq"] > len(before), "an event after the restart")
        self.assertEqual(after[0]["seq"], len(before) + 1, "the chain continues where it was")
        self.assertEqual(self.all_events()[:len(before)], before, "what was there is unchanged")
        verification = self.client.ok("GET", "/v1/audit/verify", expect=200)
        self.assertEqual((verification["ok"], verification["events_checked"]), (True, len(before) + 1), verification)
        self.assertGreaterEqual(verification["checkpoints_checked"], 1, "the shutdown signed a checkpoint")


class AuditExportTest(AuditTestBase):

    def test_export_verifies_offline_and_edits_to_it_are_found(self):
        self.workload()
        export = self.export_when_checkpointed()
        events, checkpoints = parse_export(export)
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        self.assertEqual({e["tenant"] for e in events}, {TENANT}, "the caller's tenant only")
        self.assertEqual([(e["seq"], e["hash"]) for e in events], [(e["seq"], e["hash"]) for e in self.all_events()])
        self.assertEqual(sorted(c["seq"] for c in checkpoints), [c["seq"] for c in checkpoints])
        data_key = public_key_of_seed_file(os.path.join(self.server.data_dir, "audit-signing.key"))
        # An independent check: the chain and the checkpoints' signatures, by the data dir's key.
        self.assertEqual(independent_check(events, checkpoints, trusted_key=data_key), [])
        self.assertTrue(all(c["key_id"] for c in checkpoints), checkpoints)

        path = os.path.join(self.tmp, "audit.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(export)
        self.assert_verified(self.verify_cli("--file", path), records=len(events))
        records, signed = self.assert_verified(self.verify_cli("--file", path, "--public-key", data_key.hex()))
        self.assertEqual(signed, len(checkpoints))

        lines = export.splitlines()
        index = {json.loads(line)["seq"]: i for i, line in enumerate(lines) if '"type":"event"' in line}
        k = next(e["seq"] for e in events if e["outcome"] == "deny" and e["principal"] == "user:bob")
        self.assertLess(k, events[-1]["seq"])

        def tampered(name, change):
            copy = list(lines)
            change(copy)
            target = os.path.join(self.tmp, f"tampered-{name}.jsonl")
            with open(target, "w", encoding="utf-8") as f:
                f.write("\n".join(copy) + "\n")
            return target

        def edit_event(copy):  # a denial becomes an allow, in the hashed text and the column
            record = json.loads(copy[index[k]])
            record["event"] = record["event"].replace('"outcome":"deny"', '"outcome":"allow"')
            record["outcome"] = "allow"
            copy[index[k]] = json.dumps(record)

        def edit_column(copy):
            record = json.loads(copy[index[k]])
            record["principal"] = "user:someone-else"
            copy[index[k]] = json.dumps(record)

        def drop(copy):
            del copy[index[k]]

        def swap(copy):
            copy[index[k]], copy[index[k + 1]] = copy[index[k + 1]], copy[index[k]]

        for name, change, problem in (("edit-event", edit_event, "does not match its hash"),
                                      ("edit-column", edit_column, "column principal"),
                                      ("drop", drop, f"record {k} is missing"),
                                      ("swap", swap, None)):
            with self.subTest(tamper=name):
                self.assert_broken(self.verify_cli("--file", tampered(name, change)), first_bad=k, problem=problem)

        # Truncation below a checkpoint: the checkpoint lines still name the dropped records.
        truncated = tampered("truncate", lambda copy: [copy.pop(index[s]) for s in sorted(index, reverse=True)
                                                       if s >= k])
        self.assert_broken(self.verify_cli("--file", truncated), first_bad=k)

        # Checkpoints by a key nobody trusts, or with a forged signature.
        stranger = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.assert_broken(self.verify_cli("--file", path, "--public-key", stranger.hex()), problem="untrusted key")
        self.assert_verified(self.verify_cli("--file", path, "--public-key", stranger.hex(),
                                             "--public-key", data_key.hex()))

        def forge(copy):
            at = next(i for i, line in enumerate(copy) if '"type":"checkpoint"' in line)
            record = json.loads(copy[at])
            record["signature"] = ("00" if record["signature"][:2] != "00" else "11") + record["signature"][2:]
            copy[at] = json.dumps(record)
        self.assert_broken(self.verify_cli("--file", tampered("forged", forge)), problem="invalid signature")
        self.assertNotEqual(self.verify_cli("--file", os.path.join(self.tmp, "no-such-export.jsonl")).returncode, 0)


    def test_export_and_verify_page_past_1000_events(self):
        # The export and GET /v1/audit/verify read the chain 1000 events at a time.
        member = Client(self.server.base_url, issue_key(self.client, "flood", ["member"])["token"])
        body = {"name": "nope", "model": {"provider": "openai", "model": "x"}, "instructions": "x", "tools": []}
        for _ in range(1050):
            self.assertEqual(member.post("/v1/agents", body).status, 403)
        wait_until(lambda: self.audit_page("?limit=1&after=1051")["data"], message="all the refusals")
        self.settle()
        events = self.all_events()
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        self.assertGreater(len(events), 1050)
        export = self.export_when_checkpointed()
        exported, checkpoints = parse_export(export)
        self.assertEqual([(e["seq"], e["hash"]) for e in exported], [(e["seq"], e["hash"]) for e in events])
        self.assertEqual(independent_check(exported, checkpoints), [])
        self.assert_verifies_online_and_from_the_export(export, len(events), len(checkpoints), "big.jsonl")
        self.assertEqual(self.audit_page("?limit=1000")["next_cursor"], 1000)


@unittest.skipIf(os.environ.get("CONTINUUM_TEST_STORE", "sqlite") == "postgres",
                 "edits the SQLite file of a stopped server")
class AuditTamperingTest(AuditTestBase):
    """`continuum audit verify --data-dir` on edited copies of a stopped server's data dir."""

    SERVER_ENV = {"CONTINUUM_AUDIT_CHECKPOINT_MS": "3600000"}  # only the shutdown signs a checkpoint

    def test_offline_verify_names_the_first_tampered_record(self):
        self.workload()
        self.assertEqual(self.server.stop(), 0, "SIGTERM signs a final checkpoint")
        source = self.server.data_dir
        db = os.path.join(source, "continuum.db")
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            n = conn.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
            tenants = {row[0]: row[1] for row in
                       conn.execute("SELECT tenant_id, MAX(seq) FROM audit_events GROUP BY tenant_id")}
            top, = conn.execute("SELECT MAX(seq) FROM audit_checkpoints WHERE tenant_id = ?", (TENANT,)).fetchone()
            k, = conn.execute("SELECT seq FROM audit_events WHERE tenant_id = ? AND principal = 'user:bob' "
                              "AND outcome = 'deny'", (TENANT,)).fetchone()
            checkpoints = conn.execute("SELECT COUNT(*) FROM audit_checkpoints").fetchone()[0]
            span_run, span_first = conn.execute("SELECT run_id, first_seq FROM audit_run_spans WHERE tenant_id = ? "
                                                "ORDER BY first_seq LIMIT 1", (TENANT,)).fetchone()
        finally:
            conn.close()
        self.assertEqual(top, tenants[TENANT], "the shutdown checkpoint covers the whole chain")
        self.assertEqual(checkpoints, len(tenants), "one checkpoint per tenant, signed at shutdown")
        self.assertTrue(1 < k < tenants[TENANT], (k, tenants))
        self.assertEqual(sorted(tenants), ["acme", TENANT])
        mode = os.stat(os.path.join(source, "audit-signing.key")).st_mode
        self.assertEqual(mode & 0o077, 0, f"the signing key is readable by others: {oct(mode)}")

        records, signed = self.assert_verified(self.verify_cli("--data-dir", source), records=n)
        self.assertEqual(signed, checkpoints)
        copies = iter(range(1000))

        def tamper(statements, params=()):
            """A copy of the data dir with `statements` run on its database."""
            target = os.path.join(self.tmp, f"copy-{next(copies)}")
            shutil.copytree(source, target)
            conn = sqlite3.connect(os.path.join(target, "continuum.db"))
            try:
                for sql in statements:
                    conn.execute(sql, params)
                conn.commit()
            finally:
                conn.close()
            return target

        where = "WHERE tenant_id = 'default' AND seq = "
        cases = [
            ("edit a column (action)", [f"UPDATE audit_events SET action = 'agent:read' {where}{k}"],
             "column action differs"),
            ("edit a column (outcome)", [f"UPDATE audit_events SET outcome = 'allow' {where}{k}"],
             "column outcome differs"),
            ("edit the hashed event text",
             [f"UPDATE audit_events SET event = replace(event, '\"outcome\":\"deny\"', '\"outcome\":\"allow\"'), "
              f"outcome = 'allow' {where}{k}"], "does not match its hash"),
            ("delete a record", [f"DELETE FROM audit_events {where}{k}"], f"record {k} is missing"),
            ("swap two records", [f"UPDATE audit_events SET seq = -1 {where}{k}",
                                  f"UPDATE audit_events SET seq = {k} {where}{k + 1}",
                                  f"UPDATE audit_events SET seq = {k + 1} {where}-1"], None),
            ("truncate below the checkpoint", [f"DELETE FROM audit_events WHERE tenant_id = 'default' AND seq >= {k}"],
             "truncated below a signed checkpoint"),
        ]
        for name, statements, problem in cases:
            with self.subTest(tamper=name):
                self.assert_broken(self.verify_cli("--data-dir", tamper(statements)), first_bad=k, problem=problem)

        with self.subTest(tamper="delete a run's span (its records would be left out of ?run=)"):
            self.assert_broken(self.verify_cli("--data-dir", tamper(
                ["DELETE FROM audit_run_spans WHERE tenant_id = 'default' AND run_id = ? AND first_seq = ?"],
                (span_run, span_first))), first_bad=span_first, problem="in none of the run's spans")

        with self.subTest(tamper="another tenant's chain"):
            self.assert_broken(self.verify_cli("--data-dir", tamper(
                ["UPDATE audit_events SET principal = 'user:mallory' WHERE tenant_id = 'acme' AND seq = 1"])),
                first_bad=1, tenant="acme")

        with self.subTest(tamper="edit, then recompute every hash after it"):
            target = tamper([f"UPDATE audit_events SET event = replace(event, '\"outcome\":\"deny\"', "
                             f"'\"outcome\":\"allow\"'), outcome = 'allow' {where}{k}"])
            conn = sqlite3.connect(os.path.join(target, "continuum.db"))
            conn.text_factory = bytes
            try:
                rows = conn.execute("SELECT seq, event, prev_hash FROM audit_events WHERE tenant_id = 'default' "
                                    "ORDER BY seq").fetchall()
                prev = GENESIS
                for seq, event, _ in rows:
                    digest = chain_hash(prev, seq, event.decode("utf-8"))
                    if seq >= k:
                        conn.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE tenant_id = 'default' "
                                     "AND seq = ?", (prev, digest, seq))
                    prev = digest
                conn.commit()
            finally:
                conn.close()
            result = self.verify_cli("--data-dir", target)
            # The links are whole again; only the signed checkpoints can tell.
            self.assert_broken(result, problem="does not match the chain")

        with self.subTest(tamper="a forged checkpoint signature"):
            self.assert_broken(self.verify_cli("--data-dir", tamper(
                ["UPDATE audit_checkpoints SET signature = zeroblob(64) "
                 f"WHERE tenant_id = 'default' AND seq = {top}"])),
                problem="invalid signature")

        with self.subTest(tamper="a checkpoint by another key"):
            # Signed correctly, but by a key that is neither given nor the data dir's.
            other = Ed25519PrivateKey.generate()
            target = os.path.join(self.tmp, f"copy-{next(copies)}")
            shutil.copytree(source, target)
            conn = sqlite3.connect(os.path.join(target, "continuum.db"))
            conn.text_factory = bytes
            try:
                seq, digest, at_ms = conn.execute("SELECT seq, hash, at_ms FROM audit_checkpoints WHERE tenant_id = ? "
                                                  "AND seq = ?", (TENANT, top)).fetchone()
                signature = other.sign(checkpoint_message(TENANT, seq, bytes(digest).hex(), at_ms))
                public = other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
                conn.execute("UPDATE audit_checkpoints SET public_key = ?, signature = ? "
                             "WHERE tenant_id = ? AND seq = ?",
                             (public, signature, TENANT, seq))
                conn.commit()
            finally:
                conn.close()
            self.assert_broken(self.verify_cli("--data-dir", target), problem="untrusted key")

        # The original is untouched by all this.
        self.assert_verified(self.verify_cli("--data-dir", source), records=n)


class AuditOnPostgresTest(AuditTestBase):
    """The chain on PostgreSQL: verified online and from an export; an UPDATE behind the
    server's back is found by both."""

    def setUp(self):
        if not os.environ.get("CONTINUUM_TEST_POSTGRES_URL"):
            raise unittest.SkipTest("needs CONTINUUM_TEST_POSTGRES_URL")
        super().setUp()
        if not is_postgres_url(self.server.store):  # the SQLite pass: a PostgreSQL server of our own
            self.server.stop()
            self.server = self.start_process(ContinuumServer(
                self.tmp, os.path.join(self.tmp, "data-pg"), self.api_key, self.mock.base_url, env=self.SERVER_ENV,
                store=new_postgres_database()))
            self.client = self.server.client()

    def psql(self, sql):
        result = subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", self.server.store, "-c", sql],
                                capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_chain_verifies_online_and_offline_and_an_update_is_found(self):
        self.workload()
        export = self.export_when_checkpointed()
        events, checkpoints = parse_export(export)
        data_key = public_key_of_seed_file(os.path.join(self.server.data_dir, "audit-signing.key"))
        self.assertEqual(independent_check(events, checkpoints, trusted_key=data_key), [])
        self.assert_verifies_online_and_from_the_export(export, len(events), len(checkpoints), "pg-audit.jsonl",
                                                        "--public-key", data_key.hex())
        self.assertEqual(int(self.psql("SELECT COUNT(*) FROM audit_events WHERE tenant_id = 'default'")), len(events))

        k = next(e["seq"] for e in events if e["outcome"] == "deny" and e["principal"] == "user:bob")
        self.psql(f"UPDATE audit_events SET action = 'agent:read' WHERE tenant_id = 'default' AND seq = {k}")
        verification = self.client.ok("GET", "/v1/audit/verify", expect=200)
        self.assertEqual((verification["ok"], verification["broken_seq"]), (False, k), verification)
        self.assertIn("column action", verification["problem"], verification)
        path = os.path.join(self.tmp, "pg-audit-edited.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.export_text())
        self.assert_broken(self.verify_cli("--file", path), first_bad=k)

        self.psql(f"DELETE FROM audit_events WHERE tenant_id = 'default' AND seq = {k}")
        verification = self.client.ok("GET", "/v1/audit/verify", expect=200)
        self.assertEqual((verification["ok"], verification["broken_seq"]), (False, k), verification)


class AuditConfigTest(unittest.TestCase):

    def test_checkpoint_interval_below_the_minimum_is_refused(self):
        if not os.access(binary("continuum"), os.X_OK):
            raise unittest.SkipTest("binaries not built")
        data = tempfile.mkdtemp(prefix="continuum-audit-config-")
        self.addCleanup(shutil.rmtree, data, True)
        for value in ("99", "3600001", "often"):
            with self.subTest(value=value):
                result = run_cli(["serve", "--data", data, "--listen", "127.0.0.1:0"],
                                 clean_env(CONTINUUM_AUDIT_CHECKPOINT_MS=value, CONTINUUM_API_KEY="k-" + value), data)
                self.assertEqual(result.returncode, 2, describe(result))
                self.assertIn("audit_checkpoint_ms", result.stderr, describe(result))


    def test_offline_verify_refuses_bad_arguments(self):
        if not os.access(binary("continuum"), os.X_OK):
            raise unittest.SkipTest("binaries not built")
        work = tempfile.mkdtemp(prefix="continuum-audit-cli-")
        self.addCleanup(shutil.rmtree, work, True)
        export = os.path.join(work, "export.jsonl")
        with open(export, "w", encoding="utf-8") as f:
            f.write("")
        malformed = os.path.join(work, "malformed.jsonl")
        with open(malformed, "w", encoding="utf-8") as f:
            f.write('{"type": "event"}\n')
        cases = {
            "no input": ([], None),
            "both inputs": (["--data-dir", work, "--file", export], None),
            "a data dir without a store": (["--data-dir", work], "continuum.db"),
            "a missing export": (["--file", os.path.join(work, "nope.jsonl")], "nope.jsonl"),
            "a malformed export line": (["--file", malformed], "line 1"),
            "a short public key": (["--file", export, "--public-key", "ab" * 31], "64 hex digits"),
            # Regression: 64 characters that are not hex made std::stoi throw (abort, exit 134).
            "a public key that is not hex": (["--file", export, "--public-key", "zz" * 32], "64 hex digits"),
        }
        for case, (args, message) in cases.items():
            with self.subTest(case):
                result = run_cli(["audit", "verify", *args], clean_env(), work)
                self.assertGreater(result.returncode, 0, describe(result))  # negative: killed by a signal
                self.assertNotIn("OK:", result.stdout, describe(result))
                if message:
                    self.assertIn(message, result.stderr, describe(result))


if __name__ == "__main__":
    unittest.main()
