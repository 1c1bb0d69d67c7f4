// The MCP servers of every agent, as live connections: started on demand,
// shared by the runs of one tenant that configure the same server, restarted
// with backoff after a crash, bounded in number (stdio), stopped when idle
// and on shutdown.
//
// Contract: every method runs on the loop thread; callbacks run later on it.
// The hub outlives every call it was given (the server app owns it).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/agent_spec.h"
#include "core/clock.h"
#include "tools/mcp/mcp_connection.h"
#include "tools/mcp/oauth_client.h"
#include "tools/tool_runner.h"

namespace continuum {

class AsioEventLoop;
class HttpClient;

struct McpHubOptions {
  // What stdio servers may run; empty = no stdio server may start. Each entry
  // is a program (as the agent writes it) optionally followed by the
  // arguments a server's own must begin with: "node /opt/mcp/fs/index.js"
  // allows that script only, "node" any script (and `node -e ...`: any code).
  // "*" allows anything.
  std::vector<std::string> stdio_commands;
  int stdio_processes_max = 32;
  int64_t idle_stop_ms = 600'000;          // a server unused this long is stopped (http: disconnected)
  int64_t restart_backoff_initial_ms = 250;
  int64_t restart_backoff_max_ms = 30'000;
  int64_t tools_cache_ttl_ms = 300'000;
  bool allow_private_addresses = false;    // http servers on loopback/private networks
  SecretReader secrets;                    // http servers' `auth`, and OAuth state
  SecretWriter write_secret;               // OAuth state (registrations, tokens); null = OAuth unavailable
  Random* random = nullptr;                // OAuth state, PKCE verifiers, assertion ids
};

// Whether an mcp_stdio_commands entry allows `mcp`'s command and arguments.
bool stdio_command_allowed(const std::vector<std::string>& allowed_commands, const McpServerSpec& mcp);

class McpHub {
 public:
  McpHub(AsioEventLoop& loop, const Clock& clock, HttpClient& http, McpHubOptions options);
  ~McpHub();

  // Every tool `server` offers (all pages; cached per connection).
  void list_tools(const std::string& tenant, const ToolSpec& server, std::function<void(Result<McpToolList>)> done);
  // Calls `tool`; `call_key` (the idempotency key) names the call for cancel().
  // A server in its restart backoff is waited for. `server` must stay alive
  // until `done` runs (the caller holds its agent).
  void call(const std::string& tenant, const ToolSpec& server, McpCallOptions call,
            std::function<void(Result<json::value>)> done);
  void cancel(const std::string& call_key, const std::string& reason);
  // The OAuth client of an http server configured with `oauth` (one per
  // tenant, server name and configuration; kept while the hub lives).
  Result<std::shared_ptr<McpOAuth>> oauth_for(const std::string& tenant, const ToolSpec& server);
  // Drops the connection to `server` (its cached listing too): the next use
  // connects again, e.g. with credentials just forgotten.
  void disconnect(const std::string& tenant, const ToolSpec& server);
  // Stops every server (stdio: stdin closed, then SIGTERM, then SIGKILL).
  void shutdown();
  // Live stdio server processes (for tests and metrics).
  int stdio_processes() const;

 private:
  struct Entry {
    std::shared_ptr<McpConnection> connection;
    bool stdio = false;
    int64_t last_used_ms = 0;
    int failures = 0;            // consecutive losses, for the restart backoff
    int64_t restart_at_ms = 0;   // no new connection before this
    std::string tenant;
    std::string server_name;
  };
  struct InFlight {
    std::weak_ptr<McpConnection> connection;
    int64_t handle = 0;
  };

  // How long until a lost server may be started again (0 = now).
  int64_t restart_wait_ms(const std::string& tenant, const ToolSpec& server) const;
  Result<std::shared_ptr<McpConnection>> connection_for(const std::string& tenant, const ToolSpec& server);
  Result<std::unique_ptr<McpTransport>> make_transport(const std::string& tenant, const ToolSpec& server);
  Status make_room_for_stdio();
  void sweep_idle();
  int64_t sweep_interval_ms() const;

  AsioEventLoop& loop_;
  const Clock& clock_;
  HttpClient& http_;
  McpHubOptions options_;
  std::map<std::string, Entry> entries_;        // by tenant + server configuration
  std::map<std::string, InFlight> in_flight_;   // by call key
  std::map<std::string, std::shared_ptr<McpOAuth>> oauth_;  // by tenant + server configuration
  std::set<std::string> deferred_;              // call keys waiting out a restart backoff
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for the idle sweep timer
  bool stopped_ = false;
};

}  // namespace continuum
