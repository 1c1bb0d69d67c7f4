// Shared fixtures for engine tests: a manual loop and clock, a real SQLite
// file in a temp dir, the scripted provider and a recording tool runner.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "engine/engine.h"
#include "providers/scripted_provider.h"
#include "store/sqlite/sqlite_store.h"

namespace continuum::testing {

// Records every attempt; fails the first `fail_first` attempts of each key with `fail_status`.
class RecordingToolRunner final : public ToolRunner {
 public:
  explicit RecordingToolRunner(EventLoop& loop) : loop_(loop) {}
  void call(ToolCall call, std::function<void(ToolOutcome)> done) override {
    int attempt = ++attempts_by_key[call.idempotency_key];
    keys.push_back(call.idempotency_key);
    ToolOutcome outcome;
    if (attempt <= fail_first) {
      outcome.error = EffectError{"http_" + std::to_string(fail_status), "injected", fail_status >= 500, -1};
    } else {
      outcome.ok = true;
      outcome.output = call.spec->name + "=" + call.arguments_json + pad_output;
    }
    if (hold) {
      held.push_back([done, outcome] { done(outcome); });
      return;
    }
    if (in_process) {
      loop_.post_continuation([done, outcome] { done(outcome); });
      return;
    }
    loop_.post([done, outcome] { done(outcome); });
  }
  std::map<std::string, int> attempts_by_key;
  std::vector<std::string> keys;
  std::vector<std::function<void()>> held;  // when hold: completions not yet delivered
  bool hold = false;
  int fail_first = 0;
  int fail_status = 503;
  std::string pad_output;  // appended to every successful output
  bool in_process = false;  // results come as continuations, as builtin tools' do

 private:
  EventLoop& loop_;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("continuum-engine-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    open_store();
  }
  void TearDown() override {
    store_.reset();  // drains commits; their callbacks only post to the loop
    loop_.clear();   // tasks that would use the engine
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open_store() {
    auto store = SqliteStore::open(SqliteStoreOptions{(dir_ / "test.db").string()}, clock_, nullptr);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(*store);
  }
  void set_script(const std::string& script_json) {
    auto book = ScriptBook::parse(script_json);
    ASSERT_TRUE(book.is_ok()) << book.status().to_string();
    provider_ = std::make_unique<ScriptedProvider>(loop_, std::make_shared<ScriptBook>(std::move(*book)));
  }
  // A new engine on the same store: what a restart looks like. `cluster`:
  // several nodes (null = this node is alone).
  void start_engine(Cluster* cluster = nullptr) {
    EngineOptions options;
    options.cluster = cluster;
    options.gate = gate_;
    options.approval_ttl_ms = approval_ttl_ms_;
    engine_ = std::make_unique<Engine>(
        *store_, loop_, clock_, random_, [this](const ModelSpec&) -> ModelProvider* { return provider_.get(); },
        tools_, nullptr, options);
  }
  // Simulates kill -9: the engine's memory is gone, only committed state remains.
  void crash_and_restart() {
    store_.reset();          // queued commits finish, as if they made it to disk before the kill
    loop_.clear();           // tasks of the dead engine
    engine_.reset();
    tools_.held.clear();
    open_store();
    start_engine();
    ASSERT_TRUE(engine_->recover().is_ok());
  }
  // kill -9 and restart of a node in a cluster.
  void crash_and_restart_on(Cluster* cluster) {
    store_.reset();
    loop_.clear();
    engine_.reset();
    tools_.held.clear();
    open_store();
    start_engine(cluster);
    ASSERT_TRUE(engine_->recover().is_ok());
  }
  // Runs what is ready (including store callbacks arriving meanwhile) until
  // the loop stays idle for a while; fires no timers.
  void settle(int idle_rounds = 50) {
    for (int idle = 0; idle < idle_rounds;) {
      if (loop().run_ready() > 0) {
        idle = 0;
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        ++idle;
      }
    }
  }
  // Pumps the loop until `done()` or the budget runs out; fires timers when idle.
  bool pump(const std::function<bool()>& done, int idle_rounds_before_timer = 30) {
    int idle = 0;
    for (int round = 0; round < 200000; ++round) {
      if (done()) return true;
      if (loop().run_ready() > 0) {
        idle = 0;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      if (++idle >= idle_rounds_before_timer) {
        idle = 0;
        loop().fire_next_timer();
      }
    }
    return done();
  }
  ManualEventLoop& loop() { return loop_; }

  AgentRecord put_agent(const std::string& spec_json) {
    auto obj = parse_json_object(spec_json);
    EXPECT_TRUE(obj.is_ok());
    auto spec = parse_agent_spec(*obj);
    EXPECT_TRUE(spec.is_ok()) << spec.status().to_string();
    auto latest = store_->get_agent("t1", spec->name, std::nullopt);
    AgentRecord record{"t1", spec->name, latest.is_ok() ? latest->version + 1 : 1, to_json(agent_spec_to_json(*spec)),
                       clock_.now_ms()};
    WriteBatch batch;
    batch.agent_inserts.push_back(record);
    EXPECT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
    return record;
  }
  SessionRecord new_session(const std::string& agent) {
    SessionRecord session{"t1", "sess_" + random_.hex(6), agent, "{}", clock_.now_ms()};
    WriteBatch batch;
    batch.session_inserts.push_back(session);
    EXPECT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
    return session;
  }
  std::string submit(const SessionRecord& session, const AgentRecord& agent, const std::string& input) {
    std::string run_id;
    engine_->submit_run(session, agent, input, [&](Result<RunRecord> run) {
      ASSERT_TRUE(run.is_ok()) << run.status().to_string();
      run_id = run->id;
    });
    EXPECT_TRUE(pump([&] { return !run_id.empty(); }));
    return run_id;
  }
  RunRecord run(const std::string& run_id) { return *store_->get_run("t1", run_id); }
  bool finished(const std::string& run_id) { return is_terminal_status(run(run_id).status); }
  std::vector<StepRecord> steps(const std::string& run_id) { return *store_->list_steps("t1", run_id, -1, 100000); }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  ManualClock clock_;
  SeededRandom random_{42};
  ManualEventLoop loop_{clock_};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<ScriptedProvider> provider_;
  RecordingToolRunner tools_{loop_};
  std::unique_ptr<Engine> engine_;
  EffectGate* gate_ = nullptr;  // policy over effects (null = all allowed)
  int64_t approval_ttl_ms_ = 3'600'000;
};

}  // namespace continuum::testing
