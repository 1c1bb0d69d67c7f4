// libFuzzer target: the OpenAI Responses/Conversations request parts a
// client sends. The bytes, when they are JSON, go to parse_response_input,
// parse_client_tools and parse_conversation_items, and (for an object) its
// "input", "tools" and "items" do too, as in a request body. What they
// accept must hold their contracts, and the messages they make must show as
// conversation items and list in pages. The same bytes go to ResponseOutput
// as a journal step's payload of every kind. Must never crash or leak.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/openai_items.h"
#include "engine/snapshot.h"

namespace {

using namespace continuum;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

std::string role_of(const std::string& message_json) {
  auto message = parse_json_object(message_json);
  check(message.is_ok());  // the parsers write JSON objects
  const json::value* role = message->if_contains("role");
  check(role != nullptr && role->is_string());
  return std::string(role->as_string());
}

// Stored as session items, the messages show as conversation items with
// unique ids, which page through in either order.
void show_as_items(const std::vector<std::string>& messages) {
  json::array all;
  int64_t seq = 0;
  for (const auto& message : messages) {
    ItemRecord item;
    item.seq = ++seq;
    item.message_json = message;
    for (auto& view : conversation_items(item)) all.push_back(std::move(view));
  }
  for (const char* order : {"asc", "desc"}) {
    std::string after;
    size_t listed = 0;
    for (int pages = 0; pages <= 1000; ++pages) {
      auto page = list_page(all, after, "7", order);
      check(page.is_ok());
      listed += page->at("data").as_array().size();
      if (!page->at("has_more").as_bool()) break;
      after = std::string(page->at("last_id").as_string());
    }
    check(listed == all.size());
  }
}

void consume_input(const json::value& value) {
  auto input = parse_response_input(value, "input");
  if (!input.is_ok()) {
    check(input.status().code() == Code::kInvalidArgument && !input.status().param().empty());
    return;
  }
  // Text, or the outputs of function calls (a function may return nothing).
  check(!input->text.empty() || !input->call_outputs.empty());
  check(!input->messages.empty());
  std::string first = role_of(input->messages.front());
  check(first == "user" || first == "tool");
  size_t tool_messages = 0;
  for (const auto& message : input->messages) {
    std::string role = role_of(message);
    check(role == "user" || role == "assistant" || role == "tool");
    if (role == "tool") ++tool_messages;
  }
  check(tool_messages == input->call_outputs.size());
  show_as_items(input->messages);
}

void consume_tools(const json::value& value) {
  auto tools = parse_client_tools(value, "tools");
  if (!tools.is_ok()) {
    check(tools.status().code() == Code::kInvalidArgument && !tools.status().param().empty());
    return;
  }
  check(tools->size() <= 128);
  for (const auto& tool : *tools) {
    const json::object& function = tool.as_object().at("function").as_object();
    check(is_client_tool(*tools, std::string_view(function.at("name").as_string())));
    check(function.at("parameters").is_object());
  }
}

void consume_items(const json::value& value) {
  auto items = parse_conversation_items(value, "items");
  if (!items.is_ok()) {
    check(items.status().code() == Code::kInvalidArgument && !items.status().param().empty());
    return;
  }
  check(items->size() <= 20);
  for (const auto& message : *items) role_of(message);
  show_as_items(*items);
}

// The bytes as a payload of every step kind, into a run's output.
void consume_as_journal(std::string_view text) {
  ResponseOutput output("run_f");
  int64_t seq = 0;
  for (const char* kind : {kStepRunCreated, kStepRunStarted, kStepModelCall, kStepToolCall, kStepModelCall,
                           kStepToolCall, kStepRunCompleted}) {
    for (size_t index : output.add_step(StepRecord{"t", "run_f", seq++, kind, std::string(text), 0})) {
      check(index < output.items().size());
    }
  }
  (void)output.output_text();
  RunRecord run;
  run.id = "run_f";
  run.snapshot_json = std::string(text);
  (void)to_json(response_object(run, StepRecord{"t", "run_f", 0, kStepRunCreated, std::string(text), 0}, output));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  consume_as_journal(text);
  auto value = parse_json(text);
  if (!value.is_ok()) return 0;
  consume_input(*value);
  consume_tools(*value);
  consume_items(*value);
  if (const json::object* body = value->if_object()) {
    if (const json::value* input = body->if_contains("input")) consume_input(*input);
    if (const json::value* tools = body->if_contains("tools")) consume_tools(*tools);
    if (const json::value* items = body->if_contains("items")) consume_items(*items);
  }
  return 0;
}
