// The Streamable HTTP transport: every message is a POST to the server's one
// endpoint; a request's reply comes back as a JSON body or as an SSE stream
// (which may carry the server's notifications and requests first). The
// session id a 2025-11-25 server assigns is sent back on every later request.
#include <map>
#include <memory>

#include "core/log.h"
#include "engine/event_loop.h"
#include "net/http_client.h"
#include "net/sse_reader.h"
#include "tools/mcp/mcp_protocol.h"
#include "tools/mcp/mcp_transport.h"

namespace continuum {

namespace {

constexpr std::size_t kErrorBodyShownMax = 300;
constexpr int kStreamResumesMax = 5;           // GETs with Last-Event-ID for one request
constexpr int64_t kResumeDelayDefaultMs = 1000;  // when the server sent no `retry`
constexpr int64_t kResumeDelayMaxMs = 30'000;

bool looks_like_json(std::string_view body) {
  std::size_t first = body.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && (body[first] == '{' || body[first] == '[');
}

class Exchange;

struct HttpState {
  HttpClient* http = nullptr;
  EventLoop* loop = nullptr;
  McpHttpOptions options;
  McpTransport::Handlers handlers;
  std::string session_id;
  std::string protocol_version;
  bool closed = false;
  std::map<int64_t, std::weak_ptr<Exchange>> exchanges;  // requests in progress, by id
  std::weak_ptr<Exchange> server_stream;                  // the standalone GET stream, while open
};

HttpClientRequest make_request(const HttpState& state, const char* method, int64_t timeout_ms) {
  HttpClientRequest request;
  request.method = method;
  request.url = state.options.url;
  request.timeout_ms = timeout_ms;
  request.response_bytes_max = state.options.response_bytes_max;
  request.deny_private_addresses = state.options.deny_private_addresses;
  request.headers = state.options.headers;
  if (!state.protocol_version.empty()) request.headers.emplace_back("MCP-Protocol-Version", state.protocol_version);
  if (!state.session_id.empty()) request.headers.emplace_back("Mcp-Session-Id", state.session_id);
  return request;
}

// One POST's reply. SSE bodies are read as they arrive, so progress
// notifications are seen while the call runs. A stream that ends before the
// answer, after the server gave its events ids, is resumed with a GET and
// Last-Event-ID after the server's `retry` delay (2025-11-25 resumability).
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  // `live`: SSE events are passed on as they arrive. Off for initialize,
  // whose reply must not be acted on before its headers (the session id) are read.
  Exchange(std::shared_ptr<HttpState> state, std::optional<int64_t> request_id, bool live, int64_t timeout_ms)
      : state_(std::move(state)),
        request_id_(request_id),
        live_(live),
        timeout_ms_(timeout_ms),
        reader_(new_reader()) {}

  // Sends `request` with the current credential (kept to send again if the
  // server refuses it).
  void send(HttpClientRequest request) {
    auto self = shared_from_this();
    unsent_ = request;
    sent_authorization_.clear();
    if (state_->options.auth) {
      sent_authorization_ = state_->options.auth->authorization();
      if (!sent_authorization_.empty()) request.headers.emplace_back("Authorization", sent_authorization_);
    }
    abort_ = std::make_shared<HttpAbort>();
    request.abort = abort_;
    state_->http->send(std::move(request), [self](std::string_view bytes) { self->on_body(bytes); },
                       [self](Result<HttpClientResponse> result) { self->on_done(std::move(result)); });
  }

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

  // Drops the connection: the request is no longer wanted (a cancel, which a
  // 2026-07-28 server takes a closed stream to mean), or a resumed stream has
  // delivered its answer.
  void abort() {
    aborted_ = true;  // also stops a resumption that is waiting for its delay
    if (abort_) abort_->abort();
  }

  // Runs after the exchange ended, with whether the server answered 2xx (the
  // standalone GET stream uses it to open itself again).
  void on_finished(std::function<void(bool ok)> handler) { on_finished_ = std::move(handler); }
  // Runs once, when the first POST of this exchange was answered or failed.
  void on_delivered(std::function<void()> handler) { delivered_ = std::move(handler); }

  void on_done(Result<HttpClientResponse> result) {
    bool ok = result.is_ok() && result->status >= 200 && result->status < 300;
    take_reply(std::move(result));
    if (auto delivered = std::move(delivered_)) {
      delivered_ = nullptr;
      delivered();
    }
    if (on_finished_) on_finished_(ok);
  }

 private:
  void take_reply(Result<HttpClientResponse> result) {
    if (state_->closed) return;
    if (!result.is_ok()) return fail(result.status());
    std::string session = result->header("Mcp-Session-Id");
    if (!session.empty()) state_->session_id = session;
    if (result->status == 404 && !state_->session_id.empty()) {
      state_->session_id.clear();
      return fail(not_found("the MCP session expired"));
    }
    if ((result->status == 401 || result->status == 403) && state_->options.auth) return renew_credential(*result);
    if (result->status == 401 || result->status == 403) {
      // Perhaps a rotated credential: a new connection reads the vault again.
      return fail(Status(Code::kUnauthenticated, "MCP server answered HTTP " + std::to_string(result->status)));
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
    if (request_id_ && !answered_ && sse && resume()) return;
    if (request_id_ && !answered_) fail(unavailable("the MCP server ended its reply without answering"));
  }

  enum class Mode { kUnknown, kWhole, kSse };  // kWhole: read once the reply is complete

  // The server refused the credential: the auth gets a new one (or says why
  // not) and the request goes again, at most kRenewalsMax times.
  void renew_credential(const HttpClientResponse& response) {
    if (renewals_ >= kRenewalsMax) {
      return fail(Status(response.status == 401 ? Code::kUnauthenticated : Code::kPermissionDenied,
                         "MCP server answered HTTP " + std::to_string(response.status) + " to a renewed credential"));
    }
    ++renewals_;
    auto self = shared_from_this();
    state_->options.auth->refused(response.status, response.header("WWW-Authenticate"), sent_authorization_,
                                  [self](Status status) {
                                    if (self->state_->closed || self->aborted_) return;
                                    if (!status.is_ok()) return self->fail(std::move(status));
                                    self->restart();
                                  });
  }

  void restart() {
    reader_ = new_reader();
    mode_ = Mode::kUnknown;
    sniffed_.clear();
    stream_status_ = Status::ok();
    send(unsent_);
  }

  SseReader new_reader() {
    return SseReader("MCP event stream", kMcpMessageBytesMax, [this](SseEvent event) { return deliver(event.data); });
  }

  // Asks for the rest of the stream; false if it cannot be resumed.
  bool resume() {
    std::string last_event_id = reader_.last_event_id();
    if (last_event_id.empty() || resumes_ >= kStreamResumesMax || state_->loop == nullptr) return false;
    ++resumes_;
    int64_t delay_ms = reader_.retry_ms() >= 0 ? std::min(reader_.retry_ms(), kResumeDelayMaxMs) : kResumeDelayDefaultMs;
    auto self = shared_from_this();
    state_->loop->post_after(delay_ms, [self, last_event_id] {
      if (self->state_->closed || self->aborted_) return;
      HttpClientRequest request = make_request(*self->state_, "GET", self->timeout_ms_);
      request.headers.emplace_back("Accept", "text/event-stream");
      request.headers.emplace_back("Last-Event-ID", last_event_id);
      self->reader_ = self->new_reader();
      self->mode_ = Mode::kUnknown;
      self->sniffed_.clear();
      self->stream_status_ = Status::ok();
      self->send(std::move(request));
    });
    return true;
  }

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
    // A resumed (GET) stream may stay open for other messages: this request needs no more of it.
    if (answered_ && resumes_ > 0) abort();
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
      if (!status.is_ok() && !request_id_ && !on_finished_) {
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
  std::shared_ptr<HttpAbort> abort_;  // of the exchange in progress
  bool aborted_ = false;
  bool live_ = true;
  int64_t timeout_ms_ = 0;
  int resumes_ = 0;
  SseReader reader_;
  Mode mode_ = Mode::kUnknown;
  std::string sniffed_;
  Status stream_status_;
  bool answered_ = false;
  std::function<void(bool)> on_finished_;
  std::function<void()> delivered_;
  HttpClientRequest unsent_;          // the request as sent, without its credential
  std::string sent_authorization_;    // the credential it carried
  int renewals_ = 0;
  static constexpr int kRenewalsMax = 2;
};

constexpr int64_t kServerStreamReopenMs = 1000;
constexpr int64_t kServerStreamTimeoutMs = 3'600'000;

// The 2025-11-25 standalone stream: a GET that carries what the server sends
// unasked (notifications/tools/list_changed). Opened again when it ends
// normally; given up on when the server refuses it (405: it has none).
void open_server_stream(const std::shared_ptr<HttpState>& state) {
  if (state->closed || !state->server_stream.expired()) return;
  HttpClientRequest request = make_request(*state, "GET", kServerStreamTimeoutMs);
  request.headers.emplace_back("Accept", "text/event-stream");
  auto stream = std::make_shared<Exchange>(state, std::nullopt, true, kServerStreamTimeoutMs);
  std::weak_ptr<HttpState> weak = state;
  stream->on_finished([weak](bool ok) {
    auto alive = weak.lock();
    if (!alive || alive->closed || !ok) return;
    alive->loop->post_after(kServerStreamReopenMs, [weak] {
      if (auto again = weak.lock()) open_server_stream(again);
    });
  });
  state->server_stream = stream;
  stream->send(std::move(request));
}

class HttpTransport final : public McpTransport {
 public:
  HttpTransport(HttpClient& http, EventLoop& loop, McpHttpOptions options) : state_(std::make_shared<HttpState>()) {
    state_->http = &http;
    state_->loop = &loop;
    state_->options = std::move(options);
  }
  ~HttpTransport() override { close(); }

  Status start(Handlers handlers) override {
    state_->handlers = std::move(handlers);
    return Status::ok();
  }

  void send(McpOutgoing message) override {
    HttpClientRequest request = make_request(*state_, "POST", message.timeout_ms);
    request.body = std::move(message.text);
    request.headers.emplace_back("Content-Type", "application/json");
    request.headers.emplace_back("Accept", "application/json, text/event-stream");
    if (state_->protocol_version == kMcpRevision2026) {
      request.headers.emplace_back("Mcp-Method", message.method);
      if (!message.name.empty()) request.headers.emplace_back("Mcp-Name", message.name);
    }
    auto exchange =
        std::make_shared<Exchange>(state_, message.request_id, message.method != "initialize", message.timeout_ms);
    if (message.delivered) exchange->on_delivered(std::move(message.delivered));
    if (message.request_id) {
      for (auto it = state_->exchanges.begin(); it != state_->exchanges.end();) {  // forget finished ones
        it = it->second.expired() ? state_->exchanges.erase(it) : std::next(it);
      }
      state_->exchanges[*message.request_id] = exchange;
    }
    exchange->send(std::move(request));
  }

  void set_protocol_version(std::string version) override { state_->protocol_version = std::move(version); }

  void open_server_stream() override { continuum::open_server_stream(state_); }

  void cancel_request(int64_t request_id) override {
    auto it = state_->exchanges.find(request_id);
    if (it == state_->exchanges.end()) return;
    if (auto exchange = it->second.lock()) exchange->abort();
    state_->exchanges.erase(it);
  }

  // Ends a 2025-11-25 session with a DELETE (best effort; a server may refuse it).
  void close() override {
    if (state_->closed) return;
    state_->closed = true;
    state_->handlers = {};
    for (auto& [id, weak] : state_->exchanges) {
      if (auto exchange = weak.lock()) exchange->abort();  // e.g. a subscription's open stream
    }
    if (auto stream = state_->server_stream.lock()) stream->abort();
    state_->exchanges.clear();
    if (state_->session_id.empty()) return;
    state_->http->send(make_request(*state_, "DELETE", 5000), nullptr, [](Result<HttpClientResponse>) {});
  }

 private:
  std::shared_ptr<HttpState> state_;
};

}  // namespace

std::unique_ptr<McpTransport> make_mcp_http_transport(HttpClient& http, EventLoop& loop, McpHttpOptions options) {
  return std::make_unique<HttpTransport>(http, loop, std::move(options));
}

}  // namespace continuum
