// Policy documents and their evaluation: for a request (an identity chain
// performing an action on a resource, with context) decide allow, deny or
// require_approval, and explain why. The language is described in
// docs/policy.md; `when` conditions are in policy/expression.h.
//
// Combination: any applicable deny wins (explicit deny), then any applicable
// require_approval, then any applicable allow; if nothing applies the answer
// is deny (default deny). A `when` that fails to evaluate makes a deny or
// require_approval statement apply and an allow statement not apply (fail
// closed).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "policy/expression.h"

namespace continuum::policy {

constexpr size_t kPolicyBytesMax = 256 * 1024;
constexpr size_t kStatementsMax = 1000;
constexpr size_t kPatternsPerFieldMax = 64;
constexpr size_t kPatternBytesMax = 256;
constexpr size_t kStatementIdBytesMax = 64;
constexpr int kPolicyNestingMax = 16;       // YAML collections nested (the format needs 3)

enum class Effect { kAllow, kDeny, kRequireApproval };
const char* effect_name(Effect effect);  // "allow", "deny", "require_approval"

struct Statement {
  std::string id;                       // optional in input; default "statement-<index+1>"
  Effect effect = Effect::kDeny;
  std::vector<std::string> principals;  // patterns: "user:alice", "role:admin", "agent:support-*", "*"
  std::vector<std::string> actions;     // patterns: "session:read", "session:*", "*"
  std::vector<std::string> resources;   // patterns: "tool:refund", "session:*", "agent:billing", "*"
  std::optional<Expression> when;
};

struct PolicyDocument {
  std::vector<Statement> statements;

  // YAML or JSON text: JSON (Boost.JSON, via parse_json) when the first
  // non-space character is '{', YAML (yaml-cpp, one document, no aliases,
  // scalars read as strings) otherwise. Shape:
  //   {statements: [{id?, effect, principal: str|[str], action: str|[str],
  //                  resource?: str|[str] (default "*"), when?: str}]}
  // Strict: unknown keys are errors, because a typo must not silently widen
  // or narrow a policy. Limits: the k* constants above; statement ids are
  // unique, 1-64 characters of [A-Za-z0-9_.-]; patterns are 1-256 bytes
  // without control characters, at least one per field.
  // Errors are kInvalidArgument with param naming the place, e.g.
  // "statements[3].effect" (0-based index).
  static Result<PolicyDocument> parse(std::string_view text);

  // Canonical JSON: every statement with its id, effect, and all three
  // pattern fields as lists; `when` as its text. Round-trips through parse().
  json::value to_json() const;
};

struct Request {
  std::vector<std::string> identities;  // the identity chain, e.g. {"user:alice", "role:member", "agent:support"}
  std::string action;                   // "tool:invoke"
  std::string resource;                 // "tool:refund"
  json::object context;                 // what `when` sees (see Expression::evaluate)
  // If set, `context` is left empty and this builds it when a `when` first
  // reads it (most decisions have none to evaluate). For deciding only:
  // canonical_request_json reads `context` itself.
  std::function<json::object()> build_context;
  History* history = nullptr;           // for count()/sum(); may be null; not owned
  bool explain = true;                  // fill Decision::trace (the hot paths, deciding only, do not)
};

struct Decision {
  Effect effect = Effect::kDeny;
  std::string statement_id;          // the statement that decided; "" for the default deny
  std::string reason;                // one human sentence
  std::vector<std::string> trace;    // per statement, in order: why it applied or not (if explained)
};

// Evaluates every statement (so the trace is complete) and combines them as
// described above. Never fails: evaluation errors are part of the decision.
// Thread-safe for concurrent calls if request.history is.
Decision evaluate(const PolicyDocument& policy, const Request& request);

// A deterministic JSON text of identities, action, resource and context,
// with object keys sorted (bytewise) at every level; the caller hashes it for
// the audit record. The context's nesting is bounded by the JSON parser that
// produced it (parse_json's depth limit).
std::string canonical_request_json(const Request& request);

}  // namespace continuum::policy
