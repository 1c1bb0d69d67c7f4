// Statement matching, the combination rules and the canonical request form.
#include "policy/policy.h"

#include <algorithm>

#include "policy/glob.h"

namespace continuum::policy {

namespace {

// The first pattern matching any of `values`, with the value it matched
// (pointers into the arguments).
struct Match {
  const std::string* pattern = nullptr;
  const std::string* value = nullptr;
};

Match first_match(const std::vector<std::string>& patterns, const std::vector<std::string>& values) {
  for (const std::string& pattern : patterns) {
    for (const std::string& value : values) {
      if (glob_match(pattern, value)) return {&pattern, &value};
    }
  }
  return {};
}

const std::string* first_match(const std::vector<std::string>& patterns, const std::string& value) {
  for (const std::string& pattern : patterns) {
    if (glob_match(pattern, value)) return &pattern;
  }
  return nullptr;
}

std::string join(const std::vector<std::string>& items) {
  std::string text = "[";
  for (size_t i = 0; i < items.size(); ++i) text += (i > 0 ? ", " : "") + items[i];
  return text + "]";
}

// Whether one statement applies, and the trace line saying why.
struct Verdict {
  bool applies = false;
  std::string condition_error;  // non-empty if `when` failed to evaluate
  std::string trace;
};

// The context `when` sees: the request's, or built once by its build_context.
class Context {
 public:
  explicit Context(const Request& request) : request_(request) {}
  const json::object& get() {
    if (!request_.build_context) return request_.context;
    if (!built_) built_ = request_.build_context();
    return *built_;
  }

 private:
  const Request& request_;
  std::optional<json::object> built_;
};

// The targets matched; decides on `when` and fails closed on its errors.
Verdict judge_condition(const Statement& statement, const Request& request, Context& context,
                        const std::string& matched) {
  Verdict verdict;
  if (!statement.when) {
    verdict.applies = true;
    if (request.explain) verdict.trace = "applies: " + matched;
    return verdict;
  }
  Result<bool> result = statement.when->evaluate(context.get(), request.history);
  if (result.is_ok()) {
    verdict.applies = *result;
    if (request.explain) {
      verdict.trace = std::string(*result ? "applies: " : "does not apply: ") + matched + "; when is " +
                      (*result ? "true" : "false");
    }
    return verdict;
  }
  verdict.condition_error = result.status().message();
  verdict.applies = statement.effect != Effect::kAllow;  // fail closed
  if (request.explain) {
    verdict.trace = std::string(verdict.applies ? "applies (fail closed): " : "does not apply (fail closed): ") +
                    matched + "; when could not be evaluated: " + verdict.condition_error;
  }
  return verdict;
}

Verdict judge(const Statement& statement, const Request& request, Context& context) {
  Verdict verdict;
  Match principal = first_match(statement.principals, request.identities);
  if (principal.pattern == nullptr) {
    if (request.explain) {
      verdict.trace = "does not apply: no principal pattern matches the identities " + join(request.identities);
    }
    return verdict;
  }
  const std::string* action = first_match(statement.actions, request.action);
  if (action == nullptr) {
    if (request.explain) verdict.trace = "does not apply: action '" + request.action + "' matches no action pattern";
    return verdict;
  }
  const std::string* resource = first_match(statement.resources, request.resource);
  if (resource == nullptr) {
    if (request.explain) {
      verdict.trace = "does not apply: resource '" + request.resource + "' matches no resource pattern";
    }
    return verdict;
  }
  if (!request.explain) return judge_condition(statement, request, context, {});
  std::string matched = "principal '" + *principal.pattern + "' matched '" + *principal.value + "', action '" +
                        *action + "', resource '" + *resource + "'";
  return judge_condition(statement, request, context, matched);
}

std::string reason_for(const Statement& statement, const Verdict& verdict, const Request& request) {
  std::string target = request.action + " on " + request.resource;
  std::string reason = "statement '" + statement.id + "' ";
  switch (statement.effect) {
    case Effect::kDeny: reason += "denies " + target; break;
    case Effect::kRequireApproval: reason += "requires approval for " + target; break;
    case Effect::kAllow: reason += "allows " + target; break;
  }
  if (!verdict.condition_error.empty()) {
    reason += " because its condition could not be evaluated (fail closed): " + verdict.condition_error;
  }
  return reason;
}

}  // namespace

const char* effect_name(Effect effect) {
  switch (effect) {
    case Effect::kAllow: return "allow";
    case Effect::kDeny: return "deny";
    case Effect::kRequireApproval: return "require_approval";
  }
  return "deny";
}

Decision evaluate(const PolicyDocument& policy, const Request& request) {
  Decision decision;
  // The first applicable statement of each effect, with its verdict.
  const Statement* deciding[3] = {nullptr, nullptr, nullptr};
  Verdict deciding_verdict[3];
  Context context(request);
  for (const Statement& statement : policy.statements) {
    Verdict verdict = judge(statement, request, context);
    if (request.explain) {
      decision.trace.push_back(statement.id + " (" + effect_name(statement.effect) + "): " + verdict.trace);
    }
    auto slot = static_cast<size_t>(statement.effect);
    if (verdict.applies && deciding[slot] == nullptr) {
      deciding[slot] = &statement;
      deciding_verdict[slot] = std::move(verdict);
    }
  }
  for (Effect effect : {Effect::kDeny, Effect::kRequireApproval, Effect::kAllow}) {
    auto slot = static_cast<size_t>(effect);
    if (deciding[slot] == nullptr) continue;
    decision.effect = effect;
    decision.statement_id = deciding[slot]->id;
    decision.reason = reason_for(*deciding[slot], deciding_verdict[slot], request);
    return decision;
  }
  decision.effect = Effect::kDeny;
  decision.reason = "no statement allows " + request.action + " on " + request.resource;
  return decision;
}

std::string canonical_request_json(const Request& request) {
  std::string out = "{\"action\":";  // keys in sorted order
  append_json_string(out, request.action);
  out += ",\"context\":";
  append_canonical_json(out, request.context);
  out += ",\"identities\":[";
  for (size_t i = 0; i < request.identities.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, request.identities[i]);
  }
  out += "],\"resource\":";
  append_json_string(out, request.resource);
  out += '}';
  return out;
}

}  // namespace continuum::policy
