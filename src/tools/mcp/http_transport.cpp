// The Streamable HTTP transport: every message is a POST to the server's one
// endpoint; a request's reply comes back as a JSON body or as an SSE stream
// (which may carry the server's notifications and requests first). The
// session id a 2025-11-25 server assigns is sent back on every later request.
#include <memory>

#include "core/log.h"
#include "net/http_client.h"
#include "net/sse_reader.h"
#include "tools/mcp/mcp_protocol.h"
#include "tools/mcp/mcp_transport.h"

namespace continuum {

namespace {

constexpr std::size_t kErrorBodyShownMax = 300;

bool looks_like_json(std::string_view body) {
  std::size_t first = body.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && (body[first] == '{' || body[first] == '[');
}

struct HttpState {
  McpHttpOptions options;
  McpTransport::Handlers handlers;
  std::string session_id;
  std::string protocol_version;
  bool closed = false;
};

// One POST's reply. SSE bodies are read as they arrive, so progress
// notifications are seen while the call runs.
class Exchange {
 public:
  // `live`: SSE events are passed on as they arrive. Off for initialize,
  // whose reply must not be acted on before its headers (the session id) are read.
  Exchange(std::shared_ptr<HttpState> state, std::optional<int64_t> request_id, bool live)
      : state_(std::move(state)),
        request_id_(request_id),
        live_(live),
        reader_("MCP event stream", kMcpMessageBytesMax, [this](SseEvent event) { return deliver(event.data); }) {}

  void on_body(std::string_view bytes) {
    if (mode_ == Mode::kUnknown) {
      sniffed_.append(bytes);
      std::size_t first = sniffed_.find_first_not_of(" \t\r\n");
      if (first == std::string::npos) return;
      mode_ = looks_like_json(sniffed_) || !live_ ? Mode::kWhole : Mode::kSse;
      if (mode_ == Mode::kSse) stream_status_ = reader_.feed(sniffed_);
      return;
    }
    if (mode_ == Mode::kSse && stream_status_.is_ok()) stream_status_ = reader_.feed(bytes);
  }

  void on_done(Result<HttpClientResponse> result) {
    if (state_->closed) return;
    if (!result.is_ok()) return fail(result.status());
    std::string session = result->header("Mcp-Session-Id");
    if (!session.empty()) state_->session_id = session;
    if (result->status == 404 && !state_->session_id.empty()) {
      state_->session_id.clear();
      return fail(not_found("the MCP session expired"));
    }
    if (result->status < 200 || result->status >= 300) {
      // A JSON-RPC error in the body (e.g. an unsupported protocol version) says more than the status.
      if (looks_like_json(result->body) && deliver_if_answer(result->body)) return;
      Status status(result->status >= 500 || result->status == 429 ? Code::kUnavailable : Code::kInvalidArgument,
                    "MCP server answered HTTP " + std::to_string(result->status) + ": " +
                        result->body.substr(0, kErrorBodyShownMax));
      return fail(status);
    }
    bool sse = mode_ == Mode::kSse || result->header("Content-Type").find("text/event-stream") == 0 ||
               (!looks_like_json(result->body) && !result->body.empty());
    if (sse) {
      if (mode_ != Mode::kSse) stream_status_ = reader_.feed(result->body);
      if (stream_status_.is_ok()) stream_status_ = reader_.finish();
      if (!stream_status_.is_ok()) return fail(stream_status_);
    } else if (!result->body.empty()) {
      Status delivered = deliver(result->body);
      if (!delivered.is_ok()) return fail(delivered);
    }
    if (request_id_ && !answered_) fail(unavailable("the MCP server ended its reply without answering"));
  }

 private:
  enum class Mode { kUnknown, kWhole, kSse };  // kWhole: read once the reply is complete

  Status deliver(std::string_view text) {
    if (state_->closed) return Status::ok();
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return Status::ok();  // a priming event
    if (request_id_ && text.find("\"id\"") != std::string_view::npos) {
      auto messages = parse_mcp_messages(text);
      if (messages.is_ok()) {
        for (const auto& message : *messages) {
          bool response = message.kind == McpMessage::Kind::kResult || message.kind == McpMessage::Kind::kError;
          if (response && message.id.is_int64() && message.id.get_int64() == *request_id_) answered_ = true;
        }
      }
    }
    if (state_->handlers.on_message) state_->handlers.on_message(text);
    return Status::ok();
  }

  bool deliver_if_answer(std::string_view body) {
    auto messages = parse_mcp_messages(body);
    if (!messages.is_ok()) return false;
    for (const auto& message : *messages) {
      if (message.kind != McpMessage::Kind::kError) return false;
    }
    (void)deliver(body);
    return !request_id_ || answered_;
  }

  void fail(Status status) {
    if (state_->closed || !request_id_ || answered_) {
      if (!status.is_ok() && !request_id_) {
        log::warn("mcp notification not delivered", {{"server", state_->options.server_name},
                                                      {"error", status.message()}});
      }
      return;
    }
    answered_ = true;
    if (state_->handlers.on_request_failed) state_->handlers.on_request_failed(*request_id_, std::move(status));
  }

  std::shared_ptr<HttpState> state_;
  std::optional<int64_t> request_id_;
  bool live_ = true;
  SseReader reader_;
  Mode mode_ = Mode::kUnknown;
  std::string sniffed_;
  Status stream_status_;
  bool answered_ = false;
};

class HttpTransport final : public McpTransport {
 public:
  HttpTransport(HttpClient& http, McpHttpOptions options) : http_(http), state_(std::make_shared<HttpState>()) {
    state_->options = std::move(options);
  }
  ~HttpTransport() override { close(); }

  Status start(Handlers handlers) override {
    state_->handlers = std::move(handlers);
    return Status::ok();
  }

  void send(McpOutgoing message) override {
    HttpClientRequest request = base_request("POST", message.timeout_ms);
    request.body = std::move(message.text);
    request.headers.emplace_back("Content-Type", "application/json");
    request.headers.emplace_back("Accept", "application/json, text/event-stream");
    if (state_->protocol_version == kMcpRevision2026) {
      request.headers.emplace_back("Mcp-Method", message.method);
      if (!message.name.empty()) request.headers.emplace_back("Mcp-Name", message.name);
    }
    auto exchange = std::make_shared<Exchange>(state_, message.request_id, message.method != "initialize");
    http_.send(std::move(request), [exchange](std::string_view bytes) { exchange->on_body(bytes); },
               [exchange](Result<HttpClientResponse> result) { exchange->on_done(std::move(result)); });
  }

  void set_protocol_version(std::string version) override { state_->protocol_version = std::move(version); }

  // Ends a 2025-11-25 session with a DELETE (best effort; a server may refuse it).
  void close() override {
    if (state_->closed) return;
    state_->closed = true;
    state_->handlers = {};
    if (state_->session_id.empty()) return;
    http_.send(base_request("DELETE", 5000), nullptr, [](Result<HttpClientResponse>) {});
  }

 private:
  HttpClientRequest base_request(const char* method, int64_t timeout_ms) {
    HttpClientRequest request;
    request.method = method;
    request.url = state_->options.url;
    request.timeout_ms = timeout_ms;
    request.response_bytes_max = state_->options.response_bytes_max;
    request.deny_private_addresses = state_->options.deny_private_addresses;
    request.headers = state_->options.headers;
    if (!state_->protocol_version.empty()) request.headers.emplace_back("MCP-Protocol-Version", state_->protocol_version);
    if (!state_->session_id.empty()) request.headers.emplace_back("Mcp-Session-Id", state_->session_id);
    return request;
  }

  HttpClient& http_;
  std::shared_ptr<HttpState> state_;
};

}  // namespace

std::unique_ptr<McpTransport> make_mcp_http_transport(HttpClient& http, McpHttpOptions options) {
  return std::make_unique<HttpTransport>(http, std::move(options));
}

}  // namespace continuum
