// A scripted OpenAI-compatible chat model: canned replies chosen from the
// request's conversation, with injectable failures and delays. Pure logic (no
// I/O, no clock): used by the `continuum-mock-model` server and by the
// in-process scripted provider, for tests, benchmarks and the offline demo.
//
// Script document:
//   {"scripts": {"<model>": {"steps": [STEP, ...]}, "default": {...}}}
//   STEP: {"content": "text", "tool_calls": [{"name": "x", "arguments": {...}}],
//          "delay_ms": N, "fail": [429, 500, ...], "retry_after_s": N, "repeat": N}
// A step needs `content` or a non-empty `tool_calls`; `repeat` (default 1)
// makes it count as N consecutive steps.
//
// Reply selection: k = number of assistant messages after the last user
// message; step k is used (clamped to the last step). Templates in content and
// in string values of arguments (recursively): {{input}} (last user message),
// {{tool_results}} (tool messages after the last user message, joined "; "),
// {{turn}} (number of user messages).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/context.h"
#include "core/json.h"
#include "core/status.h"

namespace continuum {

// Limits on a script document, so a typo cannot make the mock allocate forever.
inline constexpr int64_t kScriptStepsTotalMax = 100'000'000;  // sum of `repeat` per script
inline constexpr int64_t kScriptDelayMsMax = 600'000;
inline constexpr int64_t kScriptRetryAfterSMax = 3'600;
inline constexpr size_t kScriptFailListMax = 100;
// Distinct requests whose attempts are remembered for failure injection.
inline constexpr size_t kScriptAttemptKeysMax = 1'000'000;

struct ScriptToolCall {
  std::string name;
  json::object arguments;  // may contain templates in string values
};

struct ScriptStep {
  std::string content;     // may contain templates; "" with tool calls means null content
  bool has_content = false;
  std::vector<ScriptToolCall> tool_calls;
  int64_t delay_ms = 0;
  std::vector<int> fail;   // HTTP statuses for attempts 1..len(fail)
  int64_t retry_after_s = 1;
  int64_t repeat = 1;
};

struct Script {
  std::vector<ScriptStep> steps;
  // step_ends[i] = number of steps covered by steps[0..i] (cumulative repeat).
  std::vector<int64_t> step_ends;
};

// The outcome of one request. When http_status != 200, `error_body` is the
// OpenAI-style error JSON and `message` is empty.
struct ScriptReply {
  int http_status = 200;
  int64_t retry_after_s = -1;  // >= 0: send a Retry-After header (429 only)
  int64_t delay_ms = 0;        // wait this long before replying
  // {"role":"assistant","content": string|null,
  //  "tool_calls":[{"id","type":"function","function":{"name","arguments": JSON text}}]}
  // (tool_calls omitted when none)
  json::object message;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::string finish_reason;   // "tool_calls" or "stop"
  std::string error_body;
  bool failure_injected = false;  // the error came from a step's `fail` list
};

// Thread safety: respond() may be called concurrently from any thread (the
// attempt counter is behind a mutex; the scripts are immutable after parse).
// A ScriptBook must not be moved while another thread uses it.
class ScriptBook {
 public:
  // Parses a script document. Errors are InvalidArgument naming the field,
  // e.g. "scripts.claims.steps[1].fail[0]".
  static Result<ScriptBook> parse(std::string_view text);
  static Result<ScriptBook> from_json(const json::object& document);

  ScriptBook(ScriptBook&&) noexcept;
  ScriptBook& operator=(ScriptBook&&) noexcept;
  ~ScriptBook();

  // Answers one Chat Completions request body. Malformed requests give 400,
  // a model with neither its own script nor "default" gives 404.
  ScriptReply respond(const json::object& chat_request);
  // The same for a request's parts (`messages` null = missing).
  ScriptReply respond(std::string_view model, const json::array* messages);
  // The same for the engine's messages (shared, not copied).
  ScriptReply respond(std::string_view model, const ContextMessages& messages);

  bool has_script(std::string_view model) const;

 private:
  ScriptReply respond_to(std::string_view model, std::vector<const json::object*> messages);
  struct AttemptCounter;
  ScriptBook();
  // Returns the attempt number (1-based) of this request, counting it.
  int64_t count_attempt(uint64_t request_key);

  std::map<std::string, Script, std::less<>> scripts_;
  std::unique_ptr<AttemptCounter> attempts_;
};

// An OpenAI-style error body: {"error":{"message","type","code"}}; the type
// follows the status (429 rate_limit_error, 5xx server_error, ...).
std::string openai_error_body(int http_status, std::string_view message, std::string_view code);

// What a rendered response says besides the reply itself.
struct CompletionMeta {
  std::string id;            // "chatcmpl-..."; deterministic per request
  std::string model;         // echoed from the request
  int64_t created_s = 0;     // Unix seconds, supplied by the caller's clock
  bool include_usage = false;  // request's stream_options.include_usage
};

// Builds the meta for `chat_request` (id from a hash of model and messages).
CompletionMeta completion_meta(const json::object& chat_request, int64_t created_s);

// A complete non-streaming chat.completion body. Requires reply.http_status == 200.
json::object render_chat_completion(const ScriptReply& reply, const CompletionMeta& meta);

// The chat.completion.chunk payloads of a streamed reply, in order: role,
// content pieces of ~8 characters, one chunk per tool call, finish_reason,
// then usage (only when meta.include_usage). The caller frames each as
// "data: <json>\n\n" and ends with "data: [DONE]\n\n".
// Requires reply.http_status == 200.
std::vector<json::object> render_chat_chunks(const ScriptReply& reply, const CompletionMeta& meta);

}  // namespace continuum
