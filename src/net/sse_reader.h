// Incremental reader of a Server-Sent Events stream (WHATWG event-stream
// rules). Pure: no I/O, no clock, no threads. Used by the Chat Completions
// stream parser and the MCP Streamable HTTP transport.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace continuum {

struct SseEvent {
  std::string name;  // the `event` field ("" = the default "message")
  std::string data;  // `data` lines joined with "\n"
  std::string id;    // the `id` field, if the event had one
};

// Contract: feed() takes the bytes in order, split anywhere (inside a line, a
// CRLF pair or a UTF-8 sequence). Lines end in "\n", "\r\n" or "\r"; `data:`
// lines accumulate into an event dispatched at a blank line; comments (":...")
// are ignored; `id` and `retry` are remembered (last_event_id, retry_ms).
// Events without data are not dispatched. A line or
// an event's joined data longer than `line_bytes_max` is kPayloadTooLarge
// ("<what> line exceeds the limit of N"). `on_event` returning an error stops
// the reader; that error, like every other, is sticky. After stop(), later
// bytes are ignored. Not thread-safe; `on_event` runs inside feed()/finish().
class SseReader {
 public:
  using EventFn = std::function<Status(SseEvent event)>;

  SseReader(std::string what, std::size_t line_bytes_max, EventFn on_event);

  Status feed(std::string_view bytes);
  // Dispatches a last event not followed by a blank line. Call once, at the end.
  Status finish();
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }
  // The stream's last `id` (also of events without data, e.g. a priming
  // event), for resuming it with Last-Event-ID; "" if none.
  const std::string& last_event_id() const { return last_event_id_; }
  // The last `retry` field in milliseconds, or -1 if none.
  int64_t retry_ms() const { return retry_ms_; }

 private:
  Status feed_lines(std::string_view bytes);
  Status append_to_line(std::string_view bytes);
  Status process_line(std::string_view line);
  Status dispatch_event();
  Status too_large(std::string_view what) const;

  std::string what_;
  std::size_t line_bytes_max_;
  EventFn on_event_;
  Status status_;
  bool stopped_ = false;
  std::string line_;             // the current unterminated line
  bool skip_line_feed_ = false;  // the last line ended in '\r': a following '\n' is part of it
  SseEvent event_;               // the event being read
  bool event_has_data_ = false;
  std::string last_event_id_;
  int64_t retry_ms_ = -1;
};

}  // namespace continuum
