#include <gtest/gtest.h>

#include "agent/decider.h"

namespace continuum {
namespace {

AgentSpec agent() {
  AgentSpec spec;
  spec.name = "a";
  spec.limits.steps_max = 3;
  spec.limits.total_tokens_max = 100;
  return spec;
}

RunSnapshot running() {
  RunSnapshot s;
  s.status = kRunRunning;
  s.next_seq = 2;
  return s;
}

TEST(DeciderTest, CallsModelWhenNothingPending) {
  auto commands = decide(agent(), running(), 0);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].kind, Command::Kind::kCallModel);
  EXPECT_EQ(commands[0].seq, 2);
}

TEST(DeciderTest, CallsEveryPendingToolInParallel) {
  RunSnapshot s = running();
  s.pending_tools = {PendingTool{3, "a", "f", "{}"}, PendingTool{4, "b", "g", "{}"}};
  auto commands = decide(agent(), s, 0);
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[1].kind, Command::Kind::kCallTool);
  EXPECT_EQ(commands[1].tool.seq, 4);
}

TEST(DeciderTest, CompletesOnFinalText) {
  RunSnapshot s = running();
  s.final_text = "bye";
  auto commands = decide(agent(), s, 0);
  EXPECT_EQ(commands[0].kind, Command::Kind::kComplete);
  EXPECT_EQ(commands[0].output, "bye");
}

TEST(DeciderTest, LimitsFailWithReasons) {
  RunSnapshot s = running();
  s.model_calls = 3;
  EXPECT_EQ(decide(agent(), s, 0)[0].error_code, "max_steps");
  s.model_calls = 0;
  s.usage.total_tokens = 100;
  EXPECT_EQ(decide(agent(), s, 0)[0].error_code, "max_total_tokens");
  s.usage.total_tokens = 0;
  s.deadline_at_ms = 10;
  EXPECT_EQ(decide(agent(), s, 10)[0].error_code, "deadline_exceeded");
  EXPECT_EQ(decide(agent(), s, 9)[0].kind, Command::Kind::kCallModel);
}

TEST(DeciderTest, NothingForQueuedOrFinishedRuns) {
  RunSnapshot s;
  EXPECT_TRUE(decide(agent(), s, 0).empty());
  s.status = kRunCompleted;
  EXPECT_TRUE(decide(agent(), s, 0).empty());
}

}  // namespace
}  // namespace continuum
