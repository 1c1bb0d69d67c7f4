#include "providers/openai_chat.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <utility>

#include "core/log.h"
#include "providers/chat_stream.h"

namespace continuum {
namespace {

// Bytes of a streamed body kept aside, so that an error body can be quoted
// and a JSON body that arrived through on_body can still be parsed.
constexpr std::size_t kBodyPrefixBytesMax = 64 * 1024;
// An error message taken from a response body is cut to this many bytes.
constexpr std::size_t kErrorMessageBytesMax = 500;

constexpr std::string_view kWhitespace = " \t\r\n";

// Cuts to at most `limit` bytes without splitting a UTF-8 sequence.
std::string truncate_utf8(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text + "...";
}

ModelOutcome failure(std::string code, std::string message, bool retryable, int64_t retry_after_ms = -1) {
  ModelOutcome outcome;
  outcome.error = EffectError{std::move(code), truncate_utf8(std::move(message), kErrorMessageBytesMax),
                              retryable, retry_after_ms};
  return outcome;
}

// The human-readable part of an error body: error.message, error (a
// string), message, else the body itself.
std::string error_body_message(std::string_view body) {
  auto parsed = parse_json(body);
  if (parsed.is_ok() && parsed->is_object()) {
    const json::object& obj = parsed->as_object();
    const json::value* error = obj.if_contains("error");
    if (error != nullptr && error->is_string()) return std::string(error->as_string());
    if (error != nullptr && error->is_object()) {
      const json::value* message = error->as_object().if_contains("message");
      if (message != nullptr && message->is_string()) return std::string(message->as_string());
    }
    const json::value* message = obj.if_contains("message");
    if (message != nullptr && message->is_string()) return std::string(message->as_string());
  }
  std::size_t first = body.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  return std::string(body.substr(first, body.find_last_not_of(kWhitespace) - first + 1));
}

ModelOutcome http_failure(const HttpClientResponse& response, std::string_view body) {
  std::string message = "HTTP " + std::to_string(response.status);
  std::string detail = error_body_message(body.substr(0, kBodyPrefixBytesMax));
  if (!detail.empty()) message += ": " + detail;
  return failure("http_" + std::to_string(response.status), std::move(message),
                 is_retryable_http_status(response.status), parse_retry_after_ms(response.header("retry-after")));
}

ModelOutcome transport_failure(const Status& status) {
  switch (status.code()) {
    case Code::kDeadlineExceeded:
      return failure("timeout", "model call timed out: " + status.message(), true);
    case Code::kPermissionDenied:
    case Code::kInvalidArgument:  // a refused address or a bad URL will not get better
      return failure("connection", "cannot reach the model endpoint: " + status.message(), false);
    default:
      return failure("connection", "cannot reach the model endpoint: " + status.message(), true);
  }
}

// A body that did not parse (see ChatStreamParser's error codes).
ModelOutcome parse_failure(const Status& status) {
  switch (status.code()) {
    case Code::kUnavailable:
      return failure("provider_error", status.message(), true);
    case Code::kPayloadTooLarge:
      return failure("response_too_large", status.message(), false);
    default:
      return failure("invalid_response", status.message(), true);
  }
}

bool is_json_content_type(std::string content_type) {
  std::transform(content_type.begin(), content_type.end(), content_type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return content_type.find("application/json") != std::string::npos;
}

// The state of one call, shared by the HttpClient's two callbacks (which run
// on the loop thread, one at a time).
class ChatCall {
 public:
  ChatCall(std::function<void(std::string_view)> on_text_delta, std::function<void(ModelOutcome)> done)
      : on_text_delta_(std::move(on_text_delta)), done_(std::move(done)), parser_(on_text_delta_) {}

  void on_body(std::string_view bytes);
  void on_done(Result<HttpClientResponse> result);

 private:
  // How the body is being read: decided by its first non-blank byte, since
  // the status and headers are known only at the end ('{' = a JSON body from
  // a server that ignored `stream`, or an error body).
  enum class BodyKind { kUnknown, kStream, kJson };

  ModelOutcome outcome(const HttpClientResponse& response);

  std::function<void(std::string_view)> on_text_delta_;
  std::function<void(ModelOutcome)> done_;
  ChatStreamParser parser_;
  BodyKind kind_ = BodyKind::kUnknown;
  std::string body_;  // kJson: the whole body; otherwise its first kBodyPrefixBytesMax bytes
  bool body_too_large_ = false;
  bool received_body_ = false;
};

void ChatCall::on_body(std::string_view bytes) {
  received_body_ = received_body_ || !bytes.empty();
  if (kind_ == BodyKind::kJson) {
    body_too_large_ = body_too_large_ || body_.size() + bytes.size() > kChatStreamBytesMax;
    if (!body_too_large_) body_.append(bytes);
    return;
  }
  if (kind_ == BodyKind::kStream) {
    if (body_.size() < kBodyPrefixBytesMax) body_.append(bytes.substr(0, kBodyPrefixBytesMax - body_.size()));
    static_cast<void>(parser_.feed(bytes));  // errors are sticky: finish() reports them
    return;
  }
  body_.append(bytes);
  std::size_t first = body_.find_first_not_of(kWhitespace);
  if (first == std::string::npos && body_.size() < kBodyPrefixBytesMax) return;
  kind_ = first != std::string::npos && body_[first] == '{' ? BodyKind::kJson : BodyKind::kStream;
  if (kind_ == BodyKind::kStream) {
    static_cast<void>(parser_.feed(body_));
    body_.resize(std::min(body_.size(), kBodyPrefixBytesMax));
  }
}

void ChatCall::on_done(Result<HttpClientResponse> result) {
  if (!result.is_ok()) {
    done_(transport_failure(result.status()));
    return;
  }
  // A client that returned the body whole rather than through on_body.
  if (!received_body_ && !result->body.empty()) on_body(result->body);
  done_(outcome(*result));
}

ModelOutcome ChatCall::outcome(const HttpClientResponse& response) {
  std::string_view body = response.body.empty() ? std::string_view(body_) : std::string_view(response.body);
  if (response.status < 200 || response.status >= 300) return http_failure(response, body);
  bool json_body = kind_ == BodyKind::kJson || is_json_content_type(response.header("content-type"));
  if (!json_body) {
    auto parsed = parser_.finish();
    if (!parsed.is_ok()) return parse_failure(parsed.status());
    return ModelOutcome{std::move(parsed).value(), {}};
  }
  if (body_too_large_) {
    return parse_failure(Status(Code::kPayloadTooLarge, "model response exceeds the limit of " +
                                                            std::to_string(kChatStreamBytesMax) + " bytes"));
  }
  auto parsed = parse_chat_completion(body);
  if (!parsed.is_ok()) return parse_failure(parsed.status());
  // Not streamed: the whole text is one delta, so listeners still see it.
  const json::value* content = parsed->message.if_contains("content");
  if (on_text_delta_ && content != nullptr && content->is_string() && !content->as_string().empty()) {
    on_text_delta_(std::string_view(content->as_string()));
  }
  return ModelOutcome{std::move(parsed).value(), {}};
}

}  // namespace

std::string chat_completions_url(std::string_view base_url) {
  while (!base_url.empty() && base_url.back() == '/') base_url.remove_suffix(1);
  return std::string(base_url) + "/chat/completions";
}

json::object build_chat_request_body(const ModelRequest& request) {
  json::object body;
  for (const auto& [key, value] : request.spec.params) body[key] = value;
  body["model"] = request.spec.model;
  body["messages"] = to_json_array(request.messages);
  body["stream"] = true;
  body["stream_options"] = json::object{{"include_usage", true}};
  if (!request.tools.empty()) body["tools"] = request.tools;
  return body;
}

OpenAiChatProvider::OpenAiChatProvider(HttpClient& http, std::string default_base_url,
                                       std::string default_api_key, EnvReader read_env)
    : http_(http),
      default_base_url_(std::move(default_base_url)),
      default_api_key_(std::move(default_api_key)),
      read_env_(std::move(read_env)) {}

HttpClientRequest OpenAiChatProvider::build_http_request(const ModelRequest& request) const {
  const ModelSpec& spec = request.spec;
  std::string api_key = default_api_key_;
  if (!spec.api_key_env.empty()) {
    api_key = read_env_ ? read_env_(spec.api_key_env) : std::string();
    // Sent without a key, the server's 401 becomes the run's error.
    if (api_key.empty()) log::warn("model API key variable is not set", {{"env", spec.api_key_env}});
  }
  HttpClientRequest http_request;
  http_request.method = "POST";
  http_request.url = chat_completions_url(spec.base_url.empty() ? default_base_url_ : spec.base_url);
  http_request.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  if (!api_key.empty()) http_request.headers.emplace_back("Authorization", "Bearer " + api_key);
  http_request.body = to_json(build_chat_request_body(request));
  http_request.timeout_ms = spec.timeout_ms;
  http_request.response_bytes_max = static_cast<int64_t>(kChatStreamBytesMax);
  return http_request;
}

void OpenAiChatProvider::complete(const ModelRequest& request, std::function<void(std::string_view)> on_text_delta,
                                  std::function<void(ModelOutcome)> done) {
  auto call = std::make_shared<ChatCall>(std::move(on_text_delta), std::move(done));
  http_.send(
      build_http_request(request), [call](std::string_view bytes) { call->on_body(bytes); },
      [call](Result<HttpClientResponse> result) { call->on_done(std::move(result)); });
}

}  // namespace continuum
