"""The native REST API's contract (docs/api.md), over HTTP against the real binary:
authentication, agents and their versions, validation errors, 404/405/413,
sessions with cursor pagination, and session items."""

import copy
import http.client
import json
import unittest

from harness import IntegrationTest, http_tool, model_spec, wait_until

AUTH_ROUTES = [("GET", "/v1/agents"), ("POST", "/v1/agents"), ("GET", "/v1/sessions"),
               ("GET", "/v1/runs/run_whatever"), ("GET", "/metrics")]


class ApiTest(IntegrationTest):
    SCRIPTS = {
        "hello": {"steps": [{"content": "hello {{input}}"}]},
        # v1 calls a slow tool first, so the run is in flight while v2 is written.
        "pin_v1": {"steps": [{"tool_calls": [{"name": "slow", "arguments": {}}]},
                             {"content": "from v1"}]},
        "pin_v2": {"steps": [{"content": "from v2"}]},
    }

    def valid_agent(self, name="valid"):
        return {"name": name, "model": model_spec(self.mock, "hello"), "instructions": "Be brief.",
                "tools": [http_tool(self.tools, "lookup",
                                    {"type": "object", "properties": {"id": {"type": "string"}},
                                     "required": ["id"]})],
                "limits": {"max_steps": 8}}

    # --- authentication and operations ---

    def test_v1_routes_require_the_api_key(self):
        for method, path in AUTH_ROUTES:
            with self.subTest(method=method, path=path, key="missing"):
                resp = self.client.request(method, path, body={} if method == "POST" else None, auth=False)
                self.assert_error(resp, 401, "authentication_error", check_param=False)
            with self.subTest(method=method, path=path, key="wrong"):
                resp = self.client.request(method, path, body={} if method == "POST" else None,
                                           api_key=self.api_key + "x")
                self.assert_error(resp, 401, "authentication_error", check_param=False)
        resp = self.client.get("/v1/agents", headers={"Authorization": f"Basic {self.api_key}"}, auth=False)
        self.assert_error(resp, 401, "authentication_error", check_param=False)

    def test_health_and_readiness_need_no_key(self):
        resp = self.client.get("/healthz", auth=False)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, {"status": "ok"})
        resp = self.client.get("/readyz", auth=False)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body["status"], "ready")

    def test_metrics_with_key_is_prometheus_text(self):
        resp = self.client.get("/metrics")
        self.assertEqual(resp.status, 200, resp)
        self.assertIn("continuum_", resp.text)
        self.assertTrue(resp.headers.get("content-type", "").startswith("text/plain"), resp.headers)

    # --- agents and versions ---

    def test_agent_create_get_put_versions(self):
        definition = self.valid_agent("versioned")
        resp = self.client.post("/v1/agents", definition)
        self.assertEqual(resp.status, 201, resp)
        agent = resp.body
        self.assertEqual(agent["object"], "agent")
        self.assertEqual(agent["name"], "versioned")
        self.assertEqual(agent["version"], 1)
        self.assertEqual(agent["instructions"], "Be brief.")
        self.assertEqual(agent["model"]["model"], "hello")
        self.assertEqual(agent["tools"][0]["name"], "lookup")
        self.assertEqual(agent["limits"]["max_steps"], 8)
        self.assertIsInstance(agent["created_at_ms"], int)

        self.assert_error(self.client.post("/v1/agents", definition), 409, "conflict_error",
                          check_param=False)

        changed = copy.deepcopy(definition)
        changed["instructions"] = "Be thorough."
        resp = self.client.put("/v1/agents/versioned", changed)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body["version"], 2)
        self.assertEqual(resp.body["instructions"], "Be thorough.")

        latest = self.client.get("/v1/agents/versioned")
        self.assertEqual(latest.status, 200, latest)
        self.assertEqual((latest.body["version"], latest.body["instructions"]), (2, "Be thorough."))
        first = self.client.get("/v1/agents/versioned?version=1")
        self.assertEqual(first.status, 200, first)
        self.assertEqual((first.body["version"], first.body["instructions"]), (1, "Be brief."))
        self.assert_error(self.client.get("/v1/agents/versioned?version=3"), 404, "not_found_error",
                          check_param=False)

        listing = self.client.get("/v1/agents")
        self.assertEqual(listing.status, 200, listing)
        mine = [a for a in listing.body["data"] if a["name"] == "versioned"]
        self.assertEqual([a["version"] for a in mine], [2], "the list holds only the latest version")

    def test_put_without_name_creates_version_one_and_name_must_match(self):
        definition = self.valid_agent("made-by-put")
        del definition["name"]
        resp = self.client.put("/v1/agents/made-by-put", definition)
        self.assertEqual(resp.status, 201, resp)
        self.assertEqual((resp.body["name"], resp.body["version"]), ("made-by-put", 1))
        definition["name"] = "another-name"
        self.assert_error(self.client.put("/v1/agents/made-by-put", definition), 400,
                          "invalid_request_error", param="name")

    def test_run_keeps_the_agent_version_it_started_with(self):
        self.tools.control(tools={"slow": {"delay_ms": 1500}})
        definition = {"name": "pinned", "model": model_spec(self.mock, "pin_v1"),
                      "tools": [http_tool(self.tools, "slow")]}
        self.client.create_agent(definition)
        session = self.new_session("pinned")
        run = self.client.start_run(session, "go")
        self.assertEqual(run["agent_version"], 1)
        # While the run is in its tool call, publish v2 (another model script).
        wait_until(lambda: self.tools.stats()["deliveries"] >= 1, message="the slow tool to be called")
        definition["model"] = model_spec(self.mock, "pin_v2")
        self.assertEqual(self.client.put("/v1/agents/pinned", definition).body["version"], 2)
        self.assertEqual(self.client.run(run["id"])["agent_version"], 1)

        finished = self.client.wait_run(run["id"])
        self.assertEqual(finished["status"], "completed", finished)
        self.assertEqual(finished["agent_version"], 1)
        self.assertEqual(finished["output"], "from v1")

        second = self.client.start_run(session, "again", wait=True)
        self.assertEqual(second["agent_version"], 2)
        self.assertEqual(second["output"], "from v2")

    # --- validation ---

    def test_malformed_json_is_400(self):
        for raw in [b"{not json", b"", b"[1, 2]", b'{"name": "x",}', b"\xff\xfe"]:
            with self.subTest(raw=raw):
                resp = self.client.post("/v1/agents", raw=raw)
                self.assert_error(resp, 400, "invalid_request_error", check_param=False)

    def test_agent_validation_names_the_offending_field(self):
        cases = [
            ("wrong type for name", lambda d: d.update(name=5), "name"),
            ("invalid name", lambda d: d.update(name="has space"), "name"),
            ("unknown top-level field", lambda d: d.update(nmae="x"), "nmae"),
            ("missing model", lambda d: d.pop("model"), "model"),
            ("model not an object", lambda d: d.update(model="gpt"), "model"),
            ("wrong type for model.model", lambda d: d["model"].update(model=123), "model.model"),
            ("unknown provider", lambda d: d["model"].update(provider="acme"), "model.provider"),
            ("unknown model field", lambda d: d["model"].update(temprature=1), "model.temprature"),
            ("bad base_url", lambda d: d["model"].update(base_url="not a url"), "model.base_url"),
            ("tools not an array", lambda d: d.update(tools={}), "tools"),
            ("unknown tool field", lambda d: d["tools"][0].update(urll="x"), "tools[0].urll"),
            ("bad tool url", lambda d: d["tools"][0].update(url="ftp://example.com/x"), "tools[0].url"),
            ("missing tool url", lambda d: d["tools"][0].pop("url"), "tools[0].url"),
            ("bad tool schema", lambda d: d["tools"][0].update(parameters={"type": "objekt"}),
             "tools[0].parameters"),
            ("tool schema not an object", lambda d: d["tools"][0].update(parameters="string"),
             "tools[0].parameters"),
            ("wrong type for max_steps", lambda d: d["limits"].update(max_steps="ten"), "limits.max_steps"),
            ("max_steps out of range", lambda d: d["limits"].update(max_steps=0), "limits.max_steps"),
            ("unknown limit", lambda d: d["limits"].update(max_stepz=3), "limits.max_stepz"),
            ("wrong type for retry", lambda d: d["tools"][0].update(retry={"max_attempts": "4"}),
             "tools[0].retry.max_attempts"),
        ]
        for label, mutate, param in cases:
            with self.subTest(label):
                definition = self.valid_agent("bad")
                mutate(definition)
                resp = self.client.post("/v1/agents", definition)
                self.assert_error(resp, 400, "invalid_request_error", param=param)
        # None of the rejected definitions was stored.
        self.assert_error(self.client.get("/v1/agents/bad"), 404, "not_found_error", check_param=False)

    def test_second_tool_gets_its_index_in_param(self):
        definition = self.valid_agent("indexed")
        second = http_tool(self.tools, "other")
        second["url"] = "mailto:someone@example.com"
        definition["tools"].append(second)
        self.assert_error(self.client.post("/v1/agents", definition), 400, "invalid_request_error",
                          param="tools[1].url")

    def test_session_and_run_validation(self):
        self.client.create_agent(self.valid_agent("plain"))
        self.assert_error(self.client.post("/v1/sessions", {"agent": 7}), 400, "invalid_request_error",
                          param="agent")
        self.assert_error(self.client.post("/v1/sessions", {"agent": "plain", "metadata": "x"}), 400,
                          "invalid_request_error", param="metadata")
        self.assert_error(self.client.post("/v1/sessions", {"agent": "plain", "extra": 1}), 400,
                          "invalid_request_error", param="extra")
        session = self.new_session("plain")
        runs = f"/v1/sessions/{session}/runs"
        self.assert_error(self.client.post(runs, {"input": 5}), 400, "invalid_request_error", param="input")
        self.assert_error(self.client.post(runs, {"input": "x", "wait": "yes"}), 400,
                          "invalid_request_error", param="wait")
        self.assert_error(self.client.post(runs, {"inputt": "x"}), 400, "invalid_request_error",
                          param="inputt")
        self.assert_error(self.client.post(runs, raw=b'{"input": '), 400, "invalid_request_error",
                          check_param=False)
        self.assertEqual(self.client.get(f"/v1/sessions/{session}/runs").body["data"], [],
                         "rejected inputs create no runs")

    def test_duplicate_tool_names_are_rejected(self):
        definition = self.valid_agent("twins")
        definition["tools"].append(dict(definition["tools"][0]))
        self.assert_error(self.client.post("/v1/agents", definition), 400, "invalid_request_error",
                          param="tools[1]")

    def test_query_parameters_are_validated(self):
        self.client.create_agent(self.valid_agent("queried"))
        session = self.new_session("queried")
        cases = [("/v1/sessions?limit=0", "limit"), ("/v1/sessions?limit=abc", "limit"),
                 ("/v1/sessions?limit=100000", "limit"), ("/v1/agents/queried?version=abc", "version"),
                 ("/v1/agents/queried?version=0", "version"), (f"/v1/sessions/{session}/items?after=x", "after"),
                 (f"/v1/sessions/{session}/items?limit=-1", "limit")]
        for path, param in cases:
            with self.subTest(path=path):
                self.assert_error(self.client.get(path), 400, "invalid_request_error", param=param)

    def test_bad_last_event_id_is_400(self):
        self.client.create_agent(self.valid_agent("evented"))
        run = self.client.start_run(self.new_session("evented"), "hi", wait=True)
        resp = self.client.get(f"/v1/runs/{run['id']}/events", headers={"Last-Event-ID": "banana"})
        self.assert_error(resp, 400, "invalid_request_error", param="Last-Event-ID")

    # --- 404 / 405 / 413 ---

    def test_unknown_things_are_404(self):
        self.client.create_agent(self.valid_agent("known"))
        for path in ["/v1/agents/nobody", "/v1/sessions/sess_doesnotexist",
                     "/v1/sessions/sess_doesnotexist/items", "/v1/sessions/sess_doesnotexist/runs",
                     "/v1/runs/run_doesnotexist", "/v1/runs/run_doesnotexist/steps",
                     "/v1/runs/run_doesnotexist/events", "/v1/no-such-route", "/v2/agents"]:
            with self.subTest(path=path):
                self.assert_error(self.client.get(path), 404, "not_found_error", check_param=False)
        self.assert_error(self.client.post("/v1/runs/run_doesnotexist/cancel", {}), 404, "not_found_error",
                          check_param=False)
        self.assert_error(self.client.delete("/v1/sessions/sess_doesnotexist"), 404, "not_found_error",
                          check_param=False)
        self.assert_error(self.client.post("/v1/sessions/sess_doesnotexist/runs", {"input": "x"}), 404,
                          "not_found_error", check_param=False)
        self.assert_error(self.client.post("/v1/sessions", {"agent": "nobody"}), 404, "not_found_error",
                          check_param=False)

    def test_wrong_method_is_405(self):
        self.assert_error(self.client.delete("/v1/agents"), 405, "invalid_request_error", check_param=False)
        self.assert_error(self.client.request("PATCH", "/v1/sessions", body={}), 405,
                          "invalid_request_error", check_param=False)

    def test_five_mib_body_is_413(self):
        definition = self.valid_agent("huge")
        definition["instructions"] = "x" * (5 * 1024 * 1024)
        resp = self.client.post("/v1/agents", definition)
        self.assert_error(resp, 413, "invalid_request_error", code="payload_too_large", check_param=False)
        # The server is still fine afterwards.
        self.assertEqual(self.client.get("/healthz", auth=False).status, 200)
        self.assert_error(self.client.get("/v1/agents/huge"), 404, "not_found_error", check_param=False)

    def test_oversized_chunked_body_is_413(self):
        # Without Content-Length the limit must still hold while the body streams in.
        chunk = b"x" * (1024 * 1024)
        body = b'{"name": "chunky", "instructions": "' + chunk * 5 + b'"}'

        def chunks():
            for i in range(0, len(body), 256 * 1024):
                yield body[i:i + 256 * 1024]

        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            try:
                conn.request("POST", "/v1/agents", body=chunks(), encode_chunked=True,
                             headers={"Authorization": f"Bearer {self.api_key}",
                                      "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before reading everything
            resp = conn.getresponse()
            status, text = resp.status, resp.read().decode()
        finally:
            conn.close()
        self.assertEqual(status, 413, text)
        self.assertEqual(json.loads(text)["error"]["code"], "payload_too_large")
        self.assertEqual(self.client.get("/healthz", auth=False).status, 200)

    # --- sessions ---

    def test_session_create_get_delete(self):
        self.client.create_agent(self.valid_agent("sessions"))
        resp = self.client.post("/v1/sessions", {"agent": "sessions", "metadata": {"customer": "c-42"}})
        self.assertEqual(resp.status, 201, resp)
        session = resp.body
        self.assertEqual(session["object"], "session")
        self.assertTrue(session["id"].startswith("sess_"), session)
        self.assertEqual(session["agent"], "sessions")
        self.assertEqual(session["metadata"], {"customer": "c-42"})
        self.assertIsInstance(session["created_at_ms"], int)

        got = self.client.get(f"/v1/sessions/{session['id']}")
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.body, session)

        deleted = self.client.delete(f"/v1/sessions/{session['id']}")
        self.assertEqual(deleted.status, 200, deleted)
        self.assertEqual(deleted.body, {"id": session["id"], "object": "session", "deleted": True})
        self.assert_error(self.client.get(f"/v1/sessions/{session['id']}"), 404, "not_found_error",
                          check_param=False)
        self.assert_error(self.client.delete(f"/v1/sessions/{session['id']}"), 404, "not_found_error",
                          check_param=False)

    def test_session_list_pages_newest_first(self):
        self.client.create_agent(self.valid_agent("many"))
        created = [self.new_session("many") for _ in range(25)]
        pages, after = [], None
        while True:
            path = "/v1/sessions?limit=10" + (f"&after={after}" if after else "")
            resp = self.client.get(path)
            self.assertEqual(resp.status, 200, resp)
            page = resp.body
            pages.append([s["id"] for s in page["data"]])
            if not page["has_more"]:
                self.assertIsNone(page["next_cursor"], page)
                break
            self.assertTrue(page["next_cursor"], page)
            after = page["next_cursor"]
            self.assertLess(len(pages), 10, "pagination does not end")
        self.assertEqual([len(p) for p in pages], [10, 10, 5])
        listed = [sid for page in pages for sid in page]
        self.assertEqual(listed, list(reversed(created)), "every session once, newest first")

    def test_deleting_a_session_with_an_active_run_is_409(self):
        self.tools.control(tools={"slow": {"delay_ms": 3000}})
        self.client.create_agent({"name": "busy", "model": model_spec(self.mock, "pin_v1"),
                                  "tools": [http_tool(self.tools, "slow")]})
        session = self.new_session("busy")
        run = self.client.start_run(session, "work")
        self.assert_error(self.client.delete(f"/v1/sessions/{session}"), 409, "conflict_error",
                          check_param=False)
        self.client.wait_run(run["id"])
        deleted = self.client.delete(f"/v1/sessions/{session}")
        self.assertEqual(deleted.status, 200, deleted)
        self.assert_error(self.client.get(f"/v1/runs/{run['id']}"), 404, "not_found_error", check_param=False)
        self.assert_error(self.client.get(f"/v1/sessions/{session}/items"), 404, "not_found_error",
                          check_param=False)

    # --- items and runs of a session ---

    def test_items_hold_the_conversation_oldest_first(self):
        self.client.create_agent(self.valid_agent("talker"))
        session = self.new_session("talker")
        first = self.client.start_run(session, "one", wait=True)
        second = self.client.start_run(session, "two", wait=True)
        self.assertEqual((first["output"], second["output"]), ("hello one", "hello two"))

        resp = self.client.get(f"/v1/sessions/{session}/items")
        self.assertEqual(resp.status, 200, resp)
        items = resp.body["data"]
        self.assertFalse(resp.body["has_more"])
        self.assertEqual([(i["message"]["role"], i["message"]["content"]) for i in items],
                         [("user", "one"), ("assistant", "hello one"), ("user", "two"), ("assistant", "hello two")])
        self.assertEqual([i["run_id"] for i in items], [first["id"]] * 2 + [second["id"]] * 2)
        seqs = [i["seq"] for i in items]
        self.assertEqual(seqs, sorted(set(seqs)), "seq increases")
        for item in items:
            self.assertIsInstance(item["created_at_ms"], int)

        page = self.client.get(f"/v1/sessions/{session}/items?limit=3").body
        self.assertEqual([i["seq"] for i in page["data"]], seqs[:3])
        self.assertTrue(page["has_more"])
        rest = self.client.get(f"/v1/sessions/{session}/items?after={page['next_cursor']}").body
        self.assertEqual([i["seq"] for i in rest["data"]], seqs[3:])
        self.assertFalse(rest["has_more"])
        after_second = self.client.get(f"/v1/sessions/{session}/items?after={seqs[1]}").body
        self.assertEqual([i["seq"] for i in after_second["data"]], seqs[2:])

        runs = self.client.get(f"/v1/sessions/{session}/runs").body["data"]
        self.assertEqual([r["id"] for r in runs], [first["id"], second["id"]], "oldest first")
        self.assertTrue(all(r["object"] == "run" and r["session_id"] == session for r in runs))


if __name__ == "__main__":
    unittest.main()
