// An asynchronous HTTP/1.1 client (Boost.Beast underneath, hidden here).
// TLS peers are verified against the system trust store by default.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "net/headers.h"

namespace continuum {

class AsioEventLoop;

// Lets the sender end an exchange early (a stream it no longer needs).
// abort() closes the connection; the exchange's `done` then gets kCancelled.
// Loop thread only.
class HttpAbort {
 public:
  void abort() {
    aborted_ = true;
    if (close_) close_();
  }
  bool aborted() const { return aborted_; }
  // For the client: what abort() does while the exchange is connected.
  void set_close(std::function<void()> close) { close_ = std::move(close); }

 private:
  bool aborted_ = false;
  std::function<void()> close_;
};

struct HttpClientRequest {
  std::string method = "POST";
  std::string url;
  HeaderList headers;
  std::string body;
  int64_t timeout_ms = 30'000;           // whole exchange
  int64_t response_bytes_max = 64 * 1024 * 1024;
  bool deny_private_addresses = false;   // refuse loopback/private/link-local targets
  std::shared_ptr<HttpAbort> abort;      // optional
};

struct HttpClientResponse {
  int status = 0;
  HeaderList headers;
  std::string body;
  std::string header(std::string_view name) const;  // case-insensitive; "" if absent
};

// Contract: send() returns at once. `on_body` (optional) receives body bytes
// as they arrive (after de-chunking); `done` runs exactly once. Both run on the
// loop thread. Errors: kDeadlineExceeded (timeout), kUnavailable (connect,
// DNS, reset), kPermissionDenied (private address refused), kInvalidArgument (bad URL).
class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual void send(HttpClientRequest request, std::function<void(std::string_view)> on_body,
                    std::function<void(Result<HttpClientResponse>)> done) = 0;
};

std::unique_ptr<HttpClient> make_http_client(AsioEventLoop& loop, bool verify_tls = true);

}  // namespace continuum
