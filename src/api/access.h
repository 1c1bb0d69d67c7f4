// Authorization in the API: who is calling, and whether policy lets them.
//
// Every handler names the action it performs (docs/policy.md lists them) and
// checks it here before touching anything. Tenant scoping needs no check: the
// tenant comes from the caller's credential and every store query takes it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "api/handlers.h"
#include "auth/principal.h"
#include "store/records.h"

namespace continuum {

// The principal authentication attached to the request (server_app.cpp).
const Principal& caller(const HttpRequest& request);

// True if policy allows `action` on `resource` for `who`; otherwise answers
// the request (403, or 500 when the policy cannot be read) and returns false.
// `resource_fields` describes the resource to `when` expressions
// ({owner, agent, ...}); type and id are added from `resource`.
bool allowed(ApiContext& ctx, const Principal& who, const std::string& action, const std::string& resource,
             json::object resource_fields, const std::shared_ptr<ResponseWriter>& writer);

// Whether policy allows it, without answering the request (for choosing
// between views, e.g. everyone's sessions or only the caller's).
Result<bool> permits(ApiContext& ctx, const Principal& who, const std::string& action, const std::string& resource,
                     json::object resource_fields);

// Records an API decision (fire and forget; a failure is logged). The event waits (on the loop) for the handler's own
// write, which takes it with take_pending_audit, so the decision and what it
// allowed share one commit (one fsync); whatever no write took is committed
// on its own once the handler has returned.
void record_audit(ApiContext& ctx, AuditEventRecord event);
// Moves the audit events recorded but not yet written into `batch`.
void take_pending_audit(ApiContext& ctx, WriteBatch& batch);
std::vector<AuditEventRecord> take_pending_audit(ApiContext& ctx);

// Wraps a route handler with a check of `action` on the route's resource:
// "<type>:<path param>" when the route has one ("secret:crm" for
// /v1/secrets/{name}), else "<type>:*", where type is the action's prefix.
RouteHandler guarded(ApiContext& ctx, std::string action, RouteHandler handler);

// Loads a session of the caller's tenant and checks `action` on it (the owner
// is its end user). Answers the request itself and returns nothing on failure.
std::optional<SessionRecord> authorized_session(ApiContext& ctx, const Principal& who, const std::string& id,
                                                const std::string& action,
                                                const std::shared_ptr<ResponseWriter>& writer);
// The same for a run: its owner is the end user of its session.
std::optional<RunRecord> authorized_run(ApiContext& ctx, const Principal& who, const std::string& id,
                                        const std::string& action, const std::shared_ptr<ResponseWriter>& writer);

}  // namespace continuum
