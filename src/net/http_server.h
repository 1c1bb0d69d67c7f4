// An asynchronous HTTP/1.1 server (Boost.Beast underneath, hidden here):
// one coroutine per connection, keep-alive, a body size limit, and responses
// that may be sent later or streamed (SSE). No thread per connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "net/headers.h"

namespace continuum {

class AsioEventLoop;


struct HttpRequest {
  std::string method;
  std::string target;      // as received: path and query
  std::string path;        // percent-decoded path
  std::vector<std::pair<std::string, std::string>> query;  // decoded query parameters
  HeaderList headers;
  std::string body;
  std::string remote_address;
  // Set by HttpServerOptions::check_head for the handler (the API puts the
  // authenticated principal here); opaque to the server.
  std::shared_ptr<const void> context;

  std::string header(std::string_view name) const;        // case-insensitive; "" if absent
  std::string query_param(std::string_view name) const;   // "" if absent
  bool has_query_param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  HeaderList headers;
};

// The handle a handler answers through. Used only on the loop thread. Exactly
// one of send() or start_stream() is called; after start_stream(), write()
// any number of times and end() once. Calls after the client went away are
// ignored; closed() tells whether it did.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  virtual void send(HttpResponse response) = 0;
  virtual void start_stream(int status, std::string content_type, HeaderList headers) = 0;
  virtual void write(std::string chunk) = 0;
  virtual void end() = 0;
  virtual bool closed() const = 0;
  // Runs once when the connection closes (client gone or response finished).
  virtual void on_close(std::function<void()> callback) = 0;
  // Bytes queued but not yet written (for bounding slow SSE readers).
  virtual size_t queued_bytes() const = 0;
};

using HttpHandler = std::function<void(HttpRequest&, std::shared_ptr<ResponseWriter>)>;

struct HttpServerOptions {
  int64_t body_bytes_max = 4 * 1024 * 1024;
  int64_t header_bytes_max = 64 * 1024;
  int64_t idle_timeout_ms = 120'000;   // keep-alive connections idle longer are closed
  int64_t request_timeout_ms = 60'000; // time to receive one request
  int connections_max = 20'000;
  // Called with the request head (no body yet); a response returned here is
  // sent instead of reading the body, and the connection is closed. What it
  // leaves in head.context reaches the handler in request.context.
  std::function<std::optional<HttpResponse>(HttpRequest& head)> check_head;
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  // Binds and starts accepting. `port` 0 picks a free port (see bound_port()).
  virtual Status listen(const std::string& host, int port) = 0;
  virtual int bound_port() const = 0;
  // Stops accepting new connections; open ones finish their current exchange.
  virtual void stop_accepting() = 0;
  virtual size_t open_connections() const = 0;
};

std::unique_ptr<HttpServer> make_http_server(AsioEventLoop& loop, HttpServerOptions options, HttpHandler handler);

}  // namespace continuum
