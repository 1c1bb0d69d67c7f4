"""The `continuum` command as a user drives it (README "CLI", docs/configuration.md):

  agent apply / list / show   YAML agent files (block and flow style, quoted scalars)
  the API key                 <data>/api-key written by the server, --data, --api-key,
                              CONTINUUM_API_KEY
  chat                        lines from a pipe, streamed replies, tool calls, --session
  run show / run steps        the run and its journal
  serve configuration         --config / CONTINUUM_CONFIG file < CONTINUUM_* env < flags;
                              unknown keys and bad values exit 2; request_body_bytes_max
  SIGTERM / SIGINT            exit 0, and a restart serves the same agents

Every CLI call runs with a clean environment (no inherited CONTINUUM_* / OPENAI_*),
stdin a pipe, and the test's temp dir as working directory."""

import http.client
import json
import os
import re
import secrets
import signal
import stat
import subprocess
import tempfile
import time
import unittest
from http.server import BaseHTTPRequestHandler

from harness import (RUN_TIMEOUT_S, START_TIMEOUT_S, Client, ContinuumServer, InProcessModelProxy, IntegrationTest,
                     Process, binary, clean_env, describe, free_port, http_tool, model_spec, run_cli, wait_until)

SESSION_LINE = re.compile(r"\bsession (sess_[A-Za-z0-9_-]+)")

# The long reply is streamed by the mock in many small text deltas.
LONG_TAIL = " ".join(["The quick brown fox jumps over the lazy dog."] * 6)


def read_key_file(data_dir):
    with open(os.path.join(data_dir, "api-key"), encoding="utf-8") as f:
        return f.read().strip()


def log_records(text):
    """The JSON log lines in `text` (other lines are skipped)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    return records


def write_file(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class KeyFileServer(ContinuumServer):
    """`continuum serve` with CONTINUUM_API_KEY unset: the server keeps its key in
    <data>/api-key, which start() reads into `api_key`."""

    def __init__(self, log_dir, data_dir, mock_base_url=None):
        super().__init__(log_dir, data_dir, None, mock_base_url)
        self.name = "continuum_keyfile"
        self.log_path = os.path.join(log_dir, f"{self.name}.stderr.log")

    def environment(self):
        env = super().environment()
        del env["CONTINUUM_API_KEY"]
        return env

    def start(self):
        super().start()
        self.api_key = read_key_file(self.data_dir)
        return self


class ServeProcess(Process):
    """`continuum serve ARGS` with exactly the given environment, expected to listen on `port`."""

    def __init__(self, log_dir, name, args, env, port):
        super().__init__(name, log_dir)
        self.args, self.env, self.port = list(args), env, port

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._spawn([binary("continuum"), "serve", *self.args], env=self.env)
        self._wait_http_ok("/readyz", self.port, START_TIMEOUT_S)
        return self

    def records(self):
        return log_records(self.log_text(tail_bytes=1_000_000))


class PausingModelProxy(InProcessModelProxy):
    """A proxy in front of the mock model that relays its streamed replies, but holds
    the stream for `pause_s` right after the first text delta, so a client that
    subscribes to the run's events a moment later joins in the middle of the reply.
    (The pause only shapes the interleaving; nothing is asserted about time.)"""

    def __init__(self, upstream_port, pause_s):
        self.pauses = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=RUN_TIMEOUT_S)
                try:
                    upstream.request("POST", self.path, body=body,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": self.headers.get("Authorization", "")})
                    resp = upstream.getresponse()
                    self.send_response(resp.status)
                    for name, value in resp.getheaders():
                        if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                            self.send_header(name, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    paused, pause_after_event = False, False
                    while True:
                        line = resp.readline()
                        if not line:
                            break
                        self.wfile.write(line)
                        self.wfile.flush()
                        text = line.decode("utf-8", errors="replace").strip()
                        if text.startswith("data: {") and not paused:
                            try:
                                delta = json.loads(text[6:])["choices"][0]["delta"]
                            except (ValueError, KeyError, IndexError, TypeError):
                                delta = {}
                            pause_after_event = bool(delta.get("content"))
                        elif text == "" and pause_after_event:
                            paused, pause_after_event = True, False
                            proxy.pauses += 1
                            time.sleep(pause_s)
                    self.close_connection = True
                finally:
                    upstream.close()

        self._serve(Handler)


# --- agent files and the CLI's client commands -----------------------------------


class CliTest(IntegrationTest):
    SCRIPTS = {
        "default": {"steps": [{"content": "hello from the mock"}]},
        "turns": {"steps": [{"content": "turn {{turn}}: you said {{input}}. " + LONG_TAIL}]},
        "tooly": {"steps": [{"tool_calls": [{"name": "lookup", "arguments": {"claim_id": "{{input}}"}}]},
                            {"content": "found {{tool_results}}"}]},
    }

    def cli(self, *args, input_text="", env=None, key=True):
        """`continuum ARGS` against this test's server (CONTINUUM_URL, and CONTINUUM_API_KEY
        unless key=False); `env` adds or replaces variables."""
        environment = clean_env(CONTINUUM_URL=self.server.base_url)
        if key:
            environment["CONTINUUM_API_KEY"] = self.api_key
        environment.update(env or {})
        return run_cli(args, environment, self.tmp, input_text)

    def cli_ok(self, *args, **kw):
        result = self.cli(*args, **kw)
        self.assertEqual(result.returncode, 0, describe(result))
        return result

    def cli_json(self, *args, **kw):
        result = self.cli_ok(*args, **kw)
        try:
            return json.loads(result.stdout)
        except ValueError:
            self.fail(f"stdout is not JSON:{describe(result)}")

    def assert_cli_fails(self, result, *needles):
        """Non-zero exit and a readable error on stderr (no crash) containing every one
        of `needles` (case-insensitive)."""
        self.assertNotEqual(result.returncode, 0, describe(result))
        self.assertTrue(result.stderr.strip(), f"no error message on stderr:{describe(result)}")
        for needle in needles:
            self.assertIn(needle.lower(), result.stderr.lower(), describe(result))
        self.assertNotIn("terminate called", result.stderr, describe(result))
        self.assertNotIn("Segmentation", result.stderr, describe(result))

    def agent_file(self, name, text):
        return write_file(os.path.join(self.tmp, name), text)

    # --- agent apply -----------------------------------------------------------

    BLOCK_YAML = """\
# A block-style agent file with flow-style parts.
name: cli-agent
model:
  provider: openai
  model: "1234"              # quoted: must stay a string
  base_url: {model_url}
  params: {{temperature: 0, top_p: 0.5, stop: ["\\n\\n"]}}
  timeout_ms: 30000
instructions: |
  Line one.
  Line two: with a colon and a # that is not a comment
tools:
  - type: http
    name: lookup
    description: 'true'      # quoted: must stay a string, not a boolean
    url: {tool_url}
    timeout_ms: 5000
    retry: {{max_attempts: 3, initial_backoff_ms: 100, max_backoff_ms: 1000}}
    parameters:
      type: object
      properties:
        claim_id: {{type: string, pattern: "^CLM-[0-9]+$"}}
        priority:
          type: string
          enum: [low, normal, high]
        level: {{enum: ["1", "2", 3]}}
        count: {{type: integer, minimum: 1, maximum: 10}}
        ratio: {{type: number, maximum: 0.75}}
        notes:
          type: array
          items: {{type: string}}
      required:
        - claim_id
        - priority
      additionalProperties: false
  - {{type: builtin, name: echo}}
limits:
  max_steps: 12
  max_total_tokens: 50000
  deadline_ms: 0
"""

    def expected_block_agent(self):
        return {
            "model": {"provider": "openai", "model": "1234", "base_url": self.mock.base_url,
                      "params": {"temperature": 0, "top_p": 0.5, "stop": ["\n\n"]}, "timeout_ms": 30000},
            "instructions": "Line one.\nLine two: with a colon and a # that is not a comment\n",
            "tools": [
                {"type": "http", "name": "lookup", "description": "true", "url": self.tools.url("lookup"),
                 "timeout_ms": 5000, "retry": {"max_attempts": 3, "initial_backoff_ms": 100, "max_backoff_ms": 1000},
                 "parameters": {
                     "type": "object",
                     "properties": {
                         "claim_id": {"type": "string", "pattern": "^CLM-[0-9]+$"},
                         "priority": {"type": "string", "enum": ["low", "normal", "high"]},
                         "level": {"enum": ["1", "2", 3]},
                         "count": {"type": "integer", "minimum": 1, "maximum": 10},
                         "ratio": {"type": "number", "maximum": 0.75},
                         "notes": {"type": "array", "items": {"type": "string"}},
                     },
                     "required": ["claim_id", "priority"],
                     "additionalProperties": False}},
                {"type": "builtin", "name": "echo"},
            ],
            "limits": {"max_steps": 12, "max_total_tokens": 50000, "deadline_ms": 0},
        }

    def assert_same_json(self, got, expected, where="agent"):
        """Equal as JSON, with types checked exactly (1 != 1.0 != True != "1")."""
        if isinstance(expected, dict):
            self.assertIsInstance(got, dict, where)
            self.assertEqual(set(got), set(expected), f"{where}: keys")
            for key in expected:
                self.assert_same_json(got[key], expected[key], f"{where}.{key}")
        elif isinstance(expected, list):
            self.assertIsInstance(got, list, where)
            self.assertEqual(len(got), len(expected), f"{where}: {got!r} vs {expected!r}")
            for index, (g, e) in enumerate(zip(got, expected)):
                self.assert_same_json(g, e, f"{where}[{index}]")
        else:
            self.assertIs(type(got), type(expected), f"{where}: {got!r} vs {expected!r}")
            self.assertEqual(got, expected, where)

    def assert_block_agent(self, agent, version):
        """The stored agent is exactly the YAML file plus the documented defaults."""
        self.assertEqual(set(agent), {"object", "name", "version", "created_at_ms", "model", "instructions",
                                      "tools", "limits"}, agent)
        self.assertEqual((agent["object"], agent["name"]), ("agent", "cli-agent"))
        self.assert_same_json(agent["version"], version, "version")
        self.assertIs(type(agent["created_at_ms"]), int)
        expected = self.expected_block_agent()
        # Defaults the file leaves out: model context and retry, the builtin tool's
        # description, parameters, timeout and retry. Their values are the server's; their types are fixed.
        model = dict(agent["model"])
        self.assertIs(type(model.pop("context_tokens")), int, agent["model"])
        model_retry = model.pop("retry")
        self.assertEqual(set(model_retry), {"max_attempts", "initial_backoff_ms", "max_backoff_ms"})
        self.assertTrue(all(type(v) is int for v in model_retry.values()), model_retry)
        self.assert_same_json(model, expected["model"], "model")
        self.assert_same_json(agent["instructions"], expected["instructions"], "instructions")
        self.assertEqual(len(agent["tools"]), 2, agent["tools"])
        self.assert_same_json(agent["tools"][0], expected["tools"][0], "tools[0]")
        echo = dict(agent["tools"][1])
        self.assertEqual((echo.pop("type"), echo.pop("name")), ("builtin", "echo"))
        self.assertNotIn("url", echo)
        self.assertIsInstance(echo.pop("description"), str)
        self.assertIsInstance(echo.pop("parameters"), dict)
        self.assertIs(type(echo.pop("timeout_ms")), int)
        self.assertIsInstance(echo.pop("retry"), dict)
        self.assertEqual(echo, {}, "no other fields on the builtin tool")
        self.assert_same_json(agent["limits"], expected["limits"], "limits")

    def test_agent_apply_block_yaml_then_new_version_list_and_show(self):
        path = self.agent_file("agent.yaml", self.BLOCK_YAML.format(model_url=self.mock.base_url,
                                                                     tool_url=self.tools.url("lookup")))
        applied = self.cli_json("agent", "apply", "-f", path)
        self.assert_block_agent(applied, 1)

        got = self.client.get("/v1/agents/cli-agent")
        self.assertEqual(got.status, 200, got)
        self.assert_block_agent(got.body, 1)
        self.assertEqual(got.body, applied, "apply prints the stored agent")

        # Applying again makes version 2 (here with the client options after the subcommand).
        again = self.cli_json("agent", "apply", "--file", path, "--server", self.server.base_url,
                              "--api-key", self.api_key, key=False, env={"CONTINUUM_URL": "http://127.0.0.1:9"})
        self.assert_block_agent(again, 2)
        self.assert_block_agent(self.client.ok("GET", "/v1/agents/cli-agent", expect=200), 2)
        self.assert_block_agent(self.client.ok("GET", "/v1/agents/cli-agent?version=1", expect=200), 1)

        listing = self.cli_json("agent", "list")
        self.assertIsInstance(listing.get("data"), list, listing)
        mine = [a for a in listing["data"] if a["name"] == "cli-agent"]
        self.assertEqual(len(mine), 1, listing)
        self.assert_block_agent(mine[0], 2)

        shown = self.cli_json("agent", "show", "cli-agent")
        self.assertEqual(shown, self.client.ok("GET", "/v1/agents/cli-agent", expect=200))

        # The applied file works: the quoted model name reaches the model endpoint as "1234"
        # (the mock answers it with its default script).
        run = self.client.start_run(self.new_session("cli-agent"), "hi", wait=True)
        self.assertEqual((run["status"], run["output"]), ("completed", "hello from the mock"), run)

    def test_agent_apply_flow_style_and_json_files(self):
        flow = self.agent_file("flow.yaml", (
            "{name: flow-agent, model: {model: '0042', params: {seed: 7, temperature: 0.25}},\n"
            " instructions: \"null\", tools: [{type: builtin, name: noop, parameters: {type: object,\n"
            " properties: {mode: {type: string, enum: [fast, 'yes', '007']}}}}],\n"
            " limits: {max_steps: 3, deadline_ms: 60000}}\n"))
        agent = self.cli_json("agent", "apply", "-f", flow)
        stored = self.client.ok("GET", "/v1/agents/flow-agent", expect=200)
        self.assertEqual(agent, stored)
        self.assertEqual(stored["version"], 1)
        self.assert_same_json(stored["model"]["model"], "0042", "model.model")
        self.assert_same_json(stored["model"]["params"], {"seed": 7, "temperature": 0.25}, "model.params")
        self.assert_same_json(stored["instructions"], "null", "instructions")
        self.assert_same_json(stored["tools"][0]["parameters"],
                              {"type": "object",
                               "properties": {"mode": {"type": "string", "enum": ["fast", "yes", "007"]}}},
                              "tools[0].parameters")
        self.assert_same_json(stored["limits"]["max_steps"], 3, "limits.max_steps")
        self.assert_same_json(stored["limits"]["deadline_ms"], 60000, "limits.deadline_ms")

        definition = {"name": "json-agent", "model": {"model": "5678"}, "limits": {"max_steps": 4}}
        as_json = self.agent_file("agent.json", json.dumps(definition, indent=2))
        agent = self.cli_json("agent", "apply", "-f", as_json)
        self.assertEqual((agent["name"], agent["version"]), ("json-agent", 1))
        self.assert_same_json(agent["model"]["model"], "5678", "model.model")
        self.assert_same_json(agent["limits"]["max_steps"], 4, "limits.max_steps")

    def test_agent_apply_bad_files_fail_readably(self):
        missing_model = self.agent_file("no-model.yaml", "name: broken\ninstructions: no model here\n")
        self.assert_cli_fails(self.cli("agent", "apply", "-f", missing_model), "model")
        self.assert_error(self.client.get("/v1/agents/broken"), 404, "not_found_error", check_param=False)

        bad_type = self.agent_file("bad-steps.yaml", "name: broken\nmodel: {model: m}\nlimits: {max_steps: ten}\n")
        self.assert_cli_fails(self.cli("agent", "apply", "-f", bad_type), "max_steps")

        no_name = self.agent_file("no-name.yaml", "model: {model: m}\n")
        self.assert_cli_fails(self.cli("agent", "apply", "-f", no_name), "name")

        not_yaml = self.agent_file("broken.yaml", "name: broken\nmodel: {model: m\n  tools: [\n")
        self.assert_cli_fails(self.cli("agent", "apply", "-f", not_yaml), "broken.yaml")

        absent = os.path.join(self.tmp, "does-not-exist.yaml")
        self.assert_cli_fails(self.cli("agent", "apply", "-f", absent), "does-not-exist.yaml")

        self.assert_cli_fails(self.cli("agent", "show", "nobody"), "not found")
        self.assert_error(self.client.get("/v1/agents/broken"), 404, "not_found_error", check_param=False)

    # --- the API key -------------------------------------------------------------

    def test_cli_finds_the_key_in_the_data_dir_and_flags_or_env_override_it(self):
        # The test's server has CONTINUUM_API_KEY set, so it writes no key file.
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "api-key")))

        keyed = self.start_process(KeyFileServer(self.tmp, os.path.join(self.tmp, "keyed-data"),
                                                 self.mock.base_url))
        key_path = os.path.join(keyed.data_dir, "api-key")
        self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600, "the key file is private")
        self.assertTrue(keyed.api_key, "the key file holds a key")
        with open(key_path, encoding="utf-8") as f:
            self.assertEqual(f.read().count("\n"), 1, "one line")
        self.assertEqual(Client(keyed.base_url, keyed.api_key).get("/v1/agents").status, 200)
        keyed.client().create_agent({"name": "in-keyed", "model": model_spec(self.mock, "default")})

        def run(*args, **env):
            return run_cli(args, clean_env(**env), self.tmp)

        def names(result):
            self.assertEqual(result.returncode, 0, describe(result))
            return [a["name"] for a in json.loads(result.stdout)["data"]]

        url = keyed.base_url
        with self.subTest("--data DIR"):
            self.assertEqual(names(run("agent", "list", "--server", url, "--data", keyed.data_dir)), ["in-keyed"])
        with self.subTest("--data before the subcommand"):
            self.assertEqual(names(run("--server", url, "--data", keyed.data_dir, "agent", "list")), ["in-keyed"])
        with self.subTest("CONTINUUM_DATA_DIR and CONTINUUM_URL"):
            self.assertEqual(names(run("agent", "list", CONTINUUM_URL=url, CONTINUUM_DATA_DIR=keyed.data_dir)),
                             ["in-keyed"])

        wrong = "wrong-" + secrets.token_hex(8)
        other_dir = os.path.join(self.tmp, "other-data")
        os.makedirs(other_dir)
        write_file(os.path.join(other_dir, "api-key"), wrong + "\n")
        with self.subTest("--api-key overrides the key file"):
            result = run("agent", "list", "--server", url, "--data", keyed.data_dir, "--api-key", wrong)
            self.assert_cli_fails(result, "api key")
            self.assertEqual(names(run("agent", "list", "--server", url, "--data", other_dir,
                                       "--api-key", keyed.api_key)), ["in-keyed"])
        with self.subTest("CONTINUUM_API_KEY overrides the key file"):
            result = run("agent", "list", "--server", url, "--data", keyed.data_dir, CONTINUUM_API_KEY=wrong)
            self.assert_cli_fails(result, "api key")
            self.assertEqual(names(run("agent", "list", "--server", url, "--data", other_dir,
                                       CONTINUUM_API_KEY=keyed.api_key)), ["in-keyed"])
        with self.subTest("--api-key overrides CONTINUUM_API_KEY"):
            self.assertEqual(names(run("agent", "list", "--server", url, "--api-key", keyed.api_key,
                                       CONTINUUM_API_KEY=wrong)), ["in-keyed"])
        with self.subTest("a data dir with a wrong key file"):
            self.assert_cli_fails(run("agent", "list", "--server", url, "--data", other_dir), "api key")
        with self.subTest("chat with a wrong key"):
            result = run_cli(["chat", "in-keyed", "--server", url, "--api-key", wrong], clean_env(), self.tmp,
                             "hello\n")
            self.assert_cli_fails(result, "api key")
        self.assertEqual(read_key_file(keyed.data_dir), keyed.api_key, "clients never change the key file")

    def test_cli_only_reads_the_key_file(self):
        # README: the server generates <data>/api-key; "the CLI reads it from there".
        # A client pointed at a data dir without a key fails and leaves the dir alone.
        empty = os.path.join(self.tmp, "no-key-here")
        os.makedirs(empty)
        result = run_cli(["agent", "list", "--server", self.server.base_url, "--data", empty], clean_env(),
                         self.tmp)
        self.assert_cli_fails(result, "key")
        self.assertEqual(os.listdir(empty), [], f"the client wrote into the data dir:{describe(result)}")

    # --- chat ------------------------------------------------------------------

    def chat(self, agent, lines, *extra):
        return self.cli_ok("chat", agent, *extra, input_text="".join(line + "\n" for line in lines))

    def session_of(self, result):
        match = SESSION_LINE.search(result.stdout)
        self.assertIsNotNone(match, f"no session id printed:{describe(result)}")
        return match.group(1)

    def test_chat_from_a_pipe_and_continue_with_session(self):
        self.make_agent("turner", "turns")
        first = self.chat("turner", ["hello"])
        session = self.session_of(first)
        reply_1 = "turn 1: you said hello. " + LONG_TAIL
        self.assertEqual(first.stdout.count(reply_1), 1, f"the streamed reply, whole and once:{describe(first)}")
        self.assertNotIn("turn 2", first.stdout)

        second = self.chat("turner", ["and again"], "--session", session)
        self.assertEqual(self.session_of(second), session, describe(second))
        reply_2 = "turn 2: you said and again. " + LONG_TAIL
        self.assertEqual(second.stdout.count(reply_2), 1, describe(second))

        items = self.client.items(session)
        self.assertEqual([(i["message"]["role"], i["message"]["content"]) for i in items],
                         [("user", "hello"), ("assistant", reply_1), ("user", "and again"), ("assistant", reply_2)])
        runs = self.client.get(f"/v1/sessions/{session}/runs").body["data"]
        self.assertEqual([r["status"] for r in runs], ["completed", "completed"], runs)

    def test_chat_runs_lines_in_order_until_exit(self):
        self.make_agent("turner", "turns")
        result = self.chat("turner", ["one", "", "two", "/exit", "never sent"])
        session = self.session_of(result)
        first = result.stdout.find("turn 1: you said one.")
        second = result.stdout.find("turn 2: you said two.")
        self.assertTrue(0 <= first < second, describe(result))
        self.assertNotIn("never sent", result.stdout)
        inputs = [i["message"]["content"] for i in self.client.items(session) if i["message"]["role"] == "user"]
        self.assertEqual(inputs, ["one", "two"], "empty lines are skipped; nothing after /exit is sent")

        # End of input ends the chat too, without sending anything.
        quiet = self.chat("turner", [])
        self.assertEqual(self.client.get(f"/v1/sessions/{self.session_of(quiet)}/runs").body["data"], [])

    def test_chat_prints_the_whole_reply_when_it_joins_the_stream_late(self):
        # The model has already streamed its first text delta when `chat` subscribes
        # to the run's events; the user must still see the whole reply, once.
        proxy = PausingModelProxy(self.mock.port, pause_s=3)
        self.addCleanup(proxy.stop)
        self.client.create_agent({"name": "late", "model": model_spec(proxy, "turns")})
        result = self.chat("late", ["hello"])
        self.assertEqual(proxy.pauses, 1, "the proxy held the stream after the first delta")
        reply = "turn 1: you said hello. " + LONG_TAIL
        session = self.session_of(result)
        self.assertEqual([i["message"]["content"] for i in self.client.items(session)], ["hello", reply])
        self.assertEqual(result.stdout.count(reply), 1, f"the whole reply, once:{describe(result)}")

    def test_chat_shows_tool_calls_and_run_show_and_steps_print_the_journal(self):
        self.make_agent("looker", "tooly", tools=[http_tool(self.tools, "lookup",
                                                            {"type": "object",
                                                             "properties": {"claim_id": {"type": "string"}},
                                                             "required": ["claim_id"]})])
        result = self.chat("looker", ["CLM-7", "/exit"])
        session = self.session_of(result)
        tool_lines = [line for line in result.stdout.splitlines() if "[tool lookup" in line]
        self.assertEqual(len(tool_lines), 1, describe(result))
        self.assertIn("CLM-7", tool_lines[0])
        self.assertIn('found lookup({"claim_id":"CLM-7"})=ok', result.stdout, describe(result))
        self.assertLess(result.stdout.find("[tool lookup"), result.stdout.find("found lookup("), describe(result))
        self.assertEqual(len(self.tools.ledger()), 1, "the tool ran once")

        runs = self.client.get(f"/v1/sessions/{session}/runs").body["data"]
        self.assertEqual(len(runs), 1, runs)
        run_id = runs[0]["id"]

        shown = self.cli_json("run", "show", run_id)
        self.assertEqual(shown, self.client.run(run_id))
        self.assertEqual((shown["object"], shown["status"], shown["session_id"]), ("run", "completed", session))
        self.assertEqual(shown["tool_calls"], 1)

        steps = self.cli_json("run", "steps", run_id)
        self.assertEqual(steps, self.client.ok("GET", f"/v1/runs/{run_id}/steps?limit=1000", expect=200))
        self.assertEqual([s["kind"] for s in steps["data"]],
                         ["run_created", "run_started", "model_call", "tool_call", "model_call", "run_completed"])
        tool_step = steps["data"][3]["payload"]
        self.assertEqual(tool_step["name"], "lookup")
        self.assertEqual(tool_step["output"], 'lookup({"claim_id":"CLM-7"})=ok')
        self.assertFalse(steps["has_more"])

        self.assert_cli_fails(self.cli("run", "show", "run_doesnotexist"), "not found")
        self.assert_cli_fails(self.cli("run", "steps", "run_doesnotexist"), "not found")

    def test_chat_errors(self):
        self.assert_cli_fails(self.cli("chat", "nobody", input_text="hi\n"), "not found")
        self.make_agent("turner", "turns")
        self.assert_cli_fails(self.cli("chat", "turner", "--session", "sess_doesnotexist", input_text="hi\n"),
                              "not found")
        nobody_listens = f"http://127.0.0.1:{free_port()}"
        self.assert_cli_fails(self.cli("chat", "turner", input_text="hi\n", env={"CONTINUUM_URL": nobody_listens}))

    # --- SIGTERM and restart -------------------------------------------------------

    def test_sigterm_exits_0_and_restart_serves_the_same_agents(self):
        keyed = self.start_process(KeyFileServer(self.tmp, os.path.join(self.tmp, "keyed-data"),
                                                 self.mock.base_url))
        path = self.agent_file("agent.yaml", self.BLOCK_YAML.format(model_url=self.mock.base_url,
                                                                     tool_url=self.tools.url("lookup")))
        first_key = keyed.api_key

        def cli_here(*args, input_text=""):
            result = run_cli(["--server", keyed.base_url, "--data", keyed.data_dir, *args], clean_env(), self.tmp,
                             input_text)
            self.assertEqual(result.returncode, 0, describe(result))
            return result

        cli_here("agent", "apply", "-f", path)
        cli_here("agent", "apply", "-f", path)
        self.make_agent_on(keyed, "turner", "turns")
        session = self.session_of(cli_here("chat", "turner", input_text="hello\n"))
        before = json.loads(cli_here("agent", "show", "cli-agent").stdout)

        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                keyed.signal(sig)
                try:
                    code = keyed.proc.wait(60)
                except subprocess.TimeoutExpired:
                    self.fail(f"the server did not exit within 60s of {sig.name}")
                keyed.proc = None
                self.assertEqual(code, 0, f"exit status after {sig.name}")
                keyed.start()
                self.assertEqual(keyed.api_key, first_key, "the key file is kept across restarts")
                self.assertEqual(json.loads(cli_here("agent", "show", "cli-agent").stdout), before)
                self.assertEqual(keyed.client().ok("GET", "/v1/agents/cli-agent?version=1", expect=200)["version"], 1)
                listed = json.loads(cli_here("agent", "list").stdout)["data"]
                self.assertEqual(sorted((a["name"], a["version"]) for a in listed), [("cli-agent", 2), ("turner", 1)])

        continued = cli_here("chat", "turner", "--session", session, input_text="back\n")
        self.assertIn("turn 2: you said back.", continued.stdout, describe(continued))

    def make_agent_on(self, server, name, script):
        return server.client().create_agent({"name": name, "model": model_spec(self.mock, script)})


# --- `continuum serve` configuration ------------------------------------------------


class ServeConfigTest(IntegrationTest):
    """Starts only `continuum serve` processes, each configured by the test."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"continuum-{self._testMethodName[:40]}-")
        self.processes = []
        self.addCleanup(self._cleanup)
        self.api_key = "test-" + secrets.token_hex(12)
        self.count = 0

    def env(self, **extra):
        return clean_env(CONTINUUM_API_KEY=self.api_key, **extra)

    def config(self, text, name=None):
        self.count += 1
        return write_file(os.path.join(self.tmp, name or f"config{self.count}.yaml"), text)

    def dir(self, name):
        return os.path.join(self.tmp, name)

    def serve(self, args, env, port):
        self.count += 1
        return self.start_process(ServeProcess(self.tmp, f"serve{self.count}", args, env, port))

    def stop_ok(self, process):
        self.assertEqual(process.stop(timeout_s=60), 0, "serve exits 0 on SIGTERM")

    def ready_record(self, process):
        """The "ready" log line (it names the address the server listens on)."""
        ready = wait_until(lambda: [r for r in process.records() if r.get("msg") == "ready"], 10, 0.05,
                           f"the ready log line in {process.log_path}")
        self.assertEqual(len(ready), 1, process.log_text())
        return ready[0]

    def assert_listening(self, process, port):
        client = Client(f"http://127.0.0.1:{port}", self.api_key)
        self.assertEqual(client.get("/readyz", auth=False).status, 200)
        resp = client.get("/v1/agents")
        self.assertEqual(resp.status, 200, resp)

    def test_config_file_sets_listen_data_dir_and_log_level(self):
        port = free_port()
        path = self.config(f"# comment\nlisten: 127.0.0.1:{port}\ndata_dir: {self.dir('file-data')}\n"
                           f"log_level: warn\nshutdown_grace_ms: 5000\ntls_verify: true\n"
                           f"allow_private_tool_addresses: false\n")
        server = self.serve(["--config", path], self.env(), port)
        self.assert_listening(server, port)
        self.assertTrue(os.path.exists(os.path.join(self.dir("file-data"), "continuum.db")), "data_dir from the file")
        self.stop_ok(server)
        levels = {r.get("level") for r in server.records()}
        self.assertFalse(levels & {"debug", "info"}, f"log_level warn hides info lines: {server.log_text()}")

    def test_env_overrides_the_file_and_flags_override_env(self):
        file_port, env_port, flag_port = free_port(), free_port(), free_port()
        path = self.config(f"listen: 127.0.0.1:{file_port}\ndata_dir: {self.dir('file-data')}\nlog_level: warn\n")

        with self.subTest("env over file"):
            server = self.serve(["--config", path],
                                self.env(CONTINUUM_LISTEN=f"127.0.0.1:{env_port}", CONTINUUM_LOG_LEVEL="info",
                                         CONTINUUM_DATA_DIR=self.dir("env-data")), env_port)
            self.assert_listening(server, env_port)
            self.assertEqual(self.ready_record(server).get("listen"), f"127.0.0.1:{env_port}")
            self.assertTrue(os.path.exists(os.path.join(self.dir("env-data"), "continuum.db")))
            self.assertFalse(os.path.exists(self.dir("file-data")))
            self.stop_ok(server)

        with self.subTest("flags over env"):
            server = self.serve(["--config", path, "--listen", f"127.0.0.1:{flag_port}",
                                 "--data", self.dir("flag-data")],
                                self.env(CONTINUUM_LISTEN=f"127.0.0.1:{env_port}", CONTINUUM_LOG_LEVEL="info",
                                         CONTINUUM_DATA_DIR=self.dir("env-data")), flag_port)
            self.assert_listening(server, flag_port)
            self.assertEqual(self.ready_record(server).get("listen"), f"127.0.0.1:{flag_port}")
            self.assertTrue(os.path.exists(os.path.join(self.dir("flag-data"), "continuum.db")))
            self.stop_ok(server)

    def test_continuum_config_names_the_file_unless_config_is_given(self):
        env_file_port, flag_file_port = free_port(), free_port()
        env_file = self.config(f"listen: 127.0.0.1:{env_file_port}\ndata_dir: {self.dir('env-file-data')}\n")
        flag_file = self.config(f"listen: 127.0.0.1:{flag_file_port}\ndata_dir: {self.dir('flag-file-data')}\n")

        with self.subTest("CONTINUUM_CONFIG"):
            server = self.serve([], self.env(CONTINUUM_CONFIG=env_file), env_file_port)
            self.assert_listening(server, env_file_port)
            self.assertEqual(self.ready_record(server).get("listen"), f"127.0.0.1:{env_file_port}")
            self.assertTrue(os.path.exists(os.path.join(self.dir("env-file-data"), "continuum.db")))
            self.stop_ok(server)

        with self.subTest("--config over CONTINUUM_CONFIG"):
            server = self.serve(["--config", flag_file], self.env(CONTINUUM_CONFIG=env_file), flag_file_port)
            self.assert_listening(server, flag_file_port)
            self.assertEqual(self.ready_record(server).get("listen"), f"127.0.0.1:{flag_file_port}")
            self.assertTrue(os.path.exists(os.path.join(self.dir("flag-file-data"), "continuum.db")))
            self.stop_ok(server)

    def serve_must_fail(self, args, env, port):
        """Runs `continuum serve ARGS`, which must exit by itself without becoming ready.
        Returns (exit code, stderr)."""
        self.count += 1
        process = ServeProcess(self.tmp, f"serve{self.count}", args, env, port)
        self.processes.append(process)
        process._spawn([binary("continuum"), "serve", *args], env=env)

        def exited_or_ready():
            if not process.alive():
                return "exited"
            try:
                if Client(f"http://127.0.0.1:{port}", timeout_s=2).get("/readyz", auth=False).status == 200:
                    return "ready"
            except OSError:
                pass
            return None

        outcome = wait_until(exited_or_ready, START_TIMEOUT_S, 0.05, "serve to exit")
        if outcome == "ready":
            process.stop()
            self.fail(f"serve {' '.join(args)} started instead of rejecting its configuration:\n"
                      f"{process.log_text()}")
        code = process.proc.returncode
        process.proc = None
        return code, process.log_text()

    def assert_config_rejected(self, cases):
        for label, text, key in cases:
            with self.subTest(label):
                port = free_port()
                path = self.config(f"data_dir: {self.dir('data-' + str(self.count))}\n{text}")
                # --listen would override a bad `listen`; otherwise it keeps a buggy start off port 8080.
                flags = [] if text.startswith("listen:") else ["--listen", f"127.0.0.1:{port}"]
                code, log = self.serve_must_fail(["--config", path, *flags], self.env(), port)
                self.assertEqual(code, 2, log)
                self.assertIn(key, log)

    def test_store_comes_from_the_file_env_or_flag_and_bad_ones_exit_2(self):
        file_port, env_port, flag_port = free_port(), free_port(), free_port()
        file_db, env_db, flag_db = self.dir("file.db"), self.dir("env.db"), self.dir("flag.db")
        path = self.config(f"listen: 127.0.0.1:{file_port}\ndata_dir: {self.dir('store-data')}\nstore: sqlite:{file_db}\n")
        for name, args, env, port, expected in (
                ("file", ["--config", path], self.env(), file_port, file_db),
                ("env over file", ["--config", path, "--listen", f"127.0.0.1:{env_port}"],
                 self.env(CONTINUUM_STORE=f"sqlite:{env_db}"), env_port, env_db),
                ("flag over env", ["--config", path, "--listen", f"127.0.0.1:{flag_port}", "--store", f"sqlite:{flag_db}"],
                 self.env(CONTINUUM_STORE=f"sqlite:{env_db}"), flag_port, flag_db)):
            with self.subTest(name):
                server = self.serve(args, env, port)
                self.assert_listening(server, port)
                self.assertEqual(self.ready_record(server).get("store"), f"sqlite:{expected}")
                self.assertTrue(os.path.exists(expected), f"{name}: the store is where it says")
                self.stop_ok(server)
        self.assertFalse(os.path.exists(os.path.join(self.dir("store-data"), "continuum.db")),
                         "the data dir's default database is not used")
        self.assert_config_rejected([("unknown scheme", "store: mysql://db/x\n", "store")])

    def test_log_level_and_listen_values_are_checked_like_the_others(self):
        # docs/configuration.md: log_level is one of debug, info, warn, error; listen is HOST:PORT.
        self.assert_config_rejected([
            ("unknown log_level", "log_level: loud\n", "log_level"),
            ("listen without a port", "listen: localhost\n", "listen"),
            ("listen with a port out of range", "listen: 127.0.0.1:99999\n", "listen"),
        ])

    def test_unknown_keys_and_bad_values_exit_2_naming_the_key(self):
        cases = [
            ("unknown key", "listen_port: 8080\n", "listen_port"),
            ("unknown nested mapping", "limits:\n  request_body_bytes_max: 10\n", "limits"),
            ("negative shutdown_grace_ms", "shutdown_grace_ms: -1\n", "shutdown_grace_ms"),
            ("non-numeric request_body_bytes_max", "request_body_bytes_max: lots\n", "request_body_bytes_max"),
            ("tls_verify: maybe", "tls_verify: maybe\n", "tls_verify"),
            ("non-boolean allow_private_tool_addresses", "allow_private_tool_addresses: sometimes\n",
             "allow_private_tool_addresses"),
            ("a list for a scalar key", "log_level: [info, debug]\n", "log_level"),
        ]
        self.assert_config_rejected(cases)

        env_cases = [("CONTINUUM_SHUTDOWN_GRACE_MS", "-1", "shutdown_grace_ms"),
                     ("CONTINUUM_TLS_VERIFY", "maybe", "tls_verify"),
                     ("CONTINUUM_REQUEST_BODY_BYTES_MAX", "4k", "request_body_bytes_max")]
        for name, value, key in env_cases:
            with self.subTest(env=name):
                port = free_port()
                code, log = self.serve_must_fail(["--data", self.dir(f"data-{self.count}"),
                                                  "--listen", f"127.0.0.1:{port}"],
                                                 self.env(**{name: value}), port)
                self.assertEqual(code, 2, log)
                self.assertIn(key, log.lower())

        with self.subTest("config file missing"):
            port = free_port()
            missing = self.dir("no-such-config.yaml")
            code, log = self.serve_must_fail(["--config", missing, "--data", self.dir("data-missing"),
                                              "--listen", f"127.0.0.1:{port}"], self.env(), port)
            self.assertEqual(code, 2, log)
            self.assertIn("no-such-config.yaml", log)

        with self.subTest("config file not a mapping"):
            port = free_port()
            path = self.config("- listen\n- data_dir\n")
            code, log = self.serve_must_fail(["--config", path, "--data", self.dir("data-list"),
                                              "--listen", f"127.0.0.1:{port}"], self.env(), port)
            self.assertEqual(code, 2, log)
            self.assertIn(os.path.basename(path), log)

    def test_request_body_bytes_max_from_the_file_is_enforced(self):
        port, limit = free_port(), 4096
        path = self.config(f"listen: 127.0.0.1:{port}\ndata_dir: {self.dir('data')}\n"
                           f"request_body_bytes_max: {limit}\n")
        server = self.serve(["--config", path], self.env(), port)
        client = Client(server.base_url, self.api_key)

        def body_of_size(name, size):
            definition = {"name": name, "model": {"model": "m"}, "instructions": ""}
            padding = size - len(json.dumps(definition).encode())
            definition["instructions"] = "x" * padding
            raw = json.dumps(definition).encode()
            self.assertEqual(len(raw), size)
            return raw

        over = client.post("/v1/agents", raw=body_of_size("over", limit + 1))
        self.assert_error(over, 413, "invalid_request_error", code="payload_too_large", check_param=False)
        at = client.post("/v1/agents", raw=body_of_size("at-limit", limit))
        self.assertEqual(at.status, 201, at)
        self.assertEqual(client.get("/v1/agents/at-limit").status, 200)
        self.assertEqual(client.get("/v1/agents/over").status, 404)
        self.stop_ok(server)


if __name__ == "__main__":
    unittest.main()
