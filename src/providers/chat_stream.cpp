#include "providers/chat_stream.h"

#include <boost/json/serialize.hpp>
#include <cstdint>
#include <utility>

namespace continuum {
namespace {

constexpr std::string_view kWhitespace = " \t\r\n";

std::string_view trim(std::string_view text) {
  std::size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  std::size_t last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

Status malformed(std::string message) { return invalid_argument("malformed model response: " + message); }

Status too_large(std::string_view what, std::size_t limit) {
  return Status(Code::kPayloadTooLarge,
                "model response " + std::string(what) + " exceeds the limit of " + std::to_string(limit));
}

// An integer JSON field, whichever numeric representation the peer used.
std::optional<int64_t> int_field(const json::object& obj, std::string_view key) {
  const json::value* value = obj.if_contains(key);
  if (value == nullptr) return std::nullopt;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64() && value->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(value->as_uint64());
  }
  if (value->is_double() && value->as_double() >= 0 && value->as_double() < 9e18) {
    return static_cast<int64_t>(value->as_double());
  }
  return std::nullopt;
}

std::string string_field(const json::object& obj, std::string_view key) {
  const json::value* value = obj.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

// Chat Completions usage -> ours. total_tokens defaults to the sum.
Usage usage_from_chat(const json::object& usage) {
  Usage result;
  result.input_tokens = int_field(usage, "prompt_tokens").value_or(0);
  result.output_tokens = int_field(usage, "completion_tokens").value_or(0);
  result.total_tokens = int_field(usage, "total_tokens").value_or(result.input_tokens + result.output_tokens);
  return result;
}

// The provider reported a failure inside a 2xx response (`{"error": ...}`).
Status provider_error(const json::value& error) {
  std::string message;
  if (error.is_string()) {
    message = std::string(error.as_string());
  } else if (error.is_object()) {
    message = string_field(error.as_object(), "message");
    std::string type = string_field(error.as_object(), "type");
    if (!type.empty()) message += " (" + type + ")";
  }
  if (message.empty()) message = json::serialize(error).substr(0, 500);
  return Status(Code::kUnavailable, "model provider error: " + message);
}

// One normalized tool call; a missing id becomes "call_<index>" (stable, so a
// replay sees the same id) and missing arguments become "{}".
json::object tool_call_json(int64_t index, std::string id, std::string name, std::string arguments) {
  if (id.empty()) id = "call_" + std::to_string(index);
  if (trim(arguments).empty()) arguments = "{}";
  return json::object{{"id", std::move(id)},
                      {"type", "function"},
                      {"function", json::object{{"name", std::move(name)}, {"arguments", std::move(arguments)}}}};
}

// The normalized assistant message. Content is null only when the model
// called tools and said nothing; a plain answer always has string content.
ModelResponse make_response(std::string content, json::array tool_calls, std::string finish_reason,
                            Usage usage) {
  ModelResponse response;
  response.message["role"] = "assistant";
  if (content.empty() && !tool_calls.empty()) {
    response.message["content"] = nullptr;
  } else {
    response.message["content"] = std::move(content);
  }
  bool has_tool_calls = !tool_calls.empty();
  if (has_tool_calls) response.message["tool_calls"] = std::move(tool_calls);
  if (finish_reason.empty()) finish_reason = has_tool_calls ? "tool_calls" : "stop";
  response.finish_reason = std::move(finish_reason);
  response.usage = usage;
  return response;
}

// `content` of a non-streamed message: a string, null, or an array of parts.
std::string message_content(const json::object& message) {
  const json::value* content = message.if_contains("content");
  if (content == nullptr) return {};
  if (content->is_string()) return std::string(content->as_string());
  std::string text;
  if (content->is_array()) {
    for (const auto& part : content->as_array()) {
      if (part.is_object()) text += string_field(part.as_object(), "text");
    }
  }
  return text;
}

Result<json::array> message_tool_calls(const json::object& message) {
  json::array calls;
  const json::value* list = message.if_contains("tool_calls");
  if (list == nullptr || list->is_null()) return calls;
  if (!list->is_array()) return malformed("message.tool_calls is not an array");
  int64_t index = 0;
  for (const auto& item : list->as_array()) {
    if (!item.is_object()) return malformed("a tool call is not an object");
    const json::object& call = item.as_object();
    const json::value* function = call.if_contains("function");
    if (function == nullptr || !function->is_object()) return malformed("a tool call has no function object");
    const json::object& fn = function->as_object();
    const json::value* arguments = fn.if_contains("arguments");
    std::string arguments_text;
    if (arguments != nullptr && arguments->is_string()) arguments_text = std::string(arguments->as_string());
    if (arguments != nullptr && arguments->is_object()) arguments_text = json::serialize(*arguments);
    calls.push_back(tool_call_json(index++, string_field(call, "id"), string_field(fn, "name"),
                                   std::move(arguments_text)));
  }
  return calls;
}

}  // namespace

ChatStreamParser::ChatStreamParser(TextDeltaFn on_text_delta, ChatStreamLimits limits)
    : on_text_delta_(std::move(on_text_delta)),
      limits_(limits),
      reader_("model response", limits.line_bytes_max, [this](SseEvent event) { return on_event(std::move(event)); }) {}

Status ChatStreamParser::feed(std::string_view bytes) {
  if (!status_.is_ok()) return status_;
  if (finished_) return internal_error("ChatStreamParser::feed called after finish");
  if (done_) return Status::ok();  // everything after [DONE] is ignored
  total_bytes_ += bytes.size();
  Status status = total_bytes_ > limits_.total_bytes_max ? too_large("stream", limits_.total_bytes_max)
                                                         : reader_.feed(bytes);
  if (!status.is_ok()) status_ = status;
  return status;
}

Status ChatStreamParser::on_event(SseEvent event) {
  std::string_view payload = trim(event.data);
  if (payload.empty()) return Status::ok();
  if (payload == "[DONE]") {
    done_ = true;
    reader_.stop();
    return Status::ok();
  }
  return apply_chunk(payload, event.name);
}

// One `chat.completion.chunk` (or an error object).
Status ChatStreamParser::apply_chunk(std::string_view data, std::string_view event_name) {
  auto parsed = parse_json(data);
  if (!parsed.is_ok()) return malformed("stream event is not valid JSON");
  if (!parsed->is_object()) return malformed("stream event is not a JSON object");
  const json::object& chunk = parsed->as_object();
  const json::value* error = chunk.if_contains("error");
  if (error != nullptr && !error->is_null()) return provider_error(*error);
  if (event_name == "error") return provider_error(*parsed);
  const json::value* usage = chunk.if_contains("usage");
  if (usage != nullptr && usage->is_object()) usage_ = usage_from_chat(usage->as_object());
  const json::value* choices = chunk.if_contains("choices");
  if (choices == nullptr || !choices->is_array()) return Status::ok();
  for (const auto& item : choices->as_array()) {
    if (!item.is_object()) return malformed("a choice is not an object");
    const json::object& choice = item.as_object();
    if (int_field(choice, "index").value_or(0) != 0) continue;  // we ask for one choice
    const json::value* delta = choice.if_contains("delta");
    if (delta != nullptr && delta->is_object()) RETURN_IF_ERROR(apply_delta(delta->as_object()));
    const json::value* reason = choice.if_contains("finish_reason");
    if (reason != nullptr && reason->is_string()) finish_reason_ = std::string(reason->as_string());
  }
  return Status::ok();
}

Status ChatStreamParser::apply_delta(const json::object& delta) {
  const json::value* content = delta.if_contains("content");
  if (content != nullptr && content->is_string() && !content->as_string().empty()) {
    std::string_view text(content->as_string());
    content_.append(text);
    if (on_text_delta_) on_text_delta_(text);
  }
  const json::value* tool_calls = delta.if_contains("tool_calls");
  if (tool_calls == nullptr || tool_calls->is_null()) return Status::ok();
  if (!tool_calls->is_array()) return malformed("delta.tool_calls is not an array");
  for (const auto& item : tool_calls->as_array()) RETURN_IF_ERROR(apply_tool_call_delta(item));
  return Status::ok();
}

// A tool call delta without `index` (some compatible servers omit it) starts
// a new call when it brings an id not seen yet, and continues the last call
// otherwise.
Status ChatStreamParser::apply_tool_call_delta(const json::value& item) {
  if (!item.is_object()) return malformed("a tool call delta is not an object");
  const json::object& call = item.as_object();
  std::string id = string_field(call, "id");
  std::optional<int64_t> index = int_field(call, "index");
  if (!index) {
    int64_t last = tool_calls_.empty() ? -1 : tool_calls_.rbegin()->first;
    bool new_call = last < 0 || (!id.empty() && tool_calls_[last].id != id);
    index = new_call ? last + 1 : last;
  }
  auto [it, inserted] = tool_calls_.try_emplace(*index);
  if (inserted && tool_calls_.size() > limits_.tool_calls_max) {
    return too_large("tool call count", limits_.tool_calls_max);
  }
  ToolCallParts& parts = it->second;
  if (parts.id.empty()) parts.id = std::move(id);
  const json::value* function = call.if_contains("function");
  if (function == nullptr || !function->is_object()) return Status::ok();
  const json::object& fn = function->as_object();
  if (parts.name.empty()) parts.name = string_field(fn, "name");
  const json::value* arguments = fn.if_contains("arguments");
  if (arguments != nullptr && arguments->is_string()) parts.arguments.append(arguments->as_string());
  return Status::ok();
}

Result<ModelResponse> ChatStreamParser::finish() {
  if (finished_) return internal_error("ChatStreamParser::finish called twice");
  finished_ = true;
  if (!status_.is_ok()) return status_;
  Status status = finish_stream();
  if (!status.is_ok()) {
    status_ = status;
    return status;
  }
  json::array tool_calls;
  for (auto& [index, parts] : tool_calls_) {
    tool_calls.push_back(
        tool_call_json(index, std::move(parts.id), std::move(parts.name), std::move(parts.arguments)));
  }
  return make_response(std::move(content_), std::move(tool_calls), std::move(finish_reason_), usage_);
}

// Flushes an unterminated last line and event, then checks completeness.
Status ChatStreamParser::finish_stream() {
  if (!done_) RETURN_IF_ERROR(reader_.finish());
  if (!done_ && finish_reason_.empty()) return malformed("the stream ended before [DONE]");
  return Status::ok();
}

Result<ModelResponse> parse_chat_completion(std::string_view body) {
  auto parsed = parse_json(body);
  if (!parsed.is_ok()) return malformed("the body is not valid JSON");
  if (!parsed->is_object()) return malformed("the body is not a JSON object");
  const json::object& completion = parsed->as_object();
  const json::value* error = completion.if_contains("error");
  if (error != nullptr && !error->is_null()) return provider_error(*error);
  const json::value* choices = completion.if_contains("choices");
  if (choices == nullptr || !choices->is_array() || choices->as_array().empty()) {
    return malformed("the body has no choices");
  }
  const json::value& choice = choices->as_array().front();
  if (!choice.is_object()) return malformed("a choice is not an object");
  const json::value* message = choice.as_object().if_contains("message");
  if (message == nullptr || !message->is_object()) return malformed("the choice has no message");
  ASSIGN_OR_RETURN(json::array tool_calls, message_tool_calls(message->as_object()));
  Usage usage;
  const json::value* usage_value = completion.if_contains("usage");
  if (usage_value != nullptr && usage_value->is_object()) usage = usage_from_chat(usage_value->as_object());
  return make_response(message_content(message->as_object()), std::move(tool_calls),
                       string_field(choice.as_object(), "finish_reason"), usage);
}

}  // namespace continuum
