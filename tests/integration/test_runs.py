"""Runs end to end against the real binary, a scripted mock model and the checker's
tool server: conversation continuity across restarts, parallel tool calls, retries,
tool errors, limits, cancellation, queueing, wait, SSE, and crash recovery."""

import threading
import unittest

from harness import (IntegrationTest, fast_retry, free_port, http_tool, iter_sse, model_spec, read_sse,
                     result_for, step_arguments, tool_steps, wait_until)


class RunsTest(IntegrationTest):
    SCRIPTS = {
        "turns": {"steps": [{"content": "turn {{turn}}: {{input}}"}]},
        "parallel": {"steps": [{"tool_calls": [{"name": "par_a", "arguments": {"x": "a"}},
                                               {"name": "par_b", "arguments": {"x": "b"}}]},
                               {"content": "both: {{tool_results}}"}]},
        "flaky_model": {"steps": [{"content": "recovered after retries", "fail": [429, 500],
                                   "retry_after_s": 1}]},
        "one_tool": {"steps": [{"tool_calls": [{"name": "the_tool", "arguments": {"q": "{{input}}"}}]},
                               {"content": "tool said {{tool_results}}"}]},
        "typed_call": {"steps": [{"tool_calls": [{"name": "typed", "arguments": {"n": "not a number"}}]},
                                 {"content": "tool said {{tool_results}}"}]},
        "tools_forever": {"steps": [{"tool_calls": [{"name": "the_tool", "arguments": {"q": "again"}}]}]},
        "slow_turn": {"steps": [{"content": "turn {{turn}}: {{input}}", "delay_ms": 300}]},
        "streamed": {"steps": [{"tool_calls": [{"name": "the_tool", "arguments": {"q": "{{input}}"}}]},
                               {"content": "The final answer is long enough to arrive in several pieces."}]},
        "stall": {"steps": [{"content": "too late", "delay_ms": 20000}]},
        "unknown_tool": {"steps": [{"tool_calls": [{"name": "not_a_tool", "arguments": {}}]},
                                   {"content": "tool said {{tool_results}}"}]},
        "three_tools": {"steps": [{"tool_calls": [{"name": "the_tool", "arguments": {"q": "1"}}]},
                                  {"tool_calls": [{"name": "the_tool", "arguments": {"q": "2"}}]},
                                  {"tool_calls": [{"name": "the_tool", "arguments": {"q": "3"}}]},
                                  {"content": "done: {{tool_results}}"}]},
    }

    def agent_with_tool(self, name, script, tool_name="the_tool", parameters=None, limits=None, retry=None):
        tool = http_tool(self.tools, tool_name, parameters, retry=retry or fast_retry())
        return self.make_agent(name, script, tools=[tool], limits=limits)

    def finished(self, run):
        return self.client.wait_run(run["id"])

    def assert_completed(self, run, output=None):
        self.assertEqual(run["status"], "completed", run)
        self.assertIsNone(run["error"], run)
        if output is not None:
            self.assertEqual(run["output"], output)

    def assert_failed(self, run, code):
        self.assertEqual(run["status"], "failed", run)
        self.assertEqual(run["error"]["code"], code, run)
        self.assertTrue(run["error"]["message"], run)
        last = self.client.steps(run["id"])[-1]
        self.assertEqual(last["kind"], "run_failed", last)
        self.assertEqual(last["payload"]["code"], code, last)

    # --- conversation ---

    def test_conversation_continues_across_a_clean_restart(self):
        self.make_agent("chatty", "turns")
        session = self.new_session("chatty")
        first = self.client.start_run(session, "hello", wait=True)
        self.assert_completed(first, "turn 1: hello")

        self.assertEqual(self.server.restart(), 0, "SIGTERM is a clean shutdown")
        self.client = self.server.client()

        second = self.client.start_run(session, "again", wait=True)
        self.assert_completed(second, "turn 2: again")  # the model saw turn 1
        items = self.client.items(session)
        self.assertEqual([(i["message"]["role"], i["message"]["content"]) for i in items],
                         [("user", "hello"), ("assistant", "turn 1: hello"),
                          ("user", "again"), ("assistant", "turn 2: again")])
        self.assertEqual(self.client.run(first["id"])["status"], "completed", "finished runs stay finished")

    def test_wait_true_returns_the_finished_run(self):
        self.make_agent("waiter", "turns")
        session = self.new_session("waiter")
        resp = self.client.post(f"/v1/sessions/{session}/runs", {"input": "hi", "wait": True})
        self.assertEqual(resp.status, 200, resp)
        run = resp.body
        self.assertEqual(run["object"], "run")
        self.assert_completed(run, "turn 1: hi")
        self.assertEqual((run["session_id"], run["agent"], run["input"]), (session, "waiter", "hi"))
        self.assertEqual((run["model_calls"], run["tool_calls"]), (1, 0))
        usage = run["usage"]
        self.assertEqual(usage["total_tokens"], usage["input_tokens"] + usage["output_tokens"])
        self.assertEqual(self.client.run(run["id"]), run, "GET shows the same finished run")
        kinds = [s["kind"] for s in self.client.steps(run["id"])]
        self.assertEqual(kinds[0], "run_created")
        self.assertEqual(kinds[-2:], ["model_call", "run_completed"])

    def test_a_run_in_a_session_of_its_own_takes_one_request(self):
        self.make_agent("oneshot", "turns")
        resp = self.client.post("/v1/runs", {"agent": "oneshot", "input": "hi", "wait": True,
                                             "user": "dana", "metadata": {"ticket": 7}})
        self.assertEqual(resp.status, 200, resp)
        run = resp.body
        self.assert_completed(run, "turn 1: hi")
        session = self.client.get(f"/v1/sessions/{run['session_id']}").body
        self.assertEqual((session["agent"], session["user"], session["metadata"]), ("oneshot", "dana", {"ticket": 7}))
        self.assertEqual([r["id"] for r in self.client.get(f"/v1/sessions/{run['session_id']}/runs").body["data"]],
                         [run["id"]])
        # The session goes on like any other: the next run continues its conversation.
        again = self.client.post(f"/v1/sessions/{run['session_id']}/runs", {"input": "more", "wait": True}).body
        self.assert_completed(again, "turn 2: more")
        # Without wait: 202 with the run; it finishes on its own.
        started = self.client.post("/v1/runs", {"agent": "oneshot", "input": "later"})
        self.assertEqual(started.status, 202, started)
        self.assert_completed(self.finished(started.body), "turn 1: later")

    def test_a_run_in_a_session_of_its_own_refuses_bad_requests(self):
        self.make_agent("oneshot2", "turns")
        for body, param in (({"agent": "oneshot2"}, "input"), ({"input": "x"}, "agent"),
                            ({"agent": "oneshot2", "input": "x", "session": "s"}, "session"),
                            ({"agent": "oneshot2", "input": "x", "user": "no spaces"}, "user"),
                            ({"agent": "oneshot2", "input": "x", "wait": "yes"}, "wait")):
            resp = self.client.post("/v1/runs", body)
            self.assertEqual(resp.status, 400, (body, resp))
            self.assertEqual(resp.body["error"]["param"], param, resp)
        self.assertEqual(self.client.post("/v1/runs", {"agent": "missing", "input": "x"}).status, 404)
        before = len(self.client.get("/v1/sessions?limit=100").body["data"])
        self.client.post("/v1/runs", {"agent": "oneshot2", "input": ""})
        self.assertEqual(len(self.client.get("/v1/sessions?limit=100").body["data"]), before, "no session left behind")

    def test_wait_timeout_returns_the_run_still_going(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 3000}})
        self.agent_with_tool("patient", "one_tool")
        session = self.new_session("patient")
        resp = self.client.post(f"/v1/sessions/{session}/runs",
                                {"input": "x", "wait": True, "wait_timeout_ms": 100})
        self.assertEqual(resp.status, 202, resp)
        self.assertIn(resp.body["status"], ("queued", "running"), resp)
        self.assert_completed(self.finished(resp.body))

    # --- tools ---

    def test_parallel_tool_calls_run_concurrently(self):
        self.tools.control(tools={"par_a": {"delay_ms": 300}, "par_b": {"delay_ms": 300}})
        self.make_agent("parallel", "parallel", tools=[http_tool(self.tools, "par_a"), http_tool(self.tools, "par_b")])
        run = self.client.start_run(self.new_session("parallel"), "go", wait=True)
        self.assert_completed(run)
        steps = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(sorted(s["payload"]["name"] for s in steps), ["par_a", "par_b"])
        self.assertGreaterEqual(self.tools.stats()["max_concurrency"], 2, "both calls were in flight at once")
        results = [result_for("par_a", {"x": "a"}), result_for("par_b", {"x": "b"})]
        self.assertIn(run["output"], ["both: " + "; ".join(results), "both: " + "; ".join(reversed(results))])
        self.assertEqual(run["tool_calls"], 2)

    def test_model_call_is_retried_on_429_and_500(self):
        self.make_agent("flaky-model", "flaky_model", retry=fast_retry())
        run = self.client.start_run(self.new_session("flaky-model"), "hi", wait=True)
        self.assert_completed(run, "recovered after retries")
        model_steps = [s for s in self.client.steps(run["id"]) if s["kind"] == "model_call"]
        self.assertEqual(len(model_steps), 1)
        self.assertEqual(model_steps[0]["payload"]["attempts"], 3)

    def test_metrics_count_what_runs_did(self):
        def metrics():
            values = {}
            for line in self.client.get("/metrics").text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    values[name] = float(value)
            return values

        self.tools.control(tools={"the_tool": {"fail_first": 1, "fail_status": 503}})
        self.make_agent("counted-model", "flaky_model", retry=fast_retry())
        self.agent_with_tool("counted-tool", "one_tool")
        self.assert_completed(self.client.start_run(self.new_session("counted-model"), "hi", wait=True))
        self.assert_completed(self.client.start_run(self.new_session("counted-tool"), "ping", wait=True))
        m = metrics()
        self.assertEqual(m['continuum_runs_finished_total{status="completed"}'], 2)
        self.assertEqual(m["continuum_model_call_errors_total"], 2, "the 429 and the 500")
        self.assertGreaterEqual(m["continuum_model_calls_total"], 5)
        self.assertEqual(m["continuum_tool_calls_total"], 2)
        self.assertEqual(m["continuum_tool_call_errors_total"], 1)
        # run_started, model, tool, model, completed for the tool run; run_started, model, completed for the other.
        self.assertEqual(m["continuum_steps_committed_total"], 8)
        self.assertGreater(m["continuum_store_commit_duration_seconds_count"], 0)
        self.assertGreater(m["continuum_store_group_commit_batches_count"], 0)
        self.assertEqual(m["continuum_runs_active"], 0)

    def test_model_failing_past_its_retries_fails_the_run(self):
        self.make_agent("broken-model", "flaky_model", retry=fast_retry(max_attempts=2))
        run = self.client.start_run(self.new_session("broken-model"), "hi", wait=True)
        self.assert_failed(run, "model_error")

    def test_tool_call_is_retried_and_applied_once(self):
        self.tools.control(tools={"the_tool": {"fail_first": 2, "fail_status": 503}})
        self.agent_with_tool("flaky-tool", "one_tool")
        run = self.client.start_run(self.new_session("flaky-tool"), "ping", wait=True)
        self.assert_completed(run, "tool said " + result_for("the_tool", {"q": "ping"}))
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(step["payload"]["attempts"], 3)
        self.assertFalse(step["payload"]["is_error"])
        record = self.tools.ledger()[step["payload"]["idempotency_key"]]
        self.assertEqual((record["deliveries"], record["applied"]), (3, 1))

    def test_tool_retry_honours_retry_after(self):
        self.tools.control(tools={"the_tool": {"fail_first": 1, "fail_status": 429, "retry_after_s": 1}})
        self.agent_with_tool("throttled-tool", "one_tool")
        run = self.client.start_run(self.new_session("throttled-tool"), "ping", wait=True)
        self.assert_completed(run)
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(step["payload"]["attempts"], 2)

    def test_tool_rejecting_the_call_gives_the_model_an_error_result(self):
        self.tools.control(tools={"the_tool": {"status": 400}})
        self.agent_with_tool("rejected", "one_tool")
        run = self.client.start_run(self.new_session("rejected"), "ping", wait=True)
        self.assert_completed(run)
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertEqual(step["payload"]["attempts"], 1, "a 400 is not retried")
        self.assertTrue(step["payload"]["output"].startswith("error"), step)
        self.assertEqual(run["output"], "tool said " + step["payload"]["output"], "the model saw the error")
        self.assertEqual(self.tools.stats()["tools"]["the_tool"]["deliveries"], 1)

    def test_tool_answering_invalid_utf8_does_not_take_the_server_down(self):
        # Regression: a tool replying "café" in Latin-1 (not UTF-8) hit a fatal invariant
        # in the engine; the run was resumed on every restart, so the server crash-looped.
        self.tools.control(tools={"the_tool": {"body_hex": b"caf\xe9".hex()}})
        self.agent_with_tool("latin1", "one_tool")
        session = self.new_session("latin1")
        try:
            resp = self.client.post(f"/v1/sessions/{session}/runs", {"input": "x", "wait": True})
        except OSError as error:
            resp = error
        self.assertTrue(self.server.alive(), f"the server died: {resp}")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body["status"], "completed", resp)
        steps = self.client.get(f"/v1/runs/{resp.body['id']}/steps")
        self.assertIsNotNone(steps.body, "the journal is still valid JSON")

    def test_arguments_violating_the_schema_never_reach_the_tool(self):
        schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
        self.agent_with_tool("typed", "typed_call", tool_name="typed", parameters=schema)
        run = self.client.start_run(self.new_session("typed"), "go", wait=True)
        self.assert_completed(run)
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertEqual(step_arguments(step), {"n": "not a number"})
        self.assertTrue(step["payload"]["output"].startswith("error"), step)
        self.assertEqual(run["output"], "tool said " + step["payload"]["output"])
        self.assertEqual(self.tools.stats()["deliveries"], 0, "the tool server was never called")

    def test_tool_steps_carry_stable_idempotency_keys(self):
        self.agent_with_tool("keyed", "three_tools")
        run = self.client.start_run(self.new_session("keyed"), "go", wait=True)
        self.assert_completed(run)
        steps = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(len(steps), 3)
        ledger = self.tools.ledger()
        for step in steps:
            key = step["payload"]["idempotency_key"]
            self.assertEqual(key, f"{run['id']}:{step['seq']}")
            self.assertEqual(ledger[key]["run_id"], run["id"])
            self.assertEqual(ledger[key]["step"], str(step["seq"]))
            self.assertEqual(ledger[key]["result"], step["payload"]["output"])
        self.assertEqual(self.tools.stats()["header_mismatches"], [])

    def test_tool_timeouts_are_retried_with_the_same_key(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 1500}})
        self.make_agent("impatient", "one_tool",
                        tools=[http_tool(self.tools, "the_tool", timeout_ms=200, retry=fast_retry(max_attempts=2))])
        run = self.client.start_run(self.new_session("impatient"), "ping", wait=True)
        self.assert_completed(run)
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertEqual(step["payload"]["attempts"], 2)
        self.assertEqual(run["output"], "tool said " + step["payload"]["output"])
        record = wait_until(lambda: self.tools.ledger().get(step["payload"]["idempotency_key"]),
                            message="the checker to record the timed-out deliveries")
        wait_until(lambda: self.tools.ledger()[step["payload"]["idempotency_key"]]["deliveries"] == 2,
                   message="both deliveries to be recorded")
        self.assertEqual(self.tools.stats()["keys"], 1, "every attempt carried the same key")
        self.assertEqual(record["run_id"], run["id"])

    def test_unreachable_tool_gives_an_error_result(self):
        tool = http_tool(self.tools, "the_tool", retry=fast_retry(max_attempts=2))
        tool["url"] = f"http://127.0.0.1:{free_port()}/tools/the_tool"  # nothing listens there
        self.make_agent("lonely", "one_tool", tools=[tool])
        run = self.client.start_run(self.new_session("lonely"), "ping", wait=True)
        self.assert_completed(run)
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertEqual(step["payload"]["attempts"], 2, "connection errors are retried")
        self.assertTrue(step["payload"]["output"].startswith("error"), step)

    def test_model_calling_an_unknown_tool_gets_an_error_result(self):
        self.agent_with_tool("confused", "unknown_tool")
        run = self.client.start_run(self.new_session("confused"), "go", wait=True)
        self.assert_completed(run)
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(step["payload"]["name"], "not_a_tool")
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertEqual(run["output"], "tool said " + step["payload"]["output"])
        self.assertEqual(self.tools.stats()["deliveries"], 0)

    def test_items_record_tool_calls_and_results(self):
        self.agent_with_tool("recorder", "one_tool")
        session = self.new_session("recorder")
        run = self.client.start_run(session, "ping", wait=True)
        self.assert_completed(run)
        messages = [i["message"] for i in self.client.items(session)]
        self.assertEqual([m["role"] for m in messages], ["user", "assistant", "tool", "assistant"])
        (call,) = messages[1]["tool_calls"]
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(messages[2]["tool_call_id"], step["payload"]["call_id"])
        self.assertEqual(call["id"], step["payload"]["call_id"])
        self.assertEqual(messages[2]["content"], step["payload"]["output"])
        self.assertEqual(messages[3]["content"], run["output"])

    def test_large_input_is_still_seen_by_the_model(self):
        # Regression: a 40 KB input (about 10k of the default 16k context tokens), echoed
        # into a tool call, made context assembly drop the run's own user message and the
        # assistant tool_calls message, so the model saw an orphaned tool result, started
        # over and called the tool a second time with different arguments.
        text = "claim text " * 4000
        self.agent_with_tool("long-input", "one_tool")
        run = self.client.start_run(self.new_session("long-input"), text, wait=True)
        self.assert_completed(run)
        steps = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(len(steps), 1, f"the tool was called {len(steps)} times; arguments: "
                                        f"{[str(step_arguments(s))[:60] for s in steps]}")
        self.assertEqual(step_arguments(steps[0]), {"q": text})
        self.assertEqual(run["output"], "tool said " + result_for("the_tool", {"q": text}))

    def test_steps_page_with_cursor(self):
        self.agent_with_tool("pager", "three_tools")
        run = self.client.start_run(self.new_session("pager"), "go", wait=True)
        self.assert_completed(run)
        everything = self.client.steps(run["id"])
        paged = self.client.steps(run["id"], page_limit=2)
        self.assertEqual(paged, everything)
        first = self.client.get(f"/v1/runs/{run['id']}/steps?limit=2").body
        self.assertEqual((len(first["data"]), first["has_more"]), (2, True))
        after = self.client.get(f"/v1/runs/{run['id']}/steps?after={everything[-2]['seq']}").body
        self.assertEqual((after["data"], after["has_more"], after["next_cursor"]), ([everything[-1]], False, None))
        for query in ("limit=0", "limit=abc", "after=-5"):
            with self.subTest(query=query):
                self.assert_error(self.client.get(f"/v1/runs/{run['id']}/steps?{query}"), 400,
                                  "invalid_request_error", param=query.split("=")[0])

    def test_unreachable_model_fails_the_run_with_model_error(self):
        self.make_agent("no-model", "turns", base_url=f"http://127.0.0.1:{free_port()}/v1",
                        retry=fast_retry(max_attempts=2))
        run = self.client.start_run(self.new_session("no-model"), "hi", wait=True)
        self.assert_failed(run, "model_error")

    # --- limits ---

    def test_max_steps_fails_the_run(self):
        self.agent_with_tool("looper", "tools_forever", limits={"max_steps": 3})
        run = self.client.start_run(self.new_session("looper"), "go", wait=True)
        self.assert_failed(run, "max_steps")
        self.assertLessEqual(run["model_calls"], 3)

    def test_max_total_tokens_fails_the_run(self):
        self.agent_with_tool("thrifty", "tools_forever", limits={"max_total_tokens": 1})
        run = self.client.start_run(self.new_session("thrifty"), "go", wait=True)
        self.assert_failed(run, "max_total_tokens")
        self.assertGreaterEqual(run["usage"]["total_tokens"], 1)

    def test_deadline_fails_a_run_stuck_in_a_slow_tool(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 5000}})
        self.agent_with_tool("hurried", "one_tool", limits={"deadline_ms": 500})
        run = self.client.start_run(self.new_session("hurried"), "go", wait=True)
        self.assert_failed(self.finished(run), "deadline_exceeded")

    # --- cancellation and queueing ---

    def test_cancel_a_running_run(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 10000}})
        self.agent_with_tool("cancellable", "one_tool")
        run = self.client.start_run(self.new_session("cancellable"), "go")
        wait_until(lambda: self.tools.stats()["in_flight"] >= 1, message="the slow tool call to start")
        resp = self.client.post(f"/v1/runs/{run['id']}/cancel", {})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body["status"], "cancelled", resp)
        got = self.client.run(run["id"])
        self.assertEqual(got["status"], "cancelled")
        self.assertEqual(got["error"]["code"], "cancelled", got)
        self.assertEqual(self.client.steps(run["id"])[-1]["kind"], "run_cancelled")
        self.assert_error(self.client.post(f"/v1/runs/{run['id']}/cancel", {}), 409, "conflict_error",
                          check_param=False)

    def test_session_stays_a_valid_chat_after_a_run_is_cancelled_in_a_tool_call(self):
        # A run cancelled while its tool call is in flight leaves the assistant's tool
        # call without a result. OpenAI rejects such a transcript (400), so with a real
        # provider every later run of the session would fail. The strict proxy checks it.
        strict = self.strict_model()
        self.client.create_agent({"name": "strict", "model": model_spec(strict, "one_tool"),
                                  "tools": [http_tool(self.tools, "the_tool", retry=fast_retry())]})
        session = self.new_session("strict")
        self.assert_completed(self.client.start_run(session, "zero", wait=True))  # the proxy relays fine

        self.tools.control(tools={"the_tool": {"delay_ms": 10000}})
        first = self.client.start_run(session, "first")
        wait_until(lambda: self.tools.stats()["in_flight"] >= 1, message="the slow tool call to start")
        self.assertEqual(self.client.post(f"/v1/runs/{first['id']}/cancel", {}).status, 200)
        self.tools.control(tools={"the_tool": {"delay_ms": 0}})

        second = self.client.start_run(session, "second", wait=True)
        self.assertEqual(strict.rejections, [], "every model request was a valid chat transcript")
        self.assert_completed(second, "tool said " + result_for("the_tool", {"q": "second"}))

    def test_cancel_a_queued_run(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 10000}})
        self.agent_with_tool("queue", "one_tool")
        session = self.new_session("queue")
        first = self.client.start_run(session, "first")
        second = self.client.start_run(session, "second")
        self.assertEqual(second["status"], "queued", second)
        wait_until(lambda: self.tools.stats()["in_flight"] >= 1, message="the first run's slow tool call")
        resp = self.client.post(f"/v1/runs/{second['id']}/cancel", {})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body["status"], "cancelled")
        self.assertEqual(self.client.run(first["id"])["status"], "running", "the active run is untouched")
        self.assertEqual(self.client.post(f"/v1/runs/{first['id']}/cancel", {}).status, 200)

        self.tools.control(tools={"the_tool": {"delay_ms": 0}})
        third = self.client.start_run(session, "third", wait=True)
        self.assert_completed(third)
        kinds = [s["kind"] for s in self.client.steps(second["id"])]
        self.assertNotIn("model_call", kinds, "a cancelled queued run never ran")
        self.assertEqual(kinds[-1], "run_cancelled")
        user_inputs = [i["message"]["content"] for i in self.client.items(session) if i["message"]["role"] == "user"]
        self.assertNotIn("second", user_inputs)

    def test_second_input_is_queued_and_runs_in_order(self):
        self.make_agent("orderly", "slow_turn")
        session = self.new_session("orderly")
        first = self.client.start_run(session, "first")
        second = self.client.start_run(session, "second")
        self.assertEqual(second["status"], "queued", second)
        first, second = self.finished(first), self.finished(second)
        self.assert_completed(first, "turn 1: first")
        self.assert_completed(second, "turn 2: second")  # it saw the first run's conversation
        items = self.client.items(session)
        self.assertEqual([i["message"]["content"] for i in items],
                         ["first", "turn 1: first", "second", "turn 2: second"])
        runs = self.client.get(f"/v1/sessions/{session}/runs").body["data"]
        self.assertEqual([r["id"] for r in runs], [first["id"], second["id"]])

    def test_cancelled_run_stays_cancelled_after_restart(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 10000}})
        self.agent_with_tool("stays-cancelled", "one_tool")
        run = self.client.start_run(self.new_session("stays-cancelled"), "go")
        wait_until(lambda: self.tools.stats()["in_flight"] >= 1, message="the slow tool call to start")
        self.assertEqual(self.client.post(f"/v1/runs/{run['id']}/cancel", {}).status, 200)
        self.server.crash_restart()
        self.client = self.server.client()
        self.assertEqual(self.client.run(run["id"])["status"], "cancelled")
        self.assertEqual(self.client.steps(run["id"])[-1]["kind"], "run_cancelled")

    def test_clean_shutdown_parks_a_running_run_and_restart_finishes_it(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 1500}})
        self.agent_with_tool("parked", "one_tool")
        run = self.client.start_run(self.new_session("parked"), "park me")
        wait_until(lambda: self.tools.stats()["deliveries"] >= 1, message="the tool call to be in flight")
        self.assertEqual(self.server.restart(), 0, "SIGTERM is a clean shutdown")
        self.client = self.server.client()
        self.assert_completed(self.finished(run), "tool said " + result_for("the_tool", {"q": "park me"}))
        (step,) = tool_steps(self.client.steps(run["id"]))
        self.assertEqual(self.tools.ledger()[step["payload"]["idempotency_key"]]["applied"], 1)

    def test_clean_shutdown_answers_a_client_waiting_on_a_run(self):
        # docs/api.md: 503 `unavailable` while shutting down; a wait:true request in
        # progress should get an answer (that, or the run as it is), not a dropped connection.
        self.tools.control(tools={"the_tool": {"delay_ms": 30000}})
        self.agent_with_tool("waiting", "one_tool")
        session = self.new_session("waiting")
        outcome = {}

        def wait_for_run():
            try:
                outcome["response"] = self.client.post(f"/v1/sessions/{session}/runs", {"input": "x", "wait": True})
            except OSError as error:
                outcome["error"] = error

        waiter = threading.Thread(target=wait_for_run)
        waiter.start()
        wait_until(lambda: self.tools.stats()["in_flight"] >= 1, message="the run to be in its tool call")
        self.assertEqual(self.server.stop(), 0)
        waiter.join(60)
        self.assertNotIn("error", outcome, "the waiting client got no HTTP answer")
        resp = outcome["response"]
        if resp.status == 503:
            self.assert_error(resp, 503, "server_error", code="unavailable", check_param=False)
        else:
            self.assertEqual(resp.status, 202, resp)
            self.assertIn(resp.body["status"], ("queued", "running"), resp)

    # --- events ---

    def test_events_stream_steps_and_text_deltas(self):
        # Version 1 of the agent stalls in its model call and keeps the session busy, so
        # the run under test (pinned to version 2) is queued while we subscribe to it.
        definition = {"name": "streamer", "model": model_spec(self.mock, "stall"),
                      "tools": [http_tool(self.tools, "the_tool")]}
        self.client.create_agent(definition)
        session = self.new_session("streamer")
        blocker = self.client.start_run(session, "block")
        definition["model"] = model_spec(self.mock, "streamed")
        self.assertEqual(self.client.put("/v1/agents/streamer", definition).status, 200)
        run = self.client.start_run(session, "stream me")
        self.assertEqual(run["status"], "queued", run)

        events = []
        stream = iter_sse(self.server.base_url, f"/v1/runs/{run['id']}/events", self.api_key)
        try:
            events.append(next(stream))  # the run_created step: we are subscribed
            self.assertEqual(self.client.post(f"/v1/runs/{blocker['id']}/cancel", {}).status, 200)
            events.extend(stream)  # until the server ends the stream
        finally:
            stream.close()

        steps = self.client.steps(run["id"])
        step_events = [e for e in events if e.event != "text_delta"]
        self.assertEqual([int(e.id) for e in step_events], [s["seq"] for s in steps], "every step once, in order")
        self.assertEqual([e.event for e in step_events], [s["kind"] for s in steps])
        self.assertEqual([e.json() for e in step_events], steps, "event data is the step as in /steps")
        self.assertEqual(step_events[-1].event, "run_completed")

        final_model_step = [s for s in steps if s["kind"] == "model_call"][-1]
        deltas = [e for e in events if e.event == "text_delta"]
        self.assertTrue(deltas, "text arrives as it streams")
        self.assertTrue(all(e.id is None for e in deltas), "deltas carry no id")
        streamed = "".join(e.json()["delta"] for e in deltas if e.json()["seq"] == final_model_step["seq"])
        self.assertEqual(streamed, "The final answer is long enough to arrive in several pieces.")
        position = {id(e): i for i, e in enumerate(events)}
        model_event = next(e for e in step_events if int(e.id) == final_model_step["seq"])
        self.assertTrue(all(position[id(d)] < position[id(model_event)] for d in deltas
                            if d.json()["seq"] == final_model_step["seq"]), "deltas come before their step")

    def test_events_resume_after_last_event_id(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 200}})
        self.agent_with_tool("resumer", "three_tools")
        run = self.client.start_run(self.new_session("resumer"), "go")
        path = f"/v1/runs/{run['id']}/events"

        def steps_only(events):
            return [e for e in events if e.event != "text_delta"]

        seen = []

        def second_step(event):
            if event.event != "text_delta":
                seen.append(event)
            return len(seen) == 2

        head = steps_only(read_sse(self.server.base_url, path, self.api_key, until=second_step))
        self.assertEqual(len(head), 2)
        # Reconnect while the run is (most likely) still going, as a client would.
        rest = steps_only(read_sse(self.server.base_url, path, self.api_key, last_event_id=head[-1].id))
        self.assert_completed(self.finished(run))
        steps = self.client.steps(run["id"])
        self.assertEqual([int(e.id) for e in head + rest], [s["seq"] for s in steps],
                         "no duplicates and no gaps across the reconnect")
        self.assertEqual([e.json() for e in rest], steps[2:])
        self.assertEqual(rest[-1].event, "run_completed")

        # The same with ?after= on the finished run.
        again = steps_only(read_sse(self.server.base_url, f"{path}?after={head[-1].id}", self.api_key))
        self.assertEqual([e.json() for e in again], steps[2:])
        everything = steps_only(read_sse(self.server.base_url, path, self.api_key))
        self.assertEqual([e.json() for e in everything], steps)

    # --- crash recovery ---

    def test_run_in_flight_survives_kill_9(self):
        self.tools.control(tools={"the_tool": {"delay_ms": 1500}})
        self.agent_with_tool("survivor", "one_tool")
        run = self.client.start_run(self.new_session("survivor"), "persist")
        wait_until(lambda: self.tools.stats()["deliveries"] >= 1, message="the tool call to be in flight")
        self.server.crash_restart()
        self.client = self.server.client()
        finished = self.finished(run)
        self.assert_completed(finished, "tool said " + result_for("the_tool", {"q": "persist"}))
        (step,) = tool_steps(self.client.steps(run["id"]))
        key = step["payload"]["idempotency_key"]
        self.assertEqual(key, f"{run['id']}:{step['seq']}")
        record = self.tools.ledger()[key]
        self.assertEqual(record["applied"], 1, "the effect happened once")
        self.assertFalse(record["mismatched"], record)


if __name__ == "__main__":
    unittest.main()
