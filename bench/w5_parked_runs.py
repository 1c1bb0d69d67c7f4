#!/usr/bin/env python3
"""W5: many concurrent runs, each waiting on a slow model call over HTTP.

Starts the real `continuum` server and `continuum-mock-model` (every reply
delayed by DELAY_MS), submits RUNS runs (one session each) as fast as the
client can, samples the server's RSS, thread count and active runs while they
wait, and waits for all of them to complete. Prints one JSON line.

  BUILD_DIR=build RUNS=10000 DELAY_MS=2000 python3 bench/w5_parked_runs.py
"""
import http.client, json, os, resource, shutil, socket, subprocess, sys, tempfile, threading, time

BUILD = os.path.abspath(os.environ.get("BUILD_DIR", "build"))
RUNS = int(os.environ.get("RUNS", "10000"))
DELAY_MS = int(os.environ.get("DELAY_MS", "2000"))
CLIENTS = int(os.environ.get("CLIENTS", "16"))
KEY = "bench-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
        self.conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data and data[:1] in b"{[" else data.decode())


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["Threads"])


def active_runs(port):
    status, text = Client(port).call("GET", "/metrics")
    for line in text.splitlines():
        if line.startswith("continuum_runs_active "):
            return int(float(line.split()[1]))
    return 0


def main():
    raise_fd_limit()
    work = tempfile.mkdtemp(prefix="continuum-w5-")
    script = os.path.join(work, "script.json")
    with open(script, "w") as f:
        json.dump({"scripts": {"default": {"steps": [{"content": "ok", "delay_ms": DELAY_MS}]}}}, f)
    mock_port, port = free_port(), free_port()
    logs = open(os.path.join(work, "logs.txt"), "w")
    mock = subprocess.Popen([f"{BUILD}/continuum-mock-model", "--script", script, "--listen", f"127.0.0.1:{mock_port}"],
                            stderr=logs, preexec_fn=raise_fd_limit)
    env = dict(os.environ, CONTINUUM_API_KEY=KEY, CONTINUUM_LOG_LEVEL="warn",
               OPENAI_BASE_URL=f"http://127.0.0.1:{mock_port}/v1")
    server = subprocess.Popen([f"{BUILD}/continuum", "serve", "--data", os.path.join(work, "data"),
                               "--listen", f"127.0.0.1:{port}"], env=env, stderr=logs, preexec_fn=raise_fd_limit)
    try:
        for _ in range(200):
            try:
                if Client(port).call("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        client = Client(port)
        client.call("POST", "/v1/agents", {"name": "slow", "model": {"model": "slow", "timeout_ms": 600000}})
        sessions = []
        for _ in range(RUNS):
            sessions.append(client.call("POST", "/v1/sessions", {"agent": "slow"})[1]["id"])
        rss_idle, threads_idle = proc_status(server.pid)

        peak = {"rss_mib": 0, "threads": 0, "active_runs": 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                rss, threads = proc_status(server.pid)
                peak["rss_mib"] = max(peak["rss_mib"], rss)
                peak["threads"] = max(peak["threads"], threads)
                peak["active_runs"] = max(peak["active_runs"], active_runs(port))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.time()

        def submit(chunk):
            c = Client(port)
            for session in chunk:
                status, _ = c.call("POST", f"/v1/sessions/{session}/runs", {"input": "hi"})
                assert status == 202, status

        chunks = [sessions[i::CLIENTS] for i in range(CLIENTS)]
        threads = [threading.Thread(target=submit, args=(chunk,)) for chunk in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        submit_s = time.time() - start
        while active_runs(port) > 0 and time.time() - start < 600:
            time.sleep(0.2)
        wall_s = time.time() - start
        stop.set()
        sampler.join()
        completed = sum(1 for s in sessions[:200]
                        if client.call("GET", f"/v1/sessions/{s}/runs")[1]["data"][0]["status"] == "completed")
        print(json.dumps({"workload": "W5", "runs": RUNS, "model_delay_ms": DELAY_MS,
                          "submit_s": round(submit_s, 2), "wall_s": round(wall_s, 2),
                          "peak_active_runs": peak["active_runs"], "peak_rss_mib": peak["rss_mib"],
                          "idle_rss_mib": rss_idle, "peak_threads": peak["threads"], "idle_threads": threads_idle,
                          "sampled_completed": f"{completed}/200"}))
    finally:
        for p in (server, mock):
            p.terminate()
        for p in (server, mock):
            p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
