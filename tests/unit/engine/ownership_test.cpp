// The engine on a shared cluster: it executes a session only under a lease,
// writes every step under the lease's epoch, resumes sessions it is handed,
// and stops a run whose lease is lost. A scripted cluster stands in for the
// other nodes (the PostgreSQL leases are tested in cluster/).
#include "tests/unit/engine/test_env.h"

namespace continuum::testing {
namespace {

constexpr const char* kAgent = R"({
  "name": "triage", "model": {"provider": "scripted", "model": "m"},
  "tools": [{"type": "http", "name": "lookup", "url": "http://tools.invalid/lookup"}],
  "limits": {"max_steps": 5}
})";

constexpr const char* kScript = R"({"scripts": {"m": {"steps": [
  {"tool_calls": [{"name": "lookup", "arguments": {"id": "{{input}}"}}]},
  {"content": "done: {{tool_results}}"}]}}})";

class ScriptedCluster final : public Cluster {
 public:
  bool shared() const override { return true; }
  const std::string& node_id() const override { return id_; }
  Result<int64_t> acquire(const std::string&, const std::string& session) override {
    acquired.push_back(session);
    if (on_acquire) on_acquire(session);
    if (held_elsewhere) return conflict("held by another node");
    return next_epoch;
  }
  void release(const std::string&, const std::string& session, int64_t epoch) override {
    released.emplace_back(session, epoch);
  }
  bool lease_fresh() const override { return fresh; }
  Status request_cancel(const std::string&, const std::string& run_id) override {
    cancel_requests.push_back(run_id);
    return Status::ok();
  }
  Result<json::object> describe() override { return json::object{}; }
  void start(ClusterHandlers) override {}
  void stop() override {}

  bool held_elsewhere = false;
  bool fresh = true;
  int64_t next_epoch = 7;
  std::vector<std::string> acquired;
  std::vector<std::pair<std::string, int64_t>> released;
  std::vector<std::string> cancel_requests;
  std::function<void(const std::string& session)> on_acquire;

 private:
  std::string id_ = "node-test";
};

class OwnershipTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    set_script(kScript);
    start_engine(&cluster_);
    agent_ = put_agent(kAgent);
    session_ = new_session("triage");
  }
  ScriptedCluster cluster_;
  AgentRecord agent_;
  SessionRecord session_;
};

TEST_F(OwnershipTest, StepsAreWrittenUnderTheLeaseEpochAndTheLeaseIsGivenBack) {
  std::string run_id = submit(session_, agent_, "C-1");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  for (const auto& step : steps(run_id)) {
    if (step.seq == 0) continue;  // run_created precedes the lease
    EXPECT_EQ(step.lease_epoch, 7) << step.kind;
  }
  ASSERT_TRUE(pump([&] { return !cluster_.released.empty(); })) << "nothing left to run: the lease goes back";
  ASSERT_EQ(cluster_.released.size(), 1u);
  EXPECT_EQ(cluster_.released[0], std::make_pair(session_.id, int64_t{7}));
}

// Regression: the lease was taken after the run was stored, and in between
// another node's sweep could adopt the session (a queued run, no lease).
TEST_F(OwnershipTest, TheLeaseIsTakenBeforeTheRunIsStored) {
  int64_t runs_stored_at_acquire = -1;
  cluster_.on_acquire = [&](const std::string& session) {
    runs_stored_at_acquire = static_cast<int64_t>(store_->list_queued_runs("t1", session, 10)->size());
  };
  std::string run_id = submit(session_, agent_, "C-0");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(runs_stored_at_acquire, 0);
  EXPECT_EQ(cluster_.acquired.size(), 1u) << "taken once, used to start the run";
  EXPECT_EQ(run(run_id).status, kRunCompleted);
}

TEST_F(OwnershipTest, ASessionLeasedElsewhereStaysQueuedUntilHandedOver) {
  cluster_.held_elsewhere = true;
  std::string run_id = submit(session_, agent_, "C-2");
  settle();  // let anything that would start it run
  EXPECT_EQ(run(run_id).status, kRunQueued);
  cluster_.held_elsewhere = false;
  engine_->cluster_handlers().on_claimed("t1", session_.id, 9);
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_EQ(steps(run_id).back().lease_epoch, 9);
}

TEST_F(OwnershipTest, RecoveryWaitsForTheClusterAndAClaimResumesTheRun) {
  tools_.hold = true;  // the tool call is in flight when the node dies
  std::string run_id = submit(session_, agent_, "C-3");
  ASSERT_TRUE(pump([&] { return !tools_.held.empty(); }));
  crash_and_restart_on(&cluster_);
  settle();
  EXPECT_EQ(run(run_id).status, kRunRunning) << "recover() leaves sessions to the cluster";
  tools_.hold = false;
  engine_->cluster_handlers().on_claimed("t1", session_.id, 12);
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_EQ(tools_.attempts_by_key[run_id + ":3"], 2) << "the in-flight call is re-sent with the same key";
  EXPECT_EQ(steps(run_id).back().lease_epoch, 12);
}

TEST_F(OwnershipTest, ALostLeaseStopsTheRunHereWithoutWriting) {
  tools_.hold = true;
  std::string run_id = submit(session_, agent_, "C-4");
  ASSERT_TRUE(pump([&] { return !tools_.held.empty(); }));
  size_t steps_before = steps(run_id).size();
  engine_->cluster_handlers().on_lost("t1", session_.id);
  settle();
  for (auto& complete : tools_.held) complete();  // the call returns after the node stepped down
  tools_.held.clear();
  settle();
  EXPECT_EQ(steps(run_id).size(), steps_before) << "a run that moved away writes nothing here";
  EXPECT_EQ(run(run_id).status, kRunRunning) << "its new owner finishes it";
}

// Regression: a node resumed after a pause sent tool calls whose results the
// session's new owner had already committed. Effects now wait until the
// node's leases are known to be live.
TEST_F(OwnershipTest, NoEffectStartsWhileTheLeaseMayHaveMovedOn) {
  tools_.hold = true;
  tools_.fail_first = 1;  // the first attempt comes back retryable (503)
  std::string run_id = submit(session_, agent_, "C-5");
  ASSERT_TRUE(pump([&] { return !tools_.held.empty(); }));
  ASSERT_EQ(tools_.keys.size(), 1u);
  cluster_.fresh = false;  // paused past the renewal: the retry must wait
  tools_.hold = false;
  for (auto& complete : tools_.held) complete();
  tools_.held.clear();
  for (int i = 0; i < 20; ++i) {
    settle();
    loop().fire_next_timer();  // the retry's backoff and the recheck timers come due
  }
  EXPECT_EQ(tools_.keys.size(), 1u) << "no attempt while the lease is in doubt";
  cluster_.fresh = true;
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(tools_.keys.size(), 2u) << "the retry goes out once the lease is known to be live";
}

TEST_F(OwnershipTest, ACancelOfARunElsewhereIsForwardedAndCarriedOutByItsNode) {
  cluster_.held_elsewhere = true;
  RunRecord elsewhere{"t1", "run_elsewhere", session_.id, "triage", 1, kRunRunning, "x", "{}", 1, 1, 1};
  WriteBatch batch;
  batch.run_inserts.push_back(elsewhere);
  ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  Status outcome = internal_error("not called");
  engine_->cancel_run("t1", "run_elsewhere", [&](Status status) { outcome = status; });
  settle();
  EXPECT_TRUE(outcome.is_ok());
  EXPECT_EQ(cluster_.cancel_requests, std::vector<std::string>{"run_elsewhere"});
}

}  // namespace
}  // namespace continuum::testing
