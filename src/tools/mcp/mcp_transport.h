// How MCP messages travel between the client and one server. Two
// implementations: a supervised child process speaking newline-delimited JSON
// on stdin/stdout (stdio), and Streamable HTTP (POST per message; replies as
// JSON or as an SSE stream). Asio and Beast stay in the .cpp files.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "net/headers.h"

namespace continuum {

class AsioEventLoop;
class EventLoop;
class HttpClient;

// One message to send, with what Streamable HTTP needs to know about it.
struct McpOutgoing {
  std::string text;                   // one JSON-RPC message
  std::optional<int64_t> request_id;  // set for requests: a failed POST fails this request
  std::string method;                 // for the Mcp-Method header (2026-07-28)
  std::string name;                   // for the Mcp-Name header: a tool's name on tools/call
  int64_t timeout_ms = 30'000;        // how long the exchange may take at most (HTTP)
  // Runs once the message was handed over: stdio, when written (the pipe keeps
  // the order); HTTP, when its POST was answered or failed (a later request,
  // on another connection, could otherwise overtake it). Optional.
  std::function<void()> delivered;
};

// Contract: every method is called on the loop thread, and every handler runs
// on it. After close(), no handler runs again.
class McpTransport {
 public:
  struct Handlers {
    std::function<void(std::string_view text)> on_message;  // one JSON-RPC message (or batch) from the server
    // A request could not be delivered or answered at the transport level
    // (HTTP status, connection refused, timeout). Its id was in McpOutgoing.
    std::function<void(int64_t request_id, Status status)> on_request_failed;
    // The transport is gone (the process exited). Pending requests are lost.
    std::function<void(Status status)> on_closed;
  };
  virtual ~McpTransport() = default;
  virtual Status start(Handlers handlers) = 0;
  virtual void send(McpOutgoing message) = 0;
  // 2025-11-25 Streamable HTTP: opens the GET stream on which the server sends
  // what it sends unasked (tools/list_changed). No-op elsewhere.
  virtual void open_server_stream() {}
  // Stops waiting for a request's reply (HTTP: drops its connection, which a
  // 2026-07-28 server takes as the cancellation). No handler runs for it.
  virtual void cancel_request(int64_t request_id) { (void)request_id; }
  // The negotiated revision, sent as MCP-Protocol-Version on later HTTP requests.
  virtual void set_protocol_version(std::string version) = 0;
  virtual void close() = 0;
  // stdio: the child's pid (0 if none); HTTP: 0.
  virtual int pid() const { return 0; }
};

struct McpStdioOptions {
  std::string command;                       // a path, or a name looked up in PATH (no shell)
  std::vector<std::string> args;
  std::map<std::string, std::string> env;    // added to a minimal inherited environment
  std::string server_name;                   // for the logs of its stderr
  int64_t stop_grace_ms = 2000;              // SIGTERM, then SIGKILL after this
};

// Supplies an HTTP MCP server's credential and renews it when the server
// refuses it (OAuth: tools/mcp/oauth_client.h). Loop thread only.
class McpHttpAuth {
 public:
  virtual ~McpHttpAuth() = default;
  // The Authorization header's value for the next request ("" = none yet).
  virtual std::string authorization() = 0;
  // The server answered `status` (401/403) with `www_authenticate` to a
  // request that carried `sent`. `done(ok)`: a new credential is ready, send
  // the request again; an error: the request fails with it.
  virtual void refused(int status, const std::string& www_authenticate, const std::string& sent,
                       std::function<void(Status)> done) = 0;
};

struct McpHttpOptions {
  std::string url;
  HeaderList headers;                        // e.g. Authorization (from the vault)
  std::shared_ptr<McpHttpAuth> auth;         // OAuth; null = the headers are all
  bool deny_private_addresses = true;
  int64_t response_bytes_max = 16 * 1024 * 1024;
  std::string server_name;
};

std::unique_ptr<McpTransport> make_mcp_stdio_transport(AsioEventLoop& loop, McpStdioOptions options);
std::unique_ptr<McpTransport> make_mcp_http_transport(HttpClient& http, EventLoop& loop, McpHttpOptions options);

}  // namespace continuum
