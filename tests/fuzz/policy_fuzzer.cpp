// libFuzzer target: the policy language. The first byte chooses what the
// rest is: even, a policy document (YAML or JSON), parsed and, if valid,
// round-tripped through to_json and evaluated against a fixed request with a
// small fake History; odd, a `when` expression, parsed and evaluated against
// a fixed nested context with and without history. Must never crash or leak;
// a broken round trip or decision invariant traps.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/expression.h"
#include "policy/policy.h"

namespace {

using namespace continuum;
using namespace continuum::policy;

// Deterministic answers derived from the arguments; "fail" fails.
class FakeHistory : public History {
 public:
  Result<int64_t> count_calls(const std::string& tool, int64_t window_ms) override {
    if (tool == "fail") return Status(Code::kUnavailable, "history unavailable");
    return static_cast<int64_t>(tool.size()) + window_ms % 7;
  }
  Result<double> sum_argument(const std::string& tool, const std::string& arg_path, int64_t window_ms) override {
    if (tool == "fail") return Status(Code::kUnavailable, "history unavailable");
    return static_cast<double>(arg_path.size()) * 1.5 + static_cast<double>(window_ms % 1000);
  }
};

const json::object& fixed_context() {
  static const json::object context = *parse_json_object(R"({
    "principal": {"id": "alice", "roles": ["member", "support"], "level": 3},
    "user": {"id": "alice", "email": "alice@example.com"},
    "agent": {"name": "support-bot", "version": 2},
    "resource": {"kind": "tool", "name": "tool:refund", "owner": "alice"},
    "action": "tool:invoke",
    "args": {"amount": 1250.5, "count": 0, "currency": "EUR", "tags": ["vip", "eu"],
             "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": -1, "meta": {"x": [1, [2, [3]]]}}],
             "big": 18446744073709551615, "small": -9223372036854775807, "flag": false, "none": null,
             "window": "15m"}
  })");
  return context;
}

void fuzz_policy(std::string_view text) {
  auto policy = PolicyDocument::parse(text);
  if (!policy.is_ok()) return;
  std::string canonical = to_json(policy->to_json());
  auto again = PolicyDocument::parse(canonical);
  if (!again.is_ok() || to_json(again->to_json()) != canonical) __builtin_trap();  // must round-trip

  FakeHistory history;
  Request request;
  request.identities = {"user:alice", "role:member", "agent:support-bot"};
  request.action = "tool:invoke";
  request.resource = "tool:refund";
  request.context = fixed_context();
  for (History* with : {static_cast<History*>(&history), static_cast<History*>(nullptr)}) {
    request.history = with;
    Decision decision = evaluate(*policy, request);
    if (decision.trace.size() != policy->statements.size()) __builtin_trap();
    if (decision.effect != Effect::kDeny && decision.statement_id.empty()) __builtin_trap();  // only deny defaults
  }
  (void)canonical_request_json(request);
}

void fuzz_expression(std::string_view text) {
  auto expression = Expression::parse(text);
  if (!expression.is_ok()) return;
  FakeHistory history;
  auto with_history = expression->evaluate(fixed_context(), &history);
  auto without_history = expression->evaluate(fixed_context(), nullptr);
  (void)without_history;
  auto empty_context = expression->evaluate(json::object(), &history);
  (void)empty_context;
  auto reparsed = Expression::parse(expression->text());
  if (!reparsed.is_ok()) __builtin_trap();  // parsing is a function of the text
  auto again = reparsed->evaluate(fixed_context(), &history);
  if (again.is_ok() != with_history.is_ok() || (again.is_ok() && *again != *with_history)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    fuzz_policy(text);
  } else {
    fuzz_expression(text);
  }
  return 0;
}
