// The OAuth 2.1 client of one HTTP MCP server for one tenant (MCP
// authorization, 2025-11-25; docs/mcp.md "OAuth"):
//   - discovery from the server's 401 challenge: protected resource metadata
//     (RFC 9728), then authorization server metadata (RFC 8414 / OpenID), else
//     the 2025-03-26 default endpoints; a resource that does not cover the
//     server's URL is refused before any authorization server is contacted;
//   - the client's identity: a pre-registered client_id (secret or
//     private_key_jwt from the vault), a client ID metadata document URL when
//     the server supports it, else dynamic registration (RFC 7591);
//   - tokens: client_credentials at once; authorization_code with PKCE (S256)
//     and the resource indicator (RFC 8707) once a person has opened the
//     authorization URL; refresh tokens when given; step-up on
//     insufficient_scope.
// The client's registration and tokens are kept sealed in the tenant's vault
// (secret "mcp-oauth-<server>"), so every node and every restart uses them.
//
// Contract: used on the loop thread only; every callback runs later on it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent_spec.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/status.h"
#include "tools/mcp/mcp_transport.h"
#include "tools/mcp/oauth_discovery.h"

namespace continuum {

class EventLoop;
class HttpClient;

// Writes (or, with no value, deletes) a vault secret and records `audit_action`
// on `resource` with `details` (never the value) in the same commit.
using SecretWriter = std::function<void(const std::string& tenant, const std::string& name,
                                        std::optional<std::string> value, const std::string& audit_action,
                                        const std::string& resource, json::object details,
                                        std::function<void(Status)> done)>;
using VaultReader = std::function<Result<std::string>(const std::string& tenant, const std::string& name)>;

struct McpOAuthHost {
  HttpClient* http = nullptr;
  EventLoop* loop = nullptr;
  const Clock* clock = nullptr;
  Random* random = nullptr;
  bool deny_private_addresses = true;
  VaultReader read_secret;
  SecretWriter write_secret;
};

// A started authorization-code flow: what the callback needs to finish it.
// Kept in the vault (never in logs) until the callback or its expiry.
struct McpPendingAuthorization {
  std::string state;
  std::string code_verifier;
  std::string redirect_uri;
  std::string scope;
  std::string resource;
  std::string agent;
  std::string server;
  int64_t created_at_ms = 0;
  std::string authorization_url;  // for the person; not kept
};
json::object pending_authorization_json(const McpPendingAuthorization& pending);
Result<McpPendingAuthorization> parse_pending_authorization(std::string_view text);

// The vault name of a server's OAuth state.
std::string mcp_oauth_secret_name(const std::string& server);

// The error a call gets while the server waits for a person to authorize it.
bool is_authorization_required(const Status& status);

class McpOAuth final : public McpHttpAuth, public std::enable_shared_from_this<McpOAuth> {
 public:
  McpOAuth(McpOAuthHost host, std::string tenant, std::string server, std::string server_url, McpOAuthSpec spec);

  std::string authorization() override;
  void refused(int status, const std::string& www_authenticate, const std::string& sent,
               std::function<void(Status)> done) override;

  // authorization_code: discovers, identifies the client, and returns the
  // authorization URL with what completing it needs (not yet stored).
  void begin_authorization(const std::string& redirect_uri, const std::string& agent,
                           std::function<void(Result<McpPendingAuthorization>)> done);
  // Exchanges the code the callback received for tokens, and stores them.
  void complete_authorization(const McpPendingAuthorization& pending, const std::string& code,
                              std::function<void(Status)> done);
  // client_credentials: gets a token now (authorization_code: kFailedPrecondition-like error).
  void acquire(std::function<void(Status)> done);
  // Forgets the tokens and registration (here and in the vault).
  void forget(std::function<void(Status)> done);
  // What is known: issuer, scope, expiry, whether a token is held (never a token).
  json::object view();

 private:
  struct Record;
  void load();
  void persist(const std::string& audit_action, json::object details, std::function<void(Status)> done);
  void probe(std::function<void(Status)> done);
  void discover(std::function<void(Status)> done);
  void discover_resource(std::vector<std::string> urls, std::size_t index, std::function<void(Status)> done);
  void discover_server(std::vector<std::string> urls, std::size_t index, std::function<void(Status)> done);
  void ensure_client(const std::string& redirect_uri, std::function<void(Status)> done);
  void register_client(const std::string& redirect_uri, std::function<void(Status)> done);
  void exchange_code(const McpPendingAuthorization& pending, const std::string& code, std::function<void(Status)> done);
  void token_request(std::vector<std::pair<std::string, std::string>> fields, const std::string& grant,
                     const std::string& requested_scope, std::function<void(Status)> done);
  Status add_client_authentication(std::vector<std::pair<std::string, std::string>>& fields, HeaderList& headers);
  void get_json(const std::string& url, std::function<void(Result<std::string>)> done);
  void renew(const std::string& required_scope, bool refused, std::function<void(Status)> done);
  void renew_without_refresh();
  void drop_tokens(std::function<void()> then);
  void finish_renewal(Status status);
  Status authorization_needed() const;

  McpOAuthHost host_;
  std::string tenant_;
  std::string server_;
  std::string server_url_;
  McpOAuthSpec spec_;
  std::shared_ptr<Record> record_;
  bool loaded_ = false;
  std::optional<ProtectedResourceMetadata> resource_metadata_;
  std::optional<AuthorizationServerMetadata> authorization_server_;
  std::string challenge_metadata_url_;  // from the last challenge
  std::string needed_scope_;            // from the last challenge or step-up
  std::vector<std::function<void(Status)>> renewal_waiters_;  // one renewal at a time
};

}  // namespace continuum
