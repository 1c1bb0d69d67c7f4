// Parsing of Chat Completions responses (OpenAI wire format) into the
// normalized ModelResponse: the streaming form (Server-Sent Events carrying
// `chat.completion.chunk` objects) and the plain JSON form. Pure: no I/O, no
// clock, no threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "net/sse_reader.h"
#include "providers/provider.h"

namespace continuum {

// A single SSE line (and a single event's joined `data`) longer than this is
// refused: a provider sends small deltas, so a huge line means a broken peer.
inline constexpr std::size_t kChatStreamLineBytesMax = 4 * 1024 * 1024;
// Total bytes accepted for one streamed response.
inline constexpr std::size_t kChatStreamBytesMax = 64 * 1024 * 1024;
// Distinct tool calls accepted in one response.
inline constexpr std::size_t kChatStreamToolCallsMax = 256;

struct ChatStreamLimits {
  std::size_t line_bytes_max = kChatStreamLineBytesMax;
  std::size_t total_bytes_max = kChatStreamBytesMax;
  std::size_t tool_calls_max = kChatStreamToolCallsMax;
};

// Incremental parser of one streamed Chat Completions response.
//
// Contract: feed() takes the body bytes in order, split anywhere (inside a
// line, a CRLF pair or a UTF-8 sequence). Lines end in "\n", "\r\n" or "\r";
// `data:` lines accumulate into an event dispatched at a blank line; comments
// (":...") and other fields (event, id, retry) are ignored; `data: [DONE]`
// ends the stream and every later byte is ignored. Only choice 0 is read.
// Each non-empty `delta.content` is passed to `on_text_delta` as soon as its
// event is complete (so a delta is always whole UTF-8 text). Tool calls are
// keyed by `index`: `id` and `function.name` are taken from the first delta
// that carries them, `function.arguments` is concatenated across deltas.
//
// Errors are sticky: after the first, feed() and finish() return it again.
//   kUnavailable      the provider sent an `error` object in the stream
//   kInvalidArgument  the stream is malformed (bad JSON, truncated)
//   kPayloadTooLarge  a ChatStreamLimits limit was exceeded
// Not thread-safe; `on_text_delta` runs inside feed()/finish().
class ChatStreamParser {
 public:
  using TextDeltaFn = std::function<void(std::string_view)>;

  explicit ChatStreamParser(TextDeltaFn on_text_delta = {}, ChatStreamLimits limits = {});

  Status feed(std::string_view bytes);

  // Ends the stream: a last event not followed by a blank line is still
  // dispatched. The stream must have ended with [DONE] or carried a
  // finish_reason, else it is treated as truncated. Call at most once.
  Result<ModelResponse> finish();

  bool saw_done() const { return done_; }

 private:
  struct ToolCallParts {
    std::string id;
    std::string name;
    std::string arguments;
  };

  Status finish_stream();
  Status on_event(SseEvent event);
  Status apply_chunk(std::string_view data, std::string_view event_name);
  Status apply_delta(const json::object& delta);
  Status apply_tool_call_delta(const json::value& item);

  TextDeltaFn on_text_delta_;
  ChatStreamLimits limits_;
  Status status_;
  std::size_t total_bytes_ = 0;
  SseReader reader_;
  bool done_ = false;
  bool finished_ = false;
  std::string content_;
  std::map<int64_t, ToolCallParts> tool_calls_;  // by `index`, so ordered as the provider numbered them
  std::string finish_reason_;
  Usage usage_;
};

// Parses a non-streaming Chat Completions response body (a `chat.completion`
// object). Usage is mapped input_tokens=prompt_tokens,
// output_tokens=completion_tokens. Error codes as for ChatStreamParser.
Result<ModelResponse> parse_chat_completion(std::string_view body);

}  // namespace continuum
