#include "tools/mcp/mcp_hub.h"

#include <algorithm>
#include <sstream>

#include "core/log.h"
#include "crypto/hash.h"
#include "net/event_loop.h"

namespace continuum {

namespace {

constexpr int64_t kIdleSweepMaxMs = 30'000;

// Everything that makes two configurations the same server.
std::string entry_key(const std::string& tenant, const ToolSpec& server) {
  const McpServerSpec& mcp = *server.mcp;
  json::object identity{{"transport", mcp.transport}, {"command", mcp.command}, {"url", mcp.url},
                        {"protocol", mcp.protocol_version}, {"name", server.name},
                        {"elicitation", mcp.elicitation}};
  json::array args;
  for (const auto& arg : mcp.args) args.emplace_back(arg);
  identity["args"] = std::move(args);
  json::object env, headers;
  for (const auto& [name, value] : mcp.env) env[name] = value;
  for (const auto& [name, value] : mcp.headers) headers[name] = value;
  identity["env"] = std::move(env);
  identity["headers"] = std::move(headers);
  if (server.auth) identity["auth"] = server.auth->secret + "\n" + server.auth->header + "\n" + server.auth->prefix;
  if (mcp.oauth) {
    const McpOAuthSpec& oauth = *mcp.oauth;
    identity["oauth"] = json::array{json::value(oauth.grant), json::value(oauth.client_id), json::value(oauth.client_secret),
                                    json::value(oauth.private_key), json::value(oauth.signing_algorithm),
                                    json::value(oauth.client_metadata_url), json::value(oauth.scope)};
  }
  return tenant + "\n" + sha256_hex(to_canonical_json(identity));
}

}  // namespace

McpHub::McpHub(AsioEventLoop& loop, const Clock& clock, HttpClient& http, McpHubOptions options)
    : loop_(loop), clock_(clock), http_(http), options_(std::move(options)) {
  std::weak_ptr<bool> alive = alive_;
  loop_.post_after(sweep_interval_ms(), [this, alive] {
    if (alive.lock()) sweep_idle();
  });
}

int64_t McpHub::sweep_interval_ms() const {
  return std::clamp<int64_t>(options_.idle_stop_ms / 2, 100, kIdleSweepMaxMs);
}

McpHub::~McpHub() { shutdown(); }

bool stdio_command_allowed(const std::vector<std::string>& allowed_commands, const McpServerSpec& mcp) {
  for (const std::string& entry : allowed_commands) {
    if (entry == "*") return true;
    std::vector<std::string> words;
    std::istringstream split(entry);
    for (std::string word; split >> word;) words.push_back(word);
    if (words.empty() || words[0] != mcp.command || mcp.args.size() + 1 < words.size()) continue;
    if (std::equal(words.begin() + 1, words.end(), mcp.args.begin())) return true;
  }
  return false;
}

Result<std::unique_ptr<McpTransport>> McpHub::make_transport(const std::string& tenant, const ToolSpec& server) {
  const McpServerSpec& mcp = *server.mcp;
  if (mcp.transport == "stdio") {
    if (!stdio_command_allowed(options_.stdio_commands, mcp)) {
      return Status(Code::kPermissionDenied, "the server's configuration does not allow the MCP command '" + mcp.command +
                               "' (mcp_stdio_commands)");
    }
    RETURN_IF_ERROR(make_room_for_stdio());
    McpStdioOptions stdio{mcp.command, mcp.args, mcp.env, server.name};
    return make_mcp_stdio_transport(loop_, std::move(stdio));
  }
  McpHttpOptions http;
  http.url = mcp.url;
  for (const auto& [name, value] : mcp.headers) http.headers.emplace_back(name, value);
  if (server.auth) {
    auto secret = options_.secrets ? options_.secrets(tenant, server.auth->secret)
                                   : Result<std::string>(not_found("no vault"));
    if (!secret.is_ok()) {
      return Status(secret.status().code() == Code::kUnavailable ? Code::kUnavailable : Code::kPermissionDenied,
                    "the MCP server's credential '" + server.auth->secret + "' is not in the vault");
    }
    http.headers.emplace_back(server.auth->header, server.auth->prefix + *secret);
  }
  if (mcp.oauth) {
    ASSIGN_OR_RETURN(http.auth, oauth_for(tenant, server));
  }
  http.deny_private_addresses = !options_.allow_private_addresses;
  http.server_name = server.name;
  return make_mcp_http_transport(http_, loop_, std::move(http));
}

Result<std::shared_ptr<McpOAuth>> McpHub::oauth_for(const std::string& tenant, const ToolSpec& server) {
  if (!server.mcp || !server.mcp->oauth) return invalid_argument("MCP server '" + server.name + "' has no oauth");
  if (!options_.secrets || !options_.write_secret || options_.random == nullptr) {
    return Status(Code::kPermissionDenied, "OAuth for MCP servers needs the vault");
  }
  std::string key = entry_key(tenant, server);
  auto& oauth = oauth_[key];
  if (!oauth) {
    McpOAuthHost host{&http_, &loop_, &clock_, options_.random, !options_.allow_private_addresses,
                      options_.secrets, options_.write_secret};
    oauth = std::make_shared<McpOAuth>(std::move(host), tenant, server.name, server.mcp->url, *server.mcp->oauth);
  }
  return oauth;
}

// Stops the least recently used idle stdio server if the bound is reached.
Status McpHub::make_room_for_stdio() {
  if (stdio_processes() < options_.stdio_processes_max) return Status::ok();
  Entry* oldest = nullptr;
  for (auto& [key, entry] : entries_) {
    if (!entry.stdio || !entry.connection || !entry.connection->usable()) continue;
    if (entry.connection->requests_in_flight() > 0) continue;
    if (oldest == nullptr || entry.last_used_ms < oldest->last_used_ms) oldest = &entry;
  }
  if (oldest == nullptr) {
    return unavailable("all " + std::to_string(options_.stdio_processes_max) + " MCP server processes are busy");
  }
  log::info("stopping idle mcp server for room", {{"server", oldest->server_name}});
  oldest->connection->close();
  oldest->connection.reset();
  return Status::ok();
}

Result<std::shared_ptr<McpConnection>> McpHub::connection_for(const std::string& tenant, const ToolSpec& server) {
  if (stopped_) return unavailable("the server is shutting down");
  std::string key = entry_key(tenant, server);
  Entry& entry = entries_[key];
  entry.tenant = tenant;
  entry.server_name = server.name;
  entry.last_used_ms = clock_.now_ms();
  if (entry.connection && entry.connection->usable()) return entry.connection;
  int64_t now = clock_.now_ms();
  if (now < entry.restart_at_ms) {
    return unavailable("MCP server '" + server.name + "' is restarting (in " +
                       std::to_string(entry.restart_at_ms - now) + " ms)");
  }
  ASSIGN_OR_RETURN(auto transport, make_transport(tenant, server));
  McpConnectionOptions options;
  options.server_name = server.name;
  options.protocol = server.mcp->protocol_version;
  options.elicitation = server.mcp->elicitation;
  options.connect_timeout_ms = server.mcp->connect_timeout_ms;
  options.tools_cache_ttl_ms = options_.tools_cache_ttl_ms;
  auto connection = std::make_shared<McpConnection>(loop_, clock_, std::move(transport), options);
  std::weak_ptr<McpConnection> weak = connection;
  std::weak_ptr<bool> alive = alive_;
  connection->on_lost([this, alive, key, weak](Status status) {
    if (!alive.lock()) return;
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.connection != weak.lock()) return;
    Entry& lost = it->second;
    if (is_authorization_required(status)) {  // not a crash: it waits for a person, the next use tries again
      lost.connection.reset();
      return;
    }
    lost.failures += 1;
    int64_t backoff = std::min(options_.restart_backoff_max_ms,
                               options_.restart_backoff_initial_ms << std::min(lost.failures - 1, 16));
    lost.restart_at_ms = clock_.now_ms() + backoff;
    lost.connection.reset();
    log::warn("mcp server lost", {{"server", lost.server_name}, {"error", status.message()},
                                  {"restart_after_ms", std::to_string(backoff)}});
  });
  entry.stdio = server.mcp->transport == "stdio";
  entry.connection = connection;
  connection->start();
  return connection;
}

int64_t McpHub::restart_wait_ms(const std::string& tenant, const ToolSpec& server) const {
  auto it = entries_.find(entry_key(tenant, server));
  if (it == entries_.end() || (it->second.connection && it->second.connection->usable())) return 0;
  return std::max<int64_t>(0, it->second.restart_at_ms - clock_.now_ms());
}

void McpHub::list_tools(const std::string& tenant, const ToolSpec& server,
                        std::function<void(Result<McpToolList>)> done) {
  if (int64_t wait_ms = restart_wait_ms(tenant, server); wait_ms > 0) {
    // A crashed server is started again once its backoff is over: wait for it.
    std::weak_ptr<bool> alive = alive_;
    loop_.post_after(wait_ms, [this, alive, tenant, &server, done = std::move(done)]() mutable {
      if (alive.lock()) list_tools(tenant, server, std::move(done));
    });
    return;
  }
  auto connection = connection_for(tenant, server);
  if (!connection.is_ok()) {
    loop_.post([done = std::move(done), status = connection.status()] { done(status); });
    return;
  }
  (*connection)->list_tools(std::move(done));
}

void McpHub::call(const std::string& tenant, const ToolSpec& server, McpCallOptions call,
                  std::function<void(Result<json::value>)> done) {
  if (int64_t wait_ms = restart_wait_ms(tenant, server); wait_ms > 0) {
    std::weak_ptr<bool> alive = alive_;
    std::string key = call.idempotency_key;
    deferred_.insert(key);
    loop_.post_after(wait_ms, [this, alive, key, tenant, &server, call = std::move(call),
                               done = std::move(done)]() mutable {
      if (!alive.lock()) return;
      if (deferred_.erase(key) == 0) return done(Status(Code::kCancelled, "the call was cancelled"));
      this->call(tenant, server, std::move(call), std::move(done));
    });
    return;
  }
  auto connection = connection_for(tenant, server);
  if (!connection.is_ok()) {
    loop_.post([done = std::move(done), status = connection.status()] { done(status); });
    return;
  }
  std::string key = call.idempotency_key;
  std::string entry = entry_key(tenant, server);
  std::weak_ptr<bool> alive = alive_;
  int64_t handle = (*connection)->call_tool(
      std::move(call), [this, alive, key, entry, done = std::move(done)](Result<json::value> result) {
        if (alive.lock()) {
          in_flight_.erase(key);
          auto it = entries_.find(entry);
          if (it != entries_.end()) {
            it->second.last_used_ms = clock_.now_ms();
            if (result.is_ok()) it->second.failures = 0;  // it works again: the next crash starts the backoff anew
          }
        }
        done(std::move(result));
      });
  in_flight_[key] = InFlight{*connection, handle};
}

void McpHub::cancel(const std::string& call_key, const std::string& reason) {
  deferred_.erase(call_key);  // a call waiting out a restart backoff is never sent
  auto it = in_flight_.find(call_key);
  if (it == in_flight_.end()) return;
  auto connection = it->second.connection.lock();
  int64_t handle = it->second.handle;
  in_flight_.erase(it);
  if (connection) connection->cancel(handle, reason);
}

void McpHub::disconnect(const std::string& tenant, const ToolSpec& server) {
  auto it = entries_.find(entry_key(tenant, server));
  if (it == entries_.end() || !it->second.connection) return;
  it->second.connection->close();
  it->second.connection.reset();
}

int McpHub::stdio_processes() const {
  int count = 0;
  for (const auto& [key, entry] : entries_) {
    if (entry.stdio && entry.connection && entry.connection->usable()) ++count;
  }
  return count;
}

void McpHub::sweep_idle() {
  int64_t now = clock_.now_ms();
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& entry = it->second;
    bool idle = entry.connection && entry.connection->requests_in_flight() == 0 &&
                now - entry.last_used_ms >= options_.idle_stop_ms;
    if (idle) {  // stdio: the process; http: the session, the subscription and the credential read at start
      log::info("stopping idle mcp server", {{"server", entry.server_name}});
      entry.connection->close();
      entry.connection.reset();
    }
    bool forgotten = !entry.connection && now >= entry.restart_at_ms && now - entry.last_used_ms >= options_.idle_stop_ms;
    it = forgotten ? entries_.erase(it) : std::next(it);
  }
  std::weak_ptr<bool> alive = alive_;
  loop_.post_after(sweep_interval_ms(), [this, alive] {
    if (alive.lock() && !stopped_) sweep_idle();
  });
}

void McpHub::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& [key, entry] : entries_) {
    if (entry.connection) entry.connection->close();
  }
  entries_.clear();
  in_flight_.clear();
  deferred_.clear();
}

}  // namespace continuum
