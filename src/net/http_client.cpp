#include "net/http_client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include "net/event_loop.h"

namespace continuum {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string HttpClientResponse::header(std::string_view name) const { return find_header(headers, name); }

namespace {

struct Target {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path_and_query;
};

Result<Target> parse_target(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return invalid_argument("malformed URL '" + url + "'");
  Target target;
  std::string scheme(parsed->scheme());
  if (scheme == "https") {
    target.tls = true;
  } else if (scheme != "http") {
    return invalid_argument("unsupported URL scheme '" + scheme + "'");
  }
  target.host = std::string(parsed->host_address());
  if (target.host.empty()) return invalid_argument("URL without host: '" + url + "'");
  if (target.host.size() > 2 && target.host.front() == '[') target.host = target.host.substr(1, target.host.size() - 2);
  target.port = parsed->has_port() ? std::string(parsed->port()) : (target.tls ? "443" : "80");
  target.path_and_query = std::string(parsed->encoded_path());
  if (target.path_and_query.empty()) target.path_and_query = "/";
  if (parsed->has_query()) target.path_and_query += "?" + std::string(parsed->encoded_query());
  return target;
}

// Loopback, private (RFC 1918, ULA), link-local, CGNAT, unspecified and multicast.
bool is_private_address(const asio::ip::address& address) {
  if (address.is_v4()) {
    auto bytes = address.to_v4().to_bytes();
    return bytes[0] == 10 || bytes[0] == 127 || bytes[0] == 0 || (bytes[0] == 169 && bytes[1] == 254) ||
           (bytes[0] == 172 && (bytes[1] & 0xF0) == 16) || (bytes[0] == 192 && bytes[1] == 168) ||
           (bytes[0] == 100 && (bytes[1] & 0xC0) == 64) || bytes[0] >= 224;
  }
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return is_private_address(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
  auto bytes = v6.to_bytes();
  return v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || v6.is_multicast() ||
         (bytes[0] & 0xFE) == 0xFC;
}

Status transport_error(const boost::system::error_code& error, const char* stage) {
  if (error == http::error::body_limit) {
    return Status(Code::kPayloadTooLarge, std::string("response body over the size limit during ") + stage);
  }
  if (error == asio::error::operation_aborted || error == beast::error::timeout) {
    return Status(Code::kDeadlineExceeded, std::string("timed out during ") + stage);
  }
  return Status(Code::kUnavailable, std::string(stage) + " failed: " + error.message());
}

template <typename Stream>
asio::awaitable<Result<HttpClientResponse>> exchange(Stream& stream, const Target& target,
                                                     const HttpClientRequest& request,
                                                     const std::function<void(std::string_view)>& on_body) {
  http::request<http::string_body> outgoing{http::string_to_verb(request.method), target.path_and_query, 11};
  outgoing.set(http::field::host, target.host);
  outgoing.set(http::field::user_agent, "continuum");
  for (const auto& [name, value] : request.headers) outgoing.set(name, value);
  outgoing.body() = request.body;
  outgoing.keep_alive(false);
  outgoing.prepare_payload();
  auto [write_error, written] = co_await http::async_write(stream, outgoing, kTuple);
  if (write_error) co_return transport_error(write_error, "send");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(static_cast<uint64_t>(request.response_bytes_max));
  auto [header_error, header_bytes] = co_await http::async_read_header(stream, buffer, parser, kTuple);
  if (header_error) co_return transport_error(header_error, "receive");
  size_t forwarded = 0;
  while (!parser.is_done()) {
    auto [read_error, read_bytes] = co_await http::async_read_some(stream, buffer, parser, kTuple);
    const std::string& body = parser.get().body();
    if (on_body && body.size() > forwarded) {
      on_body(std::string_view(body).substr(forwarded));
      forwarded = body.size();
    }
    if (read_error == http::error::end_of_stream || read_error == asio::error::eof) break;
    if (read_error) co_return transport_error(read_error, "receive");
  }
  HttpClientResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  response.body = std::move(parser.get().body());
  co_return response;
}

class AsioHttpClient final : public HttpClient {
 public:
  AsioHttpClient(AsioEventLoop& loop, bool verify_tls) : context_(loop.context()), tls_(ssl::context::tls_client) {
    tls_.set_default_verify_paths();
    tls_.set_verify_mode(verify_tls ? ssl::verify_peer : ssl::verify_none);
  }

  void send(HttpClientRequest request, std::function<void(std::string_view)> on_body,
            std::function<void(Result<HttpClientResponse>)> done) override {
    asio::co_spawn(context_, perform(context_, tls_, std::move(request), std::move(on_body), std::move(done)),
                   asio::detached);
  }

 private:
  static asio::awaitable<void> perform(asio::io_context& context, ssl::context& tls, HttpClientRequest request,
                                       std::function<void(std::string_view)> on_body,
                                       std::function<void(Result<HttpClientResponse>)> done) {
    // `done` must run exactly once, even if something below throws (the
    // coroutine is detached, so an escaping exception would be lost).
    std::optional<Result<HttpClientResponse>> result;
    try {
      result.emplace(co_await attempt(context, tls, request, on_body));
    } catch (const std::exception& error) {
      result.emplace(internal_error(std::string("HTTP client failure: ") + error.what()));
    }
    if (request.abort) {
      request.abort->set_close(nullptr);  // the stream it closes is gone
      if (request.abort->aborted()) result.emplace(Status(Code::kCancelled, "the exchange was aborted"));
    }
    done(std::move(*result));
  }

  static asio::awaitable<Result<tcp::resolver::results_type>> resolve(asio::io_context& context, const Target& target,
                                                                     int64_t timeout_ms) {
    // The timer's handler may run after this frame is gone, so it shares ownership of the resolver.
    auto resolver = std::make_shared<tcp::resolver>(context);
    asio::steady_timer timer(context, std::chrono::milliseconds(timeout_ms));
    timer.async_wait([resolver](const boost::system::error_code& error) {
      if (!error) resolver->cancel();
    });
    auto [error, results] = co_await resolver->async_resolve(target.host, target.port, kTuple);
    timer.cancel();
    if (error) co_return transport_error(error, "name resolution");
    co_return results;
  }

  static asio::awaitable<Result<HttpClientResponse>> attempt(asio::io_context& context, ssl::context& tls,
                                                             const HttpClientRequest& request,
                                                             const std::function<void(std::string_view)>& on_body) {
    auto target = parse_target(request.url);
    if (!target.is_ok()) co_return target.status();
    auto resolved = co_await resolve(context, *target, request.timeout_ms);
    if (!resolved.is_ok()) co_return resolved.status();
    std::vector<tcp::endpoint> endpoints;
    for (const auto& entry : *resolved) {
      if (request.deny_private_addresses && is_private_address(entry.endpoint().address())) continue;
      endpoints.push_back(entry.endpoint());
    }
    if (endpoints.empty()) {
      co_return Status(Code::kPermissionDenied, "refusing to call a private or loopback address: " + target->host);
    }
    beast::tcp_stream stream(context);
    if (request.abort) {
      if (request.abort->aborted()) co_return Status(Code::kCancelled, "the exchange was aborted");
      request.abort->set_close([&stream] { stream.close(); });
    }
    stream.expires_after(std::chrono::milliseconds(request.timeout_ms));
    auto [connect_error, endpoint] = co_await stream.async_connect(endpoints, kTuple);
    if (connect_error) co_return transport_error(connect_error, "connect");
    boost::system::error_code ignored;
    stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);  // requests go out whole at once
    if (!target->tls) co_return co_await exchange(stream, *target, request, on_body);

    beast::ssl_stream<beast::tcp_stream> secure(std::move(stream), tls);
    if (request.abort) request.abort->set_close([&secure] { beast::get_lowest_layer(secure).close(); });
    if (!SSL_set_tlsext_host_name(secure.native_handle(), target->host.c_str())) {
      co_return Status(Code::kUnavailable, "cannot set TLS server name");
    }
    secure.set_verify_callback(ssl::host_name_verification(target->host));
    auto [handshake_error] = co_await secure.async_handshake(ssl::stream_base::client, kTuple);
    if (handshake_error) co_return transport_error(handshake_error, "TLS handshake");
    co_return co_await exchange(secure, *target, request, on_body);
  }

  asio::io_context& context_;
  ssl::context tls_;
};

}  // namespace

std::unique_ptr<HttpClient> make_http_client(AsioEventLoop& loop, bool verify_tls) {
  return std::make_unique<AsioHttpClient>(loop, verify_tls);
}

}  // namespace continuum
