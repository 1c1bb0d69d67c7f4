// Governance routes: API keys (issued once, listed without secrets, revoked)
// and the tenant's policy (versioned documents, and a dry run that explains
// a decision). See docs/api.md and docs/policy.md.
#include "api/access.h"
#include "api/errors.h"
#include "api/handlers.h"
#include "auth/api_keys.h"
#include "audit/audit_log.h"
#include "crypto/hash.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;
constexpr size_t kRolesMax = 16;
constexpr int kPolicyVersionsListed = 100;

void answer_after_commit(ApiContext& ctx, WriteBatch batch, int status, json::object view, Writer writer) {
  ctx.store->commit(std::move(batch), [&ctx, status, view = std::move(view), writer](Status result) {
    ctx.loop->post([status, view, writer, result] {
      writer->send(result.is_ok() ? json_response(status, view) : error_response(result));
    });
  });
}

Result<std::vector<std::string>> string_list(const json::object& body, const char* key, size_t count_max) {
  std::vector<std::string> values;
  ASSIGN_OR_RETURN(auto list, get_optional_array(body, key, key));
  if (!list) return values;
  if (list->size() > count_max) return invalid_argument(std::string(key) + " has too many entries", key);
  for (const auto& entry : *list) {
    if (!entry.is_string() || !is_valid_subject(std::string(entry.as_string()))) {
      return invalid_argument(std::string(key) + " must hold names of letters, digits and . _ @ : -", key);
    }
    values.emplace_back(entry.as_string());
  }
  return values;
}

// ---- API keys ----

// A tenant's admins issue keys in their tenant; only admins of the system
// tenant may issue the first key of another tenant (provisioning).
void create_api_key(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const Principal& who = caller(request);
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"user", "roles", "name", "tenant"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto user = get_string(*body, "user", "user");
  if (!user.is_ok()) return writer->send(error_response(user.status()));
  if (!is_valid_subject(*user)) {
    return writer->send(error_response(
        invalid_argument("user must be 1-128 characters of letters, digits and . _ @ : -", "user")));
  }
  auto roles = string_list(*body, "roles", kRolesMax);
  if (!roles.is_ok()) return writer->send(error_response(roles.status()));
  auto name = get_optional_string(*body, "name", "name");
  if (!name.is_ok()) return writer->send(error_response(name.status()));
  if (*name && (*name)->size() > 128) return writer->send(error_response(invalid_argument("name is too long", "name")));
  auto tenant = get_optional_string(*body, "tenant", "tenant");
  if (!tenant.is_ok()) return writer->send(error_response(tenant.status()));
  std::string target = tenant->value_or(who.tenant);
  if (!is_valid_subject(target)) return writer->send(error_response(invalid_argument("invalid tenant", "tenant")));
  if (!allowed(ctx, who, "apikey:write", "apikey:*", {{"user", *user}}, writer)) return;
  if (target != who.tenant && !(who.tenant == kSystemTenant && who.has_role("admin"))) {
    return writer->send(error_response(Status(Code::kPermissionDenied,
                                              "only admins of the system tenant issue keys for other tenants")));
  }
  std::vector<std::string> role_names = roles->empty() ? std::vector<std::string>{"member"} : *roles;
  IssuedApiKey issued = issue_api_key(target, *user, role_names, name->value_or(""), who.user_id, *ctx.random,
                                      *ctx.clock);
  json::object view = api_key_view(issued.record);
  view["token"] = issued.token;  // the only time it is shown
  WriteBatch batch;
  batch.audit_events.push_back(audit_event(who.tenant, issued.record.created_at_ms, who.label(), "apikey:create",
                                           "apikey:" + issued.record.id, "ok",
                                           {{"tenant", target}, {"user", *user}, {"roles", view["roles"]}}));
  batch.api_key_inserts.push_back(std::move(issued.record));
  answer_after_commit(ctx, std::move(batch), 201, std::move(view), writer);
}

void list_api_keys(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto keys = ctx.store->list_api_keys(caller(request).tenant);
  if (!keys.is_ok()) return writer->send(error_response(keys.status()));
  json::array data;
  for (const auto& key : *keys) data.push_back(api_key_view(key));
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)}}));
}

void revoke_api_key(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const Principal& who = caller(request);
  ApiKeyRecord revoke;
  revoke.tenant_id = who.tenant;
  revoke.id = params.at("id");
  revoke.revoked_at_ms = ctx.clock->now_ms();
  json::object view{{"object", "api_key"}, {"id", revoke.id}, {"revoked", true}};
  WriteBatch batch;
  batch.audit_events.push_back(audit_event(who.tenant, revoke.revoked_at_ms, who.label(), "apikey:revoke",
                                           "apikey:" + revoke.id, "ok"));
  batch.api_key_revokes.push_back(std::move(revoke));
  answer_after_commit(ctx, std::move(batch), 200, std::move(view), writer);
}

// ---- policy ----

json::object policy_view(const PolicyInForce& policy, const PolicyRecord* record) {
  return json::object{{"object", "policy"},
                      {"version", policy.version},
                      {"built_in", policy.version == 0},
                      {"document", policy.document->to_json()},
                      {"created_at_ms", record ? json::value(record->created_at_ms) : json::value(nullptr)},
                      {"created_by", record ? json::value(record->created_by) : json::value(nullptr)}};
}

void get_policy(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const Principal& who = caller(request);
  auto in_force = ctx.authorizer->policy_in_force(who.tenant);
  if (!in_force.is_ok()) return writer->send(error_response(in_force.status()));
  std::optional<PolicyRecord> record;
  if (in_force->version > 0) {
    auto stored = ctx.store->get_policy(who.tenant, in_force->version);
    if (stored.is_ok()) record = std::move(*stored);
  }
  writer->send(json_response(200, policy_view(*in_force, record ? &*record : nullptr)));
}

// The document is given as a JSON object or as YAML/JSON text.
Result<policy::PolicyDocument> document_from(const json::object& body) {
  auto found = body.find("document");
  if (found == body.end()) return invalid_argument("document is required", "document");
  if (found->value().is_string()) return policy::PolicyDocument::parse(found->value().as_string());
  if (found->value().is_object()) return policy::PolicyDocument::parse(to_json(found->value()));
  return invalid_argument("document must be an object or YAML text", "document");
}

void put_policy(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const Principal& who = caller(request);
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"document"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto document = document_from(*body);
  if (!document.is_ok()) return writer->send(error_response(document.status()));
  auto latest = ctx.store->get_policy(who.tenant, std::nullopt);
  if (!latest.is_ok() && latest.status().code() != Code::kNotFound) {
    return writer->send(error_response(latest.status()));
  }
  PolicyRecord record{who.tenant, latest.is_ok() ? latest->version + 1 : 1, to_json(document->to_json()),
                      ctx.clock->now_ms(), who.user_id};
  PolicyInForce in_force{record.version, std::make_shared<const policy::PolicyDocument>(std::move(*document))};
  json::object view = policy_view(in_force, &record);
  WriteBatch batch;
  batch.audit_events.push_back(audit_event(who.tenant, record.created_at_ms, who.label(), "policy:write",
                                           "policy:" + std::to_string(record.version), "ok",
                                           {{"version", record.version},
                                            {"document_hash", sha256_hex(record.document_json)}}));
  batch.policy_inserts.push_back(std::move(record));
  std::string tenant = who.tenant;
  ctx.store->commit(std::move(batch), [&ctx, tenant, view = std::move(view), writer](Status result) {
    ctx.loop->post([&ctx, tenant, view, writer, result] {
      ctx.authorizer->forget(tenant);
      if (result.code() == Code::kConflict) {
        return writer->send(error_response(conflict("the policy was changed concurrently; retry")));
      }
      writer->send(result.is_ok() ? json_response(201, view) : error_response(result));
    });
  });
}

void list_policy_versions(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto versions = ctx.store->list_policies(caller(request).tenant, kPolicyVersionsListed);
  if (!versions.is_ok()) return writer->send(error_response(versions.status()));
  json::array data;
  for (const auto& version : *versions) {
    data.push_back(json::object{{"object", "policy_version"}, {"version", version.version},
                                {"created_at_ms", version.created_at_ms}, {"created_by", version.created_by}});
  }
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)}}));
}

void get_policy_version(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const std::string& text = params.at("version");
  char* end = nullptr;
  long long version = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || version < 1) {
    return writer->send(error_response(not_found("policy version '" + text + "' not found")));
  }
  auto record = ctx.store->get_policy(caller(request).tenant, version);
  if (!record.is_ok()) return writer->send(error_response(record.status()));
  auto document = policy::PolicyDocument::parse(record->document_json);
  if (!document.is_ok()) return writer->send(error_response(internal_error(document.status().message())));
  PolicyInForce shown{record->version, std::make_shared<const policy::PolicyDocument>(std::move(*document))};
  writer->send(json_response(200, policy_view(shown, &*record)));
}

}  // namespace

void add_policy_test_route(Router& router, ApiContext& ctx);  // policy_test_handler.cpp

void add_governance_routes(Router& router, ApiContext& ctx) {
  router.add("POST", "/v1/api-keys", [&ctx](HttpRequest& r, const PathParams&, Writer w) { create_api_key(ctx, r, w); });
  router.add("GET", "/v1/api-keys", guarded(ctx, "apikey:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               list_api_keys(ctx, r, w);
             }));
  router.add("DELETE", "/v1/api-keys/{id}",
             guarded(ctx, "apikey:write", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
               revoke_api_key(ctx, r, p, w);
             }));
  router.add("GET", "/v1/policy", guarded(ctx, "policy:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               get_policy(ctx, r, w);
             }));
  router.add("PUT", "/v1/policy", guarded(ctx, "policy:write", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               put_policy(ctx, r, w);
             }));
  router.add("GET", "/v1/policy/versions",
             guarded(ctx, "policy:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               list_policy_versions(ctx, r, w);
             }));
  router.add("GET", "/v1/policy/versions/{version}",
             guarded(ctx, "policy:read", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
               get_policy_version(ctx, r, p, w);
             }));
  add_policy_test_route(router, ctx);
  router.add("POST", "/v1/identity/rotate",
             guarded(ctx, "identity:write", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               // One key set serves every tenant: only the system tenant rotates it.
               if (caller(r).tenant != kSystemTenant) {
                 return w->send(error_response(Status(Code::kPermissionDenied,
                                                      "only the system tenant rotates the identity keys")));
               }
               auto kid = ctx.tool_identity->rotate();
               if (!kid.is_ok()) return w->send(error_response(kid.status()));
               record_audit(ctx, audit_event(caller(r).tenant, ctx.clock->now_ms(), caller(r).label(),
                                             "identity:rotate", "identity:" + *kid, "ok"));
               w->send(json_response(200, json::object{{"object", "identity_key"}, {"kid", *kid}, {"current", true}}));
             }));
}

}  // namespace continuum
