#!/usr/bin/env python3
"""The crash test: `kill -9` the server again and again while runs make tool calls,
and let an independent checker (the tool server, its own process) judge the result.

    CONTINUUM_BUILD_DIR=build CRASH_KILLS=50 CRASH_RUNS=24 python3 tests/integration/crash_test.py

The runs are spread over CRASH_SESSIONS (default 2) sessions, so each session has a
queue of runs that execute one after the other, and each model reply takes
CRASH_MODEL_DELAY_MS (default 200): work stays in flight across many kills (the
summary's kills_with_runs_unfinished says how many). Each run makes four tool calls — two in parallel, then two single
ones, each tool sleeping a random 20-80 ms — and then answers with the tool results.
All runs are submitted, then in a loop: sleep a random 50-400 ms, read the steps of a
random subset of runs (those steps are acknowledged), kill -9 the server, restart it
on the same data dir and check that every acknowledged step is still there, unchanged.
After CRASH_KILLS kills the runs are left to finish, and the checks are:
  - every run completed with the output derived independently from the checker's
    deterministic tool results;
  - every idempotency key was applied exactly once, never with different arguments;
  - every tool_call step's idempotency_key is f"{run_id}:{seq}";
  - the checker's applied effects == the tool_call steps in all journals (same keys).
Prints a one-line JSON summary; exits non-zero on failure. CRASH_SEED fixes the
randomness (the seed is printed either way).
"""

import json
import os
import random
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (ContinuumServer, MockModel, ToolServer, binaries_present, fast_retry,  # noqa: E402
                     model_spec, result_for, step_arguments)

TOOL_NAMES = ["alpha", "beta", "gamma", "delta"]
TOOL_PARAMETERS = {"type": "object",
                   "properties": {"run": {"type": "string"}, "part": {"type": "integer"}},
                   "required": ["run", "part"], "additionalProperties": False}
FINAL_PREFIX = "done {input}: "


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


class CrashFailure(AssertionError):
    pass


class CrashTest:
    def __init__(self, kills, runs, sessions, model_delay_ms, seed, work_dir):
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

    def fail(self, message):
        self.failures.append(message)
        if len(self.failures) <= 50:
            sys.stderr.write(f"crash_test: FAIL: {message}\n")

    # --- setup ---

    def start(self):
        self.tools = ToolServer(self.work_dir, os.path.join(self.work_dir, "ledger.json"),
                                {"default": {"delay_ms": 20, "delay_ms_max": 80}})
        self.processes.append(self.tools)
        self.tools.start()
        self.mock = MockModel(self.work_dir, scripts(self.model_delay_ms))
        self.processes.append(self.mock)
        self.mock.start()
        api_key = "crash-" + "".join(self.rng.choice("0123456789abcdef") for _ in range(16))
        self.server = ContinuumServer(self.work_dir, os.path.join(self.work_dir, "data"), api_key,
                                      self.mock.base_url)
        self.processes.append(self.server)
        self.server.start()
        self.client = self.server.client()

    def stop(self):
        for process in reversed(self.processes):
            try:
                process.stop(timeout_s=15)
            except Exception as error:
                sys.stderr.write(f"crash_test: stopping {process.name}: {error}\n")

    def submit(self):
        tools = [{"type": "http", "name": name, "description": f"crash test tool {name}",
                  "parameters": TOOL_PARAMETERS, "url": self.tools.url(name),
                  "retry": fast_retry(max_attempts=20)} for name in TOOL_NAMES]
        self.client.create_agent({"name": "crash", "model": model_spec(self.mock, "crash", retry=fast_retry(20)),
                                  "instructions": "Call the tools, then report.", "tools": tools,
                                  "limits": {"max_steps": 16}})
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

    # --- the kill loop ---

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

    def kill_loop(self):
        run_ids = list(self.inputs)
        while self.kills < self.kills_target:
            time.sleep(self.rng.uniform(0.05, 0.4))
            for run_id in self.rng.sample(run_ids, self.rng.randint(1, len(run_ids))):
                self.acknowledge(run_id)
            if self.unfinished():
                self.kills_with_runs_unfinished += 1
            self.server.kill9()
            self.kills += 1
            self.server.start()
            self.client = self.server.client()
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
        return self.check_ledger(journals)

    def check_sessions(self):
        """Each session's runs executed one at a time, in submission order."""
        for session, inputs in self.session_inputs.items():
            items = self.client.items(session)
            users = [i["message"]["content"] for i in items if i["message"]["role"] == "user"]
            if users != inputs:
                self.fail(f"session {session} user messages {users} != submitted inputs {inputs}")
            finals = [i["message"]["content"] for i in items
                      if i["message"]["role"] == "assistant" and not i["message"].get("tool_calls")]
            if len(finals) != len(inputs) or not all(output_matches(f, x) for f, x in zip(finals, inputs)):
                self.fail(f"session {session} final answers do not follow its inputs in order: {finals}")

    def check_journals(self, journals):
        for run_id, steps in journals.items():
            seqs = [s["seq"] for s in steps]
            if not seqs or seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                self.fail(f"run {run_id} journal seqs are not contiguous: {seqs}")
            kinds = [s["kind"] for s in steps]
            if kinds.count("model_call") != 4 or kinds.count("tool_call") != 4:
                self.fail(f"run {run_id} has {kinds.count('model_call')} model calls and "
                          f"{kinds.count('tool_call')} tool calls, expected 4 and 4: {kinds}")
            if sum(k in ("run_completed", "run_failed", "run_cancelled") for k in kinds) != 1 or \
                    kinds[-1] != "run_completed":
                self.fail(f"run {run_id} does not end with exactly one run_completed: {kinds}")
            for step in steps:
                if step["kind"] != "tool_call":
                    continue
                payload = step["payload"]
                if payload["idempotency_key"] != f"{run_id}:{step['seq']}":
                    self.fail(f"run {run_id} step {step['seq']} has idempotency_key {payload['idempotency_key']}")
                if payload["is_error"]:
                    self.fail(f"run {run_id} step {step['seq']} is an error: {payload['output']}")
                elif payload["output"] != result_for(payload["name"], step_arguments(step)):
                    self.fail(f"run {run_id} step {step['seq']} output {payload['output']!r} is not the "
                              f"checker's result")

    def check_ledger(self, journals):
        stats = self.tools.stats()
        ledger = self.tools.ledger()
        step_keys = {s["payload"]["idempotency_key"]: (run_id, s) for run_id, steps in journals.items()
                     for s in steps if s["kind"] == "tool_call"}
        for key, record in ledger.items():
            if record["applied"] != 1:
                self.fail(f"key {key} applied {record['applied']} times")
            if record["mismatched"]:
                self.fail(f"key {key} was delivered with different arguments: {record}")
            if key in step_keys and step_keys[key][1]["payload"]["output"] != record["result"]:
                self.fail(f"key {key}: journal output differs from the checker's stored result")
            # A completed effect is never executed again: no delivery may arrive after
            # its result was seen committed (same host clock for both processes).
            seen_at = self.tool_step_seen_at.get(key)
            late = [t for t in record.get("received_at", []) if seen_at is not None and t > seen_at]
            if late:
                self.fail(f"key {key} was delivered {len(late)} time(s) after its tool_call step was "
                          f"committed and seen (re-execution of a completed effect)")
        missing = sorted(set(step_keys) - set(ledger))
        extra = sorted(set(ledger) - set(step_keys))
        if missing:
            self.fail(f"tool_call steps the checker never applied: {missing[:10]}")
        if extra:
            self.fail(f"effects applied by the checker but not in any journal: {extra[:10]}")
        for name in ("mismatches", "multiply_applied", "header_mismatches"):
            if stats[name]:
                self.fail(f"checker reports {name}: {stats[name][:10]}")
        if stats["unkeyed"]:
            self.fail(f"{stats['unkeyed']} deliveries came without an Idempotency-Key")
        if stats["applied"] != len(step_keys):
            self.fail(f"checker applied {stats['applied']} effects, journals hold {len(step_keys)} tool_call steps")
        if len(step_keys) != 4 * self.run_count:
            self.fail(f"expected {4 * self.run_count} tool_call steps, found {len(step_keys)}")
        return {"kills": self.kills, "runs": self.run_count, "deliveries": stats["deliveries"],
                "duplicate_deliveries": stats["duplicates"], "applied": stats["applied"],
                "tool_call_steps": len(step_keys),
                "acknowledged_steps": sum(len(v) for v in self.acknowledged.values()),
                "kills_with_runs_unfinished": self.kills_with_runs_unfinished,
                "seed": self.seed}


def run_crash_test(kills=None, runs=None, sessions=None, seed=None):
    """Runs the whole test; returns (summary dict, list of failures)."""
    kills = int(os.environ.get("CRASH_KILLS", 50)) if kills is None else kills
    runs = int(os.environ.get("CRASH_RUNS", 24)) if runs is None else runs
    sessions = int(os.environ.get("CRASH_SESSIONS", 2)) if sessions is None else sessions
    model_delay_ms = int(os.environ.get("CRASH_MODEL_DELAY_MS", 200))
    if seed is None:
        seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
    sys.stderr.write(f"crash_test: kills={kills} runs={runs} sessions={sessions} "
                     f"model_delay_ms={model_delay_ms} seed={seed}\n")
    work_dir = tempfile.mkdtemp(prefix="continuum-crash-")
    test = CrashTest(kills, runs, sessions, model_delay_ms, seed, work_dir)
    summary = {"kills": 0, "runs": runs, "seed": seed}
    try:
        test.start()
        test.submit()
        test.kill_loop()
        summary = test.finish_and_check()
    except Exception as error:
        test.fail(f"{type(error).__name__}: {error}")
    finally:
        if test.failures:
            for process in test.processes:
                sys.stderr.write(f"\n----- {process.name} stderr (tail) -----\n{process.log_text(8000)}\n")
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
    def test_kill_9_loop_loses_nothing_and_applies_every_effect_once(self):
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
