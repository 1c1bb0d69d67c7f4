#include "engine/snapshot.h"

#include <boost/json/serialize.hpp>

#include <algorithm>

namespace continuum {

json::object usage_to_json(const Usage& usage) {
  return json::object{{"input_tokens", usage.input_tokens},
                      {"output_tokens", usage.output_tokens},
                      {"total_tokens", usage.total_tokens}};
}

json::object step_to_json(const StepRecord& step) {
  json::object obj{{"seq", step.seq}, {"kind", step.kind}, {"created_at_ms", step.created_at_ms}};
  auto payload = parse_json(step.payload_json);
  obj["payload"] = payload.is_ok() ? std::move(*payload) : json::value(step.payload_json);
  return obj;
}

std::string step_to_json_text(const StepRecord& step) { return to_json(step_to_json(step)); }

std::string own_step_to_json_text(const StepRecord& step) {
  std::string text;
  text.reserve(step.payload_json.size() + step.kind.size() + 80);
  text.append("{\"seq\":").append(std::to_string(step.seq));
  text.append(",\"kind\":");
  append_json_string(text, step.kind);
  text.append(",\"created_at_ms\":").append(std::to_string(step.created_at_ms));
  text.append(",\"payload\":").append(step.payload_json).append("}");
  return text;
}

namespace {
void append_field(std::string& out, std::string_view key, std::string_view text) {
  out += out.size() > 1 ? ",\"" : "\"";
  out += key;
  out += "\":";
  append_json_string(out, text);
}
void append_field(std::string& out, std::string_view key, int64_t number) {
  out += out.size() > 1 ? ",\"" : "\"";
  out += key;
  out += "\":";
  out += std::to_string(number);
}
}  // namespace

std::string snapshot_to_json_text(const RunSnapshot& snapshot) {
  std::string out = "{";
  out.reserve(256 + snapshot.output.size() + snapshot.instructions.size());
  append_field(out, "status", snapshot.status);
  append_field(out, "next_seq", snapshot.next_seq);
  append_field(out, "model_calls", snapshot.model_calls);
  append_field(out, "tool_calls", snapshot.tool_calls);
  out += ",\"usage\":{\"input_tokens\":" + std::to_string(snapshot.usage.input_tokens) +
         ",\"output_tokens\":" + std::to_string(snapshot.usage.output_tokens) +
         ",\"total_tokens\":" + std::to_string(snapshot.usage.total_tokens) + "},\"pending_tools\":[";
  for (size_t i = 0; i < snapshot.pending_tools.size(); ++i) {
    const PendingTool& tool = snapshot.pending_tools[i];
    std::string entry = "{";
    append_field(entry, "seq", tool.seq);
    append_field(entry, "call_id", tool.call_id);
    append_field(entry, "name", tool.name);
    append_field(entry, "arguments", tool.arguments);
    out += (i > 0 ? "," : "") + entry + "}";
  }
  out += "]";
  append_field(out, "started_at_ms", snapshot.started_at_ms);
  append_field(out, "deadline_at_ms", snapshot.deadline_at_ms);
  append_field(out, "output", snapshot.output);
  append_field(out, "error_code", snapshot.error_code);
  append_field(out, "error_message", snapshot.error_message);
  if (snapshot.final_text) append_field(out, "final_text", *snapshot.final_text);
  if (!snapshot.instructions.empty()) append_field(out, "instructions", snapshot.instructions);
  if (!snapshot.client_tools.empty()) out += ",\"client_tools\":" + json::serialize(snapshot.client_tools);
  if (snapshot.has_input_messages) out += ",\"has_input_messages\":true";
  if (!snapshot.approvals.empty()) {
    out += ",\"approvals\":[";
    bool first = true;
    for (const auto& [seq, approval] : snapshot.approvals) {
      std::string entry = "{";
      append_field(entry, "seq", seq);
      append_field(entry, "approval_id", approval.approval_id);
      append_field(entry, "arguments_hash", approval.arguments_hash);
      append_field(entry, "decision", approval.decision);
      out += (first ? "" : ",") + entry + "}";
      first = false;
    }
    out += "]";
  }
  out += "}";
  return out;
}

namespace {
int64_t int_field(const json::object& obj, std::string_view key) {
  const json::value* value = obj.if_contains(key);
  return value && value->is_int64() ? value->as_int64() : 0;
}
std::string string_field(const json::object& obj, std::string_view key) {
  const json::value* value = obj.if_contains(key);
  return value && value->is_string() ? std::string(value->as_string()) : std::string();
}
Usage usage_from_json(const json::value* value) {
  Usage usage;
  if (value == nullptr || !value->is_object()) return usage;
  const auto& obj = value->as_object();
  usage.input_tokens = int_field(obj, "input_tokens");
  usage.output_tokens = int_field(obj, "output_tokens");
  usage.total_tokens = int_field(obj, "total_tokens");
  return usage;
}
}  // namespace

Result<RunSnapshot> snapshot_from_json(std::string_view text) {
  ASSIGN_OR_RETURN(json::object obj, parse_json_object(text));
  RunSnapshot snapshot;
  snapshot.status = string_field(obj, "status");
  snapshot.next_seq = int_field(obj, "next_seq");
  snapshot.model_calls = int_field(obj, "model_calls");
  snapshot.tool_calls = int_field(obj, "tool_calls");
  snapshot.usage = usage_from_json(obj.if_contains("usage"));
  if (const json::value* pending = obj.if_contains("pending_tools"); pending && pending->is_array()) {
    for (const auto& entry : pending->as_array()) {
      if (!entry.is_object()) continue;
      const auto& tool = entry.as_object();
      snapshot.pending_tools.push_back(PendingTool{int_field(tool, "seq"), string_field(tool, "call_id"),
                                                   string_field(tool, "name"), string_field(tool, "arguments")});
    }
  }
  if (const json::value* final_text = obj.if_contains("final_text"); final_text && final_text->is_string()) {
    snapshot.final_text = std::string(final_text->as_string());
  }
  if (const json::value* approvals = obj.if_contains("approvals"); approvals && approvals->is_array()) {
    for (const auto& entry : approvals->as_array()) {
      if (!entry.is_object()) continue;
      const auto& approval = entry.as_object();
      snapshot.approvals[int_field(approval, "seq")] =
          ApprovalState{string_field(approval, "approval_id"), string_field(approval, "arguments_hash"),
                        string_field(approval, "decision")};
    }
  }
  snapshot.instructions = string_field(obj, "instructions");
  if (const json::value* tools = obj.if_contains("client_tools"); tools && tools->is_array()) {
    snapshot.client_tools = tools->as_array();
  }
  if (const json::value* flag = obj.if_contains("has_input_messages"); flag && flag->is_bool()) {
    snapshot.has_input_messages = flag->as_bool();
  }
  snapshot.started_at_ms = int_field(obj, "started_at_ms");
  snapshot.deadline_at_ms = int_field(obj, "deadline_at_ms");
  snapshot.output = string_field(obj, "output");
  snapshot.error_code = string_field(obj, "error_code");
  snapshot.error_message = string_field(obj, "error_message");
  return snapshot;
}

namespace {

Status fold_model_call(RunSnapshot& snapshot, const json::object& payload, int64_t seq) {
  snapshot.model_calls += 1;
  Usage usage = usage_from_json(payload.if_contains("usage"));
  snapshot.usage.input_tokens += usage.input_tokens;
  snapshot.usage.output_tokens += usage.output_tokens;
  snapshot.usage.total_tokens += usage.total_tokens;
  const json::value* message = payload.if_contains("message");
  if (message == nullptr || !message->is_object()) return internal_error("model_call step without message");
  const auto& msg = message->as_object();
  const json::value* calls = msg.if_contains("tool_calls");
  int64_t next = seq + 1;
  if (calls && calls->is_array() && !calls->as_array().empty()) {
    for (const auto& call : calls->as_array()) {
      const auto& call_obj = call.as_object();
      const auto& function = call_obj.at("function").as_object();
      snapshot.pending_tools.push_back(PendingTool{next++, string_field(call_obj, "id"),
                                                   string_field(function, "name"),
                                                   string_field(function, "arguments")});
    }
  } else {
    snapshot.final_text = string_field(msg, "content");
  }
  snapshot.next_seq = next;
  return Status::ok();
}

Status fold_approval(RunSnapshot& snapshot, const std::string& kind, const json::object& payload) {
  int64_t tool_seq = int_field(payload, "tool_seq");
  bool pending = std::any_of(snapshot.pending_tools.begin(), snapshot.pending_tools.end(),
                             [&](const PendingTool& tool) { return tool.seq == tool_seq; });
  // A tool call's result takes its reserved seq, lower than its approval
  // steps' (taken later, at next_seq). Folding in seq order therefore meets
  // the result first: the approval steps of a call that has its result change
  // nothing, which is where folding in commit order ends up too.
  if (!pending) {
    if (tool_seq <= 0 || tool_seq >= snapshot.next_seq) {
      return internal_error(kind + " for seq " + std::to_string(tool_seq) + " matches no tool call");
    }
  } else if (kind == kStepApprovalRequested) {
    snapshot.approvals[tool_seq] =
        ApprovalState{string_field(payload, "approval_id"), string_field(payload, "arguments_hash"), ""};
  } else {
    auto found = snapshot.approvals.find(tool_seq);
    if (found == snapshot.approvals.end() || !found->second.decision.empty()) {
      return internal_error("approval_decided for seq " + std::to_string(tool_seq) + " without a pending approval");
    }
    found->second.decision = string_field(payload, "decision");
  }
  bool waiting = std::any_of(snapshot.approvals.begin(), snapshot.approvals.end(),
                             [](const auto& entry) { return entry.second.decision.empty(); });
  snapshot.status = waiting ? kRunWaiting : kRunRunning;
  return Status::ok();
}

}  // namespace

bool is_client_tool(const json::array& client_tools, std::string_view name) {
  for (const auto& tool : client_tools) {
    const json::object* obj = tool.if_object();
    const json::value* function = obj ? obj->if_contains("function") : nullptr;
    const json::value* tool_name = function && function->is_object() ? function->as_object().if_contains("name")
                                                                      : nullptr;
    if (tool_name && tool_name->is_string() && tool_name->as_string() == name) return true;
  }
  return false;
}

Result<std::shared_ptr<const json::object>> payload_for_fold(const StepRecord& step) {
  if (step.kind == kStepToolCall) return std::shared_ptr<const json::object>();
  ASSIGN_OR_RETURN(json::object payload, parse_json_object(step.payload_json));
  return std::make_shared<const json::object>(std::move(payload));
}

Status fold_step(RunSnapshot& snapshot, const StepRecord& step) { return fold_step(snapshot, step, nullptr); }

Status fold_step(RunSnapshot& snapshot, const StepRecord& step, const json::object* parsed) {
  if (step.kind == kStepToolCall) {  // its payload (the tool's output, up to MiBs) is not needed here
    auto found = std::find_if(snapshot.pending_tools.begin(), snapshot.pending_tools.end(),
                              [&](const PendingTool& tool) { return tool.seq == step.seq; });
    if (found == snapshot.pending_tools.end()) {
      return internal_error("tool_call step " + std::to_string(step.seq) + " matches no pending tool call");
    }
    snapshot.pending_tools.erase(found);
    snapshot.approvals.erase(step.seq);
    snapshot.tool_calls += 1;
    return Status::ok();
  }
  if (step.seq != snapshot.next_seq) {
    return internal_error("step seq " + std::to_string(step.seq) + " does not follow snapshot next_seq " +
                          std::to_string(snapshot.next_seq));
  }
  json::object parsed_here;
  if (parsed == nullptr) {
    ASSIGN_OR_RETURN(parsed_here, parse_json_object(step.payload_json));
    parsed = &parsed_here;
  }
  const json::object& payload = *parsed;
  if (step.kind == kStepRunCreated) {
    snapshot.status = kRunQueued;
    snapshot.instructions = string_field(payload, "instructions");
    snapshot.has_input_messages = payload.contains("input_messages");
    if (const json::value* tools = payload.if_contains("client_tools"); tools && tools->is_array()) {
      snapshot.client_tools = tools->as_array();
    }
    snapshot.next_seq = step.seq + 1;
  } else if (step.kind == kStepRunStarted) {
    snapshot.status = kRunRunning;
    snapshot.started_at_ms = int_field(payload, "started_at_ms");
    snapshot.deadline_at_ms = int_field(payload, "deadline_at_ms");
    snapshot.next_seq = step.seq + 1;
  } else if (step.kind == kStepModelCall) {
    RETURN_IF_ERROR(fold_model_call(snapshot, payload, step.seq));
  } else if (step.kind == kStepApprovalRequested || step.kind == kStepApprovalDecided) {
    RETURN_IF_ERROR(fold_approval(snapshot, step.kind, payload));
    snapshot.next_seq = step.seq + 1;
  } else if (step.kind == kStepRunCompleted) {
    snapshot.status = kRunCompleted;
    snapshot.output = string_field(payload, "output");
    snapshot.next_seq = step.seq + 1;
  } else if (step.kind == kStepRunFailed || step.kind == kStepRunCancelled) {
    snapshot.status = step.kind == kStepRunFailed ? kRunFailed : kRunCancelled;
    snapshot.error_code = string_field(payload, "code");
    snapshot.error_message = string_field(payload, "message");
    snapshot.pending_tools.clear();
    snapshot.approvals.clear();
    snapshot.next_seq = step.seq + 1;
  } else {
    return internal_error("unknown step kind '" + step.kind + "'");
  }
  return Status::ok();
}

}  // namespace continuum
