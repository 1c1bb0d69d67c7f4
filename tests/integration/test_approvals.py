"""Human approvals of tool calls against the real binary (policy effect
require_approval): a held call is parked durably, the run waits, an approver decides
through the API, and the call runs exactly once with exactly the approved arguments,
or the model is told no.

  approve       the run waits; the approval is listed (to approvers only) with the
                exact arguments and their hash; the SSE stream shows
                approval_requested while the run waits; the requesting user may not
                decide it; an approver approves, the tool server gets exactly one call
                with those arguments, the run completes; a second decision is 409;
                parallel calls wait on one approval each; concurrent decisions: one
                wins, the others are 409
  deny          the model sees "not approved" with the approver and the comment;
                the tool is never called
  expiry        with a short TTL the run goes on with a result saying the approval
                expired (also when it expired while the server was down); deciding
                afterwards is 409; the status is "expired"
  crashes       kill -9 while waiting: still pending after restart, approve, one
                call; approve then kill -9 at once: still exactly one applied call
  webhook       approval.requested reaches CONTINUUM_APPROVAL_WEBHOOK_URL, without
                the arguments; a webhook that is down holds nothing up
  rules         separation of duties (CONTINUUM_APPROVALS_ALLOW_SELF), a decision after
                the run ended is 409, tenants and members see none of the approvals
                (the CLI has no approvals commands yet: not tested here)"""

import json
import threading
import time
import unittest

from harness import (Client, InProcessServer, IntegrationTest, clean_env, describe, http_tool, read_sse, result_for,
                     run_cli, tool_steps, wait_until)
from test_governance import LARGE_REFUNDS, GovernanceHelpers, issue_key, sha256_hex, wait_for_approval

APPROVAL_FIELDS = sorted(["object", "id", "run_id", "session_id", "seq", "tool", "arguments", "arguments_hash",
                          "statement", "requested_by", "agent", "status", "created_at_ms", "expires_at_ms",
                          "decided_at_ms", "decided_by", "comment"])
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
# After a restart an approval-gated run finishes within a second or two; a run that
# was not resumed at all should fail the test without waiting the harness's 120 s.
RESUME_TIMEOUT_S = 15


class WebhookListener(InProcessServer):
    """Records every POST it gets: (path, headers, body bytes)."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self._serve_replies(self._answer)

    def _answer(self, method, path, headers, body):
        with self.lock:
            self.requests.append((path, dict(headers.items()), body))
        return 204, None, b""

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hooks/approvals"

    def received(self):
        with self.lock:
            return list(self.requests)


class ApprovalsBase(GovernanceHelpers, IntegrationTest):
    """Setup and helpers: a policy that holds refunds over 1000 for approval (the
    built-in one plus LARGE_REFUNDS), agents calling refund with 2500 and 500, and keys
    for alice and bob (members), paula (approver) and carol (admin of tenant acme)."""

    SCRIPTS = {
        "refund_big": {"steps": [{"tool_calls": [{"name": "refund", "arguments": {
                           "amount": 2500, "currency": "EUR", "note": "{{input}}"}}]},
                                 {"content": "refund said {{tool_results}}"}]},
        "refund_small": {"steps": [{"tool_calls": [{"name": "refund", "arguments": {
                             "amount": 500, "currency": "EUR", "note": "{{input}}"}}]},
                                   {"content": "refund said {{tool_results}}"}]},
        "refund_two": {"steps": [{"tool_calls": [{"name": "refund", "arguments": {"amount": 2500, "note": "a"}},
                                                 {"name": "refund", "arguments": {"amount": 3000, "note": "b"}}]},
                                 {"content": "refunds said {{tool_results}}"}]},
    }
    SERVER_ENV = {}  # extra server environment, applied by a restart in setUp

    def setUp(self):
        super().setUp()
        if self.SERVER_ENV:
            self.restart_with(self.SERVER_ENV)
        document = self.built_in_document()
        document["statements"].append(LARGE_REFUNDS)
        self.put_policy(document)
        refund = http_tool(self.tools, "refund", {"type": "object",
                                                  "properties": {"amount": {"type": "number"},
                                                                 "currency": {"type": "string"},
                                                                 "note": {"type": "string"}},
                                                  "required": ["amount"]})
        self.make_agent("refunder", "refund_big", tools=[refund])
        self.make_agent("small-refunder", "refund_small", tools=[refund])
        self.make_agent("double-refunder", "refund_two", tools=[refund])
        self.tokens = {"alice": issue_key(self.client, "alice")["token"],
                       "bob": issue_key(self.client, "bob")["token"],
                       "paula": issue_key(self.client, "paula", ["approver"])["token"],
                       "carol": issue_key(self.client, "carol", ["admin"], tenant="acme")["token"]}

    # --- helpers ---------------------------------------------------------------------

    def restart_with(self, env):
        self.server.extra_env.update(env)
        self.server.restart()
        self.client = self.server.client()

    def who(self, name):
        return Client(self.server.base_url, self.tokens[name])

    def start_waiting_run(self, note="refund order 1234", agent="refunder", user="alice", admin=None):
        """A run of `user`'s that waits on an approval: (run id, its approval_requested step).
        `admin` (default: the admin of "default") watches the run."""
        client = self.who(user)
        session = client.ok("POST", "/v1/sessions", {"agent": agent}, expect=201)["id"]
        run = client.ok("POST", f"/v1/sessions/{session}/runs", {"input": note}, expect=202)
        return run["id"], wait_for_approval(admin or self.client, run["id"])

    def approval(self, approval_id, client=None):
        return (client or self.who("paula")).ok("GET", f"/v1/approvals/{approval_id}", expect=200)

    def decide(self, approval_id, decision, client=None, comment=None, expect=200):
        body = {"comment": comment} if comment is not None else None
        resp = (client or self.who("paula")).post(f"/v1/approvals/{approval_id}/{decision}", body)
        self.assert_status(resp, expect)
        return resp.body

    def listed(self, client, query="status=pending"):
        page = client.ok("GET", f"/v1/approvals?{query}", expect=200)
        self.assertEqual(page["object"], "list")
        return page["data"]

    def assert_streamed_while_waiting(self, run_id, payload):
        """GET /v1/runs/{id}/events shows the approval_requested step of a waiting run."""
        events = []
        try:
            read_sse(self.server.base_url, f"/v1/runs/{run_id}/events", api_key=self.tokens["alice"],
                     until=lambda e: events.append(e) or e.event == "approval_requested", timeout_s=5)
        except (TimeoutError, OSError):
            pass  # nothing more came: asserted below
        self.assertIn("approval_requested", [e.event for e in events],
                      f"the stream of the waiting run sent only {[(e.id, e.event) for e in events]}")
        self.assertEqual(events[-1].json()["payload"], payload)

    def kinds(self, run_id):
        return [s["kind"] for s in self.client.steps(run_id)]



class ApprovalsTest(ApprovalsBase):
    # --- approve ---------------------------------------------------------------------

    def test_large_refund_waits_and_runs_once_after_approval(self):
        note = "refund order 1234"
        run_id, requested = self.start_waiting_run(note)
        alice, bob, paula = self.who("alice"), self.who("bob"), self.who("paula")
        self.assertEqual(alice.ok("GET", f"/v1/runs/{run_id}", expect=200)["status"], "waiting")
        self.assertEqual(self.tools.stats()["deliveries"], 0, "nothing is called before the decision")

        payload = requested["payload"]
        approval_id = payload["approval_id"]
        self.assertEqual((payload["tool"], payload["statement"], payload["requested_by"], payload["agent"]),
                         ("refund", "large-refunds", "alice", "refunder"), payload)
        self.assertTrue(payload["reason"], payload)

        # The approver's list shows it, with exactly the arguments the model gave.
        (listed,) = self.listed(paula)
        self.assertEqual(sorted(listed), APPROVAL_FIELDS, listed)
        arguments = {"amount": 2500, "currency": "EUR", "note": note}
        self.assertEqual((listed["object"], listed["id"], listed["run_id"], listed["tool"], listed["arguments"],
                          listed["arguments_hash"], listed["statement"], listed["requested_by"], listed["agent"],
                          listed["status"], listed["decided_at_ms"], listed["decided_by"], listed["comment"]),
                         ("approval", approval_id, run_id, "refund", arguments, payload["arguments_hash"],
                          "large-refunds", "alice", "refunder", "pending", None, None, None), listed)
        self.assertEqual(listed["seq"], payload["tool_seq"])
        self.assertEqual(listed["expires_at_ms"] - listed["created_at_ms"], SEVEN_DAYS_MS, "the default TTL")
        self.assertEqual(listed["expires_at_ms"], payload["expires_at_ms"])
        self.assertEqual(self.approval(approval_id), listed)

        # The run's event stream shows the request while the run waits on it.
        with self.subTest(check="approval_requested on the SSE stream while waiting"):
            self.assert_streamed_while_waiting(run_id, payload)

        # Nobody decides their own request; members and other tenants may not decide at all.
        self.decide(approval_id, "approve", client=alice, expect=403)
        self.decide(approval_id, "deny", client=alice, expect=403)
        self.decide(approval_id, "approve", client=bob, expect=403)
        self.decide(approval_id, "approve", client=self.who("carol"), expect=404)
        self.assertEqual(self.approval(approval_id)["status"], "pending", "refused decisions change nothing")

        decided = self.decide(approval_id, "approve", comment="checked the order")
        self.assertEqual((decided["status"], decided["decided_by"], decided["comment"]),
                         ("approved", "paula", "checked the order"), decided)
        self.assertIsInstance(decided["decided_at_ms"], int)

        run = self.client.wait_run(run_id)
        self.assertEqual(run["status"], "completed", run)
        self.assertEqual(run["output"], "refund said " + result_for("refund", arguments))
        (tool_step,) = tool_steps(self.client.steps(run_id))
        self.assertFalse(tool_step["payload"]["is_error"], tool_step)
        self.assertEqual(tool_step["seq"], payload["tool_seq"])
        self.assertEqual(sha256_hex(tool_step["payload"]["arguments"]), payload["arguments_hash"],
                         "the hash is of the arguments exactly as the model gave them")
        ledger = self.tools.ledger()
        self.assertEqual(list(ledger), [tool_step["payload"]["idempotency_key"]], "exactly one call")
        record = ledger[tool_step["payload"]["idempotency_key"]]
        self.assertEqual((record["tool"], record["args"], record["applied"], record["deliveries"]),
                         ("refund", arguments, 1, 1), record)
        self.assertEqual(self.tools.stats()["deliveries"], 1)

        # In seq order the tool_call holds the seq reserved when the model asked for it;
        # it was committed after the decision.
        steps = self.client.steps(run_id)
        self.assertEqual([s["kind"] for s in steps],
                         ["run_created", "run_started", "model_call", "tool_call", "approval_requested",
                          "approval_decided", "model_call", "run_completed"])
        at = {s["kind"]: s["created_at_ms"] for s in steps if s["kind"] != "model_call"}
        self.assertLessEqual(at["approval_requested"], at["approval_decided"])
        self.assertLessEqual(at["approval_decided"], at["tool_call"])
        (decided_step,) = [s for s in steps if s["kind"] == "approval_decided"]
        self.assertEqual({k: decided_step["payload"][k] for k in ("approval_id", "tool_seq", "decision",
                                                                  "decided_by", "decided_at_ms")},
                         {"approval_id": approval_id, "tool_seq": payload["tool_seq"], "decision": "approved",
                          "decided_by": "paula", "decided_at_ms": decided["decided_at_ms"]})

        # Decided once: a second decision either way is a conflict, and nothing runs again.
        self.decide(approval_id, "approve", expect=409)
        self.decide(approval_id, "deny", expect=409)
        self.assertEqual(self.approval(approval_id)["status"], "approved")
        self.assertEqual(self.listed(paula), [])
        self.assertEqual([a["id"] for a in self.listed(paula, "status=approved")], [approval_id])
        self.assertEqual(self.tools.stats()["deliveries"], 1)

    def test_small_refund_needs_no_approval(self):
        session = self.who("alice").ok("POST", "/v1/sessions", {"agent": "small-refunder"}, expect=201)["id"]
        run = self.who("alice").ok("POST", f"/v1/sessions/{session}/runs", {"input": "small", "wait": True},
                                   expect=200)
        self.assertEqual(run["status"], "completed", run)
        self.assertNotIn("approval_requested", self.kinds(run["id"]))
        self.assertEqual(self.tools.stats()["tools"]["refund"]["applied"], 1)
        self.assertEqual(self.listed(self.who("paula"), "limit=100"), [])

    def test_parallel_calls_wait_on_their_own_approvals(self):
        alice, paula = self.who("alice"), self.who("paula")
        session = alice.ok("POST", "/v1/sessions", {"agent": "double-refunder"}, expect=201)["id"]
        run_id = alice.ok("POST", f"/v1/sessions/{session}/runs", {"input": "two"}, expect=202)["id"]
        self.client.wait_run(run_id, statuses=("waiting",))
        pending = wait_until(lambda: len(self.listed(paula)) == 2 and self.listed(paula), message="two approvals")
        by_amount = {a["arguments"]["amount"]: a for a in pending}
        self.assertEqual(sorted(by_amount), [2500, 3000])
        self.assertNotEqual(by_amount[2500]["seq"], by_amount[3000]["seq"])

        self.decide(by_amount[3000]["id"], "approve")
        wait_until(lambda: self.tools.stats()["applied"] == 1, message="the approved call")
        self.assertEqual(self.client.run(run_id)["status"], "waiting", "still waiting on the other approval")
        self.decide(by_amount[2500]["id"], "deny", comment="one is enough")
        run = self.client.wait_run(run_id)
        self.assertEqual(run["status"], "completed", run)
        outputs = {json.loads(s["payload"]["arguments"])["amount"]: s["payload"]["output"]
                   for s in tool_steps(self.client.steps(run_id))}
        self.assertEqual(outputs[3000], result_for("refund", {"amount": 3000, "note": "b"}))
        self.assertTrue(outputs[2500].startswith("error: the call was not approved"), outputs)
        self.assertIn("one is enough", outputs[2500])
        (record,) = self.tools.ledger().values()
        self.assertEqual((record["args"], record["applied"]), ({"amount": 3000, "note": "b"}, 1))

    def test_concurrent_decisions_record_exactly_one(self):
        run_id, requested = self.start_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        statuses = []
        lock = threading.Lock()

        def decide(decision):
            resp = self.who("paula").post(f"/v1/approvals/{approval_id}/{decision}", {"comment": decision})
            with lock:
                statuses.append((decision, resp.status))

        threads = [threading.Thread(target=decide, args=("approve" if n % 2 else "deny",)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [decision for decision, status in statuses if status == 200]
        self.assertEqual(len(winners), 1, statuses)
        self.assertEqual(sorted(status for _, status in statuses), [200] + [409] * 7, statuses)
        approval = self.approval(approval_id)
        expected = "approved" if winners[0] == "approve" else "denied"
        self.assertEqual((approval["status"], approval["comment"]), (expected, winners[0]))
        run = self.client.wait_run(run_id)
        self.assertEqual(run["status"], "completed", run)
        self.assertEqual(self.tools.stats()["applied"], 1 if expected == "approved" else 0)
        self.assertEqual(self.kinds(run_id).count("approval_decided"), 1)

    # --- deny --------------------------------------------------------------------------

    def test_denied_call_is_never_made_and_the_model_hears_why(self):
        run_id, requested = self.start_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        paula = self.who("paula")
        self.assert_error(paula.post(f"/v1/approvals/{approval_id}/deny", {"comment": "x" * 4097}), 400,
                          "invalid_request_error", "comment")
        self.assert_error(paula.post(f"/v1/approvals/{approval_id}/deny", {"reason": "x"}), 400,
                          "invalid_request_error", "reason")
        self.assert_error(paula.post(f"/v1/approvals/{approval_id}/deny", {"comment": 5}), 400,
                          "invalid_request_error", "comment")
        decided = self.decide(approval_id, "deny", comment="amount exceeds the order total")
        self.assertEqual((decided["status"], decided["decided_by"]), ("denied", "paula"))

        run = self.client.wait_run(run_id)
        self.assertEqual(run["status"], "completed", run)
        (step,) = tool_steps(self.client.steps(run_id))
        output = step["payload"]["output"]
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertTrue(output.startswith("error: the call was not approved"), output)
        self.assertIn("paula", output)
        self.assertIn("amount exceeds the order total", output)
        self.assertEqual(run["output"], "refund said " + output, "the model saw the refusal")
        self.assertEqual(self.tools.stats()["deliveries"], 0, "the tool was never called")
        self.assertEqual(self.tools.ledger(), {})
        self.decide(approval_id, "approve", expect=409)
        self.assertEqual(self.approval(approval_id)["status"], "denied")
        self.assertEqual([a["id"] for a in self.listed(self.who("paula"), "status=denied")], [approval_id])

    def test_cli_lists_approves_and_denies(self):
        def cli(token, *args):
            return run_cli([*args, "--server", self.server.base_url, "--api-key", token], clean_env(), self.tmp)
        first_run, first = self.start_waiting_run("refund order 1")
        second_run, second = self.start_waiting_run("refund order 2")
        first_id, second_id = first["payload"]["approval_id"], second["payload"]["approval_id"]
        listed = cli(self.tokens["paula"], "approvals", "list")
        self.assertEqual(listed.returncode, 0, describe(listed))
        shown = json.loads(listed.stdout)
        self.assertEqual(sorted(a["id"] for a in shown["data"]), sorted([first_id, second_id]), shown)
        for approval in shown["data"]:
            self.assertEqual(approval["arguments"], self.approval(approval["id"])["arguments"],
                             "the exact arguments are shown")
            self.assertEqual(approval["arguments"]["amount"], 2500)
        refused = cli(self.tokens["alice"], "approvals", "approve", first_id)
        self.assertNotEqual(refused.returncode, 0, "a member may not decide approvals")
        self.assertIn("403", refused.stderr)
        approved = cli(self.tokens["paula"], "approvals", "approve", first_id, "--comment", "checked the order")
        self.assertEqual(approved.returncode, 0, describe(approved))
        self.assertEqual(json.loads(approved.stdout)["status"], "approved")
        denied = cli(self.tokens["paula"], "approvals", "deny", second_id, "--comment", "duplicate order")
        self.assertEqual(denied.returncode, 0, describe(denied))
        again = cli(self.tokens["paula"], "approvals", "deny", first_id)
        self.assertNotEqual(again.returncode, 0, "a second decision is refused")
        self.assertEqual(self.client.wait_run(first_run)["status"], "completed")
        self.assertEqual(self.client.wait_run(second_run)["status"], "completed")
        self.assertEqual(self.tools.stats()["applied"], 1, "only the approved call was made")
        history = cli(self.tokens["paula"], "approvals", "list", "--status", "all")
        self.assertEqual(sorted(a["status"] for a in json.loads(history.stdout)["data"]), ["approved", "denied"])

    # --- the run ended -----------------------------------------------------------------

    def test_decision_after_the_run_ended_is_a_conflict(self):
        run_id, requested = self.start_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        resp = self.who("alice").post(f"/v1/runs/{run_id}/cancel")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body["status"], "cancelled", resp)
        self.decide(approval_id, "approve", expect=409)
        self.decide(approval_id, "deny", expect=409)
        self.assertEqual(self.tools.stats()["deliveries"], 0)
        # It can never be decided now, so approvers should not be shown it as pending work.
        with self.subTest(check="no stale pending approval after the run ended"):
            self.assertNotEqual(self.approval(approval_id)["status"], "pending")
            self.assertEqual(self.listed(self.who("paula")), [])

    # --- separation of duties ------------------------------------------------------------

    def test_requester_may_decide_only_when_self_approval_is_allowed(self):
        self.tokens["alice"] = issue_key(self.client, "alice", ["member", "approver"])["token"]
        _, requested = self.start_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        resp = self.who("alice").post(f"/v1/approvals/{approval_id}/approve")
        self.assert_status(resp, 403)
        self.assertIn("own", resp.body["error"]["message"])
        self.assertEqual(self.approval(approval_id, client=self.who("alice"))["status"], "pending",
                         "an approver reads their own request")

        self.restart_with({"CONTINUUM_APPROVALS_ALLOW_SELF": "true"})
        run_id, requested = self.start_waiting_run("second order")
        decided = self.decide(requested["payload"]["approval_id"], "approve", client=self.who("alice"))
        self.assertEqual((decided["status"], decided["decided_by"]), ("approved", "alice"))
        self.assertEqual(self.client.wait_run(run_id)["status"], "completed")

    # --- who sees approvals ----------------------------------------------------------------

    def test_approvals_are_listed_only_to_who_may_read_them(self):
        ids = [self.start_waiting_run(f"order {n}")[1]["payload"]["approval_id"] for n in range(3)]
        paula, admin = self.who("paula"), self.client
        self.assertEqual([a["id"] for a in self.listed(paula)], ids, "oldest first")
        self.assertEqual([a["id"] for a in self.listed(admin, "")], ids)
        for name in ("alice", "bob", "carol"):
            with self.subTest(principal=name):
                self.assertEqual(self.listed(self.who(name)), [], f"{name} may not read these approvals")
                self.assertEqual(self.listed(self.who(name), ""), [])
        self.assert_status(self.who("carol").get(f"/v1/approvals/{ids[0]}"), 404)

        first = paula.ok("GET", "/v1/approvals?status=pending&limit=2", expect=200)
        self.assertEqual(([a["id"] for a in first["data"]], first["has_more"]), (ids[:2], True), first)
        rest = paula.ok("GET", f"/v1/approvals?status=pending&limit=2&after={first['next_cursor']}", expect=200)
        self.assertEqual(([a["id"] for a in rest["data"]], rest["has_more"], rest["next_cursor"]),
                         (ids[2:], False, None), rest)
        for query, param in (("status=maybe", "status"), ("limit=0", "limit"), ("limit=x", "limit")):
            with self.subTest(query=query):
                self.assert_error(paula.get(f"/v1/approvals?{query}"), 400, "invalid_request_error", param)
        self.assert_status(paula.get("/v1/approvals/apr_000000000000000000000000"), 404)

        # A tenant's approvers see their tenant's only; acme's admin sees acme's.
        carol = self.who("carol")
        definition = {k: v for k, v in self.client.ok("GET", "/v1/agents/refunder", expect=200).items()
                      if k not in ("object", "version", "created_at_ms")}
        carol.ok("POST", "/v1/agents", definition, expect=201)
        acme_document = carol.ok("GET", "/v1/policy", expect=200)["document"]
        acme_document["statements"].append(LARGE_REFUNDS)
        self.put_policy(acme_document, client=carol)
        self.tokens["acme-alice"] = issue_key(carol, "alice")["token"]
        _, acme_requested = self.start_waiting_run("acme order", user="acme-alice", admin=carol)
        acme_id = acme_requested["payload"]["approval_id"]
        self.assertEqual([a["id"] for a in self.listed(carol)], [acme_id])
        self.assertEqual([a["id"] for a in self.listed(paula)], ids, "default's approver sees none of acme's")
        self.assert_status(paula.get(f"/v1/approvals/{acme_id}"), 404)
        self.assert_status(paula.post(f"/v1/approvals/{acme_id}/approve"), 404)
        self.assertEqual(self.decide(acme_id, "approve", client=carol)["status"], "approved")

    # --- the webhook -----------------------------------------------------------------------

    def test_webhook_is_told_without_the_arguments(self):
        hook = WebhookListener()
        self.addCleanup(hook.stop)
        self.restart_with({"CONTINUUM_APPROVAL_WEBHOOK_URL": hook.url})
        canary = "canary-note-7f3a9c"
        run_id, requested = self.start_waiting_run(canary)
        payload = requested["payload"]
        (path, headers, body) = wait_until(lambda: hook.received(), timeout_s=30, message="the webhook")[0]
        self.assertEqual(path, "/hooks/approvals")
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"), headers)
        event = json.loads(body)
        self.assertEqual(event, {"type": "approval.requested", "tenant": "default",
                                 "approval_id": payload["approval_id"], "run_id": run_id,
                                 "session_id": self.approval(payload["approval_id"])["session_id"],
                                 "tool": "refund", "arguments_hash": payload["arguments_hash"],
                                 "requested_by": "alice", "agent": "refunder",
                                 "expires_at_ms": payload["expires_at_ms"]})
        self.assertNotIn(canary.encode(), body, "the arguments are never sent")
        self.assertNotIn(b"2500", body)
        self.assertEqual(len(hook.received()), 1)


    def test_a_webhook_that_is_down_does_not_hold_the_run(self):
        hook = WebhookListener()
        url = hook.url
        hook.stop()  # nothing listens there now
        self.restart_with({"CONTINUUM_APPROVAL_WEBHOOK_URL": url})
        run_id, requested = self.start_waiting_run()
        self.decide(requested["payload"]["approval_id"], "approve")
        self.assertEqual(self.client.wait_run(run_id)["status"], "completed")
        self.assertEqual(self.tools.stats()["applied"], 1)


class ApprovalExpiryTest(ApprovalsBase):
    SERVER_ENV = {"CONTINUUM_APPROVAL_TTL_MS": "1500", "CONTINUUM_APPROVAL_POLL_MS": "100"}

    def test_unanswered_approval_expires(self):
        run_id, requested = self.start_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        self.assertEqual(requested["payload"]["expires_at_ms"] - self.approval(approval_id)["created_at_ms"], 1500)

        run = self.client.wait_run(run_id)
        self.assertEqual(run["status"], "completed", run)
        (step,) = tool_steps(self.client.steps(run_id))
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertTrue(step["payload"]["output"].startswith("error: "), step)
        self.assertIn("expired", step["payload"]["output"])
        self.assertEqual(run["output"], "refund said " + step["payload"]["output"])
        (decided,) = [s for s in self.client.steps(run_id) if s["kind"] == "approval_decided"]
        self.assertEqual((decided["payload"]["decision"], decided["payload"]["decided_by"]), ("expired", "system"))

        self.assertEqual(self.approval(approval_id)["status"], "expired")
        self.decide(approval_id, "approve", expect=409)
        self.decide(approval_id, "deny", expect=409)
        self.assertEqual([a["id"] for a in self.listed(self.who("paula"), "status=expired")], [approval_id])
        self.assertEqual(self.listed(self.who("paula")), [])
        self.assertEqual(self.tools.stats()["deliveries"], 0, "the tool was never called")


    def test_approval_expiring_while_the_server_is_down(self):
        run_id, requested = self.start_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        self.server.stop()
        deadline = requested["payload"]["expires_at_ms"] / 1000.0
        while time.time() < deadline + 0.2:  # let the TTL pass while nothing runs
            time.sleep(0.1)
        self.server.start()
        self.client = self.server.client()
        run = self.client.wait_run(run_id, timeout_s=RESUME_TIMEOUT_S)
        self.assertEqual(run["status"], "completed", run)
        (step,) = tool_steps(self.client.steps(run_id))
        self.assertIn("expired", step["payload"]["output"])
        self.assertEqual(self.approval(approval_id)["status"], "expired")
        self.decide(approval_id, "approve", expect=409)
        self.assertEqual(self.tools.stats()["deliveries"], 0)


class ApprovalCrashTest(ApprovalsBase):
    """kill -9 around a decision."""

    def test_waiting_run_survives_kill_9(self):
        run_id, requested = self.start_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        self.server.crash_restart()
        self.client = self.server.client()
        self.assertEqual(self.approval(approval_id)["status"], "pending")
        run = self.client.wait_run(run_id, statuses=("waiting",), timeout_s=RESUME_TIMEOUT_S)
        self.assertEqual(run["status"], "waiting", run)
        self.decide(approval_id, "approve")
        run = self.client.wait_run(run_id, timeout_s=RESUME_TIMEOUT_S)
        self.assertEqual(run["status"], "completed", run)
        stats = self.tools.stats()
        self.assertEqual((stats["applied"], stats["multiply_applied"]), (1, []), stats)
        self.assertEqual(self.kinds(run_id).count("approval_requested"), 1, "asked once, not again at restart")
        self.assertEqual(self.kinds(run_id).count("tool_call"), 1)

    def test_approval_then_kill_9_still_runs_the_tool_once(self):
        self.tools.control(tools={"refund": {"delay_ms": 300}})  # the kill likely lands mid-call
        run_id, requested = self.start_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        self.decide(approval_id, "approve")
        self.server.crash_restart()
        self.client = self.server.client()
        run = self.client.wait_run(run_id, timeout_s=RESUME_TIMEOUT_S)
        self.assertEqual(run["status"], "completed", run)
        stats = self.tools.stats()
        self.assertEqual((stats["keys"], stats["applied"], stats["multiply_applied"], stats["mismatches"]),
                         (1, 1, [], []), stats)
        kinds = self.kinds(run_id)
        self.assertEqual((kinds.count("approval_requested"), kinds.count("approval_decided"), kinds.count("tool_call")),
                         (1, 1, 1), kinds)
        (step,) = tool_steps(self.client.steps(run_id))
        self.assertFalse(step["payload"]["is_error"], step)
        self.assertEqual(self.approval(approval_id)["status"], "approved")


if __name__ == "__main__":
    unittest.main()
