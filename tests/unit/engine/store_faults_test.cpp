// The engine when the store refuses writes: a fault-injecting Store wraps the
// real SQLite store and fails chosen commits without writing them.
#include "store/forwarding_store.h"
#include "tests/unit/engine/test_env.h"

namespace continuum::testing {
namespace {

// Fails the commits whose 1-based number is in `fail_commits`, as a disk that
// refuses a write would: nothing of the batch is written.
class FaultyStore final : public ForwardingStore {
 public:
  explicit FaultyStore(Store& inner) : ForwardingStore(inner) {}
  std::set<int> fail_commits;
  int commits = 0;
  int fail_queued_reads = 0;  // the next this many reads of a session's queue fail
  int queued_reads = 0;
  int fail_session_reads = 0;  // the next this many reads of a session fail
  int session_reads = 0;

  Result<SessionRecord> get_session(const std::string& tenant, const std::string& id) override {
    ++session_reads;
    if (fail_session_reads > 0) {
      --fail_session_reads;
      return Status(Code::kUnavailable, "injected read failure");
    }
    return inner_.get_session(tenant, id);
  }

  Result<std::vector<ItemRecord>> recent_items(const std::string& tenant, const std::string& session,
                                               int64_t before_seq, int limit) override {
    ++item_reads;
    return inner_.recent_items(tenant, session, before_seq, limit);
  }
  int item_reads = 0;

  Result<std::vector<RunRecord>> list_queued_runs(const std::string& tenant, const std::string& session,
                                                  int limit) override {
    ++queued_reads;
    if (fail_queued_reads > 0) {
      --fail_queued_reads;
      return Status(Code::kUnavailable, "injected read failure");
    }
    return inner_.list_queued_runs(tenant, session, limit);
  }

  void commit(WriteBatch batch, std::function<void(Status)> done) override {
    if (fail_commits.count(++commits)) {
      done(Status(Code::kInternal, "injected write failure"));
      return;
    }
    inner_.commit(std::move(batch), std::move(done));
  }
};

constexpr const char* kAgent = R"({"name": "a", "model": {"provider": "scripted", "model": "m"},
  "tools": [{"type": "http", "name": "lookup", "url": "http://tools.invalid/"},
            {"type": "http", "name": "ticket", "url": "http://tools.invalid/"}]})";
// An agent with the builtin `noop` tool, and scripts asking for it once or twice.
constexpr const char* kNoopAgent = R"({"name": "a", "model": {"provider": "scripted", "model": "m"},
                                       "tools": [{"type": "builtin", "name": "noop"}]})";
constexpr const char* kNoopOnceScript = R"({"scripts": {"m": {"steps": [
  {"tool_calls": [{"name": "noop", "arguments": {}}]}, {"content": "done"}]}}})";
constexpr const char* kNoopTwiceScript = R"({"scripts": {"m": {"steps": [
  {"tool_calls": [{"name": "noop", "arguments": {}}]}, {"tool_calls": [{"name": "noop", "arguments": {}}]},
  {"content": "done"}]}}})";
constexpr const char* kScript = R"({"scripts": {"m": {"steps": [
  {"tool_calls": [{"name": "lookup", "arguments": {"id": "{{input}}"}},
                  {"name": "ticket", "arguments": {"id": "{{input}}"}}]},
  {"content": "done: {{tool_results}}"}]}}})";

// Lets the first `pass` commits through and holds the rest until release():
// what the engine does before its steps are durable.
class HeldStore final : public ForwardingStore {
 public:
  explicit HeldStore(Store& inner) : ForwardingStore(inner) {}
  int pass = 1;  // run_created: submit_run waits for it
  std::vector<std::pair<WriteBatch, std::function<void(Status)>>> held;

  void commit(WriteBatch batch, std::function<void(Status)> done) override {
    if (pass > 0) {
      --pass;
      return inner_.commit(std::move(batch), std::move(done));
    }
    held.emplace_back(std::move(batch), std::move(done));
  }
  void release() {
    pass = 1 << 30;
    auto batches = std::move(held);
    for (auto& [batch, done] : batches) inner_.commit(std::move(batch), std::move(done));
  }
  std::vector<std::string> held_step_kinds() const {
    std::vector<std::string> kinds;
    for (const auto& [batch, done] : held) {
      for (const auto& step : batch.steps) kinds.push_back(step.kind);
    }
    return kinds;
  }
};

// Allows every effect and counts the questions.
class AllowingGate final : public EffectGate {
 public:
  EffectVerdict check(const EffectRequest&) override {
    ++checks;
    return EffectVerdict{};
  }
  int checks = 0;
};

class StoreFaultsTest : public EngineTest {
 protected:
  void start_faulty_engine(EffectGate* gate = nullptr) {
    faulty_ = std::make_unique<FaultyStore>(*store_);
    EngineOptions options;
    options.gate = gate;
    engine_ = std::make_unique<Engine>(
        *faulty_, loop_, clock_, random_, [this](const ModelSpec&) -> ModelProvider* { return provider_.get(); },
        tools_, nullptr, options);
  }
  void start_held_engine() {
    held_ = std::make_unique<HeldStore>(*store_);
    engine_ = std::make_unique<Engine>(
        *held_, loop_, clock_, random_, [this](const ModelSpec&) -> ModelProvider* { return provider_.get(); },
        tools_, nullptr);
  }
  // The run's stored journal folded, every step right after the one before (no gap).
  RunSnapshot folded_journal(const std::string& run_id) {
    RunSnapshot folded;
    int64_t expected_seq = 0;
    for (const auto& step : steps(run_id)) {
      EXPECT_EQ(step.seq, expected_seq++) << "no gap in the journal";
      EXPECT_TRUE(fold_step(folded, step).is_ok()) << step.kind;
    }
    return folded;
  }
  std::unique_ptr<FaultyStore> faulty_;
  std::unique_ptr<HeldStore> held_;
};

// Regression: the second of two parallel tool results was built on the first;
// when the first commit failed, the second must not commit on its own (it would
// mark the first call done with no result in the journal).
TEST_F(StoreFaultsTest, ResultBuiltOnAFailedCommitNeverCommitsAndTheRunRecovers) {
  set_script(kScript);
  start_faulty_engine();
  AgentRecord agent = put_agent(kAgent);
  // Commits: 1 run_created, 2 run_started, 3 model step, 4 and 5 the two tool results.
  faulty_->fail_commits = {4};
  std::string run_id = submit(new_session("a"), agent, "C-9");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  RunSnapshot folded;
  for (const auto& step : steps(run_id)) ASSERT_TRUE(fold_step(folded, step).is_ok()) << step.kind;
  EXPECT_EQ(snapshot_to_json_text(folded), run(run_id).snapshot_json) << "snapshot and journal agree";
  EXPECT_EQ(folded.tool_calls, 2);
  // Both calls were re-sent after the reload, with their original keys.
  EXPECT_EQ(tools_.attempts_by_key[run_id + ":3"], 2);
  EXPECT_EQ(tools_.attempts_by_key[run_id + ":4"], 2);
}

TEST_F(StoreFaultsTest, FailedStartIsRetriedAndTheSessionQueueMovesOn) {
  set_script(kScript);
  start_faulty_engine();
  AgentRecord agent = put_agent(kAgent);
  SessionRecord session = new_session("a");
  faulty_->fail_commits = {2};  // the first run's run_started
  std::string first = submit(session, agent, "one");
  std::string second = submit(session, agent, "two");
  ASSERT_TRUE(pump([&] { return finished(first) && finished(second); }));
  EXPECT_EQ(run(first).status, kRunCompleted);
  EXPECT_EQ(run(second).status, kRunCompleted);
}

// Regression: a session whose queue could not be read (the database
// restarting) stayed idle for good, its queued run never started.
TEST_F(StoreFaultsTest, AQueueThatCannotBeReadIsReadAgainLater) {
  set_script(kScript);
  start_faulty_engine();
  AgentRecord agent = put_agent(kAgent);
  SessionRecord session = new_session("a");
  faulty_->fail_queued_reads = 3;
  std::string run_id = submit(session, agent, "one");
  settle();
  EXPECT_EQ(run(run_id).status, kRunQueued) << "no timer fired yet: the retry waits for its backoff";
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_GE(faulty_->queued_reads, 4);
}

// Regression: the policy needs the session's user; a read of it that failed
// (the database restarting) denied the model call and failed the run.
TEST_F(StoreFaultsTest, ASessionThatCannotBeReadDelaysTheEffectInsteadOfDenyingIt) {
  set_script(kScript);
  AllowingGate gate;
  start_faulty_engine(&gate);
  AgentRecord agent = put_agent(kAgent);
  faulty_->fail_session_reads = 2;
  SessionRecord session = new_session("a");
  std::string first = submit(session, agent, "one");  // started at once: the session is known
  std::string second = submit(session, agent, "two");  // queued: started later, it reads the session
  ASSERT_TRUE(pump([&] { return finished(first) && finished(second); }));
  EXPECT_EQ(run(first).status, kRunCompleted);
  EXPECT_EQ(run(second).status, kRunCompleted);
  EXPECT_GE(faulty_->session_reads, 3);
  EXPECT_EQ(gate.checks, 8) << "asked once per effect: two model calls and two tools per run";
}

// A scripted model and builtin tools reach nothing outside the process: the
// run goes on before its steps are durable, every step is requested in order,
// and nothing is finished (or shown) until the commits land.
TEST_F(StoreFaultsTest, InProcessStepsRunAheadOfTheirCommits) {
  set_script(kNoopTwiceScript);
  start_held_engine();
  AgentRecord agent = put_agent(kNoopAgent);
  std::string run_id = submit(new_session("a"), agent, "go");
  settle();
  std::vector<std::string> expected{kStepRunStarted, kStepModelCall, kStepToolCall, kStepModelCall,
                                    kStepToolCall,   kStepModelCall, kStepRunCompleted};
  EXPECT_EQ(held_->held_step_kinds(), expected) << "all requested before the first is durable";
  EXPECT_EQ(run(run_id).status, kRunQueued) << "nothing durable yet but the run";
  EXPECT_FALSE(finished(run_id));
  held_->release();
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  RunSnapshot folded;
  for (const auto& step : steps(run_id)) ASSERT_TRUE(fold_step(folded, step).is_ok()) << step.kind;
  EXPECT_EQ(snapshot_to_json_text(folded), run(run_id).snapshot_json) << "snapshot and journal agree";
}

// On the production loop's order (continuations first), the steps a run makes
// one after another go to the store as one batch: every step, in order, and
// one run update naming the version before it, whose snapshot folds them all.
TEST_F(StoreFaultsTest, StepsRunAheadGoToTheStoreAsOneBatchWithOneRunUpdate) {
  loop().set_continuations_first(true);
  tools_.in_process = true;
  set_script(kNoopTwiceScript);
  start_held_engine();
  AgentRecord agent = put_agent(kNoopAgent);
  std::string run_id = submit(new_session("a"), agent, "go");
  settle();
  ASSERT_EQ(held_->held.size(), 1u) << "one batch for the whole chain";
  const WriteBatch& batch = held_->held.front().first;
  std::vector<std::string> expected{kStepRunStarted, kStepModelCall, kStepToolCall, kStepModelCall,
                                    kStepToolCall,   kStepModelCall, kStepRunCompleted};
  EXPECT_EQ(held_->held_step_kinds(), expected);
  EXPECT_EQ(batch.items.size(), 6u) << "the input, three model messages, two tool results";
  ASSERT_EQ(batch.run_updates.size(), 1u);
  RunRecord inserted = run(run_id);
  EXPECT_EQ(batch.run_updates.front().version, inserted.version + 1);
  EXPECT_EQ(batch.run_updates.front().status, kRunCompleted);
  RunSnapshot folded;
  ASSERT_TRUE(fold_step(folded, steps(run_id).front()).is_ok());  // run_created, durable already
  for (const auto& step : batch.steps) ASSERT_TRUE(fold_step(folded, step).is_ok()) << step.kind;
  EXPECT_EQ(snapshot_to_json_text(folded), batch.run_updates.front().snapshot_json);
  EXPECT_FALSE(finished(run_id));
  held_->release();
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_EQ(run(run_id).snapshot_json, snapshot_to_json_text(folded));
}

// A batch of several steps that fails fails them all: the run reloads from
// what is durable and finishes with one gapless journal that its snapshot folds.
TEST_F(StoreFaultsTest, AFailedBatchOfStepsRunAheadFailsThemAllAndTheRunRecovers) {
  loop().set_continuations_first(true);
  tools_.in_process = true;
  set_script(kNoopOnceScript);
  start_faulty_engine();
  AgentRecord agent = put_agent(kNoopAgent);
  faulty_->fail_commits = {2};  // 1 run_created, 2 every step from run_started to run_completed
  std::string run_id = submit(new_session("a"), agent, "go");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  RunSnapshot folded = folded_journal(run_id);
  EXPECT_EQ(folded.status, kRunCompleted);
  EXPECT_EQ(snapshot_to_json_text(folded), run(run_id).snapshot_json);
  EXPECT_EQ(faulty_->commits, 3) << "the chain was written again in one batch after the reload";
}

// A run whose session was made with it (POST /v1/runs) reads neither the
// session's items (there are none) nor, when it ends, the session's queue.
TEST_F(StoreFaultsTest, ARunInItsOwnNewSessionReadsNoItemsAndNoQueue) {
  set_script(R"({"scripts": {"m": {"steps": [{"content": "done"}]}}})");
  start_faulty_engine();
  AgentRecord agent = put_agent(R"({"name": "a", "model": {"provider": "scripted", "model": "m"}})");
  RunOptions options;
  options.new_session = true;
  std::string run_id;
  engine_->submit_run(new_session("a"), agent, "go", [&](Result<RunRecord> run) { run_id = run->id; }, options);
  ASSERT_TRUE(pump([&] { return !run_id.empty() && finished(run_id); }));
  settle();
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_EQ(faulty_->item_reads, 0);
  EXPECT_EQ(faulty_->queued_reads, 0);
}

// A run submitted to that session while the first is active queues behind
// it, and starts when the first ends (the queue is read then).
TEST_F(StoreFaultsTest, ARunQueuedInANewSessionStartsWhenTheFirstEnds) {
  set_script(R"({"scripts": {"m": {"steps": [{"content": "done"}]}}})");
  start_faulty_engine();
  AgentRecord agent = put_agent(R"({"name": "a", "model": {"provider": "scripted", "model": "m"}})");
  SessionRecord session = new_session("a");
  RunOptions options;
  options.new_session = true;
  std::string first, second;
  engine_->submit_run(session, agent, "one", [&](Result<RunRecord> run) { first = run->id; }, options);
  engine_->submit_run(session, agent, "two", [&](Result<RunRecord> run) { second = run->id; });
  ASSERT_TRUE(pump([&] { return !first.empty() && !second.empty() && finished(first) && finished(second); }));
  EXPECT_EQ(run(first).status, kRunCompleted);
  EXPECT_EQ(run(second).status, kRunCompleted);
  EXPECT_GE(faulty_->queued_reads, 1);
}

// A tool that reaches outside (HTTP) starts only once the steps it follows are
// durable: the model step that asked for it is committed first.
TEST_F(StoreFaultsTest, AnOutsideEffectWaitsForTheStepsBeforeIt) {
  set_script(kScript);
  start_held_engine();
  AgentRecord agent = put_agent(kAgent);
  std::string run_id = submit(new_session("a"), agent, "C-9");
  settle();
  std::vector<std::string> expected{kStepRunStarted, kStepModelCall};
  EXPECT_EQ(held_->held_step_kinds(), expected);
  EXPECT_TRUE(tools_.attempts_by_key.empty()) << "no HTTP call before the model step is durable";
  held_->release();
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_EQ(tools_.attempts_by_key[run_id + ":3"], 1);
  EXPECT_EQ(tools_.attempts_by_key[run_id + ":4"], 1);
}

// A commit that fails while later in-process steps are already requested:
// those fail with it (each run update names the version before it), the run
// reloads from what is durable and finishes with one consistent journal.
TEST_F(StoreFaultsTest, AFailedCommitTakesTheStepsRunAheadWithIt) {
  set_script(kNoopOnceScript);
  start_faulty_engine();
  AgentRecord agent = put_agent(kNoopAgent);
  // Commits: 1 run_created, 2 run_started, 3 model step (fails), then those run ahead of it.
  faulty_->fail_commits = {3};
  std::string run_id = submit(new_session("a"), agent, "go");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  RunSnapshot folded = folded_journal(run_id);
  EXPECT_EQ(snapshot_to_json_text(folded), run(run_id).snapshot_json);
}

// A run of an idle session starts before its own insert is durable: its
// run_started follows the insert in commit order (one group on a real store).
TEST_F(StoreFaultsTest, ARunOfAnIdleSessionStartsBeforeItsInsertIsDurable) {
  set_script(R"({"scripts": {"m": {"steps": [{"content": "done"}]}}})");
  start_held_engine();
  held_->pass = 0;
  AgentRecord agent = put_agent(R"({"name": "a", "model": {"provider": "scripted", "model": "m"}})");
  SessionRecord session = new_session("a");
  std::optional<Result<RunRecord>> submitted;
  engine_->submit_run(session, agent, "go", [&](Result<RunRecord> run) { submitted = std::move(run); });
  settle();
  EXPECT_FALSE(submitted.has_value()) << "not acknowledged before its insert is durable";
  std::vector<std::string> expected{kStepRunCreated, kStepRunStarted, kStepModelCall, kStepRunCompleted};
  EXPECT_EQ(held_->held_step_kinds(), expected);
  held_->release();
  ASSERT_TRUE(pump([&] { return submitted.has_value(); }));
  ASSERT_TRUE(submitted->is_ok());
  std::string run_id = (*submitted)->id;
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
}

// If that insert fails, the run never existed: nothing of it is written, the
// caller gets the error, and the session takes the next run.
TEST_F(StoreFaultsTest, ARunStartedBeforeItsInsertFailedLeavesNothingBehind) {
  set_script(R"({"scripts": {"m": {"steps": [{"content": "done"}]}}})");
  start_faulty_engine();
  AgentRecord agent = put_agent(R"({"name": "a", "model": {"provider": "scripted", "model": "m"}})");
  SessionRecord session = new_session("a");
  faulty_->fail_commits = {1};  // the first run's insert
  std::optional<Status> refused;
  engine_->submit_run(session, agent, "one", [&](Result<RunRecord> run) { refused = run.status(); });
  ASSERT_TRUE(pump([&] { return refused.has_value(); }));
  EXPECT_FALSE(refused->is_ok());
  settle();
  EXPECT_TRUE(store_->list_unfinished_runs_of_session("t1", session.id, 10)->empty());
  std::string second = submit(session, agent, "two");
  ASSERT_TRUE(pump([&] { return finished(second); }));
  EXPECT_EQ(run(second).status, kRunCompleted);
  EXPECT_EQ(store_->list_runs("t1", session.id, 10)->size(), 1u);
}

// A session made with its run (POST /v1/runs) is inserted in the run's own
// batch: if that batch fails, neither exists; when it commits, both do.
TEST_F(StoreFaultsTest, ASessionInsertedWithItsRunIsDurableWithItOrNotAtAll) {
  set_script(R"({"scripts": {"m": {"steps": [{"content": "done"}]}}})");
  start_faulty_engine();
  AgentRecord agent = put_agent(R"({"name": "a", "model": {"provider": "scripted", "model": "m"}})");
  auto submit_with_session = [&](const SessionRecord& session, Result<RunRecord>& outcome, bool& called) {
    RunOptions options;
    options.new_session = true;
    options.session_insert = session;
    engine_->submit_run(session, agent, "go", [&](Result<RunRecord> run) {
      outcome = std::move(run);
      called = true;
    }, options);
  };
  SessionRecord lost{"t1", "sess_lost", "a", "{}", clock_.now_ms()};
  faulty_->fail_commits = {1};  // the batch with the session and the run's insert
  Result<RunRecord> refused = Status(Code::kInternal, "not called");
  bool refused_called = false;
  submit_with_session(lost, refused, refused_called);
  ASSERT_TRUE(pump([&] { return refused_called; }));
  EXPECT_FALSE(refused.is_ok());
  settle();
  EXPECT_EQ(store_->get_session("t1", lost.id).status().code(), Code::kNotFound) << "the session was not written";

  SessionRecord kept{"t1", "sess_kept", "a", "{}", clock_.now_ms()};
  Result<RunRecord> started = Status(Code::kInternal, "not called");
  bool started_called = false;
  submit_with_session(kept, started, started_called);
  ASSERT_TRUE(pump([&] { return started_called && started.is_ok() && finished(started->id); }));
  EXPECT_EQ(run(started->id).status, kRunCompleted);
  EXPECT_TRUE(store_->get_session("t1", kept.id).is_ok()) << "the session was written with its run";
}

}  // namespace
}  // namespace continuum::testing
