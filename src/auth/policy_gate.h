// The EffectGate over policy: every tool and model call of a run is checked
// with the identity chain (the session's end user and the agent), the call's
// arguments, and the session's history of tool calls.
//
// History-aware conditions (count(), sum()) read the journal of the session's
// runs: committed tool calls within the window, at most kHistoryRunsMax runs.
// Calls still in flight are not counted. Fails closed: a policy that cannot be
// read, or history that cannot be, denies.
#pragma once

#include "auth/authorizer.h"
#include "engine/effect_gate.h"

namespace continuum {

class PolicyEffectGate final : public EffectGate {
 public:
  PolicyEffectGate(Store& store, Authorizer& authorizer, const Clock& clock)
      : store_(store), authorizer_(authorizer), clock_(clock) {}

  EffectVerdict check(const EffectRequest& request) override;

  static constexpr int kHistoryRunsMax = 1000;

 private:
  Store& store_;
  Authorizer& authorizer_;
  const Clock& clock_;
};

}  // namespace continuum
