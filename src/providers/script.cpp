#include "providers/script.h"

#include <boost/json/serialize.hpp>
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <unordered_map>

namespace continuum {

struct ScriptBook::AttemptCounter {
  std::mutex mutex;
  std::unordered_map<uint64_t, int64_t> attempts_by_key;  // guarded by mutex
};

namespace {

constexpr size_t kChunkContentBytes = 8;

// FNV-1a: stable across processes and builds (std::hash is not), so ids and
// attempt keys are the same after a restart.
uint64_t fnv1a(std::string_view text, uint64_t hash = 1469598103934665603ULL) {
  for (unsigned char byte : text) {
    hash ^= byte;
    hash *= 1099511628211ULL;
  }
  return hash;
}

uint64_t request_key(std::string_view model, std::string_view messages_json) {
  return fnv1a(messages_json, fnv1a("\n", fnv1a(model)));
}

std::string hex64(uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

// ---------------------------------------------------------------- parsing

Status check_range(std::optional<int64_t> value, int64_t min, int64_t max, const std::string& param) {
  if (value && (*value < min || *value > max)) {
    return invalid_argument("field '" + param + "' must be between " + std::to_string(min) + " and " +
                                std::to_string(max),
                            param);
  }
  return Status::ok();
}

Result<ScriptToolCall> parse_tool_call(const json::value& value, const std::string& param) {
  if (!value.is_object()) return invalid_argument("field '" + param + "' must be an object", param);
  const json::object& obj = value.as_object();
  if (auto key = first_unknown_key(obj, {"name", "arguments"})) {
    return invalid_argument("unknown field '" + param + "." + *key + "'", param + "." + *key);
  }
  ScriptToolCall call;
  ASSIGN_OR_RETURN(call.name, get_string(obj, "name", param + ".name"));
  if (call.name.empty()) return invalid_argument("field '" + param + ".name' must not be empty", param + ".name");
  ASSIGN_OR_RETURN(const json::object* arguments, get_optional_object(obj, "arguments", param + ".arguments"));
  if (arguments != nullptr) call.arguments = *arguments;
  return call;
}

Status parse_tool_calls(const json::object& obj, const std::string& param, ScriptStep* step) {
  ASSIGN_OR_RETURN(const json::array* calls, get_optional_array(obj, "tool_calls", param + ".tool_calls"));
  if (calls == nullptr) return Status::ok();
  for (size_t i = 0; i < calls->size(); ++i) {
    ASSIGN_OR_RETURN(ScriptToolCall call,
                     parse_tool_call((*calls)[i], param + ".tool_calls[" + std::to_string(i) + "]"));
    step->tool_calls.push_back(std::move(call));
  }
  return Status::ok();
}

Status parse_fail_list(const json::object& obj, const std::string& param, ScriptStep* step) {
  ASSIGN_OR_RETURN(const json::array* fail, get_optional_array(obj, "fail", param + ".fail"));
  if (fail == nullptr) return Status::ok();
  if (fail->size() > kScriptFailListMax) {
    return invalid_argument("field '" + param + ".fail' has more than " + std::to_string(kScriptFailListMax) +
                                " entries",
                            param + ".fail");
  }
  for (size_t i = 0; i < fail->size(); ++i) {
    std::string item_param = param + ".fail[" + std::to_string(i) + "]";
    const json::value& item = (*fail)[i];
    if (!item.is_int64() || item.as_int64() < 400 || item.as_int64() > 599) {
      return invalid_argument("field '" + item_param + "' must be an HTTP error status (400-599)", item_param);
    }
    step->fail.push_back(static_cast<int>(item.as_int64()));
  }
  return Status::ok();
}

Status parse_step_numbers(const json::object& obj, const std::string& param, ScriptStep* step) {
  ASSIGN_OR_RETURN(auto delay_ms, get_optional_int(obj, "delay_ms", param + ".delay_ms"));
  RETURN_IF_ERROR(check_range(delay_ms, 0, kScriptDelayMsMax, param + ".delay_ms"));
  ASSIGN_OR_RETURN(auto retry_after_s, get_optional_int(obj, "retry_after_s", param + ".retry_after_s"));
  RETURN_IF_ERROR(check_range(retry_after_s, 0, kScriptRetryAfterSMax, param + ".retry_after_s"));
  ASSIGN_OR_RETURN(auto repeat, get_optional_int(obj, "repeat", param + ".repeat"));
  RETURN_IF_ERROR(check_range(repeat, 1, kScriptStepsTotalMax, param + ".repeat"));
  step->delay_ms = delay_ms.value_or(0);
  step->retry_after_s = retry_after_s.value_or(1);
  step->repeat = repeat.value_or(1);
  return Status::ok();
}

Result<ScriptStep> parse_step(const json::value& value, const std::string& param) {
  if (!value.is_object()) return invalid_argument("field '" + param + "' must be an object", param);
  const json::object& obj = value.as_object();
  if (auto key = first_unknown_key(obj, {"content", "tool_calls", "delay_ms", "fail", "retry_after_s", "repeat"})) {
    return invalid_argument("unknown field '" + param + "." + *key + "'", param + "." + *key);
  }
  ScriptStep step;
  ASSIGN_OR_RETURN(auto content, get_optional_string(obj, "content", param + ".content"));
  step.has_content = content.has_value();
  step.content = content.value_or("");
  RETURN_IF_ERROR(parse_tool_calls(obj, param, &step));
  if (!step.has_content && step.tool_calls.empty()) {
    return invalid_argument("step '" + param + "' needs 'content' or a non-empty 'tool_calls'", param);
  }
  RETURN_IF_ERROR(parse_fail_list(obj, param, &step));
  RETURN_IF_ERROR(parse_step_numbers(obj, param, &step));
  return step;
}

Result<Script> parse_script(const json::value& value, const std::string& param) {
  if (!value.is_object()) return invalid_argument("field '" + param + "' must be an object", param);
  const json::object& obj = value.as_object();
  if (auto key = first_unknown_key(obj, {"steps"})) {
    return invalid_argument("unknown field '" + param + "." + *key + "'", param + "." + *key);
  }
  ASSIGN_OR_RETURN(const json::array* steps, get_optional_array(obj, "steps", param + ".steps"));
  if (steps == nullptr || steps->empty()) {
    return invalid_argument("field '" + param + ".steps' must be a non-empty array", param + ".steps");
  }
  Script script;
  int64_t covered = 0;
  for (size_t i = 0; i < steps->size(); ++i) {
    std::string step_param = param + ".steps[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(ScriptStep step, parse_step((*steps)[i], step_param));
    covered += step.repeat;  // no overflow: each repeat <= kScriptStepsTotalMax and we stop at the max
    if (covered > kScriptStepsTotalMax) {
      return invalid_argument("script '" + param + "' covers more than " + std::to_string(kScriptStepsTotalMax) +
                                  " steps",
                              step_param + ".repeat");
    }
    script.steps.push_back(std::move(step));
    script.step_ends.push_back(covered);
  }
  return script;
}

// ---------------------------------------------------------------- requests

// What the script needs to know about a request's conversation.
struct Conversation {
  std::string model;
  std::vector<const json::object*> messages;  // the request's, which outlive the Conversation
  size_t text_bytes = 0;            // content bytes plus an allowance per message: for token estimates
  int64_t assistants_after_user = 0;  // k: selects the step
  int64_t turn = 0;                 // number of user messages
  std::string input;                // last user message text
  // The tool messages after the last user message, whose texts {{tool_results}}
  // joins (only when a step uses it: a long run has many).
  std::vector<const json::object*> tool_messages;
};

// The text of a message's content: a string, or the `text` of content parts.
std::string content_text(const json::value* content) {
  if (content == nullptr) return "";
  if (content->is_string()) return std::string(content->as_string());
  std::string text;
  if (!content->is_array()) return text;
  for (const json::value& part : content->as_array()) {
    if (!part.is_object()) continue;
    const json::value* part_text = part.as_object().if_contains("text");
    if (part_text != nullptr && part_text->is_string()) text += part_text->as_string();
  }
  return text;
}

// A message's share of a token estimate: its text, and this for its role and framing.
constexpr size_t kMessageAllowanceBytes = 16;

size_t content_bytes(const json::value* content) {
  if (content == nullptr) return 0;
  if (content->is_string()) return content->as_string().size();
  size_t bytes = 0;
  if (!content->is_array()) return bytes;
  for (const json::value& part : content->as_array()) {
    const json::value* text = part.is_object() ? part.as_object().if_contains("text") : nullptr;
    if (text != nullptr && text->is_string()) bytes += text->as_string().size();
  }
  return bytes;
}

// A request's messages as objects; refused if missing, empty or not all objects.
Result<std::vector<const json::object*>> message_objects(const json::array* messages) {
  if (messages == nullptr || messages->empty()) {
    return invalid_argument("field 'messages' must be a non-empty array", "messages");
  }
  std::vector<const json::object*> objects;
  objects.reserve(messages->size());
  for (size_t i = 0; i < messages->size(); ++i) {
    if (!(*messages)[i].is_object()) {
      std::string param = "messages[" + std::to_string(i) + "]";
      return invalid_argument("field '" + param + "' must be an object", param);
    }
    objects.push_back(&(*messages)[i].as_object());
  }
  return objects;
}

// The messages as a JSON array's text, byte for byte what serializing the array gives.
std::string serialize_messages(const std::vector<const json::object*>& messages) {
  std::string out = "[";
  for (const json::object* message : messages) {
    if (out.size() > 1) out += ',';
    out += json::serialize(*message);
  }
  return out + "]";
}

Result<Conversation> read_conversation(std::string_view model, std::vector<const json::object*> messages) {
  Conversation conversation;
  conversation.model = std::string(model);
  if (messages.empty()) return invalid_argument("field 'messages' must be a non-empty array", "messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const json::object& message = *messages[i];
    const json::value* role_value = message.if_contains("role");
    if (role_value == nullptr || !role_value->is_string()) {
      return get_string(message, "role", "messages[" + std::to_string(i) + "].role").status();
    }
    std::string_view role = role_value->as_string();
    conversation.text_bytes += kMessageAllowanceBytes + content_bytes(message.if_contains("content"));
    if (role == "user") {
      conversation.turn += 1;
      conversation.assistants_after_user = 0;
      conversation.input = content_text(message.if_contains("content"));
      conversation.tool_messages.clear();
    } else if (role == "assistant") {
      conversation.assistants_after_user += 1;
    } else if (role == "tool") {
      conversation.tool_messages.push_back(&message);
    }
  }
  conversation.messages = std::move(messages);
  return conversation;
}

std::string tool_results(const Conversation& conversation) {
  std::string joined;
  for (const json::object* message : conversation.tool_messages) {
    if (!joined.empty()) joined += "; ";
    joined += content_text(message->if_contains("content"));
  }
  return joined;
}

// Replaces {{input}}, {{tool_results}} and {{turn}} in one pass: substituted
// text is never scanned again, so a user typing "{{turn}}" is not expanded.
std::string apply_templates(std::string_view text, const Conversation& conversation) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) break;
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    std::string_view name = text.substr(open + 2, close - open - 2);
    out.append(text.substr(pos, open - pos));
    if (name == "input") out += conversation.input;
    else if (name == "tool_results") out += tool_results(conversation);
    else if (name == "turn") out += std::to_string(conversation.turn);
    else out.append(text.substr(open, close + 2 - open));  // unknown: kept verbatim
    pos = close + 2;
  }
  out.append(text.substr(pos));
  return out;
}

json::value apply_templates_json(const json::value& value, const Conversation& conversation) {
  if (value.is_string()) return json::value(apply_templates(value.as_string(), conversation));
  if (value.is_array()) {
    json::array out;
    for (const json::value& item : value.as_array()) out.push_back(apply_templates_json(item, conversation));
    return out;
  }
  if (value.is_object()) {
    json::object out;
    for (const auto& entry : value.as_object()) out[entry.key()] = apply_templates_json(entry.value(), conversation);
    return out;
  }
  return value;
}

// Step k of the script, counting `repeat`; clamped to the last step.
const ScriptStep& select_step(const Script& script, int64_t k) {
  auto it = std::upper_bound(script.step_ends.begin(), script.step_ends.end(), k);
  if (it == script.step_ends.end()) return script.steps.back();
  return script.steps[static_cast<size_t>(it - script.step_ends.begin())];
}

json::object build_message(const ScriptStep& step, const Conversation& conversation) {
  json::object message;
  message["role"] = "assistant";
  if (step.has_content) message["content"] = apply_templates(step.content, conversation);
  else message["content"] = nullptr;
  if (step.tool_calls.empty()) return message;
  json::array calls;
  for (size_t i = 0; i < step.tool_calls.size(); ++i) {
    const ScriptToolCall& call = step.tool_calls[i];
    // Stable for the same request (turn, k, index), so a retry after a crash
    // produces identical ids; unique within one conversation.
    std::string id = "call_" + std::to_string(conversation.turn) + "_" +
                     std::to_string(conversation.assistants_after_user) + "_" + std::to_string(i);
    json::value arguments = apply_templates_json(call.arguments, conversation);
    calls.push_back(json::object{{"id", id},
                                 {"type", "function"},
                                 {"function", {{"name", call.name}, {"arguments", json::serialize(arguments)}}}});
  }
  message["tool_calls"] = std::move(calls);
  return message;
}

ScriptReply error_reply(int http_status, std::string_view message, std::string_view code) {
  ScriptReply reply;
  reply.http_status = http_status;
  reply.error_body = openai_error_body(http_status, message, code);
  return reply;
}

int64_t estimate_tokens(size_t bytes) { return std::max<int64_t>(1, static_cast<int64_t>(bytes / 4)); }

// ---------------------------------------------------------------- rendering

json::object chunk_base(const CompletionMeta& meta) {
  json::object chunk{{"id", meta.id}, {"object", "chat.completion.chunk"}, {"created", meta.created_s},
                     {"model", meta.model}};
  if (meta.include_usage) chunk["usage"] = nullptr;  // as OpenAI does on all but the last chunk
  return chunk;
}

json::object delta_chunk(const CompletionMeta& meta, json::object delta, json::value finish_reason = nullptr) {
  json::object chunk = chunk_base(meta);
  chunk["choices"] = json::array{
      json::object{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", std::move(finish_reason)}}};
  return chunk;
}

json::object usage_json(const ScriptReply& reply) {
  return {{"prompt_tokens", reply.prompt_tokens},
          {"completion_tokens", reply.completion_tokens},
          {"total_tokens", reply.prompt_tokens + reply.completion_tokens}};
}

// Splits `text` into pieces of about kChunkContentBytes bytes without cutting
// a UTF-8 sequence (a piece ends before a continuation byte never).
std::vector<std::string> split_content(std::string_view text) {
  std::vector<std::string> pieces;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + kChunkContentBytes);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    pieces.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return pieces;
}

}  // namespace

// ---------------------------------------------------------------- ScriptBook

ScriptBook::ScriptBook() : attempts_(std::make_unique<AttemptCounter>()) {}
ScriptBook::ScriptBook(ScriptBook&&) noexcept = default;
ScriptBook& ScriptBook::operator=(ScriptBook&&) noexcept = default;
ScriptBook::~ScriptBook() = default;

Result<ScriptBook> ScriptBook::parse(std::string_view text) {
  ASSIGN_OR_RETURN(json::value document, parse_json(text));
  if (!document.is_object()) return invalid_argument("a script document must be a JSON object");
  return from_json(document.as_object());
}

Result<ScriptBook> ScriptBook::from_json(const json::object& document) {
  if (auto key = first_unknown_key(document, {"scripts"})) {
    return invalid_argument("unknown field '" + *key + "'", *key);
  }
  ASSIGN_OR_RETURN(const json::object* scripts, get_optional_object(document, "scripts", "scripts"));
  if (scripts == nullptr || scripts->empty()) {
    return invalid_argument("field 'scripts' must be a non-empty object", "scripts");
  }
  ScriptBook book;
  for (const auto& entry : *scripts) {
    ASSIGN_OR_RETURN(Script script, parse_script(entry.value(), "scripts." + std::string(entry.key())));
    book.scripts_.emplace(std::string(entry.key()), std::move(script));
  }
  return book;
}

bool ScriptBook::has_script(std::string_view model) const { return scripts_.find(model) != scripts_.end(); }

int64_t ScriptBook::count_attempt(uint64_t request_key) {
  std::lock_guard lock(attempts_->mutex);
  auto& attempts = attempts_->attempts_by_key;
  if (attempts.size() >= kScriptAttemptKeysMax && attempts.find(request_key) == attempts.end()) {
    // Bounded memory beats exactness for a mock: forgetting old requests only
    // means a repeated old request sees its scripted failures again.
    attempts.clear();
  }
  return ++attempts[request_key];
}

ScriptReply ScriptBook::respond(const json::object& chat_request) {
  Result<std::string> model = get_string(chat_request, "model", "model");
  if (!model.is_ok()) return error_reply(400, model.status().message(), "invalid_request");
  Result<const json::array*> messages = get_optional_array(chat_request, "messages", "messages");
  if (!messages.is_ok()) return error_reply(400, messages.status().message(), "invalid_request");
  return respond(*model, *messages);
}

ScriptReply ScriptBook::respond(std::string_view model, const json::array* messages) {
  Result<std::vector<const json::object*>> objects = message_objects(messages);
  if (!objects.is_ok()) return error_reply(400, objects.status().message(), "invalid_request");
  return respond_to(model, std::move(*objects));
}

ScriptReply ScriptBook::respond(std::string_view model, const ContextMessages& messages) {
  std::vector<const json::object*> objects;
  objects.reserve(messages.size());
  for (const auto& message : messages) objects.push_back(message.get());
  return respond_to(model, std::move(objects));
}

ScriptReply ScriptBook::respond_to(std::string_view model, std::vector<const json::object*> messages) {
  Result<Conversation> conversation = read_conversation(model, std::move(messages));
  if (!conversation.is_ok()) {
    return error_reply(400, conversation.status().message(), "invalid_request");
  }
  auto script = scripts_.find(conversation->model);
  if (script == scripts_.end()) script = scripts_.find(std::string_view("default"));
  if (script == scripts_.end()) {
    return error_reply(404, "no script for model '" + conversation->model + "' and no 'default' script",
                       "model_not_found");
  }
  const ScriptStep& step = select_step(script->second, conversation->assistants_after_user);
  if (!step.fail.empty()) {
    int64_t attempt = count_attempt(request_key(conversation->model, serialize_messages(conversation->messages)));
    if (attempt <= static_cast<int64_t>(step.fail.size())) {
      int status = step.fail[static_cast<size_t>(attempt - 1)];
      ScriptReply reply = error_reply(status,
                                      "scripted failure " + std::to_string(attempt) + " of " +
                                          std::to_string(step.fail.size()),
                                      status == 429 ? "rate_limit_exceeded" : "injected_failure");
      if (status == 429) reply.retry_after_s = step.retry_after_s;
      reply.delay_ms = step.delay_ms;
      reply.failure_injected = true;
      return reply;
    }
  }
  ScriptReply reply;
  reply.delay_ms = step.delay_ms;
  reply.message = build_message(step, *conversation);
  reply.finish_reason = step.tool_calls.empty() ? "stop" : "tool_calls";
  reply.prompt_tokens = estimate_tokens(conversation->text_bytes);
  reply.completion_tokens = estimate_tokens(json::serialize(reply.message).size());
  return reply;
}

// ---------------------------------------------------------------- rendering

std::string openai_error_body(int http_status, std::string_view message, std::string_view code) {
  std::string_view type = "invalid_request_error";
  if (http_status == 401) type = "authentication_error";
  else if (http_status == 403) type = "permission_error";
  else if (http_status == 404) type = "not_found_error";
  else if (http_status == 429) type = "rate_limit_error";
  else if (http_status >= 500) type = "server_error";
  json::object error{{"message", message}, {"type", type}, {"code", code}};
  return json::serialize(json::object{{"error", std::move(error)}});
}

CompletionMeta completion_meta(const json::object& chat_request, int64_t created_s) {
  CompletionMeta meta;
  meta.created_s = created_s;
  const json::value* model = chat_request.if_contains("model");
  if (model != nullptr && model->is_string()) meta.model = std::string(model->as_string());
  const json::value* messages = chat_request.if_contains("messages");
  std::string messages_json = messages != nullptr ? json::serialize(*messages) : "";
  meta.id = "chatcmpl-" + hex64(request_key(meta.model, messages_json));
  const json::value* options = chat_request.if_contains("stream_options");
  if (options != nullptr && options->is_object()) {
    const json::value* include_usage = options->as_object().if_contains("include_usage");
    meta.include_usage = include_usage != nullptr && include_usage->is_bool() && include_usage->as_bool();
  }
  return meta;
}

json::object render_chat_completion(const ScriptReply& reply, const CompletionMeta& meta) {
  CONTINUUM_CHECK(reply.http_status == 200, "callers render only successful replies");
  json::object choice{{"index", 0}, {"message", reply.message}, {"finish_reason", reply.finish_reason}};
  return {{"id", meta.id},
          {"object", "chat.completion"},
          {"created", meta.created_s},
          {"model", meta.model},
          {"choices", json::array{std::move(choice)}},
          {"usage", usage_json(reply)}};
}

std::vector<json::object> render_chat_chunks(const ScriptReply& reply, const CompletionMeta& meta) {
  CONTINUUM_CHECK(reply.http_status == 200, "callers render only successful replies");
  std::vector<json::object> chunks;
  const json::value* content = reply.message.if_contains("content");
  bool has_content = content != nullptr && content->is_string();
  json::object first{{"role", "assistant"}};
  first["content"] = has_content ? json::value("") : json::value(nullptr);
  chunks.push_back(delta_chunk(meta, std::move(first)));
  if (has_content) {
    for (std::string& piece : split_content(content->as_string())) {
      chunks.push_back(delta_chunk(meta, json::object{{"content", std::move(piece)}}));
    }
  }
  const json::value* tool_calls = reply.message.if_contains("tool_calls");
  if (tool_calls != nullptr && tool_calls->is_array()) {
    const json::array& calls = tool_calls->as_array();
    for (size_t i = 0; i < calls.size(); ++i) {
      json::object call{{"index", static_cast<int64_t>(i)}};
      for (const auto& entry : calls[i].as_object()) call[entry.key()] = entry.value();  // id, type, function
      chunks.push_back(delta_chunk(meta, json::object{{"tool_calls", json::array{std::move(call)}}}));
    }
  }
  chunks.push_back(delta_chunk(meta, json::object{}, json::value(reply.finish_reason)));
  if (meta.include_usage) {
    json::object last = chunk_base(meta);
    last["choices"] = json::array{};
    last["usage"] = usage_json(reply);
    chunks.push_back(std::move(last));
  }
  return chunks;
}

}  // namespace continuum
