#include <gtest/gtest.h>

#include "agent/context.h"

namespace continuum {
namespace {

ContextItem item(const std::string& run, const std::string& role, const std::string& content) {
  return ContextItem{run, to_json(json::object{{"role", role}, {"content", content}})};
}

std::string user(const std::string& content) { return item("", "user", content).message_json; }

std::vector<std::string> roles(const json::array& context) {
  std::vector<std::string> out;
  for (const auto& message : context) out.emplace_back(message.as_object().at("role").as_string());
  return out;
}

TEST(ContextTest, CurrentTurnAndWholeEarlierTurnsThatFit) {
  // Newest first: run r3 (current), r2, r1; each turn user + assistant.
  std::vector<ContextItem> items = {item("r3", "user", "q3"),
                                    item("r2", "assistant", std::string(400, 'b')), item("r2", "user", "q2"),
                                    item("r1", "assistant", std::string(4000, 'a')), item("r1", "user", "q1")};
  json::array context = assemble_context("sys", "r3", user("q3"), items, 400);
  EXPECT_EQ(roles(context), (std::vector<std::string>{"system", "user", "assistant", "user"}));
  EXPECT_EQ(context.back().as_object().at("content").as_string(), "q3");
}

TEST(ContextTest, OversizedCurrentTurnKeepsUserMessageAndNewestItems) {
  // Regression: a large input echoed into a tool call used to leave the model
  // with [system, tool] only, losing the task.
  std::string big(44000, 'x');
  std::vector<ContextItem> items = {item("r1", "tool", big), item("r1", "assistant", big), item("r1", "user", big)};
  json::array context = assemble_context("", "r1", user(big), items, 16000);
  ASSERT_FALSE(context.empty());
  EXPECT_EQ(roles(context).front(), "user") << "the task is always shown";
  ASSERT_GE(context.size(), 3u);
  EXPECT_EQ(roles(context)[1], "assistant") << "the call is shown before its result";
  EXPECT_EQ(roles(context)[2], "tool");
}

TEST(ContextTest, LongRunningTurnIsCutAtAnAssistantMessage) {
  std::vector<ContextItem> items;
  for (int i = 0; i < 50; ++i) {
    items.push_back(item("r1", "tool", std::string(100, 't')));
    items.push_back(item("r1", "assistant", std::string(100, 'a')));
  }
  json::array context = assemble_context("", "r1", user("go"), items, 500);
  std::vector<std::string> got = roles(context);
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got[0], "user");
  EXPECT_EQ(got[1], "assistant");
  EXPECT_LT(got.size(), 20u) << "older items are left out";
}

TEST(ContextTest, IncompleteEarlierTurnIsLeftOut) {
  // Only the tail of r1 was read (no user message): it must not be shown in part.
  std::vector<ContextItem> items = {item("r2", "user", "q2"), item("r1", "tool", "t"), item("r1", "assistant", "a")};
  json::array context = assemble_context("", "r2", user("q2"), items, 10000);
  EXPECT_EQ(roles(context), (std::vector<std::string>{"user"}));
}

}  // namespace
}  // namespace continuum
