// The agent-loop decider: a pure function of (agent version, run snapshot,
// now) to the next commands. It never performs effects; the engine does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/agent_spec.h"
#include "engine/snapshot.h"

namespace continuum {

struct Command {
  enum class Kind { kCallModel, kCallTool, kComplete, kFail };
  Kind kind = Kind::kCallModel;
  int64_t seq = 0;            // journal seq the result will take
  PendingTool tool;           // kCallTool
  std::string output;         // kComplete
  std::string error_code;     // kFail: "max_steps", "max_total_tokens", "deadline_exceeded", ...
  std::string error_message;  // kFail
};

// Returns nothing for a run that is not running (queued or terminal).
std::vector<Command> decide(const AgentSpec& agent, const RunSnapshot& snapshot, int64_t now_ms);

}  // namespace continuum
