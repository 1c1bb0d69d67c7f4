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

json::array client_tools(const char* name) {
  return json::array{json::object{{"type", "function"},
                                  {"function", json::object{{"name", name}, {"description", ""},
                                                            {"parameters", json::object{{"type", "object"}}}}}}};
}

TEST(DeciderTest, ClientToolCallsAreLeftToTheClient) {
  RunSnapshot s = running();
  s.next_seq = 5;
  s.client_tools = client_tools("get_weather");
  s.pending_tools = {PendingTool{3, "call_w", "get_weather", "{}"}, PendingTool{4, "call_s", "search", "{}"}};
  auto commands = decide(agent(), s, 0);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].kind, Command::Kind::kCallTool);
  EXPECT_EQ(commands[0].tool.name, "search");
  EXPECT_EQ(commands[0].seq, 4);
}

TEST(DeciderTest, OnlyClientCallsPendingCompletesTheRun) {
  RunSnapshot s = running();
  s.next_seq = 5;
  s.client_tools = client_tools("get_weather");
  s.pending_tools = {PendingTool{3, "call_a", "get_weather", "{\"city\":\"Paris\"}"},
                     PendingTool{4, "call_b", "get_weather", "{\"city\":\"Rome\"}"}};
  auto commands = decide(agent(), s, 0);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].kind, Command::Kind::kComplete);
  EXPECT_EQ(commands[0].seq, 5);
  EXPECT_EQ(commands[0].output, "");

  s.client_tools = client_tools("other");  // not offered by the client: the server runs them
  commands = decide(agent(), s, 0);
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[0].kind, Command::Kind::kCallTool);
}

}  // namespace
}  // namespace continuum
