// Administration routes: encryption keys (list, never their material;
// rotate; destroy = crypto-shredding; keys are the tenant's) and the cluster.
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

void list_keys(ApiContext& ctx, Writer writer) {
  if (Status on = require_encryption(ctx); !on.is_ok()) return writer->send(error_response(on));
  auto keys = ctx.store->list_data_keys(ctx.tenant);
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
  auto report = ctx.keyring->rotate(ctx.tenant);
  if (!report.is_ok()) return writer->send(error_response(report.status()));
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
  if (*tenant && **tenant != ctx.tenant) return writer->send(error_response(not_found("tenant '" + **tenant + "' not found")));
  auto report = ctx.keyring->shred(ctx.tenant, *user ? "user:" + **user : "");
  if (!report.is_ok()) return writer->send(error_response(report.status()));
  json::array destroyed;
  for (const auto& key : report->destroyed) destroyed.push_back(key_view(key));
  writer->send(json_response(200, json::object{{"object", "key_shred"},
                                               {"destroyed_count", static_cast<int64_t>(report->destroyed.size())},
                                               {"destroyed", std::move(destroyed)}}));
}

}  // namespace

void add_key_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/keys", [&ctx](HttpRequest&, const PathParams&, Writer w) { list_keys(ctx, w); });
  router.add("POST", "/v1/keys/rotate", [&ctx](HttpRequest& r, const PathParams&, Writer w) { rotate_keys(ctx, r, w); });
  router.add("POST", "/v1/keys/shred", [&ctx](HttpRequest& r, const PathParams&, Writer w) { shred_keys(ctx, r, w); });
}

void add_cluster_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/cluster", [&ctx](HttpRequest&, const PathParams&, Writer writer) {
    auto view = ctx.cluster->describe();
    writer->send(view.is_ok() ? json_response(200, *view) : error_response(view.status()));
  });
}

}  // namespace continuum
