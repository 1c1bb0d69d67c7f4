"""Helpers for integration tests that drive the real `continuum` binary over HTTP.

Processes:
  ContinuumServer  `continuum serve` on a data dir (start, stop = SIGTERM, kill9, restart)
  MockModel        `continuum-mock-model` with a script written to a temp file
  ToolServer       tests/support/tool_server.py as its own process (the checker)
Clients:
  Client           JSON over HTTP: returns Response(status, body, headers, text)
  read_sse         Server-Sent Events as SseEvent(id, event, data)
Waiting:
  wait_until       polls a condition with a generous timeout (a failure guard only;
                   tests never assert on wall-clock speed)
CLI:
  run_cli          `continuum ARGS` to completion (clean_env, describe for messages)
At rest:
  stored_bytes     what a server keeps at rest (every file of its data dir, or pg_dump)
  where_stored     where given strings (or their hex) occur in it
In-process servers:
  InProcessServer  a handler class served on a loopback port in a thread (base of the
                   model proxies; tests use it for tools that record what they got)
Base class:
  IntegrationTest  starts the three processes per test, cleans them up, and prints
                   their stderr when a test fails.

Environment: CONTINUUM_BUILD_DIR (default /work/main/build) holds the binaries;
CONTINUUM_TEST_KEEP=1 keeps temp dirs; CONTINUUM_TEST_VERBOSE=1 always dumps logs.
"""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("CONTINUUM_BUILD_DIR", os.path.join(REPO_DIR, "build"))
TOOL_SERVER_PY = os.path.join(REPO_DIR, "tests", "support", "tool_server.py")

sys.path.insert(0, os.path.dirname(TOOL_SERVER_PY))
from tool_server import canonical_json, result_for  # noqa: E402  (the checker's deterministic results)

START_TIMEOUT_S = 60
RUN_TIMEOUT_S = 120
CLI_TIMEOUT_S = 120


def binary(name):
    return os.path.join(BUILD_DIR, name)


def binaries_present():
    return all(os.access(binary(n), os.X_OK) for n in ("continuum", "continuum-mock-model"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_store_url():
    """The store for a new server: "" (SQLite in its data dir) unless
    CONTINUUM_TEST_STORE=postgres, then a fresh database on the cluster at
    CONTINUUM_TEST_POSTGRES_URL (each server gets its own, so tests stay isolated)."""
    if os.environ.get("CONTINUUM_TEST_STORE", "sqlite") != "postgres":
        return ""
    if not os.environ.get("CONTINUUM_TEST_POSTGRES_URL"):
        raise AssertionError("CONTINUUM_TEST_STORE=postgres needs CONTINUUM_TEST_POSTGRES_URL")
    return new_postgres_database()


def new_postgres_database():
    """A fresh database on the cluster at CONTINUUM_TEST_POSTGRES_URL (whatever
    CONTINUUM_TEST_STORE says); returns its URL."""
    base = os.environ["CONTINUUM_TEST_POSTGRES_URL"]
    name = "it_" + secrets.token_hex(6)
    subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", base, "-c", f"CREATE DATABASE {name}"],
                   check=True, stdout=subprocess.DEVNULL)
    return base.rsplit("/", 1)[0] + "/" + name


class WaitTimeout(AssertionError):
    pass


def wait_until(condition, timeout_s=RUN_TIMEOUT_S, interval_s=0.05, message="condition"):
    """Polls `condition()` until it returns a truthy value, which is returned.

    Raises AssertionError after `timeout_s` (a guard against hangs, not a speed check).
    Exceptions from `condition` propagate."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout_s}s waiting for {message}")
        time.sleep(interval_s)


# --- HTTP ---------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: object  # parsed JSON, or None when the body is not JSON
    headers: dict  # lower-cased names
    text: str

    def __repr__(self):
        return f"Response({self.status}, {self.text[:500]!r})"


def _parse(resp, data):
    text = data.decode("utf-8", errors="replace")
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    headers = {k.lower(): v for k, v in resp.getheaders()}
    return Response(resp.status, body, headers, text)


class Client:
    """A small JSON client. `auth=False` omits the Authorization header;
    `api_key=` overrides it. `raw=` sends bytes as-is (for malformed bodies)."""

    def __init__(self, base_url, api_key=None, timeout_s=RUN_TIMEOUT_S):
        parsed = urllib.parse.urlparse(base_url)
        self.host = parsed.hostname
        self.port = parsed.port
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s

    def request(self, method, path, body=None, raw=None, headers=None, auth=True, api_key=None,
                timeout_s=None):
        send_headers = {"Accept": "application/json"}
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        key = api_key if api_key is not None else self.api_key
        if auth and key is not None:
            send_headers["Authorization"] = f"Bearer {key}"
        send_headers.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s or self.timeout_s)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            if data is not None:
                send_headers["Content-Length"] = str(len(data))
            for name, value in send_headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            if data is not None:
                try:
                    conn.send(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server may answer (e.g. 413) and close before reading everything
            resp = conn.getresponse()
            return _parse(resp, resp.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # --- conveniences for the native API (each asserts the expected status) ---

    def ok(self, method, path, body=None, expect=(200, 201, 202)):
        resp = self.request(method, path, body=body)
        if resp.status not in ((expect,) if isinstance(expect, int) else expect):
            raise AssertionError(f"{method} {path} -> {resp.status} {resp.text[:2000]}")
        return resp.body

    def create_agent(self, definition):
        return self.ok("POST", "/v1/agents", definition, expect=201)

    def create_session(self, agent, metadata=None):
        body = {"agent": agent}
        if metadata is not None:
            body["metadata"] = metadata
        return self.ok("POST", "/v1/sessions", body, expect=201)

    def start_run(self, session_id, text, wait=False, **extra):
        body = {"input": text, "wait": wait}
        body.update(extra)
        return self.ok("POST", f"/v1/sessions/{session_id}/runs", body,
                       expect=(200, 202) if wait else 202)

    def run(self, run_id):
        return self.ok("GET", f"/v1/runs/{run_id}", expect=200)

    def steps(self, run_id, page_limit=100):
        """All journal steps of a run, following the cursor."""
        steps, after = [], None
        for _ in range(100_000):
            query = f"?limit={page_limit}" + (f"&after={after}" if after is not None else "")
            page = self.ok("GET", f"/v1/runs/{run_id}/steps{query}", expect=200)
            steps.extend(page["data"])
            if not page.get("has_more"):
                return steps
            after = page["next_cursor"]
            if after is None:
                after = page["data"][-1]["seq"]
        raise AssertionError("too many pages of steps")

    def items(self, session_id, page_limit=100):
        items, after = [], None
        for _ in range(100_000):
            query = f"?limit={page_limit}" + (f"&after={after}" if after is not None else "")
            page = self.ok("GET", f"/v1/sessions/{session_id}/items{query}", expect=200)
            items.extend(page["data"])
            if not page.get("has_more"):
                return items
            after = page["next_cursor"]
            if after is None:
                after = page["data"][-1]["seq"]
        raise AssertionError("too many pages of items")

    def wait_run(self, run_id, statuses=("completed", "failed", "cancelled"), timeout_s=RUN_TIMEOUT_S):
        """Polls the run until its status is one of `statuses`; returns the run."""
        last = {}

        def reached():
            resp = self.get(f"/v1/runs/{run_id}")
            if resp.status == 200:
                last["run"] = resp.body
                return resp.body if resp.body["status"] in statuses else None
            return None

        try:
            return wait_until(reached, timeout_s, 0.05, f"run {run_id} to reach {statuses}")
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen: {json.dumps(last.get('run'))[:2000]}") from None


# --- SSE ----------------------------------------------------------------------


@dataclass
class SseEvent:
    id: object  # str or None
    event: str
    data: str

    def json(self):
        return json.loads(self.data)


def iter_sse(base_url, path, api_key=None, last_event_id=None, timeout_s=RUN_TIMEOUT_S, on_open=None):
    """Yields SseEvent objects from a GET stream until it ends (or the caller stops).

    `on_open(response)` is called once the response headers arrived. Comment lines
    are skipped. Raises AssertionError if the status is not 200."""
    parsed = urllib.parse.urlparse(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout_s)
    try:
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            raise AssertionError(f"GET {path} -> {resp.status} {resp.read()[:2000]!r}")
        if on_open:
            on_open(resp)
        event_id, event_type, data_lines = None, None, []
        while True:
            line = resp.readline()
            if not line:
                return  # stream ended
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data_lines or event_type is not None or event_id is not None:
                    yield SseEvent(event_id, event_type or "message", "\n".join(data_lines))
                event_id, event_type, data_lines = None, None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "id":
                event_id = value
            elif name == "event":
                event_type = value
            elif name == "data":
                data_lines.append(value)
    finally:
        conn.close()


def read_sse(base_url, path, api_key=None, last_event_id=None, max_events=None, until=None,
             timeout_s=RUN_TIMEOUT_S, on_open=None):
    """Collects events until the stream ends, `max_events` were read, or
    `until(event)` is true for a received event (which is included)."""
    events = []
    stream = iter_sse(base_url, path, api_key, last_event_id, timeout_s, on_open)
    try:
        for event in stream:
            events.append(event)
            if max_events is not None and len(events) >= max_events:
                break
            if until is not None and until(event):
                break
    finally:
        stream.close()
    return events


# --- the CLI ------------------------------------------------------------------


def clean_env(**extra):
    """The test runner's environment without CONTINUUM_* and OPENAI_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTINUUM_", "OPENAI_"))}
    env.update(extra)
    return env


def run_cli(args, env, cwd, input_text=""):
    """Runs `continuum ARGS` to completion with stdin a pipe fed `input_text`."""
    argv = [binary("continuum"), *args]
    try:
        return subprocess.run(argv, input=input_text, capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"{' '.join(argv)} did not finish in {CLI_TIMEOUT_S}s; "
                             f"stdout={error.stdout!r} stderr={error.stderr!r}") from None


def describe(result):
    """A finished CLI command, for assertion messages."""
    return (f"\n$ {' '.join(result.args)}\nexit {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}")


# --- data at rest ---------------------------------------------------------------


def is_postgres_url(store):
    return bool(store) and store.startswith(("postgres://", "postgresql://"))


def data_dir_files(data_dir):
    """Every file under `data_dir`: {relative path: bytes} (SQLite's -wal and -shm included)."""
    files = {}
    for root, _, names in os.walk(data_dir):
        for name in names:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    files[os.path.relpath(path, data_dir)] = f.read()
            except FileNotFoundError:
                pass  # e.g. a WAL removed by a checkpoint while we walked
    return files


def pg_dump(store_url):
    """`pg_dump --data-only` of a PostgreSQL database, as bytes."""
    result = subprocess.run(["pg_dump", "--data-only", store_url], capture_output=True, timeout=CLI_TIMEOUT_S)
    if result.returncode != 0:
        raise AssertionError(f"pg_dump failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


def stored_bytes(server):
    """What `server` (a ContinuumServer, running or stopped) keeps at rest: {place: bytes},
    every file of its data dir (SQLite) or {"pg_dump": ...} (PostgreSQL)."""
    if is_postgres_url(server.store):
        return {"pg_dump": pg_dump(server.store)}
    files = data_dir_files(server.data_dir)
    if "continuum.db" not in files:
        raise AssertionError(f"no database in {server.data_dir}: {sorted(files)}")
    return files


def where_stored(server, needles):
    """{needle: [places it occurs at rest]} for each string in `needles`, searched as
    UTF-8 and as hex (PostgreSQL dumps bytea columns as hex)."""
    sources = stored_bytes(server)
    found = {}
    for needle in needles:
        forms = (needle.encode(), needle.encode().hex().encode())
        found[needle] = sorted(name for name, data in sources.items() if any(f in data for f in forms))
    return found


# --- processes ----------------------------------------------------------------


class ProcessExited(AssertionError):
    def __init__(self, message, log):
        super().__init__(message)
        self.log = log


class Process:
    """A child process whose stderr goes to a log file kept across restarts."""

    def __init__(self, name, log_dir):
        self.name = name
        self.log_path = os.path.join(log_dir, f"{name}.stderr.log")
        self.proc = None

    def _spawn(self, argv, env=None):
        self._log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "ab")
        log.write(f"\n===== start {' '.join(argv)} at {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        finally:
            log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout_s=30):
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self):
        if self.proc is None:
            return
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        self.proc = None

    def _start_on_free_port(self, spawn_and_wait, attempts=3):
        """Runs `spawn_and_wait()`; if the process could not bind its port (another
        process took it after free_port() released it), retries on a new port."""
        for attempt in range(attempts):
            try:
                return spawn_and_wait()
            except ProcessExited as error:
                if "Address already in use" not in error.log or attempt == attempts - 1:
                    raise
                self.proc = None
                self.port = free_port()

    def log_text(self, tail_bytes=20000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-tail_bytes:].decode("utf-8", errors="replace")

    def _wait_http_ok(self, url_path, port, timeout_s):
        def ready():
            if not self.alive():
                with open(self.log_path, "rb") as f:
                    f.seek(getattr(self, "_log_offset", 0))
                    log = f.read().decode("utf-8", errors="replace")
                raise ProcessExited(f"{self.name} exited with {self.proc.returncode if self.proc else '?'}"
                                    f" during start:\n{log[-20000:]}", log)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", url_path)
                status = conn.getresponse().status
                conn.close()
                return status == 200
            except OSError:
                return False

        wait_until(ready, timeout_s, 0.05, f"{self.name} to answer {url_path}")


class ToolServer(Process):
    def __init__(self, log_dir, state_file=None, config=None):
        super().__init__("tool_server", log_dir)
        self.port = free_port()
        self.state_file = state_file
        self.config = config

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, tool_name):
        return f"{self.base_url}/tools/{tool_name}"

    def start(self):
        def spawn_and_wait():
            argv = [sys.executable, TOOL_SERVER_PY, "--port", str(self.port)]
            if self.state_file:
                argv += ["--state", self.state_file]
            if self.config:
                argv += ["--config", json.dumps(self.config)]
            self._spawn(argv)
            self._wait_http_ok("/healthz", self.port, START_TIMEOUT_S)

        self._start_on_free_port(spawn_and_wait)
        return self

    def _client(self):
        return Client(self.base_url)

    def control(self, tools=None, default=None, replace=False):
        body = {"replace": replace}
        if tools is not None:
            body["tools"] = tools
        if default is not None:
            body["default"] = default
        return self._client().ok("POST", "/control", body, expect=200)

    def stats(self):
        return self._client().ok("GET", "/stats", expect=200)

    def ledger(self):
        return self._client().ok("GET", "/ledger", expect=200)["keys"]

    def reset(self, keep_rules=False):
        return self._client().ok("POST", "/reset", {"keep_rules": keep_rules}, expect=200)


class MockModel(Process):
    def __init__(self, log_dir, scripts):
        super().__init__("mock_model", log_dir)
        self.port = free_port()
        self.script_path = os.path.join(log_dir, "mock_model_script.json")
        with open(self.script_path, "w", encoding="utf-8") as f:
            json.dump({"scripts": scripts}, f, indent=1)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        def spawn_and_wait():
            self._spawn([binary("continuum-mock-model"), "--script", self.script_path,
                         "--listen", f"127.0.0.1:{self.port}"])
            self._wait_http_ok("/healthz", self.port, START_TIMEOUT_S)

        self._start_on_free_port(spawn_and_wait)
        return self

    def stats(self):
        return Client(f"http://127.0.0.1:{self.port}").ok("GET", "/stats", expect=200)


class ContinuumServer(Process):
    """`continuum serve` on `data_dir`."""

    def __init__(self, log_dir, data_dir, api_key, mock_base_url=None, env=None, store=None):
        super().__init__("continuum", log_dir)
        self.data_dir = data_dir
        # The store URL; by default the suite's backend (test_store_url), fixed
        # for this server's lifetime so restarts see the same database.
        self.store = store if store is not None else test_store_url()
        self.api_key = api_key
        self.port = free_port()
        self.extra_env = dict(env or {})
        self.mock_base_url = mock_base_url
        self.starts = 0

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        return Client(self.base_url, self.api_key)

    def environment(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTINUUM_", "OPENAI_"))}
        env["CONTINUUM_API_KEY"] = self.api_key
        env["CONTINUUM_ALLOW_PRIVATE_TOOL_ADDRESSES"] = "1"
        env["OPENAI_API_KEY"] = "sk-test-not-a-real-key"
        if self.mock_base_url:
            env["OPENAI_BASE_URL"] = self.mock_base_url
        env.update(self.extra_env)
        return env

    def start(self):
        """Starts the server and waits for /readyz. The port normally stays the same
        across restarts; if another process took it meanwhile a new one is used, so
        take a fresh client() after any (re)start."""
        os.makedirs(self.data_dir, exist_ok=True)

        def spawn_and_wait():
            argv = [binary("continuum"), "serve", "--data", self.data_dir, "--listen", f"127.0.0.1:{self.port}"]
            if self.store:
                argv += ["--store", self.store]
            self._spawn(argv, env=self.environment())
            self.starts += 1
            self._wait_http_ok("/readyz", self.port, START_TIMEOUT_S)

        self._start_on_free_port(spawn_and_wait)
        return self

    def restart(self):
        """Clean restart: SIGTERM, wait for exit, start again on the same data dir."""
        code = self.stop()
        self.start()
        return code

    def crash_restart(self):
        """kill -9, then start again on the same data dir."""
        self.kill9()
        self.start()


# --- a strict model endpoint ------------------------------------------------------


def chat_transcript_problems(messages):
    """What OpenAI's Chat Completions API would reject in `messages`: every assistant
    tool call must be answered by a tool message before the next other message, and
    every tool message must answer a pending call. Returns a list of problems."""
    problems, pending = [], set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                problems.append(f"messages[{index}]: tool result {call_id!r} answers no pending tool call")
            pending.discard(call_id)
            continue
        if pending:
            problems.append(f"messages[{index}] ({role}): tool calls {sorted(pending)} have no result")
            pending = set()
        if role == "assistant":
            pending = {call.get("id") for call in message.get("tool_calls") or []}
    if pending:
        problems.append(f"the last message's tool calls {sorted(pending)} have no result")
    return problems


class InProcessServer:
    """Serves a handler class on a free loopback port in a background thread."""

    def _serve(self, handler_class):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def _serve_replies(self, answer):
        """Serves GET and POST with `answer(method, path, headers, body)` -> (status,
        content_type, reply bytes); one request per connection, nothing logged."""

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, content_type, reply = answer(self.command, self.path, self.headers, body)
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(reply)))
                self.send_header("Connection", "close")  # no idle keep-alive to reset
                self.end_headers()
                self.wfile.write(reply)
                self.close_connection = True

            do_GET = do_POST = _reply

        self._serve(Handler)

    @property
    def port(self):
        return self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class InProcessModelProxy(InProcessServer):
    """Base of the test proxies put in front of the mock model."""

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"


class StrictModelProxy(InProcessModelProxy):
    """An in-process proxy in front of the mock model that rejects, as OpenAI does
    (400), chat requests whose transcript is invalid (see chat_transcript_problems),
    and forwards the others unchanged (streamed replies are relayed as they come).
    `rejections` lists what was rejected; `requests` holds every request body received
    (bytes), i.e. all the model was shown."""

    def __init__(self, upstream_port):
        self.rejections = []
        self.requests = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests.append(body)
                try:
                    problems = chat_transcript_problems(json.loads(body).get("messages", []))
                except (ValueError, AttributeError):
                    problems = ["the body is not a JSON object"]
                if problems:
                    proxy.rejections.append(problems)
                    error = json.dumps({"error": {"message": "; ".join(problems), "type": "invalid_request_error",
                                                  "param": "messages", "code": None}}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
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
                    while True:
                        chunk = resp.read1(65536)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    self.close_connection = True
                finally:
                    upstream.close()

        self._serve(Handler)


# --- agent definitions ---------------------------------------------------------


def model_spec(endpoint, script_name, **extra):
    """A model definition using `script_name` on `endpoint` (a MockModel or StrictModelProxy)."""
    spec = {"provider": "openai", "model": script_name, "base_url": endpoint.base_url}
    spec.update(extra)
    return spec


def http_tool(tools, name, parameters=None, **extra):
    tool = {"type": "http", "name": name, "description": f"test tool {name}",
            "parameters": parameters or {"type": "object", "properties": {}},
            "url": tools.url(name)}
    tool.update(extra)
    return tool


def fast_retry(max_attempts=4):
    """A retry policy with short backoff, so retry tests do not sleep long."""
    return {"max_attempts": max_attempts, "initial_backoff_ms": 20, "max_backoff_ms": 200}


def tool_steps(steps):
    return [s for s in steps if s["kind"] == "tool_call"]


def step_arguments(step):
    """A tool_call step's arguments as an object (the API may hold JSON text)."""
    args = step["payload"]["arguments"]
    return json.loads(args) if isinstance(args, str) else args


# --- the base test case --------------------------------------------------------


class IntegrationTest(unittest.TestCase):
    """Starts a mock model (with `SCRIPTS`), a tool server and a Continuum server
    for every test, on fresh temp dirs. `self.client` talks to Continuum."""

    SCRIPTS = {"default": {"steps": [{"content": "hello from the mock"}]}}
    TOOL_RULES = None  # initial tool server rules

    @classmethod
    def setUpClass(cls):
        if not binaries_present():
            raise unittest.SkipTest(f"binaries not built in {BUILD_DIR}")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"continuum-{self._testMethodName[:40]}-")
        self.processes = []
        self.addCleanup(self._cleanup)
        self.api_key = "test-" + secrets.token_hex(12)
        self.mock = self.start_process(MockModel(self.tmp, self.SCRIPTS))
        self.tools = self.start_process(ToolServer(self.tmp, os.path.join(self.tmp, "ledger.json"),
                                                   self.TOOL_RULES))
        self.server = self.start_process(
            ContinuumServer(self.tmp, os.path.join(self.tmp, "data"), self.api_key, self.mock.base_url))
        self.client = self.server.client()

    def start_process(self, process):
        self.processes.append(process)
        return process.start()

    def _failed(self):
        """Whether this test (or one of its subtests) has failed so far."""
        result = getattr(self._outcome, "result", None)
        if result is None:
            return True
        for test, _ in list(result.errors) + list(result.failures):
            if test is self or getattr(test, "test_case", None) is self:
                return True
        return False

    def _cleanup(self):
        failed = self._failed()
        if failed or os.environ.get("CONTINUUM_TEST_VERBOSE"):
            self.dump_logs()
        for process in reversed(self.processes):
            try:
                process.stop(timeout_s=15)
            except Exception as error:  # keep cleaning up the others
                sys.stderr.write(f"cleanup of {process.name} failed: {error}\n")
        if failed or os.environ.get("CONTINUUM_TEST_KEEP"):
            sys.stderr.write(f"kept test dir {self.tmp}\n")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def dump_logs(self):
        for process in self.processes:
            sys.stderr.write(f"\n----- {process.name} stderr ({process.log_path}) -----\n")
            sys.stderr.write(process.log_text())
        sys.stderr.write("\n----- end of logs -----\n")

    # --- shortcuts ---

    def make_agent(self, name, script, tools=(), limits=None, **model_extra):
        definition = {"name": name, "model": model_spec(self.mock, script, **model_extra),
                      "instructions": f"You are the test agent {name}.", "tools": list(tools)}
        if limits is not None:
            definition["limits"] = limits
        return self.client.create_agent(definition)

    def strict_model(self):
        """A StrictModelProxy in front of this test's mock (pass it to model_spec)."""
        proxy = StrictModelProxy(self.mock.port)
        self.addCleanup(proxy.stop)
        return proxy

    def new_session(self, agent):
        return self.client.create_session(agent)["id"]

    def cli(self, *args, input_text=""):
        """`continuum ARGS --server URL --api-key KEY` (global options after the subcommand),
        with stdin fed `input_text`."""
        return run_cli([*args, "--server", self.server.base_url, "--api-key", self.api_key], clean_env(),
                       self.tmp, input_text)

    def assert_error(self, resp, status, error_type, param=None, code=None, check_param=True):
        """Asserts the documented error shape {"error": {type, code, message, param}}."""
        self.assertEqual(resp.status, status, resp)
        self.assertIsInstance(resp.body, dict, resp)
        self.assertIn("error", resp.body, resp)
        error = resp.body["error"]
        for key in ("type", "code", "message", "param"):
            self.assertIn(key, error, resp)
        self.assertEqual(error["type"], error_type, resp)
        self.assertIsInstance(error["message"], str)
        self.assertTrue(error["message"], resp)
        if check_param:
            self.assertEqual(error["param"], param, resp)
        if code is not None:
            self.assertEqual(error["code"], code, resp)
        return error
