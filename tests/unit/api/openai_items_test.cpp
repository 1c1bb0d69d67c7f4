// Tests of the OpenAI Responses/Conversations conversions (api/openai_items.h):
// request input and tools, conversation items, list pages, and the output
// items and response object derived from a run's journal.
#include "api/openai_items.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/snapshot.h"

namespace continuum {
namespace {

json::value parse(std::string_view text) {
  auto value = parse_json(text);
  EXPECT_TRUE(value.is_ok()) << text;
  return value.is_ok() ? *value : json::value(nullptr);
}

json::object object_of(const std::string& text) {
  auto obj = parse_json_object(text);
  EXPECT_TRUE(obj.is_ok()) << text;
  return obj.is_ok() ? *obj : json::object{};
}

std::string str(const json::value& value) { return std::string(value.as_string()); }

// Expects a 400 about `param`.
template <typename T>
void expect_invalid(const Result<T>& result, const std::string& param) {
  ASSERT_FALSE(result.is_ok());
  EXPECT_EQ(result.status().code(), Code::kInvalidArgument) << result.status().to_string();
  EXPECT_EQ(result.status().param(), param) << result.status().message();
  EXPECT_FALSE(result.status().message().empty());
}

// ---- parse_response_input ----

TEST(ResponseInputTest, StringIsOneUserMessage) {
  auto input = parse_response_input(json::value("What is 2+2?"), "input");
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  EXPECT_EQ(input->text, "What is 2+2?");
  EXPECT_EQ(input->instructions, "");
  EXPECT_TRUE(input->call_outputs.empty());
  ASSERT_EQ(input->messages.size(), 1u);
  json::object message = object_of(input->messages[0]);
  EXPECT_EQ(str(message.at("role")), "user");
  EXPECT_EQ(str(message.at("content")), "What is 2+2?");
}

TEST(ResponseInputTest, MessageItemsWithStringAndPartContent) {
  auto input = parse_response_input(parse(R"([
      {"type": "message", "role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hi"},
      {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]},
      {"role": "developer", "content": [{"type": "input_text", "text": "Answer in French."}]},
      {"role": "user", "content": [{"type": "input_text", "text": "How are"}, {"type": "input_text", "text": "you?"}]}
    ])"),
                                    "input");
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  EXPECT_EQ(input->instructions, "Be brief.\n\nAnswer in French.") << "system and developer become instructions";
  EXPECT_EQ(input->text, "How are\nyou?") << "the newest user message is the run's input";
  ASSERT_EQ(input->messages.size(), 3u) << "system and developer messages are not messages";
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& text : input->messages) {
    json::object message = object_of(text);
    got.emplace_back(str(message.at("role")), str(message.at("content")));
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "How are\nyou?"}}));
}

TEST(ResponseInputTest, FunctionCallOutputsBecomeToolMessages) {
  auto input = parse_response_input(parse(R"([
      {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
      {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "sunny"}]}
    ])"),
                                    "input");
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  EXPECT_EQ(input->call_outputs, (std::vector<std::string>{"call_a", "call_b"}));
  ASSERT_EQ(input->messages.size(), 2u);
  json::object first = object_of(input->messages[0]);
  EXPECT_EQ(first, (json::object{{"role", "tool"}, {"tool_call_id", "call_a"}, {"content", "18C"}}));
  json::object second = object_of(input->messages[1]);
  EXPECT_EQ(str(second.at("tool_call_id")), "call_b");
  EXPECT_EQ(str(second.at("content")), "sunny");
  EXPECT_EQ(input->text, "18C\nsunny") << "without user text, the outputs are the run's input";
}

TEST(ResponseInputTest, ConsecutiveFunctionCallsMergeIntoOneAssistantMessage) {
  auto input = parse_response_input(parse(R"([
      {"role": "user", "content": "Weather in Paris and Rome?"},
      {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
      {"type": "function_call", "call_id": "call_b", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
      {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
      {"type": "function_call_output", "call_id": "call_b", "output": "24C"},
      {"type": "function_call", "call_id": "call_c", "name": "get_time", "arguments": "{}"},
      {"type": "function_call_output", "call_id": "call_c", "output": "noon"}
    ])"),
                                    "input");
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  EXPECT_EQ(input->text, "Weather in Paris and Rome?");
  EXPECT_EQ(input->call_outputs, (std::vector<std::string>{"call_a", "call_b", "call_c"}));
  std::vector<std::string> roles;
  for (const auto& text : input->messages) roles.emplace_back(object_of(text).at("role").as_string());
  EXPECT_EQ(roles, (std::vector<std::string>{"user", "assistant", "tool", "tool", "assistant", "tool"}));
  json::object assistant = object_of(input->messages[1]);
  EXPECT_TRUE(assistant.at("content").is_null());
  ASSERT_EQ(assistant.at("tool_calls").as_array().size(), 2u) << "one message for consecutive calls";
  EXPECT_EQ(assistant.at("tool_calls").as_array()[1],
            parse(R"({"id": "call_b", "type": "function",
                      "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}})"));
  EXPECT_EQ(object_of(input->messages[4]).at("tool_calls").as_array().size(), 1u)
      << "a call after an output starts a new assistant message";
}

TEST(ResponseInputTest, EmptyInputsAreRejected) {
  expect_invalid(parse_response_input(json::value(""), "input"), "input");
  expect_invalid(parse_response_input(json::array{}, "input"), "input");
  expect_invalid(parse_response_input(json::value(42), "input"), "input");
  expect_invalid(parse_response_input(json::object{}, "input"), "input");
}

TEST(ResponseInputTest, AtMostOneThousandItems) {
  json::array items;
  for (int i = 0; i < 1000; ++i) items.push_back(json::object{{"role", "user"}, {"content", "q" + std::to_string(i)}});
  auto input = parse_response_input(items, "input");
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  EXPECT_EQ(input->messages.size(), 1000u);
  EXPECT_EQ(input->text, "q999");
  items.push_back(json::object{{"role", "user"}, {"content", "one too many"}});
  expect_invalid(parse_response_input(items, "input"), "input");
}

TEST(ResponseInputTest, UnsupportedItemsNameTheirParam) {
  expect_invalid(parse_response_input(parse(R"([{"role": "user", "content": "a"},
                                                {"type": "reasoning", "summary": []}])"),
                                      "input"),
                 "input[1]");
  expect_invalid(parse_response_input(parse(R"([{"role": "user", "content": [
                                                   {"type": "input_text", "text": "what is this?"},
                                                   {"type": "input_image", "image_url": "https://x/y.png"}]}])"),
                                      "input"),
                 "input[0].content");
  expect_invalid(parse_response_input(parse(R"([{"role": "tool", "content": "x"}])"), "input"), "input[0].role");
  expect_invalid(parse_response_input(parse(R"([{"role": "user"}])"), "input"), "input[0].content");
  expect_invalid(parse_response_input(parse(R"(["just a string"])"), "input"), "input[0]");
  expect_invalid(parse_response_input(parse(R"([{"type": "function_call_output", "output": "x"}])"), "input"),
                 "input[0].call_id");
  expect_invalid(parse_response_input(parse(R"([{"type": "function_call_output", "call_id": "c"}])"), "input"),
                 "input[0].output");
  expect_invalid(parse_response_input(parse(R"([{"role": "user", "content": "a"},
                                                {"type": "function_call", "call_id": "c", "arguments": "{}"}])"),
                                      "input"),
                 "input[1].name");
}

TEST(ResponseInputTest, TurnMustStartWithUserMessageOrFunctionOutput) {
  // System messages do not count: the first of the rest is the assistant's.
  expect_invalid(parse_response_input(parse(R"([{"role": "system", "content": "s"},
                                                {"role": "assistant", "content": "Hello"},
                                                {"role": "user", "content": "Hi"}])"),
                                      "input"),
                 "input");
  auto outputs_first = parse_response_input(parse(R"([
      {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
      {"role": "user", "content": "and tomorrow?"}])"),
                                            "input");
  ASSERT_TRUE(outputs_first.is_ok()) << outputs_first.status().to_string();
  EXPECT_EQ(outputs_first->text, "and tomorrow?");
}

TEST(ResponseInputTest, NeedsUserTextOrFunctionOutputs) {
  expect_invalid(parse_response_input(parse(R"([{"role": "system", "content": "only instructions"}])"), "input"),
                 "input");
  expect_invalid(parse_response_input(parse(R"([{"role": "user", "content": ""}])"), "input"), "input");
  expect_invalid(parse_response_input(parse(R"([{"role": "user", "content": []}])"), "input"), "input");
}

// A client function may return nothing; its output is still the answer to
// the model's call, and without it the conversation cannot go on.
TEST(ResponseInputTest, EmptyFunctionOutputIsStillAnOutput) {
  auto input =
      parse_response_input(parse(R"([{"type": "function_call_output", "call_id": "call_a", "output": ""}])"), "input");
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  EXPECT_EQ(input->call_outputs, (std::vector<std::string>{"call_a"}));
  ASSERT_EQ(input->messages.size(), 1u);
  EXPECT_EQ(object_of(input->messages[0]),
            (json::object{{"role", "tool"}, {"tool_call_id", "call_a"}, {"content", ""}}));
}

// ---- parse_client_tools ----

TEST(ClientToolsTest, FunctionToolsBecomeChatDefinitions) {
  auto tools = parse_client_tools(parse(R"([
      {"type": "function", "name": "get_weather", "description": "Weather for a city",
       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
       "strict": true},
      {"type": "function", "name": "now-utc"}
    ])"),
                                  "tools");
  ASSERT_TRUE(tools.is_ok()) << tools.status().to_string();
  ASSERT_EQ(tools->size(), 2u);
  EXPECT_EQ((*tools)[0], parse(R"({"type": "function", "function": {"name": "get_weather",
      "description": "Weather for a city",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})"));
  EXPECT_EQ((*tools)[1], parse(R"({"type": "function", "function": {"name": "now-utc", "description": "",
      "parameters": {"type": "object", "properties": {}}}})"))
      << "no parameters: an empty object schema";
  EXPECT_TRUE(is_client_tool(*tools, "now-utc"));
  EXPECT_FALSE(is_client_tool(*tools, "search"));
}

TEST(ClientToolsTest, NullOrEmptyIsNoTools) {
  auto none = parse_client_tools(json::value(nullptr), "tools");
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
  auto empty = parse_client_tools(json::array{}, "tools");
  ASSERT_TRUE(empty.is_ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ClientToolsTest, OnlyFunctionTools) {
  expect_invalid(parse_client_tools(json::value("get_weather"), "tools"), "tools");
  expect_invalid(parse_client_tools(parse(R"([{"type": "web_search"}])"), "tools"), "tools[0].type");
  expect_invalid(parse_client_tools(parse(R"([{"type": "function", "name": "a"}, {"name": "b"}])"), "tools"),
                 "tools[1].type");
  expect_invalid(parse_client_tools(parse(R"([{"type": "mcp", "server_label": "x", "server_url": "http://x"}])"),
                                    "tools"),
                 "tools[0].type");
  expect_invalid(parse_client_tools(parse(R"([7])"), "tools"), "tools[0].type");
}

TEST(ClientToolsTest, NamesAreCheckedAndUnique) {
  auto with_name = [](const std::string& name) {
    return parse_client_tools(json::array{json::object{{"type", "function"}, {"name", name}}}, "tools");
  };
  EXPECT_TRUE(with_name("a").is_ok());
  EXPECT_TRUE(with_name(std::string(64, 'n')).is_ok());
  EXPECT_TRUE(with_name("get_Weather-2").is_ok());
  expect_invalid(with_name(""), "tools[0].name");
  expect_invalid(with_name(std::string(65, 'n')), "tools[0].name");
  expect_invalid(with_name("files__read"), "tools[0].name");  // "__" separates MCP server and tool names
  expect_invalid(with_name("get weather"), "tools[0].name");
  expect_invalid(with_name("get.weather"), "tools[0].name");
  expect_invalid(with_name("wétter"), "tools[0].name");
  expect_invalid(parse_client_tools(parse(R"([{"type": "function"}])"), "tools"), "tools[0].name");
  expect_invalid(parse_client_tools(parse(R"([{"type": "function", "name": "a"}, {"type": "function", "name": "b"},
                                              {"type": "function", "name": "a"}])"),
                                    "tools"),
                 "tools[2].name");
  expect_invalid(parse_client_tools(parse(R"([{"type": "function", "name": "a", "parameters": "{}"}])"), "tools"),
                 "tools[0].parameters");
  expect_invalid(parse_client_tools(parse(R"([{"type": "function", "name": "a", "description": 5}])"), "tools"),
                 "tools[0].description");
}

TEST(ClientToolsTest, AtMost128Tools) {
  json::array tools;
  for (int i = 0; i < 128; ++i) tools.push_back(json::object{{"type", "function"}, {"name", "f" + std::to_string(i)}});
  auto ok = parse_client_tools(tools, "tools");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->size(), 128u);
  tools.push_back(json::object{{"type", "function"}, {"name", "f128"}});
  expect_invalid(parse_client_tools(tools, "tools"), "tools");
}

// ---- parse_conversation_items ----

TEST(ConversationItemsInputTest, MessageItemsBecomeChatMessages) {
  auto items = parse_conversation_items(parse(R"([
      {"type": "message", "role": "user", "content": "Hi"},
      {"role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
      {"role": "developer", "content": "Be brief."}
    ])"),
                                        "items");
  ASSERT_TRUE(items.is_ok()) << items.status().to_string();
  ASSERT_EQ(items->size(), 3u);
  EXPECT_EQ(object_of((*items)[0]), (json::object{{"role", "user"}, {"content", "Hi"}}));
  EXPECT_EQ(object_of((*items)[1]), (json::object{{"role", "assistant"}, {"content", "Hello"}}));
  EXPECT_EQ(object_of((*items)[2]), (json::object{{"role", "system"}, {"content", "Be brief."}}));
  auto none = parse_conversation_items(json::array{}, "items");
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
}

TEST(ConversationItemsInputTest, MessageItemsOnlyAndAtMostTwenty) {
  expect_invalid(parse_conversation_items(json::object{}, "items"), "items");
  expect_invalid(parse_conversation_items(parse(R"([{"role": "user", "content": "a"},
      {"type": "function_call_output", "call_id": "c", "output": "x"}])"),
                                          "items"),
                 "items[1]");
  expect_invalid(parse_conversation_items(parse(R"([{"role": "user", "content": [{"type": "input_file"}]}])"),
                                          "items"),
                 "items[0].content");
  json::array twenty;
  for (int i = 0; i < 20; ++i) twenty.push_back(json::object{{"role", "user"}, {"content", "x"}});
  EXPECT_TRUE(parse_conversation_items(twenty, "items").is_ok());
  twenty.push_back(json::object{{"role", "user"}, {"content", "x"}});
  expect_invalid(parse_conversation_items(twenty, "items"), "items");
}

// ---- conversation_items ----

ItemRecord stored(int64_t seq, const std::string& message_json) {
  ItemRecord item;
  item.seq = seq;
  item.tenant_id = "t";
  item.session_id = "conv_1";
  item.run_id = "run_1";
  item.message_json = message_json;
  return item;
}

TEST(ConversationItemsViewTest, MessagesOfEachRole) {
  EXPECT_EQ(json::value(conversation_items(stored(3, R"({"role": "user", "content": "Hi"})"))),
            parse(R"([{"type": "message", "id": "item_3", "status": "completed", "role": "user",
                       "content": [{"type": "input_text", "text": "Hi"}]}])"));
  EXPECT_EQ(json::value(conversation_items(stored(4, R"({"role": "system", "content": "Be brief."})"))),
            parse(R"([{"type": "message", "id": "item_4", "status": "completed", "role": "system",
                       "content": [{"type": "input_text", "text": "Be brief."}]}])"));
  EXPECT_EQ(json::value(conversation_items(stored(5, R"({"role": "assistant", "content": "Hello"})"))),
            parse(R"([{"type": "message", "id": "item_5", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}])"));
}

TEST(ConversationItemsViewTest, ToolCallsAreFunctionCallItems) {
  json::array items = conversation_items(stored(7, R"({"role": "assistant", "content": "Checking.",
      "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]})"));
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(str(items[0].as_object().at("id")), "item_7");
  EXPECT_EQ(str(items[0].as_object().at("type")), "message");
  EXPECT_EQ(items[1], parse(R"({"type": "function_call", "id": "item_7_c1", "call_id": "call_a",
      "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"})"));
  EXPECT_EQ(str(items[2].as_object().at("id")), "item_7_c2");
  EXPECT_EQ(str(items[2].as_object().at("call_id")), "call_b");

  json::array calls_only = conversation_items(stored(8, R"({"role": "assistant", "content": null,
      "tool_calls": [{"id": "call_c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})"));
  ASSERT_EQ(calls_only.size(), 1u) << "no empty message for an assistant message without text";
  EXPECT_EQ(str(calls_only[0].as_object().at("id")), "item_8_c1");
}

TEST(ConversationItemsViewTest, ToolMessageIsFunctionCallOutput) {
  EXPECT_EQ(json::value(conversation_items(stored(9, R"({"role": "tool", "tool_call_id": "call_a", "content": "18C"})"))),
            parse(R"([{"type": "function_call_output", "id": "item_9", "call_id": "call_a", "output": "18C",
                       "status": "completed"}])"));
}

TEST(ConversationItemsViewTest, UnreadableMessageShowsNothing) {
  EXPECT_TRUE(conversation_items(stored(1, "not json")).empty());
}

// ---- list_page ----

json::array items_abcde() {
  json::array all;
  for (const char* id : {"a", "b", "c", "d", "e"}) all.push_back(json::object{{"id", id}, {"n", id}});
  return all;
}

std::vector<std::string> ids(const json::object& page) {
  std::vector<std::string> out;
  for (const auto& item : page.at("data").as_array()) out.emplace_back(item.as_object().at("id").as_string());
  return out;
}

TEST(ListPageTest, DefaultIsNewestFirstUpToTwenty) {
  json::array all;
  for (int i = 0; i < 25; ++i) all.push_back(json::object{{"id", "i" + std::to_string(i)}});
  auto page = list_page(all, "", "", "");
  ASSERT_TRUE(page.is_ok()) << page.status().to_string();
  EXPECT_EQ(str(page->at("object")), "list");
  EXPECT_EQ(page->at("data").as_array().size(), 20u);
  EXPECT_EQ(str(page->at("first_id")), "i24");
  EXPECT_EQ(str(page->at("last_id")), "i5");
  EXPECT_TRUE(page->at("has_more").as_bool());
}

TEST(ListPageTest, OrderLimitAndCursor) {
  auto asc = list_page(items_abcde(), "", "2", "asc");
  ASSERT_TRUE(asc.is_ok());
  EXPECT_EQ(ids(*asc), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(str(asc->at("first_id")), "a");
  EXPECT_EQ(str(asc->at("last_id")), "b");
  EXPECT_TRUE(asc->at("has_more").as_bool());

  auto next = list_page(items_abcde(), "b", "2", "asc");
  ASSERT_TRUE(next.is_ok());
  EXPECT_EQ(ids(*next), (std::vector<std::string>{"c", "d"}));
  EXPECT_TRUE(next->at("has_more").as_bool());
  auto last = list_page(items_abcde(), "d", "2", "asc");
  ASSERT_TRUE(last.is_ok());
  EXPECT_EQ(ids(*last), (std::vector<std::string>{"e"}));
  EXPECT_FALSE(last->at("has_more").as_bool());

  auto desc = list_page(items_abcde(), "d", "100", "desc");
  ASSERT_TRUE(desc.is_ok());
  EXPECT_EQ(ids(*desc), (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_FALSE(desc->at("has_more").as_bool());

  auto exact = list_page(items_abcde(), "", "5", "asc");
  ASSERT_TRUE(exact.is_ok());
  EXPECT_EQ(exact->at("data").as_array().size(), 5u);
  EXPECT_FALSE(exact->at("has_more").as_bool()) << "a full last page has no more";
}

TEST(ListPageTest, EmptyPagesHaveNullIds) {
  auto empty = list_page(json::array{}, "", "", "asc");
  ASSERT_TRUE(empty.is_ok());
  EXPECT_TRUE(empty->at("data").as_array().empty());
  EXPECT_TRUE(empty->at("first_id").is_null());
  EXPECT_TRUE(empty->at("last_id").is_null());
  EXPECT_FALSE(empty->at("has_more").as_bool());
  auto after_last = list_page(items_abcde(), "e", "", "asc");
  ASSERT_TRUE(after_last.is_ok());
  EXPECT_TRUE(after_last->at("first_id").is_null());
  EXPECT_FALSE(after_last->at("has_more").as_bool());
}

TEST(ListPageTest, BadParameters) {
  for (const char* limit : {"0", "101", "-1", "abc", "5x", "1e2"}) {
    auto page = list_page(items_abcde(), "", limit, "");
    ASSERT_FALSE(page.is_ok()) << limit;
    EXPECT_EQ(page.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(page.status().param(), "limit");
  }
  EXPECT_TRUE(list_page(items_abcde(), "", "1", "").is_ok());
  EXPECT_TRUE(list_page(items_abcde(), "", "100", "").is_ok());
  auto order = list_page(items_abcde(), "", "", "newest");
  ASSERT_FALSE(order.is_ok());
  EXPECT_EQ(order.status().param(), "order");
  auto unknown = list_page(items_abcde(), "zzz", "", "");
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
}

// ---- ResponseOutput and response_object ----

StepRecord step(int64_t seq, const char* kind, const std::string& payload) {
  return StepRecord{"t", "run_1", seq, kind, payload, 1'700'000'000'000};
}

const char* kWeatherTool =
    R"({"type": "function", "function": {"name": "get_weather", "description": "",
        "parameters": {"type": "object", "properties": {}}}})";

StepRecord created_step(const std::string& extra = "") {
  return step(0, kStepRunCreated,
              R"({"input": "hi", "agent": "helper", "agent_version": 1)" + (extra.empty() ? "" : ", " + extra) + "}");
}

TEST(ResponseOutputTest, TextReplyIsOneMessage) {
  ResponseOutput output("run_1");
  EXPECT_TRUE(output.add_step(created_step()).empty());
  EXPECT_TRUE(output.add_step(step(1, kStepRunStarted, "{}")).empty());
  EXPECT_EQ(output.message_index(2), 0u) << "where the message will be, before it is";
  auto touched = output.add_step(step(2, kStepModelCall, R"({"message": {"role": "assistant", "content": "Hello"},
      "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}})"));
  EXPECT_EQ(touched, (std::vector<size_t>{0}));
  EXPECT_TRUE(output.add_step(step(3, kStepRunCompleted, R"({"output": "Hello"})")).empty());
  ASSERT_EQ(output.items().size(), 1u);
  EXPECT_EQ(output.items()[0], parse(R"({"type": "message", "id": "msg_run_1_2", "status": "completed",
      "role": "assistant", "content": [{"type": "output_text", "text": "Hello", "annotations": []}]})"));
  EXPECT_EQ(output.message_index(2), 0u);
  EXPECT_EQ(output.message_id(2), "msg_run_1_2");
  EXPECT_EQ(output.output_text(), "Hello");
}

TEST(ResponseOutputTest, ServerToolCallsCompleteOrFail) {
  ResponseOutput output("run_1");
  output.add_step(created_step());
  output.add_step(step(1, kStepRunStarted, "{}"));
  auto touched = output.add_step(step(2, kStepModelCall, R"({"message": {"role": "assistant", "content": "Looking.",
      "tool_calls": [
        {"id": "call_s", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"x\"}"}},
        {"id": "call_m", "type": "function", "function": {"name": "files__read", "arguments": "{\"path\":\"/a\"}"}},
        {"id": "call_f", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}]}})"));
  EXPECT_EQ(touched, (std::vector<size_t>{0, 1, 2, 3}));
  ASSERT_EQ(output.items().size(), 4u);
  EXPECT_EQ(output.items()[1], parse(R"({"type": "tool_call", "id": "tc_run_1_2_1", "call_id": "call_s",
      "name": "search", "arguments": "{\"q\":\"x\"}", "output": null, "status": "in_progress"})"));
  EXPECT_EQ(output.items()[2], parse(R"({"type": "mcp_call", "id": "tc_run_1_2_2", "server_label": "files",
      "name": "read", "arguments": "{\"path\":\"/a\"}", "output": null, "error": null, "status": "in_progress"})"));

  EXPECT_EQ(output.add_step(step(3, kStepToolCall, R"({"call_id": "call_s", "name": "search",
      "arguments": "{\"q\":\"x\"}", "output": "found it", "is_error": false})")),
            (std::vector<size_t>{1}));
  EXPECT_EQ(output.add_step(step(4, kStepToolCall, R"({"call_id": "call_m", "name": "files__read",
      "arguments": "{}", "output": "no such file", "is_error": true})")),
            (std::vector<size_t>{2}));
  EXPECT_EQ(output.add_step(step(5, kStepToolCall, R"({"call_id": "call_f", "name": "fetch",
      "arguments": "{}", "output": "timeout", "is_error": true})")),
            (std::vector<size_t>{3}));
  EXPECT_TRUE(output.add_step(step(6, kStepToolCall, R"({"call_id": "call_unknown", "output": "x"})")).empty());

  const json::object& search = output.items()[1].as_object();
  EXPECT_EQ(str(search.at("status")), "completed");
  EXPECT_EQ(str(search.at("output")), "found it");
  const json::object& mcp = output.items()[2].as_object();
  EXPECT_EQ(str(mcp.at("status")), "failed");
  EXPECT_EQ(str(mcp.at("error")), "no such file");
  EXPECT_TRUE(mcp.at("output").is_null());
  const json::object& fetch = output.items()[3].as_object();
  EXPECT_EQ(str(fetch.at("status")), "failed");
  EXPECT_EQ(str(fetch.at("output")), "timeout");

  EXPECT_EQ(output.add_step(step(7, kStepModelCall, R"({"message": {"role": "assistant", "content": " Done."}})")),
            (std::vector<size_t>{4}));
  EXPECT_EQ(output.message_index(7), 4u);
  EXPECT_EQ(output.output_text(), "Looking. Done.") << "the text of every message, in order";
}

TEST(ResponseOutputTest, ClientToolCallsAreFunctionCalls) {
  ResponseOutput output("run_1");
  output.add_step(created_step(std::string(R"("client_tools": [)") + kWeatherTool + "]"));
  output.add_step(step(1, kStepRunStarted, "{}"));
  auto touched = output.add_step(step(2, kStepModelCall, R"({"message": {"role": "assistant", "content": null,
      "tool_calls": [
        {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "call_s", "type": "function", "function": {"name": "search", "arguments": "{}"}}]}})"));
  EXPECT_EQ(touched, (std::vector<size_t>{0, 1}));
  ASSERT_EQ(output.items().size(), 2u);
  EXPECT_EQ(output.items()[0], parse(R"({"type": "function_call", "id": "fc_run_1_2_1", "call_id": "call_w",
      "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"})"));
  EXPECT_EQ(str(output.items()[1].as_object().at("type")), "tool_call") << "not a client tool: the server runs it";
  EXPECT_EQ(output.output_text(), "");
}

TEST(ResponseOutputTest, UnreadableStepsAddNothing) {
  ResponseOutput output("run_1");
  EXPECT_TRUE(output.add_step(step(2, kStepModelCall, "not json")).empty());
  EXPECT_TRUE(output.add_step(step(2, kStepModelCall, R"({"usage": {}})")).empty());
  EXPECT_TRUE(output.add_step(step(2, kStepModelCall, R"({"message": {"role": "assistant", "content": "",
      "tool_calls": [{"id": "x"}, 5]}})")).empty());
  EXPECT_TRUE(output.items().empty());
}

RunRecord run_record(const std::string& status, const std::string& snapshot_json) {
  RunRecord run;
  run.tenant_id = "t";
  run.id = "run_1";
  run.session_id = "conv_9";
  run.agent_name = "helper";
  run.agent_version = 1;
  run.status = status;
  run.snapshot_json = snapshot_json;
  run.created_at_ms = 1'700'000'123'456;
  return run;
}

TEST(ResponseObjectTest, StatusMapping) {
  EXPECT_EQ(response_status(kRunQueued), "queued");
  EXPECT_EQ(response_status(kRunRunning), "in_progress");
  EXPECT_EQ(response_status(kRunWaiting), "in_progress") << "waiting for an approval";
  EXPECT_EQ(response_status(kRunCompleted), "completed");
  EXPECT_EQ(response_status(kRunFailed), "failed");
  EXPECT_EQ(response_status(kRunCancelled), "cancelled");
}

TEST(ResponseObjectTest, FieldsFromRunSnapshotAndRequestOptions) {
  StepRecord created = created_step(R"("instructions": "Answer in French.",
      "annotations": {"metadata": {"ticket": "T-1"}, "previous_response_id": "run_0", "store": false,
                      "tools": [{"type": "function", "name": "get_weather"}]})");
  ResponseOutput output("run_1");
  output.add_step(created);
  output.add_step(step(2, kStepModelCall, R"({"message": {"role": "assistant", "content": "Bonjour"}})"));
  RunSnapshot snapshot;
  snapshot.status = kRunCompleted;
  snapshot.usage = Usage{12, 5, 17};
  json::object response = response_object(run_record(kRunCompleted, snapshot_to_json_text(snapshot)), created,
                                          output);
  EXPECT_EQ(str(response.at("id")), "run_1");
  EXPECT_EQ(str(response.at("object")), "response");
  EXPECT_EQ(response.at("created_at").as_int64(), 1'700'000'123) << "seconds";
  EXPECT_EQ(str(response.at("status")), "completed");
  EXPECT_EQ(str(response.at("model")), "helper");
  EXPECT_EQ(response.at("output"), json::value(output.items()));
  EXPECT_EQ(str(response.at("output_text")), "Bonjour");
  EXPECT_EQ(str(response.at("instructions")), "Answer in French.");
  EXPECT_EQ(response.at("metadata"), parse(R"({"ticket": "T-1"})"));
  EXPECT_EQ(str(response.at("previous_response_id")), "run_0");
  EXPECT_FALSE(response.at("store").as_bool());
  EXPECT_EQ(response.at("tools"), parse(R"([{"type": "function", "name": "get_weather"}])"));
  EXPECT_EQ(response.at("conversation"), parse(R"({"id": "conv_9"})"));
  EXPECT_TRUE(response.at("error").is_null());
  EXPECT_EQ(response.at("usage"), parse(R"({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
      "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 17})"));
}

TEST(ResponseObjectTest, DefaultsWithoutOptions) {
  StepRecord created = created_step();
  ResponseOutput output("run_1");
  output.add_step(created);
  json::object response = response_object(run_record(kRunWaiting, "{}"), created, output);
  EXPECT_EQ(str(response.at("status")), "in_progress");
  EXPECT_TRUE(response.at("instructions").is_null());
  EXPECT_EQ(response.at("metadata"), json::value(json::object{}));
  EXPECT_TRUE(response.at("previous_response_id").is_null());
  EXPECT_TRUE(response.at("store").as_bool());
  EXPECT_FALSE(response.at("background").as_bool());
  EXPECT_EQ(response.at("tools"), json::value(json::array{}));
  EXPECT_EQ(response.at("output"), json::value(json::array{}));
  EXPECT_EQ(str(response.at("output_text")), "");
  EXPECT_EQ(response.at("usage").as_object().at("total_tokens").as_int64(), 0);
}

TEST(ResponseObjectTest, FailedRunCarriesItsError) {
  StepRecord created = created_step();
  ResponseOutput output("run_1");
  output.add_step(created);
  RunSnapshot snapshot;
  snapshot.status = kRunFailed;
  snapshot.error_code = "model_error";
  snapshot.error_message = "the model answered 500";
  json::object response =
      response_object(run_record(kRunFailed, snapshot_to_json_text(snapshot)), created, output);
  EXPECT_EQ(str(response.at("status")), "failed");
  EXPECT_EQ(response.at("error"), parse(R"({"code": "model_error", "message": "the model answered 500"})"));
  EXPECT_TRUE(response.at("incomplete_details").is_null());
}

TEST(ResponseObjectTest, ARunStoppedByItsLimitsIsIncomplete) {
  StepRecord created = created_step();
  ResponseOutput output("run_1");
  output.add_step(created);
  RunSnapshot snapshot;
  snapshot.status = kRunFailed;
  snapshot.error_code = "max_steps";
  snapshot.error_message = "the run reached its limit of 3 model steps";
  json::object response =
      response_object(run_record(kRunFailed, snapshot_to_json_text(snapshot)), created, output);
  EXPECT_EQ(str(response.at("status")), "incomplete");
  EXPECT_EQ(response.at("incomplete_details"), parse(R"({"reason": "max_steps"})"));
  EXPECT_TRUE(response.at("error").is_null());
}

}  // namespace
}  // namespace continuum
