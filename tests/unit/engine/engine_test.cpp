// Engine behaviour with an injected clock, loop, scripted model, recording
// tools and a real SQLite file.
#include "tests/unit/engine/test_env.h"

namespace continuum::testing {
namespace {

constexpr const char* kAgent = R"({
  "name": "triage", "model": {"provider": "scripted", "model": "m"},
  "instructions": "Be brief.",
  "tools": [
    {"type": "http", "name": "lookup", "url": "http://tools.invalid/lookup",
     "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
     "retry": {"max_attempts": 3, "initial_backoff_ms": 100}},
    {"type": "http", "name": "ticket", "url": "http://tools.invalid/ticket"}],
  "limits": {"max_steps": 5}
})";

constexpr const char* kScript = R"({"scripts": {"m": {"steps": [
  {"tool_calls": [{"name": "lookup", "arguments": {"id": "{{input}}"}},
                  {"name": "ticket", "arguments": {"id": "{{input}}"}}]},
  {"tool_calls": [{"name": "ticket", "arguments": {"priority": "high"}}]},
  {"content": "done: {{tool_results}}"}]}}})";

TEST_F(EngineTest, RunCompletesThroughParallelToolCallsWithStableKeys) {
  set_script(kScript);
  start_engine();
  AgentRecord agent = put_agent(kAgent);
  SessionRecord session = new_session("triage");
  std::string run_id = submit(session, agent, "C-1");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));

  RunRecord record = run(run_id);
  EXPECT_EQ(record.status, kRunCompleted);
  auto snapshot = snapshot_from_json(record.snapshot_json);
  EXPECT_EQ(snapshot->output, "done: lookup={\"id\":\"C-1\"}; ticket={\"id\":\"C-1\"}; ticket={\"priority\":\"high\"}");
  EXPECT_EQ(snapshot->model_calls, 3);
  EXPECT_EQ(snapshot->tool_calls, 3);
  // Keys are {run_id}:{seq}; the two parallel calls take the seqs after the model step.
  std::vector<std::string> expected = {run_id + ":3", run_id + ":4", run_id + ":6"};
  std::vector<std::string> keys = tools_.keys;
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, expected);
}

TEST_F(EngineTest, JournalFoldEqualsMaterializedSnapshot) {
  set_script(kScript);
  start_engine();
  AgentRecord agent = put_agent(kAgent);
  std::string run_id = submit(new_session("triage"), agent, "C-2");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  RunSnapshot folded;
  for (const auto& step : steps(run_id)) ASSERT_TRUE(fold_step(folded, step).is_ok()) << step.kind;
  EXPECT_EQ(snapshot_to_json_text(folded), run(run_id).snapshot_json);
}

TEST_F(EngineTest, RestartResumesWithoutRepeatingCompletedToolsAndResendsInFlightWithSameKey) {
  set_script(kScript);
  start_engine();
  AgentRecord agent = put_agent(kAgent);
  tools_.hold = true;  // tool calls are sent but their results never arrive
  std::string run_id = submit(new_session("triage"), agent, "C-3");  // it starts at once
  ASSERT_TRUE(pump([&] { return tools_.keys.size() == 2; }));
  // Deliver only the first result, let it commit, then "crash".
  tools_.held.front()();
  tools_.held.erase(tools_.held.begin());
  ASSERT_TRUE(pump([&] { return snapshot_from_json(run(run_id).snapshot_json)->tool_calls == 1; }));
  std::string completed_key = tools_.keys[0];
  std::string in_flight_key = tools_.keys[1];
  tools_.hold = false;
  tools_.keys.clear();
  crash_and_restart();
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_EQ(std::count(tools_.keys.begin(), tools_.keys.end(), completed_key), 0) << "completed effect re-ran";
  EXPECT_EQ(std::count(tools_.keys.begin(), tools_.keys.end(), in_flight_key), 1) << "in-flight call not re-sent";
}

TEST_F(EngineTest, ToolRetriesWithBackoffThenSucceeds) {
  set_script(kScript);
  start_engine();
  tools_.fail_first = 2;
  AgentRecord agent = put_agent(kAgent);
  int64_t start_ms = clock_.now_ms();
  std::string run_id = submit(new_session("triage"), agent, "C-4");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  for (const auto& [key, attempts] : tools_.attempts_by_key) EXPECT_GE(attempts, 2) << key;
  EXPECT_GE(clock_.now_ms() - start_ms, 100) << "backoff timers must have advanced the manual clock";
  bool saw_three_attempts = false;
  for (const auto& step : steps(run_id)) {
    if (step.kind == kStepToolCall && step.payload_json.find("\"attempts\":3") != std::string::npos) {
      saw_three_attempts = true;
    }
  }
  EXPECT_TRUE(saw_three_attempts);
}

TEST_F(EngineTest, ExhaustedToolBecomesErrorResultNotRunFailure) {
  set_script(kScript);
  start_engine();
  tools_.fail_first = 100;
  AgentRecord agent = put_agent(kAgent);
  std::string run_id = submit(new_session("triage"), agent, "C-5");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_NE(snapshot_from_json(run(run_id).snapshot_json)->output.find("error: tool"), std::string::npos);
}

TEST_F(EngineTest, SchemaViolationIsErrorResultWithoutCallingTool) {
  set_script(R"({"scripts": {"m": {"steps": [
    {"tool_calls": [{"name": "lookup", "arguments": {"id": 7}}]}, {"content": "{{tool_results}}"}]}}})");
  start_engine();
  AgentRecord agent = put_agent(kAgent);
  std::string run_id = submit(new_session("triage"), agent, "C-6");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_TRUE(tools_.keys.empty());
  EXPECT_NE(snapshot_from_json(run(run_id).snapshot_json)->output.find("JSON Schema"), std::string::npos);
}

TEST_F(EngineTest, MaxStepsEndsRunWithClearReason) {
  set_script(R"({"scripts": {"m": {"steps": [{"tool_calls": [{"name": "ticket", "arguments": {}}]}]}}})");
  start_engine();
  AgentRecord agent = put_agent(kAgent);
  std::string run_id = submit(new_session("triage"), agent, "loop");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  auto snapshot = snapshot_from_json(run(run_id).snapshot_json);
  EXPECT_EQ(run(run_id).status, kRunFailed);
  EXPECT_EQ(snapshot->error_code, "max_steps");
  EXPECT_EQ(snapshot->model_calls, 5);
}

TEST_F(EngineTest, ModelErrorsRetryThenExhaustionFailsRun) {
  set_script(R"({"scripts": {"m": {"steps": [{"content": "hi", "fail": [429, 500]}]}}})");
  start_engine();
  AgentRecord agent = put_agent(kAgent);
  std::string ok_run = submit(new_session("triage"), agent, "a");
  ASSERT_TRUE(pump([&] { return finished(ok_run); }));
  EXPECT_EQ(run(ok_run).status, kRunCompleted);

  set_script(R"({"scripts": {"m": {"steps": [{"content": "hi", "fail": [500, 500, 500, 500, 500]}]}}})");
  std::string bad_run = submit(new_session("triage"), agent, "b");
  ASSERT_TRUE(pump([&] { return finished(bad_run); }));
  auto snapshot = snapshot_from_json(run(bad_run).snapshot_json);
  EXPECT_EQ(run(bad_run).status, kRunFailed);
  EXPECT_EQ(snapshot->error_code, "model_error");
  EXPECT_NE(snapshot->error_message.find("4 attempt"), std::string::npos) << snapshot->error_message;
}

TEST_F(EngineTest, SecondInputQueuesBehindActiveRunAndSeesItsHistory) {
  set_script(R"({"scripts": {"m": {"steps": [{"content": "turn {{turn}}: {{input}}"}]}}})");
  start_engine();
  AgentRecord agent = put_agent(kAgent);
  SessionRecord session = new_session("triage");
  // Both submitted before either is durable: the first starts at once, the second waits.
  std::optional<RunRecord> first_record, second_record;
  engine_->submit_run(session, agent, "one", [&](Result<RunRecord> run) { first_record = *run; });
  engine_->submit_run(session, agent, "two", [&](Result<RunRecord> run) { second_record = *run; });
  ASSERT_TRUE(pump([&] { return first_record && second_record; }));
  EXPECT_EQ(first_record->status, kRunRunning);
  EXPECT_EQ(second_record->status, kRunQueued);
  std::string first = first_record->id, second = second_record->id;
  ASSERT_TRUE(pump([&] { return finished(first) && finished(second); }));
  EXPECT_EQ(snapshot_from_json(run(first).snapshot_json)->output, "turn 1: one");
  EXPECT_EQ(snapshot_from_json(run(second).snapshot_json)->output, "turn 2: two");
}

TEST_F(EngineTest, CancelActiveAndQueuedRuns) {
  set_script(kScript);
  start_engine();
  tools_.hold = true;
  AgentRecord agent = put_agent(kAgent);
  SessionRecord session = new_session("triage");
  std::string active = submit(session, agent, "x");
  std::string queued = submit(session, agent, "y");
  ASSERT_TRUE(pump([&] { return tools_.keys.size() == 2; }));
  Status cancelled_queued = internal_error("pending");
  engine_->cancel_run("t1", queued, [&](Status status) { cancelled_queued = status; });
  ASSERT_TRUE(pump([&] { return cancelled_queued.is_ok(); }));
  EXPECT_TRUE(cancelled_queued.is_ok());
  engine_->cancel_run("t1", active, [](Status status) { EXPECT_TRUE(status.is_ok()); });
  ASSERT_TRUE(pump([&] { return finished(active); }));
  EXPECT_EQ(run(active).status, kRunCancelled);
  EXPECT_EQ(run(queued).status, kRunCancelled);
  for (auto& complete : tools_.held) complete();  // late results of a cancelled run are dropped
  loop().run_ready();
  EXPECT_EQ(steps(active).back().kind, kStepRunCancelled);
}

TEST_F(EngineTest, DeadlineFailsRun) {
  set_script(kScript);
  start_engine();
  tools_.hold = true;
  AgentRecord agent = put_agent(R"({"name": "slow", "model": {"provider": "scripted", "model": "m"},
    "tools": [{"type": "http", "name": "lookup", "url": "http://x.invalid/"},
              {"type": "http", "name": "ticket", "url": "http://x.invalid/"}],
    "limits": {"deadline_ms": 5000}})");
  std::string run_id = submit(new_session("slow"), agent, "z");
  ASSERT_TRUE(pump([&] { return finished(run_id); }, 5));
  EXPECT_EQ(run(run_id).status, kRunFailed);
  EXPECT_EQ(snapshot_from_json(run(run_id).snapshot_json)->error_code, "deadline_exceeded");
}

// The reply comes after run_started is durable: a call run ahead of earlier
// steps' commits streams to nobody (its text comes with its step, after them).
TEST_F(EngineTest, ListenersSeeCommittedStepsInOrderAndTextDeltas) {
  set_script(R"({"scripts": {"m": {"steps": [{"content": "hello there", "delay_ms": 20}]}}})");
  start_engine();
  AgentRecord agent = put_agent(kAgent);
  SessionRecord session = new_session("triage");
  std::vector<std::string> seen;
  std::string run_id;
  engine_->submit_run(session, agent, "hi", [&](Result<RunRecord> run) {
    run_id = run->id;
    engine_->subscribe(run_id, [&](const RunEvent& event) { seen.push_back(event.type); });
  });
  // Until the listener saw the end: the store may report the run finished a
  // moment before the commit's callback reaches the loop (a flaky wait, once).
  ASSERT_TRUE(pump([&] { return !seen.empty() && seen.back() == "run_completed"; }));
  std::vector<std::string> expected = {"run_started", "text_delta", "model_call", "run_completed"};
  EXPECT_EQ(seen, expected);
}

// A tool result larger than the model's whole context budget keeps the call
// it answers in the context (else the model would get a result without its
// call, or neither, and ask again until max_steps).
TEST_F(EngineTest, AToolResultLargerThanTheContextBudgetKeepsItsCall) {
  set_script(R"({"scripts": {"m": {"steps": [{"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]},
                                              {"content": "done"}]}}})");
  start_engine();
  tools_.pad_output = std::string(8000, 'x');  // about 2,000 tokens
  AgentRecord agent = put_agent(R"({"name": "a", "model": {"provider": "scripted", "model": "m", "context_tokens": 256},
                                    "tools": [{"type": "http", "name": "lookup", "url": "http://tools.invalid/"}]})");
  std::string run_id = submit(new_session("a"), agent, "go");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  int model_calls = 0;
  for (const auto& step : steps(run_id)) model_calls += step.kind == kStepModelCall;
  EXPECT_EQ(model_calls, 2);
}

}  // namespace
}  // namespace continuum::testing
