#include "api/access.h"

#include "api/errors.h"
#include "audit/audit_log.h"
#include "auth/authorizer.h"
#include "core/log.h"
#include "crypto/hash.h"

namespace continuum {

const Principal& caller(const HttpRequest& request) {
  // server_app.cpp authenticates every routed request before dispatch; a
  // handler reached without a principal is a wiring bug.
  static const Principal kNobody{"", "", {}, ""};
  if (!request.context) return kNobody;
  return *static_cast<const Principal*>(request.context.get());
}

namespace {

Result<policy::Decision> decide(ApiContext& ctx, const Principal& who, const std::string& action,
                                const std::string& resource, json::object resource_fields, bool audited) {
  if (who.tenant.empty()) return Status(Code::kUnauthenticated, "missing or invalid API key");
  size_t colon = resource.find(':');
  resource_fields["type"] = colon == std::string::npos ? resource : resource.substr(0, colon);
  resource_fields["id"] = colon == std::string::npos ? "" : resource.substr(colon + 1);
  policy::Request request;
  request.explain = false;  // deciding only
  request.identities = who.identities();
  request.action = action;
  request.resource = resource;
  request.context = api_request_context(who, std::move(resource_fields));
  request.context["action"] = action;
  ASSIGN_OR_RETURN(auto decision, ctx.authorizer->decide(who.tenant, request));
  bool allow = decision.effect == policy::Effect::kAllow;
  if (audited && audit_api_decision(action, allow, ctx.audit_reads)) {
    json::object details{{"statement", decision.statement_id},
                         {"inputs_hash", sha256_hex(policy::canonical_request_json(request))},
                         {"credential", who.credential}};
    record_audit(ctx, audit_event(who.tenant, ctx.clock->now_ms(), who.label(), action, resource,
                                  policy::effect_name(decision.effect), std::move(details)));
  }
  return decision;
}

}  // namespace

Result<bool> permits(ApiContext& ctx, const Principal& who, const std::string& action, const std::string& resource,
                     json::object resource_fields) {
  ASSIGN_OR_RETURN(auto decision, decide(ctx, who, action, resource, std::move(resource_fields), /*audited=*/false));
  return decision.effect == policy::Effect::kAllow;
}

bool allowed(ApiContext& ctx, const Principal& who, const std::string& action, const std::string& resource,
             json::object resource_fields, const std::shared_ptr<ResponseWriter>& writer) {
  auto decision = decide(ctx, who, action, resource, std::move(resource_fields), /*audited=*/true);
  if (!decision.is_ok()) {
    writer->send(error_response(decision.status()));
    return false;
  }
  if (decision->effect == policy::Effect::kAllow) return true;
  std::string why;
  if (decision->effect == policy::Effect::kRequireApproval) {
    why = " (statement '" + decision->statement_id + "' requires approval, which applies only to effects in runs)";
  } else if (!decision->statement_id.empty()) {
    why = " (denied by statement '" + decision->statement_id + "')";
  }
  writer->send(error_response(
      Status(Code::kPermissionDenied, "'" + who.user_id + "' may not " + action + " on " + resource + why)));
  return false;
}

namespace {

void commit_audit(ApiContext& ctx, std::vector<AuditEventRecord> events) {
  if (events.empty()) return;
  WriteBatch batch;
  batch.audit_events = std::move(events);
  ctx.store->commit(std::move(batch), [](Status status) {
    if (!status.is_ok()) log::error("cannot append an audit event", {{"error", status.to_string()}});
  });
}

}  // namespace

void record_audit(ApiContext& ctx, AuditEventRecord event) {
  if (ctx.loop == nullptr) return commit_audit(ctx, {std::move(event)});
  ctx.pending_audit.push_back(std::move(event));
  if (ctx.pending_audit.size() > 1) return;  // a flush is already posted
  ctx.loop->post([&ctx] { commit_audit(ctx, take_pending_audit(ctx)); });
}

std::vector<AuditEventRecord> take_pending_audit(ApiContext& ctx) {
  std::vector<AuditEventRecord> events = std::move(ctx.pending_audit);
  ctx.pending_audit.clear();
  return events;
}

void take_pending_audit(ApiContext& ctx, WriteBatch& batch) {
  for (auto& event : take_pending_audit(ctx)) batch.audit_events.push_back(std::move(event));
}

RouteHandler guarded(ApiContext& ctx, std::string action, RouteHandler handler) {
  return [&ctx, action = std::move(action), handler = std::move(handler)](
             HttpRequest& request, const PathParams& params, std::shared_ptr<ResponseWriter> writer) {
    std::string type = action.substr(0, action.find(':'));
    std::string resource = type + ":" + (params.empty() ? std::string("*") : params.begin()->second);
    if (!allowed(ctx, caller(request), action, resource, {}, writer)) return;
    handler(request, params, std::move(writer));
  };
}

std::optional<SessionRecord> authorized_session(ApiContext& ctx, const Principal& who, const std::string& id,
                                                const std::string& action,
                                                const std::shared_ptr<ResponseWriter>& writer) {
  auto session = ctx.store->get_session(who.tenant, id);
  if (!session.is_ok()) {
    writer->send(error_response(session.status()));
    return std::nullopt;
  }
  json::object fields{{"owner", session->user_id}, {"agent", session->agent_name}};
  if (!allowed(ctx, who, action, "session:" + session->id, std::move(fields), writer)) return std::nullopt;
  return std::move(*session);
}

std::optional<RunRecord> authorized_run(ApiContext& ctx, const Principal& who, const std::string& id,
                                        const std::string& action, const std::shared_ptr<ResponseWriter>& writer) {
  auto run = ctx.store->get_run(who.tenant, id);
  if (!run.is_ok()) {
    writer->send(error_response(run.status()));
    return std::nullopt;
  }
  auto session = ctx.store->get_session(who.tenant, run->session_id);
  std::string owner = session.is_ok() ? session->user_id : "";
  json::object fields{{"owner", owner}, {"agent", run->agent_name}, {"session", run->session_id}};
  if (!allowed(ctx, who, action, "run:" + run->id, std::move(fields), writer)) return std::nullopt;
  return std::move(*run);
}

}  // namespace continuum
