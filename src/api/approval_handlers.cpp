// Human approvals: list, show, approve, deny (docs/api.md "Approvals").
//
// Reading or deciding an approval is checked as approval:read /
// approval:decide on "tool:<name>" (the held call's tool), with the
// requesting end user as resource.owner. By default nobody decides their own
// request (separation of duties; config approvals_allow_self). A decision is
// recorded at most once: a second one, or one after expiry, is 409.
#include "api/access.h"
#include "audit/audit_log.h"
#include "api/errors.h"
#include "api/handlers.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;
constexpr size_t kCommentBytesMax = 4096;

json::object approval_view(const ApprovalRecord& approval, int64_t now_ms) {
  auto arguments = parse_json(approval.arguments_json);
  bool expired = approval.status == kApprovalPending && now_ms >= approval.expires_at_ms;
  auto optional_text = [](const std::string& text) { return text.empty() ? json::value(nullptr) : json::value(text); };
  return json::object{{"object", "approval"},
                      {"id", approval.id},
                      {"run_id", approval.run_id},
                      {"session_id", approval.session_id},
                      {"seq", approval.seq},
                      {"tool", approval.tool},
                      {"arguments", arguments.is_ok() ? *arguments : json::value(nullptr)},
                      {"arguments_hash", approval.arguments_hash},
                      {"statement", approval.statement},
                      {"requested_by", optional_text(approval.requested_by)},
                      {"agent", approval.agent},
                      {"status", expired ? kApprovalExpired : approval.status},
                      {"created_at_ms", approval.created_at_ms},
                      {"expires_at_ms", approval.expires_at_ms},
                      {"decided_at_ms", approval.decided_at_ms ? json::value(approval.decided_at_ms) : json::value(nullptr)},
                      {"decided_by", optional_text(approval.decided_by)},
                      {"comment", optional_text(approval.comment)}};
}

json::object approval_fields(const ApprovalRecord& approval) {
  return json::object{{"owner", approval.requested_by}, {"agent", approval.agent}, {"approval", approval.id},
                      {"run", approval.run_id}};
}

void list_approvals(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const Principal& who = caller(request);
  std::string status = request.query_param("status");
  if (!status.empty() && status != kApprovalPending && status != kApprovalApproved && status != kApprovalDenied &&
      status != kApprovalExpired && status != kApprovalWithdrawn) {
    return writer->send(error_response(
        invalid_argument("status must be pending, approved, denied, expired or withdrawn", "status")));
  }
  std::string limit_text = request.has_query_param("limit") ? request.query_param("limit") : "50";
  char* end = nullptr;
  long limit = std::strtol(limit_text.c_str(), &end, 10);
  if (limit_text.empty() || *end != '\0' || limit < 1 || limit > 1000) {
    return writer->send(error_response(invalid_argument("limit must be an integer between 1 and 1000", "limit")));
  }
  int64_t now = ctx.clock->now_ms();
  auto approvals = ctx.store->list_approvals(who.tenant, status, now, request.query_param("after"),
                                             static_cast<int>(limit) + 1);
  if (!approvals.is_ok()) return writer->send(error_response(approvals.status()));
  bool has_more = approvals->size() > static_cast<size_t>(limit);
  if (has_more) approvals->pop_back();
  json::array data;
  for (const auto& approval : *approvals) {
    auto visible = permits(ctx, who, "approval:read", "tool:" + approval.tool, approval_fields(approval));
    if (!visible.is_ok()) return writer->send(error_response(visible.status()));
    if (*visible) data.push_back(approval_view(approval, now));
  }
  json::value next = has_more ? json::value(approvals->back().id) : json::value(nullptr);
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)},
                                               {"has_more", has_more}, {"next_cursor", next}}));
}

std::optional<ApprovalRecord> authorized_approval(ApiContext& ctx, const Principal& who, const std::string& id,
                                                  const std::string& action, const Writer& writer) {
  auto approval = ctx.store->get_approval(who.tenant, id);
  if (!approval.is_ok()) {
    writer->send(error_response(approval.status()));
    return std::nullopt;
  }
  if (!allowed(ctx, who, action, "tool:" + approval->tool, approval_fields(*approval), writer)) return std::nullopt;
  return std::move(*approval);
}

void get_approval(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto approval = authorized_approval(ctx, caller(request), params.at("id"), "approval:read", writer);
  if (approval) writer->send(json_response(200, approval_view(*approval, ctx.clock->now_ms())));
}

Status check_decidable(ApiContext& ctx, const Principal& who, const ApprovalRecord& approval) {
  if (!ctx.approvals_allow_self && !approval.requested_by.empty() && approval.requested_by == who.user_id) {
    return Status(Code::kPermissionDenied, "the requesting user may not decide their own approval");
  }
  if (approval.status != kApprovalPending) return conflict("approval " + approval.id + " is already " + approval.status);
  if (ctx.clock->now_ms() >= approval.expires_at_ms) return conflict("approval " + approval.id + " has expired");
  auto run = ctx.store->get_run(who.tenant, approval.run_id);
  if (run.is_ok() && is_terminal_status(run->status)) {
    return conflict("the run of approval " + approval.id + " has ended (" + run->status + ")");
  }
  return Status::ok();
}

// Records the decision with its audit event and wakes the run (on any node).
void commit_decision(ApiContext& ctx, const Principal& who, ApprovalRecord approval, const std::string& decision,
                     std::string comment, std::function<void(Result<ApprovalRecord>)> done) {
  ApprovalRecord decided = std::move(approval);
  decided.status = decision;
  decided.decided_at_ms = ctx.clock->now_ms();
  decided.decided_by = who.user_id;
  decided.comment = std::move(comment);
  WriteBatch batch;
  batch.approval_decisions.push_back(decided);
  batch.audit_events.push_back(audit_event(who.tenant, decided.decided_at_ms, who.label(), "approval:decide",
                                           "tool:" + decided.tool, decision,
                                           {{"approval_id", decided.id}, {"arguments_hash", decided.arguments_hash},
                                            {"requested_by", decided.requested_by}},
                                           decided.run_id));
  ctx.store->commit(std::move(batch), [&ctx, decided, done = std::move(done)](Status result) mutable {
    ctx.loop->post([&ctx, decided, done = std::move(done), result] {
      if (result.code() == Code::kConflict) {
        return done(conflict("approval " + decided.id + " was decided or expired meanwhile"));
      }
      if (!result.is_ok()) return done(result);
      ctx.engine->approval_decided(decided.tenant_id, decided.run_id);
      done(decided);
    });
  });
}

void decide_approval(ApiContext& ctx, HttpRequest& request, const PathParams& params, const char* decision,
                     Writer writer) {
  auto body = parse_json_object(request.body.empty() ? "{}" : request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"comment"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto comment = get_optional_string(*body, "comment", "comment");
  if (!comment.is_ok()) return writer->send(error_response(comment.status()));
  if (*comment && (*comment)->size() > kCommentBytesMax) {
    return writer->send(error_response(invalid_argument("comment must be at most 4096 bytes", "comment")));
  }
  const Principal& who = caller(request);
  auto approval = authorized_approval(ctx, who, params.at("id"), "approval:decide", writer);
  if (!approval) return;
  if (Status decidable = check_decidable(ctx, who, *approval); !decidable.is_ok()) {
    return writer->send(error_response(decidable));
  }
  commit_decision(ctx, who, std::move(*approval), decision, comment->value_or(""),
                  [&ctx, writer](Result<ApprovalRecord> decided) {
                    if (!decided.is_ok()) return writer->send(error_response(decided.status()));
                    writer->send(json_response(200, approval_view(*decided, ctx.clock->now_ms())));
                  });
}

}  // namespace

void decide_approval_as(ApiContext& ctx, const Principal& who, const std::string& id, bool approve,
                        std::string comment, std::function<void(Result<ApprovalRecord>)> done) {
  auto approval = ctx.store->get_approval(who.tenant, id);
  if (!approval.is_ok()) return done(approval.status());
  auto permitted = permits(ctx, who, "approval:decide", "tool:" + approval->tool, approval_fields(*approval));
  if (!permitted.is_ok()) return done(permitted.status());
  if (!*permitted) {
    return done(Status(Code::kPermissionDenied, "policy does not allow approval:decide on tool:" + approval->tool));
  }
  if (Status decidable = check_decidable(ctx, who, *approval); !decidable.is_ok()) return done(decidable);
  commit_decision(ctx, who, std::move(*approval), approve ? kApprovalApproved : kApprovalDenied, std::move(comment),
                  std::move(done));
}

void add_approval_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/approvals", [&ctx](HttpRequest& r, const PathParams&, Writer w) { list_approvals(ctx, r, w); });
  router.add("GET", "/v1/approvals/{id}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { get_approval(ctx, r, p, w); });
  router.add("POST", "/v1/approvals/{id}/approve", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
    decide_approval(ctx, r, p, kApprovalApproved, w);
  });
  router.add("POST", "/v1/approvals/{id}/deny", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
    decide_approval(ctx, r, p, kApprovalDenied, w);
  });
}

}  // namespace continuum
