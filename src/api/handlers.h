// The native REST API handlers (docs/api.md). All run on the loop thread.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "api/router.h"
#include "auth/authorizer.h"
#include "auth/tool_identity.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "crypto/keyring.h"
#include "store/store.h"

namespace continuum {

class McpHub;
class McpToolPins;

struct ApiContext {
  Store* store = nullptr;
  Keyring* keyring = nullptr;  // null when encryption at rest is off
  Cluster* cluster = nullptr;
  Engine* engine = nullptr;
  EventLoop* loop = nullptr;
  const Clock* clock = nullptr;
  Random* random = nullptr;
  Authorizer* authorizer = nullptr;
  ToolIdentity* tool_identity = nullptr;
  McpHub* mcp = nullptr;
  McpToolPins* mcp_pins = nullptr;
  std::string public_url;             // where people and OAuth servers reach this server (redirect URIs)
  std::vector<AuditEventRecord> pending_audit;  // API decisions waiting for the handler's write (record_audit)
  bool approvals_allow_self = false;  // may a requesting user decide their own approval
  bool audit_reads = false;           // record allowed reads in the audit log too
  int64_t sse_keepalive_ms = 15'000;
  size_t sse_queued_bytes_max = 8 * 1024 * 1024;

  // Exchanges held open (wait:true, SSE) register how to end themselves, so a
  // shutdown answers them instead of dropping the connection.
  int64_t add_shutdown_hook(std::function<void()> hook);
  void remove_shutdown_hook(int64_t token);
  void run_shutdown_hooks();

 private:
  std::map<int64_t, std::function<void()>> shutdown_hooks_;
  int64_t next_hook_token_ = 1;
};

void add_agent_routes(Router& router, ApiContext& context);
void add_session_routes(Router& router, ApiContext& context);
void add_run_routes(Router& router, ApiContext& context);
// GET /v1/cluster: the nodes sharing the store and what they own (admin_handlers.cpp).
void add_cluster_routes(Router& router, ApiContext& context);
// The vault: PUT/GET/DELETE /v1/secrets/{name}, GET /v1/secrets; values are
// write-only (admin_handlers.cpp).
void add_secret_routes(Router& router, ApiContext& context);
// GET /v1/keys, POST /v1/keys/rotate, POST /v1/keys/shred (admin_handlers.cpp).
void add_key_routes(Router& router, ApiContext& context);
// API keys (/v1/api-keys) and the tenant's policy (/v1/policy...)
// (governance_handlers.cpp).
void add_governance_routes(Router& router, ApiContext& context);
// /v1/approvals... (approval_handlers.cpp).
void add_approval_routes(Router& router, ApiContext& context);
// /v1/audit, /v1/audit/export, /v1/audit/verify (audit_handlers.cpp).
void add_audit_routes(Router& router, ApiContext& context);
// /v1/mcp/servers..., /v1/mcp/pins (mcp_handlers.cpp).
void add_mcp_routes(Router& router, ApiContext& context);
// OAuth of http MCP servers: authorize, authorization (GET/DELETE)
// (mcp_oauth_handlers.cpp).
void add_mcp_oauth_routes(Router& router, ApiContext& context);
// GET /v1/mcp/oauth/callback: where the authorization server sends the
// person back. Public: the unguessable, single-use state authenticates it.
constexpr const char* kMcpOAuthCallbackPath = "/v1/mcp/oauth/callback";
void handle_mcp_oauth_callback(ApiContext& context, HttpRequest& request, std::shared_ptr<ResponseWriter> writer);
// GET /v1/runs/{id}/events (sse.cpp).
void add_event_routes(Router& router, ApiContext& context);

// The public JSON view of a run (status, output, error, usage, ...).
json::object run_view(const RunRecord& run);

// Calls `then(true, ...)` once the run is terminal (or an event of it
// satisfies `or_when`), or `then(false, nullptr)` at the timeout or at
// shutdown, whichever comes first (once). For requests that wait for a run's
// end (it may execute on another node). `final_run` is the run as it ended
// when this node ran it to its end (RunEvent::final_run), else null: read it.
void when_run_ends(ApiContext& ctx, const std::string& tenant, const std::string& run_id, int64_t timeout_ms,
                   std::function<void(bool ended, std::shared_ptr<const RunRecord> final_run)> then,
                   std::function<bool(const RunEvent&)> or_when = nullptr);

// Deletes a session with its items, runs and journals, audited; 409 while a
// run of it is unfinished. Answers {id, object, deleted: true} ("session",
// or "<object>.deleted", e.g. "conversation.deleted").
void delete_idle_session(ApiContext& ctx, const Principal& who, const SessionRecord& session,
                         const std::string& object, std::shared_ptr<ResponseWriter> writer);

// Writes an SSE comment every sse_keepalive_ms while the stream is open
// (sse.cpp).
void keep_sse_alive(ApiContext& ctx, std::weak_ptr<ResponseWriter> writer);

// Deletes a finished run and its journal (run:delete; 409 while it runs),
// audited; its session's items stay. Answers {id, object, deleted: true}
// (handlers.cpp; DELETE /v1/runs/{id} and DELETE /v1/responses/{id}).
void delete_finished_run(ApiContext& ctx, const HttpRequest& request, const std::string& run_id,
                         const std::string& object, std::shared_ptr<ResponseWriter> writer);

// Decides pending approval `id` as `who`, with the checks of POST
// /v1/approvals/{id}/approve|deny (approval:decide on its tool, not one's own
// request, still pending, run not ended); records it with its audit event and
// wakes the run. `done` gets the decided approval or the error
// (approval_handlers.cpp).
void decide_approval_as(ApiContext& ctx, const Principal& who, const std::string& id, bool approve,
                        std::string comment, std::function<void(Result<ApprovalRecord>)> done);

// /v1/responses... (responses_handlers.cpp) and /v1/conversations...
// (conversations_handlers.cpp): the OpenAI-compatible API.
void add_response_routes(Router& router, ApiContext& context);
void add_conversation_routes(Router& router, ApiContext& context);

}  // namespace continuum
