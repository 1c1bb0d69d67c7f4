#!/usr/bin/env python3
"""The crash test: crash the system again and again while runs make tool calls, and
let an independent checker (the tool server, its own process) judge the result.

    CONTINUUM_BUILD_DIR=build CRASH_KILLS=50 CRASH_RUNS=24 python3 tests/integration/crash_test.py
    CONTINUUM_BUILD_DIR=build CRASH_TARGET=postgres CRASH_KILLS=8 python3 tests/integration/crash_test.py

CRASH_TARGET says what crashes:
  - `continuum` (the default): each crash is a `kill -9` of the Continuum server,
    which is then started again on the same data dir (and store);
  - `postgres`: the server runs with `--store` on a private PostgreSQL cluster
    (scripts/pg-cluster.sh, in a temp dir that is removed at the end), and each crash
    is `pg-cluster.sh restart DIR immediate` (a database crash). The Continuum server
    is never restarted: it has to ride through on its own (reads may answer 503 while
    the database is down; they are retried for up to UNAVAILABLE_WAIT_S), and it must
    still be the same live process at the end.

The runs are spread over CRASH_SESSIONS (default 2) sessions, so each session has a
queue of runs that execute one after the other, and each model reply takes
CRASH_MODEL_DELAY_MS (default 200): work stays in flight across many crashes (the
summary's kills_with_runs_unfinished says how many). Each run makes four tool calls —
two in parallel, then two single ones, each tool sleeping a random 20-80 ms — and then
answers with the tool results. All runs are submitted, then in a loop: sleep a random
50-400 ms, read the steps of a random subset of runs (those steps are acknowledged),
crash, wait until the server answers reads again and check that every acknowledged
step is still there, unchanged. After CRASH_KILLS crashes (default 50 for `continuum`,
8 for `postgres`) the runs are left to finish, and the checks are:
  - every run completed with the output derived independently from the checker's
    deterministic tool results;
  - every idempotency key was applied exactly once, never with different arguments;
  - every tool_call step's idempotency_key is f"{run_id}:{seq}";
  - the checker's applied effects == the tool_call steps in all journals (same keys).
Prints a one-line JSON summary (with the "target"); exits non-zero on failure.
CRASH_SEED fixes the randomness (the seed is printed either way).
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (REPO_DIR, Client, ContinuumServer, MockModel, ToolServer, binaries_present,  # noqa: E402
                     fast_retry, model_spec, result_for, step_arguments)

TOOL_NAMES = ["alpha", "beta", "gamma", "delta"]
TOOL_PARAMETERS = {"type": "object",
                   "properties": {"run": {"type": "string"}, "part": {"type": "integer"}},
                   "required": ["run", "part"], "additionalProperties": False}
FINAL_PREFIX = "done {input}: "
PG_CLUSTER_SH = os.path.join(REPO_DIR, "scripts", "pg-cluster.sh")
UNAVAILABLE_WAIT_S = 60  # how long the server may answer reads with 503 after a database crash


def call(name, part):
    return {"name": name, "arguments": {"run": "{{input}}", "part": part}}


def scripts(model_delay_ms):
    """The mock model's script; each reply takes `model_delay_ms`, which keeps runs
    in flight across more kills."""
    steps = [
        {"tool_calls": [call("alpha", 1), call("beta", 2)]},  # two calls in parallel
        {"tool_calls": [call("gamma", 3)]},
        {"tool_calls": [call("delta", 4)]},
        {"content": "done {{input}}: {{tool_results}}"},
    ]
    for step in steps:
        step["delay_ms"] = model_delay_ms
    return {"crash": {"steps": steps}}


def agent_definition(tools, mock, name="crash"):
    """The agent: the four HTTP tools on the checker (`tools`, a ToolServer) and the
    "crash" script on `mock`, all with fast retries."""
    tool_specs = [{"type": "http", "name": tool, "description": f"crash test tool {tool}",
                   "parameters": TOOL_PARAMETERS, "url": tools.url(tool),
                   "retry": fast_retry(max_attempts=20)} for tool in TOOL_NAMES]
    return {"name": name, "model": model_spec(mock, "crash", retry=fast_retry(20)),
            "instructions": "Call the tools, then report.", "tools": tool_specs,
            "limits": {"max_steps": 16}}


def expected_results(run_input):
    """The results the checker computes for one run, in script order."""
    return [result_for(name, {"run": run_input, "part": part})
            for part, name in enumerate(TOOL_NAMES, start=1)]


def output_matches(output, run_input):
    """The final answer joins the results in item order; the parallel pair may be either way round."""
    prefix = FINAL_PREFIX.format(input=run_input)
    if not isinstance(output, str) or not output.startswith(prefix):
        return False
    parts = output[len(prefix):].split("; ")
    want = expected_results(run_input)
    return len(parts) == 4 and sorted(parts[:2]) == sorted(want[:2]) and parts[2:] == want[2:]


# --- the checks (module-level so other tests, e.g. multinode_test, reuse them) ----------
# Each reports problems through `fail(message)`.


def check_sessions(client, session_inputs, fail):
    """Each session's runs executed one at a time, in submission order
    (`session_inputs`: session id -> inputs in submission order)."""
    for session, inputs in session_inputs.items():
        items = client.items(session)
        users = [i["message"]["content"] for i in items if i["message"]["role"] == "user"]
        if users != inputs:
            fail(f"session {session} user messages {users} != submitted inputs {inputs}")
        finals = [i["message"]["content"] for i in items
                  if i["message"]["role"] == "assistant" and not i["message"].get("tool_calls")]
        if len(finals) != len(inputs) or not all(output_matches(f, x) for f, x in zip(finals, inputs)):
            fail(f"session {session} final answers do not follow its inputs in order: {finals}")


def check_journals(journals, fail):
    """Every journal (run id -> steps) is contiguous, holds 4 model and 4 tool calls and ends
    with one run_completed; each tool_call step has the key f"{run_id}:{seq}" and the
    checker's result."""
    for run_id, steps in journals.items():
        seqs = [s["seq"] for s in steps]
        if not seqs or seqs != list(range(seqs[0], seqs[0] + len(seqs))):
            fail(f"run {run_id} journal seqs are not contiguous: {seqs}")
        kinds = [s["kind"] for s in steps]
        if kinds.count("model_call") != 4 or kinds.count("tool_call") != 4:
            fail(f"run {run_id} has {kinds.count('model_call')} model calls and "
                 f"{kinds.count('tool_call')} tool calls, expected 4 and 4: {kinds}")
        if sum(k in ("run_completed", "run_failed", "run_cancelled") for k in kinds) != 1 or \
                kinds[-1] != "run_completed":
            fail(f"run {run_id} does not end with exactly one run_completed: {kinds}")
        for step in steps:
            if step["kind"] != "tool_call":
                continue
            payload = step["payload"]
            if payload["idempotency_key"] != f"{run_id}:{step['seq']}":
                fail(f"run {run_id} step {step['seq']} has idempotency_key {payload['idempotency_key']}")
            if payload["is_error"]:
                fail(f"run {run_id} step {step['seq']} is an error: {payload['output']}")
            elif payload["output"] != result_for(payload["name"], step_arguments(step)):
                fail(f"run {run_id} step {step['seq']} output {payload['output']!r} is not the "
                     f"checker's result")


def check_ledger(stats, ledger, journals, tool_step_seen_at, expected_tool_call_steps, fail):
    """Judges the checker's `stats` and `ledger` (ToolServer.stats(), .ledger()) against the
    journals: every key applied exactly once with the same arguments, no delivery of a key
    after its tool_call step was seen committed (`tool_step_seen_at`: key -> Unix time),
    applied effects == tool_call steps == `expected_tool_call_steps`. Returns the counts."""
    step_keys = {s["payload"]["idempotency_key"]: (run_id, s) for run_id, steps in journals.items()
                 for s in steps if s["kind"] == "tool_call"}
    for key, record in ledger.items():
        if record["applied"] != 1:
            fail(f"key {key} applied {record['applied']} times")
        if record["mismatched"]:
            fail(f"key {key} was delivered with different arguments: {record}")
        if key in step_keys and step_keys[key][1]["payload"]["output"] != record["result"]:
            fail(f"key {key}: journal output differs from the checker's stored result")
        # A completed effect is never executed again: no delivery may arrive after
        # its result was seen committed (same host clock for both processes).
        seen_at = tool_step_seen_at.get(key)
        late = [t for t in record.get("received_at", []) if seen_at is not None and t > seen_at]
        if late:
            fail(f"key {key} was delivered {len(late)} time(s) after its tool_call step was "
                 f"committed and seen (re-execution of a completed effect)")
    missing = sorted(set(step_keys) - set(ledger))
    extra = sorted(set(ledger) - set(step_keys))
    if missing:
        fail(f"tool_call steps the checker never applied: {missing[:10]}")
    if extra:
        fail(f"effects applied by the checker but not in any journal: {extra[:10]}")
    for name in ("mismatches", "multiply_applied", "header_mismatches"):
        if stats[name]:
            fail(f"checker reports {name}: {stats[name][:10]}")
    if stats["unkeyed"]:
        fail(f"{stats['unkeyed']} deliveries came without an Idempotency-Key")
    if stats["applied"] != len(step_keys):
        fail(f"checker applied {stats['applied']} effects, journals hold {len(step_keys)} tool_call steps")
    if len(step_keys) != expected_tool_call_steps:
        fail(f"expected {expected_tool_call_steps} tool_call steps, found {len(step_keys)}")
    return {"deliveries": stats["deliveries"], "duplicate_deliveries": stats["duplicates"],
            "applied": stats["applied"], "tool_call_steps": len(step_keys)}


class CrashFailure(AssertionError):
    pass


# --- what crashes ---------------------------------------------------------------


class ContinuumCrashes:
    """CRASH_TARGET=continuum: kill -9 the Continuum server, start it again."""

    name = "continuum"
    default_kills = 50
    unavailable_wait_s = 0  # the restarted server waits for /readyz: no 503 is expected

    def start(self, work_dir):
        """Returns the server's --store (None: the harness's default)."""
        return None

    def crash(self, server):
        server.kill9()
        server.start()

    def check_server_survived(self, test):
        pass  # killed on purpose

    def log_tails(self):
        return []

    def stop(self):
        pass


class PostgresCrashes:
    """CRASH_TARGET=postgres: a private PostgreSQL cluster is the store; each crash
    restarts it with `-m immediate` and the Continuum server must ride through."""

    name = "postgres"
    default_kills = 8
    unavailable_wait_s = UNAVAILABLE_WAIT_S

    def __init__(self):
        self.temp_dir = None
        self.cluster_dir = None
        self.work_dir = None

    def pg_cluster(self, command, *args):
        """Runs `pg-cluster.sh command DIR args...`; returns what it printed."""
        done = subprocess.run(["bash", PG_CLUSTER_SH, command, self.cluster_dir, *args],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise CrashFailure(f"pg-cluster.sh {command} exited with {done.returncode}: {done.stderr[-4000:]}")
        return done.stdout.strip()

    def start(self, work_dir):
        self.work_dir = work_dir
        # As root, pg-cluster.sh runs PostgreSQL as `postgres`, which must reach the cluster dir.
        self.temp_dir = tempfile.mkdtemp(prefix="continuum-crash-pg-")
        os.chmod(self.temp_dir, 0o755)
        self.cluster_dir = os.path.join(self.temp_dir, "cluster")
        return self.pg_cluster("start")

    def crash(self, server):
        self.pg_cluster("restart", "immediate")

    def check_server_survived(self, test):
        if not test.server.alive() or test.server.starts != 1:
            code = test.server.proc.returncode if test.server.proc else None
            test.fail(f"the Continuum server did not ride through the database crashes: alive="
                      f"{test.server.alive()} starts={test.server.starts} exit code={code}")

    def server_log(self):
        return os.path.join(self.cluster_dir, "server.log")

    def log_tails(self):
        if self.temp_dir is None:
            return []
        try:
            with open(self.server_log(), "rb") as f:
                return [("postgresql server.log", f.read()[-8000:].decode("utf-8", errors="replace"))]
        except OSError:
            return []

    def stop(self):
        """Stops the cluster and removes it; its log is copied into the work dir."""
        if self.temp_dir is None:
            return
        try:
            self.pg_cluster("stop")
        finally:
            try:
                shutil.copyfile(self.server_log(), os.path.join(self.work_dir, "postgresql.server.log"))
            except OSError:
                pass
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


TARGETS = {target.name: target for target in (ContinuumCrashes, PostgresCrashes)}


def make_target(name):
    if name not in TARGETS:
        raise ValueError(f"CRASH_TARGET={name!r}: expected one of {sorted(TARGETS)}")
    return TARGETS[name]()


class ReadRetryingClient(Client):
    """A Client whose GETs answered 503 are retried for up to `unavailable_wait_s`
    (the store may be down for a moment); `on_unavailable()` is called for each."""

    def __init__(self, base_url, api_key, unavailable_wait_s, on_unavailable):
        super().__init__(base_url, api_key)
        self.unavailable_wait_s = unavailable_wait_s
        self.on_unavailable = on_unavailable

    def request(self, method, path, **kw):
        deadline = time.monotonic() + self.unavailable_wait_s
        while True:
            resp = super().request(method, path, **kw)
            if method != "GET" or resp.status != 503 or time.monotonic() >= deadline:
                return resp
            self.on_unavailable()
            time.sleep(0.05)


class CrashTest:
    def __init__(self, target, kills, runs, sessions, model_delay_ms, seed, work_dir):
        self.target = target
        self.model_delay_ms = model_delay_ms
        self.kills_target = kills
        self.run_count = runs
        self.session_count = max(1, sessions)
        self.seed = seed
        self.rng = random.Random(seed)
        self.work_dir = work_dir
        self.failures = []
        self.acknowledged = {}  # run_id -> {seq: step}
        self.tool_step_seen_at = {}  # idempotency key -> when its committed tool_call step was first seen
        self.kills = 0
        self.kills_with_runs_unfinished = 0
        self.processes = []
        self.unavailable_reads = 0

    def fail(self, message):
        self.failures.append(message)
        if len(self.failures) <= 50:
            sys.stderr.write(f"crash_test: FAIL: {message}\n")

    # --- setup ---

    def start(self):
        store = self.target.start(self.work_dir)
        self.tools = ToolServer(self.work_dir, os.path.join(self.work_dir, "ledger.json"),
                                {"default": {"delay_ms": 20, "delay_ms_max": 80}})
        self.processes.append(self.tools)
        self.tools.start()
        self.mock = MockModel(self.work_dir, scripts(self.model_delay_ms))
        self.processes.append(self.mock)
        self.mock.start()
        api_key = "crash-" + "".join(self.rng.choice("0123456789abcdef") for _ in range(16))
        self.server = ContinuumServer(self.work_dir, os.path.join(self.work_dir, "data"), api_key,
                                      self.mock.base_url, store=store)
        self.processes.append(self.server)
        self.server.start()
        self.connect()

    def connect(self):
        """A fresh client (after a restart the server's port may have changed)."""
        self.client = ReadRetryingClient(self.server.base_url, self.server.api_key, self.target.unavailable_wait_s,
                                         self.count_unavailable_read)

    def count_unavailable_read(self):
        self.unavailable_reads += 1

    def stop(self):
        for process in reversed(self.processes):
            try:
                process.stop(timeout_s=15)
            except Exception as error:
                sys.stderr.write(f"crash_test: stopping {process.name}: {error}\n")
        try:
            self.target.stop()
        except Exception as error:
            sys.stderr.write(f"crash_test: stopping the {self.target.name} target: {error}\n")

    def dump_logs(self):
        tails = [(p.name + " stderr", p.log_text(8000)) for p in self.processes] + self.target.log_tails()
        for name, text in tails:
            sys.stderr.write(f"\n----- {name} (tail) -----\n{text}\n")

    def submit(self):
        self.client.create_agent(agent_definition(self.tools, self.mock))
        # Runs are spread over a few sessions: a session runs its runs one after the
        # other, so work stays in flight across many kills, and queues get recovered too.
        self.sessions = [self.client.create_session("crash", {"index": i})["id"]
                         for i in range(min(self.session_count, self.run_count))]
        self.inputs = {}  # run_id -> input
        self.session_inputs = {s: [] for s in self.sessions}  # in submission order
        for i in range(self.run_count):
            run_input = f"run-{i:03d}"
            session = self.sessions[i % len(self.sessions)]
            run = self.client.start_run(session, run_input, wait=False)
            self.inputs[run["id"]] = run_input
            self.session_inputs[session].append(run_input)

    # --- the crash loop ---

    def acknowledge(self, run_id):
        known = self.acknowledged.setdefault(run_id, {})
        steps = self.client.steps(run_id)
        seen_at = time.time()  # these steps were committed before this moment
        for step in steps:
            previous = known.get(step["seq"])
            if previous is None:
                known[step["seq"]] = step
                if step["kind"] == "tool_call":
                    self.tool_step_seen_at[step["payload"]["idempotency_key"]] = seen_at
            elif previous != step:
                self.fail(f"run {run_id} step {step['seq']} changed: was {previous}, now {step}")

    def verify_acknowledged(self):
        for run_id, known in self.acknowledged.items():
            now = {s["seq"]: s for s in self.client.steps(run_id)}
            for seq, step in known.items():
                if seq not in now:
                    self.fail(f"acknowledged step lost after kill {self.kills}: run {run_id} seq {seq} "
                              f"({step['kind']})")
                elif now[seq] != step:
                    self.fail(f"acknowledged step changed after kill {self.kills}: run {run_id} seq {seq}: "
                              f"was {step}, now {now[seq]}")

    def unfinished(self):
        runs = [r for s in self.sessions for r in self.client.ok("GET", f"/v1/sessions/{s}/runs")["data"]]
        return [r["id"] for r in runs if r["status"] not in ("completed", "failed", "cancelled")]

    def wait_for_reads(self):
        """Waits until the server answers reads again: the client retries 503s for a
        bounded time, any other answer but 200 fails."""
        self.client.ok("GET", f"/v1/sessions/{self.sessions[0]}/runs", expect=200)

    def crash_loop(self):
        run_ids = list(self.inputs)
        while self.kills < self.kills_target:
            time.sleep(self.rng.uniform(0.05, 0.4))
            for run_id in self.rng.sample(run_ids, self.rng.randint(1, len(run_ids))):
                self.acknowledge(run_id)
            if self.unfinished():
                self.kills_with_runs_unfinished += 1
            self.target.crash(self.server)
            self.kills += 1
            self.connect()
            self.wait_for_reads()
            self.verify_acknowledged()

    # --- the verdict ---

    def finish_and_check(self):
        journals = {}
        for run_id, run_input in self.inputs.items():
            run = self.client.wait_run(run_id, timeout_s=600)
            if run["status"] != "completed":
                self.fail(f"run {run_id} ended {run['status']}: {run.get('error')}")
            elif not output_matches(run["output"], run_input):
                self.fail(f"run {run_id} output {run['output']!r} does not match the checker's results")
            journals[run_id] = self.client.steps(run_id)
        self.verify_acknowledged()
        self.check_sessions()
        self.check_journals(journals)
        summary = self.check_ledger(journals)
        self.target.check_server_survived(self)
        return summary

    def check_sessions(self):
        """Each session's runs executed one at a time, in submission order."""
        check_sessions(self.client, self.session_inputs, self.fail)

    def check_journals(self, journals):
        check_journals(journals, self.fail)

    def check_ledger(self, journals):
        counts = check_ledger(self.tools.stats(), self.tools.ledger(), journals, self.tool_step_seen_at,
                              4 * self.run_count, self.fail)
        return {"target": self.target.name, "kills": self.kills, "runs": self.run_count,
                "deliveries": counts["deliveries"],
                "duplicate_deliveries": counts["duplicate_deliveries"], "applied": counts["applied"],
                "tool_call_steps": counts["tool_call_steps"],
                "acknowledged_steps": sum(len(v) for v in self.acknowledged.values()),
                "kills_with_runs_unfinished": self.kills_with_runs_unfinished,
                "unavailable_reads": self.unavailable_reads,
                "seed": self.seed}


def run_crash_test(kills=None, runs=None, sessions=None, seed=None, target=None):
    """Runs the whole test; returns (summary dict, list of failures)."""
    target = make_target(target or os.environ.get("CRASH_TARGET") or "continuum")
    kills = int(os.environ.get("CRASH_KILLS", target.default_kills)) if kills is None else kills
    runs = int(os.environ.get("CRASH_RUNS", 24)) if runs is None else runs
    sessions = int(os.environ.get("CRASH_SESSIONS", 2)) if sessions is None else sessions
    model_delay_ms = int(os.environ.get("CRASH_MODEL_DELAY_MS", 200))
    if seed is None:
        seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
    sys.stderr.write(f"crash_test: target={target.name} kills={kills} runs={runs} sessions={sessions} "
                     f"model_delay_ms={model_delay_ms} seed={seed}\n")
    work_dir = tempfile.mkdtemp(prefix="continuum-crash-")
    test = CrashTest(target, kills, runs, sessions, model_delay_ms, seed, work_dir)
    summary = {"target": target.name, "kills": 0, "runs": runs, "seed": seed}
    try:
        test.start()
        test.submit()
        test.crash_loop()
        summary = test.finish_and_check()
    except Exception as error:
        test.fail(f"{type(error).__name__}: {error}")
    finally:
        if test.failures:
            test.dump_logs()
        test.stop()
        if test.failures or os.environ.get("CONTINUUM_TEST_KEEP"):
            sys.stderr.write(f"crash_test: kept {work_dir}\n")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    summary["kills"] = test.kills
    summary["failures"] = len(test.failures)
    summary["ok"] = not test.failures
    return summary, test.failures


class CrashTestCase(unittest.TestCase):
    def test_crash_loop_loses_nothing_and_applies_every_effect_once(self):
        if not binaries_present():
            self.skipTest("binaries not built")
        summary, failures = run_crash_test()
        print(json.dumps(summary))
        self.assertEqual(failures, [], json.dumps(summary))


def main():
    if not binaries_present():
        sys.stderr.write("crash_test: binaries not built (set CONTINUUM_BUILD_DIR)\n")
        return 2
    summary, failures = run_crash_test()
    print(json.dumps(summary), flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
