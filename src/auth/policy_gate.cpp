#include "auth/policy_gate.h"

#include "engine/snapshot.h"

namespace continuum {

namespace {

// Tool calls committed in the session's runs, read once per check.
class SessionHistory final : public policy::History {
 public:
  SessionHistory(Store& store, const Clock& clock, const EffectRequest& request)
      : store_(store), clock_(clock), request_(request) {}

  Result<int64_t> count_calls(const std::string& tool, int64_t window_ms) override {
    RETURN_IF_ERROR(load());
    int64_t since = clock_.now_ms() - window_ms;
    int64_t count = 0;
    for (const auto& call : calls_) count += call.name == tool && call.at_ms >= since ? 1 : 0;
    return count;
  }

  Result<double> sum_argument(const std::string& tool, const std::string& arg_path, int64_t window_ms) override {
    RETURN_IF_ERROR(load());
    int64_t since = clock_.now_ms() - window_ms;
    double sum = 0;
    for (const auto& call : calls_) {
      if (call.name != tool || call.at_ms < since) continue;
      const json::value* value = &call.arguments;
      size_t start = 0;
      while (value && start <= arg_path.size()) {
        size_t dot = arg_path.find('.', start);
        std::string key = arg_path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        value = value->is_object() ? value->as_object().if_contains(key) : nullptr;
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
      if (value && value->is_number()) sum += value->to_number<double>();
    }
    return sum;
  }

 private:
  struct Call {
    std::string name;
    json::value arguments;
    int64_t at_ms = 0;
  };

  Status load() {
    if (loaded_) return Status::ok();
    ASSIGN_OR_RETURN(auto runs, store_.list_runs(request_.tenant, request_.session_id, PolicyEffectGate::kHistoryRunsMax));
    for (const auto& run : runs) {
      int64_t after = -1;
      for (;;) {
        ASSIGN_OR_RETURN(auto steps, store_.list_steps(request_.tenant, run.id, after, 500));
        for (const auto& step : steps) {
          after = step.seq;
          if (step.kind != kStepToolCall) continue;
          auto payload = parse_json_object(step.payload_json);
          if (!payload.is_ok()) continue;
          const json::value* name = payload->if_contains("name");
          const json::value* arguments = payload->if_contains("arguments");
          const json::value* denied = payload->if_contains("denied");
          if (!name || !name->is_string() || (denied && denied->is_bool() && denied->as_bool())) continue;
          auto parsed = arguments && arguments->is_string() ? parse_json(arguments->as_string())
                                                            : Result<json::value>(json::value(nullptr));
          calls_.push_back(Call{std::string(name->as_string()), parsed.is_ok() ? *parsed : json::value(nullptr),
                                step.created_at_ms});
        }
        if (steps.size() < 500) break;
      }
    }
    loaded_ = true;
    return Status::ok();
  }

  Store& store_;
  const Clock& clock_;
  const EffectRequest& request_;
  std::vector<Call> calls_;
  bool loaded_ = false;
};

// The policy request for an effect: the identity chain (end user, agent) and
// what `when` sees (docs/policy.md, "Effects in runs").
policy::Request effect_policy_request(const EffectRequest& request) {
  policy::Request out;
  out.explain = false;  // deciding only
  if (!request.user_id.empty()) out.identities.push_back("user:" + request.user_id);
  out.identities.push_back("agent:" + request.agent);
  out.action = request.action;
  out.resource = request.resource;
  // Built only if a `when` reads it: `request` outlives the decision (check()).
  out.build_context = [&request] {
    size_t colon = request.resource.find(':');
    json::object resource{{"type", request.resource.substr(0, colon)},
                          {"id", colon == std::string::npos ? "" : request.resource.substr(colon + 1)},
                          {"owner", request.user_id}};
    json::value user =
        request.user_id.empty() ? json::value(nullptr) : json::value(json::object{{"id", request.user_id}});
    return json::object{{"principal", json::object{{"id", request.user_id}, {"roles", json::array{}}}},
                        {"user", std::move(user)},
                        {"agent", json::object{{"name", request.agent}}},
                        {"resource", std::move(resource)},
                        {"action", request.action},
                        {"run", json::object{{"id", request.run_id}, {"session", request.session_id}}},
                        {"args", request.arguments}};
  };
  return out;
}

}  // namespace

EffectVerdict PolicyEffectGate::check(const EffectRequest& request) {
  policy::Request evaluated = effect_policy_request(request);
  SessionHistory history(store_, clock_, request);
  evaluated.history = &history;
  auto decision = authorizer_.decide(request.tenant, evaluated);
  if (!decision.is_ok()) {
    return EffectVerdict{EffectVerdictKind::kDeny, "", "the policy could not be evaluated: " +
                                                           decision.status().message()};
  }
  EffectVerdictKind kind = decision->effect == policy::Effect::kAllow ? EffectVerdictKind::kAllow
                           : decision->effect == policy::Effect::kDeny ? EffectVerdictKind::kDeny
                                                                       : EffectVerdictKind::kRequireApproval;
  return EffectVerdict{kind, decision->statement_id, decision->reason};
}

}  // namespace continuum
