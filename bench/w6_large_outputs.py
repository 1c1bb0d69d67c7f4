#!/usr/bin/env python3
"""W6: tool steps with large outputs (256 KiB, 2 MiB, 8 MiB).

Starts the real `continuum` server (SQLite, default durability, encryption at
rest on) with the in-process scripted model, and an HTTP tool served by this
script whose answer is a JSON string of exactly SIZE bytes (quotes included;
the body is prepared before the runs, so the tool itself costs only the
transfer). For each size, an agent whose model calls that tool once and then
answers "done"; REPEAT runs each (one session each, `wait: true`), plus the
same for a tiny output (BASELINE bytes).

Per run, from the journal (GET /v1/runs/{id}/steps, created_at_ms in ms):
  - tool_step_ms: the tool_call step minus the model_call step before it (the
    model step's commit, then the tool's HTTP exchange of SIZE bytes);
  - step_ms: the model_call step after the tool step minus the one before it
    (the above, plus sealing and committing the tool step durably and
    handing its output to the next model call);
and run_ms, the client's time for the `wait: true` request.
Reported: medians per size, and ms_per_mib = (step_ms - baseline step_ms) / MiB
(also from run_ms). "No failure" means the run completed, its tool step is not
an error, and the output read back through the API is exactly the SIZE bytes
the tool sent; otherwise the size gets "ok": false and "failed": the reason
(e.g. the tool step's error text). Exits 1 if any size failed. One JSON line.

  BUILD_DIR=build python3 bench/w6_large_outputs.py
  BUILD_DIR=build SIZES=262144,2097152 REPEAT=5 python3 bench/w6_large_outputs.py

Env: BUILD_DIR (build), SIZES (bytes, comma-separated; 262144,2097152,8388608),
REPEAT (3), BASELINE (64), CONTEXT_TOKENS (4000000: the measured agents'
model.context_tokens, enough for an 8 MiB tool message; 0 = the server's default),
PROBE_DEFAULT_BUDGET (1: also one run per size with the default context_tokens,
reported as "default_context_budget"), KEEP=1 keeps the work dir.

The probe runs the same size with the agent's default context budget (16,000
tokens, about 64 KB): a tool message larger than the whole budget must keep its
call in the model's context (it once did not, and the run looped until
max_steps).
"""
import asyncio, http.client, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

BUILD = os.path.abspath(os.environ.get("BUILD_DIR", "build"))
SIZES = [int(s) for s in os.environ.get("SIZES", "262144,2097152,8388608").split(",") if s.strip()]
REPEAT = int(os.environ.get("REPEAT", "3"))
BASELINE = int(os.environ.get("BASELINE", "64"))
CONTEXT_TOKENS = int(os.environ.get("CONTEXT_TOKENS", "4000000"))
PROBE_DEFAULT_BUDGET = os.environ.get("PROBE_DEFAULT_BUDGET", "1") != "0"
KEY = "bench-key"
MIB = 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port, timeout=600):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
        self.conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data and data[:1] in b"{[" else data.decode())


def tool_output(size):
    """A JSON string of exactly `size` bytes (size >= 2)."""
    return '"' + "x" * (size - 2) + '"'


class ToolServer:
    """POST /out/<size> answers tool_output(size) (asyncio, one thread)."""

    def __init__(self, sizes):
        self.bodies = {size: tool_output(size).encode() for size in sizes}
        self.loop = asyncio.new_event_loop()
        self.port = free_port()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(asyncio.start_server(self.handle, "127.0.0.1", self.port))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()

    async def handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            body = self.bodies.get(int(lines[0].split()[1].rsplit("/", 1)[1]), b'"unknown size"')
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(body))
            writer.write(body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass  # e.g. the runtime stopped reading an answer over its limit
        finally:
            writer.close()

    def url(self, size):
        return f"http://127.0.0.1:{self.port}/out/{size}"

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def steps_of(client, run_id):
    steps, after = [], None
    while True:
        status, page = client.call("GET", f"/v1/runs/{run_id}/steps?limit=100" +
                                   (f"&after={after}" if after is not None else ""))
        if status != 200:
            raise RuntimeError(f"GET steps of {run_id}: {status} {str(page)[:300]}")
        steps.extend(page["data"])
        if not page.get("has_more"):
            return steps
        after = page.get("next_cursor") or page["data"][-1]["seq"]


def one_run(client, agent, size):
    """Runs the agent once; returns a dict of timings, or {"failed": reason}."""
    status, session = client.call("POST", "/v1/sessions", {"agent": agent})
    if status != 201:
        return {"failed": f"POST /v1/sessions: {status} {str(session)[:300]}"}
    t0 = time.monotonic()
    status, run = client.call("POST", f"/v1/sessions/{session['id']}/runs", {"input": "go", "wait": True})
    run_ms = (time.monotonic() - t0) * 1000
    if status != 200:
        return {"failed": f"POST runs (wait): {status} {str(run)[:300]}"}
    if run["status"] != "completed":
        return {"failed": f"run {run['id']} ended {run['status']}: {run.get('error')}"}
    t1 = time.monotonic()
    steps = steps_of(client, run["id"])
    read_ms = (time.monotonic() - t1) * 1000
    tools = [i for i, s in enumerate(steps) if s["kind"] == "tool_call"]
    if len(tools) != 1:
        return {"failed": f"run {run['id']} has {len(tools)} tool_call steps"}
    i = tools[0]
    payload = steps[i]["payload"]
    output = payload.get("output")
    if payload.get("is_error"):
        return {"failed": f"the tool step is an error: {str(output)[:400]}"}
    if output != tool_output(size):
        got = len(output.encode()) if isinstance(output, str) else None
        return {"failed": f"the tool step's output read back is {got} bytes, not the {size} the tool sent"}
    before = [s for s in steps[:i] if s["kind"] == "model_call"]
    after = [s for s in steps[i + 1:] if s["kind"] == "model_call"]
    if not before or not after:
        return {"failed": f"run {run['id']}: no model_call around the tool step: {[s['kind'] for s in steps]}"}
    return {"run_ms": run_ms, "read_ms": read_ms,
            "tool_step_ms": steps[i]["created_at_ms"] - before[-1]["created_at_ms"],
            "step_ms": after[0]["created_at_ms"] - before[-1]["created_at_ms"]}


def measure(client, agent, size):
    """REPEAT runs; {"ok": True, medians...} or {"ok": False, "failed": first reason}."""
    results = []
    for _ in range(REPEAT):
        result = one_run(client, agent, size)
        if "failed" in result:
            return {"bytes": size, "ok": False, "failed": result["failed"]}
        results.append(result)
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    return {"bytes": size, "ok": True, "tool_step_ms": round(med["tool_step_ms"], 1), "step_ms": round(med["step_ms"], 1),
            "run_ms": round(med["run_ms"], 1), "read_back_ms": round(med["read_ms"], 1),
            "step_ms_all": [r["step_ms"] for r in results]}


def main():
    work = tempfile.mkdtemp(prefix="continuum-w6-")
    script = os.path.join(work, "script.json")
    with open(script, "w") as f:
        json.dump({"scripts": {"w6": {"steps": [
            {"tool_calls": [{"name": "big", "arguments": {}}]},
            {"content": "done"}]}}}, f)
    tools = ToolServer(SIZES + [BASELINE])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTINUUM_", "OPENAI_"))}
    env.update(CONTINUUM_API_KEY=KEY, CONTINUUM_LOG_LEVEL="warn", CONTINUUM_SCRIPTED_MODEL_FILE=script,
               CONTINUUM_ALLOW_PRIVATE_TOOL_ADDRESSES="1")
    logs = open(os.path.join(work, "server.log"), "wb")
    server = None
    failed = True
    try:
        server = subprocess.Popen([f"{BUILD}/continuum", "serve", "--data", os.path.join(work, "data"),
                                   "--listen", f"127.0.0.1:{port}"], env=env, stdout=logs, stderr=logs)
        for _ in range(600):
            try:
                if Client(port, 5).call("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"continuum exited with {server.returncode}; see {work}/server.log")
            time.sleep(0.05)
        client = Client(port)
        for size in SIZES + [BASELINE]:
            for name, context_tokens in ((f"w6-{size}", CONTEXT_TOKENS), (f"w6-default-{size}", 0)):
                model = {"provider": "scripted", "model": "w6"}
                if context_tokens:
                    model["context_tokens"] = context_tokens
                status, body = client.call("POST", "/v1/agents", {
                    "name": name, "model": model, "limits": {"max_steps": 16},
                    "tools": [{"type": "http", "name": "big", "description": f"returns {size} bytes",
                               "parameters": {"type": "object", "properties": {}}, "url": tools.url(size),
                               "timeout_ms": 120000,
                               "retry": {"max_attempts": 2, "initial_backoff_ms": 100, "max_backoff_ms": 100}}]})
                if status != 201:
                    raise RuntimeError(f"POST /v1/agents: {status} {str(body)[:300]}")
        one_run(client, f"w6-{BASELINE}", BASELINE)  # warm-up
        baseline = measure(client, f"w6-{BASELINE}", BASELINE)
        if not baseline["ok"]:
            raise RuntimeError(f"the baseline run failed: {baseline['failed']}")
        sizes = []
        for size in SIZES:
            row = measure(client, f"w6-{size}", size)
            if row["ok"]:
                mib = (size - BASELINE) / MIB
                row["ms_per_mib"] = round((row["step_ms"] - baseline["step_ms"]) / mib, 2)
                row["run_ms_per_mib"] = round((row["run_ms"] - baseline["run_ms"]) / mib, 2)
            if PROBE_DEFAULT_BUDGET:
                probe = one_run(client, f"w6-default-{size}", size)
                row["default_context_budget"] = "ok" if "failed" not in probe else "failed: " + probe["failed"]
            sizes.append(row)
        failed = not all(row["ok"] and row.get("default_context_budget", "ok") == "ok" for row in sizes)
        print(json.dumps({"workload": "W6", "repeat": REPEAT, "context_tokens": CONTEXT_TOKENS or "default",
                          "baseline": baseline, "sizes": sizes,
                          "ok": not failed}), flush=True)
    except Exception as error:
        print(json.dumps({"workload": "W6", "ok": False, "failed": f"{type(error).__name__}: {error}"}), flush=True)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        tools.stop()
        if failed or os.environ.get("KEEP"):
            sys.stderr.write(f"w6: kept {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
