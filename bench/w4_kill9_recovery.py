#!/usr/bin/env python3
"""W4: `kill -9` with RUNS runs in flight, then recovery.

Starts the real `continuum` server (SQLite in its data dir, default durability:
WAL with synchronous=FULL, encryption at rest on) with the in-process scripted
model: each of a run's model calls takes DELAY_MS (a timer on the server's
loop, so thousands of runs can wait at once without a connection each), and
the model asks for TOOL_CALLS calls of an HTTP tool, one per model call, then
answers. The tool is served by this script (asyncio, one thread) and appends
one line per execution, with its Idempotency-Key, to a log file (flushed).

RUNS runs are submitted (one session each, not waiting). Once KILL_AT tool
executions have been seen (default: half of all RUNS * TOOL_CALLS), the server
is killed with SIGKILL. The SQLite file is then read with Python's sqlite3
(columns run_id, seq, kind and status are not sealed): which runs are
unfinished, and which tool_call steps are durable. Their idempotency keys are
"<run_id>:<seq>". The server is started again on the same data dir, and:
  - first_resumed_step_ms: from the new process's start to the first step
    made durable by it (continuum_steps_committed_total > 0 on /metrics, polled
    every 5 ms); first_resumed_step_journal_ms is the same from the journal
    (min created_at_ms of the steps that were not durable at the kill);
  - all_finished_s: from the new process's start until all RUNS completed;
  - reexecuted_completed_steps: tool executions after the restart whose key
    belonged to a tool_call step durable at the kill. Must be 0: the script
    exits 1 otherwise (or if a run did not complete, or the log and the
    journals disagree).
Prints one JSON line.

  BUILD_DIR=build RUNS=2000 DELAY_MS=2000 python3 bench/w4_kill9_recovery.py

Env: BUILD_DIR (build), RUNS (2000), TOOL_CALLS (3), DELAY_MS (2000),
KILL_AT (RUNS*TOOL_CALLS/2 tool executions), CLIENTS (16 submitting threads),
KEEP=1 keeps the work dir.
"""
import asyncio, http.client, json, os, resource, shutil, signal, socket, sqlite3, subprocess, sys, tempfile
import threading, time

BUILD = os.path.abspath(os.environ.get("BUILD_DIR", "build"))
RUNS = int(os.environ.get("RUNS", "2000"))
TOOL_CALLS = int(os.environ.get("TOOL_CALLS", "3"))
DELAY_MS = int(os.environ.get("DELAY_MS", "2000"))
KILL_AT = int(os.environ.get("KILL_AT", str(RUNS * TOOL_CALLS // 2)))
CLIENTS = int(os.environ.get("CLIENTS", "16"))
KEY = "bench-key"
TERMINAL = ("completed", "failed", "cancelled")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Client:
    def __init__(self, port, timeout=120):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
        self.conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data and data[:1] in b"{[" else data.decode())


def metrics(port, timeout=5):
    """The server's counters as {name{labels}: value}; raises OSError when it does not answer."""
    status, text = Client(port, timeout).call("GET", "/metrics")
    if status != 200:
        raise OSError(f"/metrics answered {status}")
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


class ToolServer:
    """An HTTP tool on loopback: answers every POST at once and appends
    "<phase> <unix time> <Idempotency-Key>" to `log_path` (flushed) before answering."""

    def __init__(self, log_path):
        self.log = open(log_path, "a", buffering=1)
        self.phase = "before"  # set to "after" just before the restart
        self.executions = 0
        self.loop = asyncio.new_event_loop()
        self.port = free_port()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self.handle, "127.0.0.1", self.port, backlog=4096))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()

    async def handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length") or 0))
            key = headers.get("idempotency-key", "-")
            self.executions += 1
            self.log.write(f"{self.phase} {time.time():.6f} {key}\n")
            self.log.flush()
            body = json.dumps({"ok": True, "key": key}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(body) + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass  # the server was killed mid-exchange
        finally:
            writer.close()

    def url(self):
        return f"http://127.0.0.1:{self.port}/tools/work"

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.log.close()


def read_store(db_path):
    """Opens the SQLite store read-only (the server is dead or running) and returns
    (runs: {run_id: status}, steps: {(run_id, seq): (kind, created_at_ms)})."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        runs = dict(db.execute("SELECT id, status FROM runs"))
        steps = {(run, seq): (kind, at) for run, seq, kind, at in
                 db.execute("SELECT run_id, seq, kind, created_at_ms FROM steps")}
    finally:
        db.close()
    return runs, steps


class Server:
    def __init__(self, work, env):
        self.work, self.env = work, env
        self.port = free_port()
        self.proc = None
        self.logs = open(os.path.join(work, "server.log"), "ab")

    def start(self):
        """Starts the process; returns (monotonic, unix ms) of the spawn."""
        started = time.monotonic(), time.time() * 1000
        self.proc = subprocess.Popen([f"{BUILD}/continuum", "serve", "--data", os.path.join(self.work, "data"),
                                      "--listen", f"127.0.0.1:{self.port}"], env=self.env, stdout=self.logs,
                                     stderr=self.logs, preexec_fn=raise_fd_limit)
        return started

    def wait_ready(self, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"continuum exited with {self.proc.returncode}; see {self.work}/server.log")
            try:
                if Client(self.port, 5).call("GET", "/readyz")[0] == 200:
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError("continuum did not become ready")

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main():
    raise_fd_limit()
    work = tempfile.mkdtemp(prefix="continuum-w4-")
    script = os.path.join(work, "script.json")
    with open(script, "w") as f:
        json.dump({"scripts": {"w4": {"steps": [
            {"tool_calls": [{"name": "work", "arguments": {"input": "{{input}}"}}], "delay_ms": DELAY_MS,
             "repeat": TOOL_CALLS},
            {"content": "done", "delay_ms": DELAY_MS}]}}}, f)
    tool_log = os.path.join(work, "tool-executions.log")
    tools = ToolServer(tool_log)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTINUUM_", "OPENAI_"))}
    env.update(CONTINUUM_API_KEY=KEY, CONTINUUM_LOG_LEVEL="warn", CONTINUUM_SCRIPTED_MODEL_FILE=script,
               CONTINUUM_ALLOW_PRIVATE_TOOL_ADDRESSES="1")
    server = Server(work, env)
    db_path = os.path.join(work, "data", "continuum.db")
    failures = []
    try:
        server.start()
        server.wait_ready()
        client = Client(server.port)
        status, agent = client.call("POST", "/v1/agents", {
            "name": "w4", "model": {"provider": "scripted", "model": "w4"},
            "tools": [{"type": "http", "name": "work", "description": "one unit of work",
                       "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
                       "url": tools.url(), "timeout_ms": 60000,
                       "retry": {"max_attempts": 20, "initial_backoff_ms": 50, "max_backoff_ms": 1000}}],
            "limits": {"max_steps": 4 * TOOL_CALLS + 8}})
        assert status == 201, (status, agent)

        # Submit: each client thread makes a session and starts a run in it, not waiting.
        submit_errors = []

        def submit(indexes):
            c = Client(server.port)
            try:
                for i in indexes:
                    status, session = c.call("POST", "/v1/sessions", {"agent": "w4"})
                    assert status == 201, (status, session)
                    status, run = c.call("POST", f"/v1/sessions/{session['id']}/runs", {"input": f"r{i}"})
                    assert status == 202, (status, run)
            except Exception as error:
                submit_errors.append(repr(error))

        t0 = time.monotonic()
        threads = [threading.Thread(target=submit, args=(range(k, RUNS, CLIENTS),)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        submit_s = time.monotonic() - t0
        if submit_errors:
            raise RuntimeError(f"submitting failed: {submit_errors[:3]}")

        # Wait until KILL_AT tool executions, then kill -9.
        deadline = time.monotonic() + 600
        while tools.executions < KILL_AT:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {tools.executions} tool executions after 600 s")
            time.sleep(0.002)
        server.kill9()
        killed_after_s = time.monotonic() - t0
        executions_at_kill = tools.executions

        # What is durable, read straight from the SQLite file.
        runs_at_kill, steps_at_kill = read_store(db_path)
        if len(runs_at_kill) != RUNS:
            failures.append(f"{len(runs_at_kill)} runs in the store at the kill, {RUNS} submitted")
        in_flight = sum(1 for s in runs_at_kill.values() if s not in TERMINAL)
        completed_at_kill = sum(1 for s in runs_at_kill.values() if s == "completed")
        durable_tool_keys = {f"{run}:{seq}" for (run, seq), (kind, _) in steps_at_kill.items() if kind == "tool_call"}

        # Restart on the same data dir and watch for the first step it commits.
        tools.phase = "after"
        restart_mono, restart_unix_ms = server.start()
        first_step = {}

        def poll_first_step():
            while server.proc.poll() is None and time.monotonic() - restart_mono < 600:
                try:
                    if metrics(server.port).get("continuum_steps_committed_total", 0) > 0:
                        first_step["at"] = time.monotonic()
                        return
                except OSError:
                    pass
                time.sleep(0.005)

        poller = threading.Thread(target=poll_first_step)
        poller.start()
        ready_at = server.wait_ready()
        poller.join()
        if "at" not in first_step:
            raise RuntimeError("no step was committed after the restart")

        # Until every run completed (those finished before the kill, plus this process's).
        finished_at = None
        while time.monotonic() - restart_mono < 3600:
            m = metrics(server.port, 30)
            done = completed_at_kill + m.get('continuum_runs_finished_total{status="completed"}', 0)
            others = m.get('continuum_runs_finished_total{status="failed"}', 0) + \
                m.get('continuum_runs_finished_total{status="cancelled"}', 0)
            if done + others >= RUNS:
                finished_at = time.monotonic()
                break
            time.sleep(0.05)
        if finished_at is None:
            failures.append("not all runs finished within an hour of the restart")
        server.stop()

        # The verdict: the store against the tool's own log.
        runs_end, steps_end = read_store(db_path)
        completed = sum(1 for s in runs_end.values() if s == "completed")
        if completed != RUNS:
            failures.append(f"{completed} of {RUNS} runs completed: "
                            f"{sorted(set(runs_end.values()))}")
        journal_tool_keys = {f"{run}:{seq}" for (run, seq), (kind, _) in steps_end.items() if kind == "tool_call"}
        if len(journal_tool_keys) != RUNS * TOOL_CALLS:
            failures.append(f"{len(journal_tool_keys)} tool_call steps, expected {RUNS * TOOL_CALLS}")
        executions = []
        with open(tool_log) as f:
            for line in f:
                phase, at, key = line.split()
                executions.append((phase, float(at), key))
        executed_keys = {key for _, _, key in executions}
        if "-" in executed_keys:
            failures.append("a tool call came without an Idempotency-Key")
        if executed_keys - journal_tool_keys:
            failures.append(f"{len(executed_keys - journal_tool_keys)} executed keys have no tool_call step")
        if journal_tool_keys - executed_keys:
            failures.append(f"{len(journal_tool_keys - executed_keys)} tool_call steps were never executed")
        after = [key for phase, _, key in executions if phase == "after"]
        before_keys = {key for phase, _, key in executions if phase == "before"}
        reexecuted_completed = sum(1 for key in after if key in durable_tool_keys)
        reexecuted_uncommitted = sum(1 for key in after if key in before_keys and key not in durable_tool_keys)
        if reexecuted_completed:
            failures.append(f"{reexecuted_completed} executions after the restart repeated a durable tool step")
        resumed = [(at, kind) for step, (kind, at) in steps_end.items() if step not in steps_at_kill]
        first_journal = min(resumed) if resumed else (None, None)

        result = {
            "workload": "W4", "runs": RUNS, "tool_calls_per_run": TOOL_CALLS, "model_delay_ms": DELAY_MS,
            "submit_s": round(submit_s, 2), "killed_after_s": round(killed_after_s, 2),
            "tool_executions_at_kill": executions_at_kill,
            "in_flight_at_kill": in_flight, "completed_at_kill": completed_at_kill,
            "durable_tool_steps_at_kill": len(durable_tool_keys),
            "ready_ms": round((ready_at - restart_mono) * 1000, 1),
            "first_resumed_step_ms": round((first_step["at"] - restart_mono) * 1000, 1),
            "first_resumed_step_journal_ms": (None if first_journal[0] is None
                                              else round(first_journal[0] - restart_unix_ms, 1)),
            "first_resumed_step_kind": first_journal[1],
            "all_finished_s": None if finished_at is None else round(finished_at - restart_mono, 2),
            "completed": completed,
            "reexecuted_completed_steps": reexecuted_completed,
            "reexecuted_uncommitted_steps": reexecuted_uncommitted,
            "tool_executions": len(executions), "tool_executions_after_restart": len(after),
            "tool_call_steps": len(journal_tool_keys),
        }
        if failures:
            result["failures"] = failures
        print(json.dumps(result), flush=True)
    except Exception as error:
        failures.append(f"{type(error).__name__}: {error}")
        print(json.dumps({"workload": "W4", "runs": RUNS, "failures": failures}), flush=True)
    finally:
        server.stop()
        tools.stop()
        if failures or os.environ.get("KEEP"):
            sys.stderr.write(f"w4: kept {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
