#include "net/sse_reader.h"

#include <utility>

namespace continuum {

SseReader::SseReader(std::string what, std::size_t line_bytes_max, EventFn on_event)
    : what_(std::move(what)), line_bytes_max_(line_bytes_max), on_event_(std::move(on_event)) {}

Status SseReader::too_large(std::string_view what) const {
  return Status(Code::kPayloadTooLarge,
                what_ + " " + std::string(what) + " exceeds the limit of " + std::to_string(line_bytes_max_));
}

Status SseReader::feed(std::string_view bytes) {
  if (!status_.is_ok()) return status_;
  if (stopped_) return Status::ok();
  Status status = feed_lines(bytes);
  if (!status.is_ok()) status_ = status;
  return status;
}

Status SseReader::feed_lines(std::string_view bytes) {
  std::size_t pos = 0;
  while (pos < bytes.size() && !stopped_) {
    if (skip_line_feed_) {
      skip_line_feed_ = false;
      if (bytes[pos] == '\n') {
        ++pos;
        continue;
      }
    }
    std::size_t end = bytes.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) return append_to_line(bytes.substr(pos));
    RETURN_IF_ERROR(append_to_line(bytes.substr(pos, end - pos)));
    skip_line_feed_ = bytes[end] == '\r';
    pos = end + 1;
    std::string line = std::move(line_);
    line_.clear();
    RETURN_IF_ERROR(process_line(line));
  }
  return Status::ok();
}

Status SseReader::append_to_line(std::string_view bytes) {
  if (line_.size() + bytes.size() > line_bytes_max_) return too_large("line");
  line_.append(bytes);
  return Status::ok();
}

Status SseReader::process_line(std::string_view line) {
  if (line.empty()) return dispatch_event();
  if (line.front() == ':') return Status::ok();  // a comment, e.g. a keep-alive
  std::size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    std::size_t size = event_.data.size() + value.size() + (event_has_data_ ? 1 : 0);
    if (size > line_bytes_max_) return too_large("event");
    if (event_has_data_) event_.data += '\n';
    event_.data.append(value);
    event_has_data_ = true;
  } else if (field == "event") {
    event_.name = std::string(value);
  } else if (field == "id" && value.find('\0') == std::string_view::npos) {
    event_.id = std::string(value);
    last_event_id_ = event_.id;
  } else if (field == "retry" && !value.empty() && value.size() <= 9 &&
             value.find_first_not_of("0123456789") == std::string_view::npos) {
    retry_ms_ = std::stoll(std::string(value));
  }
  return Status::ok();  // unknown fields carry nothing for us
}

Status SseReader::dispatch_event() {
  SseEvent event = std::move(event_);
  bool has_data = event_has_data_;
  event_ = SseEvent{};
  event_has_data_ = false;
  if (!has_data) return Status::ok();
  return on_event_(std::move(event));
}

Status SseReader::finish() {
  if (!status_.is_ok()) return status_;
  if (stopped_) return Status::ok();
  Status status = Status::ok();
  if (!line_.empty()) {
    std::string line = std::move(line_);
    line_.clear();
    status = process_line(line);
  }
  if (status.is_ok()) status = dispatch_event();
  if (!status.is_ok()) status_ = status;
  return status;
}

}  // namespace continuum
