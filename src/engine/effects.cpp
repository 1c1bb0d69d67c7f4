// Performing effects: model calls and tool calls, with retries, and
// committing their results as journal steps.
#include "agent/context.h"
#include "audit/audit_log.h"
#include "crypto/hash.h"
#include "core/log.h"
#include "core/utf8.h"
#include "engine/engine_internal.h"
#include "tools/schema.h"

namespace continuum {

namespace {

json::object function_tool(const std::string& name, const std::string& description, const json::object& parameters) {
  return json::object{{"type", "function"},
                      {"function", json::object{{"name", name}, {"description", description}, {"parameters", parameters}}}};
}

// The agent's own tools, then the offered tools of its MCP servers (one of
// the agent's own names wins over an MCP tool's).
json::array tool_definitions(const AgentSpec& agent, const std::optional<std::vector<McpToolEntry>>& mcp_tools) {
  json::array tools;
  for (const auto& tool : agent.tools) {
    if (!tool.mcp) tools.push_back(function_tool(tool.name, tool.description, tool.parameters));
  }
  if (!mcp_tools) return tools;
  for (const McpToolEntry& entry : *mcp_tools) {
    if (!entry.withheld_reason.empty() || agent.find_tool(entry.model_name) != nullptr) continue;
    tools.push_back(function_tool(entry.model_name, entry.description, entry.parameters));
  }
  return tools;
}

const McpToolEntry* find_mcp_tool(const std::optional<std::vector<McpToolEntry>>& mcp_tools, const std::string& name) {
  if (!mcp_tools) return nullptr;
  for (const McpToolEntry& entry : *mcp_tools) {
    if (entry.model_name == name) return &entry;
  }
  for (const McpToolEntry& entry : *mcp_tools) {  // a tool of a server that could not be listed
    if (entry.tool.empty() && name.rfind(entry.model_name, 0) == 0) return &entry;
  }
  return nullptr;
}

}  // namespace

std::string user_message(const std::string& input) {
  return to_json(json::object{{"role", "user"}, {"content", input}});
}

Result<ContextItems> Engine::read_context_items(const ActiveRun& run) {
  // Pages grow geometrically until the token budget is filled, so the cost is
  // proportional to what the model sees, not to the session's length.
  ContextItems newest_first;
  int64_t budget = run.agent->model.context_tokens;
  int64_t used = 0;
  int64_t before_seq = 0;
  int page = 16;
  while (used < budget && static_cast<int>(newest_first.size()) < options_.context_items_max) {
    ASSIGN_OR_RETURN(auto items, store_.recent_items(run.record.tenant_id, run.record.session_id, before_seq, page));
    for (auto& item : items) {
      used += estimate_tokens(item.message_json);
      before_seq = item.seq;
      newest_first.push_back(ContextItem{std::move(item.run_id), std::move(item.message_json), nullptr});
    }
    if (static_cast<int>(items.size()) < page) break;
    page = std::min(page * 4, 1024);
  }
  return newest_first;
}

std::optional<RunEvent> Engine::partial_text(const std::string& run_id) {
  ActiveRun* run = find_run(run_id);
  if (run == nullptr || run->streaming_seq < 0 || run->streaming_text.empty() ||
      run->committed.next_seq < run->streaming_seq) {
    return std::nullopt;
  }
  return RunEvent{run_id, -1, "text_delta",
                  to_json(json::object{{"seq", run->streaming_seq}, {"offset", 0}, {"delta", run->streaming_text}}),
                  false};
}

namespace {

// Parsed once here rather than at each model call of the run.
void keep_parsed(ContextItem& item) {
  if (auto parsed = parse_json_object(item.message_json); parsed.is_ok()) {
    item.message = std::make_shared<const json::object>(std::move(*parsed));
  }
}

}  // namespace

Status Engine::load_context(ActiveRun& run) {
  if (run.context_loaded) return Status::ok();
  ASSIGN_OR_RETURN(auto loaded, read_context_items(run));
  run.context = std::move(loaded);
  run.context_tokens = 0;
  for (auto& item : run.context) {
    run.context_tokens += estimate_tokens(item.message_json);
    keep_parsed(item);
  }
  run.context_loaded = true;
  return Status::ok();
}

void Engine::remember_context_items(ActiveRun& run, const std::vector<std::string>& messages,
                                    const std::vector<std::shared_ptr<const json::object>>& parsed) {
  if (!run.context_loaded) return;  // loaded from the store at the next model call
  for (size_t i = 0; i < messages.size(); ++i) {
    run.context_tokens += estimate_tokens(messages[i]);
    run.context.push_front(ContextItem{run.record.id, messages[i], i < parsed.size() ? parsed[i] : nullptr});
    if (!run.context.front().message) keep_parsed(run.context.front());
  }
  // Keep covering the budget: drop the oldest item only while the rest still
  // covers it, and never the call a kept tool result answers (a result larger
  // than the budget would otherwise leave the model a result without its call).
  int64_t budget = run.agent->model.context_tokens;
  auto is_tool_result = [](const ContextItem& item) { return item.message_json.rfind(R"({"role":"tool")", 0) == 0; };
  while (run.context.size() > 1 && !is_tool_result(run.context[run.context.size() - 2]) &&
         (run.context_tokens - estimate_tokens(run.context.back().message_json) >= budget ||
          static_cast<int>(run.context.size()) > options_.context_items_max)) {
    run.context_tokens -= estimate_tokens(run.context.back().message_json);
    run.context.pop_back();
  }
}

std::string Engine::session_user_of(ActiveRun& run) {
  if (!run.session_user) {
    auto session = store_.get_session(run.record.tenant_id, run.record.session_id);
    if (!session.is_ok()) return "";  // not cached: read again next time
    run.session_user = session->user_id;
  }
  return *run.session_user;
}

bool Engine::gate_can_decide(ActiveRun& run) {
  if (options_.gate == nullptr) return true;
  session_user_of(run);
  if (run.session_user) return true;
  log::warn("cannot read the run's session for a policy decision; trying again", {{"run_id", run.record.id}});
  std::string run_id = run.record.id;
  loop_.post_after(1000, [this, run_id] { advance(run_id); });
  return false;
}

EffectVerdict Engine::check_effect(ActiveRun& run, int64_t seq, std::string action, std::string resource,
                                   json::value arguments) {
  if (options_.gate == nullptr) return EffectVerdict{};
  session_user_of(run);
  if (!run.session_user) {
    return EffectVerdict{EffectVerdictKind::kDeny, "", "the session could not be read"};
  }
  EffectRequest request{run.record.tenant_id, run.record.session_id, *run.session_user, run.record.agent_name,
                        run.record.id, seq, std::move(action), std::move(resource), std::move(arguments)};
  EffectVerdict verdict = options_.gate->check(request);
  const char* outcome = verdict.kind == EffectVerdictKind::kAllow  ? "allow"
                        : verdict.kind == EffectVerdictKind::kDeny ? "deny"
                                                                   : "require_approval";
  static const std::string kNullInputsHash = sha256_hex("null");  // a model call's: it has no arguments
  std::string inputs_hash = request.arguments.is_null() ? kNullInputsHash : sha256_hex(to_json(request.arguments));
  bool allowed = verdict.kind == EffectVerdictKind::kAllow;
  run.audit_backlog.push_back(audit_event_canonical(
      run.record.tenant_id, clock_.now_ms(), "agent:" + run.record.agent_name, request.action, request.resource,
      outcome,
      effect_decision_details(verdict.statement, seq, *run.session_user, inputs_hash,
                              allowed ? nullptr : &verdict.reason),
      run.record.id));
  return verdict;
}

void Engine::start_model_call(ActiveRun& run, int64_t seq) {
  if (!gate_can_decide(run)) return;
  EffectVerdict verdict = check_effect(run, seq, "model:invoke", "model:" + run.agent->model.model, nullptr);
  if (verdict.kind != EffectVerdictKind::kAllow) {
    request_terminal(run, kStepRunFailed,
                     json::object{{"code", "permission_denied"},
                                  {"message", "the model call was denied by policy: " + verdict.reason}});
    return;
  }
  run.effects_in_flight.insert(seq);
  auto request = std::make_shared<ModelRequest>();
  request->spec = run.agent->model;
  request->run_id = run.record.id;
  request->seq = seq;
  if (Status loaded = load_context(run); !loaded.is_ok()) {
    run.effects_in_flight.erase(seq);
    log::error("cannot read session items", {{"run_id", run.record.id}, {"error", loaded.to_string()}});
    std::string run_id = run.record.id;
    loop_.post_after(1000, [this, run_id] { advance(run_id); });
    return;
  }
  std::string instructions = run.agent->instructions;
  if (!run.committed.instructions.empty()) {
    instructions += (instructions.empty() ? "" : "\n\n") + run.committed.instructions;
  }
  request->messages = assemble_context(instructions, run.record.id, user_message(run.record.input),
                                       run.context, run.agent->model.context_tokens);
  if (!run.agent->has_mcp_servers()) return send_model_request(run, std::move(request));
  // The model is offered what the MCP servers list now (cached by the hub).
  list_mcp_tools(run, [this, request](ActiveRun& listed) { send_model_request(listed, request); });
}

void Engine::send_model_request(ActiveRun& run, std::shared_ptr<ModelRequest> request) {
  request->tools = tool_definitions(*run.agent, run.mcp_tools);
  for (const auto& tool : run.committed.client_tools) request->tools.push_back(tool);
  attempt_model_call(run.record.id, run.generation, std::move(request), 1);
}

void Engine::list_mcp_tools(ActiveRun& run, std::function<void(ActiveRun&)> next) {
  std::string run_id = run.record.id;
  uint64_t generation = run.generation;
  tools_.list_mcp_tools(run.record.tenant_id, run.agent,
                        [this, run_id, generation, next = std::move(next)](std::vector<McpToolEntry> entries) {
                          ActiveRun* listed = find_run(run_id, generation);
                          if (listed == nullptr || listed->terminal_requested) return;
                          listed->mcp_tools = std::move(entries);
                          next(*listed);
                        });
}

void Engine::attempt_model_call(const std::string& run_id, uint64_t generation, std::shared_ptr<ModelRequest> request,
                                int attempt) {
  ActiveRun* run = find_run(run_id, generation);
  if (run == nullptr || run->terminal_requested) return;
  if (!lease_fresh_for(run->record.tenant_id, run->record.session_id)) {
    // After a pause, or a lease lost and not yet stepped down from: wait for the renewal to decide.
    loop_.post_after(kStaleLeaseRecheckMs, [this, run_id, generation, request, attempt] {
      attempt_model_call(run_id, generation, request, attempt);
    });
    return;
  }
  ModelProvider* provider = providers_(request->spec);
  if (provider == nullptr) {
    request_terminal(*run, kStepRunFailed,
                     json::object{{"code", "model_unavailable"},
                                  {"message", "no provider '" + request->spec.provider + "' is configured"}});
    return;
  }
  metrics_->model_calls->inc();
  int64_t seq = request->seq;
  provider->complete(
      *request,
      [this, run_id, generation, seq](std::string_view delta) {
        ActiveRun* streaming = find_run(run_id, generation);
        if (streaming == nullptr) return;  // a call of an evicted or finished run
        if (streaming->streaming_seq != seq) {
          streaming->streaming_text.clear();
          streaming->streaming_ends.clear();
        }
        streaming->streaming_seq = seq;
        auto offset = static_cast<int64_t>(streaming->streaming_text.size());  // 0 again on a retry
        streaming->streaming_text.append(delta);
        streaming->streaming_ends.push_back(static_cast<int64_t>(streaming->streaming_text.size()));
        // A call run ahead of earlier steps' commits streams to nobody: its
        // text arrives with its step, after them.
        if (streaming->committed.next_seq < seq) return;
        publish(RunEvent{run_id, -1, "text_delta",
                         to_json(json::object{{"seq", seq}, {"offset", offset}, {"delta", json::string(delta)}}),
                         false});
      },
      [this, run_id, generation, request, attempt](ModelOutcome outcome) {
        on_model_outcome(run_id, generation, request, attempt, std::move(outcome));
      });
}

void Engine::on_model_outcome(const std::string& run_id, uint64_t generation, std::shared_ptr<ModelRequest> request,
                              int attempt, ModelOutcome outcome) {
  ActiveRun* run = find_run(run_id, generation);
  if (run == nullptr || run->terminal_requested) return;  // cancelled or finished meanwhile
  run->streaming_seq = -1;  // a retry streams anew; a success is journaled whole
  run->streaming_text.clear();
  // Where the deltas ended: a replayed stream splits the text as the live one did.
  std::vector<int64_t> stream_ends = std::move(run->streaming_ends);
  run->streaming_ends.clear();
  if (!outcome.response) {
    metrics_->model_errors->inc();
    auto delay = next_retry_delay_ms(request->spec.retry, attempt, outcome.error, random_);
    log::warn("model call failed", {{"run_id", run_id}, {"attempt", std::to_string(attempt)},
                                    {"code", outcome.error.code}, {"retry", delay ? "yes" : "no"}});
    if (delay && !draining_) {
      loop_.post_after(*delay, [this, run_id, generation, request, attempt] {
        attempt_model_call(run_id, generation, request, attempt + 1);
      });
      return;
    }
    if (draining_) return;  // parked: resumes after restart
    request_terminal(*run, kStepRunFailed,
                     json::object{{"code", "model_error"},
                                  {"message", sanitize_utf8("model call failed after " + std::to_string(attempt) +
                                                            " attempt(s): " + outcome.error.code + ": " +
                                                            outcome.error.message)}});
    return;
  }
  ModelResponse& response = *outcome.response;
  int64_t now = clock_.now_ms();
  // The message is serialized once, for the payload and the session item,
  // and kept parsed, in the payload, for the folds and the context.
  std::string message_json = to_json(response.message);
  json::object payload{{"usage", usage_to_json(response.usage)},
                       {"finish_reason", response.finish_reason},
                       {"attempts", attempt}};
  if (stream_ends.size() > 1) {
    json::array ends;
    for (int64_t end : stream_ends) ends.push_back(end);
    payload["stream_ends"] = std::move(ends);
  }
  std::string payload_json = R"({"message":)" + message_json + "," + to_json(payload).substr(1);
  payload.emplace("message", std::move(response.message));
  auto parsed = std::make_shared<const json::object>(std::move(payload));
  // The context's item is the payload's message, not a copy (the pointer keeps the payload alive).
  std::shared_ptr<const json::object> message(parsed, &parsed->at("message").as_object());
  StepRecord step{run->record.tenant_id, run_id, request->seq, kStepModelCall, std::move(payload_json), now};
  commit_step(*run, std::move(step), {std::move(message_json)}, nullptr, {}, std::move(parsed), {std::move(message)});
}

void Engine::start_tool_call(ActiveRun& run, const PendingTool& tool) {
  if (!gate_can_decide(run)) return;
  run.effects_in_flight.insert(tool.seq);
  const ToolSpec* spec = run.agent->find_tool(tool.name);
  const McpToolEntry* mcp_tool = nullptr;
  if ((spec == nullptr || spec->mcp) && run.agent->has_mcp_servers()) {
    if (!run.mcp_tools) {  // e.g. resumed after a restart: learn what the servers offer first
      return list_mcp_tools(run, [this, tool](ActiveRun& listed) { start_tool_call(listed, tool); });
    }
    spec = nullptr;  // an MCP server's own entry is not a tool
    mcp_tool = find_mcp_tool(run.mcp_tools, tool.name);
    if (mcp_tool != nullptr && mcp_tool->tool.empty()) return retry_unlisted_tool(run, tool, *mcp_tool);
    if (mcp_tool != nullptr && !mcp_tool->withheld_reason.empty()) {
      commit_tool_result(run, tool, "error: the tool '" + tool.name + "' is withheld: " + mcp_tool->withheld_reason,
                         true, 0);
      return;
    }
    if (mcp_tool != nullptr) spec = mcp_tool->server;
  }
  if (spec == nullptr) {
    commit_tool_result(run, tool, "error: the agent has no tool named '" + tool.name + "'", true, 0);
    return;
  }
  auto arguments = parse_json(tool.arguments.empty() ? "{}" : tool.arguments);
  if (!arguments.is_ok()) {
    commit_tool_result(run, tool, "error: the tool arguments are not valid JSON", true, 0);
    return;
  }
  const JsonSchemaValidator* validator = mcp_tool != nullptr ? mcp_tool->validator.get() : spec->validator.get();
  CONTINUUM_CHECK(validator != nullptr,
                  "parse_agent_spec compiles every tool's parameters schema; MCP tools without one are withheld");
  Status valid = validator->validate(*arguments);
  if (!valid.is_ok()) {
    commit_tool_result(run, tool, "error: " + valid.message(), true, 0);
    return;
  }
  if (run.projected.approvals.count(tool.seq)) {
    if (!settle_approval(run, tool)) return;  // still waiting, or refused (a denial result is committed)
  } else {
    EffectVerdict verdict = check_effect(run, tool.seq, "tool:invoke", "tool:" + tool.name, *arguments);
    if (verdict.kind == EffectVerdictKind::kRequireApproval) return request_approval(run, tool, verdict);
    if (verdict.kind == EffectVerdictKind::kDeny) {
      commit_tool_result(run, tool, "error: the call was denied by policy: " + verdict.reason, true, 0,
                         /*denied=*/true);
      return;
    }
  }
  auto call = std::make_shared<ToolCall>();
  call->agent = run.agent;
  call->spec = spec;
  call->arguments_json = tool.arguments.empty() ? "{}" : tool.arguments;
  call->run_id = run.record.id;
  call->tenant = run.record.tenant_id;
  call->session_id = run.record.session_id;
  call->user_id = session_user_of(run);
  call->seq = tool.seq;
  if (mcp_tool != nullptr) call->mcp_tool = mcp_tool->tool;
  call->idempotency_key = run.record.id + ":" + std::to_string(tool.seq);
  attempt_tool_call(run.record.id, run.generation, std::move(call), 1);
}

void Engine::retry_unlisted_tool(ActiveRun& run, const PendingTool& tool, const McpToolEntry& server) {
  if (!server.listing_retryable) {  // e.g. the server's configuration does not allow its command
    commit_tool_result(run, tool, "error: the tool '" + tool.name + "' is withheld: " + server.withheld_reason, true, 0);
    return;
  }
  int attempt = ++run.mcp_listing_attempts[tool.seq];
  EffectError error{"mcp_unavailable", server.withheld_reason, true, -1};
  auto delay = next_retry_delay_ms(server.server->retry, attempt, error, random_);
  if (!delay || draining_) {
    if (draining_) return;  // parked: resumes after restart
    commit_tool_result(run, tool,
                       "error: tool '" + tool.name + "' failed after " + std::to_string(attempt) +
                           " attempt(s): mcp_unavailable: " + server.withheld_reason,
                       true, attempt);
    return;
  }
  std::string run_id = run.record.id;
  uint64_t generation = run.generation;
  loop_.post_after(*delay, [this, run_id, generation, tool] {
    ActiveRun* again = find_run(run_id, generation);
    if (again == nullptr || again->terminal_requested) return;
    again->mcp_tools.reset();  // list afresh
    start_tool_call(*again, tool);
  });
}

void Engine::attempt_tool_call(const std::string& run_id, uint64_t generation, std::shared_ptr<ToolCall> call,
                               int attempt) {
  ActiveRun* run = find_run(run_id, generation);
  if (run == nullptr || run->terminal_requested) return;
  if (!lease_fresh_for(run->record.tenant_id, run->record.session_id)) {
    // After a pause, or a lease lost: another node may already have committed this call's result.
    loop_.post_after(kStaleLeaseRecheckMs, [this, run_id, generation, call, attempt] {
      attempt_tool_call(run_id, generation, call, attempt);
    });
    return;
  }
  metrics_->tool_calls->inc();
  tools_.call(*call, [this, run_id, generation, call, attempt](ToolOutcome outcome) {
    on_tool_outcome(run_id, generation, call, attempt, std::move(outcome));
  });
}

void Engine::on_tool_outcome(const std::string& run_id, uint64_t generation, std::shared_ptr<ToolCall> call,
                             int attempt, ToolOutcome outcome) {
  ActiveRun* run = find_run(run_id, generation);
  if (run == nullptr || run->terminal_requested) return;
  const PendingTool* pending = nullptr;
  for (const auto& tool : run->projected.pending_tools) {
    if (tool.seq == call->seq) pending = &tool;
  }
  if (pending == nullptr) return;  // already has a result
  PendingTool tool = *pending;
  if (outcome.ok) {
    commit_tool_result(*run, tool, outcome.output, outcome.is_error, attempt);
    return;
  }
  metrics_->tool_errors->inc();
  auto delay = next_retry_delay_ms(call->spec->retry, attempt, outcome.error, random_);
  log::warn("tool call failed", {{"run_id", run_id}, {"tool", tool.name},
                                 {"attempt", std::to_string(attempt)}, {"code", outcome.error.code},
                                 {"retry", delay ? "yes" : "no"}});
  if (delay && !draining_) {
    loop_.post_after(*delay, [this, run_id, generation, call, attempt] {
      attempt_tool_call(run_id, generation, call, attempt + 1);
    });
    return;
  }
  if (draining_) return;  // parked: resumes after restart with the same idempotency key
  commit_tool_result(*run, tool,
                     "error: tool '" + tool.name + "' failed after " + std::to_string(attempt) +
                         " attempt(s): " + outcome.error.code + ": " + outcome.error.message,
                     true, attempt);
}

void Engine::commit_tool_result(ActiveRun& run, const PendingTool& tool, const std::string& raw_output,
                                bool is_error, int attempts, bool denied) {
  // Tool bytes come from outside: the journal only holds valid UTF-8 text.
  std::string output = sanitize_utf8(raw_output);
  int64_t now = clock_.now_ms();
  json::object payload{{"call_id", tool.call_id},
                       {"name", tool.name},
                       {"arguments", tool.arguments},
                       {"output", output},
                       {"is_error", is_error},
                       {"attempts", attempts},
                       {"idempotency_key", run.record.id + ":" + std::to_string(tool.seq)}};
  if (denied) payload["denied"] = true;
  auto item = std::make_shared<const json::object>(
      json::object{{"role", "tool"}, {"tool_call_id", tool.call_id}, {"content", output}});
  std::string item_json = to_json(*item);
  StepRecord step{run.record.tenant_id, run.record.id, tool.seq, kStepToolCall, to_json(payload), now};
  commit_step(run, std::move(step), {std::move(item_json)}, nullptr, {}, nullptr, {std::move(item)});
}

}  // namespace continuum
