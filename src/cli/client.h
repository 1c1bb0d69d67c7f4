// A blocking HTTP client for the CLI: each call runs a private event loop
// until the exchange is over.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "net/http_client.h"

namespace continuum::cli {

struct ClientOptions {
  std::string server_url = "http://127.0.0.1:8080";
  std::string api_key;
  int64_t timeout_ms = 600'000;
};

class ApiClient {
 public:
  explicit ApiClient(ClientOptions options) : options_(std::move(options)) {}
  // Sends a JSON request; a non-2xx answer becomes a Status carrying the server's message.
  Result<json::value> call(const std::string& method, const std::string& path, const std::string& body = "");
  // Streams a GET (SSE); `on_chunk` gets raw body bytes as they arrive.
  Status stream(const std::string& path, const std::function<void(std::string_view)>& on_chunk);

 private:
  Result<HttpClientResponse> send(HttpClientRequest request, std::function<void(std::string_view)> on_body);
  ClientOptions options_;
};

}  // namespace continuum::cli
