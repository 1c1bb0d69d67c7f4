#include <gtest/gtest.h>

#include "agent/context.h"

namespace continuum {
namespace {

ContextItem item(const std::string& run, const std::string& role, const std::string& content) {
  return ContextItem{run, to_json(json::object{{"role", role}, {"content", content}}), nullptr};
}

// The same item with its message already parsed, as the engine keeps them.
ContextItem parsed(ContextItem item) {
  item.message = std::make_shared<const json::object>(*parse_json_object(item.message_json));
  return item;
}

std::string user(const std::string& content) { return item("", "user", content).message_json; }

std::vector<std::string> roles(const json::array& context) {
  std::vector<std::string> out;
  for (const auto& message : context) out.emplace_back(message.as_object().at("role").as_string());
  return out;
}

TEST(ContextTest, CurrentTurnAndWholeEarlierTurnsThatFit) {
  // Newest first: run r3 (current), r2, r1; each turn user + assistant.
  ContextItems items = {item("r3", "user", "q3"),
                                    item("r2", "assistant", std::string(400, 'b')), item("r2", "user", "q2"),
                                    item("r1", "assistant", std::string(4000, 'a')), item("r1", "user", "q1")};
  json::array context = to_json_array(assemble_context("sys", "r3", user("q3"), items, 400));
  EXPECT_EQ(roles(context), (std::vector<std::string>{"system", "user", "assistant", "user"}));
  EXPECT_EQ(context.back().as_object().at("content").as_string(), "q3");
}

TEST(ContextTest, ParsedItemsGiveTheSameContext) {
  ContextItems items = {item("r2", "tool", "t"), item("r2", "assistant", std::string(400, 'b')),
                        item("r2", "user", "q2"), item("r1", "assistant", "a"), item("r1", "user", "q1")};
  ContextItems kept;
  for (const auto& each : items) kept.push_back(parsed(each));
  for (int64_t budget : {40, 400, 16000}) {
    EXPECT_EQ(to_json_array(assemble_context("sys", "r2", user("q2"), kept, budget)),
              to_json_array(assemble_context("sys", "r2", user("q2"), items, budget)))
        << budget;
  }
}

TEST(ContextTest, ParsedItemsAreSharedNotCopied) {
  ContextItems kept = {parsed(item("r2", "assistant", "a2")), parsed(item("r2", "user", "q2")),
                       parsed(item("r1", "assistant", "a1")), parsed(item("r1", "user", "q1"))};
  ContextMessages messages = assemble_context("sys", "r2", user("q2"), kept, 16000);
  ASSERT_EQ(messages.size(), 5u);
  EXPECT_EQ(messages[0]->at("role").as_string(), "system");
  for (size_t i = 1; i < messages.size(); ++i) {
    EXPECT_EQ(messages[i].get(), kept[messages.size() - 1 - i].message.get()) << i;
  }
}

TEST(ContextTest, OversizedCurrentTurnKeepsUserMessageAndNewestItems) {
  // Regression: a large input echoed into a tool call used to leave the model
  // with [system, tool] only, losing the task.
  std::string big(44000, 'x');
  ContextItems items = {item("r1", "tool", big), item("r1", "assistant", big), item("r1", "user", big)};
  json::array context = to_json_array(assemble_context("", "r1", user(big), items, 16000));
  ASSERT_FALSE(context.empty());
  EXPECT_EQ(roles(context).front(), "user") << "the task is always shown";
  ASSERT_GE(context.size(), 3u);
  EXPECT_EQ(roles(context)[1], "assistant") << "the call is shown before its result";
  EXPECT_EQ(roles(context)[2], "tool");
}

TEST(ContextTest, LongRunningTurnIsCutAtAnAssistantMessage) {
  ContextItems items;
  for (int i = 0; i < 50; ++i) {
    items.push_back(item("r1", "tool", std::string(100, 't')));
    items.push_back(item("r1", "assistant", std::string(100, 'a')));
  }
  json::array context = to_json_array(assemble_context("", "r1", user("go"), items, 500));
  std::vector<std::string> got = roles(context);
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got[0], "user");
  EXPECT_EQ(got[1], "assistant");
  EXPECT_LT(got.size(), 20u) << "older items are left out";
}

TEST(ContextTest, IncompleteEarlierTurnIsLeftOut) {
  // Only the tail of r1 was read (no user message): it must not be shown in part.
  ContextItems items = {item("r2", "user", "q2"), item("r1", "tool", "t"), item("r1", "assistant", "a")};
  json::array context = to_json_array(assemble_context("", "r2", user("q2"), items, 10000));
  EXPECT_EQ(roles(context), (std::vector<std::string>{"user"}));
}

ContextItem message(const std::string& run, json::object obj) { return ContextItem{run, to_json(obj), nullptr}; }

ContextItem calls(const std::string& run, std::initializer_list<const char*> ids) {
  json::array tool_calls;
  for (const char* id : ids) {
    tool_calls.push_back(json::object{{"id", id}, {"type", "function"},
                                      {"function", json::object{{"name", "get_weather"}, {"arguments", "{}"}}}});
  }
  return message(run, json::object{{"role", "assistant"}, {"content", nullptr}, {"tool_calls", tool_calls}});
}

ContextItem output(const std::string& run, const std::string& call_id, const std::string& content) {
  return message(run, json::object{{"role", "tool"}, {"tool_call_id", call_id}, {"content", content}});
}

std::vector<std::string> contents(const json::array& context) {
  std::vector<std::string> out;
  for (const auto& m : context) {
    const json::value& content = m.as_object().at("content");
    out.emplace_back(content.is_string() ? std::string(content.as_string()) : "<calls>");
  }
  return out;
}

TEST(ContextTest, ClientFunctionOutputsContinueThePreviousTurn) {
  // r1 ended with the client's function calls; r2 starts with their outputs.
  ContextItems items = {output("r2", "call_b", "24C"), output("r2", "call_a", "18C"),
                                    calls("r1", {"call_a", "call_b"}), item("r1", "user", "weather?"),
                                    item("r0", "assistant", "a0"), item("r0", "user", "q0")};
  json::array context = to_json_array(assemble_context("sys", "r2", user("18C\n24C"), items, 10000));
  EXPECT_EQ(roles(context),
            (std::vector<std::string>{"system", "user", "assistant", "user", "assistant", "tool", "tool"}));
  EXPECT_EQ(contents(context), (std::vector<std::string>{"sys", "q0", "a0", "weather?", "<calls>", "18C", "24C"}))
      << "the calls' turn with its question, the earlier turn whole before it";

  // The model answered in r2: still one turn.
  items.insert(items.begin(), item("r2", "assistant", "Paris 18C, Rome 24C"));
  context = to_json_array(assemble_context("", "r2", user("18C\n24C"), items, 10000));
  EXPECT_EQ(roles(context), (std::vector<std::string>{"user", "assistant", "user", "assistant", "tool", "tool",
                                                      "assistant"}));
}

TEST(ContextTest, TwoRoundsOfClientCallsAreOneTurn) {
  // r1 asks and calls; r2 answers the call with outputs and the model calls
  // again; r3 answers that.
  ContextItems items = {output("r3", "call_b", "B"), calls("r2", {"call_b"}), output("r2", "call_a", "A"),
                                    calls("r1", {"call_a"}), item("r1", "user", "q1")};
  json::array context = to_json_array(assemble_context("", "r3", user("B"), items, 10000));
  EXPECT_EQ(roles(context), (std::vector<std::string>{"user", "assistant", "tool", "assistant", "tool"}));
  EXPECT_EQ(contents(context), (std::vector<std::string>{"q1", "<calls>", "A", "<calls>", "B"}));
}

TEST(ContextTest, EarlierTurnContinuedByFunctionOutputsIsWholeOrLeftOut) {
  ContextItems items = {item("r3", "user", "q3"), item("r2", "assistant", "done"),
                                    output("r2", "call_a", "18C"), calls("r1", {"call_a"}),
                                    item("r1", "user", std::string(4000, 'w'))};
  json::array all = to_json_array(assemble_context("", "r3", user("q3"), items, 10000));
  EXPECT_EQ(roles(all), (std::vector<std::string>{"user", "assistant", "tool", "assistant", "user"}));
  // r2 alone would fit, but without r1 its output has no call: neither is shown.
  json::array fitting = to_json_array(assemble_context("", "r3", user("q3"), items, 400));
  EXPECT_EQ(roles(fitting), (std::vector<std::string>{"user"}));
  EXPECT_EQ(contents(fitting), (std::vector<std::string>{"q3"}));
}

TEST(ContextTest, ConversationItemsBeginningWithAnAssistantMessageJoinThePreviousTurn) {
  // Items added to the conversation outside a run (POST .../items) form a
  // pseudo-run "items_<hex>".
  ContextItems items = {item("r3", "user", "q3"), item("items_ab12", "assistant", "noted"),
                                    item("r1", "assistant", "a1"), item("r1", "user", "q1")};
  json::array context = to_json_array(assemble_context("", "r3", user("q3"), items, 10000));
  EXPECT_EQ(contents(context), (std::vector<std::string>{"q1", "a1", "noted", "q3"}));

  // Starting with a user message, they are a turn of their own.
  items = {item("r3", "user", "q3"), item("items_cd34", "assistant", "a2"), item("items_cd34", "user", "q2"),
           item("r1", "assistant", std::string(4000, 'a')), item("r1", "user", "q1")};
  context = to_json_array(assemble_context("", "r3", user("q3"), items, 400));
  EXPECT_EQ(contents(context), (std::vector<std::string>{"q2", "a2", "q3"})) << "r1 does not fit";
}

TEST(ContextTest, WindowCuttingTheContinuedTurnKeepsTheTruncationRules) {
  // Only r1's call was loaded, not its user message: the current turn is
  // incomplete, so the run's input leads and the tail starts at the call.
  ContextItems items = {output("r2", "call_a", "18C"), calls("r1", {"call_a"})};
  json::array context = to_json_array(assemble_context("", "r2", user("18C"), items, 10000));
  EXPECT_EQ(roles(context), (std::vector<std::string>{"user", "assistant", "tool"}));
  EXPECT_EQ(contents(context), (std::vector<std::string>{"18C", "<calls>", "18C"}));

  // Only the output was loaded: no tool result without its call.
  items = {output("r2", "call_a", "18C")};
  context = to_json_array(assemble_context("", "r2", user("18C"), items, 10000));
  EXPECT_EQ(roles(context), (std::vector<std::string>{"user"}));

  // Loaded whole but over budget: cut at the assistant message.
  std::string big(8000, 'x');
  items = {output("r2", "call_a", big), calls("r1", {"call_a"}), item("r1", "user", "weather?")};
  context = to_json_array(assemble_context("", "r2", user("the output"), items, 100));
  EXPECT_EQ(roles(context), (std::vector<std::string>{"user", "assistant", "tool"}));
  EXPECT_EQ(contents(context).front(), "the output");
}

}  // namespace
}  // namespace continuum
