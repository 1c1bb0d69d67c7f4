#include "agent/decider.h"

namespace continuum {

namespace {
Command fail(int64_t seq, std::string code, std::string message) {
  Command command;
  command.kind = Command::Kind::kFail;
  command.seq = seq;
  command.error_code = std::move(code);
  command.error_message = std::move(message);
  return command;
}
}  // namespace

std::vector<Command> decide(const AgentSpec& agent, const RunSnapshot& snapshot, int64_t now_ms) {
  if (!is_active_status(snapshot.status)) return {};
  if (snapshot.deadline_at_ms > 0 && now_ms >= snapshot.deadline_at_ms) {
    return {fail(snapshot.next_seq, "deadline_exceeded",
                 "the run exceeded its deadline of " + std::to_string(agent.limits.deadline_ms) + " ms")};
  }
  if (!snapshot.pending_tools.empty()) {
    std::vector<Command> commands;
    for (const auto& tool : snapshot.pending_tools) {
      if (is_client_tool(snapshot.client_tools, tool.name)) continue;  // the client runs it
      Command command;
      command.kind = Command::Kind::kCallTool;
      command.seq = tool.seq;
      command.tool = tool;
      commands.push_back(std::move(command));
    }
    if (!commands.empty()) return commands;
    // Only the client's calls are left: the run ends here, and the client's
    // outputs start the next run of the session.
    Command command;
    command.kind = Command::Kind::kComplete;
    command.seq = snapshot.next_seq;
    return {command};
  }
  if (snapshot.final_text) {
    Command command;
    command.kind = Command::Kind::kComplete;
    command.seq = snapshot.next_seq;
    command.output = *snapshot.final_text;
    return {command};
  }
  if (agent.limits.total_tokens_max > 0 && snapshot.usage.total_tokens >= agent.limits.total_tokens_max) {
    return {fail(snapshot.next_seq, "max_total_tokens",
                 "the run used " + std::to_string(snapshot.usage.total_tokens) + " tokens, limit " +
                     std::to_string(agent.limits.total_tokens_max))};
  }
  if (snapshot.model_calls >= agent.limits.steps_max) {
    return {fail(snapshot.next_seq, "max_steps",
                 "the run reached its limit of " + std::to_string(agent.limits.steps_max) + " model steps")};
  }
  Command command;
  command.kind = Command::Kind::kCallModel;
  command.seq = snapshot.next_seq;
  return {command};
}

}  // namespace continuum
