"""Encryption at rest against the real binary (docs: `encryption`, `encryption_keys`,
/v1/keys, `continuum keys`):

  plaintext scan   canaries sent through a run (input, session metadata, agent
                   instructions, tool arguments, tool result, final answer) come back
                   from the API but appear nowhere in the data dir (or in pg_dump);
                   with CONTINUUM_ENCRYPTION=false the same scan does find them
  tampering        a flipped byte, or a valid ciphertext moved to another row, is
                   answered 500 integrity_error, and the server stays up (SQLite only:
                   the test edits the database file while the server is stopped)
  shredding        `continuum keys shred --user alice` makes alice's data unreadable,
                   leaves everyone else's intact, and survives a restart
  rotation         `continuum keys new-kek` + `continuum keys rotate` rewraps every data
                   key, so the old key-encryption key can then be deleted
  validation       bad /v1/keys/shred bodies and bad session users are 400s"""

import json
import os
import secrets
import sqlite3
import stat
import subprocess
import unittest

from harness import (CLI_TIMEOUT_S, ContinuumServer, IntegrationTest, binary, clean_env, describe, http_tool,
                     is_postgres_url, model_spec, where_stored)

SEALED_MAGIC = b"\x00cs1"


def new_canary(kind):
    """A string that cannot occur by chance, tagged with what it was sent as."""
    return f"cnry{kind}{secrets.token_hex(12)}"


def sealed_header_size(value):
    """Bytes of the sealed value's header: magic, scope length, scope, 8-byte version."""
    assert value.startswith(SEALED_MAGIC), f"not a sealed value: {value[:16]!r}"
    return len(SEALED_MAGIC) + 1 + value[len(SEALED_MAGIC)] + 8


def sealed_scope_version(value):
    size = sealed_header_size(value)
    scope_len = value[len(SEALED_MAGIC)]
    scope = value[len(SEALED_MAGIC) + 1:len(SEALED_MAGIC) + 1 + scope_len].decode()
    return scope, int.from_bytes(value[size - 8:size], "big")


def flip_middle_byte(value):
    """The sealed value with one bit flipped in the middle of its AEAD part (past the header)."""
    header = sealed_header_size(value)
    index = header + (len(value) - header) // 2
    return value[:index] + bytes([value[index] ^ 0x01]) + value[index + 1:]


class EncryptionTest(IntegrationTest):
    SCRIPTS = {
        "turns": {"steps": [{"content": "turn {{turn}}: {{input}}"}]},
        "one_tool": {"steps": [{"tool_calls": [{"name": "the_tool", "arguments": {"q": "{{input}}"}}]},
                               {"content": "tool said {{tool_results}}"}]},
    }
    CANARY_KINDS = ("input", "meta", "spec", "args", "result", "answer")
    CANARY_TAGS = ("tenant", "user")  # one set per key scope: a session without and with a user

    def setUp(self):
        # Fresh canaries per test; the mock model's scripts carry them, so they are
        # built before the harness writes the script file.
        self.canaries = {tag: {kind: new_canary(kind) for kind in self.CANARY_KINDS} for tag in self.CANARY_TAGS}
        scripts = dict(type(self).SCRIPTS)
        for tag, canary in self.canaries.items():
            scripts[f"canary_{tag}"] = {"steps": [
                {"tool_calls": [{"name": f"echo_{tag}", "arguments": {"q": f"look up {canary['args']}"}}]},
                {"content": f"the answer is {canary['answer']}"}]}
        self.SCRIPTS = scripts
        super().setUp()

    # --- helpers ---------------------------------------------------------------

    def on_postgres(self):
        return is_postgres_url(self.server.store)

    def require_sqlite(self, what):
        if self.on_postgres():
            self.skipTest(f"{what} edits the SQLite file directly; this run's store is PostgreSQL")

    def restart(self):
        self.assertEqual(self.server.restart(), 0, "SIGTERM is a clean shutdown")
        self.client = self.server.client()

    def start_again(self):
        self.server.start()
        self.client = self.server.client()

    def cli_json(self, *args):
        result = self.cli(*args)
        self.assertEqual(result.returncode, 0, describe(result))
        try:
            return json.loads(result.stdout)
        except ValueError:
            self.fail(f"stdout is not JSON:{describe(result)}")

    def assert_integrity_error(self, resp):
        self.assert_error(resp, 500, "integrity_error", code="integrity_error", check_param=False)

    def assert_server_healthy(self, readable_session, expected_items):
        """The server is up, answers /healthz, and still serves an untouched session."""
        self.assertTrue(self.server.alive(), "the server died")
        self.assertEqual(self.client.get("/healthz").status, 200)
        self.assertEqual(self.client.items(readable_session), expected_items)

    def keys_by_scope(self):
        listing = self.client.ok("GET", "/v1/keys", expect=200)
        self.assertEqual(listing["object"], "list", listing)
        scopes = {}
        for key in listing["data"]:
            self.assertEqual(key["object"], "data_key", key)
            self.assertNotIn("wrapped_key", key, "key material is never listed")
            scopes.setdefault(key["scope"], []).append(key)
        for keys in scopes.values():
            keys.sort(key=lambda k: k["version"])
        return scopes

    def db(self):
        """The SQLite file, opened while the server is stopped; TEXT comes back as bytes."""
        self.assertFalse(self.server.alive(), "edit the database only while the server is stopped")
        conn = sqlite3.connect(os.path.join(self.server.data_dir, "continuum.db"))
        conn.text_factory = bytes
        self.addCleanup(conn.close)
        return conn

    def write_sealed(self, conn, sql, value, *params):
        """Runs an UPDATE storing `value` as TEXT, as the server does."""
        cursor = conn.execute(sql.replace("?", "CAST(? AS TEXT)", 1), (value, *params))
        self.assertEqual(cursor.rowcount, 1, sql)
        conn.commit()

    def where_canaries_are(self):
        """{canary: [places it was found]} for every canary of this test, looking in every
        file of the data dir (SQLite) or in `pg_dump --data-only` (PostgreSQL: payload
        columns are bytea, dumped as hex, so the canary's hex is searched too)."""
        return where_stored(self.server, [c for tag in self.canaries.values() for c in tag.values()])

    # --- driving canaries through the API ------------------------------------------

    def drive_canaries(self):
        """Sends each canary set through an agent, a session (with a user for "user") and
        a run that calls a tool; asserts the API returns every canary. Returns the
        sessions and runs by tag."""
        sessions, runs = {}, {}
        for tag, canary in self.canaries.items():
            self.tools.control(tools={f"echo_{tag}": {"body_hex": f"record {canary['result']}".encode().hex()}})
            name = f"canary-{tag}"
            tool = http_tool(self.tools, f"echo_{tag}", {"type": "object", "properties": {"q": {"type": "string"}}})
            self.client.create_agent({"name": name, "model": model_spec(self.mock, f"canary_{tag}"),
                                      "instructions": f"Be careful with {canary['spec']}.", "tools": [tool]})
            body = {"agent": name, "metadata": {"note": f"about {canary['meta']}"}}
            if tag == "user":
                body["user"] = "canary-user"
            session = self.client.ok("POST", "/v1/sessions", body, expect=201)
            run = self.client.start_run(session["id"], f"please check {canary['input']}", wait=True)
            self.assertEqual(run["status"], "completed", run)
            sessions[tag], runs[tag] = session["id"], run["id"]
            self.assert_api_returns_canaries(tag, session["id"], run["id"])
        return sessions, runs

    def assert_api_returns_canaries(self, tag, session_id, run_id):
        canary = self.canaries[tag]
        agent = self.client.ok("GET", f"/v1/agents/canary-{tag}", expect=200)
        self.assertIn(canary["spec"], agent["instructions"])
        session = self.client.ok("GET", f"/v1/sessions/{session_id}", expect=200)
        self.assertEqual(session["metadata"], {"note": f"about {canary['meta']}"})
        # Without "user", the session belongs to its creator (the admin key here).
        self.assertEqual(session["user"], "canary-user" if tag == "user" else "admin", session)
        run = self.client.run(run_id)
        self.assertEqual(run["input"], f"please check {canary['input']}")
        self.assertEqual(run["output"], f"the answer is {canary['answer']}")
        (step,) = [s for s in self.client.steps(run_id) if s["kind"] == "tool_call"]
        args = step["payload"]["arguments"]
        self.assertEqual(json.loads(args) if isinstance(args, str) else args, {"q": f"look up {canary['args']}"})
        self.assertEqual(step["payload"]["output"], f"record {canary['result']}")
        messages = [i["message"] for i in self.client.items(session_id)]
        self.assertEqual([m["role"] for m in messages], ["user", "assistant", "tool", "assistant"], messages)
        self.assertIn(canary["input"], messages[0]["content"])
        self.assertIn(canary["args"], json.dumps(messages[1]["tool_calls"]))
        self.assertEqual(messages[2]["content"], f"record {canary['result']}")
        self.assertEqual(messages[3]["content"], f"the answer is {canary['answer']}")

    # --- 1. nothing readable at rest ---------------------------------------------------

    def test_no_plaintext_at_rest(self):
        sessions, runs = self.drive_canaries()
        live = self.where_canaries_are()  # also while running: the WAL holds the latest writes
        self.assertEqual(self.server.stop(), 0, "SIGTERM is a clean shutdown")
        at_rest = self.where_canaries_are()
        leaks = {c: sorted(set(live[c]) | set(at_rest[c])) for c in live if live[c] or at_rest[c]}
        self.assertEqual(leaks, {}, "plaintext canaries were found at rest")

        if not self.on_postgres():
            key_file = os.path.join(self.server.data_dir, "master.key")
            self.assertEqual(stat.S_IMODE(os.stat(key_file).st_mode), 0o600, "master.key is private")
            conn = self.db()
            values = [row[0] for row in conn.execute("SELECT message FROM items")]
            values += [row[0] for row in conn.execute("SELECT payload FROM steps")]
            values += [row[0] for row in conn.execute("SELECT metadata FROM sessions")]
            values += [c for row in conn.execute("SELECT input, snapshot FROM runs") for c in row]
            values += [row[0] for row in conn.execute("SELECT spec FROM agents")]
            self.assertTrue(values)
            self.assertEqual([v[:16] for v in values if not v.startswith(SEALED_MAGIC)], [],
                             "every payload value is sealed")
            conn.close()

        self.start_again()  # and the data is all still there
        for tag in self.CANARY_TAGS:
            self.assert_api_returns_canaries(tag, sessions[tag], runs[tag])

    def test_control_scan_finds_plaintext_when_encryption_is_off(self):
        # Proves the scan above can see the canaries: with encryption off they are stored as they are.
        self.server.stop()
        self.server = self.start_process(ContinuumServer(
            self.tmp, os.path.join(self.tmp, "data-plain"), self.api_key, self.mock.base_url,
            env={"CONTINUUM_ENCRYPTION": "false"}))
        self.client = self.server.client()
        self.drive_canaries()
        self.assertEqual(self.server.stop(), 0)
        missing = {c: places for c, places in self.where_canaries_are().items() if not places}
        self.assertEqual(missing, {}, "with encryption off every canary is stored readable")

    # --- 2. tampering ------------------------------------------------------------------

    def two_finished_sessions(self, script="turns"):
        if script == "one_tool":
            self.make_agent("tamper", script, tools=[http_tool(self.tools, "the_tool")])
        else:
            self.make_agent("tamper", script)
        target, other = self.new_session("tamper"), self.new_session("tamper")
        target_run = self.client.start_run(target, "first words", wait=True)
        other_run = self.client.start_run(other, "other words", wait=True)
        for run in (target_run, other_run):
            self.assertEqual(run["status"], "completed", run)
        return target, target_run["id"], other, other_run["id"]

    def test_flipped_byte_in_an_item_is_an_integrity_error(self):
        self.require_sqlite("tampering")
        target, _, other, _ = self.two_finished_sessions()
        other_items = self.client.items(other)
        self.server.stop()
        conn = self.db()
        seq, message = conn.execute("SELECT seq, message FROM items WHERE session_id = ? ORDER BY seq LIMIT 1",
                                    (target,)).fetchone()
        self.write_sealed(conn, "UPDATE items SET message = ? WHERE seq = ?", flip_middle_byte(message), seq)
        conn.close()
        self.start_again()
        self.assert_integrity_error(self.client.get(f"/v1/sessions/{target}/items"))
        self.assert_server_healthy(other, other_items)
        self.assert_integrity_error(self.client.get(f"/v1/sessions/{target}/items"))  # still, not cached

    def test_ciphertext_moved_to_another_item_row_is_an_integrity_error(self):
        self.require_sqlite("tampering")
        target, _, other, _ = self.two_finished_sessions()
        other_items = self.client.items(other)
        self.server.stop()
        conn = self.db()
        rows = conn.execute("SELECT seq, message FROM items WHERE session_id = ? ORDER BY seq", (target,)).fetchall()
        self.assertEqual(len(rows), 2, "the user message and the reply")
        (first_seq, first_message), (second_seq, _) = rows
        self.assertEqual(sealed_scope_version(first_message), sealed_scope_version(rows[1][1]),
                         "both are sealed validly under the same key")
        self.write_sealed(conn, "UPDATE items SET message = ? WHERE seq = ?", first_message, second_seq)
        conn.close()
        self.start_again()
        self.assert_integrity_error(self.client.get(f"/v1/sessions/{target}/items"))
        self.assert_server_healthy(other, other_items)

    def test_flipped_byte_in_a_step_is_an_integrity_error(self):
        self.require_sqlite("tampering")
        _, target_run, other, other_run = self.two_finished_sessions("one_tool")
        other_items, other_steps = self.client.items(other), self.client.steps(other_run)
        self.server.stop()
        conn = self.db()
        seq, payload = conn.execute(
            "SELECT seq, payload FROM steps WHERE run_id = ? AND kind = 'tool_call'", (target_run,)).fetchone()
        self.write_sealed(conn, "UPDATE steps SET payload = ? WHERE run_id = ? AND seq = ?",
                          flip_middle_byte(payload), target_run, seq)
        conn.close()
        self.start_again()
        self.assert_integrity_error(self.client.get(f"/v1/runs/{target_run}/steps"))
        self.assert_server_healthy(other, other_items)
        self.assertEqual(self.client.steps(other_run), other_steps)
        self.assertEqual(self.client.run(target_run)["status"], "completed", "the run row itself is intact")

    # --- 3. crypto-shredding -------------------------------------------------------------

    def test_shredding_a_user_makes_only_their_data_unreadable(self):
        self.make_agent("shred", "turns")
        sessions = {}
        for user in ("alice", "bob", None):
            body = {"agent": "shred"}
            if user:
                body["user"] = user
            session = self.client.ok("POST", "/v1/sessions", body, expect=201)
            self.assertEqual(session["user"], user or "admin", session)  # else its creator's
            run = self.client.start_run(session["id"], f"hello from {user or 'the tenant'}", wait=True)
            self.assertEqual(run["status"], "completed", run)
            sessions[user] = (session["id"], run["id"])
        before = {user: self.client.items(session) for user, (session, _) in sessions.items()}
        self.assertEqual(before["alice"][1]["message"]["content"], "turn 1: hello from alice")

        report = self.cli_json("keys", "shred", "--user", "alice")
        self.assertEqual(report["object"], "key_shred", report)
        self.assertGreaterEqual(report["destroyed_count"], 1, report)
        self.assertEqual(report["destroyed_count"], len(report["destroyed"]), report)
        for key in report["destroyed"]:
            self.assertEqual((key["scope"], key["state"]), ("user:alice", "destroyed"), report)

        alice_session, alice_run = sessions["alice"]
        for attempt in ("after the shred", "after a restart"):
            with self.subTest(attempt):
                self.assert_integrity_error(self.client.get(f"/v1/sessions/{alice_session}/items"))
                self.assert_integrity_error(self.client.get(f"/v1/runs/{alice_run}/steps"))
                self.assertEqual(self.client.items(sessions["bob"][0]), before["bob"])
                self.assertEqual(self.client.items(sessions[None][0]), before[None])
                self.assertEqual(self.client.get("/healthz").status, 200)
            if attempt == "after the shred":
                self.restart()

        scopes = self.keys_by_scope()
        self.assertTrue(scopes.get("user:alice"), scopes)
        for key in scopes["user:alice"]:
            self.assertEqual(key["state"], "destroyed", key)
            self.assertIsNotNone(key["destroyed_at_ms"], key)
        for scope in ("user:bob", "tenant"):
            self.assertTrue(scopes.get(scope), scopes)
            self.assertEqual({k["state"] for k in scopes[scope]}, {"active"}, scopes[scope])

        # alice can come back: new data gets a new key, the shredded data stays gone.
        fresh = self.client.ok("POST", "/v1/sessions", {"agent": "shred", "user": "alice"}, expect=201)
        run = self.client.start_run(fresh["id"], "back again", wait=True)
        self.assertEqual(run["status"], "completed", run)
        self.assertEqual([i["message"]["content"] for i in self.client.items(fresh["id"])],
                         ["back again", "turn 1: back again"])
        self.assert_integrity_error(self.client.get(f"/v1/sessions/{alice_session}/items"))

    def test_shredded_users_sessions_do_not_break_the_tenant(self):
        # After erasing one end user, the tenant must still be able to list its
        # sessions, and to delete the erased user's (now unreadable) sessions.
        self.make_agent("shred", "turns")
        alice = self.client.ok("POST", "/v1/sessions", {"agent": "shred", "user": "alice"}, expect=201)["id"]
        bob = self.client.ok("POST", "/v1/sessions", {"agent": "shred", "user": "bob"}, expect=201)["id"]
        shared = self.new_session("shred")
        for session in (alice, bob, shared):
            self.assertEqual(self.client.start_run(session, "hi", wait=True)["status"], "completed")
        self.assertEqual(self.client.post("/v1/keys/shred", {"user": "alice"}).status, 200)

        listing = self.client.get("/v1/sessions?limit=100")
        self.assertEqual(listing.status, 200, f"one shredded user breaks GET /v1/sessions: {listing}")
        listed = {s["id"] for s in listing.body["data"]}
        self.assertTrue({bob, shared} <= listed, listing)
        deleted = self.client.delete(f"/v1/sessions/{alice}")
        self.assertEqual(deleted.status, 200, f"the shredded user's session cannot be deleted: {deleted}")
        self.assertEqual(self.client.get(f"/v1/sessions/{alice}").status, 404)

    # --- 4. rotation ---------------------------------------------------------------------

    def test_rotation_rewraps_so_the_old_kek_can_be_removed(self):
        self.make_agent("rotor", "one_tool", tools=[http_tool(self.tools, "the_tool")])
        sessions = {None: self.new_session("rotor"),
                    "carol": self.client.ok("POST", "/v1/sessions", {"agent": "rotor", "user": "carol"},
                                            expect=201)["id"]}
        first_runs = {}
        for user, session in sessions.items():
            run = self.client.start_run(session, f"before rotation {user}", wait=True)
            self.assertEqual(run["status"], "completed", run)
            first_runs[user] = run["id"]
        old_items = {user: self.client.items(session) for user, session in sessions.items()}
        old_steps = {user: self.client.steps(run) for user, run in first_runs.items()}

        before = self.keys_by_scope()
        self.assertEqual(sorted(before), ["tenant", "user:admin", "user:carol"], before)
        for scope, keys in before.items():
            self.assertEqual([(k["version"], k["kek_version"], k["state"]) for k in keys], [(1, 1, "active")], scope)

        key_file = os.path.join(self.server.data_dir, "master.key")
        added = subprocess.run([binary("continuum"), "keys", "new-kek", "--key-file", key_file],
                               capture_output=True, text=True, env=clean_env(), timeout=CLI_TIMEOUT_S)
        self.assertEqual(added.returncode, 0, describe(added))
        with open(key_file, encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        self.assertEqual([line.split()[0] for line in lines], ["1", "2"], lines)
        self.assertEqual(stat.S_IMODE(os.stat(key_file).st_mode), 0o600, "master.key stays private")

        report = self.cli_json("keys", "rotate")
        self.assertEqual(report["object"], "key_rotation", report)
        self.assertEqual(report["kek_version"], 2, report)
        self.assertGreaterEqual(report["data_keys_created"], 1, report)
        self.assertGreaterEqual(report["data_keys_rewrapped"], 1, report)

        for user, session in sessions.items():
            self.assertEqual(self.client.items(session), old_items[user], "old items read after the rotation")
        second_runs = {}
        for user, session in sessions.items():
            run = self.client.start_run(session, f"after rotation {user}", wait=True)
            self.assertEqual(run["status"], "completed", run)
            second_runs[user] = run["id"]
        new_items = {user: self.client.items(session) for user, session in sessions.items()}
        for user in sessions:
            self.assertEqual(new_items[user][:len(old_items[user])], old_items[user])
            self.assertEqual(new_items[user][-1]["message"]["content"],
                             "tool said the_tool({\"q\":\"after rotation %s\"})=ok" % user)
        new_steps = {user: self.client.steps(run) for user, run in second_runs.items()}

        after = self.keys_by_scope()
        self.assertEqual(sorted(after), ["tenant", "user:admin", "user:carol"], after)
        for scope, keys in after.items():
            self.assertEqual([(k["version"], k["kek_version"], k["state"]) for k in keys],
                             [(1, 2, "active"), (2, 2, "active")], scope)

        # Drop KEK version 1: every data key must now be wrapped by version 2 only.
        self.assertEqual(self.server.stop(), 0)
        if not self.on_postgres():
            conn = self.db()
            newest = conn.execute("SELECT message FROM items ORDER BY seq DESC LIMIT 1").fetchone()[0]
            self.assertEqual(sealed_scope_version(newest)[1], 2, "new writes use the new data key")
            conn.close()
        with open(key_file, "w", encoding="utf-8") as f:
            f.write("\n".join(line for line in lines if line.split()[0] == "2") + "\n")
        self.start_again()
        for user, session in sessions.items():
            self.assertEqual(self.client.items(session), new_items[user], "items sealed before and after rotation")
            self.assertEqual(self.client.steps(first_runs[user]), old_steps[user])
            self.assertEqual(self.client.steps(second_runs[user]), new_steps[user])
        self.assertEqual(self.client.ok("GET", "/v1/agents/rotor", expect=200)["name"], "rotor")
        run = self.client.start_run(sessions["carol"], "after the old kek is gone", wait=True)
        self.assertEqual(run["status"], "completed", run)

    # --- 5. validation -------------------------------------------------------------------

    def test_bad_shred_bodies_and_session_users_are_rejected(self):
        for body in ({}, {"user": "alice", "tenant": "default"}, {"user": 5}, {"tenant": 7}, {"user": ""}):
            with self.subTest(body=body):
                resp = self.client.post("/v1/keys/shred", body)
                self.assert_error(resp, 400, "invalid_request_error", check_param=False)
        resp = self.client.post("/v1/keys/shred", {"user": "alice", "scope": "tenant"})
        self.assert_error(resp, 400, "invalid_request_error", param="scope")
        self.assert_error(self.client.post("/v1/keys/shred", raw="{not json"), 400, "invalid_request_error",
                          check_param=False)
        self.assertEqual(self.client.post("/v1/keys/shred", {"user": "alice"}, auth=False).status, 401)
        self.assertEqual(self.client.get("/v1/keys", auth=False).status, 401)

        self.make_agent("valid", "turns")
        for user in ("bad user!", "", "a" * 129, "tab\tuser", "ünicode", 5):
            with self.subTest(user=user):
                resp = self.client.post("/v1/sessions", {"agent": "valid", "user": user})
                self.assert_error(resp, 400, "invalid_request_error", param="user")
        for user in ("alice", "a" * 128, "user.name_1@example.com:tenant-9"):
            with self.subTest(user=user):
                session = self.client.ok("POST", "/v1/sessions", {"agent": "valid", "user": user}, expect=201)
                self.assertEqual(session["user"], user)
                self.assertEqual(self.client.ok("GET", f"/v1/sessions/{session['id']}", expect=200)["user"], user)


if __name__ == "__main__":
    unittest.main()
