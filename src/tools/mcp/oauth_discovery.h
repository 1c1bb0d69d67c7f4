// The pure parts of the OAuth 2.1 client of HTTP MCP servers (MCP
// authorization, 2025-11-25): reading a server's Bearer challenge, where to
// look for protected resource metadata (RFC 9728) and authorization server
// metadata (RFC 8414, OpenID discovery), what those documents say, which
// scope to ask for, PKCE and form bodies. No I/O here: oauth_client.h does
// the exchanges.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace continuum {

// The parameters of a `Bearer` challenge in WWW-Authenticate (RFC 6750 §3,
// RFC 9728 §5.1). Absent parameters are empty.
struct BearerChallenge {
  std::string error;              // e.g. invalid_token, insufficient_scope
  std::string error_description;
  std::string scope;              // space-separated
  std::string resource_metadata;  // URL of the protected resource metadata
};

// Finds the Bearer challenge among the header's challenges. A header without
// one yields an empty challenge; a malformed one is an error.
Result<BearerChallenge> parse_bearer_challenge(std::string_view header);

// RFC 9728 §3.1: where a server at `server_url` publishes its metadata: the
// path-aware location first, then the root one. A challenge's
// resource_metadata, when present, is tried before these.
std::vector<std::string> protected_resource_metadata_urls(const std::string& server_url);

// RFC 8414 §3.1 and OpenID Connect Discovery, in the order the MCP
// specification gives: for an issuer with a path, path insertion for both, then
// OpenID path appending; without a path, the two root documents. Never the
// root document for an issuer that has a path.
std::vector<std::string> authorization_server_metadata_urls(const std::string& issuer);

// scheme://host[:port] of `url`; "" if it is not an absolute http(s) URL.
std::string url_origin(const std::string& url);

// Whether a token for `resource` may be sent to `server_url`: same origin, and
// the server's path is the resource's path or lies below it (RFC 9728 §7.3:
// a client must not accept metadata for another resource).
bool resource_covers(const std::string& resource, const std::string& server_url);

// Whether `url` may carry credentials: https, or http to a loopback host.
bool secure_oauth_url(const std::string& url);

struct ProtectedResourceMetadata {
  std::string resource;
  std::vector<std::string> authorization_servers;
  std::vector<std::string> scopes_supported;
};
Result<ProtectedResourceMetadata> parse_protected_resource_metadata(std::string_view body);

struct AuthorizationServerMetadata {
  std::string issuer;
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string registration_endpoint;  // "" = no dynamic registration
  std::vector<std::string> token_endpoint_auth_methods_supported;
  std::vector<std::string> grant_types_supported;
  std::vector<std::string> code_challenge_methods_supported;
  bool client_id_metadata_document_supported = false;
};
Result<AuthorizationServerMetadata> parse_authorization_server_metadata(std::string_view body);

// No metadata anywhere (2025-03-26 servers): the default endpoints at the
// origin of the MCP server.
AuthorizationServerMetadata fallback_authorization_server(const std::string& server_url);

// The scope to request (MCP 2025-11-25 "scope selection"): the configured
// one; else the challenge's; else everything the resource supports; else none ("").
std::string choose_scope(const std::string& configured, const std::string& challenged,
                         const std::vector<std::string>& scopes_supported);

// Space-separated sets.
std::vector<std::string> split_scope(std::string_view scope);
std::string scope_union(const std::string& a, const std::string& b);
bool scope_includes(const std::string& granted, const std::string& required);

// PKCE (RFC 7636): the S256 challenge of a verifier.
std::string pkce_s256_challenge(std::string_view verifier);

// application/x-www-form-urlencoded, and a URL with added query parameters.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);
std::string with_query(const std::string& url, const std::vector<std::pair<std::string, std::string>>& fields);
// The parameters of a URL's query (decoded); empty if it has none or is malformed.
std::vector<std::pair<std::string, std::string>> query_params(const std::string& url);

}  // namespace continuum
