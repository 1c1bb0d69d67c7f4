// The engine's question to governance before each effect of a run: may this
// agent, on behalf of this end user, call this tool (or model) with these
// arguments now? Implemented over policy by auth/policy_gate.h; tests script it.
//
// Contract: check() runs on the loop thread and must not block for long (it
// may read the store). The verdict itself is not journaled: a denial becomes
// the call's committed (error) result, so a replay sees the same outcome.
#pragma once

#include <cstdint>
#include <string>

#include "core/json.h"

namespace continuum {

struct EffectRequest {
  std::string tenant;
  std::string session_id;
  std::string user_id;   // the session's end user ("" = none)
  std::string agent;
  std::string run_id;
  int64_t seq = 0;
  std::string action;    // "tool:invoke" or "model:invoke"
  std::string resource;  // "tool:<name>" or "model:<name>"
  json::value arguments; // the tool's arguments (null for a model call)
};

enum class EffectVerdictKind { kAllow, kDeny, kRequireApproval };

struct EffectVerdict {
  EffectVerdictKind kind = EffectVerdictKind::kAllow;
  std::string statement;  // the deciding policy statement ("" for the default deny)
  std::string reason;     // one sentence, shown to the model on a denial
};

class EffectGate {
 public:
  virtual ~EffectGate() = default;
  virtual EffectVerdict check(const EffectRequest& request) = 0;
};

}  // namespace continuum
