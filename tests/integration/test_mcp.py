"""MCP servers as agent tools, end to end: real agent runs through the real binary,
a scripted mock model that "calls" the MCP tools, and real MCP servers.

  server-everything      stdio: echo and get-sum; a long call kept alive only by its
                         progress notifications (and, as the control, the same call
                         without progress timing out); cancelling a run mid-call.
                         Streamable HTTP: echo through a run.
  server-filesystem      rooted in a temp dir: write then read back (file on disk);
                         a path outside the root is the server's "Access denied" error,
                         shown to the model, with is_error on the journal step.
  server-memory          entities created in one session are read by a new session of
                         the same agent after Continuum restarted (MEMORY_FILE_PATH).
  mcp_test_server.py     (tests/support) crash_once: the call is retried against a
                         restarted server with the same idempotency key; both MCP
                         revisions over stdio and HTTP (what each revision puts on the
                         wire, per requests.jsonl); tools/list pagination (all five tools
                         are offered to the model); cancellation reaches the server;
                         allowed_tools; a tenant policy denying one MCP tool; the
                         idempotency key is "<run_id>:<seq>"; a stdio command that the
                         server configuration does not allow is never spawned.

Needs node (>= 19 for server-everything's HTTP mode) and tests/mcp/node_modules
(scripts/install-node-deps.sh); without them every test is skipped with the reason."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from harness import (REPO_DIR, START_TIMEOUT_S, ContinuumServer, IntegrationTest, MockModel, Process,
                     ProcessExited, free_port, model_spec, step_arguments, tool_steps, wait_until)

NODE_MODULES = os.path.join(REPO_DIR, "tests", "mcp", "node_modules", "@modelcontextprotocol")
EVERYTHING_JS = os.path.join(NODE_MODULES, "server-everything", "dist", "index.js")
FILESYSTEM_JS = os.path.join(NODE_MODULES, "server-filesystem", "dist", "index.js")
MEMORY_JS = os.path.join(NODE_MODULES, "server-memory", "dist", "index.js")
MCP_TEST_SERVER_PY = os.path.join(REPO_DIR, "tests", "support", "mcp_test_server.py")

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
TEST_SERVER_TOOLS = ["add", "echo", "slow", "fail", "crash_once"]  # tools/list order, 2 per page

# Programs the Continuum server lets stdio MCP servers run.
STDIO_COMMANDS = "node,python3"


def node_problem():
    """Why the Node MCP servers cannot run here, or None."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed (run scripts/install-node-deps.sh)"
    missing = [p for p in (EVERYTHING_JS, FILESYSTEM_JS, MEMORY_JS) if not os.path.exists(p)]
    if missing:
        return f"npm packages missing: {missing} (run scripts/install-node-deps.sh)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    major = int(re.match(r"v(\d+)", version).group(1)) if re.match(r"v(\d+)", version) else 0
    if major < 19:
        return f"node {version} is too old for server-everything's HTTP mode (needs >= 19)"
    return None


def read_jsonl(path):
    """The records of a JSON-lines file; [] when it does not exist (yet)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# --- MCP server processes -----------------------------------------------------------


class McpTestHttpServer(Process):
    """tests/support/mcp_test_server.py over Streamable HTTP on a port it picks."""

    def __init__(self, log_dir, state_dir, revisions=None, name="mcp_test_http"):
        super().__init__(name, log_dir)
        self.state_dir = state_dir
        self.revisions = revisions
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self):
        argv = [sys.executable, MCP_TEST_SERVER_PY, "http", "--port", "0", "--state-dir", self.state_dir]
        if self.revisions:
            argv += ["--revisions", self.revisions]
        self._spawn(argv)

        def listening():
            if not self.alive():
                raise ProcessExited(f"{self.name} exited during start:\n{self.log_text()}", self.log_text())
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                found = re.search(rb"^listening (\d+)$", f.read(), re.M)
            return int(found.group(1)) if found else None

        self.port = wait_until(listening, START_TIMEOUT_S, 0.05, f"{self.name} to print 'listening <port>'")
        return self


class EverythingHttpServer(Process):
    """server-everything in Streamable HTTP mode (it listens on $PORT, path /mcp)."""

    def __init__(self, log_dir):
        super().__init__("everything_http", log_dir)
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self):
        for attempt in range(3):
            self.port = free_port()
            self._spawn(["node", EVERYTHING_JS, "streamableHttp"], env={**os.environ, "PORT": str(self.port)})

            def up():
                if not self.alive():
                    raise ProcessExited(f"{self.name} exited during start:\n{self.log_text()}", self.log_text())
                return port_accepts(self.port)

            try:
                wait_until(up, START_TIMEOUT_S, 0.05, f"{self.name} to accept connections on {self.port}")
                return self
            except ProcessExited as error:
                self.proc = None
                if "in use" not in error.log or attempt == 2:
                    raise
        return self


# --- agent tool entries -----------------------------------------------------------


def stdio_server(name, command, args, allowed_tools=("*",), **extra):
    entry = {"type": "mcp", "name": name, "transport": "stdio", "command": command, "args": list(args),
             "allowed_tools": list(allowed_tools)}
    entry.update(extra)
    return entry


def http_server(name, url, allowed_tools=("*",), **extra):
    entry = {"type": "mcp", "name": name, "transport": "http", "url": url, "allowed_tools": list(allowed_tools)}
    entry.update(extra)
    return entry


def test_server_stdio(state_dir, name="test", revisions=None, command="python3", **extra):
    args = [MCP_TEST_SERVER_PY, "stdio", "--state-dir", state_dir]
    if revisions:
        args += ["--revisions", revisions]
    return stdio_server(name, command, args, **extra)


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def calls_then_report(*steps):
    """A script: each argument is one model turn's list of tool calls, then the
    final answer reports every tool result of the run."""
    return {"steps": [{"tool_calls": list(calls)} for calls in steps] + [{"content": "results: {{tool_results}}"}]}


class McpTestBase(IntegrationTest):
    """Setup and helpers of the MCP tests (no tests of its own)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        problem = node_problem()
        if problem and os.environ.get("CONTINUUM_REQUIRE_MCP") == "1":  # scripts/test.sh installs them
            raise AssertionError(f"CONTINUUM_REQUIRE_MCP=1 but {problem}")
        if problem:
            raise unittest.SkipTest(f"MCP integration tests need the Node MCP servers: {problem}")

    def setUp(self):
        # As IntegrationTest.setUp, without the HTTP tool server, and with stdio MCP
        # commands allowed on the Continuum server.
        self.tmp = tempfile.mkdtemp(prefix=f"continuum-{self._testMethodName[:40]}-")
        self.processes = []
        self.addCleanup(self._cleanup)
        self.api_key = "test-" + os.urandom(12).hex()
        self.mock = self.start_process(MockModel(self.tmp, self.SCRIPTS))
        self.server = self.start_process(
            ContinuumServer(self.tmp, os.path.join(self.tmp, "data"), self.api_key, self.mock.base_url,
                            env={"CONTINUUM_MCP_STDIO_COMMANDS": STDIO_COMMANDS}))
        self.client = self.server.client()

    # --- helpers ---

    def state_dir(self, name="mcp_state"):
        path = os.path.join(self.tmp, name)
        os.makedirs(path, exist_ok=True)
        return path

    def agent(self, name, script, *servers, endpoint=None):
        definition = {"name": name, "model": model_spec(endpoint or self.mock, script),
                      "instructions": f"You are the test agent {name}.", "tools": list(servers)}
        return self.client.create_agent(definition)

    def run_agent(self, agent, text="go", session=None):
        """Runs `agent` to a terminal status in a new (or the given) session."""
        session = session or self.new_session(agent)
        run = self.client.start_run(session, text)
        return self.client.wait_run(run["id"])

    def assert_completed(self, run):
        self.assertEqual(run["status"], "completed", run)
        self.assertIsNone(run["error"], run)

    def mcp_steps(self, run):
        """The run's tool_call steps, in journal order."""
        return tool_steps(self.client.steps(run["id"]))

    def server_log(self):
        return self.server.log_text(tail_bytes=10_000_000)

    def started_servers(self, name):
        """The pids Continuum logged for stdio MCP server `name` starts."""
        pids = []
        for line in self.server_log().splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("msg") == "mcp server started" and record.get("server") == name:
                    pids.append(record.get("pid"))
        return pids

    def offered_tools(self, proxy):
        """The tool names of every chat request the model got through `proxy`."""
        offered = []
        for body in proxy.requests:
            request = json.loads(body)
            offered.append(sorted(t["function"]["name"] for t in request.get("tools") or []))
        return offered

class McpTest(McpTestBase):
    SCRIPTS = {
        "echo_and_sum": calls_then_report([call("everything__echo", message="hi {{input}}")],
                                          [call("everything__get-sum", a=19, b=23)]),
        "long_with_progress": calls_then_report([call("everything__trigger-long-running-operation",
                                                      duration=3, steps=6)]),
        "long_without_progress": calls_then_report([call("everything__trigger-long-running-operation",
                                                         duration=3, steps=1)]),
        "everything_forever": calls_then_report([call("everything__trigger-long-running-operation",
                                                      duration=60, steps=60)]),
        "http_echo": calls_then_report([call("everything__echo", message="over http {{input}}")]),
        "fs_write_read": calls_then_report(
            [call("fs__write_file", path="{{input}}", content="written by continuum")],
            [call("fs__read_text_file", path="{{input}}")]),
        "fs_write": calls_then_report([call("fs__write_file", path="{{input}}", content="should not exist")]),
        "memory": calls_then_report(
            [call("memory__read_graph")],
            [call("memory__create_entities", entities=[{"name": "Ada_Lovelace", "entityType": "person",
                                                        "observations": ["wrote the first program"]}])],
            [call("memory__open_nodes", names=["Ada_Lovelace"])]),
        "crash_once": calls_then_report([call("test__crash_once", note="{{input}}")]),
        "add": calls_then_report([call("test__add", a=2, b=40)]),
        "add_and_fail": calls_then_report([call("test__add", a=2, b=40)], [call("test__fail")]),
        "slow": calls_then_report([call("test__slow", seconds=60)]),
        "not_allowed": calls_then_report([call("test__add", a=1, b=2)], [call("test__fail")]),
        "echo_and_add": calls_then_report([call("test__echo", message="secret plans"), call("test__add", a=1, b=1)]),
        "two_echoes": calls_then_report([call("test__echo", message="first"), call("test__echo", message="second")],
                                        [call("test__echo", message="third")]),
    }

    # --- server-everything over stdio ---------------------------------------------

    def everything_stdio(self, **extra):
        return stdio_server("everything", "node", [EVERYTHING_JS, "stdio"], **extra)

    def test_everything_stdio_echo_and_sum(self):
        self.agent("ev", "echo_and_sum", self.everything_stdio(allowed_tools=["echo", "get-sum"]))
        run = self.run_agent("ev", "there")
        self.assert_completed(run)
        self.assertEqual(run["output"], "results: Echo: hi there; The sum of 19 and 23 is 42.")
        self.assertEqual(run["tool_calls"], 2)
        steps = self.mcp_steps(run)
        self.assertEqual([s["payload"]["name"] for s in steps], ["everything__echo", "everything__get-sum"])
        for step in steps:
            self.assertFalse(step["payload"]["is_error"], step)
            self.assertEqual(step["payload"]["attempts"], 1, step)
        self.assertEqual(step_arguments(steps[1]), {"a": 19, "b": 23})

    def test_everything_progress_keeps_a_long_call_alive_past_its_idle_timeout(self):
        # 3 s with a progress notification every 0.5 s, under a 1.5 s idle timeout.
        self.agent("patient", "long_with_progress",
                   self.everything_stdio(allowed_tools=["trigger-long-running-operation"], timeout_ms=1500,
                                         retry={"max_attempts": 1}))
        run = self.run_agent("patient")
        self.assert_completed(run)
        self.assertEqual(run["output"], "results: Long running operation completed. Duration: 3 seconds, Steps: 6.")
        (step,) = self.mcp_steps(run)
        self.assertEqual((step["payload"]["is_error"], step["payload"]["attempts"]), (False, 1), step)

        # The control: the same 3 s call with a single progress notification at its end
        # is silent for longer than the idle timeout, and times out.
        self.agent("impatient", "long_without_progress",
                   self.everything_stdio(allowed_tools=["trigger-long-running-operation"], timeout_ms=1500,
                                         retry={"max_attempts": 1}))
        run = self.run_agent("impatient")
        self.assert_completed(run)
        (step,) = self.mcp_steps(run)
        self.assertTrue(step["payload"]["is_error"], step)
        self.assertIn("failed after 1 attempt(s): timeout", step["payload"]["output"])
        self.assertEqual(run["output"], "results: " + step["payload"]["output"])

    def test_cancelling_a_run_during_a_long_everything_call(self):
        self.agent("stoppable", "everything_forever",
                   self.everything_stdio(allowed_tools=["trigger-long-running-operation"]))
        session = self.new_session("stoppable")
        run = self.client.start_run(session, "go")
        # The model asked for the 60 s call: the tool call starts right after this step.
        wait_until(lambda: any(s["kind"] == "model_call" for s in self.client.steps(run["id"])),
                   message="the model's tool call")
        started = time.monotonic()
        resp = self.client.post(f"/v1/runs/{run['id']}/cancel", {})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body["status"], "cancelled", resp)
        got = self.client.wait_run(run["id"], timeout_s=10)
        self.assertLess(time.monotonic() - started, 10, "the run did not wait for the 60 s call")
        self.assertEqual(got["status"], "cancelled", got)
        self.assertEqual(self.client.steps(run["id"])[-1]["kind"], "run_cancelled")
        self.assertEqual(self.mcp_steps(run), [], "the call never produced a result")

    # --- server-everything over Streamable HTTP -----------------------------------

    def test_everything_streamable_http_echo(self):
        everything = self.start_process(EverythingHttpServer(self.tmp))
        proxy = self.strict_model()
        self.agent("ev-http", "http_echo", http_server("everything", everything.url, allowed_tools=["echo"]),
                   endpoint=proxy)
        run = self.run_agent("ev-http", "works")
        self.assert_completed(run)
        self.assertEqual(run["output"], "results: Echo: over http works")
        self.assertEqual(self.offered_tools(proxy)[0], ["everything__echo"], "listed over HTTP, filtered")
        self.assertEqual(proxy.rejections, [])

    # --- server-filesystem ----------------------------------------------------------

    def filesystem(self, root):
        return stdio_server("fs", "node", [FILESYSTEM_JS, root], allowed_tools=["write_file", "read_text_file"])

    def test_filesystem_write_then_read_back(self):
        root = self.state_dir("fs_root")
        self.agent("writer", "fs_write_read", self.filesystem(root))
        target = os.path.join(root, "note.txt")
        run = self.run_agent("writer", target)
        self.assert_completed(run)
        with open(target, encoding="utf-8") as f:
            self.assertEqual(f.read(), "written by continuum")
        write, read = self.mcp_steps(run)
        self.assertEqual(step_arguments(write), {"path": target, "content": "written by continuum"})
        self.assertFalse(write["payload"]["is_error"], write)
        self.assertEqual(read["payload"]["output"], "written by continuum")
        self.assertFalse(read["payload"]["is_error"], read)
        self.assertEqual(run["output"], f"results: {write['payload']['output']}; written by continuum")

    def test_filesystem_path_outside_the_root_is_the_servers_error(self):
        root = self.state_dir("fs_root")
        outside = os.path.join(self.tmp, "outside.txt")
        self.agent("escaper", "fs_write", self.filesystem(root))
        run = self.run_agent("escaper", outside)
        self.assert_completed(run)
        self.assertFalse(os.path.exists(outside), "nothing was written outside the root")
        (step,) = self.mcp_steps(run)
        payload = step["payload"]
        self.assertTrue(payload["is_error"], step)
        self.assertIn("Access denied", payload["output"])
        self.assertIn(outside, payload["output"])
        self.assertEqual(payload["attempts"], 1, "a tool's own error is an answer, not retried")
        self.assertEqual(run["output"], "results: " + payload["output"], "the model saw the server's error")

    # --- server-memory ----------------------------------------------------------------

    def test_memory_written_in_one_session_is_read_in_another_after_a_restart(self):
        memory_file = os.path.join(self.state_dir("memory"), "memory.jsonl")
        self.agent("rememberer", "memory",
                   stdio_server("memory", "node", [MEMORY_JS], allowed_tools=["read_graph", "create_entities",
                                                                            "open_nodes"],
                                env={"MEMORY_FILE_PATH": memory_file}))
        first = self.run_agent("rememberer", "remember Ada")
        self.assert_completed(first)
        read, created, opened = self.mcp_steps(first)
        self.assertNotIn("Ada_Lovelace", read["payload"]["output"], "the graph starts empty")
        self.assertIn("Ada_Lovelace", created["payload"]["output"])
        self.assertIn("Ada_Lovelace", opened["payload"]["output"])
        with open(memory_file, encoding="utf-8") as f:
            self.assertIn("Ada_Lovelace", f.read(), "the memory server wrote its file")

        self.assertEqual(self.server.restart(), 0)
        self.client = self.server.client()

        second = self.run_agent("rememberer", "what do you know?")
        self.assert_completed(second)
        self.assertNotEqual(second["session_id"], first["session_id"])
        read, _, opened = self.mcp_steps(second)
        self.assertFalse(read["payload"]["is_error"], read)
        graph = read["payload"]["output"]
        self.assertIn("Ada_Lovelace", graph, "the new session reads what the first one stored")
        self.assertIn("wrote the first program", graph)
        self.assertIn("wrote the first program", second["output"])
        self.assertEqual(len(self.started_servers("memory")), 2, "one memory server per Continuum process")

    # --- our test server: crash, revisions, pagination ---------------------------------

    def test_crash_once_is_retried_against_a_restarted_server_with_the_same_key(self):
        state = self.state_dir()
        self.agent("crasher", "crash_once", test_server_stdio(state, allowed_tools=["crash_once"]))
        run = self.run_agent("crasher", "survived")
        self.assert_completed(run)
        self.assertEqual(run["output"], "results: ok: survived")
        (step,) = self.mcp_steps(run)
        key = f"{run['id']}:{step['seq']}"
        calls = [c for c in read_jsonl(os.path.join(state, "calls.jsonl")) if c["tool"] == "crash_once"]
        self.assertEqual(len(calls), 2, calls)
        self.assertEqual([c["idempotency_key"] for c in calls], [key, key], "the retry carries the same key")
        self.assertNotEqual(calls[0]["pid"], calls[1]["pid"], "the second call went to a restarted server")
        self.assertFalse(step["payload"]["is_error"], step)
        self.assertEqual(len(self.started_servers("test")), 2)
        self.assertEqual(step["payload"]["attempts"], 2, f"the first retry reaches the restarted server: {step}")

    def revision_server(self, transport, revisions, state):
        """An agent tool entry for our test server speaking only `revisions`."""
        if transport == "stdio":
            return test_server_stdio(state, revisions=revisions)
        http = self.start_process(McpTestHttpServer(self.tmp, state, revisions, name=f"mcp_http_{revisions}"))
        return http_server("test", http.url)

    def test_each_revision_over_each_transport(self):
        for transport in ("stdio", "http"):
            for revision in (LEGACY, MODERN):
                with self.subTest(transport=transport, revision=revision):
                    self.check_revision(transport, revision)

    def check_revision(self, transport, revision):
        state = self.state_dir(f"state_{transport}_{revision}")
        proxy = self.strict_model()
        name = f"rev-{transport}-{revision}"
        self.agent(name, "add_and_fail", self.revision_server(transport, revision, state), endpoint=proxy)
        run = self.run_agent(name)
        self.assert_completed(run)
        self.assertEqual(run["output"], "results: 42; boom")
        add, fail = self.mcp_steps(run)
        self.assertEqual((add["payload"]["output"], add["payload"]["is_error"]), ("42", False), add)
        self.assertEqual((fail["payload"]["output"], fail["payload"]["is_error"]), ("boom", True), fail)

        # Pagination: the five tools come two per page, and all of them were offered.
        offered = self.offered_tools(proxy)
        self.assertEqual(offered[0], sorted(f"test__{t}" for t in TEST_SERVER_TOOLS), "every page was listed")
        self.assertEqual(proxy.rejections, [])

        calls = read_jsonl(os.path.join(state, "calls.jsonl"))
        self.assertEqual([(c["tool"], c["revision"], c["transport"]) for c in calls],
                         [("add", revision, transport), ("fail", revision, transport)])
        requests = read_jsonl(os.path.join(state, "requests.jsonl"))
        methods = [r["method"] for r in requests]
        self.assertEqual(methods.count("tools/list"), 3, f"3 pages of tools: {methods}")
        if revision == LEGACY:
            self.assertIn("initialize", methods)
            self.assertIn("notifications/initialized", methods)
            served = [r for r in requests if r["method"] in ("tools/list", "tools/call")]
            self.assertTrue(all(r["era"] == "legacy" for r in served), served)
        else:
            self.assertNotIn("initialize", methods, "2026-07-28 has no handshake")
            self.assertIn("server/discover", methods)
            served = [r for r in requests if r["method"] in ("tools/list", "tools/call")]
            self.assertTrue(all(r["era"] == "modern" for r in served), served)
        if transport != "http":
            return
        for r in requests:
            headers = r["headers"]
            if r["method"] != "GET":  # POSTs accept both; the standalone GET stream only SSE
                self.assertIn("application/json", headers.get("Accept", ""), r)
            self.assertIn("text/event-stream", headers.get("Accept", ""), r)
        call_requests = [r for r in requests if r["method"] == "tools/call"]
        self.assertEqual(len(call_requests), 2, requests)
        if revision == MODERN:
            for r, tool in zip(call_requests, ("add", "fail")):
                self.assertEqual(r["headers"].get("MCP-Protocol-Version"), MODERN, r)
                self.assertEqual(r["headers"].get("Mcp-Method"), "tools/call", r)
                self.assertEqual(r["headers"].get("Mcp-Name"), tool, r)
                self.assertNotIn("Mcp-Session-Id", r["headers"], r)
        else:
            init = [r for r in requests if r["method"] == "initialize"]
            self.assertEqual(len(init), 1, requests)
            self.assertNotIn("Mcp-Session-Id", init[0]["headers"], init)
            after = requests[requests.index(init[0]) + 1:]
            sessions = {r["headers"].get("Mcp-Session-Id") for r in after}
            self.assertEqual(len(sessions), 1, f"one session for everything after initialize: {after}")
            self.assertNotIn(None, sessions, after)
            for r in call_requests:
                self.assertEqual(r["headers"].get("MCP-Protocol-Version"), LEGACY, r)

    # --- cancellation reaches our test server ------------------------------------------

    def test_cancelling_a_run_cancels_the_mcp_request(self):
        cases = (("stdio", LEGACY), ("stdio", MODERN), ("http", LEGACY), ("http", MODERN))
        for transport, revision in cases:
            with self.subTest(transport=transport, revision=revision):
                self.check_cancel(transport, revision)

    def check_cancel(self, transport, revision):
        state = self.state_dir(f"cancel_{transport}_{revision}")
        name = f"cancel-{transport}-{revision}"
        self.agent(name, "slow", self.revision_server(transport, revision, state))
        run = self.client.start_run(self.new_session(name), "go")
        calls_path = os.path.join(state, "calls.jsonl")
        (slow,) = wait_until(lambda: [c for c in read_jsonl(calls_path) if c["tool"] == "slow"],
                             message="the slow call to reach the server")
        resp = self.client.post(f"/v1/runs/{run['id']}/cancel", {})
        self.assertEqual(resp.status, 200, resp)
        got = self.client.wait_run(run["id"], timeout_s=10)
        self.assertEqual(got["status"], "cancelled", got)
        cancelled_path = os.path.join(state, "cancelled.jsonl")
        (record,) = wait_until(lambda: [c for c in read_jsonl(cancelled_path)
                                        if c["request_id"] == slow["request_id"]],
                               timeout_s=15, message=f"the server to see request {slow['request_id']} cancelled")
        self.assertEqual(slow["revision"], revision, slow)
        self.assertEqual(record["transport"], transport, record)
        self.assertTrue(record["in_flight"], record)
        self.assertEqual(record["reason"], "the run was cancelled", record)
        if transport == "http":
            # (Over stdio the test server labels a notification by its own _meta, which
            # notifications/cancelled does not carry, so only HTTP's label is the era.)
            self.assertEqual(record["revision"], revision, record)
        self.assertEqual(self.mcp_steps(run), [])
        self.assertEqual([c["tool"] for c in read_jsonl(calls_path)], ["slow"], "the call was not retried")

    # --- allowed_tools and policy ------------------------------------------------------

    def test_allowed_tools_limit_what_the_model_is_offered(self):
        state = self.state_dir()
        proxy = self.strict_model()
        self.agent("limited", "not_allowed", test_server_stdio(state, allowed_tools=["add", "e*"]), endpoint=proxy)
        run = self.run_agent("limited")
        self.assert_completed(run)
        self.assertEqual(self.offered_tools(proxy)[0], ["test__add", "test__echo"], "a name and a prefix")
        add, fail = self.mcp_steps(run)
        self.assertEqual(add["payload"]["output"], "3")
        self.assertTrue(fail["payload"]["is_error"], fail)
        self.assertEqual(fail["payload"]["output"], "error: the agent has no tool named 'test__fail'")
        self.assertEqual([c["tool"] for c in read_jsonl(os.path.join(state, "calls.jsonl"))], ["add"],
                         "the unlisted tool was never called")

    def test_policy_denies_one_mcp_tool_and_allows_another(self):
        statements = [
            {"id": "admins", "effect": "allow", "principal": "role:admin", "action": "*"},
            {"id": "models", "effect": "allow", "principal": "agent:*", "action": "model:invoke"},
            {"id": "tools", "effect": "allow", "principal": "agent:*", "action": "tool:invoke"},
            {"id": "no-mcp-echo", "effect": "deny", "principal": "agent:*", "action": "tool:invoke",
             "resource": "tool:test__echo"},
        ]
        resp = self.client.put("/v1/policy", {"document": {"statements": statements}})
        self.assertEqual(resp.status, 201, resp)
        state = self.state_dir()
        self.agent("governed", "echo_and_add", test_server_stdio(state))
        run = self.run_agent("governed")
        self.assert_completed(run)
        by_name = {s["payload"]["name"]: s["payload"] for s in self.mcp_steps(run)}
        echo, add = by_name["test__echo"], by_name["test__add"]
        self.assertTrue(echo["is_error"], echo)
        self.assertIs(echo.get("denied"), True, echo)
        self.assertTrue(echo["output"].startswith("error: the call was denied by policy: "), echo)
        self.assertIn("no-mcp-echo", echo["output"])
        self.assertNotIn("secret plans", run["output"])
        self.assertEqual((add["output"], add["is_error"]), ("2", False), add)
        self.assertEqual([c["tool"] for c in read_jsonl(os.path.join(state, "calls.jsonl"))], ["add"],
                         "the denied call never reached the server")

    # --- idempotency keys ---------------------------------------------------------------

    def test_idempotency_key_is_the_run_id_and_the_step_seq(self):
        state = self.state_dir()
        self.agent("keyed", "two_echoes", test_server_stdio(state, allowed_tools=["echo"]))
        run = self.run_agent("keyed")
        self.assert_completed(run)
        steps = self.mcp_steps(run)
        self.assertEqual(len(steps), 3)
        expected = {step_arguments(s)["message"]: f"{run['id']}:{s['seq']}" for s in steps}
        for s in steps:
            self.assertEqual(s["payload"]["idempotency_key"], expected[step_arguments(s)["message"]], s)
        calls = read_jsonl(os.path.join(state, "calls.jsonl"))
        self.assertEqual({c["arguments"]["message"]: c["idempotency_key"] for c in calls}, expected)
        self.assertEqual(len(calls), 3)
        self.assertEqual(len(set(expected.values())), 3, "every call has its own key")

    # --- stdio commands the server configuration does not allow --------------------------

    def assert_refused_and_not_spawned(self, client, server, run, state):
        self.assertEqual(run["status"], "completed", run)
        self.assertEqual(os.listdir(state), [], "the MCP server never ran (it writes requests.jsonl at once)")
        self.assertNotIn('"mcp server started"', server.log_text(tail_bytes=10_000_000))
        add, fail = tool_steps(client.steps(run["id"]))
        for step in (add, fail):
            self.assertTrue(step["payload"]["is_error"], step)
            self.assertEqual(step["payload"]["attempts"], 0, "nothing was attempted")
        for step in (add, fail):
            # What the model (and whoever reads the journal) is told: the reason, not a missing tool.
            self.assertIn("mcp_stdio_commands", step["payload"]["output"], step)
            self.assertIn("not allow", step["payload"]["output"], step)

    def test_a_stdio_command_outside_the_allowed_list_is_never_spawned(self):
        with self.subTest("python3 is allowed by name; the same program by its path is not"):
            state = self.state_dir()
            self.agent("by-path", "not_allowed", test_server_stdio(state, command=shutil.which("python3")))
            run = self.run_agent("by-path")
            self.assert_refused_and_not_spawned(self.client, self.server, run, state)

        with self.subTest("without CONTINUUM_MCP_STDIO_COMMANDS no stdio MCP server runs at all"):
            bare_logs = self.state_dir("bare_logs")
            bare = self.start_process(ContinuumServer(bare_logs, os.path.join(self.tmp, "data_bare"), self.api_key,
                                                      self.mock.base_url))
            bare_client = bare.client()
            bare_state = self.state_dir("bare_state")
            bare_client.create_agent({"name": "bare", "model": model_spec(self.mock, "not_allowed"),
                                      "tools": [test_server_stdio(bare_state)]})
            session = bare_client.create_session("bare")["id"]
            run = bare_client.wait_run(bare_client.start_run(session, "go")["id"])
            self.assert_refused_and_not_spawned(bare_client, bare, run, bare_state)

if __name__ == "__main__":
    unittest.main()
