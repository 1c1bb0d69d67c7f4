// Human approvals of tool calls: a call that policy holds is parked durably
// (an approval record and an approval_requested step, in one transaction);
// the run waits, holding its session, until the approval is decided through
// the API or expires; the decision is journaled (approval_decided) before the
// call runs with exactly the approved arguments, or the model is told no.
#include "core/log.h"
#include "crypto/hash.h"
#include "engine/engine_internal.h"

namespace continuum {

namespace {

std::string approval_id_for(const std::string& tenant, const std::string& run_id, int64_t seq) {
  // One approval per call, whatever happens between asking and recording.
  return "apr_" + sha256_hex(tenant + "/" + run_id + "/" + std::to_string(seq)).substr(0, 24);
}

std::string denial_text(const ApprovalRecord* approval, const std::string& decision) {
  if (decision == kApprovalExpired) return "error: the call needed an approval, which expired before anyone decided";
  std::string text = "error: the call was not approved";
  if (approval != nullptr && !approval->decided_by.empty()) text += " (denied by " + approval->decided_by;
  if (approval != nullptr && !approval->comment.empty()) text += ": " + approval->comment;
  if (approval != nullptr && !approval->decided_by.empty()) text += ")";
  return text;
}

}  // namespace

bool Engine::settle_approval(ActiveRun& run, const PendingTool& tool) {
  const ApprovalState& state = run.projected.approvals.at(tool.seq);
  if (state.decision.empty()) {  // waiting: look now, then keep looking
    check_approval(run.record.id, run.generation, tool.seq, /*keep_polling=*/true);
    return false;
  }
  std::string arguments = tool.arguments.empty() ? "{}" : tool.arguments;
  if (state.decision == kApprovalApproved && sha256_hex(arguments) == state.arguments_hash) return true;
  if (state.decision == kApprovalApproved) {
    commit_tool_result(run, tool, "error: the call's arguments differ from the approved ones", true, 0, true);
    return false;
  }
  auto approval = store_.get_approval(run.record.tenant_id, state.approval_id);
  commit_tool_result(run, tool, denial_text(approval.is_ok() ? &*approval : nullptr, state.decision), true, 0, true);
  return false;
}

void Engine::request_approval(ActiveRun& run, const PendingTool& tool, const EffectVerdict& verdict) {
  int64_t now = clock_.now_ms();
  ApprovalRecord approval;
  approval.tenant_id = run.record.tenant_id;
  approval.id = approval_id_for(run.record.tenant_id, run.record.id, tool.seq);
  approval.run_id = run.record.id;
  approval.session_id = run.record.session_id;
  approval.seq = tool.seq;
  approval.tool = tool.name;
  approval.arguments_json = tool.arguments.empty() ? "{}" : tool.arguments;
  approval.arguments_hash = sha256_hex(approval.arguments_json);
  approval.statement = verdict.statement;
  approval.requested_by = run.session_user.value_or("");
  approval.agent = run.record.agent_name;
  approval.created_at_ms = now;
  approval.expires_at_ms = now + options_.approval_ttl_ms;
  json::object payload{{"approval_id", approval.id},        {"tool_seq", tool.seq},
                       {"call_id", tool.call_id},           {"tool", tool.name},
                       {"arguments_hash", approval.arguments_hash}, {"statement", verdict.statement},
                       {"reason", verdict.reason},          {"requested_by", approval.requested_by},
                       {"agent", approval.agent},           {"expires_at_ms", approval.expires_at_ms}};
  StepRecord step{run.record.tenant_id, run.record.id, run.projected.next_seq, kStepApprovalRequested,
                  to_json(payload), now};
  WriteBatch extra;
  extra.approval_inserts.push_back(approval);
  int64_t seq = tool.seq;
  log::info("tool call waits for an approval", {{"run_id", run.record.id}, {"approval_id", approval.id},
                                                 {"tool", tool.name}});
  commit_step(run, std::move(step), {}, [this, approval, seq](ActiveRun& committed) {
    if (options_.on_approval_requested) options_.on_approval_requested(approval);
    check_approval(committed.record.id, committed.generation, seq, /*keep_polling=*/true);
  }, std::move(extra));
}

void Engine::check_approval(const std::string& run_id, uint64_t generation, int64_t tool_seq, bool keep_polling) {
  ActiveRun* run = find_run(run_id, generation);
  if (run == nullptr || run->terminal_requested || draining_) return;
  auto state = run->projected.approvals.find(tool_seq);
  if (state == run->projected.approvals.end() || !state->second.decision.empty()) return;  // decided meanwhile
  auto approval = store_.get_approval(run->record.tenant_id, state->second.approval_id);
  int64_t now = clock_.now_ms();
  if (approval.is_ok() && approval->status != kApprovalPending) return record_decision(*run, tool_seq, *approval, false);
  if (approval.is_ok() && now >= approval->expires_at_ms) return record_decision(*run, tool_seq, *approval, true);
  if (!approval.is_ok()) {
    log::error("cannot read approval", {{"run_id", run_id}, {"error", approval.status().to_string()}});
  }
  if (!keep_polling) return;
  int64_t until_expiry = approval.is_ok() ? approval->expires_at_ms - now : options_.approval_poll_ms;
  int64_t delay = std::max<int64_t>(1, std::min(options_.approval_poll_ms, until_expiry));
  loop_.post_after(delay, [this, run_id, generation, tool_seq] { check_approval(run_id, generation, tool_seq, true); });
}

void Engine::record_decision(ActiveRun& run, int64_t tool_seq, const ApprovalRecord& approval, bool expire_now) {
  int64_t now = clock_.now_ms();
  std::string decision = expire_now ? kApprovalExpired : approval.status;
  WriteBatch extra;
  if (expire_now) {  // conditional on still pending: a decision racing the expiry wins or loses as a whole
    ApprovalRecord expiry = approval;
    expiry.status = kApprovalExpired;
    expiry.decided_at_ms = now;
    expiry.decided_by = "system";
    extra.approval_decisions.push_back(std::move(expiry));
  }
  json::object payload{{"approval_id", approval.id},
                       {"tool_seq", tool_seq},
                       {"decision", decision},
                       {"decided_by", expire_now ? "system" : approval.decided_by},
                       {"decided_at_ms", expire_now ? now : approval.decided_at_ms}};
  StepRecord step{run.record.tenant_id, run.record.id, run.projected.next_seq, kStepApprovalDecided,
                  to_json(payload), now};
  log::info("approval decided", {{"run_id", run.record.id}, {"approval_id", approval.id}, {"decision", decision}});
  commit_step(run, std::move(step), {}, [tool_seq](ActiveRun& committed) {
    committed.effects_in_flight.erase(tool_seq);  // advance() now runs the call, or commits its denial
  }, std::move(extra));
}

void Engine::approval_decided(const std::string& tenant, const std::string& run_id) {
  ActiveRun* run = find_run(run_id);
  if (run == nullptr || run->record.tenant_id != tenant) return;  // not here: its node sees it at its next poll
  std::vector<int64_t> waiting;
  for (const auto& [seq, state] : run->projected.approvals) {
    if (state.decision.empty()) waiting.push_back(seq);
  }
  for (int64_t seq : waiting) check_approval(run_id, run->generation, seq, /*keep_polling=*/false);
}

}  // namespace continuum
