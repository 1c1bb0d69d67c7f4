#include "cli/client.h"

#include "net/event_loop.h"

namespace continuum::cli {

Result<HttpClientResponse> ApiClient::send(HttpClientRequest request, std::function<void(std::string_view)> on_body) {
  AsioEventLoop loop;
  auto client = make_http_client(loop);
  std::optional<Result<HttpClientResponse>> outcome;
  request.url = options_.server_url + request.url;
  request.timeout_ms = options_.timeout_ms;
  request.headers.emplace_back("Authorization", "Bearer " + options_.api_key);
  client->send(std::move(request), std::move(on_body), [&](Result<HttpClientResponse> result) {
    outcome = std::move(result);
    loop.stop();
  });
  loop.run();
  if (!outcome) return internal_error("no response");
  return std::move(*outcome);
}

Result<json::value> ApiClient::call(const std::string& method, const std::string& path, const std::string& body) {
  HttpClientRequest request;
  request.method = method;
  request.url = path;
  request.body = body;
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  ASSIGN_OR_RETURN(HttpClientResponse response, send(std::move(request), nullptr));
  auto parsed = parse_json(response.body);
  if (response.status >= 200 && response.status < 300) {
    if (!parsed.is_ok()) return internal_error("the server answered with invalid JSON");
    return std::move(*parsed);
  }
  std::string message = "HTTP " + std::to_string(response.status);
  if (parsed.is_ok() && parsed->is_object()) {
    if (const json::value* error = parsed->as_object().if_contains("error"); error && error->is_object()) {
      if (const json::value* text = error->as_object().if_contains("message"); text && text->is_string()) {
        message += ": " + std::string(text->as_string());
      }
    }
  }
  return Status(Code::kInvalidArgument, message);
}

Status ApiClient::stream(const std::string& path, const std::function<void(std::string_view)>& on_chunk) {
  HttpClientRequest request;
  request.method = "GET";
  request.url = path;
  request.headers.emplace_back("Accept", "text/event-stream");
  ASSIGN_OR_RETURN(HttpClientResponse response, send(std::move(request), on_chunk));
  if (response.status != 200) return Status(Code::kInvalidArgument, "HTTP " + std::to_string(response.status));
  return Status::ok();
}

}  // namespace continuum::cli
