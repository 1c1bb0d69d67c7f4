// OAuth authorization of http MCP servers (docs/mcp.md "OAuth"):
//
//   POST   /v1/mcp/servers/{server}/authorize [{"agent": NAME}]   mcp:authorize on mcp:<server>
//          authorization_code: {authorization_url, ...} for a person to open;
//          client_credentials: gets a token now
//   GET    /v1/mcp/servers/{server}/authorization[?agent=NAME]   mcp:read on mcp:<server>
//   DELETE /v1/mcp/servers/{server}/authorization[?agent=NAME]   mcp:authorize on mcp:<server>
//   GET    /v1/mcp/oauth/callback?state=..&code=..               public (the state is the credential)
//
// A started authorization is kept in the tenant's vault until its callback
// (one use) or its expiry, so the callback may reach any node. Its state is
// "<base64url tenant>.<random>": the callback finds the tenant from it.
#include "api/access.h"
#include "api/errors.h"
#include "api/handlers.h"
#include "api/mcp_servers.h"
#include "audit/audit_log.h"
#include "auth/jwt.h"
#include "crypto/hash.h"
#include "tools/mcp/mcp_hub.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;

constexpr int64_t kPendingAuthorizationTtlMs = 10 * 60 * 1000;
constexpr std::size_t kStateBytesMax = 512;

std::string pending_secret_name(const std::string& state) {
  return "mcp-oauth-state-" + sha256_hex(state).substr(0, 32);
}

Result<std::string> tenant_of_state(const std::string& state) {
  std::size_t dot = state.find('.');
  if (state.size() > kStateBytesMax || dot == std::string::npos || dot == 0) {
    return invalid_argument("malformed state", "state");
  }
  auto tenant = base64url_decode(std::string_view(state).substr(0, dot));
  if (!tenant.is_ok() || tenant->empty()) return invalid_argument("malformed state", "state");
  return *tenant;
}

// The server `server` of `agent` (or of any agent), if it uses OAuth.
Result<std::pair<ConfiguredServer, std::shared_ptr<McpOAuth>>> oauth_server(ApiContext& ctx, const std::string& tenant,
                                                                             const std::string& server,
                                                                             const std::string& agent) {
  ASSIGN_OR_RETURN(ConfiguredServer configured, find_mcp_server(ctx, tenant, server, agent));
  if (!configured.server->mcp->oauth) {
    return Status(Code::kConflict, "MCP server '" + server + "' is not configured with oauth");
  }
  ASSIGN_OR_RETURN(auto oauth, ctx.mcp->oauth_for(tenant, *configured.server));
  return std::make_pair(std::move(configured), std::move(oauth));
}

void commit_secret(ApiContext& ctx, WriteBatch batch, std::function<void(Status)> done) {
  ctx.store->commit(std::move(batch), [&ctx, done = std::move(done)](Status status) {
    ctx.loop->post([done, status] { done(status); });
  });
}

void authorize(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const Principal& who = caller(request);
  const std::string& server = params.at("server");
  if (!allowed(ctx, who, "mcp:authorize", "mcp:" + server, {}, writer)) return;
  auto body = parse_json_object(request.body.empty() ? "{}" : request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"agent"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto agent = get_optional_string(*body, "agent", "agent");
  if (!agent.is_ok()) return writer->send(error_response(agent.status()));
  auto found = oauth_server(ctx, who.tenant, server, agent->value_or(""));
  if (!found.is_ok()) return writer->send(error_response(found.status()));
  auto [configured, oauth] = std::move(*found);
  if (configured.server->mcp->oauth->grant == "client_credentials") {
    return oauth->acquire([oauth, writer](Status status) {
      if (!status.is_ok()) return writer->send(error_response(status));
      writer->send(json_response(200, oauth->view()));
    });
  }
  std::string tenant = who.tenant;
  std::string principal = who.label();
  std::string redirect_uri = ctx.public_url + kMcpOAuthCallbackPath;
  oauth->begin_authorization(redirect_uri, configured.agent->name,
                             [&ctx, tenant, principal, server, writer](Result<McpPendingAuthorization> pending) {
    if (!pending.is_ok()) return writer->send(error_response(pending.status()));
    int64_t now = ctx.clock->now_ms();
    WriteBatch batch;
    batch.secret_upserts.push_back(SecretRecord{tenant, pending_secret_name(pending->state),
                                                to_json(pending_authorization_json(*pending)), now, now});
    batch.audit_events.push_back(audit_event(tenant, now, principal, "mcp_server:authorize", "mcp:" + server, "ok",
                                             json::object{{"server", server}, {"scope", pending->scope}}));
    json::object view{{"object", "mcp.authorization"},     {"server", server},
                      {"authorization_url", pending->authorization_url}, {"redirect_uri", pending->redirect_uri},
                      {"scope", pending->scope},           {"expires_at_ms", now + kPendingAuthorizationTtlMs}};
    commit_secret(ctx, std::move(batch), [writer, view](Status status) {
      writer->send(status.is_ok() ? json_response(200, view) : error_response(status));
    });
  });
}

void get_authorization(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const Principal& who = caller(request);
  const std::string& server = params.at("server");
  if (!allowed(ctx, who, "mcp:read", "mcp:" + server, {}, writer)) return;
  auto found = oauth_server(ctx, who.tenant, server, request.query_param("agent"));
  if (!found.is_ok()) return writer->send(error_response(found.status()));
  json::object view = found->second->view();
  view["object"] = "mcp.authorization";
  writer->send(json_response(200, view));
}

void delete_authorization(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const Principal& who = caller(request);
  const std::string& server = params.at("server");
  if (!allowed(ctx, who, "mcp:authorize", "mcp:" + server, {}, writer)) return;
  auto found = oauth_server(ctx, who.tenant, server, request.query_param("agent"));
  if (!found.is_ok()) return writer->send(error_response(found.status()));
  auto oauth = found->second;
  std::string tenant = who.tenant;
  oauth->forget([&ctx, tenant, configured = found->first, oauth, server, writer](Status status) {
    if (!status.is_ok()) return writer->send(error_response(status));
    ctx.mcp->disconnect(tenant, *configured.server);  // nor is a listing made with them reused
    writer->send(json_response(200, json::object{{"object", "mcp.authorization"}, {"server", server}, {"deleted", true}}));
  });
}

HttpResponse callback_page(int status, const std::string& text) {
  return HttpResponse{status, "text/plain; charset=utf-8", text + "\n", {}};
}

// Finishes a pending authorization: the person came back with a code.
void finish_callback(ApiContext& ctx, const std::string& tenant, McpPendingAuthorization pending,
                     const std::string& code, Writer writer) {
  auto found = oauth_server(ctx, tenant, pending.server, pending.agent);
  if (!found.is_ok()) return writer->send(error_response(found.status()));
  auto oauth = found->second;
  oauth->complete_authorization(pending, code, [oauth, pending, writer](Status status) {
    if (!status.is_ok()) return writer->send(error_response(status));
    writer->send(callback_page(200, "Continuum: MCP server '" + pending.server +
                                        "' is authorized. You can close this page."));
  });
}

}  // namespace

void handle_mcp_oauth_callback(ApiContext& ctx, HttpRequest& request, Writer writer) {
  if (request.method != "GET") return writer->send(error_response(not_found("no route for " + request.method + " " + request.path)));
  std::string state = request.query_param("state");
  auto tenant = tenant_of_state(state);
  if (!tenant.is_ok()) return writer->send(error_response(tenant.status()));
  std::string name = pending_secret_name(state);
  auto stored = ctx.store->get_secret(*tenant, name);
  if (!stored.is_ok()) {
    return writer->send(error_response(stored.status().code() == Code::kNotFound
                                           ? invalid_argument("unknown, used or expired authorization", "state")
                                           : stored.status()));
  }
  auto pending = parse_pending_authorization(stored->value);
  if (!pending.is_ok() || !constant_time_equal(pending->state, state)) {
    return writer->send(error_response(invalid_argument("unknown, used or expired authorization", "state")));
  }
  std::string code = request.query_param("code");
  std::string error = request.query_param("error");
  bool expired = ctx.clock->now_ms() - pending->created_at_ms > kPendingAuthorizationTtlMs;
  WriteBatch batch;  // one use: gone before the code is exchanged
  batch.secret_deletes.push_back(SecretRecord{*tenant, name, "", 0, 0});
  std::string outcome = expired ? "expired" : !error.empty() ? "refused: " + error.substr(0, 100) : code.empty() ? "no code" : "";
  if (!outcome.empty()) {
    batch.audit_events.push_back(audit_event(*tenant, ctx.clock->now_ms(), "anonymous", "mcp_server:authorize",
                                             "mcp:" + pending->server, "deny",
                                             json::object{{"server", pending->server}, {"reason", outcome}}));
  }
  commit_secret(ctx, std::move(batch), [&ctx, tenant = *tenant, pending = *pending, code, outcome,
                                        writer](Status status) {
    if (!status.is_ok()) return writer->send(error_response(status));
    if (!outcome.empty()) {
      return writer->send(error_response(invalid_argument("the authorization was not given: " + outcome, "code")));
    }
    finish_callback(ctx, tenant, pending, code, writer);
  });
}

void add_mcp_oauth_routes(Router& router, ApiContext& ctx) {
  router.add("POST", "/v1/mcp/servers/{server}/authorize",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { authorize(ctx, r, p, w); });
  router.add("GET", "/v1/mcp/servers/{server}/authorization",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { get_authorization(ctx, r, p, w); });
  router.add("DELETE", "/v1/mcp/servers/{server}/authorization",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { delete_authorization(ctx, r, p, w); });
}

}  // namespace continuum
