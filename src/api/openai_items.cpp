#include "api/openai_items.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "engine/snapshot.h"

namespace continuum {

namespace {

constexpr size_t kInputItemsMax = 1000;

std::string text_of(const json::value& value) { return value.is_string() ? std::string(value.as_string()) : ""; }

// The string at `key`, or "".
std::string text_at(const json::object& obj, std::string_view key) {
  const json::value* value = obj.if_contains(key);
  return value ? text_of(*value) : "";
}

// A message item's content: a string, or a list of text parts.
Result<std::string> content_text(const json::value& content, const std::string& param) {
  if (content.is_string()) return std::string(content.as_string());
  if (!content.is_array()) return invalid_argument(param + " must be a string or a list of text parts", param);
  std::string text;
  for (const auto& part : content.as_array()) {
    const json::object* obj = part.if_object();
    std::string type = obj ? text_at(*obj, "type") : "";
    if (!obj || (type != "input_text" && type != "output_text" && type != "text") || !obj->contains("text") ||
        !obj->at("text").is_string()) {
      return invalid_argument(param + ": only text parts (input_text, output_text) are supported", param);
    }
    if (!text.empty()) text += "\n";
    text += obj->at("text").as_string();
  }
  return text;
}

struct InputMessage {
  std::string role;  // user, assistant, system (developer is system)
  std::string text;
};

Result<InputMessage> parse_message_item(const json::value& item, const std::string& param) {
  const json::object* obj = item.if_object();
  if (!obj) return invalid_argument(param + " must be an object", param);
  std::string type = obj->contains("type") ? text_of(obj->at("type")) : "message";
  if (type != "message") {
    return invalid_argument(param + ": item type '" + type + "' is not supported here", param);
  }
  ASSIGN_OR_RETURN(std::string role, get_string(*obj, "role", param + ".role"));
  if (role == "developer") role = "system";
  if (role != "user" && role != "assistant" && role != "system") {
    return invalid_argument(param + ".role must be user, assistant, system or developer", param + ".role");
  }
  if (!obj->contains("content")) return invalid_argument(param + ".content is required", param + ".content");
  ASSIGN_OR_RETURN(std::string text, content_text(obj->at("content"), param + ".content"));
  return InputMessage{role, std::move(text)};
}

// The tool calls of an assistant chat message, in order (malformed ones skipped).
struct ChatToolCall {
  std::string call_id, name, arguments;
};
std::vector<ChatToolCall> tool_calls_of(const json::object& message) {
  std::vector<ChatToolCall> calls;
  const json::value* list = message.if_contains("tool_calls");
  if (!list || !list->is_array()) return calls;
  for (const auto& call : list->as_array()) {
    const json::object* call_obj = call.if_object();
    const json::value* function = call_obj ? call_obj->if_contains("function") : nullptr;
    if (!function || !function->is_object()) continue;
    calls.push_back(ChatToolCall{text_at(*call_obj, "id"), text_at(function->as_object(), "name"),
                                 text_at(function->as_object(), "arguments")});
  }
  return calls;
}

std::string chat_message(const std::string& role, const std::string& text) {
  return to_json(json::object{{"role", role}, {"content", text}});
}

json::object message_item(const std::string& id, const std::string& role, const std::string& text,
                          const char* status = "completed") {
  json::object part{{"type", role == "assistant" ? "output_text" : "input_text"}, {"text", text}};
  if (role == "assistant") part["annotations"] = json::array{};
  return json::object{{"type", "message"}, {"id", id}, {"status", status}, {"role", role},
                      {"content", json::array{std::move(part)}}};
}

// The model name of an MCP tool is "<server>__<tool>".
json::object tool_call_item(const std::string& id, const std::string& call_id, const std::string& name,
                            const std::string& arguments) {
  size_t split = name.find("__");
  if (split != std::string::npos) {
    return json::object{{"type", "mcp_call"},   {"id", id},         {"server_label", name.substr(0, split)},
                        {"name", name.substr(split + 2)}, {"arguments", arguments}, {"output", nullptr},
                        {"error", nullptr},     {"status", "in_progress"}};
  }
  return json::object{{"type", "tool_call"}, {"id", id},          {"call_id", call_id}, {"name", name},
                      {"arguments", arguments}, {"output", nullptr}, {"status", "in_progress"}};
}

}  // namespace

namespace {

// A function_call_output item as a tool message.
Result<json::object> tool_output_message(const json::object& item, const std::string& param) {
  ASSIGN_OR_RETURN(std::string call_id, get_string(item, "call_id", param + ".call_id"));
  if (!item.contains("output")) return invalid_argument(param + ".output is required", param + ".output");
  ASSIGN_OR_RETURN(std::string output, content_text(item.at("output"), param + ".output"));
  return json::object{{"role", "tool"}, {"tool_call_id", call_id}, {"content", output}};
}

// A function_call item (history a client sends back) as an assistant tool call.
Result<json::object> tool_call_of(const json::object& item, const std::string& param) {
  ASSIGN_OR_RETURN(std::string call_id, get_string(item, "call_id", param + ".call_id"));
  ASSIGN_OR_RETURN(std::string name, get_string(item, "name", param + ".name"));
  ASSIGN_OR_RETURN(std::string arguments, get_string(item, "arguments", param + ".arguments"));
  return json::object{{"id", call_id}, {"type", "function"},
                      {"function", json::object{{"name", name}, {"arguments", arguments}}}};
}

}  // namespace

Result<ResponseInput> parse_response_input(const json::value& input, const std::string& param) {
  ResponseInput parsed;
  if (input.is_string()) {
    parsed.text = std::string(input.as_string());
    if (parsed.text.empty()) return invalid_argument(param + " must not be empty", param);
    parsed.messages.push_back(chat_message("user", parsed.text));
    return parsed;
  }
  if (!input.is_array() || input.as_array().empty()) {
    return invalid_argument(param + " must be a non-empty string or list of items", param);
  }
  if (input.as_array().size() > kInputItemsMax) return invalid_argument(param + " has over 1000 items", param);
  std::vector<json::object> messages;
  std::string outputs;
  for (size_t i = 0; i < input.as_array().size(); ++i) {
    std::string at = param + "[" + std::to_string(i) + "]";
    const json::object* item = input.as_array()[i].if_object();
    std::string type = item ? text_at(*item, "type") : "";
    if (item && type == "function_call_output") {
      ASSIGN_OR_RETURN(json::object message, tool_output_message(*item, at));
      outputs += (outputs.empty() ? "" : "\n") + text_at(message, "content");
      parsed.call_outputs.push_back(text_at(message, "tool_call_id"));
      messages.push_back(std::move(message));
      continue;
    }
    if (item && type == "function_call") {  // consecutive calls form one assistant message
      ASSIGN_OR_RETURN(json::object call, tool_call_of(*item, at));
      bool joins = !messages.empty() && messages.back().contains("tool_calls") && !messages.back().contains("tool_call_id");
      if (!joins) messages.push_back(json::object{{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array{}}});
      messages.back()["tool_calls"].as_array().push_back(std::move(call));
      continue;
    }
    ASSIGN_OR_RETURN(InputMessage message, parse_message_item(input.as_array()[i], at));
    if (message.role == "system") {
      parsed.instructions += (parsed.instructions.empty() ? "" : "\n\n") + message.text;
      continue;
    }
    if (message.role == "user") parsed.text = message.text;
    messages.push_back(json::object{{"role", message.role}, {"content", message.text}});
  }
  if (parsed.text.empty()) parsed.text = outputs;  // may be empty: a function may return nothing
  if (messages.empty() || (parsed.text.empty() && parsed.call_outputs.empty())) {
    return invalid_argument(param + " must contain a user message with text or function call outputs", param);
  }
  // A turn starts with the user's message, or continues the previous one
  // with the outputs of the client's function calls.
  std::string first_role = text_at(messages.front(), "role");
  if (first_role != "user" && first_role != "tool") {
    return invalid_argument(param + ": the first non-system item must be a user message or a function_call_output",
                            param);
  }
  for (const auto& message : messages) parsed.messages.push_back(to_json(message));
  return parsed;
}

Result<json::array> parse_client_tools(const json::value& tools, const std::string& param) {
  json::array definitions;
  if (tools.is_null()) return definitions;
  if (!tools.is_array()) return invalid_argument(param + " must be a list", param);
  if (tools.as_array().size() > 128) return invalid_argument(param + " has over 128 tools", param);
  std::set<std::string> names;
  for (size_t i = 0; i < tools.as_array().size(); ++i) {
    std::string at = param + "[" + std::to_string(i) + "]";
    const json::object* tool = tools.as_array()[i].if_object();
    if (!tool || text_at(*tool, "type") != "function") {
      return invalid_argument(at + ": only function tools are supported (the agent's own tools run on the server)",
                              at + ".type");
    }
    ASSIGN_OR_RETURN(std::string name, get_string(*tool, "name", at + ".name"));
    bool plain = !name.empty() && name.size() <= 64 && name.find("__") == std::string::npos &&
                 std::all_of(name.begin(), name.end(), [](char c) {
                   return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                 });
    if (!plain) return invalid_argument(at + ".name must be 1-64 of [A-Za-z0-9_-], without \"__\"", at + ".name");
    if (!names.insert(name).second) return invalid_argument(at + ".name repeats '" + name + "'", at + ".name");
    ASSIGN_OR_RETURN(auto description, get_optional_string(*tool, "description", at + ".description"));
    ASSIGN_OR_RETURN(const json::object* parameters, get_optional_object(*tool, "parameters", at + ".parameters"));
    json::object schema = parameters ? *parameters : json::object{{"type", "object"}, {"properties", json::object{}}};
    definitions.push_back(json::object{
        {"type", "function"},
        {"function", json::object{{"name", name}, {"description", description.value_or("")}, {"parameters", schema}}}});
  }
  return definitions;
}

Result<std::vector<std::string>> parse_conversation_items(const json::value& items, const std::string& param) {
  if (!items.is_array()) return invalid_argument(param + " must be a list of items", param);
  if (items.as_array().size() > 20) return invalid_argument(param + " takes at most 20 items at a time", param);
  std::vector<std::string> messages;
  for (size_t i = 0; i < items.as_array().size(); ++i) {
    ASSIGN_OR_RETURN(InputMessage message,
                     parse_message_item(items.as_array()[i], param + "[" + std::to_string(i) + "]"));
    messages.push_back(chat_message(message.role, message.text));
  }
  return messages;
}

json::array conversation_items(const ItemRecord& item) {
  std::string id = "item_" + std::to_string(item.seq);
  json::array out;
  auto parsed = parse_json_object(item.message_json);
  if (!parsed.is_ok()) return out;
  const json::object& message = *parsed;
  std::string role = message.contains("role") ? text_of(message.at("role")) : "";
  std::string content = message.contains("content") ? text_of(message.at("content")) : "";
  if (role == "tool") {
    out.push_back(json::object{{"type", "function_call_output"}, {"id", id},
                               {"call_id", text_at(message, "tool_call_id")},
                               {"output", content}, {"status", "completed"}});
    return out;
  }
  if (!content.empty() || role != "assistant") out.push_back(message_item(id, role, content));
  int n = 0;
  for (const auto& call : tool_calls_of(message)) {
    out.push_back(json::object{{"type", "function_call"}, {"id", id + "_c" + std::to_string(++n)},
                               {"call_id", call.call_id}, {"name", call.name}, {"arguments", call.arguments},
                               {"status", "completed"}});
  }
  return out;
}

Result<json::object> parse_metadata(const json::object& body, const std::string& param) {
  ASSIGN_OR_RETURN(const json::object* metadata, get_optional_object(body, param, param));
  if (!metadata) return json::object{};
  if (metadata->size() > 16) return invalid_argument(param + " has over 16 keys", param);
  for (const auto& entry : *metadata) {
    if (entry.key().size() > 64 || !entry.value().is_string() || entry.value().as_string().size() > 512) {
      return invalid_argument(param + " maps keys of at most 64 characters to strings of at most 512", param);
    }
  }
  return *metadata;
}

Result<json::object> list_page(const json::array& all, const std::string& after, const std::string& limit,
                               const std::string& order) {
  int64_t count = 20;
  if (!limit.empty()) {
    char* end = nullptr;
    long long value = std::strtoll(limit.c_str(), &end, 10);
    if (*end != '\0' || value < 1 || value > 100) return invalid_argument("limit must be 1-100", "limit");
    count = value;
  }
  if (!order.empty() && order != "asc" && order != "desc") return invalid_argument("order must be asc or desc", "order");
  std::vector<const json::value*> ordered;
  for (const auto& item : all) ordered.push_back(&item);
  if (order != "asc") std::reverse(ordered.begin(), ordered.end());
  size_t begin = 0;
  if (!after.empty()) {
    auto found = std::find_if(ordered.begin(), ordered.end(), [&](const json::value* item) {
      return item->as_object().at("id").as_string() == after;
    });
    if (found == ordered.end()) return not_found("no item '" + after + "' in this list");
    begin = static_cast<size_t>(found - ordered.begin()) + 1;
  }
  json::array data;
  for (size_t i = begin; i < ordered.size() && static_cast<int64_t>(data.size()) < count; ++i) data.push_back(*ordered[i]);
  bool has_more = begin + data.size() < ordered.size();
  json::value first_id = data.empty() ? json::value(nullptr) : data.front().as_object().at("id");
  json::value last_id = data.empty() ? json::value(nullptr) : data.back().as_object().at("id");
  return json::object{{"object", "list"}, {"data", std::move(data)}, {"first_id", first_id},
                      {"last_id", last_id}, {"has_more", has_more}};
}

std::string response_status(const std::string& run_status) {
  if (run_status == kRunRunning || run_status == kRunWaiting) return "in_progress";
  return run_status;  // queued, completed, failed, cancelled
}

std::vector<size_t> ResponseOutput::add_step(const StepRecord& step) {
  std::vector<size_t> touched;
  auto payload = parse_json_object(step.payload_json);
  if (!payload.is_ok()) return touched;
  if (step.kind == kStepRunCreated) {
    if (const json::value* tools = payload->if_contains("client_tools"); tools && tools->is_array()) {
      client_tools_ = tools->as_array();
    }
  } else if (step.kind == kStepModelCall) {
    const json::object* message = payload->contains("message") ? payload->at("message").if_object() : nullptr;
    if (!message) return touched;
    std::string text = message->contains("content") ? text_of(message->at("content")) : "";
    if (!text.empty()) {
      message_by_seq_[step.seq] = items_.size();
      touched.push_back(items_.size());
      items_.push_back(message_item(message_id(step.seq), "assistant", text));
    }
    int n = 0;
    for (const auto& call : tool_calls_of(*message)) {
      std::string suffix = run_id_ + "_" + std::to_string(step.seq) + "_" + std::to_string(++n);
      touched.push_back(items_.size());
      if (is_client_tool(client_tools_, call.name)) {
        // The client runs it: the response ends with it, as in OpenAI's API.
        items_.push_back(json::object{{"type", "function_call"}, {"id", "fc_" + suffix}, {"call_id", call.call_id},
                                      {"name", call.name}, {"arguments", call.arguments}, {"status", "completed"}});
        continue;
      }
      tool_item_by_call_[call.call_id] = items_.size();
      items_.push_back(tool_call_item("tc_" + suffix, call.call_id, call.name, call.arguments));
    }
  } else if (step.kind == kStepApprovalRequested) {
    // Policy holds the call for a person's decision: the client may give it
    // (an mcp_approval_response item in its next request).
    std::string call_id = text_at(*payload, "call_id"), tool = text_at(*payload, "tool");
    std::string arguments;
    if (auto found = tool_item_by_call_.find(call_id); found != tool_item_by_call_.end()) {
      arguments = text_at(items_[found->second].as_object(), "arguments");
    }
    size_t split = tool.find("__");
    touched.push_back(items_.size());
    items_.push_back(json::object{{"type", "mcp_approval_request"},
                                  {"id", text_at(*payload, "approval_id")},
                                  {"server_label", split == std::string::npos ? "" : tool.substr(0, split)},
                                  {"name", split == std::string::npos ? tool : tool.substr(split + 2)},
                                  {"arguments", arguments}});
  } else if (step.kind == kStepToolCall) {
    std::string call_id = payload->contains("call_id") ? text_of(payload->at("call_id")) : "";
    auto found = tool_item_by_call_.find(call_id);
    if (found == tool_item_by_call_.end()) return touched;
    json::object& item = items_[found->second].as_object();
    bool failed = payload->contains("is_error") && payload->at("is_error").is_bool() && payload->at("is_error").as_bool();
    std::string output = payload->contains("output") ? text_of(payload->at("output")) : "";
    item["status"] = failed ? "failed" : "completed";
    if (item.at("type").as_string() == "mcp_call" && failed) {
      item["error"] = output;
    } else {
      item["output"] = output;
    }
    touched.push_back(found->second);
  }
  return touched;
}

std::string ResponseOutput::output_text() const {
  std::string text;
  for (const auto& item : items_) {
    const json::object& obj = item.as_object();
    if (obj.at("type").as_string() != "message") continue;
    for (const auto& part : obj.at("content").as_array()) text += part.as_object().at("text").as_string();
  }
  return text;
}

size_t ResponseOutput::message_index(int64_t model_seq) const {
  auto found = message_by_seq_.find(model_seq);
  return found != message_by_seq_.end() ? found->second : items_.size();
}

std::string ResponseOutput::message_id(int64_t model_seq) const {
  return "msg_" + run_id_ + "_" + std::to_string(model_seq);
}

json::object response_object(const RunRecord& run, const StepRecord& created, const ResponseOutput& output) {
  json::object options;
  json::value instructions = nullptr;
  if (auto payload = parse_json_object(created.payload_json); payload.is_ok()) {
    if (const json::value* annotations = payload->if_contains("annotations"); annotations && annotations->is_object()) {
      options = annotations->as_object();
    }
    if (payload->contains("instructions")) instructions = payload->at("instructions");
  }
  auto option = [&](const char* key, json::value fallback) {
    return options.contains(key) ? options.at(key) : fallback;
  };
  json::object response{{"id", run.id},
                        {"object", "response"},
                        {"created_at", run.created_at_ms / 1000},
                        {"status", response_status(run.status)},
                        {"model", run.agent_name},
                        {"output", output.items()},
                        {"output_text", output.output_text()},
                        {"instructions", instructions},
                        {"metadata", option("metadata", json::object{})},
                        {"previous_response_id", option("previous_response_id", nullptr)},
                        {"conversation", json::object{{"id", run.session_id}}},
                        {"background", option("background", false)},
                        {"store", option("store", true)},
                        {"error", nullptr},
                        {"incomplete_details", nullptr},
                        {"parallel_tool_calls", true},
                        {"tool_choice", "auto"},
                        {"tools", option("tools", json::array{})},
                        {"temperature", nullptr},
                        {"top_p", nullptr},
                        {"max_output_tokens", nullptr},
                        {"truncation", "disabled"},
                        {"text", json::object{{"format", json::object{{"type", "text"}}}}}};
  if (auto snapshot = snapshot_from_json(run.snapshot_json); snapshot.is_ok()) {
    response["usage"] = json::object{{"input_tokens", snapshot->usage.input_tokens},
                                     {"input_tokens_details", json::object{{"cached_tokens", 0}}},
                                     {"output_tokens", snapshot->usage.output_tokens},
                                     {"output_tokens_details", json::object{{"reasoning_tokens", 0}}},
                                     {"total_tokens", snapshot->usage.total_tokens}};
    if (snapshot->error_code == "max_steps" || snapshot->error_code == "max_total_tokens") {
      // Stopped by the agent's limits, as OpenAI's max_output_tokens stops a response.
      response["status"] = "incomplete";
      response["incomplete_details"] = json::object{{"reason", snapshot->error_code}};
    } else if (!snapshot->error_code.empty()) {
      response["error"] = json::object{{"code", snapshot->error_code}, {"message", snapshot->error_message}};
    }
  }
  return response;
}

}  // namespace continuum
