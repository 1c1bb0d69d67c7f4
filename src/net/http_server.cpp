#include "net/http_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <deque>
#include <optional>

#include "core/log.h"
#include "net/event_loop.h"

namespace continuum {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kStreamWriteTimeout{30};

std::string HttpRequest::header(std::string_view name) const { return find_header(headers, name); }

std::string HttpRequest::query_param(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return value;
  }
  return {};
}

bool HttpRequest::has_query_param(std::string_view name) const {
  for (const auto& entry : query) {
    if (entry.first == name) return true;
  }
  return false;
}

namespace {

// The ResponseWriter of one exchange. The connection coroutine waits on
// `signal_` (a timer that never expires by itself; cancel() wakes the waiter).
class WriterImpl final : public ResponseWriter {
 public:
  explicit WriterImpl(asio::any_io_executor executor) : signal_(executor, asio::steady_timer::time_point::max()) {}

  void send(HttpResponse response) override {
    if (closed_ || response_ || streaming_) return;
    response_ = std::move(response);
    signal_.cancel();
  }
  void start_stream(int status, std::string content_type, HeaderList headers) override {
    if (closed_ || response_ || streaming_) return;
    streaming_ = true;
    stream_status_ = status;
    stream_content_type_ = std::move(content_type);
    stream_headers_ = std::move(headers);
    signal_.cancel();
  }
  void write(std::string chunk) override {
    if (closed_ || !streaming_ || ended_ || chunk.empty()) return;
    queued_bytes_ += chunk.size();
    chunks_.push_back(std::move(chunk));
    signal_.cancel();
  }
  void end() override {
    if (closed_ || ended_) return;
    ended_ = true;
    signal_.cancel();
  }
  bool closed() const override { return closed_; }
  void on_close(std::function<void()> callback) override {
    if (closed_) {
      callback();
      return;
    }
    close_callbacks_.push_back(std::move(callback));
  }
  size_t queued_bytes() const override { return queued_bytes_; }

  void mark_closed() {
    if (closed_) return;
    closed_ = true;
    auto callbacks = std::move(close_callbacks_);
    for (auto& callback : callbacks) callback();
  }
  asio::awaitable<void> wait() {
    signal_.expires_at(asio::steady_timer::time_point::max());
    co_await signal_.async_wait(kTuple);
  }
  std::optional<std::string> pop_chunk() {
    if (chunks_.empty()) return std::nullopt;
    std::string chunk = std::move(chunks_.front());
    chunks_.pop_front();
    queued_bytes_ -= chunk.size();
    return chunk;
  }

  asio::steady_timer signal_;
  std::optional<HttpResponse> response_;
  bool streaming_ = false;
  bool ended_ = false;
  bool closed_ = false;
  int stream_status_ = 200;
  std::string stream_content_type_;
  HeaderList stream_headers_;
  std::deque<std::string> chunks_;
  size_t queued_bytes_ = 0;
  std::vector<std::function<void()>> close_callbacks_;
};

class AsioHttpServer final : public HttpServer {
 public:
  AsioHttpServer(AsioEventLoop& loop, HttpServerOptions options, HttpHandler handler)
      : context_(loop.context()), acceptor_(context_), options_(options), handler_(std::move(handler)) {}

  Status listen(const std::string& host, int port) override {
    boost::system::error_code error;
    auto address = asio::ip::make_address(host, error);
    if (error) return invalid_argument("cannot parse listen address '" + host + "'");
    tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), error);
    if (!error) acceptor_.set_option(asio::socket_base::reuse_address(true), error);
    if (!error) acceptor_.bind(endpoint, error);
    if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
    if (error) return Status(Code::kUnavailable, "cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                                     error.message());
    bound_port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(context_, accept_loop(), asio::detached);
    return Status::ok();
  }
  int bound_port() const override { return bound_port_; }
  void stop_accepting() override {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }
  size_t open_connections() const override { return *connections_; }

 private:
  asio::awaitable<void> accept_loop() {
    while (acceptor_.is_open()) {
      auto [error, socket] = co_await acceptor_.async_accept(kTuple);
      if (error) {
        if (error == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        continue;
      }
      if (static_cast<int>(*connections_) >= options_.connections_max) continue;  // socket closes here
      // Answers go out as soon as they are written (a response's header and body
      // chunks are separate writes; Nagle would hold the later ones for an ACK).
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(context_, serve_connection(std::move(socket), options_, handler_, connections_),
                     [](std::exception_ptr failure) {
                       if (!failure) return;
                       try {
                         std::rethrow_exception(failure);
                       } catch (const std::exception& error) {
                         log::error("connection failed", {{"error", error.what()}});
                       }
                     });
    }
  }

  static asio::awaitable<void> serve_connection(tcp::socket socket, HttpServerOptions options,
                                                HttpHandler handler, std::shared_ptr<size_t> connections);

  asio::io_context& context_;
  tcp::acceptor acceptor_;
  HttpServerOptions options_;
  HttpHandler handler_;
  int bound_port_ = 0;
  std::shared_ptr<size_t> connections_ = std::make_shared<size_t>(0);
};

std::string error_json(const std::string& code, const std::string& message) {
  return "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"" + code + "\",\"message\":\"" + message +
         "\",\"param\":null}}";
}

Status fill_request(const http::request<http::string_body>& raw, HttpRequest& request) {
  request.headers.clear();
  request.query.clear();
  request.method = std::string(raw.method_string());
  request.target = std::string(raw.target());
  auto parsed = boost::urls::parse_origin_form(raw.target());
  if (!parsed) return invalid_argument("malformed request target");
  request.path = std::string(parsed->path());
  for (auto param : parsed->params()) request.query.emplace_back(param.key, param.value);
  for (const auto& field : raw) request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  request.body = raw.body();
  return Status::ok();
}

template <typename Stream>
asio::awaitable<bool> write_simple(Stream& stream, int status, const std::string& content_type, std::string body,
                                   const HeaderList& headers, bool keep_alive, unsigned version) {
  http::response<http::string_body> response{static_cast<http::status>(status), version};
  response.set(http::field::server, "continuum");
  response.set(http::field::content_type, content_type);
  for (const auto& [name, value] : headers) response.set(name, value);
  response.body() = std::move(body);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  auto [error, bytes] = co_await http::async_write(stream, response, kTuple);
  co_return !error;
}

// Streams chunks until the handler ends the stream or the client goes away.
asio::awaitable<void> write_stream(beast::tcp_stream& stream, WriterImpl& writer, unsigned version) {
  http::response<http::empty_body> response{static_cast<http::status>(writer.stream_status_), version};
  response.set(http::field::server, "continuum");
  response.set(http::field::content_type, writer.stream_content_type_);
  response.set(http::field::cache_control, "no-cache");
  for (const auto& [name, value] : writer.stream_headers_) response.set(name, value);
  response.chunked(true);
  response.keep_alive(false);
  http::response_serializer<http::empty_body> serializer{response};
  stream.expires_never();
  auto [header_error, header_bytes] = co_await http::async_write_header(stream, serializer, kTuple);
  if (header_error) co_return;
  for (;;) {
    while (auto chunk = writer.pop_chunk()) {
      // A reader that stops reading is cut off instead of holding the stream forever.
      stream.expires_after(kStreamWriteTimeout);
      auto [error, bytes] = co_await asio::async_write(stream, http::make_chunk(asio::buffer(*chunk)), kTuple);
      if (error) co_return;
    }
    if (writer.ended_) break;
    co_await writer.wait();
  }
  stream.expires_after(kStreamWriteTimeout);
  auto [last_error, last_bytes] = co_await asio::async_write(stream, http::make_chunk_last(), kTuple);
  (void)last_error;
}

asio::awaitable<void> AsioHttpServer::serve_connection(tcp::socket socket, HttpServerOptions options,
                                                       HttpHandler handler, std::shared_ptr<size_t> connections) {
  struct CountGuard {  // keeps the count right however the coroutine ends
    std::shared_ptr<size_t> count;
    explicit CountGuard(std::shared_ptr<size_t> c) : count(std::move(c)) { ++*count; }
    ~CountGuard() { --*count; }
  } guard(connections);
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  std::string remote;
  {
    boost::system::error_code ignored;
    auto endpoint = stream.socket().remote_endpoint(ignored);
    remote = endpoint.address().to_string();
  }
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(static_cast<uint64_t>(options.body_bytes_max));
    parser.header_limit(static_cast<uint32_t>(options.header_bytes_max));
    stream.expires_after(std::chrono::milliseconds(options.idle_timeout_ms));
    auto [head_error, head_bytes] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    std::shared_ptr<const void> head_context;
    if (!head_error && options.check_head) {
      // Before the body is read: a request that will be refused (no API key)
      // must not make the server buffer megabytes first.
      HttpRequest head;
      head.remote_address = remote;
      if (fill_request(parser.get(), head).is_ok()) {
        if (auto refusal = options.check_head(head)) {
          co_await write_simple(stream, refusal->status, refusal->content_type, std::move(refusal->body),
                                refusal->headers, false, parser.get().version());
          break;
        }
        head_context = std::move(head.context);
      }
    }
    auto [read_error, read_bytes] = head_error ? std::make_tuple(head_error, head_bytes)
                                               : co_await http::async_read(stream, buffer, parser, kTuple);
    if (read_error == http::error::body_limit) {
      co_await write_simple(stream, 413, "application/json",
                            error_json("payload_too_large", "request body exceeds " +
                                                                std::to_string(options.body_bytes_max) + " bytes"),
                            {}, false, 11);
      break;
    }
    if (read_error) {
      if (read_error != http::error::end_of_stream && read_error != beast::error::timeout &&
          read_error != asio::error::connection_reset && read_error != asio::error::eof && read_bytes > 0) {
        co_await write_simple(stream, 400, "application/json",
                              error_json("bad_request", "malformed HTTP request"), {}, false, 11);
      }
      break;
    }
    auto raw = parser.release();
    bool keep_alive = raw.keep_alive();
    unsigned version = raw.version();
    HttpRequest request;
    request.remote_address = remote;
    auto writer = std::make_shared<WriterImpl>(stream.get_executor());
    Status filled = fill_request(raw, request);
    request.context = std::move(head_context);
    if (!filled.is_ok()) {
      writer->send(HttpResponse{400, "application/json", error_json("bad_request", filled.message()), {}});
    } else {
      handler(request, writer);
    }
    while (!writer->response_ && !writer->streaming_) co_await writer->wait();
    bool ok = true;
    if (writer->response_) {
      HttpResponse& response = *writer->response_;
      stream.expires_after(std::chrono::milliseconds(options.request_timeout_ms));
      ok = co_await write_simple(stream, response.status, response.content_type, std::move(response.body),
                                 response.headers, keep_alive, version);
      writer->mark_closed();
      if (ok && keep_alive) continue;
      break;
    }
    co_await write_stream(stream, *writer, version);
    writer->mark_closed();
    break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

std::unique_ptr<HttpServer> make_http_server(AsioEventLoop& loop, HttpServerOptions options, HttpHandler handler) {
  return std::make_unique<AsioHttpServer>(loop, options, std::move(handler));
}

}  // namespace continuum
