// Administration routes: encryption keys (list, never their material;
// rotate; destroy = crypto-shredding; keys are the tenant's), the cluster,
// and the vault of tool credentials (values are write-only).
#include "api/access.h"
#include "audit/audit_log.h"
#include "api/errors.h"
#include "api/handlers.h"
#include "core/json.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;

json::object key_view(const DataKeyRecord& key) {
  return json::object{{"object", "data_key"},
                      {"tenant", key.tenant_id},
                      {"scope", key.scope},
                      {"version", key.version},
                      {"kek_version", key.kek_version},
                      {"state", key.wrapped_key.empty() ? "destroyed" : "active"},
                      {"created_at_ms", key.created_at_ms},
                      {"destroyed_at_ms", key.destroyed_at_ms ? json::value(key.destroyed_at_ms) : json::value(nullptr)}};
}

Status require_encryption(const ApiContext& ctx) {
  if (ctx.keyring == nullptr) return conflict("encryption at rest is off on this server");
  return Status::ok();
}

void list_keys(ApiContext& ctx, HttpRequest& request, Writer writer) {
  if (Status on = require_encryption(ctx); !on.is_ok()) return writer->send(error_response(on));
  auto keys = ctx.store->list_data_keys(caller(request).tenant);
  if (!keys.is_ok()) return writer->send(error_response(keys.status()));
  json::array data;
  for (const auto& key : *keys) data.push_back(key_view(key));
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)}}));
}

void rotate_keys(ApiContext& ctx, HttpRequest& request, Writer writer) {
  if (Status on = require_encryption(ctx); !on.is_ok()) return writer->send(error_response(on));
  auto body = parse_json_object(request.body.empty() ? "{}" : request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto report = ctx.keyring->rotate(caller(request).tenant);
  if (!report.is_ok()) return writer->send(error_response(report.status()));
  record_audit(ctx, audit_event(caller(request).tenant, ctx.clock->now_ms(), caller(request).label(), "key:rotate",
                                "key:*", "ok", {{"kek_version", report->kek_version}}));
  writer->send(json_response(200, json::object{{"object", "key_rotation"},
                                               {"kek_version", report->kek_version},
                                               {"data_keys_created", report->data_keys_created},
                                               {"data_keys_rewrapped", report->data_keys_rewrapped}}));
}

// Body: {"user": ID} destroys that end user's keys; {"tenant": ID} every key
// of the tenant. Exactly one of them.
void shred_keys(ApiContext& ctx, HttpRequest& request, Writer writer) {
  if (Status on = require_encryption(ctx); !on.is_ok()) return writer->send(error_response(on));
  auto body = parse_json_object(request.body.empty() ? "{}" : request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"user", "tenant"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto user = get_optional_string(*body, "user", "user");
  if (!user.is_ok()) return writer->send(error_response(user.status()));
  auto tenant = get_optional_string(*body, "tenant", "tenant");
  if (!tenant.is_ok()) return writer->send(error_response(tenant.status()));
  if (user->has_value() == tenant->has_value() || (*user && (*user)->empty())) {
    return writer->send(error_response(invalid_argument("give exactly one of user or tenant", "user")));
  }
  const std::string& own_tenant = caller(request).tenant;
  if (*tenant && **tenant != own_tenant) {
    return writer->send(error_response(not_found("tenant '" + **tenant + "' not found")));
  }
  auto report = ctx.keyring->shred(own_tenant, *user ? "user:" + **user : "");
  if (!report.is_ok()) return writer->send(error_response(report.status()));
  record_audit(ctx, audit_event(own_tenant, ctx.clock->now_ms(), caller(request).label(), "key:shred",
                                *user ? "key:user:" + **user : "key:*", "ok",
                                {{"destroyed_count", static_cast<int64_t>(report->destroyed.size())}}));
  json::array destroyed;
  for (const auto& key : report->destroyed) destroyed.push_back(key_view(key));
  writer->send(json_response(200, json::object{{"object", "key_shred"},
                                               {"destroyed_count", static_cast<int64_t>(report->destroyed.size())},
                                               {"destroyed", std::move(destroyed)}}));
}

}  // namespace

void add_key_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/keys", guarded(ctx, "key:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               list_keys(ctx, r, w);
             }));
  router.add("POST", "/v1/keys/rotate", guarded(ctx, "key:write", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               rotate_keys(ctx, r, w);
             }));
  router.add("POST", "/v1/keys/shred", guarded(ctx, "key:write", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               shred_keys(ctx, r, w);
             }));
}

void add_cluster_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/cluster", guarded(ctx, "cluster:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               // Nodes and leases of every tenant: the system tenant's business only.
               if (caller(r).tenant != kSystemTenant) {
                 return w->send(error_response(not_found("no route for GET /v1/cluster")));
               }
               auto view = ctx.cluster->describe();
               w->send(view.is_ok() ? json_response(200, *view) : error_response(view.status()));
             }));
}

namespace {

constexpr size_t kSecretValueBytesMax = 16 * 1024;

json::object secret_view(const SecretRecord& secret) {
  return json::object{{"object", "secret"}, {"name", secret.name}, {"created_at_ms", secret.created_at_ms},
                      {"updated_at_ms", secret.updated_at_ms}};
}

bool is_valid_secret_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void put_secret(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const std::string& name = params.at("name");
  if (!is_valid_secret_name(name)) {
    return writer->send(error_response(invalid_argument("a secret name is 1-64 characters of [A-Za-z0-9_-]", "name")));
  }
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"value"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto value = get_string(*body, "value", "value");
  if (!value.is_ok()) return writer->send(error_response(value.status()));
  // At least 8 bytes: a shorter value could not be told apart from ordinary
  // text when it is blanked out of tool answers.
  if (value->size() < 8 || value->size() > kSecretValueBytesMax ||
      value->find_first_of("\r\n") != std::string::npos) {
    return writer->send(error_response(invalid_argument("value must be 8-16384 bytes without line breaks", "value")));
  }
  int64_t now = ctx.clock->now_ms();
  const std::string& tenant = caller(request).tenant;
  auto existing = ctx.store->list_secrets(tenant);
  if (!existing.is_ok()) return writer->send(error_response(existing.status()));
  SecretRecord secret{tenant, name, std::move(*value), now, now};
  for (const auto& other : *existing) {
    if (other.name == name) secret.created_at_ms = other.created_at_ms;
  }
  WriteBatch batch;
  batch.secret_upserts.push_back(secret);
  batch.audit_events.push_back(audit_event(tenant, now, caller(request).label(), "secret:write", "secret:" + name, "ok"));
  secret.value.clear();  // the response never carries it
  ctx.store->commit(std::move(batch), [&ctx, secret, writer](Status status) {
    ctx.loop->post([secret, writer, status] {
      writer->send(status.is_ok() ? json_response(200, secret_view(secret)) : error_response(status));
    });
  });
}

void list_secrets(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto secrets = ctx.store->list_secrets(caller(request).tenant);
  if (!secrets.is_ok()) return writer->send(error_response(secrets.status()));
  json::array data;
  for (const auto& secret : *secrets) data.push_back(secret_view(secret));
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)}}));
}

void get_secret(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto secrets = ctx.store->list_secrets(caller(request).tenant);  // metadata only: the value is never read here
  if (!secrets.is_ok()) return writer->send(error_response(secrets.status()));
  for (const auto& secret : *secrets) {
    if (secret.name == params.at("name")) return writer->send(json_response(200, secret_view(secret)));
  }
  writer->send(error_response(not_found("secret '" + params.at("name") + "' not found")));
}

void delete_secret(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  WriteBatch batch;
  batch.secret_deletes.push_back(SecretRecord{caller(request).tenant, params.at("name"), "", 0, 0});
  batch.audit_events.push_back(audit_event(caller(request).tenant, ctx.clock->now_ms(), caller(request).label(),
                                           "secret:delete", "secret:" + params.at("name"), "ok"));
  std::string name = params.at("name");
  ctx.store->commit(std::move(batch), [&ctx, name, writer](Status status) {
    ctx.loop->post([name, writer, status] {
      writer->send(status.is_ok() ? json_response(200, json::object{{"object", "secret"}, {"name", name},
                                                                    {"deleted", true}})
                                  : error_response(status));
    });
  });
}

}  // namespace

void add_secret_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/secrets", guarded(ctx, "secret:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               list_secrets(ctx, r, w);
             }));
  router.add("PUT", "/v1/secrets/{name}",
             guarded(ctx, "secret:write", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
               put_secret(ctx, r, p, w);
             }));
  router.add("GET", "/v1/secrets/{name}",
             guarded(ctx, "secret:read", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
               get_secret(ctx, r, p, w);
             }));
  router.add("DELETE", "/v1/secrets/{name}",
             guarded(ctx, "secret:write", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
               delete_secret(ctx, r, p, w);
             }));
}

}  // namespace continuum
