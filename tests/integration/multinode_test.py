#!/usr/bin/env python3
"""Several `continuum serve` nodes sharing one PostgreSQL database (multi-node mode).

    CONTINUUM_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh url DIR) CONTINUUM_BUILD_DIR=build \\
        python3 -m unittest -v multinode_test        (from tests/integration)

Each test gets a fresh database on the cluster at CONTINUUM_TEST_POSTGRES_URL (skipped
without one), one shared key-encryption key file (nodes sharing a database must share
their KEKs), its own mock model and tool server (the independent checker of
crash_test.py: its ledger says which idempotency keys were applied, how often and when),
and short lease settings (CONTINUUM_LEASE_TTL_MS=3000, CONTINUUM_CLUSTER_POLL_MS=200).
The store is also read directly with psql: steps.lease_epoch, session_leases, runs.

  test_three_nodes_survive_kill9_of_any_node
      3 nodes, the crash test's agent (4 HTTP tool calls per run, 150 ms model replies),
      100 sessions x 3 runs submitted round-robin across the nodes (over 200 runs still
      unfinished at the first kill). Then MULTINODE_KILLS (default 3) times: `kill -9` a
      node (each node in turn) that holds sessions with unfinished runs, leave it dead
      for lease TTL + 1.5 s while checking that its sessions are claimed by the
      survivors and make progress there ("failover_ms": from the kill to the first step
      committed in a session it held, under a newer epoch), and that GET /v1/cluster on
      a survivor shows it dead and owning nothing; restart it on its data dir. Then
      every run must complete with the checker's output, journals must be contiguous
      with 4 model and 4 tool calls and keys f"{run_id}:{seq}", every key applied
      exactly once and never delivered after its step was seen committed, lease epochs
      non-decreasing along each journal in commit order, and in seq order except between
      parallel tool results ("stale_epoch_appends" == 0; see check_epochs), every node
      must answer the same run views and replay the same SSE streams, and a run
      executing on one node streams live, gap-free, from another.
  test_paused_node_is_fenced_and_steps_down
      2 nodes; 20 runs with slow tools (2 s) in flight on A (all their first tool calls
      held by the checker); A is SIGSTOPped for 2 x TTL, B claims all A's sessions, A is
      SIGCONTed. Every run completes exactly once (ledger, no late delivery), nothing A
      wrote after the pause was committed (every step after B's claim carries B's
      epoch), A logs that it stepped down, stays healthy and runs new work.
  test_resumed_node_sends_no_effect_after_its_lease_moved
      As above, but A is paused while its tool calls wait for a retry (503 with
      Retry-After: 2): once resumed, A must not send calls whose results B committed
      meanwhile (a late delivery of a completed effect).
  test_cancel_from_another_node
      A run with a slow tool executing on A is cancelled through B: it ends cancelled,
      seen from both nodes, by A under A's epoch.
  test_approval_decided_through_another_node
      A policy put through B (checked in force on A with POST /v1/policy/test) holds
      refunds over 1000 for approval; alice's run on A waits on one; the approval is
      listed pending on B and approved there by an approver (paula). A, polling every
      CONTINUUM_APPROVAL_POLL_MS, learns of it and completes the run under its own
      epoch: one delivery of the call's key with the approved arguments, and in commit
      order approval_requested, approval_decided (approved by paula), tool_call.
  test_approval_decided_through_another_node_after_kill9
      As above, but A is killed -9 while the run waits and the approval is decided
      through B at once: B claims the session when A's lease expires, sees the decision
      and completes the run under its newer epoch, with exactly one delivery.

Each scenario prints a one-line JSON summary to stderr. MULTINODE_SEED fixes the
randomness (kill order); MULTINODE_SESSIONS, MULTINODE_RUNS_PER_SESSION,
MULTINODE_KILLS size the first test.
"""

import collections
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Client, ContinuumServer, IntegrationTest, MockModel, ToolServer, binary,  # noqa: E402
                     http_tool, model_spec, new_postgres_database, read_sse, result_for, tool_steps,
                     WaitTimeout, wait_until)
from crash_test import (agent_definition, check_journals, check_ledger, check_sessions,  # noqa: E402
                        output_matches, scripts)
from test_governance import LARGE_REFUNDS, issue_key, sha256_hex  # noqa: E402

LEASE_TTL_MS = 3000
CLUSTER_POLL_MS = 200
MODEL_DELAY_MS = 150
PAUSE_TOOL_DELAY_MS = 2000  # the paused-node test's tool latency: runs stay in flight across the pause
DB_NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"
STEP_DOWN_LOGS = ("lease lost; run stops here", "run moved to another node")
UNFINISHED = "('queued', 'running')"
APPROVAL_POLL_MS = 200  # how often a waiting run looks for a decision made on another node
REFUND_ARGUMENTS = {"amount": 2500, "currency": "EUR", "note": "refund order 1234"}


def psql(url, sql):
    """Runs one statement; returns the rows as lists of strings."""
    done = subprocess.run(["psql", "-qtAX", "-v", "ON_ERROR_STOP=1", "-F", "\t", url, "-c", sql],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"psql failed ({done.returncode}) on {sql!r}: {done.stderr[-2000:]}")
    return [line.split("\t") for line in done.stdout.splitlines() if line]


def sql_text(value):
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values):
    return "(" + ", ".join(sql_text(v) for v in values) + ")" if values else "(NULL)"


StoredStep = collections.namedtuple("StoredStep", "run_id seq epoch created_at_ms kind xid")


def now_ms():
    return int(time.time() * 1000)


class CommitWatcher(threading.Thread):
    """Polls the store for committed tool_call steps and remembers when each was first
    seen (Unix time taken after the query returned: the step was committed before).
    The checker must receive no delivery of a key after that moment."""

    def __init__(self, db, interval_s=0.3):
        super().__init__(daemon=True, name="commit-watcher")
        self.db = db
        self.interval_s = interval_s
        self.seen_at = {}  # idempotency key -> Unix time
        self.errors = []
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.poll()
            self._stop_event.wait(self.interval_s)

    def poll(self):
        try:
            rows = psql(self.db, "SELECT run_id, seq FROM steps WHERE kind = 'tool_call'")
        except (AssertionError, subprocess.TimeoutExpired) as error:
            self.errors.append(str(error))
            return
        seen = time.time()
        for run_id, seq in rows:
            self.seen_at.setdefault(f"{run_id}:{seq}", seen)

    def stop(self):
        self._stop_event.set()
        self.join(30)
        self.poll()


class MultiNodeTest(IntegrationTest):
    """Starts a mock model and a tool server; nodes are added by each test
    (add_node) on one fresh database with one shared key file."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.environ.get("CONTINUUM_TEST_POSTGRES_URL"):
            raise unittest.SkipTest("multi-node mode needs PostgreSQL: set CONTINUUM_TEST_POSTGRES_URL "
                                    "(scripts/test.sh does; or `scripts/pg-cluster.sh start DIR` and "
                                    "`scripts/pg-cluster.sh url DIR`)")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"continuum-{self._testMethodName[:40]}-")
        self.processes = []
        self.failures = []
        self.db = new_postgres_database()
        self.addCleanup(self._drop_database)  # runs after _cleanup (cleanups are LIFO)
        self.addCleanup(self._cleanup)
        self.api_key = "test-" + secrets.token_hex(12)
        self.key_file = os.path.join(self.tmp, "shared.key")
        subprocess.run([binary("continuum"), "keys", "new-kek", "--key-file", self.key_file], check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.mock = self.start_process(MockModel(self.tmp, scripts(MODEL_DELAY_MS)))
        # No state file: the checker never restarts here, and the ledger stays in memory.
        self.tools = self.start_process(ToolServer(self.tmp, None, {"default": {"delay_ms": 20, "delay_ms_max": 80}}))
        self.nodes = []

    def _drop_database(self):
        if self._failed() or os.environ.get("CONTINUUM_TEST_KEEP"):
            sys.stderr.write(f"kept database {self.db}\n")
            return
        base = os.environ["CONTINUUM_TEST_POSTGRES_URL"]
        subprocess.run(["psql", "-qX", base, "-c", f"DROP DATABASE IF EXISTS {self.db.rsplit('/', 1)[1]}"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)

    # --- nodes ---

    def add_node(self, extra_env=None):
        index = len(self.nodes)
        node_dir = os.path.join(self.tmp, f"node{index}")
        os.makedirs(node_dir)
        env = {"CONTINUUM_LEASE_TTL_MS": str(LEASE_TTL_MS), "CONTINUUM_CLUSTER_POLL_MS": str(CLUSTER_POLL_MS),
               "CONTINUUM_ENCRYPTION_KEYS": f"file:{self.key_file}", **(extra_env or {})}
        node = ContinuumServer(node_dir, os.path.join(node_dir, "data"), self.api_key, self.mock.base_url,
                               env=env, store=self.db)
        node.name = f"continuum-node{index}"
        self.start_process(node)
        with open(os.path.join(node.data_dir, "node-id"), encoding="utf-8") as f:
            node.node_id = f.read().strip()
        self.assertTrue(node.node_id, "the node wrote its id into <data_dir>/node-id")
        self.nodes.append(node)
        return node

    def cluster_view(self, node):
        return node.client().ok("GET", "/v1/cluster", expect=200)

    def node_entry(self, view, node_id):
        return next((n for n in view["nodes"] if n["id"] == node_id), None)

    # --- the store, read directly ---

    def sql(self, statement):
        return psql(self.db, statement)

    def live_work_sessions(self, node_id, sessions=None):
        """{session_id: epoch} this node holds a live lease of, with unfinished runs."""
        scope = f"AND l.session_id IN {sql_list(sessions)}" if sessions is not None else ""
        rows = self.sql(
            f"SELECT l.session_id, l.epoch FROM session_leases l WHERE l.node_id = {sql_text(node_id)} "
            f"AND l.expires_at_ms > {DB_NOW_MS} {scope} AND EXISTS (SELECT 1 FROM runs r WHERE "
            f"r.tenant_id = l.tenant_id AND r.session_id = l.session_id AND r.status IN {UNFINISHED})")
        return {session: int(epoch) for session, epoch in rows}

    def leases(self, sessions):
        """{session_id: (node_id, epoch, live)} of the given sessions."""
        rows = self.sql(f"SELECT session_id, node_id, epoch, (expires_at_ms > {DB_NOW_MS})::int "
                        f"FROM session_leases WHERE session_id IN {sql_list(sessions)}")
        return {s: (n, int(e), live == "1") for s, n, e, live in rows}

    def unfinished_count(self):
        return int(self.sql(f"SELECT count(*) FROM runs WHERE status IN {UNFINISHED}")[0][0])

    def step_count(self):
        return int(self.sql("SELECT count(*) FROM steps")[0][0])

    def steps_in_store(self, run_ids=None):
        """Every step (or those of `run_ids`) as StoredStep, in (run, seq) order. `xid` is
        the inserting transaction (xmin): steps of one run committed later have larger ones
        (xids are assigned in order, and a fenced append holds the lease row until it
        commits, so an append made before a claim gets an xid before the claimant's)."""
        scope = f"WHERE run_id IN {sql_list(run_ids)} " if run_ids is not None else ""
        rows = self.sql(f"SELECT run_id, seq, lease_epoch, created_at_ms, kind, xmin::text::bigint FROM steps "
                        f"{scope}ORDER BY run_id, seq")
        return [StoredStep(r, int(s), int(e), int(c), k, int(x)) for r, s, e, c, k, x in rows]

    def check_epochs(self, steps):
        """Fencing, read from the journals. Returns (stale appends, unfenced appends).

        In commit order (xid) the epochs of a run never decrease: a decrease is an append
        made under a lease that had already moved on. In seq order they may decrease only
        between tool results: parallel results commit in completion order, so seq 4 may be
        committed by the old owner before it died and seq 3 by the new one.
        Every step but run_created (seq 0, written by whichever node took the request)
        must be fenced (epoch > 0)."""
        stale, unfenced, by_run = [], [], {}
        for step in steps:
            by_run.setdefault(step.run_id, []).append(step)
            if step.seq > 0 and step.epoch == 0:
                unfenced.append(step)
        for run_id, journal in by_run.items():
            committed = sorted(journal, key=lambda s: (s.xid, s.seq))
            for before, after in zip(committed, committed[1:]):
                if after.epoch < before.epoch:
                    stale.append((before, after, "commit order"))
            for before, after in zip(journal, journal[1:]):
                if after.epoch < before.epoch and not (before.kind == after.kind == "tool_call"):
                    stale.append((before, after, "seq order"))
        for before, after, order in stale[:20]:
            self.fail_later(f"stale-epoch append ({order}): run {after.run_id} seq {after.seq} ({after.kind}) "
                            f"has epoch {after.epoch} after seq {before.seq} ({before.kind}) at epoch {before.epoch} "
                            f"[xids {before.xid} -> {after.xid}]")
        for step in unfenced[:20]:
            self.fail_later(f"unfenced append: run {step.run_id} seq {step.seq} ({step.kind}) has lease_epoch 0")
        return len(stale), len(unfenced)

    def epoch_changes(self, steps):
        """(before, after) pairs of consecutive steps of a run, in commit order, where the
        fenced epoch changed (run_created's 0 aside): the run's session lease moved."""
        by_run, changes = {}, []
        for step in steps:
            by_run.setdefault(step.run_id, []).append(step)
        for journal in by_run.values():
            committed = sorted(journal, key=lambda s: (s.xid, s.seq))
            changes += [(b, a) for b, a in zip(committed, committed[1:]) if b.epoch and a.epoch != b.epoch]
        return changes

    # --- failures collected across a scenario ---

    def fail_later(self, message):
        self.failures.append(message)
        if len(self.failures) <= 60:
            sys.stderr.write(f"multinode_test: FAIL: {message}\n")

    def summarize(self, summary):
        summary["failures"] = len(self.failures)
        summary["ok"] = not self.failures
        sys.stderr.write(json.dumps(summary) + "\n")
        sys.stderr.flush()

    # --- runs ---

    def submit(self, pairs, inputs, session_inputs):
        """Starts one run per (node, session) pair, concurrently; at most one pair per
        session, so each session's submission order is the order of the calls."""
        assert len({s for _, s in pairs}) == len(pairs), "one run per session per wave"

        def one(pair):
            node, session = pair
            run_input = f"in-{secrets.token_hex(4)}"
            run = node.client().start_run(session, run_input)
            return session, run["id"], run_input

        with ThreadPoolExecutor(max_workers=6) as pool:
            for session, run_id, run_input in pool.map(one, pairs):
                inputs[run_id] = run_input
                session_inputs[session].append(run_input)

    def wait_all_finished(self, timeout_s):
        try:
            wait_until(lambda: self.unfinished_count() == 0, timeout_s, 0.25, "every run to finish")
        except AssertionError as error:
            rows = self.sql(f"SELECT r.id, r.session_id, r.status, l.node_id, l.epoch, "
                            f"l.expires_at_ms - {DB_NOW_MS} FROM runs r LEFT JOIN session_leases l ON "
                            f"l.tenant_id = r.tenant_id AND l.session_id = r.session_id "
                            f"WHERE r.status IN {UNFINISHED} LIMIT 20")
            raise AssertionError(f"{error}; unfinished runs (id, session, status, lease node, epoch, "
                                 f"lease ms left): {rows}") from None

    def final_checks(self, inputs, session_inputs, watcher, expected_tool_steps):
        """The crash test's verdict on every run, through all nodes round-robin."""
        journals = {}
        for index, (run_id, run_input) in enumerate(sorted(inputs.items())):
            client = self.nodes[index % len(self.nodes)].client()
            run = client.run(run_id)
            if run["status"] != "completed":
                self.fail_later(f"run {run_id} ended {run['status']}: {run.get('error')}")
            elif not output_matches(run.get("output"), run_input):
                self.fail_later(f"run {run_id} output {run.get('output')!r} does not match the checker's results")
            journals[run_id] = client.steps(run_id)
        check_journals(journals, self.fail_later)
        check_sessions(self.nodes[0].client(), session_inputs, self.fail_later)
        counts = check_ledger(self.tools.stats(), self.tools.ledger(), journals, watcher.seen_at,
                              expected_tool_steps, self.fail_later)
        return journals, counts

    def check_replays(self, journals, sample):
        """Every node answers the same run view and steps, and replays the same SSE stream."""
        for run_id in sample:
            views = [node.client().run(run_id) for node in self.nodes]
            if any(view != views[0] for view in views):
                self.fail_later(f"nodes disagree on run {run_id}: {views}")
            steps = [node.client().steps(run_id) for node in self.nodes]
            if any(s != journals[run_id] for s in steps):
                self.fail_later(f"nodes disagree on the steps of run {run_id}")
            for node in self.nodes:
                events = read_sse(node.base_url, f"/v1/runs/{run_id}/events", api_key=self.api_key, timeout_s=60)
                self.check_sse(events, journals[run_id], f"replay of {run_id} from {node.node_id}")

    def check_sse(self, events, journal, what):
        """Step events: every seq of the journal in order, no gap, the same steps, ending
        with run_completed (text deltas, without ids, are skipped)."""
        stepped = [e for e in events if e.id is not None]
        ids = [int(e.id) for e in stepped]
        if ids != list(range(len(ids))) or ids != [s["seq"] for s in journal]:
            self.fail_later(f"SSE {what}: ids {ids} are not the journal's seqs {[s['seq'] for s in journal]}")
            return
        if [e.event for e in stepped] != [s["kind"] for s in journal] or \
                [e.json() for e in stepped] != journal:
            self.fail_later(f"SSE {what}: events differ from the journal")
        if not stepped or stepped[-1].event != "run_completed":
            self.fail_later(f"SSE {what}: does not end with run_completed: {[e.event for e in stepped]}")

    # ==================================================================================

    def test_three_nodes_survive_kill9_of_any_node(self):
        seed = int(os.environ.get("MULTINODE_SEED") or random.SystemRandom().randrange(1 << 31))
        rng = random.Random(seed)
        session_count = int(os.environ.get("MULTINODE_SESSIONS", 100))
        runs_per_session = int(os.environ.get("MULTINODE_RUNS_PER_SESSION", 3))
        kills = int(os.environ.get("MULTINODE_KILLS", 3))
        sys.stderr.write(f"multinode_test: kill9 scenario seed={seed} sessions={session_count} "
                         f"runs_per_session={runs_per_session} kills={kills}\n")
        started = time.monotonic()
        nodes = [self.add_node() for _ in range(3)]
        self.assertEqual(len({n.node_id for n in nodes}), 3, "each node has its own id")
        view = self.cluster_view(nodes[0])
        self.assertEqual(view["object"], "cluster", view)
        self.assertTrue(view["shared"], view)
        self.assertEqual(view["this_node"], nodes[0].node_id, view)
        self.assertEqual(view["lease_ttl_ms"], LEASE_TTL_MS, view)

        nodes[0].client().create_agent(agent_definition(self.tools, self.mock))
        sessions = [nodes[i % 3].client().create_session("crash", {"index": i})["id"] for i in range(session_count)]
        inputs, session_inputs = {}, {s: [] for s in sessions}
        watcher = CommitWatcher(self.db)
        watcher.start()
        self.addCleanup(watcher.stop)
        # Round-robin: run r of session i goes to node (i + r) % 3, so the first run
        # leases the session on its node and the next ones queue behind it from others.
        for r in range(runs_per_session):
            self.submit([(nodes[(i + r) % 3], s) for i, s in enumerate(sessions)], inputs, session_inputs)
        submitted_at_first_kill = len(inputs)
        in_flight_at_first_kill = None

        order = list(range(3))
        rng.shuffle(order)
        kill_reports, failover_windows = [], []
        for k in range(kills):
            target = nodes[order[k % 3]]
            survivors = [n for n in nodes if n is not target]
            if k > 0:
                time.sleep(rng.uniform(0.1, 0.6))  # runs are at different points of their journals
            held = self.live_work_sessions(target.node_id)
            if len(held) < 5:
                # Its earlier work is done: give every node fresh work, in sessions that are idle.
                busy = {row[0] for row in self.sql(f"SELECT DISTINCT session_id FROM runs WHERE status IN "
                                                   f"{UNFINISHED}")}
                idle = [s for s in sessions if s not in busy][:60]
                self.submit([(nodes[i % 3], s) for i, s in enumerate(idle)], inputs, session_inputs)
                wait_until(lambda: len(self.live_work_sessions(target.node_id)) >= 5, 60, 0.05,
                           f"{target.node_id} to hold 5 sessions with unfinished runs")
                time.sleep(rng.uniform(0.0, 0.3))
                held = self.live_work_sessions(target.node_id)  # what it holds as it dies
            self.assertTrue(held, f"{target.node_id} holds sessions with unfinished runs before its kill")
            if in_flight_at_first_kill is None:
                in_flight_at_first_kill = self.unfinished_count()
            steps_before = self.step_count()
            kill_ms = now_ms()
            target.kill9()
            dead_sessions = sorted(held)
            values = ", ".join(f"({sql_text(s)}, {e})" for s, e in held.items())
            progress_sql = (f"WITH dead(session_id, epoch) AS (VALUES {values}) "
                            f"SELECT min(s.created_at_ms), count(*), count(DISTINCT r.session_id) FROM steps s "
                            f"JOIN runs r ON r.tenant_id = s.tenant_id AND r.id = s.run_id "
                            f"JOIN dead d ON d.session_id = r.session_id "
                            f"WHERE s.lease_epoch > d.epoch AND s.created_at_ms >= {kill_ms}")
            time.sleep((LEASE_TTL_MS + 1500) / 1000.0)

            # The survivors see it dead, owning nothing.
            def dead_and_empty():
                for survivor in survivors:
                    entry = self.node_entry(self.cluster_view(survivor), target.node_id)
                    if entry is None or entry["alive"] or entry["sessions_leased"] or entry["runs_running"]:
                        return None
                return True
            try:
                wait_until(dead_and_empty, 15, 0.2, f"the survivors to show {target.node_id} dead and empty")
            except AssertionError as error:
                self.fail_later(f"kill {k}: {error}: {[self.cluster_view(s) for s in survivors]}")

            # Its sessions with work left are leased by survivors, under newer epochs.
            def claimed():
                still = self.live_work_sessions(target.node_id, dead_sessions)
                leases = self.leases(dead_sessions)
                unfinished = {row[0] for row in self.sql(
                    f"SELECT DISTINCT session_id FROM runs WHERE status IN {UNFINISHED} "
                    f"AND session_id IN {sql_list(dead_sessions)}")}
                orphaned = [s for s in unfinished
                            if not leases.get(s, (None, 0, False))[2] or leases[s][0] == target.node_id]
                return not still and not orphaned
            try:
                wait_until(claimed, 15, 0.2, f"the survivors to claim the sessions {target.node_id} held")
            except AssertionError as error:
                self.fail_later(f"kill {k}: {error}: leases {self.leases(dead_sessions)}")
            for session, (owner, epoch, live) in self.leases(dead_sessions).items():
                if owner != target.node_id and epoch <= held[session]:
                    self.fail_later(f"kill {k}: session {session} moved to {owner} without a newer epoch "
                                    f"({epoch} <= {held[session]})")

            # Its runs made progress on the survivors.
            try:
                first, count, resumed = wait_until(
                    lambda: (lambda row: row if int(row[1]) > 0 else None)(self.sql(progress_sql)[0]),
                    15, 0.2, f"a step in a session {target.node_id} held")
            except AssertionError as error:
                self.fail_later(f"kill {k}: no progress in the {len(held)} sessions of the dead node: {error}")
                first, count, resumed = None, 0, 0
            steps_after = self.step_count()
            if steps_after <= steps_before:
                self.fail_later(f"kill {k}: no step committed while {target.node_id} was dead "
                                f"({steps_before} -> {steps_after})")
            report = {"kill": k, "node": target.node_id, "sessions_held": len(held),
                      "failover_ms": int(first) - kill_ms if first else None,
                      "steps_in_its_sessions": int(count), "sessions_resumed": int(resumed),
                      "steps_committed_while_dead": steps_after - steps_before,
                      "dead_ms": now_ms() - kill_ms}
            kill_reports.append(report)
            sys.stderr.write(f"multinode_test: {json.dumps(report)}\n")

            target.start()  # same data dir: same node id
            wait_until(lambda: all((self.node_entry(self.cluster_view(n), target.node_id) or {}).get("alive")
                                   for n in nodes), 30, 0.2, f"{target.node_id} to be alive again")
            failover_windows.append((kill_ms, now_ms() + 2000))

        self.wait_all_finished(240)
        watcher.stop()
        journals, counts = self.final_checks(inputs, session_inputs, watcher, 4 * len(inputs))
        stored = self.steps_in_store()
        stale, unfenced = self.check_epochs(stored)
        # Not a failure, but worth knowing: a run whose lease epoch changed while no node
        # was dead took its own session's lease again (a wasted reload and model call).
        unexplained = [(before, after) for before, after in self.epoch_changes(stored)
                       if not any(start <= after.created_at_ms <= end for start, end in failover_windows)]
        if watcher.errors:
            self.fail_later(f"the commit watcher could not read the store: {watcher.errors[:3]}")

        completed = sorted(inputs)
        self.check_replays(journals, rng.sample(completed, min(8, len(completed))))
        # Views from every node after the storm: all alive, all agree on the members.
        for node in nodes:
            view = self.cluster_view(node)
            if view["this_node"] != node.node_id or \
                    sorted(n["id"] for n in view["nodes"]) != sorted(n.node_id for n in nodes) or \
                    not all(n["alive"] for n in view["nodes"]):
                self.fail_later(f"cluster view of {node.node_id} after the kills: {view}")

        live = self.live_stream_check(nodes[0], nodes[1])
        failovers = [r["failover_ms"] for r in kill_reports if r["failover_ms"] is not None]
        self.summarize({"scenario": "three_nodes_kill9", "seed": seed, "nodes": 3, "sessions": session_count,
                        "runs": len(inputs), "runs_submitted_before_first_kill": submitted_at_first_kill,
                        "runs_in_flight_at_first_kill": in_flight_at_first_kill, "kills": len(kill_reports),
                        "nodes_killed": sorted({r["node"] for r in kill_reports}),
                        "failover_ms": failovers, "failover_ms_max": max(failovers) if failovers else None,
                        "sessions_held_at_kills": [r["sessions_held"] for r in kill_reports],
                        "stale_epoch_appends": stale, "unfenced_appends": unfenced,
                        "epoch_changes_outside_failovers": len(unexplained),
                        "epoch_changes_outside_failovers_examples": [
                            f"{after.run_id} seq {before.seq}->{after.seq} epoch {before.epoch}->{after.epoch}"
                            for before, after in unexplained[:3]],
                        **counts, "acknowledged_tool_steps": len(watcher.seen_at), **live,
                        "elapsed_s": round(time.monotonic() - started, 1)})
        self.assertEqual(self.failures, [])
        self.assertEqual(stale, 0)
        self.assertGreaterEqual(len(kill_reports), 3)
        self.assertEqual(len({r["node"] for r in kill_reports}), min(3, len(kill_reports)))

    def live_stream_check(self, a, b):
        """A run executing on A, streamed live from B: every seq in order, no gap, to
        run_completed. Meanwhile a second run of the session is submitted through B with
        wait: true (it queues behind the first, on A) and must come back completed."""
        session = a.client().create_session("crash", {"live": True})["id"]
        first = a.client().start_run(session, "live-1")
        try:  # it executes on A (which took the request in a free session)
            wait_until(lambda: self.leases([session]).get(session, (None, 0, False))[::2] == (a.node_id, True),
                       5, 0.02, f"{a.node_id} to lease the live-check session")
        except AssertionError as error:
            self.fail_later(f"{error}: {self.leases([session])}")
        events, errors, opened = [], [], []

        def stream():
            try:
                events.extend(read_sse(b.base_url, f"/v1/runs/{first['id']}/events", api_key=self.api_key,
                                       until=lambda e: e.event in ("run_completed", "run_failed", "run_cancelled"),
                                       timeout_s=120, on_open=lambda _: opened.append(now_ms())))
            except Exception as error:  # reported below
                errors.append(error)
        reader = threading.Thread(target=stream, daemon=True)
        reader.start()
        began = time.monotonic()
        second = b.client().start_run(session, "live-2", wait=True)
        wait_ms = int((time.monotonic() - began) * 1000)
        reader.join(150)
        if errors or reader.is_alive():
            self.fail_later(f"live SSE from {b.node_id}: {errors or 'still open after 150 s'}")
        journal = a.client().steps(first["id"])
        self.check_sse(events, journal, f"live stream of {first['id']} (running on {a.node_id}) from {b.node_id}")
        owner = self.leases([session]).get(session, (None,))[0]
        first_steps = self.steps_in_store([first["id"]])
        first_epochs = {s.epoch for s in first_steps} - {0}
        # Live, not a replay: the stream was open before the run completed.
        live = bool(opened and first_steps and opened[0] < first_steps[-1].created_at_ms)
        if second.get("status") != "completed" or not output_matches(second.get("output"), "live-2"):
            self.fail_later(f"run submitted through {b.node_id} with wait: true came back {second}")
        for run in (first, second):
            final = b.client().run(run["id"])
            if final["status"] != "completed":
                self.fail_later(f"live-check run {run['id']} is {final['status']}")
        return {"live_sse_events": len([e for e in events if e.id is not None]), "live_sse_was_live": live,
                "live_run_node": owner, "live_run_expected_node": a.node_id,
                "live_run_epochs": sorted(first_epochs), "wait_on_other_node_ms": wait_ms}

    # ==================================================================================

    def test_paused_node_is_fenced_and_steps_down(self):
        started = time.monotonic()
        a, b = self.add_node(), self.add_node()
        run_count = 20
        self.tools.control(default={"delay_ms": PAUSE_TOOL_DELAY_MS}, replace=True)
        a.client().create_agent(agent_definition(self.tools, self.mock))
        sessions = [a.client().create_session("crash", {"index": i})["id"] for i in range(run_count)]
        inputs, session_inputs = {}, {s: [] for s in sessions}
        watcher = CommitWatcher(self.db)
        watcher.start()
        self.addCleanup(watcher.stop)
        self.submit([(a, s) for s in sessions], inputs, session_inputs)
        run_session = {run_id: row[0] for run_id in inputs
                       for row in self.sql(f"SELECT session_id FROM runs WHERE id = {sql_text(run_id)}")}

        try:
            wait_until(lambda: len(self.live_work_sessions(a.node_id, sessions)) == run_count, 60, 0.1,
                       f"{a.node_id} to lease all {run_count} sessions")
        except WaitTimeout as error:
            runs = self.sql(f"SELECT id, session_id, status FROM runs WHERE id IN {sql_list(list(inputs))}")
            raise AssertionError(f"{error}; A={a.node_id} B={b.node_id}; leases {self.leases(sessions)}; "
                                 f"runs {runs}") from None
        # In flight on A: every run's first two (parallel) tool calls have reached the
        # checker, which holds them for PAUSE_TOOL_DELAY_MS, and none is answered yet; so
        # A has nothing left to send when it is paused (the pause stops no send half-way).
        wait_until(lambda: self.tools.stats()["in_flight"] == 2 * run_count, 60, 0.02,
                   f"all {2 * run_count} first tool calls to be in flight on the checker")
        unfinished_at_pause = self.unfinished_count()
        held_by_a = self.live_work_sessions(a.node_id, sessions)  # its epochs as it is paused
        if len(held_by_a) != run_count:
            self.fail_later(f"{a.node_id} holds {len(held_by_a)} of the {run_count} sessions as it is paused")
        log_offset = os.path.getsize(a.log_path)
        stop_ms, resumed_ms, claimed_at_ms, held_by_b, committed_at_claim = self.pause_while_claimed(
            a, b, sessions, list(inputs))

        self.wait_all_finished(120)
        watcher.stop()
        journals, counts = self.final_checks(inputs, session_inputs, watcher, 4 * run_count)
        stored = self.steps_in_store(list(inputs))
        stale, unfenced = self.check_epochs(stored)

        # Fencing: nothing created after the pause was committed under an epoch older
        # than B's, and every step after B's claim carries B's epoch.
        moved, after_claim_steps, a_steps_after_pause = 0, 0, 0
        by_run = {}
        for step in stored:
            by_run.setdefault(step.run_id, []).append(step)
        for run_id in inputs:
            session = run_session[run_id]
            a_epoch, b_epoch = held_by_a.get(session), held_by_b.get(session)
            later = [s for s in by_run.get(run_id, []) if (run_id, s.seq) not in committed_at_claim]
            if later and committed_at_claim:
                moved += 1
                after_claim_steps += len(later)
                for step in later:
                    if step.epoch != b_epoch:
                        self.fail_later(f"run {run_id} seq {step.seq} ({step.kind}) committed after "
                                        f"{b.node_id}'s claim has epoch {step.epoch}, not {b.node_id}'s {b_epoch} "
                                        f"({a.node_id} had {a_epoch})")
            for step in by_run.get(run_id, []):
                if b_epoch is not None and step.epoch < b_epoch and step.created_at_ms >= stop_ms:
                    a_steps_after_pause += 1
                    self.fail_later(f"run {run_id} seq {step.seq} was created at {step.created_at_ms} (after the "
                                    f"pause at {stop_ms}) under the old epoch {step.epoch} ({a.node_id} had "
                                    f"{a_epoch}, {b.node_id} took {b_epoch}) and committed")
        if held_by_b and moved != run_count:
            self.fail_later(f"only {moved} of {run_count} runs continued on {b.node_id} after its claim")

        # A survived, stepped down, and is healthy and alive in the cluster view.
        if not a.alive():
            self.fail_later(f"{a.node_id} exited after SIGCONT: code {a.proc.returncode}")
        else:
            for path in ("/healthz", "/readyz"):
                resp = a.client().get(path)
                if resp.status != 200:
                    self.fail_later(f"{a.node_id} {path} -> {resp}")

        def stepped_down():
            with open(a.log_path, "rb") as f:
                f.seek(log_offset)
                text = f.read().decode("utf-8", errors="replace")
            return [line for line in text.splitlines() if any(m in line for m in STEP_DOWN_LOGS)]
        try:
            step_down_lines = wait_until(stepped_down, 15, 0.2, f"{a.node_id} to log that it stepped down")
        except AssertionError as error:
            step_down_lines = []
            self.fail_later(str(error))

        def both_alive():
            for node in (a, b):
                view = self.cluster_view(node)
                entries = [self.node_entry(view, n.node_id) for n in (a, b)]
                if not all(e and e["alive"] for e in entries):
                    return None
            return True
        try:
            wait_until(both_alive, 15, 0.2, "both nodes alive in GET /v1/cluster")
        except AssertionError as error:
            self.fail_later(f"{error}: {self.cluster_view(a)} / {self.cluster_view(b)}")

        # A still executes runs: a new run in a session that moved, through A.
        after = a.client().start_run(sessions[0], "after-pause", wait=True)
        if after.get("status") != "completed" or not output_matches(after.get("output"), "after-pause"):
            self.fail_later(f"a run submitted through {a.node_id} after the pause came back {after}")
        post_owner = self.leases([sessions[0]]).get(sessions[0], (None,))[0]

        self.summarize({"scenario": "paused_node_fenced", "runs": run_count,
                        "unfinished_at_pause": unfinished_at_pause,
                        "pause_ms": resumed_ms - stop_ms,
                        "claim_ms": claimed_at_ms - stop_ms if claimed_at_ms else None,
                        "runs_moved": moved, "steps_after_claim": after_claim_steps,
                        "old_epoch_steps_after_pause": a_steps_after_pause,
                        "stale_epoch_appends": stale, "unfenced_appends": unfenced,
                        "epoch_changes": len(self.epoch_changes(stored)),  # one per moved run expected
                        "step_down_log_lines": len(step_down_lines),
                        "late_deliveries": sum(len(v) for v in self.late_deliveries(watcher.seen_at).values()),
                        **counts,
                        "after_pause_run_node": post_owner, "node_a": a.node_id,
                        "elapsed_s": round(time.monotonic() - started, 1)})
        self.assertEqual(self.failures, [])

    def pause_while_claimed(self, a, b, sessions, run_ids):
        """SIGSTOPs A for 2 x TTL, during which B must claim every one of `sessions`;
        then SIGCONT. Returns (stop_ms, resumed_ms, claimed_at_ms, B's epochs by session,
        the (run_id, seq) committed when B held them all)."""
        pid = a.proc.pid
        stop_ms = now_ms()
        os.kill(pid, signal.SIGSTOP)
        claimed_at_ms, held_by_b, committed_at_claim = None, {}, set()
        try:
            try:
                held_by_b = wait_until(lambda: (lambda h: h if len(h) == len(sessions) else None)(
                    self.live_work_sessions(b.node_id, sessions)), 2 * LEASE_TTL_MS / 1000 + 10, 0.1,
                    f"{b.node_id} to claim all {len(sessions)} sessions of the paused {a.node_id}")
                claimed_at_ms = now_ms()
            except AssertionError as error:
                self.fail_later(f"{error}: leases {self.leases(sessions)}")
            committed_at_claim = {(s.run_id, s.seq) for s in self.steps_in_store(run_ids)}
            time.sleep(max(0.0, (stop_ms + 2 * LEASE_TTL_MS - now_ms()) / 1000.0))
        finally:
            os.kill(pid, signal.SIGCONT)
        return stop_ms, now_ms(), claimed_at_ms, held_by_b, committed_at_claim

    def late_deliveries(self, seen_at):
        """{key: [Unix times]} of deliveries the checker received after the key's tool_call
        step was seen committed (`seen_at`: key -> Unix time, from a CommitWatcher)."""
        late = {}
        for key, record in self.tools.ledger().items():
            times = [t for t in record.get("received_at", []) if key in seen_at and t > seen_at[key]]
            if times:
                late[key] = times
        return late

    # ==================================================================================

    def test_resumed_node_sends_no_effect_after_its_lease_moved(self):
        """A resumed node whose lease moved does not re-send a tool call already committed.

        A is paused while its tool calls wait for a retry (503, Retry-After: 2); B claims
        the sessions and commits those calls' results. Once resumed, A must not send
        them again (the architecture's promise: "a call whose result was committed is
        never sent again"). Before sending, a node can tell from its own monotonic clock
        that its lease may be gone (its last renewal is older than the TTL)."""
        started = time.monotonic()
        a, b = self.add_node(), self.add_node()
        run_count = 5
        # The first delivery of every key fails with 503 + Retry-After: 2 s: retries wait.
        self.tools.control(default={"fail_first": 1, "fail_status": 503, "retry_after_s": 2}, replace=True)
        a.client().create_agent(agent_definition(self.tools, self.mock))
        sessions = [a.client().create_session("crash", {"index": i})["id"] for i in range(run_count)]
        inputs, session_inputs = {}, {s: [] for s in sessions}
        watcher = CommitWatcher(self.db, interval_s=0.1)
        watcher.start()
        self.addCleanup(watcher.stop)
        self.submit([(a, s) for s in sessions], inputs, session_inputs)
        # Every first tool call has failed once on A, whose retries now wait ~2 s.
        wait_until(lambda: self.tools.stats()["failed"] >= 2 * run_count, 60, 0.01,
                   f"the first {2 * run_count} tool deliveries to fail")
        stop_ms, resumed_ms, claimed_at_ms, held_by_b, _ = self.pause_while_claimed(a, b, sessions, list(inputs))
        self.wait_all_finished(120)
        watcher.stop()
        _, counts = self.final_checks(inputs, session_inputs, watcher, 4 * run_count)  # includes late deliveries
        stale, unfenced = self.check_epochs(self.steps_in_store(list(inputs)))
        late = self.late_deliveries(watcher.seen_at)
        after_resume = {k: [round(t * 1000 - resumed_ms) for t in v] for k, v in late.items()
                        if any(t * 1000 >= resumed_ms for t in v)}
        self.summarize({"scenario": "resumed_node_sends_no_committed_effect", "runs": run_count,
                        "pause_ms": resumed_ms - stop_ms,
                        "claim_ms": claimed_at_ms - stop_ms if claimed_at_ms else None,
                        "late_deliveries": sum(len(v) for v in late.values()),
                        "late_deliveries_after_resume_ms": dict(list(after_resume.items())[:6]),
                        "stale_epoch_appends": stale, "unfenced_appends": unfenced, **counts,
                        "elapsed_s": round(time.monotonic() - started, 1)})
        self.assertEqual(self.failures, [])

    # ==================================================================================

    def test_cancel_from_another_node(self):
        started = time.monotonic()
        a, b = self.add_node(), self.add_node()
        self.tools.control(tools={"alpha": {"delay_ms": 60000}})  # the first call never finishes in time
        a.client().create_agent(agent_definition(self.tools, self.mock))
        session = a.client().create_session("crash")["id"]
        run = a.client().start_run(session, "to-cancel")
        run_id = run["id"]
        # Running on A, waiting for the slow tool: beta's result is in, alpha's is not.
        wait_until(lambda: any(s["kind"] == "tool_call" for s in a.client().steps(run_id)), 60, 0.05,
                   "the run's first tool result")
        owner, epoch, live = self.leases([session])[session]
        self.assertEqual((owner, live), (a.node_id, True), "the run executes on A")

        began = time.monotonic()
        resp = b.client().post(f"/v1/runs/{run_id}/cancel")
        cancel_ms = int((time.monotonic() - began) * 1000)
        if resp.status not in (200, 202):
            self.fail_later(f"POST /v1/runs/{run_id}/cancel on {b.node_id} -> {resp}")
        views = {}
        for node in (a, b):
            try:
                views[node.node_id] = node.client().wait_run(run_id, timeout_s=30)
            except AssertionError as error:
                self.fail_later(f"seen from {node.node_id}: {error}")
        ended_ms = int((time.monotonic() - began) * 1000)
        for node_id, view in views.items():
            if view["status"] != "cancelled":
                self.fail_later(f"seen from {node_id} the run ended {view['status']}: {view}")
        steps = a.client().steps(run_id)
        kinds = [s["kind"] for s in steps]
        if kinds[-1:] != ["run_cancelled"] or kinds.count("run_cancelled") != 1:
            self.fail_later(f"the journal does not end with one run_cancelled: {kinds}")
        stored = self.steps_in_store([run_id])
        if stored and (stored[-1].kind, stored[-1].epoch) != ("run_cancelled", epoch):
            self.fail_later(f"the last step is {stored[-1]}, not run_cancelled under {a.node_id}'s epoch {epoch}: "
                            f"it was not appended by the run's node")
        stale, unfenced = self.check_epochs(stored)
        self.summarize({"scenario": "cancel_from_another_node", "cancel_status": resp.status,
                        "cancel_response_run_status": (resp.body or {}).get("status"),
                        "cancel_response_ms": cancel_ms, "cancelled_seen_on_both_ms": ended_ms,
                        "journal": kinds, "epochs": [s.epoch for s in stored],
                        "stale_epoch_appends": stale, "unfenced_appends": unfenced,
                        "elapsed_s": round(time.monotonic() - started, 1)})
        self.assertEqual(self.failures, [])

    # ==================================================================================

    def start_approval_waiting_run(self):
        """Two nodes (A, B) polling for approval decisions every APPROVAL_POLL_MS; a policy
        holding refunds over 1000 for approval, put through B and in force on A; alice's
        run on A waiting on its approval. Returns (a, b, run_id, approval_requested step,
        A's lease epoch, an approver's (paula's) client on B)."""
        env = {"CONTINUUM_APPROVAL_POLL_MS": str(APPROVAL_POLL_MS)}
        a, b = self.add_node(env), self.add_node(env)
        admin_a, admin_b = a.client(), b.client()
        model_dir = os.path.join(self.tmp, "refund-model")
        os.makedirs(model_dir)
        refund_model = MockModel(model_dir, {"refund_big": {"steps": [
            {"tool_calls": [{"name": "refund", "arguments": REFUND_ARGUMENTS}]},
            {"content": "refund said {{tool_results}}"}]}})
        refund_model.name = "mock_model_refund"
        self.start_process(refund_model)

        # The policy: the built-in statements plus LARGE_REFUNDS, written through B. A caches
        # policies up to a second: wait until A's policy test answers require_approval.
        document = admin_a.ok("GET", "/v1/policy", expect=200)["document"]
        document["statements"].append(LARGE_REFUNDS)
        put = admin_b.put("/v1/policy", {"document": document})
        self.assertEqual(put.status, 201, put)
        probe = {"action": "tool:invoke", "resource": "tool:refund", "agent": "refunder",
                 "args": {"amount": 2500}}
        decision = wait_until(lambda: (lambda d: d if d["decision"] == "require_approval" else None)(
            admin_a.ok("POST", "/v1/policy/test", probe, expect=200)), 10, 0.1,
            "the policy put through B to be in force on A")
        self.assertEqual(decision["statement"], "large-refunds", decision)

        refund = http_tool(self.tools, "refund", {"type": "object",
                                                  "properties": {"amount": {"type": "number"},
                                                                 "currency": {"type": "string"},
                                                                 "note": {"type": "string"}},
                                                  "required": ["amount"]})
        admin_a.create_agent({"name": "refunder", "model": model_spec(refund_model, "refund_big"),
                              "instructions": "Refund as asked.", "tools": [refund]})
        session = admin_a.ok("POST", "/v1/sessions", {"agent": "refunder", "user": "alice"}, expect=201)
        self.assertEqual(session["user"], "alice", session)
        paula = Client(b.base_url, issue_key(admin_a, "paula", ["approver"])["token"])

        run_id = admin_a.start_run(session["id"], REFUND_ARGUMENTS["note"])["id"]
        run = admin_b.wait_run(run_id, statuses=("waiting", "completed", "failed", "cancelled"), timeout_s=30)
        self.assertEqual(run["status"], "waiting", run)
        requested = wait_until(lambda: next((s for s in admin_b.steps(run_id) if s["kind"] == "approval_requested"),
                                            None), 10, 0.05, f"approval_requested of {run_id}")
        self.assertEqual(admin_a.run(run_id)["status"], "waiting", "both nodes see the run waiting")
        owner, epoch, live = self.leases([session["id"]])[session["id"]]
        self.assertEqual((owner, live), (a.node_id, True), "the run waits on A, which holds its session")
        self.assertEqual(self.tools.stats()["deliveries"], 0, "nothing is called before the decision")

        # B lists it to the approver, pending, with the model's exact arguments.
        payload = requested["payload"]
        pending = paula.ok("GET", "/v1/approvals?status=pending", expect=200)["data"]
        self.assertEqual([(p["id"], p["run_id"], p["tool"], p["arguments"], p["arguments_hash"], p["status"],
                           p["requested_by"], p["statement"]) for p in pending],
                         [(payload["approval_id"], run_id, "refund", REFUND_ARGUMENTS, payload["arguments_hash"],
                           "pending", "alice", "large-refunds")], pending)
        return a, b, run_id, requested, epoch, paula

    def approve_through(self, paula, node, approval_id):
        resp = paula.post(f"/v1/approvals/{approval_id}/approve", {"comment": f"approved on {node.node_id}"})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual((resp.body["status"], resp.body["decided_by"]), ("approved", "paula"), resp)
        return resp.body

    def check_approved_run(self, client, run_id, requested, decided):
        """The verdict on an approved run: completed with the tool's result, one delivery
        of the call's key with the approved arguments, and in commit order
        approval_requested, approval_decided (approved, by paula), tool_call. Returns the
        run's steps in the store (StoredStep)."""
        payload = requested["payload"]
        run = client.run(run_id)
        if run["status"] != "completed":
            self.fail_later(f"run {run_id} ended {run['status']}: {run.get('error')}")
        elif run["output"] != "refund said " + result_for("refund", REFUND_ARGUMENTS):
            self.fail_later(f"run {run_id} output {run['output']!r} is not the tool's result")
        steps = client.steps(run_id)
        kinds = [s["kind"] for s in steps]
        counts = {k: kinds.count(k) for k in ("approval_requested", "approval_decided", "tool_call")}
        if counts != {"approval_requested": 1, "approval_decided": 1, "tool_call": 1}:
            self.fail_later(f"run {run_id}: the journal is {kinds}")
        tools = tool_steps(steps)
        key = tools[0]["payload"]["idempotency_key"] if tools else None
        if tools:
            if tools[0]["seq"] != payload["tool_seq"] or tools[0]["payload"]["is_error"]:
                self.fail_later(f"the tool_call step {tools[0]} is not the held call's (seq {payload['tool_seq']}) "
                                f"or failed")
            if sha256_hex(tools[0]["payload"]["arguments"]) != payload["arguments_hash"]:
                self.fail_later(f"the call ran with arguments {tools[0]['payload']['arguments']!r}, "
                                f"not those approved (hash {payload['arguments_hash']})")
        decided_steps = [s for s in steps if s["kind"] == "approval_decided"]
        if decided_steps:
            got = {k: decided_steps[0]["payload"].get(k) for k in ("approval_id", "tool_seq", "decision",
                                                                   "decided_by", "decided_at_ms")}
            want = {"approval_id": payload["approval_id"], "tool_seq": payload["tool_seq"], "decision": "approved",
                    "decided_by": "paula", "decided_at_ms": decided["decided_at_ms"]}
            if got != want:
                self.fail_later(f"approval_decided payload {got}, expected {want}")
        ledger = self.tools.ledger()
        if list(ledger) != [key]:
            self.fail_later(f"the checker's ledger holds {sorted(ledger)}, not exactly the call's key {key}")
        record = ledger.get(key) or {}
        if (record.get("tool"), record.get("args"), record.get("deliveries"), record.get("applied")) != \
                ("refund", REFUND_ARGUMENTS, 1, 1):
            self.fail_later(f"ledger record of {key}: {record} (expected one delivery with {REFUND_ARGUMENTS})")
        stats = self.tools.stats()
        if stats["deliveries"] != 1:
            self.fail_later(f"the checker received {stats['deliveries']} deliveries in all: {stats}")

        stored = self.steps_in_store([run_id])
        committed = [s.kind for s in sorted(stored, key=lambda s: (s.xid, s.seq))]
        order = [k for k in committed if k in ("approval_requested", "approval_decided", "tool_call")]
        if order != ["approval_requested", "approval_decided", "tool_call"]:
            self.fail_later(f"commit order of run {run_id}: {committed}")
        by_commit = sorted(stored, key=lambda s: (s.xid, s.seq))
        for before, after in zip(by_commit, by_commit[1:]):
            if after.epoch < before.epoch:
                self.fail_later(f"stale-epoch append: run {run_id} seq {after.seq} ({after.kind}) epoch "
                                f"{after.epoch} committed after seq {before.seq} ({before.kind}) at {before.epoch}")
        for step in stored:
            if step.seq > 0 and step.epoch == 0:
                self.fail_later(f"unfenced append: run {run_id} seq {step.seq} ({step.kind})")
        return stored

    def test_approval_decided_through_another_node(self):
        started = time.monotonic()
        a, b, run_id, requested, epoch, paula = self.start_approval_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        decided = self.approve_through(paula, b, approval_id)
        views = {}
        for node in (a, b):
            try:
                views[node.node_id] = node.client().wait_run(run_id, timeout_s=30)["status"]
            except AssertionError as error:
                self.fail_later(f"seen from {node.node_id}: {error}")
        stored = self.check_approved_run(a.client(), run_id, requested, decided)
        # A executed it all: every step after run_created is under A's epoch, and A keeps the session.
        other_epochs = [(s.seq, s.kind, s.epoch) for s in stored if s.seq > 0 and s.epoch != epoch]
        if other_epochs:
            self.fail_later(f"steps not under {a.node_id}'s epoch {epoch}: {other_epochs}")
        session = self.sql(f"SELECT session_id FROM runs WHERE id = {sql_text(run_id)}")[0][0]
        owner = self.leases([session]).get(session, (None,))[0]
        if owner != a.node_id:
            self.fail_later(f"the session moved to {owner} (the run executed on {a.node_id})")
        for node in (a, b):
            approval = Client(node.base_url, paula.api_key).ok("GET", f"/v1/approvals/{approval_id}", expect=200)
            if approval["status"] != "approved":
                self.fail_later(f"{node.node_id} shows the approval {approval['status']}")
            left = Client(node.base_url, paula.api_key).ok("GET", "/v1/approvals?status=pending", expect=200)
            if left["data"]:
                self.fail_later(f"{node.node_id} still lists pending approvals: {left['data']}")
        self.summarize({"scenario": "approval_through_another_node", "run_views": views,
                        "journal": [s.kind for s in stored], "epochs": [s.epoch for s in stored],
                        "deliveries": self.tools.stats()["deliveries"],
                        "elapsed_s": round(time.monotonic() - started, 1)})
        self.assertEqual(self.failures, [])

    def test_approval_decided_through_another_node_after_kill9(self):
        started = time.monotonic()
        a, b, run_id, requested, a_epoch, paula = self.start_approval_waiting_run()
        approval_id = requested["payload"]["approval_id"]
        session = self.sql(f"SELECT session_id FROM runs WHERE id = {sql_text(run_id)}")[0][0]
        a.kill9()
        decided = self.approve_through(paula, b, approval_id)  # A's lease is still live: nobody runs it yet
        try:
            run = b.client().wait_run(run_id, timeout_s=LEASE_TTL_MS / 1000 + 20)
        except AssertionError as error:
            self.fail_later(f"{error}; leases {self.leases([session])}")
            run = None
        owner, b_epoch, _ = self.leases([session]).get(session, (None, 0, False))
        if owner != b.node_id or b_epoch <= a_epoch:
            self.fail_later(f"session {session} is leased by {owner} at epoch {b_epoch}, not by {b.node_id} "
                            f"under an epoch newer than {a.node_id}'s {a_epoch}")
        stored = self.check_approved_run(b.client(), run_id, requested, decided)
        by_commit = sorted(stored, key=lambda s: (s.xid, s.seq))
        after_wait = by_commit[[s.seq for s in by_commit].index(requested["seq"]) + 1:]
        wrong = [(s.seq, s.kind, s.epoch) for s in after_wait if s.epoch != b_epoch]
        if wrong or not after_wait:
            self.fail_later(f"steps committed after the wait are not all under {b.node_id}'s epoch {b_epoch}: "
                            f"{[(s.seq, s.kind, s.epoch) for s in after_wait]}")
        approval = paula.ok("GET", f"/v1/approvals/{approval_id}", expect=200)
        if approval["status"] != "approved":
            self.fail_later(f"the approval is {approval['status']} after the run ended")
        self.summarize({"scenario": "approval_through_another_node_after_kill9",
                        "run_status": run and run["status"], "journal": [s.kind for s in stored],
                        "epochs": [s.epoch for s in stored], "a_epoch": a_epoch, "b_epoch": b_epoch,
                        "deliveries": self.tools.stats()["deliveries"],
                        "elapsed_s": round(time.monotonic() - started, 1)})
        self.assertEqual(self.failures, [])


if __name__ == "__main__":
    unittest.main()
