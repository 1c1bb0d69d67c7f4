#include "tools/mcp/oauth_client.h"

#include "auth/jwt.h"
#include "core/log.h"
#include "engine/event_loop.h"
#include "net/http_client.h"

namespace continuum {

namespace {

constexpr int64_t kOAuthRequestTimeoutMs = 15'000;
constexpr int64_t kOAuthResponseBytesMax = 1024 * 1024;
constexpr int64_t kAssertionLifetimeS = 300;
constexpr const char* kAuthRequiredPrefix = "needs authorization";
constexpr const char* kClientName = "Continuum";

std::string field(const json::object& obj, std::string_view key) {
  auto it = obj.find(key);
  return it != obj.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

int64_t int_field(const json::object& obj, std::string_view key) {
  auto it = obj.find(key);
  return it != obj.end() && it->value().is_int64() ? it->value().as_int64() : 0;
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// The OAuth error of a refused request: "invalid_grant: the code expired".
std::string oauth_error_text(const HttpClientResponse& response) {
  auto body = parse_json_object(response.body);
  if (!body.is_ok()) return "HTTP " + std::to_string(response.status);
  std::string text = field(*body, "error");
  std::string description = field(*body, "error_description");
  if (text.empty()) text = "HTTP " + std::to_string(response.status);
  return description.empty() ? text : text + ": " + description.substr(0, 300);
}

std::string basic_credentials(const std::string& id, const std::string& secret) {
  // RFC 6749 §2.3.1: both form-encoded before they are joined.
  std::string encoded_id = form_encode({{"", id}}).substr(1);
  std::string encoded_secret = form_encode({{"", secret}}).substr(1);
  std::string joined = encoded_id + ":" + encoded_secret;
  std::string out = base64url_encode(joined);
  for (char& c : out) c = c == '-' ? '+' : c == '_' ? '/' : c;  // standard alphabet
  while (out.size() % 4 != 0) out.push_back('=');
  return "Basic " + out;
}

}  // namespace

// What is kept in the vault for one server of one tenant.
struct McpOAuth::Record {
  std::string server_url;     // the tokens are for this server only
  std::string issuer;
  std::string redirect_uri;   // the registered client's
  std::string client_id;
  std::string client_secret;  // a registered client's (a configured one's stays in its own secret)
  std::string auth_method;    // client_secret_basic | client_secret_post | none | private_key_jwt
  std::string access_token;
  std::string refresh_token;
  std::string scope;          // granted (or requested, when the server does not say)
  int64_t expires_at_ms = 0;  // 0 = unknown

  json::object to_json() const {
    return json::object{{"server_url", server_url}, {"issuer", issuer}, {"redirect_uri", redirect_uri},
                        {"client_id", client_id}, {"client_secret", client_secret}, {"auth_method", auth_method},
                        {"access_token", access_token}, {"refresh_token", refresh_token}, {"scope", scope},
                        {"expires_at_ms", expires_at_ms}};
  }
  static Record from_json(const json::object& obj) {
    Record record;
    record.server_url = field(obj, "server_url");
    record.issuer = field(obj, "issuer");
    record.redirect_uri = field(obj, "redirect_uri");
    record.client_id = field(obj, "client_id");
    record.client_secret = field(obj, "client_secret");
    record.auth_method = field(obj, "auth_method");
    record.access_token = field(obj, "access_token");
    record.refresh_token = field(obj, "refresh_token");
    record.scope = field(obj, "scope");
    record.expires_at_ms = int_field(obj, "expires_at_ms");
    return record;
  }
};

std::string mcp_oauth_secret_name(const std::string& server) { return "mcp-oauth-" + server; }

bool is_authorization_required(const Status& status) {
  return status.code() == Code::kUnauthenticated && status.message().find(kAuthRequiredPrefix) != std::string::npos;
}

json::object pending_authorization_json(const McpPendingAuthorization& pending) {
  return json::object{{"state", pending.state},   {"code_verifier", pending.code_verifier},
                      {"redirect_uri", pending.redirect_uri}, {"scope", pending.scope},
                      {"resource", pending.resource}, {"agent", pending.agent},
                      {"server", pending.server}, {"created_at_ms", pending.created_at_ms}};
}

Result<McpPendingAuthorization> parse_pending_authorization(std::string_view text) {
  ASSIGN_OR_RETURN(json::object obj, parse_json_object(text));
  McpPendingAuthorization pending;
  pending.state = field(obj, "state");
  pending.code_verifier = field(obj, "code_verifier");
  pending.redirect_uri = field(obj, "redirect_uri");
  pending.scope = field(obj, "scope");
  pending.resource = field(obj, "resource");
  pending.agent = field(obj, "agent");
  pending.server = field(obj, "server");
  pending.created_at_ms = int_field(obj, "created_at_ms");
  if (pending.state.empty() || pending.code_verifier.empty() || pending.server.empty()) {
    return Status(Code::kDataLoss, "a pending MCP authorization is incomplete");
  }
  return pending;
}

McpOAuth::McpOAuth(McpOAuthHost host, std::string tenant, std::string server, std::string server_url,
                   McpOAuthSpec spec)
    : host_(std::move(host)),
      tenant_(std::move(tenant)),
      server_(std::move(server)),
      server_url_(std::move(server_url)),
      spec_(std::move(spec)),
      record_(std::make_shared<Record>()) {}

// Reads the vault: what another node or an earlier process obtained. A record
// for another URL or another configured client is not used.
void McpOAuth::load() {
  loaded_ = true;
  auto text = host_.read_secret(tenant_, mcp_oauth_secret_name(server_));
  if (!text.is_ok()) return;
  auto obj = parse_json_object(*text);
  if (!obj.is_ok()) return;
  Record stored = Record::from_json(*obj);
  if (stored.server_url != server_url_) return;
  if (!spec_.client_id.empty() && stored.client_id != spec_.client_id) return;
  *record_ = std::move(stored);
}

void McpOAuth::persist(const std::string& audit_action, json::object details, std::function<void(Status)> done) {
  record_->server_url = server_url_;
  details["server"] = server_;
  details["issuer"] = record_->issuer;
  host_.write_secret(tenant_, mcp_oauth_secret_name(server_), to_json(record_->to_json()), audit_action,
                     "mcp:" + server_, std::move(details), std::move(done));
}

std::string McpOAuth::authorization() {
  if (!loaded_) load();
  if (record_->access_token.empty()) return "";
  return "Bearer " + record_->access_token;
}

Status McpOAuth::authorization_needed() const {
  std::string scope = needed_scope_.empty() ? "" : " (scope '" + needed_scope_ + "')";
  return Status(Code::kUnauthenticated, "MCP server '" + server_ + "' " + kAuthRequiredPrefix + scope +
                                            ": an administrator opens the URL that POST /v1/mcp/servers/" + server_ +
                                            "/authorize returns (continuum mcp authorize " + server_ + ")");
}

void McpOAuth::refused(int status, const std::string& www_authenticate, const std::string& sent,
                       std::function<void(Status)> done) {
  auto challenge = parse_bearer_challenge(www_authenticate);
  BearerChallenge seen = challenge.is_ok() ? *challenge : BearerChallenge{};
  if (!seen.resource_metadata.empty()) challenge_metadata_url_ = seen.resource_metadata;
  bool insufficient_scope = status == 403 && seen.error == "insufficient_scope";
  if (status == 403 && !insufficient_scope) {
    return done(Status(Code::kPermissionDenied, "MCP server '" + server_ + "' refused the request (HTTP 403" +
                                                    (seen.error.empty() ? "" : ", " + seen.error) + ")"));
  }
  if (insufficient_scope && !sent.empty() && scope_includes(record_->scope, seen.scope)) {
    // The token has what the server asks for: another token would not help.
    return done(Status(Code::kPermissionDenied, "MCP server '" + server_ + "' refuses the token although it carries " +
                                                    "the scope it asks for ('" + seen.scope + "')"));
  }
  needed_scope_ = insufficient_scope ? scope_union(record_->scope, seen.scope) : seen.scope;
  std::string current = authorization();
  if (!current.empty() && current != sent) return done(Status::ok());  // renewed meanwhile: try that one
  load();  // another node may hold a newer token
  if (!authorization().empty() && authorization() != sent) return done(Status::ok());
  // A refused token is dropped; one short of scope still serves other requests.
  renew(needed_scope_, status == 401, std::move(done));
}

// Refresh, or client_credentials; an authorization-code client without a
// refresh token waits for a person. Concurrent refusals share one renewal.
// `refused`: the server refused the token itself (401), not its scope (403).
void McpOAuth::renew(const std::string& required_scope, bool refused, std::function<void(Status)> done) {
  renewal_waiters_.push_back(std::move(done));
  if (renewal_waiters_.size() > 1) return;
  auto self = shared_from_this();
  bool scope_suffices = scope_includes(record_->scope, required_scope);
  if (!record_->refresh_token.empty() && scope_suffices) {
    return discover([self](Status status) {
      if (!status.is_ok()) return self->finish_renewal(status);
      self->token_request({{"grant_type", "refresh_token"}, {"refresh_token", self->record_->refresh_token}},
                          "refresh_token", self->record_->scope, [self](Status refreshed) {
                            if (refreshed.is_ok()) return self->finish_renewal(Status::ok());
                            if (refreshed.code() != Code::kPermissionDenied) return self->finish_renewal(refreshed);
                            self->drop_tokens([self] { self->renew_without_refresh(); });  // refused: not tried again
                          });
    });
  }
  if (refused) return drop_tokens([self] { self->renew_without_refresh(); });
  renew_without_refresh();
}

void McpOAuth::renew_without_refresh() {
  if (spec_.grant == "client_credentials") {
    auto self = shared_from_this();
    return acquire([self](Status status) { self->finish_renewal(status); });
  }
  finish_renewal(authorization_needed());
}

// Tokens a server refused are forgotten here and in the vault, so that no
// node offers them again (the client registration stays).
void McpOAuth::drop_tokens(std::function<void()> then) {
  bool held = !record_->access_token.empty() || !record_->refresh_token.empty();
  record_->access_token.clear();
  record_->refresh_token.clear();
  record_->expires_at_ms = 0;
  if (!held) return then();
  persist("mcp_server:token_refused", json::object{}, [then = std::move(then)](Status status) {
    if (!status.is_ok()) log::warn("cannot forget refused MCP OAuth tokens", {{"error", status.message()}});
    then();
  });
}

void McpOAuth::finish_renewal(Status status) {
  auto waiters = std::move(renewal_waiters_);
  renewal_waiters_.clear();
  for (auto& waiter : waiters) waiter(status);
}

void McpOAuth::get_json(const std::string& url, std::function<void(Result<std::string>)> done) {
  HttpClientRequest request;
  request.method = "GET";
  request.url = url;
  request.timeout_ms = kOAuthRequestTimeoutMs;
  request.response_bytes_max = kOAuthResponseBytesMax;
  request.deny_private_addresses = host_.deny_private_addresses;
  request.headers.emplace_back("Accept", "application/json");
  host_.http->send(std::move(request), nullptr, [done = std::move(done)](Result<HttpClientResponse> response) {
    if (!response.is_ok()) return done(response.status());
    if (response->status != 200) return done(not_found("HTTP " + std::to_string(response->status)));
    done(std::move(response->body));
  });
}

// Without a challenge seen here (say, the authorization starts on another
// node), asks the server for one: where its metadata is, and what scope it wants.
void McpOAuth::probe(std::function<void(Status)> done) {
  if (authorization_server_ || !challenge_metadata_url_.empty()) return discover(std::move(done));
  HttpClientRequest request;
  request.url = server_url_;
  request.body = R"({"jsonrpc":"2.0","id":0,"method":"ping"})";
  request.timeout_ms = kOAuthRequestTimeoutMs;
  request.response_bytes_max = kOAuthResponseBytesMax;
  request.deny_private_addresses = host_.deny_private_addresses;
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json, text/event-stream"}};
  auto abort = std::make_shared<HttpAbort>();  // the body of a reply is not needed
  request.abort = abort;
  auto self = shared_from_this();
  host_.http->send(std::move(request), nullptr, [self, done = std::move(done)](Result<HttpClientResponse> response) mutable {
    if (response.is_ok() && (response->status == 401 || response->status == 403)) {
      auto challenge = parse_bearer_challenge(response->header("WWW-Authenticate"));
      if (challenge.is_ok()) {
        self->challenge_metadata_url_ = challenge->resource_metadata;
        if (self->needed_scope_.empty()) self->needed_scope_ = challenge->scope;
      }
    }
    self->discover(std::move(done));
  });
}

void McpOAuth::discover(std::function<void(Status)> done) {
  if (authorization_server_) return done(Status::ok());
  std::vector<std::string> urls;
  if (!challenge_metadata_url_.empty()) urls.push_back(challenge_metadata_url_);
  for (const std::string& url : protected_resource_metadata_urls(server_url_)) {
    if (!contains(urls, url)) urls.push_back(url);
  }
  discover_resource(std::move(urls), 0, std::move(done));
}

// Tries each protected resource metadata location in turn; the first that
// answers decides. None: a 2025-03-26 server, its own origin is the issuer.
void McpOAuth::discover_resource(std::vector<std::string> urls, std::size_t index, std::function<void(Status)> done) {
  if (index >= urls.size()) {
    resource_metadata_.reset();
    return discover_server(authorization_server_metadata_urls(url_origin(server_url_)), 0, std::move(done));
  }
  auto self = shared_from_this();
  std::string url = urls[index];
  get_json(url, [self, urls = std::move(urls), index, done = std::move(done)](Result<std::string> body) mutable {
    auto metadata = body.is_ok() ? parse_protected_resource_metadata(*body) : Result<ProtectedResourceMetadata>(body.status());
    if (!metadata.is_ok()) return self->discover_resource(std::move(urls), index + 1, std::move(done));
    if (!resource_covers(metadata->resource, self->server_url_)) {
      return done(Status(Code::kPermissionDenied, "MCP server '" + self->server_ + "' publishes metadata for another " +
                                                      "resource ('" + metadata->resource + "'): not authorizing"));
    }
    std::string issuer = metadata->authorization_servers.front();
    self->resource_metadata_ = std::move(*metadata);
    self->discover_server(authorization_server_metadata_urls(issuer), 0, std::move(done));
  });
}

void McpOAuth::discover_server(std::vector<std::string> urls, std::size_t index, std::function<void(Status)> done) {
  auto self = shared_from_this();
  auto adopt = [self](AuthorizationServerMetadata metadata, const std::string& issuer) -> Status {
    for (const std::string* url : {&metadata.token_endpoint, &metadata.authorization_endpoint,
                                   &metadata.registration_endpoint}) {
      if (!url->empty() && !secure_oauth_url(*url)) {
        return Status(Code::kPermissionDenied, "the authorization server's endpoint '" + *url +
                                                   "' is neither https nor on this host");
      }
    }
    if (metadata.issuer.empty()) metadata.issuer = issuer;
    if (self->record_->issuer != metadata.issuer && self->spec_.client_id.empty()) {
      Record fresh;  // a registration and tokens of another authorization server are no use here
      *self->record_ = fresh;
    }
    self->record_->issuer = metadata.issuer;
    self->authorization_server_ = std::move(metadata);
    return Status::ok();
  };
  std::string issuer = resource_metadata_ ? resource_metadata_->authorization_servers.front() : url_origin(server_url_);
  if (index >= urls.size()) return done(adopt(fallback_authorization_server(issuer), issuer));
  std::string url = urls[index];
  get_json(url, [self, urls = std::move(urls), index, issuer, adopt, done = std::move(done)](Result<std::string> body) mutable {
    auto metadata = body.is_ok() ? parse_authorization_server_metadata(*body)
                                 : Result<AuthorizationServerMetadata>(body.status());
    if (!metadata.is_ok()) return self->discover_server(std::move(urls), index + 1, std::move(done));
    done(adopt(std::move(*metadata), issuer));
  });
}

// The client's identity at the authorization server: configured, a metadata
// document URL, or registered (and kept) now.
void McpOAuth::ensure_client(const std::string& redirect_uri, std::function<void(Status)> done) {
  const AuthorizationServerMetadata& server = *authorization_server_;
  if (!spec_.client_id.empty()) {
    record_->client_id = spec_.client_id;
    const auto& methods = server.token_endpoint_auth_methods_supported;
    record_->auth_method = !spec_.private_key.empty() ? "private_key_jwt"
                           : spec_.client_secret.empty() ? "none"
                           : contains(methods, "client_secret_post") && !contains(methods, "client_secret_basic")
                               ? "client_secret_post"
                               : "client_secret_basic";
    return done(Status::ok());
  }
  if (!spec_.client_metadata_url.empty() && server.client_id_metadata_document_supported) {
    record_->client_id = spec_.client_metadata_url;
    record_->client_secret.clear();
    record_->auth_method = "none";
    return done(Status::ok());
  }
  if (!record_->client_id.empty() && record_->redirect_uri == redirect_uri) return done(Status::ok());
  register_client(redirect_uri, std::move(done));
}

void McpOAuth::register_client(const std::string& redirect_uri, std::function<void(Status)> done) {
  const AuthorizationServerMetadata& server = *authorization_server_;
  if (server.registration_endpoint.empty()) {
    return done(Status(Code::kPermissionDenied, "the authorization server of MCP server '" + server_ +
                                                    "' does not register clients: configure oauth.client_id"));
  }
  const auto& methods = server.token_endpoint_auth_methods_supported;
  std::string method = methods.empty() || contains(methods, "client_secret_basic") ? "client_secret_basic"
                       : contains(methods, "client_secret_post")                   ? "client_secret_post"
                                                                                   : "none";
  json::object metadata{{"client_name", kClientName},
                        {"grant_types", json::array{"authorization_code", "refresh_token"}},
                        {"response_types", json::array{"code"}},
                        {"redirect_uris", json::array{json::value(redirect_uri)}},
                        {"token_endpoint_auth_method", method}};
  HttpClientRequest request;
  request.url = server.registration_endpoint;
  request.body = to_json(metadata);
  request.timeout_ms = kOAuthRequestTimeoutMs;
  request.response_bytes_max = kOAuthResponseBytesMax;
  request.deny_private_addresses = host_.deny_private_addresses;
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  auto self = shared_from_this();
  host_.http->send(std::move(request), nullptr,
                   [self, redirect_uri, method, done = std::move(done)](Result<HttpClientResponse> response) {
                     if (!response.is_ok()) return done(response.status());
                     if (response->status != 200 && response->status != 201) {
                       return done(Status(Code::kPermissionDenied, "the authorization server refused to register " +
                                                                       std::string("the client: ") +
                                                                       oauth_error_text(*response)));
                     }
                     auto body = parse_json_object(response->body);
                     if (!body.is_ok() || field(*body, "client_id").empty()) {
                       return done(Status(Code::kUnavailable, "the client registration answer has no client_id"));
                     }
                     Record& record = *self->record_;
                     record.client_id = field(*body, "client_id");
                     record.client_secret = field(*body, "client_secret");
                     std::string given = field(*body, "token_endpoint_auth_method");
                     record.auth_method = !given.empty() ? given : record.client_secret.empty() ? "none" : method;
                     if (record.auth_method != "none" && record.client_secret.empty()) record.auth_method = "none";
                     record.redirect_uri = redirect_uri;
                     record.access_token.clear();
                     record.refresh_token.clear();
                     self->persist("mcp_server:register", json::object{{"client_id", record.client_id}},
                                   std::move(done));
                   });
}

Status McpOAuth::add_client_authentication(std::vector<std::pair<std::string, std::string>>& fields,
                                           HeaderList& headers) {
  const Record& record = *record_;
  std::string secret = record.client_secret;
  if (!spec_.client_secret.empty()) {
    auto stored = host_.read_secret(tenant_, spec_.client_secret);
    if (!stored.is_ok()) {
      return Status(Code::kPermissionDenied, "the OAuth client secret '" + spec_.client_secret + "' is not in the vault");
    }
    secret = *stored;
  }
  if (record.auth_method == "client_secret_basic") {
    headers.emplace_back("Authorization", basic_credentials(record.client_id, secret));
  } else if (record.auth_method == "client_secret_post") {
    fields.emplace_back("client_id", record.client_id);
    fields.emplace_back("client_secret", secret);
  } else if (record.auth_method == "private_key_jwt") {
    auto key = host_.read_secret(tenant_, spec_.private_key);
    if (!key.is_ok()) {
      return Status(Code::kPermissionDenied, "the OAuth private key '" + spec_.private_key + "' is not in the vault");
    }
    int64_t now_s = host_.clock->now_ms() / 1000;
    json::object claims{{"iss", record.client_id}, {"sub", record.client_id}, {"aud", record.issuer},
                        {"iat", now_s},            {"exp", now_s + kAssertionLifetimeS},
                        {"jti", host_.random->hex(16)}};
    ASSIGN_OR_RETURN(std::string assertion, sign_jwt_pem(claims, *key, spec_.signing_algorithm));
    fields.emplace_back("client_id", record.client_id);
    fields.emplace_back("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    fields.emplace_back("client_assertion", std::move(assertion));
  } else {
    fields.emplace_back("client_id", record.client_id);
  }
  return Status::ok();
}

// POSTs to the token endpoint; a granted token is kept (vault) before `done`.
void McpOAuth::token_request(std::vector<std::pair<std::string, std::string>> fields, const std::string& grant,
                             const std::string& requested_scope, std::function<void(Status)> done) {
  bool has_resource = std::any_of(fields.begin(), fields.end(), [](const auto& f) { return f.first == "resource"; });
  if (resource_metadata_ && !has_resource) fields.emplace_back("resource", resource_metadata_->resource);
  HttpClientRequest request;
  request.url = authorization_server_->token_endpoint;
  request.timeout_ms = kOAuthRequestTimeoutMs;
  request.response_bytes_max = kOAuthResponseBytesMax;
  request.deny_private_addresses = host_.deny_private_addresses;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
  Status authenticated = add_client_authentication(fields, request.headers);
  if (!authenticated.is_ok()) return done(authenticated);
  request.body = form_encode(fields);
  auto self = shared_from_this();
  host_.http->send(std::move(request), nullptr, [self, grant, requested_scope,
                                                 done = std::move(done)](Result<HttpClientResponse> response) {
    if (!response.is_ok()) return done(response.status());
    if (response->status != 200) {
      return done(Status(response->status >= 500 ? Code::kUnavailable : Code::kPermissionDenied,
                         "the authorization server refused the token request: " + oauth_error_text(*response)));
    }
    auto body = parse_json_object(response->body);
    std::string token_type = body.is_ok() ? field(*body, "token_type") : "";
    std::transform(token_type.begin(), token_type.end(), token_type.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!body.is_ok() || field(*body, "access_token").empty() || token_type != "bearer") {
      return done(Status(Code::kUnavailable, "the token endpoint's answer has no bearer access_token"));
    }
    Record& record = *self->record_;
    record.access_token = field(*body, "access_token");
    std::string refresh = field(*body, "refresh_token");
    if (!refresh.empty() || grant != "refresh_token") record.refresh_token = refresh;
    std::string scope = field(*body, "scope");
    if (grant != "refresh_token") record.scope = scope.empty() ? requested_scope : scope;
    else if (!scope.empty()) record.scope = scope;
    int64_t expires_in = int_field(*body, "expires_in");
    record.expires_at_ms = expires_in > 0 ? self->host_.clock->now_ms() + expires_in * 1000 : 0;
    self->persist("mcp_server:token", json::object{{"grant", grant}, {"scope", record.scope}}, std::move(done));
  });
}

void McpOAuth::acquire(std::function<void(Status)> done) {
  if (!loaded_) load();
  if (spec_.grant != "client_credentials") return done(authorization_needed());
  auto self = shared_from_this();
  discover([self, done = std::move(done)](Status status) mutable {
    if (!status.is_ok()) return done(status);
    self->ensure_client("", [self, done = std::move(done)](Status status) mutable {
      if (!status.is_ok()) return done(status);
      std::vector<std::pair<std::string, std::string>> fields{{"grant_type", "client_credentials"}};
      std::string scope = choose_scope(self->spec_.scope, self->needed_scope_,
                                       self->resource_metadata_ ? self->resource_metadata_->scopes_supported
                                                                : std::vector<std::string>{});
      if (!scope.empty()) fields.emplace_back("scope", scope);
      self->token_request(std::move(fields), "client_credentials", scope, std::move(done));
    });
  });
}

void McpOAuth::begin_authorization(const std::string& redirect_uri, const std::string& agent,
                                   std::function<void(Result<McpPendingAuthorization>)> done) {
  if (!loaded_) load();
  if (spec_.grant != "authorization_code") {
    return done(Status(Code::kConflict, "MCP server '" + server_ + "' uses the client_credentials grant: " +
                                            "no person authorizes it"));
  }
  auto self = shared_from_this();
  probe([self, redirect_uri, agent, done = std::move(done)](Status status) mutable {
    if (!status.is_ok()) return done(status);
    if (self->authorization_server_->authorization_endpoint.empty()) {
      return done(Status(Code::kPermissionDenied, "the authorization server has no authorization_endpoint"));
    }
    self->ensure_client(redirect_uri, [self, redirect_uri, agent, done = std::move(done)](Status status) mutable {
      if (!status.is_ok()) return done(status);
      McpPendingAuthorization pending;
      pending.state = base64url_encode(self->tenant_) + "." + self->host_.random->hex(24);  // the callback's tenant
      pending.code_verifier = self->host_.random->hex(32);
      pending.redirect_uri = redirect_uri;
      pending.scope = choose_scope(self->spec_.scope, self->needed_scope_,
                                   self->resource_metadata_ ? self->resource_metadata_->scopes_supported
                                                            : std::vector<std::string>{});
      pending.resource = self->resource_metadata_ ? self->resource_metadata_->resource : "";
      pending.agent = agent;
      pending.server = self->server_;
      pending.created_at_ms = self->host_.clock->now_ms();
      std::vector<std::pair<std::string, std::string>> query{
          {"response_type", "code"},
          {"client_id", self->record_->client_id},
          {"redirect_uri", redirect_uri},
          {"code_challenge", pkce_s256_challenge(pending.code_verifier)},
          {"code_challenge_method", "S256"},
          {"state", pending.state}};
      if (!pending.scope.empty()) query.emplace_back("scope", pending.scope);
      if (!pending.resource.empty()) query.emplace_back("resource", pending.resource);
      pending.authorization_url = with_query(self->authorization_server_->authorization_endpoint, query);
      done(std::move(pending));
    });
  });
}

void McpOAuth::complete_authorization(const McpPendingAuthorization& pending, const std::string& code,
                                      std::function<void(Status)> done) {
  if (!loaded_) load();
  auto self = shared_from_this();
  discover([self, pending, code, done = std::move(done)](Status status) mutable {
    if (!status.is_ok()) return done(status);
    self->ensure_client(pending.redirect_uri, [self, pending, code, done = std::move(done)](Status status) mutable {
      if (!status.is_ok()) return done(status);
      self->exchange_code(pending, code, std::move(done));
    });
  });
}

void McpOAuth::exchange_code(const McpPendingAuthorization& pending, const std::string& code,
                             std::function<void(Status)> done) {
  std::vector<std::pair<std::string, std::string>> fields{{"grant_type", "authorization_code"},
                                                          {"code", code},
                                                          {"redirect_uri", pending.redirect_uri},
                                                          {"code_verifier", pending.code_verifier}};
  if (!pending.resource.empty()) fields.emplace_back("resource", pending.resource);  // as in the authorization request
  auto self = shared_from_this();
  token_request(std::move(fields), "authorization_code", pending.scope, [self, done = std::move(done)](Status status) {
    if (status.is_ok()) self->needed_scope_.clear();
    done(status);
  });
}

void McpOAuth::forget(std::function<void(Status)> done) {
  *record_ = Record{};
  authorization_server_.reset();
  resource_metadata_.reset();
  needed_scope_.clear();
  host_.write_secret(tenant_, mcp_oauth_secret_name(server_), std::nullopt, "mcp_server:deauthorize", "mcp:" + server_,
                     json::object{{"server", server_}}, std::move(done));
}

json::object McpOAuth::view() {
  if (!loaded_) load();
  json::object view{{"server", server_},
                    {"grant", spec_.grant},
                    {"authorized", !record_->access_token.empty()},
                    {"refreshable", !record_->refresh_token.empty()},
                    {"scope", record_->scope},
                    {"issuer", record_->issuer},
                    {"client_id", record_->client_id},
                    {"expires_at_ms", record_->expires_at_ms}};
  if (!needed_scope_.empty()) view["needed_scope"] = needed_scope_;
  return view;
}

}  // namespace continuum
